"""A run's flow: built from its config (`build_flow`), its checkpoints read and restored
through `tf.train` (a mismatch or damage is an error, never a silent load). The builders take
config sections as checked (`tfp_flows.run.schema`) or as a config.json holds them.
"""

import os

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from absl import logging

from tfp_flows import checks, models, sampling
from tfp_flows.bijectors.base import SavedStructure
from tfp_flows.bijectors.chain import Chain
from tfp_flows.bijectors.context import StandardizedContext, conditional_shape_of
from tfp_flows.data.own import TableStatistics
from tfp_flows.dequantization.variational import VariationalDequantizer
from tfp_flows.run import schema
from tfp_flows.run import workdir as workdirs
from tfp_flows.training.optimizers import make_optimizer

tfb = tfp.bijectors
tfd = tfp.distributions
_STATE = '.ATTRIBUTES/py_state'  # The checkpoint key of a `PythonState` under its object's.

__all__ = [
    'build_dequantizer',
    'build_flow',
    'build_optimizer',
    'checkpoint_modules',
    'data_flow',
    'is_variational',
    'placeholder_statistics',
    'restore',
    'restore_flow',
    'restore_flow_and_dequantizer',
    'restore_newest_readable',
    'standardize_flow',
]


def build_flow(model_config, event_shape, dtype_policy=None):
    """The flow of `model_config` (`config.model` with the recorded `conditional_shape`; a
    field it lacks, recorded before the field existed, takes the config's default: the
    behaviour before it) for data of `event_shape` ([H, W, C] or [D]).
    `dtype_policy` is `config.train.mixed_precision`. Raises as `tfp_flows.glow`/`real_nvp`.
    """
    kwargs = {**schema.default_config().model.to_dict(), **model_config}
    family = kwargs.pop('family')
    kwargs.update(dtype=tf.as_dtype(kwargs['dtype']), dtype_policy=dtype_policy)
    if family == 'glow':
        return models.glow(tuple(event_shape), **kwargs)
    for key in schema.GLOW_ONLY:
        kwargs.pop(key, None)
    return models.real_nvp(tuple(event_shape), **kwargs)


def is_variational(config):
    """Whether the run of `config` (or its config.json; none in older ones: uniform) trains a
    variational dequantizer."""
    return config.get('dequantizer', {}).get('kind') == 'variational'


def build_dequantizer(dequantizer_config, event_shape, num_bins, dtype, seed):
    """The `VariationalDequantizer` q(u | k) of `config.dequantizer`, for images of
    `event_shape` [H, W, C] and `num_bins`; `dtype` is the flow's (a name), `seed` the run's."""
    kwargs = {k: v for k, v in dict(dequantizer_config).items() if k != 'kind'}
    return VariationalDequantizer(
        tuple(event_shape), num_bins, seed=seed, dtype=tf.as_dtype(dtype), **kwargs
    )


def build_optimizer(train_config, steps_per_epoch):
    """The optimizer of `config.train` (`tfp_flows.training.make_optimizer`); its cosine
    decay, if any, lasts `epochs * steps_per_epoch` optimizer steps."""
    train_config = ml_collections.ConfigDict(train_config)
    return make_optimizer(
        train_config.optimizer,
        train_config.learning_rate,
        warmup_steps=train_config.warmup_steps,
        decay_steps=train_config.epochs * steps_per_epoch if train_config.cosine_decay else None,
        weight_decay=train_config.weight_decay,
        ema_momentum=train_config.get('ema_momentum'),
    )


def placeholder_statistics(num_columns, num_context_columns=0):
    """`TableStatistics` of D = `num_columns` and K = `num_context_columns` (means 0,
    deviations 1), for a checkpoint to overwrite: `standardize_flow(flow, placeholder_statistics(D,
    K))` has the variables of a run's model on such a table. `ValueError` for D < 1 or K < 0.
    """
    num_columns = checks.POSITIVE_INT.check('num_columns', num_columns)
    num_context = checks.NON_NEGATIVE_INT.check('num_context_columns', num_context_columns)
    context = tuple(f'context_{k}' for k in range(num_context))
    return TableStatistics(
        tuple(f'column_{j}' for j in range(num_columns)),
        np.zeros(num_columns),
        np.ones(num_columns),
        context,
        np.zeros(num_context) if context else None,
        np.ones(num_context) if context else None,
    )


