"""The domain of every config field, checked before a run does any work.

`check_config` raises `ValueError('config.KEY must be EXPECTED; got VALUE.')` for the first
field outside its domain (`DOMAINS`). A few string fields are checked where they are used,
still before any training: the dataset name and splits by `data.make_dataset`, the model's
option strings by the model builders (`CHECKED_WHERE_USED`). A test keeps both lists
covering every field of the default config.
"""

import math

from tfp_flows.distribute import STRATEGIES, check_thread_count

__all__ = ['CHECKED_WHERE_USED', 'DOMAINS', 'check_config']


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value):
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _optional(domain):
    check, expected = domain
    return (lambda value: value is None or check(value)), f'None or {expected}'


def _one_of(*names):
    return (lambda value: value in names), ' or '.join(repr(name) for name in names)


_POSITIVE_INT = (lambda value: _is_int(value) and value > 0), 'a positive int'
_NON_NEGATIVE_INT = (lambda value: _is_int(value) and value >= 0), 'an int >= 0'
_POSITIVE = (lambda value: _is_finite(value) and value > 0), 'a positive finite number'
_NON_NEGATIVE = (lambda value: _is_finite(value) and value >= 0), 'a finite number >= 0'
_BOOL = (lambda value: isinstance(value, bool)), 'True or False'
_TEMPERATURES = (
    lambda value: (
        isinstance(value, tuple | list) and len(value) > 0 and all(_POSITIVE[0](t) for t in value)
    ),
    'a non-empty tuple of positive finite numbers',
)

# Each field's (predicate, what it must be).
DOMAINS = {
    'seed': _NON_NEGATIVE_INT,
    'data.data_dir': _optional(((lambda value: isinstance(value, str)), 'a path')),
    'data.image_size': _optional(_POSITIVE_INT),
    'model.family': _one_of('glow', 'real_nvp'),
    'model.num_levels': _POSITIVE_INT,
    'model.num_steps': _POSITIVE_INT,
    'model.hidden_channels': _POSITIVE_INT,
    'model.split_prior': _BOOL,
    'model.log_scale_bound': _POSITIVE,
    'model.dtype': _one_of('float32', 'float64'),
    'train.strategy': ((lambda value: value in STRATEGIES), f'one of {STRATEGIES}'),
    'train.batch_size': _POSITIVE_INT,
    'train.epochs': _POSITIVE_INT,
    'train.optimizer': _one_of('adam', 'adamax'),
    'train.learning_rate': _POSITIVE,
    'train.warmup_steps': _NON_NEGATIVE_INT,
    'train.cosine_decay': _BOOL,
    'train.weight_decay': _optional(_NON_NEGATIVE),
    'train.clip_norm': _optional(_POSITIVE),
    'train.jit_compile': _BOOL,
    'train.steps_per_execution': _POSITIVE_INT,
    'train.max_seconds': _optional(_POSITIVE),
    'train.early_stopping_patience': _optional(_POSITIVE_INT),
    'train.sample_temperatures': _TEMPERATURES,
    'train.sample_every_epochs': _POSITIVE_INT,
}
_THREAD_COUNTS = ('train.intra_op_threads', 'train.inter_op_threads')  # check_thread_count.
CHECKED_WHERE_USED = (
    'data.name',  # data.make_dataset: digits, a 2-D toy or a TFDS dataset, with close names.
    'data.splits.train',  # data.make_dataset: the split exists and has examples.
    'data.splits.validation',
    'data.splits.test',
    'model.coupling',  # The model builders: their closed sets of options.
    'model.permutation',
    *_THREAD_COUNTS,
)


def check_config(config):
    """Raises `ValueError` naming the first config field outside its domain, and its value."""
    for key, (check, expected) in DOMAINS.items():
        value = config
        for part in key.split('.'):
            value = value[part]
        if not check(value):
            raise ValueError(f'config.{key} must be {expected}; got {value!r}.')
    for key in _THREAD_COUNTS:
        section, name = key.split('.')
        check_thread_count(f'config.{key}', config[section][name])
    if config.train.strategy == 'multi_worker' and config.train.max_seconds:
        raise ValueError(
            "config.train.max_seconds cannot be used with strategy 'multi_worker': each worker "
            'would stop after a different batch and the others would wait forever; got '
            f'max_seconds={config.train.max_seconds!r}.'
        )
