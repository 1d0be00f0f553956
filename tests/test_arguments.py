"""The argument sweep (issues 10 and 18): every argument of the public API is checked where it
enters, naming it, before any work; every config field is checked by the schema.

SURFACE lists the public modules; each callable of a module's `__all__` (classes with their
public methods) is swept, keyed by its qualified name. Left out, as machinery a user does not
call: the submodules of `bijectors`, `dequantization` and `training` (their public names are
the packages'; `walk`, `backprop`, `base`, `shapes`, `affine`, `caching` and `context` are the
steps' machinery, `training.workarounds` patches Keras), `data`'s sources (reached through
`make_dataset`), `mixed_precision` (the networks' policy helpers; `dtype_policy` is swept
wherever it enters), `checks`, `temporaries`, and `run.cli`, `run.lock`, `run.datasets` and
`run.callbacks` (train.py's steps, given absl's flags and a checked config). Functions named
`check_*` are the checks themselves, swept through the callables that use them; INTERNAL
names the other public names left out, with the reason.

Each parameter has a domain in TABLE, or in BY_NAME for a kind of value with one domain
wherever it enters (a seed is a seed), or a one-line reason it is not checked there. Its bad
values are the POOL's candidates outside the domain: each must be refused with `ValueError`
or `TypeError` naming the argument (backticked), with no variable created and nothing
written. A `Values(domain)` row is an array's: its bad values are the valid array with a bad
number in it; a `Tensor(domain)` row is also checked at run time, as tensors, eagerly and
inside `tf.function`. Valid calls come from `_defaults`. The config sweep draws from the
same POOL for every field of `schema.FIELDS`.
"""

import atexit
import functools
import inspect
import numbers
import os
import re
import shutil
import tempfile
from collections.abc import Mapping

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from ml_collections import ConfigDict

import tfp_flows
from tfp_flows import checks
from tfp_flows.bijectors import ActNorm, FactorOut
from tfp_flows.data import TOY_NAMES
from tfp_flows.dequantization.variational import VariationalDequantizer
from tfp_flows.run import schema
from tfp_flows.training import FlowTrainer

tfb, tfd = tfp.bijectors, tfp.distributions
NAN, INF = float('nan'), float('inf')
EMPTY = inspect.Parameter.empty
SURFACE = (
    'tfp_flows', 'tfp_flows.bijectors', 'tfp_flows.networks', 'tfp_flows.models',
    'tfp_flows.initialization', 'tfp_flows.dequantization', 'tfp_flows.dequantization.variational',
    'tfp_flows.data', 'tfp_flows.export', 'tfp_flows.training', 'tfp_flows.tools.latent',
    'tfp_flows.tools.pictures', 'tfp_flows.tools.baselines', 'tfp_flows.run.experiment',
    'tfp_flows.run.restore', 'tfp_flows.run.figures', 'tfp_flows.run.schema',
    'tfp_flows.run.workdir',
)  # fmt: skip
LEFT_OUT_MODULES = ('tfp_flows.temporaries',)  # export re-exports its atomic directories.
RUN_STEP = "a step of train.py's run, given values the run made from its checked config"
WALK = "the walk's protocol (bijectors/walk.py): the library calls it with values it made"
KERAS_HOOK = 'a Keras hook: Keras calls it with the values it made'
INTERNAL = {
    **dict.fromkeys(('rerun_from_output', 'walk', 'walk_back', 'run_looped'), WALK),
    **dict.fromkeys(('apply', 'build', 'update_step', 'train_step', 'test_step'), KERAS_HOOK),
    'predict_step': KERAS_HOOK,
    'below_one': 'the float below 1 of a dtype the caller checked',
    'dequantize_with': 'x = (k + u) / B for pixels and noise the caller made and checked',
    'DatasetInfo': 'a record that make_dataset fills with what it checked',
    'Field': "a row of the schema's table (tests/run/test_schema.py checks every row)",
    'Run': 'the record open_run yields',
    'row_grid': 'image_grid of rows the figure commands made',
    'loop_gradients': 'a context manager: checks `on` on entry (tests/test_networks.py)',
    'tap_products': 'a context manager: checks `on` on entry (tests/test_networks.py)',
    'main': 'the command line: argparse and its own flag checks (tests/run/test_figures.py)',
    'train': 'takes the Run of open_run, whose config and workdir it checked',
    **dict.fromkeys(
        ('build_dequantizer', 'build_flow', 'build_optimizer', 'checkpoint_modules', 'data_flow',
         'is_variational', 'placeholder_statistics', 'restore', 'restore_newest_readable',
         'standardize_flow', 'leave_finished', 'read_json', 'write_json', 'rerun_config',
         'write_config', 'written_outputs', 'describe', 'flatten', 'rerun_class'),
        RUN_STEP,
    ),
}  # fmt: skip