def _saved(values, dtype, name):
    return tf.Variable(np.asarray(values), dtype=dtype, trainable=False, name=name)


def standardize_flow(flow, statistics):
    """`flow`, a vector `tfd.TransformedDistribution` on standardised data (conditional_shape
    (K,) for K context columns), as a flow on the table's own units, sharing its variables.

    With m, s the data columns' training mean and deviation (`statistics`, a `TableStatistics`)
    the bijector is Chain([Shift(m), Scale(s), flow.bijector]), x = m + s * u, so
      log p(x) = log p_flow((x - m) / s) - sum_j log s_j      (nats, in the CSV's units).
    Context columns (m_c, s_c) reach `flow` as (c - m_c) / s_c (`StandardizedContext`). m, s,
    m_c, s_c are non-trainable variables that a checkpoint restores. `TypeError` for arguments
    of another kind, `ValueError` for a `flow` whose shapes do not fit the columns.
    """
    sampling.check_flow(flow)
    if not isinstance(statistics, TableStatistics):
        raise TypeError(f'`statistics` must be a TableStatistics; got {statistics!r}.')
    num_columns, num_context = len(statistics.columns), len(statistics.context_columns)
    if flow.event_shape != [num_columns]:
        raise ValueError(
            f'`flow` must have event shape [{num_columns}], one value per column of the '
            f'statistics; got {flow.event_shape}.'
        )
    shape = conditional_shape_of(flow)
    if shape != ((num_context,) if num_context else None):
        raise ValueError(
            f'`flow` must have conditional_shape {(num_context,) if num_context else None} for '
            f'{num_context} context columns; got {shape}.'
        )
    dtype = flow.dtype
    steps = [
        tfb.Shift(_saved(statistics.mean, dtype, 'column_mean'), name='column_mean'),
        tfb.Scale(_saved(statistics.scale, dtype, 'column_scale'), name='column_scale'),
        flow.bijector,
    ]
    bijector = Chain(steps, event_ndims=1, name='standardized')
    if statistics.context_columns:
        bijector = StandardizedContext(
            bijector,
            _saved(statistics.context_mean, dtype, 'context_mean'),
            _saved(statistics.context_scale, dtype, 'context_scale'),
        )
    return tfd.TransformedDistribution(flow.distribution, bijector, name=flow.parameters['name'])


def data_flow(flow, data_name, statistics=None):
    """`flow` as a run on the data `data_name` trains it: for 'csv:PATH',
    `standardize_flow(flow, statistics)` (None: placeholders of `flow`'s sizes); else `flow`."""
    if not data_name.startswith('csv:'):
        return flow
    if statistics is None:
        shape = conditional_shape_of(flow)
        statistics = placeholder_statistics(int(flow.event_shape[0]), shape[0] if shape else 0)
    return standardize_flow(flow, statistics)


def checkpoint_modules(flow, dequantizer):
    """{name: module} that a run's checkpoints hold besides its training state."""
    return {'flow': flow} if dequantizer is None else {'flow': flow, 'dequantizer': dequantizer}


def restore(checkpoint, path, partial=False):
    """Restores checkpoint `path`, which must hold every object of `checkpoint` (with `partial`
    also more, without TF's warnings); `ValueError` if it is damaged or holds another model."""
    if not tf.io.gfile.exists(path + '.index'):
        raise ValueError(f'Checkpoint {path} is incomplete: {path}.index does not exist.')
    status = None
    try:
        _check_structures(checkpoint, path)
        status = checkpoint.restore(path)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as error:
        if status is not None:  # Refused: no warning of each value it left.
            status.expect_partial()
        raise ValueError(
            f'Checkpoint {path} does not match the model built from the config: {error} '
            'Use the config the checkpoint was trained with, or a new --workdir.'
        ) from error
    except (IndexError, tf.errors.OpError) as error:  # IndexError: a truncated data file.
        raise ValueError(f'Checkpoint {path} is damaged or incomplete: {error}') from error
    if partial:
        status.expect_partial()


