"""tfp_flows/config_checks.py: every config field has a domain, checked with a clear message."""

import glob
import importlib
import math
import os
import re

import pytest

from configs import default
from tfp_flows import workdir
from tfp_flows.config_checks import CHECKED_WHERE_USED, DOMAINS, check_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = sorted(
    os.path.basename(path)[:-3] for path in glob.glob(os.path.join(ROOT, 'configs', '[!_]*.py'))
)
CANDIDATES = [math.nan, math.inf, -1, 0, 2.5, True, 'text', None, (), (0.7, -1.0)]


def _set(config, key, value):
    """Sets field `key` to `value`; returns the value stored (ConfigDict makes True 1.0)."""
    *sections, name = key.split('.')
    node = config
    for section in sections:
        node = node[section]
    with config.ignore_type():
        node[name] = value
    return node[name]


def test_every_field_has_a_domain_or_is_checked_where_used():
    keys = set(workdir.leaves(default.get_config()))
    assert set(DOMAINS) | set(CHECKED_WHERE_USED) == keys
    assert not set(DOMAINS) & set(CHECKED_WHERE_USED)


@pytest.mark.parametrize('recipe', RECIPES)
def test_every_recipe_passes(recipe):
    check_config(importlib.import_module(f'configs.{recipe}').get_config())


@pytest.mark.parametrize('key', sorted(DOMAINS))
def test_every_value_outside_a_fields_domain_is_refused_by_name(key):
    check, expected = DOMAINS[key]
    refused = 0
    for value in CANDIDATES:
        config = default.get_config()
        value = _set(config, key, value)
        if check(value):
            check_config(config)
            continue
        message = f'config.{key} must be {expected}; got {value!r}.'
        with pytest.raises(ValueError, match=re.escape(message)):
            check_config(config)
        refused += 1
    assert refused >= 5, key  # Each domain turns most of the candidates away.


@pytest.mark.parametrize(
    'key, value, message',
    [
        (
            'train.weight_decay',
            -0.5,
            r'config\.train\.weight_decay must be None or a finite number '
            r'>= 0; got -0\.5\.',
        ),
        (
            'train.learning_rate',
            math.nan,
            r'learning_rate must be a positive finite number; got nan',
        ),
        ('train.epochs', 2.5, r'config\.train\.epochs must be a positive int; got 2\.5\.'),
        ('model.num_levels', 0, r'config\.model\.num_levels must be a positive int; got 0\.'),
        ('train.sample_temperatures', (0.7, -1.0), r'a non-empty tuple of positive finite'),
        ('seed', True, r'config\.seed must be an int >= 0; got True\.'),
        ('train.intra_op_threads', -2, r'intra_op_threads must be an int >= 0 \(0: TF default\)'),
        ('model.family', 'maf', r"config\.model\.family must be 'glow' or 'real_nvp'; got 'maf'"),
    ],
)
def test_the_handed_bad_values_are_refused(key, value, message):
    config = default.get_config()
    _set(config, key, value)
    with pytest.raises(ValueError, match=message):
        check_config(config)