# The one pool of candidate values: a parameter's bad values are those outside its domain.
POOL = (None, True, 'x', '', 'float16', -1, 0, 1, 2, 2.0, 0.5, 1.5, 2**31, NAN, INF, (), (0,),
        (2, 2))  # fmt: skip


def _domain(description, contains):
    """A `checks.Domain` for a kind of value the library has no domain object for."""

    def safe(value):
        try:
            return bool(contains(value))
        except (TypeError, ValueError, IndexError):
            return False

    return checks.Domain(description, safe)


def _shape(ranks=None):
    return _domain('a shape', lambda v: checks.check_shape('shape', v, ranks) is not None)


class Values:
    """A domain of the values of an array: the valid array with a bad number in it."""

    def __init__(self, domain):
        self.domain = domain


class Tensor(Values):
    """A domain of values checked at run time too, as tensors, eagerly and in `tf.function`."""


POSITIVE, NON_NEGATIVE, SEED = checks.POSITIVE_INT, checks.NON_NEGATIVE_INT, checks.SEED
TEXT = _domain('a non-empty str', lambda v: isinstance(v, str) and v != '')
PATH = _domain('a str or a path', lambda v: isinstance(v, str | os.PathLike))
NONE = _domain('None here: an unconditional flow, uniform noise, the default', lambda v: v is None)
PAIR = _domain(
    'a stateless seed [2]', lambda v: len(v) == 2 and all(map(checks.integer().contains, v))
)
NUMBERS = _domain('finite numbers', lambda v: len(v) > 0 and all(map(checks.number().contains, v)))
TEMPERATURES = _domain('numbers > 0', lambda v: NUMBERS.contains(v) and min(v) > 0)
FINITE = Tensor(checks.number())
SPLIT = checks.one_of('train', 'validation', 'test')
PIXEL = _domain('a pixel of 17 levels', lambda v: v in range(17))
NUMPY_PIXELS = Values(PIXEL)  # NumPy functions: no tensors.
NAME = 'a name scope: TensorFlow checks it'
DATA = "data: the flow's steps check its dtype and shape, and its values under validate_args"
KERAS = "Keras' own argument: Keras checks it"
STATELESS = _domain('a stateless seed', lambda v: v is None or PAIR.contains(v))
ARRAY = _domain('an array of the shape the call needs (no candidate is one)', lambda v: False)

# A kind of value with one domain wherever it enters; TABLE says where a callable differs.
BY_NAME = {
    'flow': _domain('a flow', lambda v: isinstance(v, tfd.Distribution)), 'seed': SEED,
    'dtype': _domain('a float dtype', lambda v: tf.as_dtype(v) in (tf.float32, tf.float64)),
    'dtype_policy': _domain('a policy', lambda v: v in (None, 'mixed_bfloat16', 'mixed_float16')),
    'validate_args': checks.BOOL, 'name': NAME, 'num_bins': checks.integer(2),
    'hidden_channels': POSITIVE, 'log_scale_bound': checks.POSITIVE_NUMBER,
    'residual_blocks': NON_NEGATIVE,
    'dropout_rate': checks.FRACTION, 'conditional_input': NONE, 'dequantizer': NONE,
    'conditional_shape': _domain(
        'a context shape', lambda v: v is None or POSITIVE.contains(v) or _shape().contains(v)),
    'temperature': Tensor(checks.POSITIVE_NUMBER), 'temperatures': TEMPERATURES,
    'event_shape': _shape(), 'workdir': PATH, 'path': PATH, 'export_dir': PATH.or_none(),
    'num_samples': POSITIVE, 'num_per_class': POSITIVE, 'jit_compile': checks.BOOL,
    'overwrite': checks.BOOL, 'labels': checks.BOOL, 'conditional': checks.BOOL,
    'separator': NON_NEGATIVE, 'image_size': POSITIVE.or_none(), 'data_dir': PATH.or_none(),
    'bijector_kwargs': "flow.log_prob's kwargs (a dict): the flow's steps check each",
    'x': DATA, 'strengths': NUMBERS,
    'config': _domain('a config', lambda v: isinstance(v, Mapping | ConfigDict)),  # Fields: below
    'pixels': Tensor(PIXEL),
}  # fmt: skip
MODEL = {
    'event_shape': _shape((3,)), 'num_levels': POSITIVE, 'num_steps': POSITIVE,
    'split_prior': checks.BOOL, 'scale': checks.one_of('tanh', 'sigmoid'),
    'preprocessing': checks.one_of('centre', 'logit').or_none(),
    'alpha': checks.number(0, 0.5, high_open=True), 'learn_top_prior': checks.BOOL,
    'coupling': checks.one_of('affine', 'additive', 'spline', 'logistic_mixture'),
    'spline_bound': checks.POSITIVE_NUMBER,
    'spline_bins': checks.integer(2, 1000),
    'mixture_components': checks.integer(1, 1000),
}  # fmt: skip
COUPLING = {
    'event_shape': _shape((1, 3)), 'mask': checks.one_of('channel', 'checkerboard'),
    'flip': checks.BOOL,
    'conditioner_fn': _domain('None or a callable', lambda v: v is None or callable(v)),
}  # fmt: skip
SAMPLE_SEED = _domain('a seed', lambda v: v is None or SEED.contains(v) or PAIR.contains(v))
SAMPLE_SHAPE = _domain('ints >= 0', lambda v: all(map(NON_NEGATIVE.contains, np.ravel(v))))
SAMPLE = {'sample_shape': Tensor(SAMPLE_SHAPE), 'seed': SAMPLE_SEED}
IW = {'seed': _domain('a seed', lambda v: SEED.contains(v) or PAIR.contains(v)),
      'num_samples': Tensor(POSITIVE)}  # fmt: skip
