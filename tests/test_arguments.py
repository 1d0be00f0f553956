"""The argument sweep of issue 10: every argument of the public API is checked on every path.

Every parameter of every public function, class and method of the modules in SURFACE is
listed once here: in BAD (values outside its domain and the one message each gets), in
TENSOR (tensor values, checked at run time eagerly and inside `tf.function`), or in
NOT_CHECKED with the reason. A parameter added later without an entry fails
`test_every_parameter_of_the_public_api_is_listed`. Each bad value must be refused before
any work: no variable is created (and for the export, nothing written).
"""

import atexit
import functools
import importlib
import inspect
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
import tfp_flows.run.cli
from configs import default
from tfp_flows import bijectors, data, dequantization, export, initialization, models, networks
from tfp_flows.data import own as own_data
from tfp_flows.dequantization.variational import VariationalDequantizer
from tfp_flows.run import callbacks, experiment
from tfp_flows.run import restore as run_model
from tfp_flows.run import workdir as workdirs
from tfp_flows.tools import baselines, figures, latent
from tfp_flows.tools import pictures as images
from tfp_flows.training import optimizers, trainer
from tfp_flows.validation import format_value

tfb = tfp.bijectors

SURFACE = (
    'tfp_flows',
    'tfp_flows.bijectors',
    'tfp_flows.run.config_checks',
    'tfp_flows.data',
    'tfp_flows.dequantization',
    'tfp_flows.dequantization.variational',
    'tfp_flows.tools.baselines',
    'tfp_flows.training.distribute',
    'tfp_flows.export',
    'tfp_flows.tools.figures',
    'tfp_flows.tools.pictures',
    'tfp_flows.initialization',
    'tfp_flows.mixed_precision',
    'tfp_flows.models',
    'tfp_flows.networks',
    'tfp_flows.training.trainer',
    'tfp_flows.training.optimizers',
    'tfp_flows.run.experiment',
    'tfp_flows.run.restore',
    'tfp_flows.run.callbacks',
    'tfp_flows.data.own',
    'tfp_flows.tools.latent',
    'tfp_flows.run.workdir',
    'tfp_flows.run.cli',
)
INF, NAN = float('inf'), float('nan')
_EXPORT_DIR = tempfile.mkdtemp(prefix='tfp_flows_test_arguments_')
atexit.register(shutil.rmtree, _EXPORT_DIR, ignore_errors=True)


def _key(obj):
    return f'{obj.__module__}.{obj.__qualname__}'


def _public_callables():
    """{key: callable}: the functions, classes and their own public methods of SURFACE."""
    found = {}
    for module_name in SURFACE:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj):
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # An error class: it takes its message.
            found[_key(obj)] = obj
            if inspect.isclass(obj):
                for attribute, member in inspect.getmembers(obj, inspect.isfunction):
                    if not attribute.startswith('_') and member.__module__.startswith('tfp_flows'):
                        found[_key(member)] = member
    return found


def _parameters(obj):
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        p.name
        for p in inspect.signature(obj).parameters.values()
        if p.name != 'self' and p.kind not in skip
    ]


class Domain:
    """Bad values of an argument, each refused with '`name` must be <text>; got <shown>.'"""

    def __init__(self, text, bad, shown=repr):
        self.text, self.bad, self.shown = text, bad, shown

    def cases(self, name):
        return [
            (value, re.escape(f'`{name}` must be {self.text}; got {self.shown(value)}.'))
            for value in self.bad
        ]


class Messages:
    """Bad values of an argument with the message (a regex) each is refused with."""

    def __init__(self, *cases):
        self.list = list(cases)

    def cases(self, name):
        return self.list


NAME = 'a name scope, checked by TensorFlow'
DATA = 'data: each step checks its dtype and event shape, and its values with validate_args'
POSITIVE_INT = Domain('a positive int', [0, -1, 2.5, True, '2', None])
SEED_31 = Domain('an int in [0, 2**31)', [-1, 2**31, 1.5, None, True])
SEED_63 = Domain('an int in [0, 2**63)', [-1, 2**63, 1.5, None])
FLOAT_DTYPE = Domain('a floating-point dtype', [tf.int32, 'int32', None])
BOOL = Domain('True or False', ['False', 1, None])
LOG_SCALE_BOUND = Domain('a finite number > 0', [0.0, -1.0, INF, NAN, '2', True])
ALPHA = Domain('a number in [0, 0.5)', [0.5, -0.1, NAN, True])
DTYPE_POLICY = Domain(
    "None, 'mixed_bfloat16', 'mixed_float16' or a keras.mixed_precision.DTypePolicy of one of them",
    ['float16', 'mixed_int8', 'bfloat16', 3, True],
)
NOT_A_FLOW = Messages(
    (None, r'`flow` must be a `tfd.TransformedDistribution` .*; got NoneType\.'),
    (tfb.Exp(), r'`flow` must be a `tfd.TransformedDistribution` .*; got Exp\.'),
)
TEMPERATURE = Domain('a finite number > 0', [INF, NAN, 0.0, -1.0, 'hot', True], format_value)
SAMPLE_SHAPE = Domain('an int >= 0 or a list of ints >= 0', [-1, (2, -1), 2.5, '2', None])
SAMPLE_SEED = 'None, an int in [0, 2**62) or an int tensor of shape [2] (a stateless seed)'
SAMPLE = {
    'flow': NOT_A_FLOW,
    'sample_shape': SAMPLE_SHAPE,
    'temperature': TEMPERATURE,
    'seed': Messages(
        *[
            (value, re.escape(f'`seed` must be {SAMPLE_SEED}; got {shown}.'))
            for value, shown in [
                (-1, '-1'),
                (2**62, str(2**62)),
                ('1', "'1'"),
                (1.5, 'a float32 tensor'),
                ([1, 2, 3], '[1 2 3]'),
            ]
        ]
    ),
}
STATELESS_SEED = Messages(
    *[
        (
            value,
            re.escape(
                '`seed` must be None or an int tensor of shape [2] (a stateless seed); '
                f'got {shown}.'
            ),
        )
        for value, shown in [
            (3, '3'),
            ([1, 2, 3], '[1 2 3]'),
            ('1', "'1'"),
            (1.5, 'a float32 tensor'),
        ]
    ]
)
TEMPERATURES = Domain(
    'a non-empty list of finite numbers > 0', [(), (INF,), (0.7, -1.0), 0.7, 'hot']
)
CONDITIONAL_SHAPE = Domain(
    'None or a non-empty shape of positive ints (e.g. (10,) for one-hot labels of 10 classes)',
    [0, (), (10, 0), '10', True],
)
DROPOUT_RATE = Domain('a number in [0, 1)', [1.0, -0.1, NAN, True, '0.1'])
FRACTION = Domain('a number in [0, 1)', [1.0, -0.1, NAN, None])
CONTEXT = (
    "the flow's steps check it: a missing, unexpected or misshaped context is refused naming "
    'both shapes'
)
UNCONDITIONAL_CONTEXT = Messages(
    (
        np.zeros([2, 3], np.float32),
        r'is unconditional .*got a `conditional_input` of shape \[2, 3\]',
    )
)
KERAS = "Keras' own argument: Keras checks it"
KERAS_HOOK = 'a Keras callback hook: Keras passes the epoch or batch index and the logs'
STEP_DATA = (
    'the batch Keras hands over: split_batch refuses sample weights, and the context is '
    'checked against the flow, naming both shapes'
)
STRENGTHS = Domain('a non-empty list of finite numbers', [(), (NAN,), 'strong', 1.0])
STR_OR_PATH = Messages((3, r'must be a str or a path; got 3\.'))
OPTIONAL_PATH = Messages((3, r'must be None, a str or a path; got 3\.'))
LOG_KEY = Messages(
    ('', r"must be a non-empty str \(a key of Keras' logs\); got ''\."),
    (None, r"must be a non-empty str \(a key of Keras' logs\); got None\."),
)
UNIT = Domain("one of ('bits_per_dim', 'nats_per_dim')", ['bits', None])
PIXELS = Messages(
    (['a', 'b'], '`pixels` must be integer-valued numbers; got dtype <U1'),
    ([[0, 17]], r'`pixels` must be integers from 0 to 16; got \[17\]'),
    ([[0.5, 1.0]], r'`pixels` must be integers from 0 to 16; got \[0.5\]'),
)
DEQUANTIZER = Messages(
    ('uniform', r'`dequantizer` must be None or an object with `sample_and_log_prob.*got str\.'),
)
DEQUANTIZED = {
    'pixels': PIXELS,
    'num_bins': Domain('an int >= 2', [1, 17.0, True, None]),
    'dequantizer': DEQUANTIZER,
    'seed': STATELESS_SEED,
}
DEQUANTIZE = {**DEQUANTIZED, 'dtype': FLOAT_DTYPE}
BIJECTOR_KWARGS = "passed to `flow.log_prob`: the flow's steps check each kwarg (see CONTEXT)"
IMPORTANCE_WEIGHTED = {
    **DEQUANTIZED,
    'flow': NOT_A_FLOW,
    'bijector_kwargs': BIJECTOR_KWARGS,
    'num_samples': Messages(
        (0, r'`num_samples` must be a positive int; got 0\.'),
        (True, r'`num_samples` must be a positive int or an int scalar tensor; got a bool'),
        (2.5, r'`num_samples` must be a positive int or an int scalar tensor; got a float32'),
    ),
    'seed': Messages(
        (-1, re.escape('`seed` must be an int in [0, 2**31) or an int tensor [2]; got -1.')),
        ([1, 2, 3], r'`seed` must be an int or a stateless seed .*; got a int32 tensor of shape'),
        (1.5, r'`seed` must be an int or a stateless seed .*; got a float32 tensor'),
    ),
}
EXPORT_DEQUANTIZER = Messages(
    ('uniform', r'`dequantizer` must be None or a tf.Module with `sample_and_log_prob`.*got str\.'),
)
BATCH_CALLBACKS = Messages(
    ([keras.callbacks.TerminateOnNaN()], r"TerminateOnNaN reads the log key 'loss'"),
    (
        [keras.callbacks.EarlyStopping()],
        r"EarlyStopping monitors 'val_loss', which FlowTrainer reports as 'val_nats_per_dim'",
    ),
)
FLOAT_BATCH = Messages(
    (np.zeros([2, 2], np.int32), r'FlowTrainer expects batches of floating-point data .*int32')
)
TRAINER_CONTEXT = Messages(
    (
        np.zeros([2, 3], np.float32),
        r'the flow is unconditional .*The second element has shape \(2, 3\)\.',
    )
)
SPLIT = Messages(
    ('valid', r"Unknown split 'valid' of your own data; expected one of train"),
    (None, r'Unknown split None of your own data'),
)
COLUMN_NAMES = Messages(
    (3, r'must be None or a list of column names \(strs\); got 3\.'),
    ('x', r"must be None or a list of column names \(strs\); got 'x'\."),
)
RERUN = workdirs.Rerun('/w', {}, ('/w/ckpt-1', 1), {'epochs_trained': 1}, True)
POINTS = Messages(
    (np.zeros([4, 3]), r'`points` must have shape \[N, 2\], N >= 1; got \(4, 3\)\.'),
    ([[NAN, 0.0]], r'`points` must be finite numbers; got 1 that are not\.'),
    ('abc', r"`points` must be finite numbers of shape \[N, 2\], N >= 1; got 'abc'\."),
)
COUPLING_SHAPE = (
    r'`event_shape` must be \[H, W, C\] for images or \[C\] for vectors, with positive ints; got '
)
COUPLING = {
    'event_shape': Messages(
        ((4, 4), COUPLING_SHAPE + r'\(4, 4\)\.'),
        (None, COUPLING_SHAPE + r'None\.'),
        ((0,), COUPLING_SHAPE + r'\(0,\)\.'),
    ),
    'mask': Domain("one of ('channel', 'checkerboard')", ['diagonal', None]),
    'flip': BOOL,
    'conditioner_fn': Domain('None or a callable', [3, 'ConvNet']),
    'hidden_channels': POSITIVE_INT,
    'seed': SEED_63,
    'dtype': FLOAT_DTYPE,
    'dtype_policy': DTYPE_POLICY,
    'validate_args': BOOL,
    'name': NAME,
    'conditional_shape': CONDITIONAL_SHAPE,
    'dropout_rate': DROPOUT_RATE,
}
PREPROCESSING_SHAPE = r'`event_shape` must be a tuple of positive ints; got '
PREPROCESSING = {
    'event_shape': Messages(
        (None, PREPROCESSING_SHAPE + r'None\.'),
        ((), PREPROCESSING_SHAPE + r'\(\)\.'),
        ((4, 0), PREPROCESSING_SHAPE + r'\(4, 0\)\.'),
    ),
    'dtype': FLOAT_DTYPE,
    'validate_args': BOOL,
    'name': NAME,
}
CONV_1X1 = {
    'num_channels': POSITIVE_INT,
    'seed': SEED_63,
    'dtype': FLOAT_DTYPE,
    'validate_args': BOOL,
    'name': NAME,
}


