"""SavedModel export of a flow: plain TensorFlow signatures that load without tfp_flows.

`export_saved_model(flow, path)` writes a SavedModel of a `FlowModule`: the flow's bijector
(every variable, each ActNorm's `initialized` flag too) and `tf.function`s with fixed input
signatures returning dicts of tensors; no Distribution. A process that imports only TensorFlow
reads it:

    loaded = tf.saved_model.load(path)
    loaded.log_prob(x)['log_prob']              # [N]; N is any batch size
    loaded.signatures['log_prob'](x=x)          # the same dict; also 'serving_default'
    loaded.sample(16, 0.7, [1, 2])['x']         # [16, *E]; the same seed, the same samples

Signatures (E the flow's event shape, `dtype` its dtype; what each computes: `FlowModule`):

    name            inputs                                   outputs
    log_prob        x: [None, *E] dtype                      log_prob: [None] dtype
    bits_per_dim    x: [None, *E] dtype                      bits_per_dim: [None] dtype
    bits_per_dim_iw pixels: [None, *E] int32,                bits_per_dim: [None] dtype
                    num_samples: [] int32, seed: [2] int32
    sample          num_samples: [] int32,                   x: [None, *E] dtype
                    temperature: [] dtype, seed: [2] int32
    encode          x: [None, *E] dtype                      z: [None, *E] dtype
    decode          z: [None, *E] dtype                      x: [None, *E] dtype

`serving_default` is `log_prob`; the `bits_per_dim` ones exist only with `num_bins`. A
conditional flow (`conditional_shape` K) takes a last input in every signature,
`conditional_input: [None, *K] dtype`: one context per example (per sample), or [1, *K] for
all. Integer inputs are int32; `loaded.NAME(...)` casts NumPy arrays and Python numbers, not
TF tensors. An empty batch gives empty outputs.

Errors: an input outside its domain, or of another shape through `loaded.signatures`, is an
`InvalidArgumentError` naming it; a tensor of another dtype or rank, or a missing input, is
TensorFlow's `TypeError` (`loaded.NAME(...)`: its first line names the input) before the graph
runs. TFLite keeps the numbers but drops every check. From the shell, for a batch saved with
`numpy.save('batch.npy', x)`:

    saved_model_cli run --dir PATH --tag_set serve --signature_def log_prob \\
        --inputs x=batch.npy
"""

import contextlib
import inspect
import math
import os

import tensorflow as tf

from tfp_flows import checks, networks, sampling
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.dequantization import (
    bits_per_dim,
    check_dequantizer,
    importance_weighted_bits_per_dim,
)
from tfp_flows.temporaries import atomic_directory

__all__ = ['FlowModule', 'export_saved_model']


def _check_flow(flow):
    """Returns (event_shape, latent_shape, dtype) of `flow` after checking what export needs."""
    sampling.check_flow(flow)
    shapes = flow.event_shape, flow.distribution.event_shape
    if not all(shape.is_fully_defined() for shape in shapes) or flow.batch_shape.rank != 0:
        raise ValueError(
            '`flow` must have static event shapes (data and latent) and batch shape []; got '
            f'{shapes[0]}, {shapes[1]} and {flow.batch_shape}.'
        )
    dtype = checks.check_float_dtype('flow.dtype', flow.dtype)
    return tuple(shapes[0].as_list()), tuple(shapes[1].as_list()), dtype


def _traced(fn, required, jit_compile):
    """`fn` as a `FlowModule` function traces it: with TF's own convolution gradients, also in
    loops (`networks.loop_gradients(False)`: a loaded `tf.cond` fails on custom gradients),
    under XLA with products per tap (`networks.tap_products`: 1.2x the passes' speed on the
    digits Glow, slower in graph mode; bench/README), and `fn`'s signature (what `tf.function`
    binds its inputs to), every argument required if `required`."""

    def call(*args, **kwargs):
        with networks.loop_gradients(False), networks.tap_products(jit_compile):
            return fn(*args, **kwargs)

    signature = inspect.signature(fn)
    if required:
        parameters = [p.replace(default=p.empty) for p in signature.parameters.values()]
        signature = signature.replace(parameters=parameters)
    call.__signature__, call.__name__ = signature, fn.__name__
    return call