PAIR_OF_SIZES = _domain('two sizes', lambda v: len(v) == 2 and all(map(POSITIVE.contains, v)))
OPTIMIZER = {'learning_rate': checks.POSITIVE_NUMBER, 'beta_1': checks.FRACTION,
             'beta_2': checks.FRACTION, 'epsilon': checks.POSITIVE_NUMBER}  # fmt: skip

# fmt: off
TABLE = {
    'glow': {**MODEL, 'permutation': checks.one_of('lu', 'plain', 'reverse', 'shuffle'),
             'loop': checks.BOOL.or_none()},
    'real_nvp': {**MODEL, 'event_shape': _domain('[H, W, C] or [D], D >= 2', lambda v: _shape(
        (3,)).contains(v) or (_shape((1,)).contains(v) and v[0] >= 2))},
    'sample': SAMPLE, 'sample_latent': SAMPLE, 'initialize': {'data': FINITE},
    'bits_per_dim': {'log_prob': 'log-densities: a NaN passes on, so that training stops on it',
                     'num_dims': POSITIVE},
    'uniform_dequantize': {'seed': STATELESS}, 'dequantize': {'seed': STATELESS},
    'dequantized_bits_per_dim': {'seed': STATELESS},
    'importance_weighted_log_likelihood': IW, 'importance_weighted_bits_per_dim': IW,
    'conditional_shape_of': {'flow': "any flow or bijector, this package's or TFP's"},
    'ActNorm': {'num_channels': POSITIVE, 'min_std': checks.POSITIVE_NUMBER},
    'ActNorm.initialize': {'y': FINITE},
    'ActNorm.initialize_from_moments': {'mean': FINITE, 'variance': Tensor(checks.number(0))},
    'FlowBijector.forward_and_log_det': {'event_ndims': POSITIVE.or_none()},
    'FlowBijector.inverse_and_log_det': {'y': DATA, 'event_ndims': POSITIVE.or_none()},
    'FlowBijector.inverse': {'y': DATA},
    'FlowBijector.forward_log_det_jacobian': {'event_ndims': "TFP's own check (Bijector)"},
    'FlowBijector.inverse_log_det_jacobian': {'y': DATA,
                                              'event_ndims': "TFP's own check (Bijector)"},
    'AffineCoupling': {**COUPLING, 'scale': MODEL['scale']}, 'AdditiveCoupling': COUPLING,
    'SplineCoupling': {**COUPLING, 'bound': checks.POSITIVE_NUMBER,
                       'num_bins': checks.integer(2, 1000)},
    'LogisticMixtureCoupling': {**COUPLING, 'mixture_components': MODEL['mixture_components']},
    'Chain': {'steps': _domain('bijectors', lambda v: len(v) > 0), 'event_ndims': POSITIVE},
    'Loop': {'steps': _domain('K lists of bijectors', lambda v: len(v) > 0 and all(
        isinstance(s, list) and s and isinstance(s[0], tfb.Bijector) for s in v)),
             'event_ndims': POSITIVE},
    'FactorOut': {'event_shape': _domain('[H, W, C], C >= 2', lambda v: _shape((3,)).contains(v)
                                         and v[2] >= 2),
                  'inner': _domain('a bijector', lambda v: isinstance(v, tfb.Bijector)),
                  'split_prior': checks.BOOL, 'hidden_channels': POSITIVE.or_none()},
    'FactorOut.split': {'y': DATA},
    'InvertibleConv1x1': {'num_channels': POSITIVE},
    'LUInvertibleConv1x1': {'num_channels': POSITIVE},
    'LearnedPrior': {'learned': checks.BOOL}, 'LogitTransform': {'alpha': MODEL['alpha']},
    'ConvNet': {'input_channels': POSITIVE, 'output_channels': POSITIVE},
    'DenseNet': {'input_size': POSITIVE, 'output_size': POSITIVE, 'hidden_units': POSITIVE,
                 'num_hidden_layers': POSITIVE},
    'ZeroConv': {'input_channels': POSITIVE, 'output_channels': POSITIVE},
    'ZeroDense': {'input_size': POSITIVE, 'output_size': POSITIVE},
    'VariationalDequantizer': {'event_shape': _shape((3,)), 'num_steps': checks.integer(2),
                               'context_channels': NON_NEGATIVE},
    'VariationalDequantizer.sample_and_log_prob': {'seed': STATELESS},
    'VariationalDequantizer.noise_and_log_prob': {
        'base_noise': 'a draw of the Logistic base: any reals; the couplings check its shape'},
    'VariationalDequantizer.log_prob': {'noise': 'any values: outside (0, 1) or NaN is -inf'},
    'load_digits': {'split': SPLIT}, 'load_images': {'name': TEXT, 'split': TEXT},
    'make_dataset': {'name': TEXT, 'split': SPLIT, 'batch_size': POSITIVE, 'shuffle': checks.BOOL,
                     'seed': SEED.or_none(), 'epoch': NONE,
                     'augment': checks.one_of('flip').or_none(),
                     'drop_remainder': checks.BOOL, 'dequantize': checks.BOOL, 'columns': NONE,
                     'context_columns': NONE},
    'toy_2d': {'name': checks.one_of(*TOY_NAMES)},
    'FlowModule': {'num_bins': checks.integer(2).or_none()},
    'export_saved_model': {'num_bins': checks.integer(2).or_none()},
    'FlowTrainer': {'num_bins': checks.integer(2).or_none(),
                    'clip_norm': checks.POSITIVE_NUMBER.or_none(),
                    'accumulation_steps': POSITIVE, 'dropout_seed': SEED.or_none(),
                    'memory_saving': checks.one_of('invert', 'recompute').or_none(),
                    'dequantization_seed': SEED},
    'FlowTrainer.compile': {'optimizer': "Keras' compile resolves it and refuses what it cannot",
                            'steps_per_execution': POSITIVE},
    'FlowTrainer.per_example_loss': {'base_noise': "a draw of the dequantizer's base (unused "
                                                    'without one): its couplings check it'},
    'FlowTrainer.fit': dict.fromkeys(('x', 'y', 'batch_size', 'epochs', 'verbose'), KERAS),
    'FlowTrainer.make_train_function': {'force': KERAS},
    'FlowTrainer.evaluate': dict.fromkeys(('x', 'y', 'batch_size', 'verbose'), KERAS),
    'FlowTrainer.predict': dict.fromkeys(('x', 'batch_size', 'verbose'), KERAS),
    'FusedAdam': OPTIMIZER, 'FusedAdamax': OPTIMIZER,
    'make_optimizer': {**OPTIMIZER, 'name': checks.one_of('adam', 'adamax'),
                       'warmup_steps': NON_NEGATIVE, 'decay_steps': POSITIVE.or_none(),
                       'weight_decay': checks.number(0).or_none(),
                       'ema_momentum': checks.FRACTION.or_none()},
    'make_strategy': {'name': checks.one_of('auto', 'one_device', 'mirrored', 'multi_worker')},
    'configure_threads': {'intra_op_threads': NON_NEGATIVE, 'inter_op_threads': NON_NEGATIVE},
    'class_directions': {'labels': ARRAY,
                         'num_classes': checks.integer(2), 'batch_size': POSITIVE},
    'class_samples': {'num_classes': POSITIVE, 'seed': SAMPLE_SEED},
    'interpolate': {'x_start': DATA, 'x_end': 'checked to have the shape of x_start',
                    'num_points': checks.integer(2), 'path': checks.one_of('linear', 'spherical')},
    'move': {'direction': "an array: checked against the latent's shape, naming both"},
    'temperature_sweep': {'seed': SAMPLE_SEED},
    'density_figure': {'log_prob_fn': _domain('a callable', callable),
                       'points': ARRAY,
                       'points_label': _domain('a str', lambda v: isinstance(v, str)),
                       'extent': checks.POSITIVE_NUMBER.or_none(), 'resolution': POSITIVE,
                       'axis_names': _domain('two strs', lambda v: isinstance(v, tuple | list)
                                             and len(v) == 2
                                             and all(isinstance(n, str) for n in v)).or_none()},
    'image_grid': {'images': ARRAY,
                   'num_columns': POSITIVE.or_none(), 'scale': POSITIVE.or_none()},
    'labelled_panels': {'pictures': ARRAY, 'titles': ARRAY, 'margin': NON_NEGATIVE,
                        'gap': NON_NEGATIVE, 'title_height': NON_NEGATIVE},
    'sample_figure': {'num_samples': POSITIVE, 'num_columns': POSITIVE},
    'upscale_factor': {'image_shape': PAIR_OF_SIZES, 'grid_shape': PAIR_OF_SIZES},
    'write_png': {'picture': ARRAY},
    'histogram_baseline': {**dict.fromkeys(('train', 'validation', 'test'), NUMPY_PIXELS),
                           'pseudocounts': TEMPERATURES},
    'pixel_histogram_bits_per_dim': {'log_probs': 'the output of pixel_histogram_log_probs',
                                     'pixels': NUMPY_PIXELS},
    'pixel_histogram_log_probs': {'pseudocount': checks.POSITIVE_NUMBER, 'pixels': NUMPY_PIXELS},
    'train_and_evaluate': {'strategy': NONE, 'verbose': "passed on to Keras' fit, which checks it"},
    'restore_flow': {'which': checks.one_of('best', 'latest')},
    'restore_flow_and_dequantizer': {'which': checks.one_of('best', 'latest')},
    'run_figure': {'temperatures': TEMPERATURES.or_none(), 'seed': SEED.or_none()},
    'latent_figures': {'num_examples': checks.integer(12)},
}
# fmt: on


