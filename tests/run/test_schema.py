"""tfp_flows/run/schema.py: one declaration per config field, and what derives from it."""

import ast
import importlib
import pathlib
import re
import subprocess
import sys

import ml_collections
import pytest

from tfp_flows.run import schema

ROOT = pathlib.Path(__file__).parents[2]
RECIPES = sorted(path.stem for path in ROOT.joinpath('configs').glob('[!_]*.py'))

# Field: values outside its domain (a sweep over every field of the schema).
BAD = {
    'seed': ['-1', -1, 2**31, 1.5, None],
    'data.name': [None, '', 3],
    'data.data_dir': ['', 3],
    'data.image_size': [0, -8, 8.0, True],
    'data.splits.train': [None, ''],
    'data.splits.validation': [None, 1],
    'data.splits.test': [None, ''],
    'data.conditional': ['True', 1, None],
    'data.columns': [[], ['x', 'x'], 'x,x', ['x', 3], [''], 'x,,y'],
    'data.context_columns': [(), 'c,c'],
    'data.augment': ['rotate', 'None', 3],
    'model.family': ['maf', None],
    'model.num_levels': [0, -1, 2.0],
    'model.num_steps': [0, True],
    'model.hidden_channels': [0, 64.0],
    'model.residual_blocks': [-1, 1.0, None],
    'model.coupling': ['cubic', None],
    'model.permutation': ['random'],
    'model.loop': ['True', 1, None],
    'model.split_prior': ['False', 0, None],
    'model.log_scale_bound': [0.0, -2.0, float('inf'), float('nan')],
    'model.scale': ['exp', None],
    'model.spline_bins': [1, 8.0, None, 1000],
    'model.spline_bound': [0.0, -3.0, float('inf'), None],
    'model.mixture_components': [0, 4.0, None, 1000],
    'model.preprocessing': ['none', 'None', 3],
    'model.alpha': [0.5, -0.1, float('nan'), None],
    'model.learn_top_prior': ['True', 0],
    'model.dropout_rate': [1.0, -0.1, float('nan'), None, True],
    'model.dtype': ['float16', None],
    'dequantizer.kind': ['flow++', None],
    'dequantizer.num_steps': [1, 0, 4.0],
    'dequantizer.hidden_channels': [0, 32.0],
    'dequantizer.context_channels': [-1, 8.0, None],
    'train.strategy': ['tpu'],
    'train.batch_size': [0, 64.0],
    'train.epochs': [0, -5],
    'train.optimizer': ['sgd'],
    'train.learning_rate': [0.0, -1e-3, float('nan'), float('inf'), '1e-3'],
    'train.warmup_steps': [-1, 10.5],
    'train.cosine_decay': ['yes', 1],
    'train.weight_decay': [-0.5, float('inf'), float('nan')],
    'train.clip_norm': [0.0, -1.0, float('inf')],
    'train.accumulation_steps': [0, 2.0, None],
    'train.memory_saving': ['checkpoint', True],
    'train.ema_momentum': [1.0, -0.5, float('nan'), '0.9'],
    'train.jit_compile': ['False'],
    'train.mixed_precision': ['float16', 'mixed_int8', True],
    'train.steps_per_execution': [0, 8.0],
    'train.intra_op_threads': [-1, 1.0],
    'train.inter_op_threads': [-2],
    'train.max_seconds': [0.0, -10.0, float('inf')],
    'train.early_stopping_patience': [-1, 2.5],
    'train.sample_temperatures': [(), (0.7, float('inf')), (0.0,), 0.7, 'hot'],
    'train.sample_every_epochs': [0, -1],
    'train.export': ['False', 0, None],
    'eval.iw_samples': [-1, 1.5, None],
}


def _recipe(name):
    return importlib.import_module(f'configs.{name}').get_config()


def _with_value(key, value):
    """The default config as nested dicts, with `key` set to `value`."""
    values = schema.default_config().to_dict()
    *sections, leaf = key.split('.')
    node = values
    for section in sections:
        node = node[section]
    node[leaf] = value
    return values


@pytest.mark.parametrize('recipe', RECIPES)
def test_every_recipes_first_docstring_line_is_a_sentence(recipe):
    # `train.py --help` lists each recipe by it (two cut mid-sentence: a newcomer's finding).
    summary = ast.get_docstring(ast.parse((ROOT / 'configs' / f'{recipe}.py').read_text()))
    first, _, rest = summary.partition('\n')
    assert first.endswith('.') and len(first) <= 100 and (not rest or rest.startswith('\n'))


@pytest.mark.parametrize('recipe', RECIPES)
def test_every_recipe_is_inside_the_schema(recipe):
    config = _recipe(recipe)
    assert set(schema.flatten(config)) == set(schema.FIELDS)
    checked = schema.check_config(config)
    assert schema.flatten(checked) == schema.flatten(config)
    assert checked is not config


def test_affine_digits_is_the_schemas_defaults_locked_and_typed():
    config = _recipe('affine_digits')
    assert schema.flatten(config) == {k: f.default for k, f in schema.FIELDS.items()}
    with pytest.raises(AttributeError):
        config.train.epoch = 3  # Locked: a misspelt field is no new field.
    with pytest.raises(TypeError):
        config.train.epochs = 1.5  # Typed: ml_collections does the type half.
    config.model.preprocessing = None  # A field whose domain takes None takes it.
    config.train.max_seconds = 60.0


def test_every_field_has_bad_values_in_the_sweep_and_a_doc():
    assert set(BAD) == set(schema.FIELDS)
    for key, field in schema.FIELDS.items():
        assert field.doc and field.rerun in (schema.RUN, schema.TRAINING, schema.FREE), key
        assert field.domain.contains(field.default), key