def _model_arguments(model):
    image_shape = rf'{model} on images needs `event_shape` \[H, W, C\] of positive ints; got '
    return {
        'event_shape': Messages(
            ((8, 8), image_shape + r'\(8, 8\)\.'),
            (None, image_shape + r'None\.'),
            ((4, 4, 0), image_shape + r'\(4, 4, 0\)\.'),
            ((5, 4, 1), r'divisible by 2; got event_shape \(5, 4, 1\)\.'),
        ),
        'num_levels': POSITIVE_INT,
        'num_steps': POSITIVE_INT,
        'hidden_channels': POSITIVE_INT,
        'split_prior': BOOL,
        'log_scale_bound': LOG_SCALE_BOUND,
        'scale': Domain("one of ('tanh', 'sigmoid')", ['exp', None]),
        'preprocessing': Domain("one of ('centre', 'logit')", ['none', 3]),
        'alpha': ALPHA,
        'conditional_shape': CONDITIONAL_SHAPE,
        'learn_top_prior': BOOL,
        'dropout_rate': DROPOUT_RATE,
        'seed': SEED_31,
        'dtype': Domain('tf.float32 or tf.float64', [tf.float16, 'int32', None]),
        'dtype_policy': DTYPE_POLICY,
        'validate_args': BOOL,
        'name': NAME,
    }


CONFIG = Messages(
    (None, r'`config` must be an ml_collections.ConfigDict or a dict; got None\.'),
    (3, r'`config` must be an ml_collections.ConfigDict or a dict; got 3\.'),
)
THREADS = 'must be an int >= 0 \\(0: TF default\\); got '

# Key: {parameter: Domain | Messages | the reason it is not checked (a str)}.
VD_PIXELS = Messages(
    (np.full([1, 2, 2, 1], 17), r'`pixels` must be integers from 0 to 16; got \[17 17 17 17\]\.'),
    (np.zeros([1, 3, 3, 1]), r'`pixels` must have shape \[N, 2, 2, 1\]; got \(1, 3, 3, 1\)\.'),
)


def HISTOGRAM_PIXELS(name):  # noqa: N802 (a domain, named as the others)
    return Messages(
        ([[0, 17]], rf'`{name}` must be integers from 0 to 16; got \[17\]\.'),
        (np.zeros([0, 2]), rf'`{name}` must be a non-empty batch \[N, \.\.\.\] of integer pixels'),
    )