_EXPORT_DIR = tempfile.mkdtemp(prefix='tfp_flows_test_arguments_')  # Empty after each refusal.
atexit.register(shutil.rmtree, _EXPORT_DIR, ignore_errors=True)
_OUT = functools.partial(os.path.join, _EXPORT_DIR)


@functools.cache
def _vector():
    return tfp_flows.real_nvp((2,), num_steps=1, hidden_channels=4)


@functools.cache
def _image(conditional_shape=None):
    shape = dict(event_shape=(4, 4, 1), conditional_shape=conditional_shape)
    return tfp_flows.glow(**shape, num_levels=1, num_steps=1, hidden_channels=4)


@functools.cache
def _instance(cls):
    """The object whose methods are called: built once, before any guarded call."""
    return {
        'ActNorm': lambda: ActNorm(2),
        'FlowBijector': lambda: ActNorm(2),
        'FactorOut': lambda: FactorOut((2, 2, 2), tfb.Identity()),
        'VariationalDequantizer': lambda: VariationalDequantizer((4, 4, 1), 17, 2, 4, 0),
        'FlowTrainer': lambda: FlowTrainer(_vector()),
    }[cls]()


def _failing_config():
    """A valid config whose run fails at once after the checks, reading a missing table."""
    config = schema.default_config()
    config.data.name = 'csv:' + _OUT('missing.csv')
    return config


