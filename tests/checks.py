"""Checks shared by the tests: log-det, round trip, random parameters, TensorBoard logs."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.bijectors import ActNorm

__all__ = [
    'DTYPES',
    'REGIMES',
    'REGIME_DTYPES',
    'assert_inverse_pair',
    'assert_log_det_matches_autodiff',
    'assert_round_trip',
    'assert_xla_matches_eager',
    'batch_jacobian',
    'graph_ops',
    'in_regime',
    'randomize_variables',
    'read_tensorboard',
    'regime_cases',
    'tolerance',
    'with_context',
]

DTYPES = [tf.float32, tf.float64]
# Execution regimes of the bijector tests, as TFP's `test_all_tf_execution_regimes`: eagerly,
# inside `tf.function`, and XLA-compiled.
REGIMES = ['eager', 'function', 'xla']
# (regime, dtype) pairs the bijector tests run: every test eagerly in both dtypes and inside
# tf.function in float64 (the tightest tolerance). XLA compiles are slow, so each bijector
# module has its own XLA test instead (`assert_xla_matches_eager`).
REGIME_DTYPES = [
    pytest.param('eager', tf.float32, id='eager-float32'),
    pytest.param('eager', tf.float64, id='eager-float64'),
    pytest.param('function', tf.float64, id='function-float64'),
]


def regime_cases(cases, traced):
    """`REGIME_DTYPES` x `cases` (tuples of parameters), but inside tf.function only the
    `traced` ones: tracing is the slow part, and the other cases take no other traced path."""
    return [
        pytest.param(*regime.values, *case, id=f'{regime.id}-{"-".join(map(str, case))}')
        for regime in REGIME_DTYPES
        for case in cases
        if regime.values[0] == 'eager' or case in traced
    ]


# Log-dets sum many terms, so float32 needs a looser bound than the outputs themselves.
_TOLERANCES = {
    tf.float32: {'rtol': 1e-4, 'atol': 1e-4, 'log_det_rtol': 1e-3, 'log_det_atol': 2e-3},
    tf.float64: {'rtol': 1e-10, 'atol': 1e-10, 'log_det_rtol': 1e-9, 'log_det_atol': 1e-9},
}


def tolerance(dtype, log_det=False):
    """`dict(rtol=..., atol=...)` for values (or, with `log_det`, log-dets) in `dtype`."""
    values = _TOLERANCES[tf.as_dtype(dtype)]
    if log_det:
        return {'rtol': values['log_det_rtol'], 'atol': values['log_det_atol']}
    return {'rtol': values['rtol'], 'atol': values['atol']}


def batch_jacobian(fn, x):
    """The Jacobian [N, D, D] of the flattened per-example map `fn` at `x` [N, ...], by autodiff.

    Same numbers as `tf.GradientTape.batch_jacobian`, in one reverse pass: each example is
    copied D times, copy i gives output i, and the gradient of the sum of those outputs with
    respect to copy i is row i. (`batch_jacobian`'s pfor conversion of a whole flow takes
    seconds per call.) `fn` must map examples independently and keep their size D.
    """
    x = tf.convert_to_tensor(x)
    num_examples, event_shape = x.shape[0], x.shape[1:]
    size = event_shape.num_elements()
    copies = tf.tile(tf.reshape(x, [num_examples, 1, size]), [1, size, 1])
    with tf.GradientTape() as tape:
        tape.watch(copies)
        y = tf.reshape(fn(tf.reshape(copies, [num_examples * size, *event_shape])), copies.shape)
        total = tf.reduce_sum(tf.linalg.diag_part(y))
    return tape.gradient(total, copies)


def assert_log_det_matches_autodiff(fn, log_det_fn, x, event_ndims, rtol, atol):
    """`fn` is `bijector.forward` or `.inverse`; `log_det_fn` is its log-det method.

    log|det| of the autodiff Jacobian of the flattened map (see `batch_jacobian`), taken in
    float64, must match `log_det_fn(x, event_ndims)` for every example.
    """
    x = tf.convert_to_tensor(x)
    sign, expected = tf.linalg.slogdet(tf.cast(batch_jacobian(fn, x), tf.float64))
    assert np.all(sign.numpy() != 0), 'the autodiff Jacobian is singular'
    actual = log_det_fn(x, event_ndims=event_ndims) + tf.zeros_like(expected, x.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


class _InRegime:
    """A bijector's forward, inverse and log-det methods, run in an execution regime.

    'eager' calls them as they are; 'function' inside `tf.function`, 'xla' inside
    `tf.function(jit_compile=True)`, each call traced anew (`event_ndims` is static).
    """

    def __init__(self, bijector, regime):
        if regime not in REGIMES:
            raise ValueError(f'unknown regime {regime!r}')
        self.bijector, self.regime = bijector, regime

    def _run(self, method, *args, **kwargs):
        if self.regime == 'eager':
            return method(*args, **kwargs)
        function = tf.function(
            lambda *a: method(*a, **kwargs), jit_compile=self.regime == 'xla', autograph=False
        )
        return function(*args)

    def forward(self, x):
        return self._run(self.bijector.forward, x)

    def inverse(self, y):
        return self._run(self.bijector.inverse, y)

    def forward_log_det_jacobian(self, x, event_ndims):
        return self._run(self.bijector.forward_log_det_jacobian, x, event_ndims=event_ndims)

    def inverse_log_det_jacobian(self, y, event_ndims):
        return self._run(self.bijector.inverse_log_det_jacobian, y, event_ndims=event_ndims)


def in_regime(bijector, regime):
    """`bijector`'s forward/inverse/log-det methods run eagerly, in tf.function or with XLA."""
    return _InRegime(bijector, regime)


