"""Every field of a run's config, declared once: its default, domain, rerun class and doc.

`FIELDS` is the one table. From it come the default config (`default_config()`, a locked,
typed `ml_collections.ConfigDict`, which configs/default.py returns), the check of a run's
config (`check_config`), the rerun classes (`rerun_class`) and `train.py --print_config`
(`describe`). A new field is one row here.

The rerun classes say what a rerun into an existing workdir may change:
  RUN       the model, the data it is trained and scored on, and the checkpointed state. A
            change is refused, naming each field with both values; nothing is written.
  TRAINING  how training goes on. A change applies when the run trains on; `config.json`
            then holds it, and `config_history.json` records it with the epoch it took effect.
  FREE      where and how fast a run computes and what it reports. Free to change.
A run also records, from its data, `RECORDED`'s fields in its config.json (class RUN).

Nothing here imports TensorFlow, so `train.py` checks a config before TensorFlow starts.
"""

import dataclasses
from collections.abc import Mapping

import ml_collections
from ml_collections import config_dict

from tfp_flows import checks

__all__ = [
    'FIELDS',
    'FREE',
    'GLOW_ONLY',
    'RECORDED',
    'RUN',
    'TRAINING',
    'Field',
    'check_config',
    'default_config',
    'describe',
    'flatten',
    'rerun_class',
]

RUN, TRAINING, FREE = 'run', 'training', 'free'


@dataclasses.dataclass(frozen=True)
class Field:
    """One config field: `default` (of type `kind`), its `domain`, `rerun` class and `doc`."""

    default: object
    domain: checks.Domain
    rerun: str
    doc: str
    kind: type | None = None  # The type of a field whose default is None.


_TEXT = checks.Domain('a non-empty str', lambda value: isinstance(value, str) and bool(value))
_COLUMNS = checks.COLUMN_NAMES.or_none()
_STRATEGIES = checks.one_of('auto', 'one_device', 'mirrored', 'multi_worker')