# fmt: off
def _defaults(key):
    """Valid keyword arguments of the callable `key`; a method's include `self`."""
    vectors, pixels = np.zeros([2, 2], np.float32), np.zeros([1, 4, 4, 1], np.int64)
    images = dict(flow=_image(), dequantizer=None, pixels=pixels, num_bins=17)
    model = dict(event_shape=(4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4)
    sample, vector = dict(flow=_vector(), sample_shape=2, seed=1), dict(flow=_vector(), x=vectors)
    run, no_run = dict(config=_failing_config(), workdir=_OUT('run')), dict(workdir=_OUT('none'))
    noise = np.full([1, 4, 4, 1], 0.5, np.float32)
    method = dict(self=_instance(key.split('.')[0])) if '.' in key else {}
    return method | {
        'glow': model, 'real_nvp': model, 'sample': sample, 'sample_latent': sample,
        'initialize': dict(flow=_vector(), data=vectors),
        'conditional_shape_of': dict(flow=_vector()),
        'bits_per_dim': dict(log_prob=0.0, num_dims=4, num_bins=17),
        'uniform_dequantize': dict(pixels=[[0, 16]], num_bins=17),
        'dequantize': dict(pixels=[[0, 16]], num_bins=17), 'dequantized_bits_per_dim': images,
        'importance_weighted_log_likelihood': dict(images, num_samples=2, seed=0),
        'importance_weighted_bits_per_dim': dict(images, num_samples=2, seed=0),
        'ActNorm': dict(num_channels=2), 'ActNorm.initialize': dict(y=np.ones([2, 2], np.float32)),
        'ActNorm.initialize_from_moments': dict(mean=np.zeros(2), variance=np.ones(2)),
        'FlowBijector.forward_and_log_det': dict(x=vectors),
        'FlowBijector.inverse_and_log_det': dict(y=vectors),
        'AffineCoupling': dict(event_shape=(4,), hidden_channels=4),
        'AdditiveCoupling': dict(event_shape=(4,), hidden_channels=4),
        'SplineCoupling': dict(event_shape=(4,), hidden_channels=4),
        'LogisticMixtureCoupling': dict(event_shape=(4,), hidden_channels=4),
        'Centre': dict(event_shape=(4,)), 'LogitTransform': dict(event_shape=(4,)),
        'Chain': dict(steps=[tfb.Identity()], event_ndims=1),
        'Loop': dict(steps=[[tfb.Identity()]], event_ndims=1),
        'FactorOut': dict(event_shape=(2, 2, 2), inner=tfb.Identity()),
        'FactorOut.split': dict(y=np.zeros([1, 2, 2, 2], np.float32)),
        'InvertibleConv1x1': dict(num_channels=2), 'LUInvertibleConv1x1': dict(num_channels=2),
        'LearnedPrior': dict(event_shape=(2, 2, 2)),
        'ConvNet': dict(input_channels=1, output_channels=2, hidden_channels=4),
        'DenseNet': dict(input_size=1, output_size=2),
        'ZeroDense': dict(input_size=1, output_size=2),
        'ZeroConv': dict(input_channels=1, output_channels=2),
        'VariationalDequantizer': dict(event_shape=(4, 4, 1), num_bins=17, num_steps=2,
                                       hidden_channels=4),
        'VariationalDequantizer.context': dict(pixels=pixels),
        'VariationalDequantizer.sample_and_log_prob': dict(pixels=pixels, seed=[1, 2]),
        'VariationalDequantizer.noise_and_log_prob': dict(pixels=pixels, base_noise=noise),
        'VariationalDequantizer.log_prob': dict(pixels=pixels, noise=noise),
        'load_digits': dict(split='train'),
        'load_images': dict(name='no_such_dataset', split='train', data_dir=_OUT('tfds')),
        'make_dataset': dict(name='moons', split='test', batch_size=8, shuffle=False),
        'toy_2d': dict(name='moons', num_samples=4, seed=0),
        'FlowModule': dict(flow=_vector()),
        'export_saved_model': dict(flow=_vector(), path=_OUT('model')),
        'FlowTrainer': dict(flow=_vector()),
        'FlowTrainer.compile': dict(optimizer=keras.optimizers.SGD()),
        'FlowTrainer.per_example_loss': dict(x=vectors),
        'class_directions': dict(vector, labels=np.array([0, 1]), num_classes=2),
        'class_sample_figure': dict(flow=_image((2,)), num_bins=17, temperatures=(1.0,), seed=0),
        'class_samples': dict(flow=_image((2,)), num_classes=2, num_per_class=1),
        'interpolate': dict(flow=_vector(), x_start=vectors, x_end=vectors),
        'move': dict(vector, direction=np.zeros([2], np.float32), strengths=(1.0,)),
        'temperature_sweep': dict(flow=_vector(), temperatures=(1.0,), num_samples=2, seed=0),
        'density_figure': dict(log_prob_fn=lambda x: tf.zeros([len(x)]), points=np.zeros([4, 2])),
        'image_grid': dict(images=np.zeros([2, 4, 4, 1])),
        'labelled_panels': dict(pictures=[np.zeros([4, 4, 3], np.uint8)], titles=['t']),
        'sample_figure': dict(flow=_image(), num_bins=17, temperatures=(1.0,), seed=0),
        'upscale_factor': dict(image_shape=(8, 8), grid_shape=(2, 2)),
        'write_png': dict(path=_OUT('picture.png'), picture=np.zeros([4, 4, 1], np.uint8)),
        'histogram_baseline': dict(train=[[0, 16]], validation=[[1, 2]], test=[[1, 2]],
                                   num_bins=17),
        'pixel_histogram_bits_per_dim': dict(log_probs=np.full([2, 17], -3.0), pixels=[[0, 1]]),
        'pixel_histogram_log_probs': dict(pixels=[[0, 16]], num_bins=17),
        'train_and_evaluate': run, 'open_run': run, 'restore_flow': no_run,
        'restore_flow_and_dequantizer': no_run, 'run_figure': no_run, 'latent_figures': no_run,
    }.get(key, {})
# fmt: on


@functools.cache
def _surface(with_internal=False):
    """{key: callable} of SURFACE, keyed by qualified name ('ActNorm.initialize')."""
    found = {}
    for module_name in SURFACE:
        module = __import__(module_name, fromlist=['__all__'])
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj) or isinstance(obj, type) and issubclass(obj, BaseException):
                continue
            if name.startswith('check_') or obj.__module__ in LEFT_OUT_MODULES:
                continue
            assert found.setdefault(obj.__qualname__, obj) is obj, f'two {obj.__qualname__}'
            ours = [c for c in getattr(obj, '__mro__', ()) if c.__module__.startswith('tfp_flows')]
            for attribute, member in [item for c in ours for item in vars(c).items()]:
                if inspect.isfunction(member) and not attribute.startswith('_'):
                    found[member.__qualname__] = member
    return {k: v for k, v in found.items() if with_internal or k.split('.')[-1] not in INTERNAL}