def assert_xla_matches_eager(bijector, x, y, event_ndims):
    """forward, inverse and both log-dets compiled with XLA equal the eager ones.

    One compiled function for all four, so a module's XLA test compiles once.
    """

    def everything(x, y):
        return (
            bijector.forward(x),
            bijector.inverse(y),
            bijector.forward_log_det_jacobian(x, event_ndims=event_ndims),
            bijector.inverse_log_det_jacobian(y, event_ndims=event_ndims),
        )

    compiled = tf.function(everything, jit_compile=True, autograph=False)(x, y)
    eager = everything(_fresh(x), _fresh(y))
    for name, a, b in zip(['forward', 'inverse', 'fldj', 'ildj'], compiled, eager, strict=True):
        np.testing.assert_allclose(a, b, **tolerance(x.dtype, log_det=True), err_msg=name)


def with_context(fn, context):
    """`fn` with `conditional_input=` the context of each example, also for `batch_jacobian`.

    `context` is [N, *conditional_shape] for inputs x [N, ...]; `batch_jacobian` calls `fn` on
    D copies of each example in turn, [N * D, ...], which get each example's context D times.
    """

    def call(x, **kwargs):
        repeats = x.shape[0] // context.shape[0]
        return fn(x, conditional_input=tf.repeat(context, repeats, axis=0), **kwargs)

    return call


def _fresh(tensor):
    """A new tensor with the same values, so no cache keyed by the tensor can answer."""
    return tf.constant(np.array(tensor))


def assert_round_trip(bijector, x, y, event_ndims, dtype):
    """inverse(forward(x)) == x, forward(inverse(y)) == y, and ildj == -fldj at both pairs.

    Every second call gets a copy of the first call's output, so no cache can answer it.
    """
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    values = tolerance(dtype)
    forward_x = bijector.forward(x)
    np.testing.assert_allclose(bijector.inverse(_fresh(forward_x)), x, **values)
    inverse_y = bijector.inverse(y)
    np.testing.assert_allclose(bijector.forward(_fresh(inverse_y)), y, **values)
    assert_inverse_pair(bijector, x, forward_x, event_ndims, dtype)
    assert_inverse_pair(bijector, inverse_y, y, event_ndims, dtype)


def assert_inverse_pair(bijector, x, y, event_ndims, dtype):
    """ildj(y) == -fldj(x) for y = forward(x), each computed on its own tensor."""
    fldj = bijector.forward_log_det_jacobian(_fresh(x), event_ndims=event_ndims)
    ildj = bijector.inverse_log_det_jacobian(_fresh(y), event_ndims=event_ndims)
    np.testing.assert_allclose(ildj, -fldj, **tolerance(dtype, log_det=True))


def _modules(module):
    return [module, *module.submodules]


def randomize_variables(module, seed=0, scale=0.2):
    """Moves every trainable variable of `module` to random, well-conditioned values.

    Each variable gets `scale * normal / sqrt(fan_in)` added (fan_in = product of all but the
    last dim, 1 for vectors and scalars), so zero-initialised last layers of conditioners and
    split priors become non-zero and no coupling stays the identity, while a perturbed 1x1
    conv stays far from singular. Every ActNorm log-scale is drawn from U(-0.3, 0.3).
    Non-trainable state (the LU permutation and sign, the ActNorm flag) is left alone.
    Returns `module`.
    """
    rng = np.random.default_rng(seed)
    act_norm_scales = {m.log_scale.ref() for m in _modules(module) if isinstance(m, ActNorm)}
    for variable in module.trainable_variables:
        shape = variable.shape.as_list()
        if variable.ref() in act_norm_scales:
            value = rng.uniform(-0.3, 0.3, size=shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            noise = rng.standard_normal(size=shape) * scale / np.sqrt(fan_in)
            value = variable.numpy() + noise
        variable.assign(value.astype(variable.dtype.as_numpy_dtype))
    return module


def read_tensorboard(log_dir):
    """{tag: {step: value}} of the summaries in the event files directly in `log_dir`.

    Scalars come back as floats, images (`tf.summary.image`) as decoded uint8 [H, W, C].
    TF writes a tag's plugin name with its first summary only, so it is kept per tag.
    """
    values, plugins = {}, {}
    for path in sorted(tf.io.gfile.glob(os.path.join(log_dir, 'events.out.tfevents.*'))):
        for record in tf.data.TFRecordDataset(path):  # TF's own summary_iterator, undeprecated.
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    plugins[value.tag] = value.metadata.plugin_data.plugin_name
                array = tf.make_ndarray(value.tensor)
                if plugins[value.tag] == 'images':  # [width, height, PNG, ...] as strings.
                    array = tf.io.decode_png(array[2]).numpy()
                else:
                    array = float(array)
                values.setdefault(value.tag, {})[event.step] = array
    return values


def graph_ops(function, *args):
    """Ops in the traced graph, less unused zeros (TF's tape makes some the size of a stacked
    variable: a constant if TF folds it, else three ops, as the size crosses a threshold)."""
    ops = function.get_concrete_function(*args).graph.get_operations()
    dead = {op for op in ops if op.type in ('Const', 'Fill') and not op.outputs[0].consumers()}
    return len(ops) - len(dead | {t.op for op in dead for t in op.inputs})
