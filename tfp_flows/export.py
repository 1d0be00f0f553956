"""SavedModel export of a flow: plain TensorFlow signatures that load without tfp_flows.

`export_saved_model(flow, path)` writes a SavedModel of a `FlowModule`: a `tf.Module` holding
the flow's bijector, hence every variable (each ActNorm's `initialized` flag too, so nothing is
initialised again), and `tf.function`s with fixed input signatures that return dicts of
tensors. No Distribution object is saved. A process that imports only TensorFlow reads it:

    loaded = tf.saved_model.load(path)
    loaded.log_prob(x)['log_prob']              # [N]; N is any batch size
    loaded.signatures['log_prob'](x=x)          # the same dict; also 'serving_default'
    loaded.sample(16, 0.7, [1, 2])['x']         # [16, *E]; the same seed, the same samples

Signatures, with E the flow's event shape and `dtype` its float dtype (float32 or float64);
each output is a dict entry of that name:

    name            inputs                                   outputs
    log_prob        x: [None, *E] dtype                      log_prob: [None] dtype
    bits_per_dim    x: [None, *E] dtype                      bits_per_dim: [None] dtype
    bits_per_dim_iw pixels: [None, *E] int32,                bits_per_dim: [None] dtype
                    num_samples: [] int32, seed: [2] int64
    sample          num_samples: [] int32,                   x: [None, *E] dtype
                    temperature: [] dtype, seed: [2] int64
    encode          x: [None, *E] dtype                      z: [None, *E] dtype
    decode          z: [None, *E] dtype                      x: [None, *E] dtype

`serving_default` is `log_prob`; `bits_per_dim` and `bits_per_dim_iw` exist only when the
export got `num_bins` (then x must lie in [0, 1], and pixels be integers in [0, num_bins)).
With a trained dequantizer, `bits_per_dim` scores x with it (the one-sample bound of the
noise u = x * num_bins - floor(x * num_bins)). `bits_per_dim_iw` takes the discrete images
themselves and dequantizes them with the exported dequantizer (uniform without one). A
conditional flow (built with `conditional_shape` K) takes its context in every signature but
`bits_per_dim_iw`, as one more input after the others,

    conditional_input: [None, *K] dtype     one context per example, or [1, *K] for all

(`sample` takes one per sample, or one row for all samples), and its density, latent and
samples are those of p(x | conditional_input).

A tensor of another shape or dtype fails with TensorFlow's ValueError, TypeError or
InvalidArgumentError; NumPy arrays and Python numbers are converted to the input's dtype first,
as for any `tf.function`. See `FlowModule` for each function.

From the shell, `saved_model_cli show --all --dir PATH` lists the signatures, and

    saved_model_cli run --dir PATH --tag_set serve --signature_def log_prob \\
        --input_exprs 'x=np.random.uniform(size=(2,8,8,1)).astype("float32")'

evaluates one (here for an 8x8x1 float32 image flow).
"""

import contextlib
import math
import os
import shutil

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import models
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.context import conditional_shape_of
from tfp_flows.dequantization import (
    bits_per_dim,
    importance_weighted_bits_per_dim,
)
from tfp_flows.temporaries import remove_stale_temporaries, temporary_directory
from tfp_flows.validation import Interval, assert_values, check_bool, check_int, check_scalar

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ['FlowModule', 'export_saved_model']

_SAVED_MODEL_DIR = 'saved_model'  # Inside the temporary directory, see `export_saved_model`.


