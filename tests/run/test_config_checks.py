"""Tests of tfp_flows/run/config_checks.py: every field of every recipe has a checked domain."""

import copy
import importlib
import pathlib
import re

import ml_collections
import pytest

from tfp_flows.run import config_checks
from tfp_flows.run.config_checks import FIELDS, RUN_FIELDS, check_config_values, unchecked_keys

RECIPES = sorted(
    path.stem
    for path in pathlib.Path(__file__).parents[2].joinpath('configs').glob('*.py')
    if path.stem != '__init__'
)

# Field: values outside its domain, and the domain as the message states it.
BAD = {
    'seed': (['-1', -1, 2**31, 1.5, None], 'an int in [0, 2**31)'),
    'data.name': ([None, '', 3], 'a non-empty str'),
    'data.data_dir': (['', 3], 'None or a non-empty str'),
    'data.image_size': ([0, -8, 8.0, True], 'None or a positive int'),
    'data.splits.train': ([None, ''], 'a non-empty str'),
    'data.splits.validation': ([None, 1], 'a non-empty str'),
    'data.splits.test': ([None, ''], 'a non-empty str'),
    'data.conditional': (['True', 1, None], 'True or False'),
    'data.columns': (
        [[], ['x', 'x'], 'x', ['x', 3], ['']],
        'None or a non-empty list of distinct non-empty strs (column names)',
    ),
    'data.context_columns': (
        [(), 'c'],
        'None or a non-empty list of distinct non-empty strs (column names)',
    ),
    'data.augment': (['rotate', 'None', 3], "None or 'flip'"),
    'data.event_shape': ([[8, 0, 1], [8, 8], [8.0, 8, 1]], None),
    'data.num_bins': ([1, 256.0, '256'], 'None or an int >= 2'),
    'model.family': (['maf', None], "one of ('glow', 'real_nvp')"),
    'model.num_levels': ([0, -1, 2.0], 'a positive int'),
    'model.num_steps': ([0, True], 'a positive int'),
    'model.hidden_channels': ([0, 64.0], 'a positive int'),
    'model.coupling': (['spline'], "one of ('affine', 'additive')"),
    'model.permutation': (['random'], "one of ('lu', 'plain', 'reverse', 'shuffle')"),
    'model.split_prior': (['False', 0, None], 'True or False'),
    'model.log_scale_bound': ([0.0, -2.0, float('inf'), float('nan')], 'a finite number > 0'),
    'model.scale': (['exp', None], "one of ('tanh', 'sigmoid')"),
    'model.preprocessing': (['none', 'None', 3], "None or 'centre' or 'logit'"),
    'model.alpha': ([0.5, -0.1, float('nan'), None], 'a number in [0, 0.5)'),
    'model.conditional_shape': ([[], [0], [10.0], 10], 'None or a non-empty list of positive ints'),
    'model.learn_top_prior': (['True', 0], 'True or False'),
    'model.dropout_rate': ([1.0, -0.1, float('nan'), None, True], 'a number in [0, 1)'),
    'model.dtype': (['float16', None], "one of ('float32', 'float64')"),
    'train.strategy': (['tpu'], "one of ('auto', 'one_device', 'mirrored', 'multi_worker')"),
    'train.batch_size': ([0, 64.0], 'a positive int'),
    'train.epochs': ([0, -5], 'a positive int'),
    'train.optimizer': (['sgd'], "one of ('adam', 'adamax')"),
    'train.learning_rate': (
        [0.0, -1e-3, float('nan'), float('inf'), '1e-3'],
        'a finite number > 0',
    ),
    'train.warmup_steps': ([-1, 10.5], 'an int >= 0'),
    'train.cosine_decay': (['yes', 1], 'True or False'),
    'train.weight_decay': ([-0.5, float('inf'), float('nan')], 'None or a finite number >= 0'),
    'train.clip_norm': ([0.0, -1.0, float('inf')], 'None or a finite number > 0'),
    'train.accumulation_steps': ([0, 2.0, None], 'a positive int'),
    'train.memory_saving': (['checkpoint', True], "None or 'invert' or 'recompute'"),
    'train.ema_momentum': ([1.0, -0.5, float('nan'), '0.9'], 'None or a number in [0, 1)'),
    'train.jit_compile': (['False'], 'True or False'),
    'train.mixed_precision': (
        ['float16', 'mixed_int8', True],
        "None, 'mixed_bfloat16' or 'mixed_float16'",
    ),
    'train.steps_per_execution': ([0, 8.0], 'a positive int'),
    'train.intra_op_threads': ([-1, 1.0], 'an int >= 0'),
    'train.inter_op_threads': ([-2], 'an int >= 0'),
    'train.max_seconds': ([0.0, -10.0, float('inf')], 'None or a finite number > 0'),
    'train.early_stopping_patience': ([-1, 2.5], 'None or an int >= 0'),
    'dequantizer.kind': (['flow++', None], "one of ('uniform', 'variational')"),
    'dequantizer.num_steps': ([1, 0, 4.0], 'an int >= 2'),
    'dequantizer.hidden_channels': ([0, 32.0], 'a positive int'),
    'dequantizer.context_channels': ([-1, 8.0, None], 'an int >= 0'),
    'eval.iw_samples': ([-1, 1.5, None], 'an int >= 0'),
    'train.sample_temperatures': (
        [(), (0.7, float('inf')), (0.0,), 0.7, 'hot'],
        'a non-empty list of finite numbers > 0',
    ),
    'train.sample_every_epochs': ([0, -1], 'a positive int'),
}


