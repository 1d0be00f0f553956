"""The flow of a run: built from its config (`build_flow`), restored from its workdir.

A run (`tfp_flows.run.experiment.train_and_evaluate`) writes its resolved config to
`workdir/config.json`, with what it learnt from the data: `data.event_shape`, `data.num_bins`
and `model.conditional_shape`. `restore_flow` rebuilds the same flow from that file alone, in
a fresh process, and loads a checkpoint into it: for a CSV table the same standardising
wrapper (`own_data.standardize_flow`, whose statistics the checkpoint restores), and for a run
with EMA weights (`config.train.ema_momentum`) the averaged weights, which the run validated,
tested and exported.
"""

import os
from collections.abc import Mapping

import ml_collections
import tensorflow as tf

from tfp_flows import models
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.data import own as own_data
from tfp_flows.run import checkpoints
from tfp_flows.run import workdir as workdirs
from tfp_flows.training.optimizers import make_optimizer
from tfp_flows.validation import check_int, check_one_of, check_positive_int, shape_tuple

__all__ = [
    'build_dequantizer',
    'build_flow',
    'build_optimizer',
    'data_flow',
    'restore_flow',
    'restore_flow_and_dequantizer',
]

_DTYPES = {'float32': tf.float32, 'float64': tf.float64}
_CHECKPOINT_NAMES = ('best', 'latest')
_GLOW_ONLY = (('coupling', 'affine'), ('permutation', 'lu'))


def build_flow(model_config, event_shape, dtype_policy=None):
    """The flow described by `config.model` for data of `event_shape`.

    Args:
      model_config: `config.model` (a ConfigDict or dict): the family ('glow' or 'real_nvp')
        and the arguments of `tfp_flows.glow` / `real_nvp`, with `dtype` a name ('float32')
        and `conditional_shape` as the run recorded it. An argument it lacks (a config.json
        of an earlier version) takes the model's default.
      event_shape: [H, W, C] for images, [D] for vectors.
      dtype_policy: the networks' compute precision, `config.train.mixed_precision`: None
        (float32), 'mixed_bfloat16' or 'mixed_float16' (`tfp_flows.mixed_precision`).

    Raises:
      ValueError: a Glow-only option (`coupling`, `permutation`) set for real_nvp, a
        preprocessing for vector data or none for images, an `event_shape` that is not a
        shape, or an argument outside its domain (see `tfp_flows.glow`).
      TypeError: a `model_config` that is not a ConfigDict or a dict.
    """
    _check_section('model_config', model_config)
    if shape_tuple(event_shape) is None:
        raise ValueError(f'`event_shape` must be [H, W, C] or [D]; got {event_shape!r}.')
    kwargs = dict(model_config)
    family = kwargs.pop('family')
    kwargs['dtype'] = _DTYPES[kwargs['dtype']]
    kwargs['dtype_policy'] = dtype_policy
    is_image = len(event_shape) == 3
    preprocessing = kwargs.get('preprocessing')
    if 'preprocessing' in kwargs and is_image and preprocessing is None:
        raise ValueError(
            "`config.model.preprocessing` must be 'centre' or 'logit' for image data; got None."
        )
    if not is_image and preprocessing is not None:
        raise ValueError(
            '`config.model.preprocessing` must be None for vector data (event_shape '
            f'{list(event_shape)}; e.g. the realnvp_moons recipe); got {preprocessing!r}.'
        )
    if family == 'glow':
        return models.glow(event_shape, **kwargs)
    for key, glow_only in _GLOW_ONLY:
        if kwargs.pop(key) != glow_only:
            raise ValueError(
                f'config.model.{key} applies to Glow only; real_nvp uses {glow_only!r}, got '
                f'{model_config[key]!r}.'
            )
    return models.real_nvp(event_shape, **kwargs)