def _check_flow(flow):
    """Returns (event_shape, latent_shape, dtype) of `flow` after checking what export needs."""
    if not isinstance(flow, tfd.Distribution) or not isinstance(
        getattr(flow, 'bijector', None), tfb.Bijector
    ):
        raise TypeError(
            '`flow` must be a `tfd.TransformedDistribution` (as built by `tfp_flows.glow` or '
            f'`tfp_flows.real_nvp`); got {type(flow).__name__}.'
        )
    event_shape = flow.event_shape
    if not event_shape.is_fully_defined() or not flow.batch_shape.is_fully_defined():
        raise ValueError(
            '`flow` must have a static event shape and batch shape; got event shape '
            f'{event_shape} and batch shape {flow.batch_shape}.'
        )
    if flow.batch_shape.rank != 0:
        raise ValueError(f'`flow` must have batch shape []; got {flow.batch_shape}.')
    dtype = tf.as_dtype(flow.dtype)
    if dtype not in (tf.float32, tf.float64):
        raise TypeError(f'`flow` must have dtype float32 or float64; got {dtype.name}.')
    latent_shape = flow.distribution.event_shape
    if not latent_shape.is_fully_defined():
        raise ValueError(
            f"`flow`'s base distribution needs a static event shape; got {latent_shape}."
        )
    return event_shape, latent_shape, dtype


def _check_dequantizer(dequantizer, num_bins, event_shape, dtype):
    """Raises unless `dequantizer` is None or fits the flow's data (`num_bins`, shape, dtype)."""
    if dequantizer is None:
        return
    if not callable(getattr(dequantizer, 'sample_and_log_prob', None)) or not isinstance(
        dequantizer, tf.Module
    ):
        raise TypeError(
            '`dequantizer` must be None or a tf.Module with `sample_and_log_prob` (a '
            f'VariationalDequantizer); got {type(dequantizer).__name__}.'
        )
    if num_bins is None:
        raise ValueError('A `dequantizer` needs `num_bins` (discrete images); got None.')
    found = (dequantizer.num_bins, tuple(dequantizer.event_shape), dequantizer.dtype)
    if found != (num_bins, event_shape, dtype):
        raise ValueError(
            'The dequantizer must match the flow: (num_bins, event_shape, dtype) = '
            f'({num_bins}, {event_shape}, {dtype.name}); got ({found[0]}, {found[1]}, '
            f'{found[2].name}).'
        )