class FlowModule(tf.Module):
    """What `export_saved_model` saves (in memory: the SavedModel's very numbers), with the
    module's signatures (any batch size N): `log_prob` is `flow.log_prob` (nats); `bits_per_dim`
    `tfp_flows.bits_per_dim(log_prob(x) - log q(u | k), prod(E), num_bins)`, the one-sample
    bound for the pixels k = floor(x * num_bins) and noise u = x * num_bins - k (log q = 0
    without a dequantizer); `bits_per_dim_iw` `importance_weighted_bits_per_dim`; `sample` is
    `tfp_flows.sample` (a fixed seed, the same samples in every process); `encode`, `decode`
    the bijector's inverse and forward. Checked inputs: with `num_bins`, x in [0, 1], else
    finite; z and contexts finite; num_samples >= 0 (>= 1 and pixels in [0, num_bins) for
    `bits_per_dim_iw`); temperature finite and > 0.
    """

    def __init__(
        self, flow, num_bins=None, dequantizer=None, jit_compile=False, name='flow_module'
    ):
        """Wraps `flow` (a `tfd.TransformedDistribution` of static event shape, float32 or
        float64), sharing its variables; `TypeError` or `ValueError` naming a bad argument.
        `num_bins`: None, or the levels the data was dequantized from (256 for 8-bit images),
        which adds the `bits_per_dim` signatures; `dequantizer`: None (uniform) or the flow's
        `VariationalDequantizer`; `jit_compile`: XLA for the passes (checks stay outside)."""
        event_shape, latent_shape, dtype = _check_flow(flow)
        num_bins = checks.integer(2).or_none().check('num_bins', num_bins)
        check_dequantizer(dequantizer, num_bins, event_shape, dtype)
        checks.BOOL.check('jit_compile', jit_compile)
        super().__init__(name=name)
        self.dequantizer = dequantizer
        self.bijector = flow.bijector
        self.base = flow.distribution
        self._flow = flow
        self._event_shape, self._latent_shape, self._dtype = event_shape, latent_shape, dtype
        self._num_bins = num_bins
        self._conditional_shape = conditional_shape_of(flow)
        self._make_functions(jit_compile)

    def _make_functions(self, jit_compile):
        """The `tf.function`s, with their input signatures (no autograph: nothing to convert)."""

        def function(fn, *specs, jit_compile=False):
            required = specs[-1].name == 'conditional_input'  # A call without it names it.
            return tf.function(
                _traced(fn, required, jit_compile),
                input_signature=list(specs),
                autograph=False,
                jit_compile=jit_compile,
            )

        dtype = self._dtype
        data = tf.TensorSpec([None, *self._event_shape], dtype, name='x')
        latent = tf.TensorSpec([None, *self._latent_shape], dtype, name='z')
        num_samples = tf.TensorSpec([], tf.int32, name='num_samples')
        seed = tf.TensorSpec([2], tf.int32, name='seed')
        context = []  # The context spec of a conditional flow: each function's last input.
        if self._conditional_shape is not None:
            shape = [None, *self._conditional_shape]
            context = [tf.TensorSpec(shape, dtype, name='conditional_input')]
        self._encode_pass = function(
            self._latent_and_log_density, data, *context, jit_compile=jit_compile
        )
        self._decode_pass = function(self._data, latent, *context, jit_compile=jit_compile)
        self.log_prob = function(self._log_prob, data, *context)
        temperature = tf.TensorSpec([], dtype, name='temperature')
        self.sample = function(self._sample, num_samples, temperature, seed, *context)
        self.encode = function(self._encode, data, *context)
        self.decode = function(self._decode, latent, *context)
        if self._num_bins is not None:
            self.bits_per_dim = function(self._bits_per_dim, data, *context)
            pixels = tf.TensorSpec([None, *self._event_shape], tf.int32, name='pixels')
            self.bits_per_dim_iw = function(
                self._bits_per_dim_iw, pixels, num_samples, seed, *context
            )

    event_shape = property(lambda self: self._event_shape, doc='E, a tuple of ints.')
    num_bins = property(lambda self: self._num_bins, doc='The levels of the data, or None.')
    conditional_shape = property(lambda self: self._conditional_shape, doc='K, or None.')

    def _checked(self, x, conditional_input, batch=None):
        """(x, context): x checked to be data, outside any XLA-compiled pass (XLA drops
        assertions), and `()` or `(c,)` with c finite, of [N, *K] or [1, *K] for a batch of
        N (`batch`, default x's)."""
        if x is not None:
            x = tf.ensure_shape(x, [None, *self._event_shape])
            if self._num_bins is None:
                x = checks.check_values(x, tf.math.is_finite(x), '`x` must be finite values; got')
            else:  # NaN is outside too.
                inside = (x >= tf.zeros([], x.dtype)) & (x <= tf.ones([], x.dtype))
                x = checks.check_values(
                    x, inside, '`x` must be values in [0, 1] (dequantized data); got'
                )
            batch = tf.shape(x)[0]
        if conditional_input is None:
            return x, ()
        c = tf.ensure_shape(conditional_input, [None, *self._conditional_shape])
        rows, batch = tf.shape(c, out_type=tf.int64)[0], tf.cast(batch, tf.int64)
        described = ', '.join(map(str, self._conditional_shape))
        fits = tf.debugging.Assert(
            tf.equal(rows, batch) | tf.equal(rows, 1),
            [
                '`conditional_input` must be one context per example or one for all, of shape '
                f'[N or 1, {described}] for N examples; got rows, N =',
                rows,
                batch,
            ],
        )
        with tf.control_dependencies([fits]):
            c = tf.identity(c)
        return x, (
            checks.check_values(
                c, tf.math.is_finite(c), '`conditional_input` must be finite values; got'
            ),
        )

    def _kwargs(self, context):
        """The bijector kwargs of the optional context input (`()` or `(c,)`)."""
        return {'conditional_input': context[0]} if context else {}

    def _latent_and_log_density(self, x, *context):
        kwargs = self._kwargs(context)
        event_ndims = len(self._event_shape)
        if isinstance(self.bijector, FlowBijector):  # One pass for the latent and its log-det.
            z, log_det = self.bijector.inverse_and_log_det(x, event_ndims, **kwargs)
        else:
            z = self.bijector.inverse(x, **kwargs)
            log_det = self.bijector.inverse_log_det_jacobian(x, event_ndims=event_ndims, **kwargs)
        return z, self.base.log_prob(z) + log_det

    def _data(self, z, *context):
        return self.bijector.forward(z, **self._kwargs(context))

    def _log_prob(self, x, conditional_input=None):
        x, context = self._checked(x, conditional_input)
        return {'log_prob': self._encode_pass(x, *context)[1]}

    def _bits_per_dim(self, x, conditional_input=None):
        x, context = self._checked(x, conditional_input)
        log_prob = self._encode_pass(x, *context)[1]
        if self.dequantizer is not None:
            scaled = x * self._num_bins  # x = (k + u) / B: k = floor(x B), u = x B - k.
            pixels = tf.clip_by_value(tf.floor(scaled), 0, self._num_bins - 1)
            log_prob -= self.dequantizer.log_prob(scaled - pixels, pixels)
        num_dims = math.prod(self._event_shape)
        return {'bits_per_dim': bits_per_dim(log_prob, num_dims, self._num_bins)}

    def _bits_per_dim_iw(self, pixels, num_samples, seed, conditional_input=None):
        pixels = tf.ensure_shape(pixels, [None, *self._event_shape])
        _, context = self._checked(None, conditional_input, tf.shape(pixels)[0])
        bits = importance_weighted_bits_per_dim(
            self._flow,
            self.dequantizer,
            pixels,
            self._num_bins,
            tf.ensure_shape(num_samples, []),
            tf.ensure_shape(seed, [2]),
            bijector_kwargs=self._kwargs(context) or None,
        )
        return {'bits_per_dim': bits}

    def _sample(self, num_samples, temperature, seed, conditional_input=None):
        num_samples = checks.check_values(
            tf.ensure_shape(num_samples, []),
            num_samples >= 0,
            '`num_samples` must be an int >= 0; got',
        )
        _, context = self._checked(None, conditional_input, num_samples)
        temperature = tf.ensure_shape(temperature, [])  # Checked by `sample_latent`.
        latent = sampling.sample_latent(self._flow, num_samples, temperature, seed)
        return {'x': self._decode_pass(latent, *context)}

    def _encode(self, x, conditional_input=None):
        x, context = self._checked(x, conditional_input)
        return {'z': self._encode_pass(x, *context)[0]}

    def _decode(self, z, conditional_input=None):
        z = tf.ensure_shape(z, [None, *self._latent_shape])
        z = checks.check_values(z, tf.math.is_finite(z), '`z` must be finite values; got')
        _, context = self._checked(None, conditional_input, tf.shape(z)[0])
        return {'x': self._decode_pass(z, *context)}

    def signatures(self):
        """The SavedModel signatures: {name: `tf.function`}, with 'serving_default'. (The
        functions, not concrete functions, which the save context would trace again.)"""
        names = ['log_prob', 'sample', 'encode', 'decode']
        if self._num_bins is not None:
            names += ['bits_per_dim', 'bits_per_dim_iw']
        signatures = {name: getattr(self, name) for name in names}
        signatures['serving_default'] = self.log_prob
        return signatures