def build_dequantizer(dequantizer_config, event_shape, num_bins, dtype, seed):
    """The dequantizer described by `config.dequantizer`, or None for uniform noise.

    Args:
      dequantizer_config: `config.dequantizer` (a ConfigDict or dict): `kind` ('uniform' or
        'variational') and, for 'variational', the sizes of the
        `tfp_flows.dequantization.variational.VariationalDequantizer`. A config without it
        (a config.json of an earlier version) means 'uniform'.
      event_shape: the images' [H, W, C].
      num_bins: the images' discrete levels (`data.num_bins`).
      dtype: the flow's dtype name ('float32' or 'float64').
      seed: the run's seed (`config.seed`), which fixes q's initial weights.

    Raises:
      ValueError: 'variational' for data that are not images ([H, W, C] with `num_bins`), or
        a size outside its domain (see `VariationalDequantizer`).
      TypeError: a `dequantizer_config` that is not None, a ConfigDict or a dict.
      ValueError: also an `event_shape` that is not a shape, a `num_bins` that is not None
        or an int >= 2, a `dtype` name other than 'float32' or 'float64', a `seed` that is
        not an int >= 0.
    """
    if dequantizer_config is not None:
        _check_section('dequantizer_config', dequantizer_config)
    if shape_tuple(event_shape) is None:
        raise ValueError(f'`event_shape` must be [H, W, C] or [D]; got {event_shape!r}.')
    check_int('num_bins', num_bins, 2, allow_none=True)
    check_one_of('dtype', dtype, tuple(_DTYPES))
    check_int('seed', seed, 0)
    if dequantizer_config is None:
        return None
    kwargs = dict(dequantizer_config)
    if kwargs.pop('kind', 'uniform') == 'uniform':
        return None
    if num_bins is None or len(event_shape) != 3:
        raise ValueError(
            "`config.dequantizer.kind` 'variational' dequantizes discrete images; got data of "
            f'event shape {list(event_shape)} and num_bins {num_bins}.'
        )
    # Imported here: the variational dequantizer's module loads the conditioner networks.
    from tfp_flows.dequantization.variational import VariationalDequantizer

    return VariationalDequantizer(
        tuple(event_shape), num_bins, seed=seed, dtype=_DTYPES[dtype], **kwargs
    )


def _check_section(name, value):
    if not isinstance(value, Mapping | ml_collections.ConfigDict):
        raise TypeError(f'`{name}` must be an ml_collections.ConfigDict or a dict; got {value!r}.')


def build_optimizer(train_config, steps_per_epoch):
    """The optimizer described by `config.train` (`optimizers.make_optimizer`).

    Linear warm-up over `warmup_steps`, then, with `cosine_decay`, cosine decay to 10% over
    `epochs * steps_per_epoch` optimizer steps; decoupled `weight_decay`; EMA weights with
    `ema_momentum` (None: none).

    Raises:
      TypeError: a `train_config` that is not a ConfigDict or a dict.
      ValueError: a `steps_per_epoch` that is not a positive int; `make_optimizer` names a
        field outside its domain.
    """
    _check_section('train_config', train_config)
    check_positive_int('steps_per_epoch', steps_per_epoch)
    train_config = ml_collections.ConfigDict(train_config)
    return make_optimizer(
        train_config.optimizer,
        train_config.learning_rate,
        warmup_steps=train_config.warmup_steps,
        decay_steps=train_config.epochs * steps_per_epoch if train_config.cosine_decay else None,
        weight_decay=train_config.weight_decay,
        ema_momentum=train_config.get('ema_momentum'),
    )


def data_flow(flow, data_name, statistics=None):
    """`flow` as the run trains and tests it on the data called `data_name`.

    For a CSV table ('csv:PATH'): `own_data.standardize_flow(flow, statistics)`, so densities
    and samples are in the table's units; with `statistics` None, placeholder statistics of
    the sizes of `flow` (means 0, deviations 1), for a checkpoint to overwrite. Other data:
    `flow` itself. `own_data.standardize_flow` checks `flow` and `statistics`.

    Raises:
      ValueError: a `data_name` that is not a non-empty str.
    """
    if not isinstance(data_name, str) or not data_name:
        raise ValueError(
            f'`data_name` must be a non-empty str (config.data.name); got {data_name!r}.'
        )
    if not data_name.startswith('csv:'):
        return flow
    if statistics is None:
        num_columns = int(flow.event_shape[0])
        shape = conditional_shape_of(flow)
        statistics = own_data.placeholder_statistics(num_columns, shape[0] if shape else 0)
    return own_data.standardize_flow(flow, statistics)


