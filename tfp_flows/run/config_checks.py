"""The domain of every config field (configs/default.py), checked with one message per field.

`check_config_values(config)` checks each leaf of a config against `FIELDS` and raises
`ValueError` naming the first one outside its domain, as '`config.train.weight_decay` must be
None or a finite number >= 0; got -0.5.'. `check_config(config)`, which a run calls before any
work, adds the rules that join fields (`max_seconds` with 'multi_worker'); the Glow-only
options of real_nvp are refused by `experiment.build_flow`. Every leaf of every recipe in
configs/ has an entry (tests/test_config_checks.py); a new config field gets one with its
default.
"""

from collections.abc import Mapping

import ml_collections

from tfp_flows.training.distribute import STRATEGIES
from tfp_flows.validation import (
    Interval,
    check_bool,
    check_int,
    check_number,
    check_number_list,
    check_one_of,
    shape_tuple,
)

__all__ = [
    'FIELDS',
    'RUN_FIELDS',
    'check_config',
    'check_config_values',
    'field_values',
    'unchecked_keys',
]


def _int(low=1, high=None, allow_none=False):
    return lambda name, value: check_int(name, value, low, high, allow_none=allow_none)


def _number(low=None, low_open=False, allow_none=False):
    return lambda name, value: check_number(
        name, value, low, low_open=low_open, allow_none=allow_none
    )


def _one_of(*options):
    return lambda name, value: check_one_of(name, value, options)


def _optional(*options):
    """None, or one of the str `options`."""

    def check(name, value):
        if value is None or (isinstance(value, str) and value in options):
            return value
        shown = ' or '.join(map(repr, options))
        raise ValueError(f'`{name}` must be None or {shown}; got {value!r}.')

    return check


def _fraction(allow_none=False):
    """A number in [0, 1), or None if `allow_none`."""
    return lambda name, value: check_number(
        name, value, 0, 1, high_open=True, allow_none=allow_none
    )