def _recipe(name):
    return importlib.import_module(f'configs.{name}').get_config()


def _with_value(config, key, value):
    """`config` as nested dicts with `key` set to `value` (a ConfigDict keeps field types)."""
    values = copy.deepcopy(config.to_dict())
    *sections, leaf = key.split('.')
    node = values
    for section in sections:
        node = node.setdefault(section, {})
    node[leaf] = value
    return ml_collections.ConfigDict(values)


@pytest.mark.parametrize('recipe', RECIPES)
def test_every_field_of_every_recipe_has_a_domain_and_the_recipe_is_inside(recipe):
    config = _recipe(recipe)
    assert unchecked_keys(config) == [], (
        f'configs/{recipe}.py has fields without a domain in tfp_flows/run/config_checks.py FIELDS'
    )
    check_config_values(config)


def test_every_domain_is_a_field_and_has_bad_values_here():
    fields = set(config_checks.field_values(_recipe('default'))) | set(RUN_FIELDS)
    assert set(FIELDS) == fields
    assert set(BAD) == set(FIELDS)


@pytest.mark.parametrize(
    ('key', 'value', 'domain'),
    [(key, value, domain) for key, (values, domain) in BAD.items() for value in values],
)
def test_a_field_outside_its_domain_is_named_with_its_value(key, value, domain):
    config = _with_value(_recipe('default'), key, value)
    message = rf'`config\.{re.escape(key)}` must be '
    if domain is not None:
        message += re.escape(f'{domain}; got {value!r}.')
    with pytest.raises(ValueError, match=message):
        check_config_values(config)


def test_negative_weight_decay_is_refused():
    # The handed case of issue 10: `--config.train.weight_decay=-0.5` trained.
    config = _recipe('default')
    config.train.weight_decay = -0.5  # What the flag sets.
    with pytest.raises(
        ValueError,
        match=re.escape(
            '`config.train.weight_decay` must be None or a finite number >= 0; got -0.5.'
        ),
    ):
        check_config_values(config)
    config.train.weight_decay = None
    check_config_values(config)


def test_a_run_config_with_the_fields_it_records_is_inside():
    config = _recipe('default')
    with config.unlocked():
        config.data.event_shape = [8, 8, 1]
        config.data.num_bins = 17
    check_config_values(config)
    check_config_values(config.to_dict())  # config.json, read back as dicts.


def test_a_new_field_without_a_domain_is_reported():
    config = _recipe('default')
    with config.unlocked():
        config.train.future_option = True
    assert unchecked_keys(config) == ['train.future_option']
    check_config_values(config)  # Not refused: the test above is what catches it.


@pytest.mark.parametrize('config', [None, 3, 'configs/default.py'])
def test_check_config_values_takes_only_configs(config):
    with pytest.raises(TypeError, match='`config` must be an ml_collections.ConfigDict or a dict'):
        check_config_values(config)


@pytest.mark.parametrize('name', ['moons', 'csv:/tmp/table.csv'])
def test_check_config_refuses_importance_weighting_on_continuous_data(name):
    config = _recipe('default')
    config.data.name = name
    with pytest.raises(ValueError, match=rf"`config.eval.iw_samples` \(32\) .* data '{name}' are"):
        config_checks.check_config(config)
    config.eval.iw_samples = 0
    config_checks.check_config(config)


def test_check_config_refuses_mixed_precision_with_float64():
    config = _recipe('default')
    config.model.dtype = 'float64'
    config.train.mixed_precision = 'mixed_bfloat16'
    with pytest.raises(ValueError, match=r"needs `config.model.dtype` 'float32'; got 'float64'"):
        config_checks.check_config(config)


def test_check_config_refuses_accumulation_steps_that_do_not_divide_the_batch():
    config = _recipe('default')
    config.train.accumulation_steps = 3
    with pytest.raises(
        ValueError,
        match=re.escape(
            '`config.train.accumulation_steps` (3) must divide `config.train.batch_size` (64)'
        ),
    ):
        config_checks.check_config(config)
    config.train.accumulation_steps = 4
    config_checks.check_config(config)


def test_check_config_refuses_max_seconds_with_multi_worker():
    config = importlib.import_module('configs.default').get_config()
    config.train.strategy = 'multi_worker'
    config.train.max_seconds = 60.0
    with pytest.raises(
        ValueError, match=r"max_seconds cannot be used with strategy 'multi_worker'"
    ):
        config_checks.check_config(config)
    config.train.max_seconds = None
    config_checks.check_config(config)
