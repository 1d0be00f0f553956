"""Conditioner networks of the coupling layers and priors, as `tf.Module`s of TF ops (which
track every variable). A conditioner's last layer starts at zero, so a fresh coupling is the
identity. Under a mixed `dtype_policy` variables stay float32; input, kernels and biases are
cast to the policy's compute dtype and the output back, as a Keras layer computes."""

import contextlib
import contextvars
import functools
import math

import tensorflow as tf

from tfp_flows import checks
from tfp_flows.dense_conv import conv3x3_same, conv_same, small_conv3x3, tap_products
from tfp_flows.mixed_precision import check_dtype_policy, compute_dtype

__all__ = [
    'ConvNet',
    'DenseNet',
    'ZeroConv',
    'ZeroDense',
    'check_arguments',
    'check_stateless_seed',
    'check_training',
    'loop_gradients',
    'tap_products',
]

_LOOP_GRADIENTS = contextvars.ContextVar('loop_gradients', default=None)


@contextlib.contextmanager
def loop_gradients(on=True):
    """Within it, a conditioner's 3x3 convolutions not taken as one dense product (maps of > 16
    positions or > 2**17 dense entries), looped or not, take `dense_conv.conv3x3_same`'s
    gradients: XLA 0.11-0.15x TF's CPU time in a loop, graph 1.14x (bench/README; CPU); per
    thread. `False` pins TF's, in loops too (`FlowTrainer` without XLA, `FlowModule`).
    `ValueError`: `on` not a bool."""
    pinned = _LOOP_GRADIENTS.get() not in (None, True)
    token = _LOOP_GRADIENTS.set(checks.BOOL.check('on', on) and not pinned)
    try:
        yield
    finally:
        _LOOP_GRADIENTS.reset(token)


def check_training(training):
    """`training` as a Python bool or a scalar bool tensor; None (Keras' default) is False.
    `TypeError` naming anything else."""
    if training is None or isinstance(training, bool):
        return bool(training)
    if isinstance(training, tf.Tensor | tf.Variable) and training.dtype == tf.bool:
        if training.shape.rank not in (None, 0):
            raise TypeError(f'`training` must be a scalar; got a tensor of shape {training.shape}.')
        return training
    raise TypeError(f'`training` must be a bool or a scalar bool tensor; got {training!r}.')


def check_stateless_seed(name, seed, ints=False):
    """`seed` (None, or an int tensor or list of shape [2]: a stateless seed; with `ints` also
    an int of `checks.SEED`, as [0, seed]) as an int32 tensor [2] (values modulo 2**32) or None;
    `TypeError` for a tensor not of integers, `ValueError` naming `name` for anything else."""
    if ints and checks.integer().contains(seed):
        return tf.constant([0, checks.SEED.check(name, seed)], tf.int32)
    if seed is None:
        return None
    an_int = ', an int in [0, 2**31)' if ints else ''
    expected = f'`{name}` must be None{an_int} or an int tensor of shape [2] (a stateless seed)'
    try:
        tensor = None if isinstance(seed, str | bool) else tf.convert_to_tensor(seed)
    except (TypeError, ValueError):
        tensor = None
    if tensor is None or not tensor.shape.is_compatible_with([2]):
        raise ValueError(f'{expected}; got {seed!r}.')
    if not tensor.dtype.is_integer:
        raise TypeError(f'{expected}; got a {tensor.dtype.name} tensor.')
    return tf.cast(tensor, tf.int32)


def _dropout(h, rate, training, seed, rows, layer):
    """Inverted dropout of `h` when `training`; with a stateless `seed` [2], masks of (seed,
    layer), as `tf.nn.experimental.stateless_dropout`'s. With `rows` (offset, total), h's n
    examples take rows [offset, offset + n) of a batch of `total`'s masks, drawn alone
    (`_uniform_rows`), so the parts of a batch (replicas, micro-batches) apply the whole's."""
    if not rate or training is False:
        return h

    def drop():
        if seed is None:
            return tf.nn.dropout(h, rate)
        shape, layer_seed = tf.shape(h), tf.random.experimental.stateless_fold_in(seed, layer)
        if rows is None:
            uniform = tf.random.stateless_uniform(shape, layer_seed, dtype=h.dtype)
        else:
            uniform = _uniform_rows(shape, layer_seed, rows[0], h.dtype)
        return tf.where(uniform >= rate, h * tf.constant(1 / (1 - rate), h.dtype), 0.0)

    if training is True:
        return drop()
    return tf.cond(training, drop, lambda: h)