# fmt: off
FIELDS = {
    'seed': Field(0, checks.SEED, RUN, 'Initial weights, permutations, data order and noise.'),
    'data.name': Field('digits', _TEXT, RUN,
        "'digits', a 2-D toy ('moons', ...), a TFDS image dataset, folder:PATH or csv:PATH."),
    'data.data_dir': Field(None, _TEXT.or_none(), FREE, 'TFDS data_dir; None: TFDS default.', str),
    'data.image_size': Field(None, checks.POSITIVE_INT.or_none(), RUN,
        'Area-resize images to this side; None: as they are.', int),
    'data.splits.train': Field('train', _TEXT, RUN, 'The training split.'),
    'data.splits.validation': Field('validation', _TEXT, RUN,
        'The split that picks the best checkpoint.'),
    'data.splits.test': Field('test', _TEXT, RUN, 'The split the reported figure is of.'),
    'data.conditional': Field(False, checks.BOOL, RUN,
        "Model p(x | c): c the one-hot label, or a CSV's context columns."),
    'data.columns': Field(None, _COLUMNS, RUN,
        "csv:PATH: the columns modelled; None: all but the context columns.", tuple),
    'data.context_columns': Field(None, _COLUMNS, RUN,
        "csv:PATH: the context columns of a conditional model.", tuple),
    'data.augment': Field(None, checks.one_of('flip').or_none(), TRAINING,
        "'flip': random left-right flips of the training data.", str),
    'model.family': Field('real_nvp', checks.one_of('glow', 'real_nvp'), RUN, 'The flow.'),
    'model.num_levels': Field(2, checks.POSITIVE_INT, RUN, 'Scales (squeezes) of the flow.'),
    'model.num_steps': Field(4, checks.POSITIVE_INT, RUN, 'Flow steps per level.'),
    'model.hidden_channels': Field(64, checks.POSITIVE_INT, RUN,
        'Width of each coupling network.'),
    'model.residual_blocks': Field(0, checks.NON_NEGATIVE_INT, RUN,
        'Residual blocks h + ReLU(conv3x3(h)) in each image coupling network.'),
    'model.coupling': Field(
        'affine', checks.COUPLINGS, RUN,
        "Couplings: 'affine', 'additive' (NICE), 'spline' (rational-quadratic) or "
        "'logistic_mixture' (Flow++'s CDF; sampling by bisection)."),
    'model.permutation': Field('lu', checks.one_of('lu', 'plain', 'reverse', 'shuffle'), RUN,
        "Channel mixing between couplings (Glow): 'lu' or 'plain' 1x1 convolutions, or a fixed "
        "'reverse' or 'shuffle'."),
    'model.loop': Field(False, checks.BOOL, RUN,
        "Each level's steps as one tf.while_loop over stacked parameters (Glow); the recipes of "
        '8 or more steps per level set it, as `tfp_flows.glow` does by default.'),
    'model.split_prior': Field(False, checks.BOOL, RUN,
        'A learned prior of the factored-out channels.'),
    'model.log_scale_bound': Field(2.0, checks.POSITIVE_NUMBER, RUN,
        'Soft clamp of every log-scale.'),
    'model.scale': Field('tanh', checks.one_of('tanh', 'sigmoid'), RUN,
        "Coupling scale: 'tanh' (soft clamp) or Glow's 'sigmoid'."),
    'model.spline_bins': Field(8, checks.SPLINE_BINS, RUN, "The spline couplings' bins."),
    'model.spline_bound': Field(3.0, checks.POSITIVE_NUMBER, RUN,
        'The spline couplings map [-B, B]; the identity outside.'),
    'model.mixture_components': Field(4, checks.MIXTURE_COMPONENTS, RUN,
        "The logistic mixture couplings' logistics."),
    'model.preprocessing': Field('logit', checks.one_of('centre', 'logit').or_none(), RUN,
        "Images: 'centre' (x - 1/2) or Real NVP's 'logit'; None for vector data.", str),
    'model.alpha': Field(0.01, checks.number(0, 0.5, high_open=True), RUN,
        'Margin of the logit preprocessing.'),
    'model.learn_top_prior': Field(False, checks.BOOL, RUN,
        "Glow's learntop: a learned prior of the top latent."),
    'model.dropout_rate': Field(0.0, checks.FRACTION, TRAINING,
        "Dropout of the coupling networks' hidden units, in training only."),
    'model.dtype': Field('float32', checks.one_of('float32', 'float64'), RUN,
        "The flow's variables and computation."),
    'dequantizer.kind': Field('variational', checks.one_of('uniform', 'variational'), RUN,
        "Images: 'uniform' noise, or noise from a flow q(u | k) trained with the model (Flow++)."),
    'dequantizer.num_steps': Field(4, checks.integer(2), RUN, 'Couplings of q.'),
    'dequantizer.hidden_channels': Field(32, checks.POSITIVE_INT, RUN,
        "Width of q's coupling and context networks."),
    'dequantizer.context_channels': Field(8, checks.NON_NEGATIVE_INT, RUN,
        'Features of the image k that q is conditioned on.'),
    'train.strategy': Field('auto', _STRATEGIES, FREE,
        "tf.distribute strategy, 'auto', 'one_device', 'mirrored' or 'multi_worker'; the same "
        'global batch and step on each.'),
    'train.batch_size': Field(64, checks.POSITIVE_INT, TRAINING,
        'Global batch, split over the replicas.'),
    'train.epochs': Field(60, checks.POSITIVE_INT, TRAINING, 'Epochs to train.'),
    'train.optimizer': Field('adamax', checks.one_of('adam', 'adamax'), RUN,
        "'adam' or 'adamax'; the checkpoints hold its slots."),
    'train.learning_rate': Field(3e-3, checks.POSITIVE_NUMBER, TRAINING,
        'Peak learning rate.'),
    'train.warmup_steps': Field(100, checks.NON_NEGATIVE_INT, TRAINING,
        'Linear warm-up, in optimizer steps.'),
    'train.cosine_decay': Field(True, checks.BOOL, TRAINING,
        'Decay to 10% of the rate over the epochs.'),
    'train.weight_decay': Field(0.01, checks.number(0).or_none(), TRAINING,
        'Decoupled, as in AdamW; None: off.', float),
    'train.clip_norm': Field(50.0, checks.POSITIVE_NUMBER.or_none(), TRAINING,
        'Global gradient-norm clipping; None: off.', float),
    'train.accumulation_steps': Field(1, checks.POSITIVE_INT, TRAINING,
        'Micro-batches per step (must divide batch_size).'),
    'train.memory_saving': Field(None, checks.one_of('invert', 'recompute').or_none(), FREE,
        "Backprop without storing each step's activations: the same gradients.", str),
    'train.ema_momentum': Field(None, checks.FRACTION.or_none(), RUN,
        'EMA weights, which are validated, tested and exported; None: off.', float),
    'train.jit_compile': Field(False, checks.BOOL, TRAINING,
        "XLA for the train step; its dropout masks and roundings are not graph mode's."),
    'train.mixed_precision': Field(
        None, checks.one_of('mixed_bfloat16', 'mixed_float16').or_none(), TRAINING,
        "Keras' policy of the coupling and prior networks; None: float32.", str),
    'train.steps_per_execution': Field(8, checks.POSITIVE_INT, FREE,
        'Train steps per call into TF.'),
    'train.intra_op_threads': Field(1, checks.NON_NEGATIVE_INT, FREE,
        "Threads one op may use; 0: TF's default (all cores)."),
    'train.inter_op_threads': Field(0, checks.NON_NEGATIVE_INT, FREE,
        "Ops run side by side; 0: TF's default."),
    'train.max_seconds': Field(None, checks.POSITIVE_NUMBER.or_none(), FREE,
        'Stop this session after so many seconds of training.', float),
    'train.early_stopping_patience': Field(None, checks.NON_NEGATIVE_INT.or_none(), TRAINING,
        'Stop after so many epochs without a better validation figure.', int),
    'train.sample_temperatures': Field((0.7, 1.0), checks.TEMPERATURES, FREE,
        'Temperatures of the sample pictures.'),
    'train.sample_every_epochs': Field(10, checks.POSITIVE_INT, FREE,
        'Epochs between sample pictures.'),
    'train.export': Field(True, checks.BOOL, FREE,
        'Export the best model to WORKDIR/saved_model at the end; False: none (sweeps).'),
    'eval.iw_samples': Field(32, checks.NON_NEGATIVE_INT, FREE,
        'Images: also the importance-weighted bits/dim, from so many draws; 0: off.'),
}
# fmt: on