def _parameters(obj):
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(obj).parameters.values()
    return [p.name for p in parameters if p.kind in kinds and p.name != 'self']


def _entry(key, name):
    return TABLE.get(key, {}).get(name, BY_NAME.get(name))


def _rows(kind=object):
    """pytest params (key, name) of every parameter with a domain that is a `kind`."""
    surface = _surface()
    return [
        pytest.param(key, name, id=f'{key}-{name}')
        for key in sorted(surface)
        for name in _parameters(surface[key])
        if isinstance(_entry(key, name), kind) and not isinstance(_entry(key, name), str)
    ]


def _bad_values(key, name, tensor=False):
    """The pool's values outside the domain of `name`; for a `Values` row whose valid value is
    an array (or for `tensor`), that value with each bad number as its first element."""
    entry = _entry(key, name)
    domain = entry.domain if isinstance(entry, Values) else entry
    bad = [v for v in POOL if not domain.contains(v)]
    parameter = inspect.signature(_surface()[key]).parameters[name]
    valid = _defaults(key).get(name, parameter.default)
    if not isinstance(entry, Values) or (np.ndim(valid) == 0 and not tensor):
        return bad
    bad = [v for v in bad if isinstance(v, numbers.Real) and not isinstance(v, bool)]
    arrays = [np.array(valid, np.float32 if isinstance(v, float) else None) for v in bad]
    for array, value in zip(arrays, bad, strict=True):
        array.flat[0] = value
    return [tf.constant(a) if tensor else a for a in arrays]