_STRUCTURE = '_saved_structure'  # FlowBijector's checkpointed structure (bijectors/base.py).


@contextlib.contextmanager
def _without_saved_structures(module):
    """`module` without its bijectors' `_saved_structure` (Python state that checkpoints
    check) while it is saved: a SavedModel has the structure traced into its functions, and
    TensorFlow would note once per bijector, at save and every load, that it is not restored."""
    removed = [(m, vars(m)[_STRUCTURE]) for m in module.submodules if _STRUCTURE in vars(m)]
    for holder, _ in removed:
        delattr(holder, _STRUCTURE)
    try:
        yield
    finally:
        for holder, structure in removed:
            setattr(holder, _STRUCTURE, structure)


def export_saved_model(
    flow, path, *, num_bins=None, dequantizer=None, jit_compile=False, overwrite=False
):
    """Writes `FlowModule(flow, num_bins, dequantizer, jit_compile)` as a SavedModel at
    directory `path` (str or path-like, parent created if needed); returns its absolute path.
    Works inside a strategy scope. Written beside `path` and renamed into place: `path` never
    holds a partial export, and on failure an existing one is left as it was; `overwrite` (a
    bool) replaces it. `TypeError`, `ValueError` as `FlowModule`, and for `path` or `overwrite`;
    `FileExistsError` for an existing `path` (without `overwrite`), or one that is a file.
    """
    checks.check_path('path', path)
    checks.BOOL.check('overwrite', overwrite)
    module = FlowModule(flow, num_bins=num_bins, dequantizer=dequantizer, jit_compile=jit_compile)
    with atomic_directory(path, overwrite) as written, _without_saved_structures(module):
        tf.saved_model.save(module, written, signatures=module.signatures())
    return os.path.abspath(os.fspath(path))