class FlowModule(tf.Module):
    """A flow's bijector with `tf.function`s of fixed input signature returning tensors.

    This is what `export_saved_model` saves; build one to get in memory the very numbers the
    SavedModel gives. E is the flow's event shape and `dtype` its dtype. Each function returns
    a dict with one entry, named as below; inputs have any batch size N (a single example
    needs a batch axis of size 1).

      log_prob(x: [N, *E] dtype) -> {'log_prob': [N]}
          `flow.log_prob(x)` = base.log_prob(encode(x)) + log|det d encode(x) / dx|, in nats,
          from the flow's own base distribution (`flow.distribution`). For image flows x is
          dequantized data in [0, 1].
      bits_per_dim(x: [N, *E] dtype) -> {'bits_per_dim': [N]}
          `tfp_flows.bits_per_dim(log_prob(x) - log q(u | k), prod(E), num_bins)`: the
          one-sample bound on bits/dim of the discrete images k = floor(x * num_bins) that x
          dequantizes, with noise u = x * num_bins - k; log q = 0 for uniform dequantization
          (no dequantizer), else the exported dequantizer's log q(u | k) (+inf bits where u
          is 0 or 1 exactly, outside its support). Only with `num_bins`.
      bits_per_dim_iw(pixels: [N, *E] int32, num_samples: [] int32, seed: [2] int64)
              -> {'bits_per_dim': [N]}
          `tfp_flows.dequantization.importance_weighted_bits_per_dim(flow, dequantizer,
          pixels, num_bins, num_samples, seed)`: the importance-weighted estimate of bits/dim
          of the discrete images `pixels` (integers in [0, num_bins)) from `num_samples` noise
          draws of the dequantizer (uniform when the export got none); num_samples = 1 is the
          one-sample bound. A fixed seed gives a fixed figure. Only with `num_bins`.
      sample(num_samples: [] int32, temperature: [] dtype, seed: [2] int64)
              -> {'x': [num_samples, *E]}
          `tfp_flows.sample(flow, num_samples, temperature, seed)`: decode(temperature * z),
          z drawn from the base with the stateless `seed`, so a fixed seed gives the same
          samples in every process. temperature must be finite and > 0 (checked); 1 samples
          the flow, lower values (Glow uses 0.7) trade diversity for quality.
      encode(x: [N, *E] dtype) -> {'z': [N, *Z]}
          The latent `flow.bijector.inverse(x)`, of the data's shape. A multi-scale image
          latent is not a concatenation of levels: each level's latent is put back by that
          level's inverse squeeze (depth-to-space). For this package's flows on [H, W, C] the
          first level's factored-out half z1 [H/2, W/2, 2C] fills the odd rows,
            z[2i + 1, 2j + b, c] = z1[i, j, b * C + c]      (b in {0, 1}),
          and the even rows hold the deeper levels' latent [H/2, W/2, 2C] the same way,
            z[2i, 2j + b, c] = inner[i, j, b * C + c],
          laid out recursively; the last level's latent is what remains.
          Z is the base's event shape (E for this package's flows).
      decode(z: [N, *Z] dtype) -> {'x': [N, *E]}
          The data `flow.bijector.forward(z)`; decode(encode(x)) = x up to rounding.

    Every input is checked at run time (`InvalidArgumentError` naming it, its bad values and
    what it must be): with `num_bins` x must lie in [0, 1], which catches raw integer pixels,
    and without it be finite; z must be finite; num_samples >= 0 (>= 1 for
    `bits_per_dim_iw`, whose pixels must be integers in [0, num_bins)); temperature finite and
    > 0 (a seed may hold any values). Every function checks the shapes of its inputs at run
    time as well, since a SavedModel signature called with a tensor does not. `signatures()`
    lists the functions for `tf.saved_model.save`. All but `bits_per_dim_iw` (its own loop
    over noise draws) share two passes through the flow, `_encode_pass` and `_decode_pass`,
    which are saved too (`saved_model_cli show --all` lists them among the concrete
    functions).

    A conditional flow's functions all take `conditional_input: [N or 1, *K] dtype` as their
    last input (K its conditional shape; for `sample`, N = num_samples): the context of each
    example, or one context for the whole batch.
    """

    def __init__(
        self, flow, num_bins=None, dequantizer=None, jit_compile=False, name='flow_module'
    ):
        """Wraps `flow`, a `tfd.TransformedDistribution` with static event shapes.

        Args:
          flow: e.g. from `tfp_flows.glow` or `tfp_flows.real_nvp`; its variables are shared,
            not copied.
          num_bins: the number of discrete levels the data was dequantized from (256 for 8-bit
            images), which enables `bits_per_dim` and `bits_per_dim_iw`; None for continuous
            data.
          dequantizer: None (uniform dequantization) or the
            `tfp_flows.dequantization.variational.VariationalDequantizer` trained with the
            flow (same event shape, `num_bins` and dtype); its variables are saved too.
          jit_compile: compile the two passes through the flow with XLA (the input checks stay
            outside); a loader compiles them on first use for each batch size.
          name: name of the module.

        Raises:
          TypeError: for a `flow` that is not a `tfd.TransformedDistribution`, or one of
            another dtype than float32 and float64.
          ValueError: for a `num_bins` that is not None or an int >= 2, a `jit_compile` that
            is not a bool, or a flow without static shapes.
        """
        event_shape, latent_shape, dtype = _check_flow(flow)
        num_bins = check_int('num_bins', num_bins, 2, allow_none=True)
        _check_dequantizer(dequantizer, num_bins, tuple(event_shape.as_list()), dtype)
        check_bool('jit_compile', jit_compile)
        super().__init__(name=name)
        self.dequantizer = dequantizer
        self.bijector = flow.bijector
        self.base = flow.distribution
        self._flow = flow
        self._event_shape = tuple(event_shape.as_list())
        self._latent_shape = tuple(latent_shape.as_list())
        self._dtype = dtype
        self._num_bins = num_bins
        self._conditional_shape = conditional_shape_of(flow)
        data = tf.TensorSpec([None, *self._event_shape], dtype, name='x')
        latent = tf.TensorSpec([None, *self._latent_shape], dtype, name='z')
        sample_specs = [
            tf.TensorSpec([], tf.int32, name='num_samples'),
            tf.TensorSpec([], dtype, name='temperature'),
            tf.TensorSpec([2], tf.int64, name='seed'),
        ]
        context = []  # The context spec of a conditional flow: each function's last input.
        if self._conditional_shape is not None:
            context = [
                tf.TensorSpec([None, *self._conditional_shape], dtype, name='conditional_input')
            ]

        # Five of the functions share two passes through the flow, each traced once when saved:
        # tracing a flow is slow (TFP's bijector bookkeeping), running it is not. No autograph:
        # there is no Python control flow on tensors to convert.
        def function(fn, *specs, jit_compile=False):
            return tf.function(
                fn, input_signature=list(specs), autograph=False, jit_compile=jit_compile
            )

        self._encode_pass = function(
            self._latent_and_log_density, data, *context, jit_compile=jit_compile
        )
        self._decode_pass = function(self._data, latent, *context, jit_compile=jit_compile)
        self.log_prob = function(self._log_prob, data, *context)
        self.sample = function(self._sample, *sample_specs, *context)
        self.encode = function(self._encode, data, *context)
        self.decode = function(self._decode, latent, *context)
        if num_bins is not None:
            self.bits_per_dim = function(self._bits_per_dim, data, *context)
            self.bits_per_dim_iw = function(
                self._bits_per_dim_iw,
                tf.TensorSpec([None, *self._event_shape], tf.int32, name='pixels'),
                tf.TensorSpec([], tf.int32, name='num_samples'),
                tf.TensorSpec([2], tf.int64, name='seed'),
                *context,
            )

    @property
    def event_shape(self):
        """The flow's event shape E, a tuple of ints."""
        return self._event_shape

    @property
    def num_bins(self):
        """The number of discrete levels of the data, or None."""
        return self._num_bins

    @property
    def conditional_shape(self):
        """The shape K of one context of a conditional flow (a tuple), or None."""
        return self._conditional_shape

    def _checked(self, tensor, shape):
        """`tensor`, checked at run time to be [N, *shape]: signatures skip the static check."""
        return tf.ensure_shape(tensor, [None, *shape])

    def _context_kwargs(self, context):
        """The bijector kwargs of the optional context input (`()` or `(c,)`)."""
        if not context:
            return {}
        (conditional_input,) = context
        return {'conditional_input': self._checked(conditional_input, self._conditional_shape)}

    def _checked_data(self, x):
        """`x` checked at run time, outside any XLA-compiled pass (XLA drops assertions): its
        shape, and that it lies in [0, 1] with `num_bins`, else that it is finite."""
        x = self._checked(x, self._event_shape)
        if self._num_bins is not None:  # Dequantized data; fails on NaN too.
            inside = (x >= tf.zeros([], x.dtype)) & (x <= tf.ones([], x.dtype))
            return assert_values('x', x, inside, 'values in [0, 1] (dequantized data)')
        return assert_values('x', x, tf.math.is_finite(x), 'finite values')

    def _checked_latent(self, z):
        """`z` checked at run time, outside any XLA-compiled pass: its shape, finite values."""
        z = self._checked(z, self._latent_shape)
        return assert_values('z', z, tf.math.is_finite(z), 'finite values')

    def _latent_and_log_density(self, x, *context):
        kwargs = self._context_kwargs(context)
        event_ndims = len(self._event_shape)
        if isinstance(self.bijector, FlowBijector):  # One pass for the latent and its log-det.
            z, log_det = self.bijector.inverse_and_log_det(x, event_ndims, **kwargs)
        else:
            z = self.bijector.inverse(x, **kwargs)
            log_det = self.bijector.inverse_log_det_jacobian(x, event_ndims=event_ndims, **kwargs)
        return z, self.base.log_prob(z) + log_det

    def _data(self, z, *context):
        return self.bijector.forward(z, **self._context_kwargs(context))

    def _checked_context(self, conditional_input, batch):
        """`()`, or `(c,)` with c checked at run time, outside any XLA-compiled pass: finite,
        of shape [N, *K] or [1, *K] (one context for all) for a batch of N."""
        if conditional_input is None:
            return ()
        c = conditional_input
        shape = tf.shape(c, out_type=tf.int64)  # Its rank is the signature's.
        fits = tf.concat(
            [
                [tf.equal(shape[0], tf.cast(batch, tf.int64)) | tf.equal(shape[0], 1)],
                tf.equal(shape[1:], self._conditional_shape),
            ],
            axis=0,
        )
        described = ', '.join(map(str, self._conditional_shape))
        shape = assert_values(  # Names the sizes that do not fit.
            'conditional_input',
            shape,
            fits,
            f'one context per example or one for all, of shape [N or 1, {described}] for N '
            'examples',
        )
        with tf.control_dependencies([shape]):
            c = tf.identity(c)
        return (assert_values('conditional_input', c, tf.math.is_finite(c), 'finite values'),)

    def _log_prob(self, x, conditional_input=None):
        x = self._checked_data(x)
        context = self._checked_context(conditional_input, tf.shape(x)[0])
        return {'log_prob': self._encode_pass(x, *context)[1]}

    def _bits_per_dim(self, x, conditional_input=None):
        num_dims = math.prod(self._event_shape)
        x = self._checked_data(x)
        context = self._checked_context(conditional_input, tf.shape(x)[0])
        log_prob = self._encode_pass(x, *context)[1]
        if self.dequantizer is not None:
            scaled = x * self._num_bins  # x = (k + u) / B: k = floor(x B), u = x B - k.
            pixels = tf.clip_by_value(tf.floor(scaled), 0, self._num_bins - 1)
            noise = scaled - pixels
            log_prob -= self.dequantizer.log_prob(noise, pixels)
        return {'bits_per_dim': bits_per_dim(log_prob, num_dims, self._num_bins)}

    def _bits_per_dim_iw(self, pixels, num_samples, seed, conditional_input=None):
        pixels = self._checked(pixels, self._event_shape)
        kwargs = self._context_kwargs(self._checked_context(conditional_input, tf.shape(pixels)[0]))
        bits = importance_weighted_bits_per_dim(
            self._flow,
            self.dequantizer,
            pixels,
            self._num_bins,
            tf.ensure_shape(num_samples, []),
            tf.ensure_shape(seed, [2]),
            bijector_kwargs=kwargs or None,
        )
        return {'bits_per_dim': bits}

    def _sample(self, num_samples, temperature, seed, conditional_input=None):
        num_samples = check_scalar('num_samples', num_samples, Interval(integer=True, low=0))
        context = self._checked_context(conditional_input, num_samples)
        seed = tf.ensure_shape(seed, [2])
        temperature = tf.ensure_shape(temperature, [])  # Checked by `sample_latent`.
        latent = models.sample_latent(self._flow, num_samples, temperature, seed)
        return {'x': self._decode_pass(latent, *context)}

    def _encode(self, x, conditional_input=None):
        x = self._checked_data(x)
        context = self._checked_context(conditional_input, tf.shape(x)[0])
        return {'z': self._encode_pass(x, *context)[0]}

    def _decode(self, z, conditional_input=None):
        z = self._checked_latent(z)
        context = self._checked_context(conditional_input, tf.shape(z)[0])
        return {'x': self._decode_pass(z, *context)}

    def signatures(self):
        """The SavedModel signatures: {name: `tf.function`}, with 'serving_default'.

        The functions, not their concrete functions: `tf.saved_model.save` traces each one once
        in its save context, and would trace a concrete function made outside it again.
        """
        names = ['log_prob', 'sample', 'encode', 'decode']
        if self._num_bins is not None:
            names += ['bits_per_dim', 'bits_per_dim_iw']
        signatures = {name: getattr(self, name) for name in names}
        signatures['serving_default'] = self.log_prob
        return signatures