BAD = {
    'tfp_flows.models.glow': {
        **_model_arguments('glow'),
        'coupling': Domain("one of ('affine', 'additive')", ['spline', None]),
        'permutation': Domain("one of ('lu', 'plain', 'reverse', 'shuffle')", ['random']),
    },
    'tfp_flows.models.real_nvp': {
        **_model_arguments('real_nvp'),
        'event_shape': Messages(
            (
                (8, 8),
                r'real_nvp on images needs `event_shape` \[H, W, C\] .*; got \(8, 8\)',
            ),
            ((1,), r'A vector real_nvp needs event_shape \[D\], D >= 2; got \(1,\)'),
            (None, r'real_nvp on images needs `event_shape` .*; got None\.'),
        ),
    },
    'tfp_flows.models.sample': {**SAMPLE, 'conditional_input': UNCONDITIONAL_CONTEXT},
    'tfp_flows.models.check_flow': {'flow': NOT_A_FLOW},
    'tfp_flows.models.sample_latent': SAMPLE,
    'tfp_flows.models.check_temperature': {'temperature': TEMPERATURE, 'dtype': FLOAT_DTYPE},
    'tfp_flows.dequantization.bits_per_dim': {
        'log_prob': 'log-densities: a NaN passes on, so that training stops on it by name',
        'num_dims': Domain('a positive int', [0, -3, 784.0, True]),
        'num_bins': Domain('an int >= 2', [1, 256.0, True, None]),
    },
    'tfp_flows.dequantization.uniform_dequantize': {
        'pixels': Messages(
            (['a', 'b'], '`pixels` must be integer-valued numbers; got dtype string'),
            ([True], '`pixels` must be integer-valued numbers; got dtype bool'),
        ),
        'num_bins': Domain('an int >= 2', [1, 2.0, None, True]),
        'seed': STATELESS_SEED,
        'dtype': FLOAT_DTYPE,
    },
    'tfp_flows.dequantization.dequantize': DEQUANTIZE,
    'tfp_flows.dequantization.dequantized_bits_per_dim': {
        **DEQUANTIZED,
        'flow': NOT_A_FLOW,
        'bijector_kwargs': BIJECTOR_KWARGS,
    },
    'tfp_flows.dequantization.importance_weighted_log_likelihood': IMPORTANCE_WEIGHTED,
    'tfp_flows.dequantization.importance_weighted_bits_per_dim': IMPORTANCE_WEIGHTED,
    'tfp_flows.initialization.initialize': {
        'flow': Messages((None, r'`initialize` takes a flow built by tfp_flows .*got NoneType')),
        'data': Messages(
            (np.zeros([2, 2], np.int64), r'dequantize integer images .*got dtype int64'),
            (np.zeros([0, 2], np.float32), r'needs a non-empty batch'),
        ),
        'conditional_input': UNCONDITIONAL_CONTEXT,
    },
    'tfp_flows.bijectors.actnorm.ActNorm': {
        'num_channels': POSITIVE_INT,
        'min_std': Domain('a finite number > 0', [0.0, -1.0, INF, NAN, '1e-3', None]),
        'dtype': FLOAT_DTYPE,
        'validate_args': BOOL,
        'name': NAME,
    },
    'tfp_flows.bijectors.actnorm.ActNorm.initialize': {},  # `y`: see TENSOR.
    'tfp_flows.bijectors.actnorm.ActNorm.initialize_from_moments': {
        'mean': Messages(
            (np.zeros([3], np.float32), re.escape('`mean` must have shape [2] (one value per')),
        ),
        'variance': Messages(
            (np.ones([2, 2], np.float32), re.escape('`variance` must have shape [2] (one value')),
        ),
    },  # Values: see TENSOR.
    'tfp_flows.bijectors.coupling.AffineCoupling': {
        **COUPLING,
        'log_scale_bound': LOG_SCALE_BOUND,
        'scale': Domain("one of ('tanh', 'sigmoid')", ['exp']),
    },
    'tfp_flows.bijectors.coupling.AdditiveCoupling': COUPLING,
    'tfp_flows.bijectors.preprocessing.Centre': PREPROCESSING,
    'tfp_flows.bijectors.preprocessing.LogitTransform': {**PREPROCESSING, 'alpha': ALPHA},
    'tfp_flows.bijectors.chain.Chain': {
        'steps': Messages(
            ([], r'`steps` must list at least one bijector; got an empty list\.'),
            (None, r'`steps` must be a list of bijectors; got None\.'),
            ([3], r'Step 0 of the chain is not a tfb.Bijector; got 3\.'),
        ),
        'event_ndims': Domain('a positive int', [0, 1.5, None]),
        'validate_args': BOOL,
        'name': NAME,
    },
    'tfp_flows.bijectors.multiscale.FactorOut': {
        'event_shape': Messages(
            (
                (2, 2, 1),
                r'`event_shape` must be \[H, W, C\] of positive ints with C >= 2; got \(2, 2, 1\)',
            ),
            (None, r'`event_shape` must be \[H, W, C\] .*; got None\.'),
        ),
        'inner': Messages((None, r'`inner` must be a tfb.Bijector; got None\.')),
        'conditional_shape': CONDITIONAL_SHAPE,
        'split_prior': BOOL,
        'hidden_channels': Domain('a positive int', [0, 2.5]),
        'log_scale_bound': LOG_SCALE_BOUND,
        'seed': SEED_63,
        'dtype': FLOAT_DTYPE,
        'dtype_policy': DTYPE_POLICY,
        'validate_args': BOOL,
        'name': NAME,
    },
    'tfp_flows.bijectors.multiscale.FactorOut.split': {'y': DATA},
    'tfp_flows.bijectors.base.FlowBijector.forward_and_log_det': {
        'x': DATA,
        'event_ndims': Domain('a positive int', [0, -1, 1.5, '1']),
    },
    'tfp_flows.bijectors.base.FlowBijector.inverse_and_log_det': {
        'y': DATA,
        'event_ndims': Domain('a positive int', [0, -1, 1.5, '1']),
    },
    'tfp_flows.bijectors.invertible_conv.InvertibleConv1x1': CONV_1X1,
    'tfp_flows.bijectors.invertible_conv.LUInvertibleConv1x1': CONV_1X1,
    'tfp_flows.bijectors.squeeze.Squeeze': {'validate_args': BOOL, 'name': NAME},
    'tfp_flows.networks.ConvNet': {
        'dropout_rate': DROPOUT_RATE,
        'input_channels': POSITIVE_INT,
        'output_channels': POSITIVE_INT,
        'hidden_channels': POSITIVE_INT,
        'seed': SEED_63,
        'dtype': FLOAT_DTYPE,
        'dtype_policy': DTYPE_POLICY,
        'name': NAME,
    },
    'tfp_flows.networks.DenseNet': {
        'dropout_rate': DROPOUT_RATE,
        'input_size': POSITIVE_INT,
        'output_size': POSITIVE_INT,
        'hidden_units': POSITIVE_INT,
        'num_hidden_layers': POSITIVE_INT,
        'seed': SEED_63,
        'dtype': FLOAT_DTYPE,
        'dtype_policy': DTYPE_POLICY,
        'name': NAME,
    },
    'tfp_flows.networks.ZeroConv': {
        'input_channels': POSITIVE_INT,
        'output_channels': POSITIVE_INT,
        'dtype': FLOAT_DTYPE,
        'dtype_policy': DTYPE_POLICY,
        'name': NAME,
    },
    'tfp_flows.data.DatasetInfo': {
        name: 'a record that make_dataset fills with the values it checked'
        for name in (
            'name',
            'event_shape',
            'num_bins',
            'num_examples',
            'conditional_shape',
            'class_names',
            'statistics',
        )
    },
    'tfp_flows.data.augment_flip': {
        'images': 'a tensor; tf.image checks its rank and dtype',
        'seed': STATELESS_SEED,
    },
    'tfp_flows.data.load_digits': {
        'split': Messages(
            *[
                (value, rf"Unknown split {re.escape(repr(value))} for dataset 'digits'; expected")
                for value in ('valid', None, 0)
            ]
        ),
        'labels': BOOL,
    },
    'tfp_flows.data.load_images': {
        'name': Domain('a non-empty str', ['', None, 3]),
        'split': Domain('a non-empty str', ['', None]),
        'data_dir': Domain('None, a str or a path', [3, ['dir']]),
        'image_size': Domain('None or a positive int', [0, 8.0, True]),
        'labels': BOOL,
    },
    'tfp_flows.data.make_dataset': {
        'name': Domain('a non-empty str', ['', None, 3]),
        'split': Domain('a non-empty str', ['', None]),
        'batch_size': POSITIVE_INT,
        'shuffle': BOOL,
        'seed': Domain('None or an int >= 0', [-1, 1.5, '0']),
        'data_dir': Domain('None, a str or a path', [3]),
        'image_size': Domain('None or a positive int', [0, True]),
        'augment': Messages(('rotate', r"`augment` must be None or 'flip'; got 'rotate'\.")),
        'repeat': BOOL,
        'drop_remainder': BOOL,
        'dequantize': BOOL,
        'epoch': Messages(
            (-1, r'`epoch` must be an int >= 0 or a scalar int64 tf.Variable; got -1\.'),
            (1.5, r'`epoch` must be an int >= 0 or a scalar int64 tf.Variable; got 1\.5\.'),
            (0, r'`epoch` needs a `seed`: each pass is drawn from \(seed, epoch\); got seed=None'),
        ),
        'conditional': BOOL,
        **{
            name: Messages(
                (3, rf'`{name}` must be None or a non-empty list of column names \(strs\); got 3'),
                ('x', rf"`{name}` must be None or a non-empty list of column names .*; got 'x'"),
                (['x'], r'choose columns of a CSV table .*; got them for dataset .moons.'),
            )
            for name in ('columns', 'context_columns')
        },
    },
    'tfp_flows.data.toy_2d': {
        'name': Messages(
            *[
                (value, rf'`name` must be one of checkerboard, .*; got {re.escape(repr(value))}')
                for value in ('spiral', ['moons'], None)
            ]
        ),
        'num_samples': POSITIVE_INT,
        'seed': Domain('an int >= 0', [-1, None, 1.5]),
    },
    'tfp_flows.export.FlowModule': {
        'flow': NOT_A_FLOW,
        'num_bins': Domain('None or an int >= 2', [1, 2.0, True, '256']),
        'dequantizer': EXPORT_DEQUANTIZER,
        'jit_compile': BOOL,
        'name': NAME,
    },
    'tfp_flows.export.export_saved_model': {
        'flow': NOT_A_FLOW,
        'jit_compile': BOOL,
        'path': Messages(
            (3, r'`path` must be a str or a path; got 3\.'),
            (None, r'`path` must be a str or a path; got None\.'),
        ),
        'num_bins': Domain('None or an int >= 2', [1, 2.0]),
        'dequantizer': EXPORT_DEQUANTIZER,
        'overwrite': BOOL,
    },
    'tfp_flows.tools.pictures.check_temperatures': {'temperatures': TEMPERATURES},
    'tfp_flows.tools.pictures.check_points': {'points': POINTS},
    'tfp_flows.tools.pictures.density_figure': {
        'log_prob_fn': Domain('a callable', [None, 3]),
        'points': POINTS,
        'points_label': Messages((3, r'`points_label` must be a str; got 3\.')),
        'extent': Domain('None or a finite number > 0', [0.0, -1.0, INF, '2']),
        'resolution': Domain('a positive int', [0, 2.5]),
    },
    'tfp_flows.tools.pictures.image_grid': {
        'images': Messages(
            (np.zeros([4, 4, 1]), r'`images` must have shape \[N, H, W, C\], N >= 1; got '),
            ('abc', r"`images` must be numbers of shape \[N, H, W, C\], N >= 1; got 'abc'\."),
        ),
        'num_bins': Domain('an int >= 2', [1, 256.0]),
        'num_columns': Domain('a positive int', [0, -3, 2.5]),
        'scale': Domain('a positive int', [0, -1, 1.5]),
        'separator': Domain('an int >= 0', [-2, 1.5]),
    },
    'tfp_flows.tools.pictures.labelled_panels': {
        'pictures': Messages(
            ([], r'at least one picture; got 0 pictures and 1 titles\.'),
            (None, r'at least one picture; got 0 pictures and 1 titles\.'),
            ([np.zeros([4, 4, 3])], r'`pictures` must be uint8 arrays \[H, W, C\], C = 1 or 3'),
        ),
        'titles': Messages(
            (['a', 'b'], r'got 1 pictures and 2 titles\.'),
            ([3], r'`titles` must be strs; got 3\.'),
        ),
        'margin': Domain('an int >= 0', [-1, 2.5]),
        'gap': Domain('an int >= 0', [-1]),
        'title_height': Domain('an int >= 0', [-1]),
    },
    'tfp_flows.tools.pictures.sample_figure': {
        'flow': NOT_A_FLOW,
        'num_bins': Domain('an int >= 2', [1, 17.0]),
        'temperatures': TEMPERATURES,
        'seed': Domain('an int in [0, 2**31)', [-1, 2**31, 1.5]),
        'num_samples': Domain('a positive int', [0, 2.5]),
        'num_columns': Domain('a positive int', [0]),
    },
    'tfp_flows.tools.pictures.upscale_factor': {
        'image_shape': Domain('a pair of positive ints', [(8,), (0, 8), (8.0, 8), None]),
        'grid_shape': Domain('a pair of positive ints', [(2, 2, 2)]),
        'separator': Domain('an int >= 0', [-1]),
    },
    'tfp_flows.tools.pictures.write_png': {
        'path': Messages((3, r'`path` must be a str or a path; got 3\.')),
        'picture': Messages(
            (
                np.zeros([4, 4, 1]),
                r'`picture` must be a uint8 array \[H, W, C\], C = 1, 3 or 4; got one of dtype '
                r'float64 and shape \(4, 4, 1\)\.',
            ),
            (np.zeros([4, 4, 2], np.uint8), r'C = 1, 3 or 4; got .* shape \(4, 4, 2\)\.'),
        ),
    },
    'tfp_flows.tools.figures.main': {
        'argv': 'flags: argparse refuses a malformed one; the values are checked by '
        'test_figure_flags_are_checked_before_any_work',
    },
    'tfp_flows.tools.figures.run_figure': {
        'workdir': 'a path: restore_flow raises FileNotFoundError naming it',
        'temperatures': TEMPERATURES,
        'seed': Domain('None or an int in [0, 2**31)', [-1, 1.5]),
    },
    'tfp_flows.training.distribute.check_thread_count': {
        'name': 'the label the message uses',
        'value': Messages(*[(v, rf'threads {THREADS}{v!r}\.') for v in (-1, 1.5, True)]),
    },
    'tfp_flows.training.distribute.configure_threads': {
        'intra_op_threads': Messages((-1, rf'intra_op_threads {THREADS}-1\.')),
        'inter_op_threads': Messages((2.0, rf'inter_op_threads {THREADS}2\.0\.')),
    },
    'tfp_flows.training.distribute.make_strategy': {
        'name': Messages(
            ('tpu', r"strategy must be one of \('auto', .*\); got 'tpu'\."),
            (None, r'strategy must be one of .*; got None\.'),
        )
    },
    'tfp_flows.mixed_precision.check_dtype_policy': {
        'dtype_policy': DTYPE_POLICY,
        'dtype': FLOAT_DTYPE,
    },
    'tfp_flows.mixed_precision.compute_dtype': {'dtype_policy': DTYPE_POLICY, 'dtype': FLOAT_DTYPE},
    'tfp_flows.mixed_precision.dtype_policy_of': {
        'flow': Messages(
            (None, r'`flow` must be a tf.Module \(a flow, bijector or network\); got NoneType\.'),
            ('glow', r'`flow` must be a tf.Module .*; got str\.'),
        )
    },
    'tfp_flows.run.config_checks.check_config_values': {'config': CONFIG},
    'tfp_flows.run.config_checks.check_config': {'config': CONFIG},
    'tfp_flows.dequantization.variational.VariationalDequantizer': {
        'event_shape': Messages(
            ((2, 2), r'needs `event_shape` \[H, W, C\] of positive ints; got \(2, 2\)\.'),
            ((2, 0, 1), r'needs `event_shape` \[H, W, C\] of positive ints; got \(2, 0, 1\)\.'),
        ),
        'num_bins': Domain('an int >= 2', [1, 17.0, True, None]),
        'num_steps': Messages(
            (1, r'`num_steps` must be >= 2, so that the alternating checkerboard couplings'),
            (0, r'`num_steps` must be a positive int; got 0\.'),
            (2.0, r'`num_steps` must be a positive int; got 2\.0\.'),
        ),
        'hidden_channels': POSITIVE_INT,
        'context_channels': Domain('an int >= 0', [-1, 2.5, True, None]),
        'log_scale_bound': LOG_SCALE_BOUND,
        'seed': Domain('an int >= 0', [-1, 1.5, True, None]),
        'dtype': Messages(
            (tf.int32, r'`dtype` must be tf.float32 or tf.float64; got tf\.int32\.'),
            (None, r'`dtype` must be tf.float32 or tf.float64; got None\.'),
        ),
        'name': NAME,
    },
    'tfp_flows.dequantization.variational.VariationalDequantizer.context': {
        'pixels': VD_PIXELS,
    },
    'tfp_flows.dequantization.variational.VariationalDequantizer.sample_and_log_prob': {
        'pixels': VD_PIXELS,
        'seed': STATELESS_SEED,
    },
    'tfp_flows.dequantization.variational.VariationalDequantizer.noise_and_log_prob': {
        'base_noise': 'a draw of the Logistic base: any real values, of the pixels shape (the '
        'couplings check the shape)',
        'pixels': VD_PIXELS,
    },
    'tfp_flows.dequantization.variational.VariationalDequantizer.log_prob': {
        'noise': 'any values: an image with noise outside (0, 1) or NaN gets -inf, by design',
        'pixels': VD_PIXELS,
    },
    'tfp_flows.tools.baselines.pixel_histogram_log_probs': {
        'pixels': HISTOGRAM_PIXELS('pixels'),
        'num_bins': Domain('an int >= 2', [1, 17.0, True, None]),
        'pseudocount': Domain('a finite number > 0', [0.0, -1.0, INF, NAN, True, '1']),
    },
    'tfp_flows.tools.baselines.pixel_histogram_bits_per_dim': {
        'log_probs': 'the [*E, B] output of pixel_histogram_log_probs; `pixels` is checked '
        'against its shape and levels',
        'pixels': Messages(
            ([[0, 17]], r'`pixels` must be integers from 0 to 16; got \[17\]\.'),
            ([[0, 1, 2]], r'`pixels` must have shape \[N, 2\] like the histograms; got \(1, 3\)\.'),
        ),
    },
    'tfp_flows.tools.baselines.histogram_baseline': {
        'train': HISTOGRAM_PIXELS('train'),
        'validation': HISTOGRAM_PIXELS('validation'),
        'test': HISTOGRAM_PIXELS('test'),
        'num_bins': Domain('an int >= 2', [1, 17.0, True, None]),
        'pseudocounts': Messages(
            ([], r'`pseudocounts` must list at least one value; got an empty list\.'),
            ([1.0, 0.0], r'`pseudocount` must be a finite number > 0; got 0\.0\.'),
        ),
    },
    'tfp_flows.run.cli.check_config': {'config': CONFIG},
    'tfp_flows.run.cli.none_from_flags': {'config': CONFIG},
    'tfp_flows.run.config_checks.field_values': {'config': CONFIG},
    'tfp_flows.run.config_checks.unchecked_keys': {'config': CONFIG},
}