def _uniform_rows(shape, seed, offset, dtype):
    """Rows [offset, offset + n) of `tf.random.stateless_uniform([total, *shape[1:]], seed,
    dtype)` (any total >= offset + n) for `shape` [n, ...], drawn alone: that draw fills the
    shape in order from the seed's Philox counter, 4 values per increment (2 for float64;
    tests/test_networks.py pins it, graph and XLA). Static size for XLA: n's values and up to 3
    more, skipped."""
    offset, shape = tf.cast(offset, tf.int64), tf.cast(shape, tf.int64)
    per_increment, size = (2 if dtype == tf.float64 else 4), tf.reduce_prod(shape)
    start = offset * tf.reduce_prod(shape[1:])
    key, counter, alg = tf.raw_ops.StatelessRandomGetKeyCounterAlg(seed=seed)
    skip = tf.pad([start // per_increment], [[0, 1]])  # The counter's low word.
    counter = tf.bitcast(tf.bitcast(counter, tf.int64) + skip, tf.uint64)
    drawn = tf.raw_ops.StatelessRandomUniformV2(
        shape=[size + per_increment - 1], key=key, counter=counter, alg=alg, dtype=dtype
    )
    return tf.reshape(tf.slice(drawn, [start % per_increment], [size]), shape)


def _he_normal(shape, fan_in, seed, dtype):
    return tf.random.stateless_normal(shape, seed=seed, stddev=math.sqrt(2 / fan_in), dtype=dtype)


_SIZES = {'residual_blocks': checks.NON_NEGATIVE_INT}


def check_arguments(dtype=tf.float32, dtype_policy=None, seed=0, dropout_rate=0.0, **sizes):
    """The networks' arguments, checked, as a dict: sizes (`hidden_channels`, ...: positive
    ints; `residual_blocks` an int >= 0), `seed` (`checks.SEED`: the initial weights), `dtype`
    (tf.float32 or tf.float64), `dtype_policy` and `dropout_rate` (in [0, 1)); `ValueError`
    naming the first bad one. A builder that passes them on checks them here before it makes
    any variable."""
    dtype = checks.check_float_dtype('dtype', dtype)
    sizes = {key: _SIZES.get(key, checks.POSITIVE_INT).check(key, v) for key, v in sizes.items()}
    return {
        **sizes,
        'seed': checks.SEED.check('seed', seed),
        'dropout_rate': checks.FRACTION.check('dropout_rate', dropout_rate),
        'dtype': dtype,
        'dtype_policy': check_dtype_policy(dtype_policy, dtype),
    }


class _Network(tf.Module):
    """The networks' arguments, checked, as attributes (`dtype` as `variable_dtype`)."""

    def __init__(self, name, dtype, dtype_policy, seed=0, dropout_rate=0.0, **sizes):
        checked = check_arguments(dtype, dtype_policy, seed, dropout_rate, **sizes)
        super().__init__(name=name)
        self.variable_dtype = checked.pop('dtype')
        for key, value in checked.items():
            setattr(self, key, value)
        self.compute_dtype = compute_dtype(self.dtype_policy, self.variable_dtype)

    def _compute(self, value):
        """`value` (an input or a variable) in the compute dtype (no op if it is)."""
        return tf.cast(value, self.compute_dtype)

    def _dropout_fn(self, training, seed, rows, batch_shape):
        """`(h, layer) -> h` with the dropout `__call__`'s arguments ask for, checked (rows
        need a seed; int rows must hold the `batch_shape`'s examples, where it is static)."""
        training, seed = check_training(training), check_stateless_seed('dropout_seed', seed)
        rows = checks.check_dropout_rows(rows, seed is not None, batch_shape.num_elements())
        return lambda h, layer: _dropout(h, self.dropout_rate, training, seed, rows, layer)

    def _layer(self, name, shape, seed=None):
        """Variables `kernel{name}` of `shape` (He-normal from the stateless `seed`; None: zeros,
        a last layer) and `bias{name}` [shape[-1]] of zeros, as attributes."""
        dtype, fan_in = self.variable_dtype, math.prod(shape[:-1])
        kernel = tf.zeros(shape, dtype) if seed is None else _he_normal(shape, fan_in, seed, dtype)
        for kind, value in (('kernel', kernel), ('bias', tf.zeros(shape[-1:], dtype))):
            setattr(self, kind + name, tf.Variable(value, name=kind + name))

    def _output(self, value):
        """The output in the variables' dtype (no op without a mixed policy)."""
        return tf.cast(value, self.variable_dtype)

    def _check_input(self, x, size, what):
        if x.shape[-1] != size:
            raise ValueError(f'{self.name} expects {size} {what}; got shape {x.shape.as_list()}.')


def _map_images(fn, x, output_channels):
    """Applies `fn` on [N, H, W, C] to `x` of shape [..., H, W, C] (any batch rank)."""
    if x.shape.rank == 4:
        return fn(x)  # Already [N, H, W, C]: no reshapes (the usual case).
    shape = tf.shape(x)
    static = x.shape[-3:].as_list()
    event_shape = [shape[i - 3] if d is None else d for i, d in enumerate(static)]
    h = fn(tf.reshape(x, tf.stack([-1, *event_shape])))
    out_shape = tf.concat([shape[:-3], tf.stack([*event_shape[:2], output_channels])], axis=0)
    return tf.reshape(h, out_shape)


class ConvNet(_Network):
    """Glow's coupling network: conv3x3 -> ReLU -> conv1x1 -> ReLU -> conv3x3 (zero init).

    Maps [..., H, W, input_channels] to [..., H, W, output_channels] ('SAME' padding), at
    9 * input_channels * hidden_channels + hidden_channels^2 + 9 * hidden_channels *
    output_channels multiply-adds per position; `residual_blocks` (an int >= 0) blocks
    h + ReLU(conv3x3(h)) after the conv1x1 add 9 hidden_channels^2 each (the residual form of
    Real NVP's conditioners, Dinh et al. 2017, https://arxiv.org/abs/1605.08803). With
    `dropout_rate` > 0 and `training=True`, each hidden ReLU output is dropped (Flow++, Ho et
    al. 2019, https://arxiv.org/abs/1902.00275). `ValueError` naming a bad argument
    (`check_arguments`).
    """

    def __init__(
        self,
        input_channels,
        output_channels,
        hidden_channels=512,
        seed=0,
        dtype=tf.float32,
        name='conv_net',
        dropout_rate=0.0,
        dtype_policy=None,
        residual_blocks=0,
    ):
        sizes = dict(input_channels=input_channels, output_channels=output_channels)
        sizes.update(hidden_channels=hidden_channels, residual_blocks=residual_blocks)
        super().__init__(name, dtype, dtype_policy, seed, dropout_rate, **sizes)
        hidden = self.hidden_channels
        layers = [('in', 3, self.input_channels), ('hidden', 1, hidden)]
        layers += [(f'block_{i}', 3, hidden) for i in range(self.residual_blocks)]
        with self.name_scope:  # Attributes, not lists: `Loop`'s views read attributes.
            for number, (layer, size, inputs) in enumerate(layers, 1):
                self._layer(f'_{layer}', [size, size, inputs, hidden], [seed, number])
            self._layer('_out', [3, 3, hidden, self.output_channels])

    def __call__(self, x, training=False, seed=None, rows=None):
        """The network on `x` [..., H, W, input_channels]; `training` (a bool or a scalar bool
        tensor) turns dropout on, a stateless `seed` [2] fixes its masks, and `rows` (offset,
        total) takes rows [offset, offset + n) of the masks of a batch of `total` (`_dropout`)."""
        self._check_input(x, self.input_channels, 'input channels')
        drop = self._dropout_fn(training, seed, rows, x.shape[:-3])
        return _map_images(functools.partial(self._apply, drop=drop), x, self.output_channels)

    def _apply(self, x, drop):
        c = self._compute
        h = drop(tf.nn.relu(_conv3x3(c(x), c(self.kernel_in)) + c(self.bias_in)), 0)
        h = drop(tf.nn.relu(_conv1x1(h, c(self.kernel_hidden)) + c(self.bias_hidden)), 1)
        for i in range(self.residual_blocks):
            kernel, bias = (c(getattr(self, f'{kind}_block_{i}')) for kind in ('kernel', 'bias'))
            h = h + drop(tf.nn.relu(_conv3x3(h, kernel) + bias), 2 + i)
        return self._output(_conv3x3(h, c(self.kernel_out)) + c(self.bias_out))


def _conv1x1(x, kernel):
    """`tf.nn.conv2d(x, kernel, 1, 'SAME')` of [N, H, W, C] as one matrix product, whose
    gradients are matrix products too (TF's CPU conv backprop is several times slower here)."""
    channels_in, channels_out = kernel.shape[-2:]
    out_shape = x.shape[:-1].concatenate([channels_out])
    if not out_shape.is_fully_defined():
        out_shape = tf.concat([tf.shape(x)[:-1], [channels_out]], axis=0)
    flat = tf.reshape(x, [-1, channels_in])
    out = tf.matmul(flat, tf.reshape(kernel, [channels_in, channels_out]))
    out = tf.reshape(out, out_shape)
    out.set_shape(x.shape[:-1].concatenate([channels_out]))
    return out


def _conv2d(x, kernel):
    """`tf.nn.conv2d(x, kernel, 1, 'SAME')`, 3x3 (`dense_conv.conv3x3_same` in `loop_gradients`);
    a batch not known to be non-empty takes a cond (TF 2.21's oneDNN kernel answers C_in
    channels, not C_out, for an empty batch, and grappler removes a reshape as redundant)."""
    conv = conv3x3_same if _LOOP_GRADIENTS.get() else conv_same
    if x.shape[0] is not None and x.shape[0] > 0:
        return conv(x, kernel)
    shape = tf.concat([tf.shape(x)[:-1], tf.shape(kernel)[-1:]], axis=0)
    return tf.cond(tf.shape(x)[0] > 0, lambda: conv(x, kernel), lambda: tf.zeros(shape, x.dtype))


# A 3x3 convolution of a map of at most this many positions is one dense matrix product...
_DENSE_MAX_POSITIONS = 16
# ... if its dense [H W C_in, H W C_out] matrix has at most this many entries: beyond, TF's conv
# takes less CPU for values and gradients on 4x4 maps (64 -> 52 channels, the default recipe's
# last layers: 0.7x; 2026-12-07, one thread).
_DENSE_MAX_ENTRIES = 2**17


def _conv3x3(x, kernel):
    """`tf.nn.conv2d(x, kernel, 1, 'SAME')` for a [3, 3, C_in, C_out] kernel, x [N, H, W, C_in];
    on small maps one product of the flattened images [N, H W C_in] with the kernel's dense
    matrix [H W C_in, H W C_out]: (H W / 9) times the multiply-adds, yet faster on CPU than TF's
    conv kernels at these shapes (8x8 digits Glow: log_prob or sampling ~1.4x); products per
    tap in `tap_products` (`dense_conv.small_conv3x3`)."""
    (height, width, channels_in), channels_out = x.shape[-3:], kernel.shape[-1]
    positions = None if height is None or width is None else height * width
    if (
        positions is None
        or positions > _DENSE_MAX_POSITIONS
        or positions**2 * channels_in * channels_out > _DENSE_MAX_ENTRIES
    ):
        return _conv2d(x, kernel)
    batch = tf.shape(x)[0]  # Not -1: a reshape cannot infer it for an empty batch.
    flat_x = tf.reshape(x, [batch, positions * channels_in])
    out = small_conv3x3(flat_x, kernel, height, width)
    return tf.reshape(out, [batch, height, width, channels_out])


class DenseNet(_Network):
    """A ReLU multilayer perceptron whose last layer starts at zero.

    Maps [..., input_size] to [..., output_size] through `num_hidden_layers` hidden layers of
    `hidden_units` units, with dropout as `ConvNet`'s. Arguments are checked as for `ConvNet`.
    """

    def __init__(
        self,
        input_size,
        output_size,
        hidden_units=64,
        num_hidden_layers=2,
        seed=0,
        dtype=tf.float32,
        name='dense_net',
        dropout_rate=0.0,
        dtype_policy=None,
    ):
        sizes = dict(input_size=input_size, output_size=output_size, hidden_units=hidden_units)
        sizes.update(num_hidden_layers=num_hidden_layers)
        super().__init__(name, dtype, dtype_policy, seed, dropout_rate, **sizes)
        dtype = self.variable_dtype
        sizes = [input_size] + [self.hidden_units] * self.num_hidden_layers
        with self.name_scope:
            self.kernels = [
                tf.Variable(_he_normal([m, n], m, [seed, i], dtype), name=f'kernel_{i}')
                for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
            ]
            self.biases = [
                tf.Variable(tf.zeros([n], dtype), name=f'bias_{i}') for i, n in enumerate(sizes[1:])
            ]
            self._layer('_out', [sizes[-1], output_size])

    def __call__(self, x, training=False, seed=None, rows=None):
        """The network on `x` [..., input_size]; dropout as in `ConvNet.__call__`."""
        self._check_input(x, self.input_size, 'inputs on the last axis')
        drop = self._dropout_fn(training, seed, rows, x.shape[:-1])
        batch_shape = tf.shape(x)[:-1]
        c = self._compute
        h = tf.reshape(c(x), [-1, self.input_size])
        for layer, (kernel, bias) in enumerate(zip(self.kernels, self.biases, strict=True)):
            h = drop(tf.nn.relu(tf.matmul(h, c(kernel)) + c(bias)), layer)
        h = self._output(tf.matmul(h, c(self.kernel_out)) + c(self.bias_out))
        return tf.reshape(h, tf.concat([batch_shape, [self.output_size]], axis=0))


class ZeroConv(_Network):
    """A 3x3 convolution whose kernel and bias start at zero (Glow's `conv2d_zeros`).

    Maps [..., H, W, input_channels] to [..., H, W, output_channels]; zeros until trained.
    """

    def __init__(
        self,
        input_channels,
        output_channels,
        dtype=tf.float32,
        name='zero_conv',
        dtype_policy=None,
    ):
        sizes = dict(input_channels=input_channels, output_channels=output_channels)
        super().__init__(name, dtype, dtype_policy, **sizes)
        with self.name_scope:
            self._layer('', [3, 3, input_channels, output_channels])

    def __call__(self, x):
        """Applies the convolution to `x` of shape [..., H, W, input_channels]."""
        self._check_input(x, self.input_channels, 'input channels')
        return _map_images(self._apply, x, self.output_channels)

    def _apply(self, x):
        c = self._compute
        return self._output(_conv3x3(c(x), c(self.kernel)) + c(self.bias))


class ZeroDense(_Network):
    """A linear map whose kernel and bias start at zero (Glow's `linear_zeros`).

    Maps [..., input_size] to [..., output_size]; zeros until trained. Glow's class-conditional
    prior (`ycond`) maps a one-hot label through it to the mean and log-scale of a latent
    (Kingma and Dhariwal 2018, https://arxiv.org/abs/1807.03039).
    """

    def __init__(
        self, input_size, output_size, dtype=tf.float32, name='zero_dense', dtype_policy=None
    ):
        super().__init__(name, dtype, dtype_policy, input_size=input_size, output_size=output_size)
        with self.name_scope:
            self._layer('', [input_size, output_size])

    def __call__(self, x):
        """Applies the map to `x` of shape [..., input_size]."""
        self._check_input(x, self.input_size, 'inputs on the last axis')
        c = self._compute
        return self._output(tf.tensordot(c(x), c(self.kernel), axes=1) + c(self.bias))