def _named(error, name):
    """Whether the message of `error` names the argument `name` (backticked)."""
    return re.search(rf'`{re.escape(name)}[`.\[]', str(error)) is not None


def _call(key, name, value):
    """Calls `key` with valid arguments but `name=value`. Returns what went wrong: '' if the
    value was refused naming it, with no variable created and nothing written."""
    created = []

    def creator(next_creator, **kwargs):
        created.append(kwargs.get('name'))
        return next_creator(**kwargs)

    arguments = {**_defaults(key), name: value}
    try:
        with tf.variable_creator_scope(creator):
            result = _surface()[key](**arguments)
            if hasattr(result, '__enter__'):  # open_run: its checks run on entering.
                with result:
                    pass
        problem = 'accepted'
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
        at_run_time = isinstance(error, tf.errors.InvalidArgumentError)  # For arrays' values.
        named = _named(error, name) and (isinstance(_entry(key, name), Values) or not at_run_time)
        problem = '' if named else f'{type(error).__name__}: {error}'
    except Exception as error:  # noqa: BLE001 (any other error is a finding too)
        problem = f'{type(error).__name__}: {error}'
    written = os.listdir(_EXPORT_DIR)
    for entry in written:
        shutil.rmtree(_OUT(entry), ignore_errors=True)
    if not problem and (created or written):
        problem = f'refused after creating variables {created} and writing {written}'
    return problem[:200]