class _NoiseOnly(tf.Module):
    """Looks like a dequantizer (a tf.Module with `noise_and_log_prob`), of no data."""

    def noise_and_log_prob(self, base_noise, pixels):
        return base_noise, tf.zeros([])


# The training side, the run and its tools (conditional flows, own data, workdirs, CLI).
BAD.update(
    {
        'tfp_flows.bijectors.context.conditional_shape_of': {
            'flow': "any flow or bijector, this package's or TFP's: one without conditional "
            'steps has none (None)',
        },
        'tfp_flows.bijectors.prior.LearnedPrior': {
            'event_shape': Messages(
                *[
                    (
                        value,
                        rf'`event_shape` must be a non-empty shape of positive ints; got {shown}',
                    )
                    for value, shown in ((None, 'None'), ((), r'\(\)'), ((4, 0), r'\(4, 0\)'))
                ]
            ),
            'learned': BOOL,
            'conditional_shape': CONDITIONAL_SHAPE,
            'log_scale_bound': LOG_SCALE_BOUND,
            'dtype': FLOAT_DTYPE,
            'validate_args': BOOL,
            'name': NAME,
            'dtype_policy': DTYPE_POLICY,
        },
        'tfp_flows.networks.ZeroDense': {
            'input_size': POSITIVE_INT,
            'output_size': POSITIVE_INT,
            'dtype': FLOAT_DTYPE,
            'dtype_policy': DTYPE_POLICY,
            'name': NAME,
        },
        'tfp_flows.networks.check_dropout_rate': {'dropout_rate': DROPOUT_RATE},
        'tfp_flows.networks.check_training': {
            'training': Messages(
                *[
                    (value, rf'`training` must be a bool or a scalar bool tensor; got {shown}\.')
                    for value, shown in (('yes', "'yes'"), (1, '1'))
                ]
            )
        },
        'tfp_flows.training.trainer.FlowTrainer': {
            'flow': Messages(
                (None, r'`flow` must be a `tfd.Distribution` with trainable .*; got NoneType\.'),
                (3, r'`flow` must be a `tfd.Distribution` with trainable .*; got int\.'),
            ),
            'num_bins': Domain('None or an int >= 2', [1, 17.0, True]),
            'clip_norm': Domain('a finite number > 0', [0, -1.0, NAN, INF, '50']),
            'accumulation_steps': POSITIVE_INT,
            'dropout_seed': Domain('None or an int in [0, 2**63)', [-1, 1.5, 2**63, '1']),
            'dequantizer': Messages(
                ('variational', r'`dequantizer` must be None or a VariationalDequantizer .*str'),
                (
                    _NoiseOnly(),
                    r'A `dequantizer` dequantizes discrete images: it needs `num_bins`; got None',
                ),
            ),
            'dequantization_seed': Domain('an int in [0, 2**63)', [-1, 1.5, 2**63, None]),
            'memory_saving': Messages(
                ('checkpoint', r"`memory_saving` must be one of \('invert', 'recompute'\); got"),
                (True, r"`memory_saving` must be one of \('invert', 'recompute'\); got True"),
            ),
            'name': NAME,
        },
        'tfp_flows.training.trainer.FlowTrainer.call': {
            'x': FLOAT_BATCH,
            'conditional_input': TRAINER_CONTEXT,
        },
        'tfp_flows.training.trainer.FlowTrainer.per_example_loss': {
            'x': FLOAT_BATCH,
            'conditional_input': TRAINER_CONTEXT,
            'training': BOOL,
            'dropout_seed': 'used with training=True only: the conditioner networks refuse one '
            'that is not a stateless seed, naming `dropout_seed`',
            'base_noise': 'used with a dequantizer only: a draw of its base, converted to its '
            'dtype; its shape is checked by the couplings of the dequantizer',
        },
        'tfp_flows.training.trainer.FlowTrainer.compile': {
            'optimizer': "Keras' compile resolves it (keras.optimizers.get) and refuses what it "
            'cannot interpret',
            'steps_per_execution': POSITIVE_INT,
            'auto_scale_loss': BOOL,
        },
        'tfp_flows.training.trainer.FlowTrainer.fit': {
            **{name: KERAS for name in ('x', 'y', 'batch_size', 'epochs', 'verbose')},
            'callbacks': BATCH_CALLBACKS,
        },
        'tfp_flows.training.trainer.FlowTrainer.evaluate': {
            **{name: KERAS for name in ('x', 'y', 'batch_size', 'verbose', 'steps')},
            'sample_weight': 'refused when a step runs (split_batch): the loss is the mean over '
            'the examples',
            'callbacks': BATCH_CALLBACKS,
        },
        'tfp_flows.training.trainer.FlowTrainer.predict': {
            **{name: KERAS for name in ('x', 'batch_size', 'verbose', 'steps')},
            'callbacks': BATCH_CALLBACKS,
        },
        'tfp_flows.training.trainer.FlowTrainer.train_step': {'data': STEP_DATA},
        'tfp_flows.training.trainer.FlowTrainer.test_step': {'data': STEP_DATA},
        'tfp_flows.training.trainer.FlowTrainer.predict_step': {'data': STEP_DATA},
        'tfp_flows.training.trainer.split_batch': {
            'data': Messages(
                ((np.zeros([2, 2]), None, np.ones([2])), r'does not take sample weights')
            )
        },
        **{
            f'tfp_flows.training.optimizers.{name}': {
                'learning_rate': Domain(
                    'a finite number > 0 or a keras.optimizers.schedules.LearningRateSchedule',
                    [0, -1.0, NAN, 'fast', None],
                ),
                'beta_1': FRACTION,
                'beta_2': FRACTION,
                'epsilon': Domain('a finite number > 0', [0.0, -1e-7, INF]),
            }
            for name in ('FusedAdam', 'FusedAdamax')
        },
        'tfp_flows.training.optimizers._FusedOptimizer.apply': {
            'grads': KERAS,
            'trainable_variables': KERAS,
        },
        'tfp_flows.training.optimizers._FusedOptimizer.build': {
            'variables': "the variables it updates: Keras' add_optimizer_variables makes "
            "slots of each one's shape and dtype",
        },
        'tfp_flows.training.optimizers._FusedOptimizer.update_step': {
            'gradient': "Keras' apply hands it over (the gradient of `variable`)",
            'variable': 'refused unless the optimizer was built on it, naming it '
            '(tests/test_optimizers.py)',
            'learning_rate': "Keras' apply hands it over (the schedule's value)",
        },
        'tfp_flows.training.optimizers.make_optimizer': {
            'name': Messages(('sgd', r"`name` must be one of \('adam', 'adamax'\); got 'sgd'\.")),
            'learning_rate': Domain('a finite number > 0', [0, -1e-3, NAN, INF, '1e-3', True]),
            'warmup_steps': Domain('an int >= 0', [-1, 2.5, True]),
            'decay_steps': Domain('a positive int', [0, 10.0]),
            'weight_decay': Domain('a finite number >= 0', [-0.5, INF, NAN]),
            'beta_1': FRACTION,
            'beta_2': FRACTION,
            'epsilon': Domain('a finite number > 0', [0.0, INF]),
            'ema_momentum': Domain('a number in [0, 1)', [1.0, -0.5, NAN]),
        },
        'tfp_flows.run.experiment.train_and_evaluate': {
            'config': CONFIG,
            'workdir': STR_OR_PATH,
            'strategy': Messages(
                (3, r'`strategy` must be None or a tf.distribute.Strategy; got 3\.')
            ),
            'verbose': Messages(
                *[
                    (value, rf"`verbose` must be 'auto', 0, 1 or 2 \(Keras' fit\); got {shown}\.")
                    for value, shown in (('loud', "'loud'"), (True, 'True'), (3, '3'))
                ]
            ),
            'export_dir': Messages(
                (3, r'`export_dir` must be None, a str or a path; got 3\.'),
                (
                    os.path.join(_EXPORT_DIR, 'run', 'model'),
                    r"export_dir '.*' overlaps the workdir",
                ),
            ),
        },
        'tfp_flows.run.restore.build_flow': {
            'model_config': Messages(
                (None, r'`model_config` must be an ml_collections.ConfigDict or a dict; got None')
            ),
            'event_shape': Messages(
                (None, r'`event_shape` must be \[H, W, C\] or \[D\]; got None')
            ),
            'dtype_policy': DTYPE_POLICY,
        },
        'tfp_flows.run.restore.build_optimizer': {
            'train_config': Messages(
                (3, r'`train_config` must be an ml_collections.ConfigDict or a dict; got 3\.')
            ),
            'steps_per_epoch': POSITIVE_INT,
        },
        'tfp_flows.run.restore.data_flow': {
            'flow': 'returned as it is, or for a CSV table given to own_data.standardize_flow, '
            'which checks it',
            'data_name': Domain('a non-empty str (config.data.name)', [None, '', 3]),
            'statistics': 'None, or given to own_data.standardize_flow, which checks it',
        },
        'tfp_flows.run.restore.restore_flow': {
            'workdir': STR_OR_PATH,
            'which': Messages(
                ('newest', r"`which` must be one of \('best', 'latest'\); got 'newest'\.")
            ),
        },
        'tfp_flows.run.restore.restore_flow_and_dequantizer': {
            'workdir': STR_OR_PATH,
            'which': Messages(
                ('newest', r"`which` must be one of \('best', 'latest'\); got 'newest'\.")
            ),
        },
        'tfp_flows.run.restore.build_dequantizer': {
            'dequantizer_config': Messages(
                (3, r'`dequantizer_config` must be an ml_collections.ConfigDict or a dict; got 3')
            ),
            'event_shape': Messages(
                (None, r'`event_shape` must be \[H, W, C\] or \[D\]; got None')
            ),
            'num_bins': Domain('None or an int >= 2', [1, 17.0]),
            'dtype': Messages(('float16', r"`dtype` must be one of .*'float32'.*; got 'float16'")),
            'seed': Domain('an int >= 0', [-1, 1.5, None]),
        },
        'tfp_flows.run.callbacks.CheckpointCallback': {
            'latest': Messages(
                (None, r'`latest` must be a tf.train.CheckpointManager; got None\.')
            ),
            'best': Messages(('best', r"`best` must be a tf.train.CheckpointManager; got 'best'")),
            'epoch': Messages((0, r'`epoch` must be a scalar tf.Variable; got 0\.')),
            'best_value': Messages((1.0, r'`best_value` must be a scalar tf.Variable; got 1\.0')),
            'monitor': LOG_KEY,
        },
        'tfp_flows.run.callbacks.CheckpointCallback.on_epoch_end': {
            'epoch': KERAS_HOOK,
            'logs': KERAS_HOOK,
        },
        'tfp_flows.run.callbacks._Pictures.on_epoch_end': {'epoch': KERAS_HOOK, 'logs': KERAS_HOOK},
        'tfp_flows.run.callbacks.DensityPictures': {
            'flow': NOT_A_FLOW,
            'points': POINTS,
            'path': STR_OR_PATH,
            'every_epochs': Domain('a positive int', [0, 1.5, None]),
            'log_dir': OPTIONAL_PATH,
            'points_label': Messages((3, r'`points_label` must be a str; got 3\.')),
        },
        'tfp_flows.run.callbacks.DensityPictures.write': {
            'epoch': Domain('an int >= 0', [-1, 1.5, None])
        },
        'tfp_flows.run.callbacks.SamplePictures': {
            'flow': NOT_A_FLOW,
            'directory': STR_OR_PATH,
            'num_bins': Domain('an int >= 2', [1, 17.0]),
            'temperatures': TEMPERATURES,
            'every_epochs': Domain('a positive int', [0, 1.5]),
            'log_dir': OPTIONAL_PATH,
            'seed': Domain('an int in [0, 2**31)', [-1, 2**31, 1.5]),
            'class_conditional': BOOL,
        },
        'tfp_flows.run.callbacks.SamplePictures.write': {'epoch': Domain('an int >= 0', [-1, 1.5])},
        'tfp_flows.run.callbacks.MetricScalars': {
            'log_dir': STR_OR_PATH,
            'unit': UNIT,
            'metric_name': Messages(LOG_KEY.list[0]),
        },
        'tfp_flows.run.callbacks.MetricScalars.on_epoch_end': {
            'epoch': KERAS_HOOK,
            'logs': KERAS_HOOK,
        },
        'tfp_flows.run.callbacks.StopOnNonFinite': {'monitor': LOG_KEY},
        'tfp_flows.run.callbacks.StopOnNonFinite.on_batch_end': {
            'batch': KERAS_HOOK,
            'logs': KERAS_HOOK,
        },
        'tfp_flows.run.callbacks.StopOnNonFinite.on_epoch_begin': {
            'epoch': KERAS_HOOK,
            'logs': KERAS_HOOK,
        },
        'tfp_flows.run.callbacks.TimeLimit': {
            'max_seconds': Domain('a finite number > 0', [0, -1.0, INF, NAN, None])
        },
        'tfp_flows.run.callbacks.TimeLimit.on_train_batch_end': {
            'batch': KERAS_HOOK,
            'logs': KERAS_HOOK,
        },
        'tfp_flows.run.callbacks.TimeLimit.on_train_begin': {'logs': KERAS_HOOK},
        'tfp_flows.run.callbacks.log_test_metrics': {
            'log_dir': STR_OR_PATH,
            'unit': UNIT,
            'value': Messages(
                (NAN, r'`value` must be a number \(not NaN\); got nan\.'),
                ('2.5', r"`value` must be a number \(not NaN\); got '2.5'\."),
            ),
            'step': Domain('an int >= 0', [-1, 1.5]),
        },
        'tfp_flows.data.own.TableStatistics': {
            name: 'a record that table_statistics fills with what it computed '
            '(placeholder_statistics for a rebuild); standardize_flow checks its sizes'
            for name in (
                'columns',
                'mean',
                'scale',
                'context_columns',
                'context_mean',
                'context_scale',
            )
        },
        'tfp_flows.data.own.csv_source': {
            'path': STR_OR_PATH,
            'split': SPLIT,
            'columns': COLUMN_NAMES,
            'context_columns': COLUMN_NAMES,
            'conditional': BOOL,
        },
        'tfp_flows.data.own.folder_source': {
            'path': STR_OR_PATH,
            'split': SPLIT,
            'image_size': Domain('None or a positive int', [0, 2.5]),
            'conditional': BOOL,
        },
        'tfp_flows.data.own.load_folder': {
            'path': STR_OR_PATH,
            'split': SPLIT,
            'image_size': Domain('None or a positive int', [0, 2.5]),
            'labels': BOOL,
        },
        'tfp_flows.data.own.placeholder_statistics': {
            'num_columns': POSITIVE_INT,
            'num_context_columns': Domain('an int >= 0', [-1, 1.5, None]),
        },
        'tfp_flows.data.own.read_csv': {
            'path': STR_OR_PATH,
            'columns': COLUMN_NAMES,
            'context_columns': COLUMN_NAMES,
        },
        'tfp_flows.data.own.split_indices': {
            'count': Domain('an int >= 0', [-1, 1.5, None]),
            'split': SPLIT,
        },
        'tfp_flows.data.own.standardize_flow': {
            'flow': NOT_A_FLOW,
            'statistics': Messages(
                (None, r'`statistics` must be a TableStatistics; got None\.'),
                (
                    own_data.placeholder_statistics(3),
                    r'`flow` must have event shape \[3\], one value per column',
                ),
                (
                    own_data.placeholder_statistics(2, 1),
                    r'`flow` must have conditional_shape \(1,\) for 1 context columns; got None',
                ),
            ),
        },
        'tfp_flows.data.own.table_statistics': {
            'path': 'only named in the messages',
            'x': Messages((np.ones([10]), r'`x` \[N, D\] and `c` \[N, K\] must have the same N')),
            'c': Messages((np.ones([9, 0]), r'got shapes \(10, 2\) and \(9, 0\)')),
            'columns': Messages((3, r'`columns` must be a list of column names \(strs\); got 3')),
            'context_columns': Messages(
                (None, r'`context_columns` must be a list of column names \(strs\); got None')
            ),
        },
        'tfp_flows.tools.latent.class_directions': {
            'flow': NOT_A_FLOW,
            'x': 'examples, encoded by the flow, whose steps check their shape',
            'labels': Messages(
                (
                    np.zeros([3], np.int64),
                    r'`labels` must be ints of shape \[2\] \(one per example\)',
                )
            ),
            'num_classes': Domain('an int >= 2', [1, 2.5, None]),
            'conditional_input': CONTEXT,
            'batch_size': POSITIVE_INT,
        },
        'tfp_flows.tools.latent.class_sample_figure': {
            'flow': NOT_A_FLOW,
            'num_bins': Domain('an int >= 2', [1, 17.0]),
            'temperatures': TEMPERATURES,
            'seed': Domain('an int in [0, 2**31)', [-1, 1.5]),
            'num_per_class': POSITIVE_INT,
        },
        'tfp_flows.tools.latent.class_samples': {
            'flow': NOT_A_FLOW,
            'num_classes': Domain('a positive int', [0, 1.5]),
            'num_per_class': POSITIVE_INT,
            'temperature': TEMPERATURE,
            'seed': SAMPLE['seed'],
        },
        'tfp_flows.tools.latent.decode': {
            'flow': NOT_A_FLOW,
            'z': 'a latent: each step checks its dtype and event shape',
            'conditional_input': CONTEXT,
        },
        'tfp_flows.tools.latent.encode': {
            'flow': NOT_A_FLOW,
            'x': DATA,
            'conditional_input': CONTEXT,
        },
        'tfp_flows.tools.latent.interpolate': {
            'flow': NOT_A_FLOW,
            'x_start': DATA,
            'x_end': Messages(
                (np.zeros([3, 2], np.float32), r'`x_start` and `x_end` must have the same shape')
            ),
            'num_points': Domain('an int >= 2', [1, 2.5, True]),
            'conditional_input': CONTEXT,
            'path': Domain("one of ('linear', 'spherical')", ['geodesic', None]),
        },
        'tfp_flows.tools.latent.main': {
            'argv': 'flags: argparse refuses a malformed one; the run and the folder are '
            'checked as write_figures does'
        },
        'tfp_flows.tools.latent.move': {
            'flow': NOT_A_FLOW,
            'x': DATA,
            'direction': "checked against the latent's shape once x is encoded, naming both",
            'strengths': STRENGTHS,
            'conditional_input': CONTEXT,
        },
        'tfp_flows.tools.latent.temperature_sweep': {
            'flow': NOT_A_FLOW,
            'temperatures': TEMPERATURES,
            'num_samples': POSITIVE_INT,
            'seed': SAMPLE['seed'],
            'conditional_input': CONTEXT,
        },
        'tfp_flows.tools.latent.write_figures': {
            'flow': NOT_A_FLOW,
            'x': Messages(
                (
                    np.zeros([3, 4, 4, 1]),
                    r'`x` must be at least 12 images \[N, H, W, C\]; got shape \(3, 4, 4, 1\)',
                )
            ),
            'num_bins': Domain('an int >= 2', [1, 17.0]),
            'out_dir': STR_OR_PATH,
            'labels': Messages(
                (np.zeros([12], np.int64), r'`labels` and `class_names` go together')
            ),
            'class_names': Messages((('a', 'b'), r'`labels` and `class_names` go together')),
            'conditional_input': CONTEXT,
            'temperatures': TEMPERATURES,
            'strengths': STRENGTHS,
            'num_points': Domain('an int >= 2', [1]),
            'num_rows': Domain('a positive int', [0, 1.5]),
            'seed': Domain('an int in [0, 2**31)', [-1, 2**31]),
        },
        'tfp_flows.run.workdir.Rerun': {
            name: 'a record that check_rerun fills with what it found'
            for name in ('workdir', 'changed', 'checkpoint', 'metrics', 'finished', 'differing')
        },
        'tfp_flows.run.workdir.check_export_dir': {
            'export_dir': Messages(
                (3, r'`export_dir` must be None, a str or a path; got 3\.'),
                (
                    os.path.join(_EXPORT_DIR, 'run', 'model'),
                    r"export_dir '.*' overlaps the workdir",
                ),
            ),
            'workdir': STR_OR_PATH,
        },
        'tfp_flows.run.workdir.check_path': {
            'name': 'the label the message uses',
            'value': STR_OR_PATH,
            'allow_none': 'a flag of the check: whether None passes',
        },
        'tfp_flows.run.workdir.check_rerun': {'workdir': STR_OR_PATH, 'config': CONFIG},
        'tfp_flows.run.workdir.check_writable': {'workdir': STR_OR_PATH},
        'tfp_flows.run.workdir.copy_export': {
            'workdir': STR_OR_PATH,
            'export_dir': Messages(
                (None, r'`export_dir` must be a str or a path; got None\.'),
                (
                    os.path.join(_EXPORT_DIR, 'run', 'model'),
                    r"export_dir '.*' overlaps the workdir",
                ),
            ),
        },
        'tfp_flows.run.workdir.finished_message': {
            'rerun': Messages((None, r'`rerun` must be the Rerun of a finished run')),
            'epochs': Domain('a positive int', [0, 1.5]),
        },
        'tfp_flows.run.workdir.last_checkpoint': {'workdir': STR_OR_PATH},
        'tfp_flows.run.workdir.leaves': {'config': CONFIG},
        'tfp_flows.run.workdir.read_json': {'path': STR_OR_PATH},
        'tfp_flows.run.workdir.write_json': {
            'path': STR_OR_PATH,
            'value': Messages((object(), r'Object of type object is not JSON serializable')),
        },
        'tfp_flows.run.workdir.write_config': {
            'workdir': STR_OR_PATH,
            'resolved': Messages((None, r'`resolved` must be the resolved config as a dict')),
            'rerun': Messages((None, r'`rerun` must be a Rerun')),
            'epoch': Domain('an int >= 0', [-1, 1.5, None]),
        },
        'tfp_flows.run.workdir.written_outputs': {
            'workdir': STR_OR_PATH,
            'export_dir': OPTIONAL_PATH,
        },
        # train.py's helpers: their inputs come from train.py and absl, checked there.
        'tfp_flows.run.cli.default_workdir': {
            'recipe_path': "the --config flag's file, which ml_collections has loaded"
        },
        'tfp_flows.run.cli.error_line': {
            'error': 'any exception or message: its innermost message'
        },
        'tfp_flows.run.cli.exit_on_flag_errors': {
            'argv': 'None (sys.argv) or the command line train.py was given'
        },
        'tfp_flows.run.cli.format_config': {
            'config': CONFIG,
            'recipe': "the recipe's file name, only shown",
        },
        'tfp_flows.run.cli.help_text': {
            'recipes_dir': "train.py's configs/ folder",
            'flag_names': 'flags train.py defined (absl raises for an undefined one)',
        },
        'tfp_flows.run.cli.interrupted_message': {
            'workdir': STR_OR_PATH,
            'argv': 'None (sys.argv) or the command line, only shown',
        },
        'tfp_flows.run.cli.make_flags_parser': {'help_fn': "train.py's help text function"},
        'tfp_flows.run.cli.recipes': {
            'directory': 'a folder whose *.py files glob lists (none: [])'
        },
        'tfp_flows.run.cli.result_lines': {
            'metrics': 'the dict train_and_evaluate returned',
            'workdir': "the run's workdir; written_outputs checks it",
            'export_dir': 'None or the export path; written_outputs checks it',
        },
    }
)