# Written by the run into config.json from its data (class RUN), not set by a recipe.
RECORDED = ('data.event_shape', 'data.num_bins', 'model.conditional_shape')


def rerun_class(key):
    """RUN, TRAINING or FREE for the field `key` ('train.epochs'); RUN for any other key."""
    return FIELDS[key].rerun if key in FIELDS else RUN


def _value(field):
    """The default of `field` as a ConfigDict holds it: a typed reference where None is allowed."""
    if field.default is None:
        return config_dict.placeholder(field.kind)
    if field.domain.contains(None):
        return config_dict.FieldReference(field.default, field_type=type(field.default))
    return field.default


def default_config():
    """The default config: a locked `ml_collections.ConfigDict` of every field of `FIELDS`."""
    config = ml_collections.ConfigDict()
    for key, field in FIELDS.items():
        *sections, name = key.split('.')
        node = config
        for section in sections:
            if section not in node:
                node[section] = ml_collections.ConfigDict()
            node = node[section]
        node[name] = _value(field)
    config.lock()
    return config


def flatten(config):
    """{'section.field': value} of every leaf of a `ConfigDict` or nested dicts."""
    if isinstance(config, ml_collections.ConfigDict):
        config = config.to_dict()
    leaves = {}
    for key, value in config.items():
        if isinstance(value, Mapping | ml_collections.ConfigDict):
            leaves.update({f'{key}.{k}': v for k, v in flatten(value).items()})
        else:
            leaves[key] = value
    return leaves