def test_every_parameter_of_the_public_api_has_a_domain_or_a_reason():
    surface = _surface()
    missing = [
        f'{k}({n})' for k, obj in surface.items() for n in _parameters(obj) if not _entry(k, n)
    ]
    known = {key.split('.')[-1] for key in _surface(with_internal=True)}
    stale = [f'{k}({n})' for k, names in TABLE.items() for n in names
             if k not in surface or n not in _parameters(surface[k])]  # fmt: skip
    stale += [f'{name}()' for name in INTERNAL if name not in known]
    assert not missing, f'parameters without a domain or a reason: {missing}'
    assert not stale, f'entries of parameters or callables that do not exist: {stale}'
    for key in {param.values[0] for param in _rows()}:  # A valid call for every swept row.
        signature = inspect.signature(surface[key]).parameters
        required = {n for n in _parameters(surface[key]) if signature[n].default is EMPTY}
        assert required <= set(_defaults(key)), key


@pytest.mark.parametrize(('key', 'name'), _rows())
def test_a_bad_value_is_refused_naming_it_before_any_work(key, name):
    problems = {repr(value): _call(key, name, value) for value in _bad_values(key, name)}
    assert not {value: problem for value, problem in problems.items() if problem}


@pytest.mark.parametrize(('key', 'name'), _rows(Tensor))
def test_a_bad_tensor_is_refused_naming_it_eagerly_and_inside_tf_function(key, name):
    arguments = {k: v for k, v in _defaults(key).items() if k != name}
    function = functools.partial(_surface()[key], **arguments)
    traced = tf.function(function)  # Traced once per dtype of the bad tensors.
    for tensor in _bad_values(key, name, tensor=True):
        for fn in (function, traced):
            with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError)) as error:
                fn(**{name: tensor})
            assert _named(error.value, name), (tensor, str(error.value)[:300])


def _config_with(key, value):
    """The default config as nested dicts, with the field `key` set to `value`."""
    values = schema.default_config().to_dict()
    *sections, leaf = key.split('.')
    functools.reduce(dict.__getitem__, sections, values)[leaf] = value
    return values


@pytest.mark.parametrize('key', sorted(schema.FIELDS))
def test_a_config_field_refuses_the_pools_bad_values_and_takes_its_good_ones(key):
    """Recipes inside the schema, its rerun classes and docs: tests/run/test_schema.py."""
    domain = schema.FIELDS[key].domain
    for value in POOL:
        if not domain.contains(value):
            with pytest.raises(ValueError, match=rf'`config\.{re.escape(key)}` must be'):
                schema.check_config(_config_with(key, value))
            continue
        try:  # A good value may still break a rule joining fields, which says so.
            checked = schema.flatten(schema.check_config(_config_with(key, value)))
            assert checked[key] == domain.convert(value), (key, value)
        except ValueError as error:
            assert f'`config.{key}` must be' not in str(error), (key, value)


def test_a_refused_initialize_leaves_every_actnorm_uninitialised():
    flow = tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=4)
    bad = tf.constant([[NAN, 0.0], [1.0, 2.0]])
    for initialize in (tfp_flows.initialize, tf.function(tfp_flows.initialize)):
        with pytest.raises(tf.errors.InvalidArgumentError, match='`data` must be finite'):
            initialize(flow, bad)
    flags = [v for v in flow.variables if 'initialized' in v.name]
    assert len(flags) == 2 and not any(bool(v.numpy()) for v in flags)
    assert all(np.all(v.numpy() == 0) for v in flow.trainable_variables if 'act_norm' in v.name)


def test_handed_cases_of_issue_10_are_refused():
    flow = _vector()
    # sample(flow, 2, temperature=float('inf')) returned non-finite samples.
    with pytest.raises(ValueError, match=r'`temperature` must be a finite number > 0; got inf\.'):
        tfp_flows.sample(flow, 2, temperature=INF)
    # A vector temperature scaled each coordinate of the latent by its own value.
    with pytest.raises(ValueError, match='`temperature`'):
        tfp_flows.sample(flow, 2, temperature=tf.constant([0.5, 1.0]))
    # A float sample shape drew int(2.5) = 2 samples.
    with pytest.raises(ValueError, match='`sample_shape` must be an int >= 0'):
        tfp_flows.sample(flow, 2.5)
    assert tfp_flows.sample(flow, 2, temperature=tf.constant(0.7), seed=1).shape == [2, 2]