def restore_flow(workdir, which='best'):
    """Rebuilds the flow of a finished or interrupted run and loads its `which` checkpoint.

    `which` is 'best' or 'latest'. Works in a fresh process: the architecture comes from
    `workdir/config.json`, the variables from `workdir/checkpoints/<which>`. A run with EMA
    weights (`config.train.ema_momentum`) gives the averaged weights, the ones it validated,
    tested and exported; the optimizer's other state is not loaded. A CSV run's flow takes and
    gives the table's units. Its networks compute in float32 whatever the run's
    `train.mixed_precision` (a policy changes rounding only, not the variables). A run with a
    variational dequantizer: see `restore_flow_and_dequantizer`.

    Raises:
      ValueError: `which` is another name, or the checkpoint does not match the model of
        config.json or is damaged.
      FileNotFoundError: `workdir` holds no config.json or no such checkpoint.
      TypeError: `workdir` is not a str or a path.
    """
    return restore_flow_and_dequantizer(workdir, which)[0]


def restore_flow_and_dequantizer(workdir, which='best'):
    """The flow and the dequantizer of a run, restored as `restore_flow` restores the flow.

    Returns:
      (flow, dequantizer): the dequantizer is the run's trained
      `tfp_flows.dequantization.variational.VariationalDequantizer` (with its EMA weights if
      the run kept them), or None for a run with uniform dequantization (or of continuous
      data). Pass both to `tfp_flows.export.export_saved_model(flow, path, num_bins=...,
      dequantizer=dequantizer)` or to `tfp_flows.dequantization`'s bounds.

    Raises:
      As `restore_flow`.
    """
    workdirs.check_path('workdir', workdir)
    if which not in _CHECKPOINT_NAMES:
        raise ValueError(f'`which` must be one of {_CHECKPOINT_NAMES}; got {which!r}.')
    config = workdirs.read_json(os.path.join(workdir, 'config.json'))
    if config is None:
        raise FileNotFoundError(f'No config.json in workdir {workdir!r}: not a tfp_flows run.')
    path = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints', which))
    if path is None:
        raise FileNotFoundError(f'No {which!r} checkpoint under {workdir!r}/checkpoints.')
    config = ml_collections.ConfigDict(config)
    event_shape = tuple(config.data.event_shape)
    flow = build_flow(config.model, event_shape)
    flow = data_flow(flow, config.data.name)
    dequantizer = build_dequantizer(
        config.get('dequantizer'),
        event_shape,
        config.data.get('num_bins'),
        config.model.dtype,
        config.seed,
    )
    modules = checkpoint_modules(flow, dequantizer)
    variables = trained_variables(flow, dequantizer)
    ema_momentum = config.train.get('ema_momentum')
    if ema_momentum is None:
        checkpoints.restore(tf.train.Checkpoint(**modules), path, partial=True)
        return flow, dequantizer
    # The averages are the optimizer's variables: load them into the run's optimizer (built
    # on the variables in the trainer's order), then write them into the flow and the
    # dequantizer (Keras' public `finalize_variable_values`).
    optimizer = build_optimizer(config.train, steps_per_epoch=1)
    optimizer.build(variables)
    checkpoints.restore(tf.train.Checkpoint(**modules, optimizer=optimizer), path, partial=True)
    optimizer.finalize_variable_values(variables)
    return flow, dequantizer


def checkpoint_modules(flow, dequantizer):
    """{name: module} that a run's checkpoints hold besides its training state."""
    return {'flow': flow} if dequantizer is None else {'flow': flow, 'dequantizer': dequantizer}


def trained_variables(flow, dequantizer):
    """The variables a run trains, in `FlowTrainer.trainable_weights` order."""
    variables = list(flow.trainable_variables)
    if dequantizer is not None:
        variables += list(dequantizer.trainable_variables)
    return variables