_STRUCTURE = '_saved_structure'  # FlowBijector's checkpointed structure (bijectors/base.py).


@contextlib.contextmanager
def _without_saved_structures(module):
    """`module` without its bijectors' `_saved_structure` objects while it is saved.

    They hold the structural choices a checkpoint read checks (Python state, JSON); a SavedModel
    has those choices traced into its functions, and TensorFlow would note, once per bijector,
    that the state is not restored on load, and warn again on every load.
    """
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
    """Writes `flow` as a SavedModel at directory `path`, atomically; returns the path.

    The SavedModel holds a `FlowModule(flow, num_bins)`: every variable of the flow (with the
    ActNorm `initialized` flags, so it is never initialised again) and the functions and
    signatures `log_prob`, `bits_per_dim` and `bits_per_dim_iw` (with `num_bins` only),
    `sample`, `encode`, `decode` and `serving_default` (= `log_prob`) described in `FlowModule`
    and this module's docstring; with `dequantizer`, its variables too.
    `tf.saved_model.load(path)` reads it back without tfp_flows or TensorFlow Probability.
    Works inside a `tf.distribute` strategy scope.

    The model is saved into a new temporary directory `.tmp-export-*` next to `path` and
    renamed into place, so `path` never holds a partial export; on failure the temporary
    directory is removed and an existing `path` is left as it was. The temporary directories
    of killed exports into the same parent are removed first (`tfp_flows.temporaries`).

    Args:
      flow: a `tfd.TransformedDistribution` over a standard Normal latent of the data's shape,
        e.g. from `tfp_flows.glow` or `tfp_flows.real_nvp`.
      path: directory to create (str or path-like); its parent is created if needed.
      num_bins: number of discrete levels the data was dequantized from (256 for 8-bit
        images); adds the `bits_per_dim` and `bits_per_dim_iw` signatures. None for continuous
        data.
      dequantizer: None (uniform dequantization) or the `VariationalDequantizer` trained with
        the flow, which `bits_per_dim` and `bits_per_dim_iw` then score and draw noise with.
        Needs `num_bins`.
      jit_compile: compile the passes through the flow with XLA in the SavedModel (see
        `FlowModule`); the loading TensorFlow must have XLA (the pip packages do).
      overwrite: replace an existing directory at `path`. Otherwise an existing `path` raises
        `FileExistsError`.

    Returns:
      The absolute path of the SavedModel, a str.

    Raises:
      TypeError: for a `flow` that is not a `tfd.TransformedDistribution`, or a `path` that
        is not a str or path.
      ValueError: for a bad `num_bins`, or an `overwrite` or `jit_compile` that is not a
        bool.
      FileExistsError: for an existing `path` (without `overwrite`), or one that is a file.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f'`path` must be a str or a path; got {path!r}.')
    check_bool('overwrite', overwrite)
    check_bool('jit_compile', jit_compile)
    module = FlowModule(flow, num_bins=num_bins, dequantizer=dequantizer, jit_compile=jit_compile)
    path = os.path.abspath(os.fspath(path))
    exists = os.path.lexists(path)
    if exists and not overwrite:
        raise FileExistsError(
            f'{path} already exists; export to a new path, or pass overwrite=True to replace it.'
        )
    if exists and not os.path.isdir(path):
        raise FileExistsError(f'{path} exists and is not a directory; refusing to replace it.')
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(parent)  # Left by killed exports; never one still written.
    # A private (mode 0700) directory; saving into a subdirectory of it gives the SavedModel
    # the usual permissions, and the replaced export can be moved into it as well.
    temp_dir = temporary_directory(parent)
    try:
        saved = os.path.join(temp_dir, _SAVED_MODEL_DIR)
        with _without_saved_structures(module):
            tf.saved_model.save(module, saved, signatures=module.signatures())
        if exists:
            replaced = os.path.join(temp_dir, 'replaced')
            os.replace(path, replaced)
            try:
                os.replace(saved, path)
            except BaseException:
                os.replace(replaced, path)
                raise
        else:
            os.replace(saved, path)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return path