def _check_structures(checkpoint, path):
    """Compares the saved structures (`SavedStructure`) with the built ones before `tf.train`
    reads a value: a restore refused midway warns of each value it left, when collected."""
    reader = tf.train.load_checkpoint(path)
    keys, queue, seen = reader.get_variable_to_shape_map(), [('', checkpoint)], {id(checkpoint)}
    for prefix, node in queue:  # Breadth first: a checkpoint names an object by its first path.
        for name, child in tf.train.TrackableView.children(node).items():
            key = prefix + name.replace('.', '..').replace('/', '.S')  # TF's escapes.
            if isinstance(child, SavedStructure) and f'{key}/{_STATE}' in keys:
                child.deserialize(reader.get_tensor(f'{key}/{_STATE}'))
            elif id(child) not in seen:
                seen.add(id(child))
                queue.append((f'{key}/', child))


def restore_newest_readable(checkpoint, directory):
    """Restores the newest checkpoint in `directory` that loads (a damaged one is skipped with
    a warning); returns its path, or None. `ValueError` if none loads, naming each."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return None
    errors = []  # TF lists the newest last.
    for path in reversed(state.all_model_checkpoint_paths):
        try:
            restore(checkpoint, path)
        except ValueError as error:
            errors.append(error)
            continue
        if errors:
            logging.warning('%s Skipping it for the older %s.', errors[0], path)
        return path
    raise ValueError(' '.join(str(e) for e in errors))


def restore_flow(workdir, which='best'):
    """The flow of a finished or interrupted run: its architecture from `workdir/config.json`,
    its variables from `workdir/checkpoints/<which>` ('best' or 'latest'; the EMA weights of a
    run that kept them). A CSV run's flow works in the table's units; its networks compute in
    float32 whatever the run's `train.mixed_precision`. `ValueError` for another `which` or a
    checkpoint that does not match config.json or is damaged, `FileNotFoundError` without
    config.json or such a checkpoint, `TypeError` if `workdir` is not a path.
    """
    return restore_flow_and_dequantizer(workdir, which)[0]


def restore_flow_and_dequantizer(workdir, which='best'):
    """The flow and the run's trained `VariationalDequantizer` (or None), restored as
    `restore_flow` restores the flow. Raises as `restore_flow`."""
    checks.check_path('workdir', workdir)
    which = checks.one_of('best', 'latest').check('which', which)
    config = workdirs.read_json(os.path.join(workdir, 'config.json'))
    if config is None:
        raise FileNotFoundError(f'No config.json in workdir {workdir!r}: not a tfp_flows run.')
    path = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', which))
    if path is None:
        raise FileNotFoundError(f'No {which!r} checkpoint under {workdir!r}/checkpoints.')
    config = ml_collections.ConfigDict(config)
    event_shape = config.data.event_shape
    flow = data_flow(build_flow(config.model, event_shape), config.data.name)
    dequantizer = None
    if is_variational(config):
        dequantizer = build_dequantizer(
            config.dequantizer, event_shape, config.data.num_bins, config.model.dtype, config.seed
        )
    modules = checkpoint_modules(flow, dequantizer)
    if config.train.get('ema_momentum') is None:
        restore(tf.train.Checkpoint(**modules), path, partial=True)
        return flow, dequantizer
    # The averages are the optimizer's variables: load them into the run's optimizer (built
    # on the variables in the trainer's order: the flow's, then the dequantizer's), then
    # write them into the flow and the dequantizer (Keras' public `finalize_variable_values`).
    variables = [v for module in modules.values() for v in module.trainable_variables]
    optimizer = build_optimizer(config.train, steps_per_epoch=1)
    optimizer.build(variables)
    restore(tf.train.Checkpoint(**modules, optimizer=optimizer), path, partial=True)
    optimizer.finalize_variable_values(variables)
    return flow, dequantizer