@pytest.mark.parametrize(
    ('key', 'value'), [(key, value) for key, values in BAD.items() for value in values]
)
def test_a_field_outside_its_domain_is_named_with_its_value(key, value):
    message = rf'`config\.{re.escape(key)}` must be .*; got {re.escape(repr(value))}\.$'
    with pytest.raises(ValueError, match=message):
        schema.check_config(_with_value(key, value))


def test_negative_weight_decay_is_refused():
    # The handed case of issue 10: `--config.train.weight_decay=-0.5` trained.
    config = _recipe('affine_digits')
    config.train.weight_decay = -0.5
    with pytest.raises(
        ValueError,
        match=re.escape(
            '`config.train.weight_decay` must be None or a finite number >= 0; got -0.5.'
        ),
    ):
        schema.check_config(config)
    config.train.weight_decay = None
    assert schema.check_config(config).train.weight_decay is None


def test_checked_values_take_their_fields_types():
    values = _with_value('train.max_seconds', 60)
    values['train']['sample_temperatures'] = [0.5, 1]
    checked = schema.check_config(values)  # Nested dicts, as config.json reads back.
    assert checked.train.max_seconds == 60.0 and isinstance(checked.train.max_seconds, float)
    assert checked.train.sample_temperatures == (0.5, 1.0)
    assert isinstance(checked, ml_collections.ConfigDict)


@pytest.mark.parametrize('config', [None, 3, 'configs/default.py'])
def test_check_config_takes_only_configs(config):
    with pytest.raises(TypeError, match='`config` must be an ml_collections.ConfigDict or a dict'):
        schema.check_config(config)


def test_unknown_and_missing_fields_are_named():
    config = _recipe('affine_digits')
    with config.unlocked():
        config.train.future_option = True
    with pytest.raises(ValueError, match=r"unknown fields \['train\.future_option'\]"):
        schema.check_config(config)
    values = _recipe('affine_digits').to_dict()
    del values['eval']
    with pytest.raises(ValueError, match=r"lacks the fields \['eval\.iw_samples'\]"):
        schema.check_config(values)


@pytest.mark.parametrize(
    ('changes', 'message'),
    [
        ({'train.accumulation_steps': 3}, r'`config.train.accumulation_steps` \(3\) must divide'),
        ({'model.permutation': 'shuffle'}, r"real_nvp uses 'lu', got 'shuffle'"),
        ({'model.loop': True}, r'`config.model.loop` applies to Glow only; real_nvp uses False'),
        (
            {'model.dtype': 'float64', 'train.mixed_precision': 'mixed_bfloat16'},
            r"needs `config.model.dtype` 'float32'; got 'float64'",
        ),
        (
            {'train.strategy': 'multi_worker', 'train.max_seconds': 60.0},
            r"max_seconds` cannot be used with strategy 'multi_worker'.*max_seconds=60\.0",
        ),
        # Each coupling's own options, before any data is read (affine_digits is affine).
        ({'model.spline_bins': 4}, r"`config.model.spline_bins` applies to model.coupling='spl"),
        ({'model.spline_bound': 2.0}, r'`config.model.spline_bound` applies to model.coupling='),
        (
            {'model.mixture_components': 8},
            r"`config.model.mixture_components` applies to model.coupling='logistic_mixture'",
        ),
        (
            {'model.coupling': 'spline', 'model.scale': 'sigmoid'},
            r"`config.model.scale` applies to model.coupling='affine'; got 'sigmoid' with 'spline' "
            r"\(with 'spline', leave it at its default 'tanh': --config.model.scale=tanh\)\.$",
        ),
        (  # The default recipe's logistics with affine couplings: the message says the way out.
            {'model.coupling': 'affine', 'model.mixture_components': 8},
            r"got 8 with 'affine' \(with 'affine', leave it at its default 4: "
            r'--config.model.mixture_components=4\)\.$',
        ),
    ],
)
def test_fields_that_cannot_go_together_are_refused(changes, message):
    config = _recipe('affine_digits')
    config.update_from_flattened_dict(changes)
    with pytest.raises(ValueError, match=message):
        schema.check_config(config)
    alright = {
        'train.accumulation_steps': 4,
        'model.dtype': 'float32',
        'train.max_seconds': None,
        'model.permutation': 'lu',
        'model.loop': False,
        'model.spline_bins': 8,
        'model.spline_bound': 3.0,
        'model.mixture_components': 4,
        'model.scale': 'tanh',
    }
    config.update_from_flattened_dict({k: v for k, v in alright.items() if k in changes})
    schema.check_config(config)


def test_rerun_classes_come_from_the_schema():
    assert schema.rerun_class('train.epochs') == schema.TRAINING
    assert schema.rerun_class('model.hidden_channels') == schema.RUN
    assert schema.rerun_class('train.intra_op_threads') == schema.FREE
    for key in (*schema.RECORDED, 'model.some_future_option'):
        assert schema.rerun_class(key) == schema.RUN


def test_describe_shows_every_field_with_its_class_and_doc():
    config = _recipe('realnvp_moons')
    text = schema.describe(config, 'configs/realnvp_moons.py')
    assert text.startswith('# configs/realnvp_moons.py, with the command line overrides.')
    assert re.search(r"^data\.name +'moons' +\[run\] +'digits', a 2-D toy", text, re.M)
    assert re.search(r'^train\.epochs +15 +\[training\] +Epochs to train\.$', text, re.M)
    assert re.search(r'^train\.intra_op_threads +1 +Threads one op may use', text, re.M)
    assert len([line for line in text.splitlines() if not line.startswith('#')]) == len(
        schema.FIELDS
    )


def test_the_schema_imports_without_tensorflow():
    code = 'import sys, configs.default; assert "tensorflow" not in sys.modules, "imported TF"'
    result = subprocess.run(
        [sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