@functools.cache
def _vector_flow():
    return tfp_flows.real_nvp((2,), num_steps=1, hidden_channels=4)


@functools.cache
def _image_flow():
    return tfp_flows.glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4)


@functools.cache
def _conditional_image_flow():
    return tfp_flows.glow(
        (4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4, conditional_shape=(2,)
    )


@functools.cache
def _trainer():
    return trainer.FlowTrainer(_vector_flow())


_OTHER_DIR = tempfile.mkdtemp(prefix='tfp_flows_test_arguments_other_')
atexit.register(shutil.rmtree, _OTHER_DIR, ignore_errors=True)


def _later_defaults():
    """The valid arguments of the training side, the run and its tools."""
    in_export_dir = functools.partial(os.path.join, _EXPORT_DIR)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(), _OTHER_DIR, max_to_keep=1)
    scalar = tf.Variable(0, dtype=tf.int64)
    dequantizer = VariationalDequantizer((2, 2, 1), 17, num_steps=2, hidden_channels=4)
    density = dict(flow=_vector_flow(), points=np.zeros([4, 2]), path=in_export_dir('d.png'))
    samples = dict(
        flow=_image_flow(), directory=in_export_dir('samples'), num_bins=17, temperatures=(1.0,)
    )
    vectors = dict(flow=_vector_flow(), x=np.zeros([2, 2], np.float32))
    run = dict(workdir=in_export_dir('run'))
    flow_trainer = _trainer()
    return {
        'tfp_flows.models.check_flow': (models.check_flow, {}),
        'tfp_flows.tools.pictures.check_points': (images.check_points, {}),
        'tfp_flows.bijectors.prior.LearnedPrior': (bijectors.LearnedPrior, dict(event_shape=(4,))),
        'tfp_flows.networks.ZeroDense': (networks.ZeroDense, dict(input_size=1, output_size=2)),
        'tfp_flows.networks.check_dropout_rate': (networks.check_dropout_rate, {}),
        'tfp_flows.networks.check_training': (networks.check_training, {}),
        'tfp_flows.run.config_checks.check_config': (tfp_flows.run.config_checks.check_config, {}),
        'tfp_flows.dequantization.variational.VariationalDequantizer': (
            VariationalDequantizer,
            dict(event_shape=(2, 2, 1), num_bins=17, num_steps=2, hidden_channels=4),
        ),
        'tfp_flows.dequantization.variational.VariationalDequantizer.context': (
            dequantizer.context,
            dict(pixels=np.zeros([1, 2, 2, 1], np.int32)),
        ),
        'tfp_flows.dequantization.variational.VariationalDequantizer.sample_and_log_prob': (
            dequantizer.sample_and_log_prob,
            dict(pixels=np.zeros([1, 2, 2, 1], np.int32), seed=[1, 2]),
        ),
        'tfp_flows.dequantization.variational.VariationalDequantizer.noise_and_log_prob': (
            dequantizer.noise_and_log_prob,
            dict(base_noise=np.zeros([1, 2, 2, 1], np.float32), pixels=np.zeros([1, 2, 2, 1])),
        ),
        'tfp_flows.dequantization.variational.VariationalDequantizer.log_prob': (
            dequantizer.log_prob,
            dict(noise=np.full([1, 2, 2, 1], 0.5, np.float32), pixels=np.zeros([1, 2, 2, 1])),
        ),
        'tfp_flows.tools.baselines.pixel_histogram_log_probs': (
            baselines.pixel_histogram_log_probs,
            dict(pixels=[[0, 16]], num_bins=17),
        ),
        'tfp_flows.tools.baselines.pixel_histogram_bits_per_dim': (
            baselines.pixel_histogram_bits_per_dim,
            dict(log_probs=np.log(np.full([2, 17], 1 / 17)), pixels=[[0, 16]]),
        ),
        'tfp_flows.tools.baselines.histogram_baseline': (
            baselines.histogram_baseline,
            dict(train=[[0, 16]], validation=[[1, 2]], test=[[3, 4]], num_bins=17),
        ),
        'tfp_flows.run.cli.check_config': (tfp_flows.run.cli.check_config, {}),
        'tfp_flows.run.cli.none_from_flags': (tfp_flows.run.cli.none_from_flags, {}),
        'tfp_flows.training.trainer.FlowTrainer': (trainer.FlowTrainer, dict(flow=_vector_flow())),
        'tfp_flows.training.trainer.FlowTrainer.call': (flow_trainer.call, dict(x=vectors['x'])),
        'tfp_flows.training.trainer.FlowTrainer.per_example_loss': (
            flow_trainer.per_example_loss,
            dict(x=vectors['x']),
        ),
        'tfp_flows.training.trainer.FlowTrainer.compile': (
            flow_trainer.compile,
            dict(optimizer=keras.optimizers.SGD()),
        ),
        'tfp_flows.training.trainer.FlowTrainer.fit': (
            flow_trainer.fit,
            dict(x=vectors['x'], verbose=0),
        ),
        'tfp_flows.training.trainer.FlowTrainer.evaluate': (
            flow_trainer.evaluate,
            dict(x=vectors['x'], verbose=0),
        ),
        'tfp_flows.training.trainer.FlowTrainer.predict': (
            flow_trainer.predict,
            dict(x=vectors['x'], verbose=0),
        ),
        'tfp_flows.training.trainer.split_batch': (trainer.split_batch, {}),
        'tfp_flows.training.optimizers.FusedAdam': (optimizers.FusedAdam, {}),
        'tfp_flows.training.optimizers.FusedAdamax': (optimizers.FusedAdamax, {}),
        'tfp_flows.training.optimizers.make_optimizer': (optimizers.make_optimizer, {}),
        'tfp_flows.run.experiment.train_and_evaluate': (
            experiment.train_and_evaluate,
            dict(config=default.get_config(), **run),
        ),
        'tfp_flows.run.restore.build_flow': (
            run_model.build_flow,
            dict(model_config=default.get_config().model, event_shape=(8, 8, 1)),
        ),
        'tfp_flows.run.restore.build_optimizer': (
            run_model.build_optimizer,
            dict(train_config=default.get_config().train, steps_per_epoch=10),
        ),
        'tfp_flows.run.restore.data_flow': (
            run_model.data_flow,
            dict(flow=_vector_flow(), data_name='moons'),
        ),
        'tfp_flows.run.restore.restore_flow': (
            run_model.restore_flow,
            dict(workdir=in_export_dir('no_run')),
        ),
        'tfp_flows.run.restore.restore_flow_and_dequantizer': (
            run_model.restore_flow_and_dequantizer,
            dict(workdir=in_export_dir('no_run')),
        ),
        'tfp_flows.run.restore.build_dequantizer': (
            run_model.build_dequantizer,
            dict(
                dequantizer_config=default.get_config().dequantizer,
                event_shape=(8, 8, 1),
                num_bins=17,
                dtype='float32',
                seed=0,
            ),
        ),
        'tfp_flows.run.callbacks.CheckpointCallback': (
            callbacks.CheckpointCallback,
            dict(latest=manager, best=manager, epoch=scalar, best_value=scalar),
        ),
        'tfp_flows.run.callbacks.DensityPictures': (callbacks.DensityPictures, density),
        'tfp_flows.run.callbacks.DensityPictures.write': (
            callbacks.DensityPictures(**density).write,
            {},
        ),
        'tfp_flows.run.callbacks.SamplePictures': (callbacks.SamplePictures, samples),
        'tfp_flows.run.callbacks.SamplePictures.write': (
            callbacks.SamplePictures(**samples).write,
            {},
        ),
        'tfp_flows.run.callbacks.MetricScalars': (
            callbacks.MetricScalars,
            dict(log_dir=in_export_dir('logs'), unit='bits_per_dim'),
        ),
        'tfp_flows.run.callbacks.StopOnNonFinite': (callbacks.StopOnNonFinite, {}),
        'tfp_flows.run.callbacks.TimeLimit': (callbacks.TimeLimit, dict(max_seconds=1.0)),
        'tfp_flows.run.callbacks.log_test_metrics': (
            callbacks.log_test_metrics,
            dict(log_dir=in_export_dir('logs'), unit='bits_per_dim', value=2.5, step=1),
        ),
        'tfp_flows.data.own.csv_source': (
            own_data.csv_source,
            dict(
                path=in_export_dir('none.csv'),
                split='train',
                columns=None,
                context_columns=None,
                conditional=False,
            ),
        ),
        'tfp_flows.data.own.folder_source': (
            own_data.folder_source,
            dict(path=in_export_dir('none'), split='train', image_size=None, conditional=False),
        ),
        'tfp_flows.data.own.load_folder': (
            own_data.load_folder,
            dict(path=in_export_dir('none'), split='train'),
        ),
        'tfp_flows.data.own.placeholder_statistics': (
            own_data.placeholder_statistics,
            dict(num_columns=2),
        ),
        'tfp_flows.data.own.read_csv': (own_data.read_csv, dict(path=in_export_dir('none.csv'))),
        'tfp_flows.data.own.split_indices': (own_data.split_indices, dict(count=10, split='train')),
        'tfp_flows.data.own.standardize_flow': (
            own_data.standardize_flow,
            dict(flow=_vector_flow(), statistics=own_data.placeholder_statistics(2)),
        ),
        'tfp_flows.data.own.table_statistics': (
            own_data.table_statistics,
            dict(
                path='table.csv',
                x=np.ones([10, 2]),
                c=np.ones([10, 0]),
                columns=('a', 'b'),
                context_columns=(),
            ),
        ),
        'tfp_flows.tools.latent.class_directions': (
            latent.class_directions,
            dict(**vectors, labels=np.array([0, 1]), num_classes=2),
        ),
        'tfp_flows.tools.latent.class_sample_figure': (
            latent.class_sample_figure,
            dict(flow=_conditional_image_flow(), num_bins=17, temperatures=(1.0,), seed=0),
        ),
        'tfp_flows.tools.latent.class_samples': (
            latent.class_samples,
            dict(flow=_conditional_image_flow(), num_classes=2, num_per_class=1),
        ),
        'tfp_flows.tools.latent.decode': (latent.decode, dict(flow=_vector_flow(), z=vectors['x'])),
        'tfp_flows.tools.latent.encode': (latent.encode, vectors),
        'tfp_flows.tools.latent.interpolate': (
            latent.interpolate,
            dict(flow=_vector_flow(), x_start=vectors['x'], x_end=vectors['x']),
        ),
        'tfp_flows.tools.latent.move': (
            latent.move,
            dict(**vectors, direction=np.zeros([2], np.float32), strengths=(1.0,)),
        ),
        'tfp_flows.tools.latent.temperature_sweep': (
            latent.temperature_sweep,
            dict(flow=_vector_flow(), temperatures=(1.0,), num_samples=2, seed=0),
        ),
        'tfp_flows.tools.latent.write_figures': (
            latent.write_figures,
            dict(
                flow=_image_flow(),
                x=np.zeros([12, 4, 4, 1], np.float32),
                num_bins=17,
                out_dir=in_export_dir('latent'),
            ),
        ),
        'tfp_flows.run.workdir.check_export_dir': (
            workdirs.check_export_dir,
            dict(export_dir=in_export_dir('export'), **run),
        ),
        'tfp_flows.run.workdir.check_path': (workdirs.check_path, dict(name='value', value='x')),
        'tfp_flows.run.workdir.check_rerun': (
            workdirs.check_rerun,
            dict(config=default.get_config(), **run),
        ),
        'tfp_flows.run.workdir.check_writable': (workdirs.check_writable, run),
        'tfp_flows.run.workdir.copy_export': (
            workdirs.copy_export,
            dict(export_dir=in_export_dir('export'), **run),
        ),
        'tfp_flows.run.workdir.finished_message': (
            workdirs.finished_message,
            dict(rerun=RERUN, epochs=1),
        ),
        'tfp_flows.run.workdir.last_checkpoint': (workdirs.last_checkpoint, run),
        'tfp_flows.run.workdir.leaves': (workdirs.leaves, {}),
        'tfp_flows.run.workdir.read_json': (workdirs.read_json, {}),
        'tfp_flows.run.workdir.write_json': (
            workdirs.write_json,
            dict(path=in_export_dir('x.json'), value={}),
        ),
        'tfp_flows.run.workdir.write_config': (
            workdirs.write_config,
            dict(resolved={}, rerun=RERUN, epoch=0, **run),
        ),
        'tfp_flows.run.workdir.written_outputs': (workdirs.written_outputs, run),
        'tfp_flows.run.cli.format_config': (
            tfp_flows.run.cli.format_config,
            dict(recipe='default.py'),
        ),
        'tfp_flows.run.cli.interrupted_message': (
            tfp_flows.run.cli.interrupted_message,
            dict(argv=[]),
        ),
    }