def check_config(config):
    """Checks a run's config (a `ConfigDict` or nested dicts with every field of `FIELDS`)
    once; returns it as a new locked `ConfigDict`. Raises `ValueError` naming the first field
    outside its domain, a field missing or unknown, or fields that cannot go together;
    `TypeError` for a `config` that is not a ConfigDict or a dict.
    """
    if not isinstance(config, Mapping | ml_collections.ConfigDict):
        raise TypeError(f'`config` must be an ml_collections.ConfigDict or a dict; got {config!r}.')
    values = flatten(config)
    unknown = sorted(set(values) - set(FIELDS))
    missing = sorted(set(FIELDS) - set(values))
    if unknown or missing:
        problem = f'unknown fields {unknown}' if unknown else f'lacks the fields {missing}'
        raise ValueError(f'`config` {problem}; see its fields with train.py --print_config.')
    checked = default_config()
    checked.update_from_flattened_dict(
        {key: FIELDS[key].domain.check(f'config.{key}', value) for key, value in values.items()}
    )
    _check_joint_rules(checked.train, checked.model)
    return checked


GLOW_ONLY = ('permutation', 'loop')  # model fields real_nvp does not take (at their default).


def _check_joint_rules(train, model):
    """Refuses fields that cannot go together; each message says why."""
    for name in GLOW_ONLY:
        default = FIELDS[f'model.{name}'].default
        if model.family == 'real_nvp' and model[name] != default:
            raise ValueError(
                f'`config.model.{name}` applies to Glow only; real_nvp uses {default!r}, got '
                f'{model[name]!r}.'
            )
    for name, kind in checks.COUPLING_OPTIONS.items():
        default = FIELDS[f'model.{name}'].default
        if model.coupling != kind and model[name] != default:
            raise ValueError(
                f'`config.model.{name}` applies to model.coupling={kind!r}; got {model[name]!r} '
                f'with {model.coupling!r} (with {model.coupling!r}, leave it at its default '
                f'{default!r}: --config.model.{name}={default}).'
            )
    if train.batch_size % train.accumulation_steps:
        raise ValueError(
            f'`config.train.accumulation_steps` ({train.accumulation_steps}) must divide '
            f'`config.train.batch_size` ({train.batch_size}): each step splits its batch into '
            'that many equal micro-batches.'
        )
    if train.mixed_precision is not None and model.dtype != 'float32':
        raise ValueError(
            f'`config.train.mixed_precision` ({train.mixed_precision!r}) keeps float32 '
            f"variables, so it needs `config.model.dtype` 'float32'; got {model.dtype!r}."
        )
    if train.strategy == 'multi_worker' and train.max_seconds is not None:
        raise ValueError(
            "`config.train.max_seconds` cannot be used with strategy 'multi_worker': each "
            'worker would stop after a different batch and the others would wait forever; '
            f'got max_seconds={train.max_seconds!r}.'
        )


def describe(config, title):
    """`--print_config`: a header, then `FIELD  VALUE  [class]  doc` for each field of `config`."""
    values = flatten(config)
    width = max(len(key) for key in values)
    order = [key for key in FIELDS if key in values] + sorted(set(values) - set(FIELDS))
    shown = {key: repr(values[key]) for key in order}
    value_width = max(len(text) for text in shown.values())
    lines = [
        f'# {title}, with the command line overrides. Override a field with',
        "# --config.FIELD=VALUE. A rerun goes on with its workdir's config.json and the overrides",
        '# given then: [run] fields may not change, [training] ones apply if it trains on',
        '# (recorded in config_history.json), the others are free.',
    ]
    for key, text in shown.items():
        field = FIELDS.get(key)
        tag = f'[{field.rerun}]' if field and field.rerun != FREE else ''
        doc = field.doc if field else ''
        lines.append(f'{key:<{width}}  {text:<{value_width}}  {tag:<10}  {doc}'.rstrip())
    return '\n'.join(lines)