def _names(name, value):
    """None, or a non-empty list of distinct non-empty strs (CSV column names)."""
    if value is None:
        return value
    names = None if isinstance(value, str) else shape_tuple(value)
    if (
        not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        raise ValueError(
            f'`{name}` must be None or a non-empty list of distinct non-empty strs (column '
            f'names); got {value!r}.'
        )
    return value


def _conditional_shape(name, value):
    """What the run records: None, or the shape of one context, positive ints."""
    if value is not None:
        check_number_list(
            name, value, Interval(integer=True, low=1), 'None or a non-empty list of positive ints'
        )
    return value


def _text(allow_none=False):
    """A non-empty str (a name, a split, a path), or None if `allow_none`."""

    def check(name, value):
        if (value is None and allow_none) or (isinstance(value, str) and value):
            return value
        expected = 'None or a non-empty str' if allow_none else 'a non-empty str'
        raise ValueError(f'`{name}` must be {expected}; got {value!r}.')

    return check


def _mixed_precision(name, value):
    """None, or a Keras mixed-precision policy name (`tfp_flows.mixed_precision`)."""
    if value is None or value in ('mixed_bfloat16', 'mixed_float16'):
        return value
    raise ValueError(f"`{name}` must be None, 'mixed_bfloat16' or 'mixed_float16'; got {value!r}.")


def _temperatures(name, value):
    return check_number_list(
        name, value, Interval(low=0, low_open=True), 'a non-empty list of finite numbers > 0'
    )


def _event_shape(name, value):
    """What the run records: [H, W, C] or [D], positive ints."""
    if value is not None:
        check_number_list(
            name, value, Interval(integer=True, low=1), 'a list of positive ints, [H, W, C] or [D]'
        )
        if len(value) not in (1, 3):
            raise ValueError(f'`{name}` must be [H, W, C] or [D]; got {value!r}.')
    return value


# Each leaf key of the config (without the leading 'config.') and the check of its value.
FIELDS = {
    'seed': _int(0, 2**31),
    'data.name': _text(),
    'data.data_dir': _text(allow_none=True),
    'data.image_size': _int(1, allow_none=True),
    'data.splits.train': _text(),
    'data.splits.validation': _text(),
    'data.splits.test': _text(),
    'data.conditional': check_bool,
    'data.columns': _names,
    'data.context_columns': _names,
    'data.augment': _optional('flip'),
    'data.event_shape': _event_shape,
    'data.num_bins': _int(2, allow_none=True),
    'model.family': _one_of('glow', 'real_nvp'),
    'model.num_levels': _int(1),
    'model.num_steps': _int(1),
    'model.hidden_channels': _int(1),
    'model.coupling': _one_of('affine', 'additive'),
    'model.permutation': _one_of('lu', 'plain', 'reverse', 'shuffle'),
    'model.split_prior': check_bool,
    'model.log_scale_bound': _number(0, low_open=True),
    'model.scale': _one_of('tanh', 'sigmoid'),
    'model.preprocessing': _optional('centre', 'logit'),
    'model.alpha': lambda name, value: check_number(name, value, 0, 0.5, high_open=True),
    'model.conditional_shape': _conditional_shape,
    'model.learn_top_prior': check_bool,
    'model.dropout_rate': _fraction(),
    'model.dtype': _one_of('float32', 'float64'),
    'train.strategy': _one_of(*STRATEGIES),
    'train.batch_size': _int(1),
    'train.epochs': _int(1),
    'train.optimizer': _one_of('adam', 'adamax'),
    'train.learning_rate': _number(0, low_open=True),
    'train.warmup_steps': _int(0),
    'train.cosine_decay': check_bool,
    'train.weight_decay': _number(0, allow_none=True),
    'train.clip_norm': _number(0, low_open=True, allow_none=True),
    'train.accumulation_steps': _int(1),
    'train.memory_saving': _optional('invert', 'recompute'),
    'train.ema_momentum': _fraction(allow_none=True),
    'train.jit_compile': check_bool,
    'train.mixed_precision': _mixed_precision,
    'train.steps_per_execution': _int(1),
    'train.intra_op_threads': _int(0),
    'train.inter_op_threads': _int(0),
    'train.max_seconds': _number(0, low_open=True, allow_none=True),
    'train.early_stopping_patience': _int(0, allow_none=True),
    'train.sample_temperatures': _temperatures,
    'train.sample_every_epochs': _int(1),
    'dequantizer.kind': _one_of('uniform', 'variational'),
    'dequantizer.num_steps': _int(2),
    'dequantizer.hidden_channels': _int(1),
    'dequantizer.context_channels': _int(0),
    'eval.iw_samples': _int(0),
}

# Fields a run writes into its config.json (from the data), not set by a recipe.
RUN_FIELDS = ('data.event_shape', 'data.num_bins', 'model.conditional_shape')


def _leaves(config, prefix):
    if isinstance(config, ml_collections.ConfigDict):
        config = config.to_dict()
    leaves = {}
    for key, value in config.items():
        path = f'{prefix}{key}'
        if isinstance(value, Mapping | ml_collections.ConfigDict):
            leaves.update(_leaves(value, path + '.'))
        else:
            leaves[path] = value
    return leaves


def field_values(config):
    """{'train.weight_decay': 0.1, ...}: every leaf of a config (or nested dicts) by its key.

    Raises `TypeError` for a `config` that is not a ConfigDict or a dict.
    """
    _check_config(config)
    return _leaves(config, '')


def _check_config(config):
    if not isinstance(config, Mapping | ml_collections.ConfigDict):
        raise TypeError(f'`config` must be an ml_collections.ConfigDict or a dict; got {config!r}.')


def check_config_values(config):
    """Checks every field of `config` that `FIELDS` lists; returns None.

    Args:
      config: an `ml_collections.ConfigDict` (or nested dicts) as from a recipe's
        `get_config()`, possibly with flag overrides.

    Raises:
      ValueError: naming the first field outside its domain, as
        '`config.train.weight_decay` must be None or a finite number >= 0; got -0.5.'
      TypeError: for a `config` that is not a ConfigDict or a dict.
    """
    for key, value in field_values(config).items():
        if key in FIELDS:
            FIELDS[key](f'config.{key}', value)


def unchecked_keys(config):
    """The leaf keys of `config` that `FIELDS` does not list (a new field without a check)."""
    return sorted(set(field_values(config)) - set(FIELDS))


def check_config(config):
    """Checks every field of `config` (`check_config_values`) and the rules joining fields.

    Raises:
      ValueError: naming the first field outside its domain, or the fields that cannot go
        together ('multi_worker' with `max_seconds`: each worker would stop after a different
        batch and the others would wait forever; a `batch_size` that `accumulation_steps`
        does not divide; a `mixed_precision` policy with `model.dtype` float64;
        `eval.iw_samples` for continuous data, a 2-D toy or a CSV table).
      TypeError: for a `config` that is not a ConfigDict or a dict.
    """
    check_config_values(config)
    values = field_values(config)
    batch_size, steps = values.get('train.batch_size'), values.get('train.accumulation_steps')
    if steps is not None and batch_size % steps:
        raise ValueError(
            f'`config.train.accumulation_steps` ({steps}) must divide `config.train.batch_size` '
            f'({batch_size}): each step splits its batch into that many equal micro-batches.'
        )
    from tfp_flows.data import TOY_NAMES  # Here, not at import: it loads TFDS and sklearn.

    name, iw_samples = values.get('data.name'), values.get('eval.iw_samples')
    if iw_samples and isinstance(name, str) and (name in TOY_NAMES or name.startswith('csv:')):
        raise ValueError(
            f'`config.eval.iw_samples` ({iw_samples}) estimates the likelihood of discrete '
            f'images; data {name!r} are continuous: set it to 0.'
        )
    policy, dtype = values.get('train.mixed_precision'), values.get('model.dtype')
    if policy is not None and dtype != 'float32':
        raise ValueError(
            f'`config.train.mixed_precision` ({policy!r}) keeps float32 variables, so it needs '
            f"`config.model.dtype` 'float32'; got {dtype!r}."
        )
    if values.get('train.strategy') == 'multi_worker' and values.get('train.max_seconds'):
        raise ValueError(
            "config.train.max_seconds cannot be used with strategy 'multi_worker': each worker "
            'would stop after a different batch and the others would wait forever; got '
            f'max_seconds={values["train.max_seconds"]!r}.'
        )