@functools.cache
def _defaults():
    """Key: (callable, valid arguments), built once, when a test first needs them (only
    refused calls use them, so they keep their state)."""
    act_norm = bijectors.ActNorm(2)
    sample = dict(flow=_vector_flow(), sample_shape=2, temperature=1.0, seed=1)
    iw = dict(flow=_image_flow(), dequantizer=None, pixels=np.zeros([1, 4, 4, 1]), num_bins=17)
    coupling = dict(event_shape=(4,), hidden_channels=4)
    return {
        'tfp_flows.models.glow': (
            tfp_flows.glow,
            dict(event_shape=(4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4),
        ),
        'tfp_flows.models.real_nvp': (
            tfp_flows.real_nvp,
            dict(event_shape=(4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4),
        ),
        'tfp_flows.models.sample': (tfp_flows.sample, sample),
        'tfp_flows.models.sample_latent': (tfp_flows.models.sample_latent, sample),
        'tfp_flows.models.check_temperature': (
            tfp_flows.models.check_temperature,
            dict(temperature=1.0, dtype=tf.float32),
        ),
        'tfp_flows.dequantization.bits_per_dim': (
            tfp_flows.bits_per_dim,
            dict(log_prob=0.0, num_dims=4, num_bins=17),
        ),
        'tfp_flows.dequantization.uniform_dequantize': (
            tfp_flows.uniform_dequantize,
            dict(pixels=[[0, 16]], num_bins=17),
        ),
        'tfp_flows.dequantization.dequantize': (
            dequantization.dequantize,
            dict(pixels=[[0, 16]], num_bins=17),
        ),
        'tfp_flows.dequantization.dequantized_bits_per_dim': (
            dequantization.dequantized_bits_per_dim,
            dict(flow=_image_flow(), dequantizer=None, pixels=np.zeros([1, 4, 4, 1]), num_bins=17),
        ),
        'tfp_flows.dequantization.importance_weighted_log_likelihood': (
            dequantization.importance_weighted_log_likelihood,
            dict(**iw, num_samples=2, seed=0),
        ),
        'tfp_flows.dequantization.importance_weighted_bits_per_dim': (
            dequantization.importance_weighted_bits_per_dim,
            dict(**iw, num_samples=2, seed=0),
        ),
        'tfp_flows.initialization.initialize': (
            initialization.initialize,
            dict(flow=_vector_flow(), data=np.zeros([2, 2], np.float32)),
        ),
        'tfp_flows.bijectors.actnorm.ActNorm': (bijectors.ActNorm, dict(num_channels=2)),
        'tfp_flows.bijectors.actnorm.ActNorm.initialize': (
            act_norm.initialize,
            dict(y=np.ones([2, 2], np.float32)),
        ),
        'tfp_flows.bijectors.actnorm.ActNorm.initialize_from_moments': (
            act_norm.initialize_from_moments,
            dict(mean=np.zeros([2], np.float32), variance=np.ones([2], np.float32)),
        ),
        'tfp_flows.bijectors.coupling.AffineCoupling': (bijectors.AffineCoupling, coupling),
        'tfp_flows.bijectors.coupling.AdditiveCoupling': (bijectors.AdditiveCoupling, coupling),
        'tfp_flows.bijectors.preprocessing.Centre': (bijectors.Centre, dict(event_shape=(4,))),
        'tfp_flows.bijectors.preprocessing.LogitTransform': (
            bijectors.LogitTransform,
            dict(event_shape=(4,)),
        ),
        'tfp_flows.bijectors.chain.Chain': (
            bijectors.Chain,
            dict(steps=[act_norm], event_ndims=1),
        ),
        'tfp_flows.bijectors.multiscale.FactorOut': (
            bijectors.FactorOut,
            dict(event_shape=(2, 2, 2), inner=tfb.Identity()),
        ),
        'tfp_flows.bijectors.base.FlowBijector.forward_and_log_det': (
            act_norm.forward_and_log_det,
            dict(x=tf.zeros([3, 2])),
        ),
        'tfp_flows.bijectors.base.FlowBijector.inverse_and_log_det': (
            act_norm.inverse_and_log_det,
            dict(y=tf.zeros([3, 2])),
        ),
        'tfp_flows.bijectors.invertible_conv.InvertibleConv1x1': (
            bijectors.InvertibleConv1x1,
            dict(num_channels=2),
        ),
        'tfp_flows.bijectors.invertible_conv.LUInvertibleConv1x1': (
            bijectors.LUInvertibleConv1x1,
            dict(num_channels=2),
        ),
        'tfp_flows.bijectors.squeeze.Squeeze': (bijectors.Squeeze, {}),
        'tfp_flows.networks.ConvNet': (
            networks.ConvNet,
            dict(input_channels=1, output_channels=2, hidden_channels=4),
        ),
        'tfp_flows.networks.DenseNet': (networks.DenseNet, dict(input_size=1, output_size=2)),
        'tfp_flows.networks.ZeroConv': (
            networks.ZeroConv,
            dict(input_channels=1, output_channels=2),
        ),
        'tfp_flows.networks.ZeroDense': (networks.ZeroDense, dict(input_size=1, output_size=2)),
        'tfp_flows.bijectors.prior.LearnedPrior': (
            bijectors.LearnedPrior,
            dict(event_shape=(2, 2, 2)),
        ),
        'tfp_flows.data.augment_flip': (data.augment_flip, dict(images=tf.zeros([4, 4, 1]))),
        'tfp_flows.data.load_digits': (data.load_digits, dict(split='train')),
        'tfp_flows.data.load_images': (data.load_images, dict(name='mnist', split='train')),
        'tfp_flows.data.make_dataset': (
            data.make_dataset,
            dict(name='moons', split='test', batch_size=8, shuffle=False),
        ),
        'tfp_flows.data.toy_2d': (data.toy_2d, dict(name='moons', num_samples=4, seed=0)),
        'tfp_flows.export.FlowModule': (export.FlowModule, dict(flow=_vector_flow())),
        'tfp_flows.export.export_saved_model': (
            export.export_saved_model,
            dict(flow=_vector_flow(), path=os.path.join(_EXPORT_DIR, 'model')),
        ),
        'tfp_flows.tools.pictures.check_temperatures': (
            images.check_temperatures,
            dict(temperatures=(1.0,)),
        ),
        'tfp_flows.tools.pictures.density_figure': (
            images.density_figure,
            dict(log_prob_fn=lambda x: tf.zeros([x.shape[0]]), points=np.zeros([4, 2])),
        ),
        'tfp_flows.tools.pictures.image_grid': (
            images.image_grid,
            dict(images=np.zeros([2, 4, 4, 1])),
        ),
        'tfp_flows.tools.pictures.labelled_panels': (
            images.labelled_panels,
            dict(pictures=[np.zeros([4, 4, 3], np.uint8)], titles=['t']),
        ),
        'tfp_flows.tools.pictures.sample_figure': (
            images.sample_figure,
            dict(flow=_image_flow(), num_bins=17, temperatures=(1.0,), seed=0),
        ),
        'tfp_flows.tools.pictures.upscale_factor': (
            images.upscale_factor,
            dict(image_shape=(8, 8), grid_shape=(2, 2)),
        ),
        'tfp_flows.tools.pictures.write_png': (
            images.write_png,
            dict(
                path=os.path.join(_EXPORT_DIR, 'picture.png'),
                picture=np.zeros([4, 4, 1], np.uint8),
            ),
        ),
        'tfp_flows.tools.figures.run_figure': (
            figures.run_figure,
            dict(workdir=os.path.join(_EXPORT_DIR, 'no_run')),
        ),
        'tfp_flows.training.distribute.check_thread_count': (
            tfp_flows.training.distribute.check_thread_count,
            dict(name='threads', value=0),
        ),
        'tfp_flows.training.distribute.configure_threads': (
            tfp_flows.training.distribute.configure_threads,
            {},
        ),
        'tfp_flows.training.distribute.make_strategy': (
            tfp_flows.training.distribute.make_strategy,
            {},
        ),
        'tfp_flows.mixed_precision.check_dtype_policy': (
            tfp_flows.mixed_precision.check_dtype_policy,
            dict(dtype_policy=None),
        ),
        'tfp_flows.mixed_precision.compute_dtype': (
            tfp_flows.mixed_precision.compute_dtype,
            dict(dtype_policy=None),
        ),
        'tfp_flows.mixed_precision.dtype_policy_of': (
            tfp_flows.mixed_precision.dtype_policy_of,
            dict(flow=_vector_flow()),
        ),
        'tfp_flows.run.config_checks.check_config_values': (
            tfp_flows.run.config_checks.check_config_values,
            {},
        ),
        'tfp_flows.run.config_checks.field_values': (tfp_flows.run.config_checks.field_values, {}),
        'tfp_flows.run.config_checks.unchecked_keys': (
            tfp_flows.run.config_checks.unchecked_keys,
            {},
        ),
        **_later_defaults(),
    }


def _python_cases():
    return [
        pytest.param(key, name, value, message, id=f'{key.split(".")[-1]}-{name}-{i}')
        for key, arguments in BAD.items()
        for name, entry in arguments.items()
        if not isinstance(entry, str)
        for i, (value, message) in enumerate(entry.cases(name))
    ]


def _call(key, name, value):
    """Calls `key` with valid arguments but `name=value`; returns the names of the
    variables created meanwhile (none, if the value is refused before any work)."""
    function, arguments = _defaults()[key]
    created = []

    def creator(next_creator, **kwargs):
        created.append(kwargs.get('name'))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(creator):
        try:
            function(**{**arguments, name: value})
        finally:
            assert created == [], f'{key} created variables {created} before refusing {name}'
            assert os.listdir(_EXPORT_DIR) == [], f'{key} wrote files before refusing {name}'


# Tensor arguments, checked at run time: key: {parameter: [(value, message regex)]}.
def _scalar(name, domain, values):
    return [(v, re.escape(f'`{name}` must be {domain}; got {format_value(v)}.')) for v in values]


def _values(name, domain, cases):
    template = f'`{name}` must be {domain}; got {{}} value(s) outside it, the first: {{}}.'
    return [(v, re.escape(template.format(count, first))) for v, count, first in cases]


TEMPERATURE_TENSORS = _scalar(
    'temperature', 'a finite number > 0', [np.float32(v) for v in (INF, NAN, 0.0, -1.0)]
)
SAMPLE_SHAPE_TENSORS = _scalar(
    'sample_shape',
    'an int >= 0 or a list of ints >= 0',
    [np.int32(-1), np.array([2, -1], np.int32)],
)
TENSOR = {
    'tfp_flows.models.sample': {
        'temperature': TEMPERATURE_TENSORS,
        'sample_shape': SAMPLE_SHAPE_TENSORS,
    },
    'tfp_flows.models.sample_latent': {
        'temperature': TEMPERATURE_TENSORS,
        'sample_shape': SAMPLE_SHAPE_TENSORS,
    },
    'tfp_flows.models.check_temperature': {'temperature': TEMPERATURE_TENSORS},
    'tfp_flows.dequantization.uniform_dequantize': {
        'pixels': _values(
            'pixels',
            'integers in [0, 16]',
            [
                (np.array([[0, 17, -1]]), 2, '[17 -1]'),
                (np.array([[0.5, 1.0]], np.float32), 1, '[0.5]'),
                (np.array([[NAN, 1.0]], np.float32), 1, '[nan]'),
            ],
        )
    },
    'tfp_flows.initialization.initialize': {
        'data': _values(
            'data',
            'finite values',
            [(np.array([[NAN, 0.0], [0.0, INF]], np.float32), 2, '[nan inf]')],
        )
    },
    'tfp_flows.bijectors.actnorm.ActNorm.initialize': {
        'y': _values('y', 'finite values', [(np.array([[NAN, 0.0]], np.float32), 1, '[nan]')])
    },
    'tfp_flows.bijectors.actnorm.ActNorm.initialize_from_moments': {
        'mean': _values(
            'mean', 'finite values', [(np.array([NAN, INF], np.float32), 2, '[nan inf]')]
        ),
        'variance': _values(
            'variance',
            'finite values >= 0',
            [(np.array([-1.0, NAN], np.float32), 2, '[-1 nan]')],
        ),
    },
}


def test_every_parameter_of_the_public_api_is_listed():
    listed = {key: set(BAD.get(key, {})) | set(TENSOR.get(key, {})) for key in BAD}
    missing, stale = [], []
    callables = _public_callables()
    for key, obj in callables.items():
        for name in _parameters(obj):
            if name not in listed.get(key, ()):
                missing.append(f'{key}({name})')
    for key, names in listed.items():
        parameters = set(_parameters(callables[key])) if key in callables else set()
        stale += [f'{key}({name})' for name in names - parameters]
    assert not missing, f'parameters without a domain check in BAD or TENSOR: {missing}'
    assert not stale, f'entries of parameters that do not exist: {stale}'
    defaults = _defaults()
    assert not [
        key
        for key, arguments in BAD.items()
        if any(not isinstance(e, str) for e in arguments.values()) and key not in defaults
    ]


@pytest.mark.parametrize(('key', 'name', 'value', 'message'), _python_cases())
def test_a_bad_python_value_is_refused_by_name_before_any_work(key, name, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _call(key, name, value)


def _tensor_cases():
    return [
        pytest.param(key, name, value, message, id=f'{key.split(".")[-1]}-{name}-{i}')
        for key, arguments in TENSOR.items()
        for name, cases in arguments.items()
        for i, (value, message) in enumerate(cases)
    ]


@pytest.mark.parametrize(('key', 'name', 'value', 'message'), _tensor_cases())
def test_a_bad_tensor_is_refused_by_name_eagerly_and_inside_tf_function(key, name, value, message):
    function, arguments = _defaults()[key]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        function(**{**arguments, name: tf.constant(value)})
    traced = tf.function(lambda v: function(**{**arguments, name: v}))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        traced(tf.constant(value))


@pytest.mark.parametrize(
    ('name', 'value'),
    [('temperature', -1.0), ('temperature', 0.0), ('temperature', INF), ('sample_shape', -1)],
)
def test_a_python_number_and_a_tensor_of_it_get_the_same_message(name, value):
    flow = _vector_flow()
    arguments = dict(sample_shape=2, seed=1)
    errors = []
    for given in (value, tf.constant(value)):
        with pytest.raises((ValueError, tf.errors.InvalidArgumentError)) as error:
            tfp_flows.sample(flow, **{**arguments, name: given})
        errors.append(str(error.value))
    assert errors[0] == errors[1]
    traced = tf.function(lambda v: tfp_flows.sample(flow, **{**arguments, name: v}))
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        traced(tf.constant(value))
    assert f'[{errors[0]}]' in str(error.value)


def test_a_refused_initialize_leaves_every_actnorm_uninitialised():
    flow = tfp_flows.real_nvp((2,), num_steps=2, hidden_channels=4)
    bad = tf.constant([[NAN, 0.0], [1.0, 2.0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match='`data` must be finite values'):
        tfp_flows.initialize(flow, bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match='`data` must be finite values'):
        tf.function(lambda x: tfp_flows.initialize(flow, x))(bad)
    flags = [v for v in flow.variables if 'initialized' in v.name]
    assert len(flags) == 2 and not any(bool(v.numpy()) for v in flags)
    assert all(np.all(v.numpy() == 0) for v in flow.trainable_variables if 'act_norm' in v.name)


def test_handed_cases_of_issue_10_are_refused():
    flow = _vector_flow()
    # `tfp_flows.sample(flow, 2, temperature=float('inf'))` returned non-finite samples.
    with pytest.raises(ValueError, match=r'`temperature` must be a finite number > 0; got inf\.'):
        tfp_flows.sample(flow, 2, temperature=INF)
    # A tensor temperature was never checked.
    for value, shown in [(NAN, 'nan'), (INF, 'inf'), (0.0, '0'), (-1.0, '-1')]:
        message = rf'`temperature` must be a finite number > 0; got {shown}\.'
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            tfp_flows.sample(flow, 2, temperature=tf.constant(value))
    # A vector temperature scaled each coordinate of the latent by its own value.
    with pytest.raises(ValueError, match=r'`temperature` .*; got \[0.5 1\]\.'):
        tfp_flows.sample(flow, 2, temperature=tf.constant([0.5, 1.0]))
    # A float sample shape drew int(2.5) = 2 samples, a negative one failed inside TF.
    for shape in (2.5, -1):
        with pytest.raises(ValueError, match=r'`sample_shape` must be an int >= 0'):
            tfp_flows.sample(flow, shape)
    assert tfp_flows.sample(flow, 2, temperature=tf.constant(0.7), seed=1).shape == [2, 2]


def test_sample_with_a_checked_tensor_temperature_compiles_with_xla():
    # XLA has no string ops: the run-time check must leave out its message there.
    flow = _vector_flow()
    sample = tf.function(lambda t: tfp_flows.sample(flow, 3, t, seed=1), jit_compile=True)
    assert sample(tf.constant(0.7)).shape == [3, 2]


@pytest.mark.parametrize(
    ('flags', 'message'),
    [
        (['--temperatures', 'inf'], r'`--temperatures` must be .*finite numbers > 0; got \[inf\]'),
        (['--temperatures', '0.7', 'nan'], r'`--temperatures` .*; got \[0.7, nan\]'),
        (['--temperatures', '-1'], r'`--temperatures` .*; got \[-1.0\]'),
        (['--seed', '-1'], r'`--seed` must be an int in \[0, 2\*\*31\); got -1\.'),
    ],
)
def test_figure_flags_are_checked_before_any_work(flags, message, tmp_path, capsys):
    # The workdir holds no run: a flag error first means nothing was read or written.
    out = tmp_path / 'figure.png'
    assert figures.main([f'--workdir={tmp_path / "no_run"}', f'--out={out}', *flags]) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and re.search(message, error), error
    assert os.listdir(tmp_path) == []
