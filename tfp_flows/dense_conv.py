"""A 3x3 'SAME' convolution of a small map as one product with the kernel's dense matrix, or as
products per tap, and their gradients (`networks` takes them for maps of at most 16 positions);
a 3x3 convolution whose gradients are forward convolutions (`networks.loop_gradients`)."""

import contextlib
import contextvars
import functools

import numpy as np
import tensorflow as tf

from tfp_flows import checks

__all__ = [
    'conv3x3_same',
    'conv_same',
    'dense_conv3x3',
    'small_conv3x3',
    'tap_conv3x3',
    'tap_products',
]

conv_same = functools.partial(tf.nn.conv2d, strides=1, padding='SAME')
_TAP_PRODUCTS = contextvars.ContextVar('tap_products', default=False)


@contextlib.contextmanager
def tap_products(on=True):
    """Within it, `small_conv3x3` of maps of more than 9 positions is `tap_conv3x3`, not
    `dense_conv3x3`: 9 / P of the multiply-adds, in more ops. Under XLA the digits Glow trains
    1.13x and computes `log_prob` and `sample` ~1.2x as fast, in graph mode slower
    (bench/README), so `FlowTrainer` and a `jit_compile=True` export take it under XLA only;
    trace your own `tf.function(..., jit_compile=True)` of a flow inside it. Read while
    tracing, per thread. `ValueError`: `on` not a bool."""
    token = _TAP_PRODUCTS.set(checks.BOOL.check('on', on))
    try:
        yield
    finally:
        _TAP_PRODUCTS.reset(token)


def small_conv3x3(flat_x, kernel, height, width):
    """A 3x3 'SAME' convolution of small maps `flat_x` [N, H W C_in]: `dense_conv3x3`, or
    `tap_conv3x3` in `tap_products` above 9 positions."""
    by_taps = _TAP_PRODUCTS.get() and height * width > 9
    return (tap_conv3x3 if by_taps else dense_conv3x3)(flat_x, kernel, height, width)


@functools.cache
def _tap_selection(height, width):
    """S [P, P, 9] with S[p, q, t] = 1 where input position p feeds output position q through
    tap t = 3 * i + j of a 3x3 'SAME' kernel (P = height * width, positions row-major)."""
    taps = [np.kron(np.eye(height, k=1 - i), np.eye(width, k=1 - j)) for i, j in np.ndindex(3, 3)]
    return np.stack(taps, axis=-1).astype(np.float32)


@functools.cache
def _tap_rows(height, width, channels_in):
    """R [P, C_in, P]: the row of the kernel [9 C_in, C_out] padded with a zero row that the
    dense matrix [P, C_in, P, C_out] holds at [p, i, q] (`_tap_selection`'s tap t: t C_in + i)."""
    selection = _tap_selection(height, width)
    tap = np.where(selection.any(axis=-1), selection.argmax(axis=-1), 9)[:, np.newaxis, :]
    rows = tap * channels_in + np.arange(channels_in)[:, np.newaxis]
    return np.where(tap == 9, 9 * channels_in, rows).astype(np.int32)


def _kernel_gradient(flat_x, upstream, height, width, channels_in, channels_out):
    """The gradient [9 C_in, C_out] of a loss w.r.t. the kernel of `dense_conv3x3`, given x and
    the output's gradient [N, P C_in] and [N, P C_out], by the product with the fewest
    multiply-adds per example: the dense matrix's gradient x^T g contracted over the taps
    (P^2 C_in C_out), x's 3x3 patches times g (9 P (P C_in + C_in C_out)), or x times g spread
    back over the taps (9 P (P C_out + C_in C_out)); the patches and the spread are products
    with the tap selection."""
    positions = height * width
    selection = _tap_selection(height, width)  # [p, q, t]
    by_dense = positions**2 * channels_in * channels_out  # Multiply-adds per example.
    by_patches, by_spread = (
        9 * positions * (positions * c + channels_in * channels_out)
        for c in (channels_in, channels_out)
    )
    if by_dense <= min(by_patches, by_spread):
        dense_gradient = tf.reshape(
            tf.matmul(flat_x, upstream, transpose_a=True),
            [positions, channels_in, positions, channels_out],
        )
        by_tap = tf.einsum('pqt,piqo->tio', tf.constant(selection, upstream.dtype), dense_gradient)
        return tf.reshape(by_tap, [9 * channels_in, channels_out])
    if by_patches <= by_spread:  # [N, Q 9, C_in] -> [N Q, 9 C_in], times g [N Q, C_out]
        select = np.transpose(selection, [1, 2, 0]).reshape(positions * 9, positions)
        columns = tf.matmul(
            tf.constant(select, upstream.dtype), tf.reshape(flat_x, [-1, positions, channels_in])
        )
        return tf.matmul(
            tf.reshape(columns, [-1, 9 * channels_in]),
            tf.reshape(upstream, [-1, channels_out]),
            transpose_a=True,
        )
    select = np.transpose(selection, [0, 2, 1]).reshape(positions * 9, positions)
    spread = tf.matmul(
        tf.constant(select, upstream.dtype), tf.reshape(upstream, [-1, positions, channels_out])
    )  # [N, P 9, C_out]
    by_tap = tf.matmul(
        tf.reshape(flat_x, [-1, channels_in]),
        tf.reshape(spread, [-1, 9 * channels_out]),
        transpose_a=True,
    )
    by_tap = tf.transpose(tf.reshape(by_tap, [channels_in, 9, channels_out]), [1, 0, 2])
    return tf.reshape(by_tap, [9 * channels_in, channels_out])


# AutoGraph would convert the nested `tf.custom_gradient` function into one it cannot call.
@tf.autograph.experimental.do_not_convert
def dense_conv3x3(flat_x, kernel, height, width):
    """The images `flat_x` [N, P C_in] (P = H W) times the dense matrix [P C_in, P C_out] of the
    3x3 'SAME' `kernel`, a gather of its rows; the gradients: g times the matrix's transpose,
    and `_kernel_gradient` (not the gather's scatter of rows)."""
    channels_in, channels_out = kernel.shape[-2:]
    positions = height * width

    @tf.custom_gradient
    def product(flat_x, kernel):
        # Built once `x` is there: else a graph builds every layer's dense matrix (up to 0.5 MiB
        # each) at the start of a call, all held at once, and memory grows with the depth.
        with tf.control_dependencies([flat_x]):
            rows = tf.pad(tf.reshape(kernel, [9 * channels_in, channels_out]), [[0, 1], [0, 0]])
        dense = tf.reshape(
            tf.gather(rows, _tap_rows(height, width, channels_in)),
            [positions * channels_in, positions * channels_out],
        )

        def gradient(upstream):
            by_kernel = _kernel_gradient(flat_x, upstream, height, width, channels_in, channels_out)
            return tf.matmul(upstream, dense, transpose_b=True), tf.reshape(by_kernel, kernel.shape)

        return tf.matmul(flat_x, dense), gradient

    return product(flat_x, tf.convert_to_tensor(kernel))


@functools.cache
def _sources(height, width):
    """[P, 9]: the input position feeding output position q through tap t of a 3x3 'SAME'
    kernel (`_tap_selection`'s p), or P where the tap falls outside the map (a zero row)."""
    selection = _tap_selection(height, width)
    return np.where(selection.any(axis=0), selection.argmax(axis=0), height * width).astype(
        np.int32
    )


def _patches(x, height, width):
    """The 3x3 patches [N P, 9 C] of maps `x` [N, P, C] (zeros outside the map), a gather."""
    padded = tf.pad(x, [[0, 0], [0, 1], [0, 0]])
    return tf.reshape(tf.gather(padded, _sources(height, width), axis=1), [-1, 9 * x.shape[-1]])


def _summed_over_taps(products, channels, height, width, reverse):
    """At each output position q, the sum over taps t of `products` [N P, 9 C] at the input
    position feeding q through t, and tap t (`reverse`: 8 - t), as [N, P, C]."""
    positions = height * width
    padded = tf.pad(tf.reshape(products, [-1, positions, 9 * channels]), [[0, 0], [0, 1], [0, 0]])
    taps = np.arange(9)[::-1] if reverse else np.arange(9)
    rows = tf.reshape(padded, [-1, (positions + 1) * 9, channels])
    return tf.reduce_sum(tf.gather(rows, _sources(height, width) * 9 + taps, axis=1), axis=2)


# AutoGraph would convert the nested `tf.custom_gradient` function into one it cannot call.
@tf.autograph.experimental.do_not_convert
def tap_conv3x3(flat_x, kernel, height, width):
    """`dense_conv3x3`'s product by taps, 9 / P of its multiply-adds: for C_in <= C_out x's 3x3
    patches [N P, 9 C_in] (a gather) times the kernel [9 C_in, C_out], else x [N P, C_in] times
    every tap's kernel [C_in, 9 C_out], summed over the taps (a gather); the gradients so too,
    the kernel's from the forward's patches or from g's (an input position p feeds output q
    through tap t where q feeds p through tap 8 - t)."""
    channels_in, channels_out = kernel.shape[-2:]
    by_patches = channels_in <= channels_out

    @tf.custom_gradient
    def product(flat_x, kernel):
        batch = tf.shape(flat_x)[0]
        x = tf.reshape(flat_x, [batch, height * width, channels_in])
        taps = tf.reshape(kernel, [9, channels_in, channels_out])
        if by_patches:
            patches = _patches(x, height, width)
            out = tf.matmul(patches, tf.reshape(taps, [9 * channels_in, channels_out]))
        else:
            per_tap = tf.reshape(tf.transpose(taps, [1, 0, 2]), [channels_in, 9 * channels_out])
            products = tf.matmul(tf.reshape(x, [-1, channels_in]), per_tap)
            out = _summed_over_taps(products, channels_out, height, width, False)

        def gradient(upstream):
            g = tf.reshape(upstream, [-1, channels_out])
            if by_patches:
                by_kernel = tf.matmul(patches, g, transpose_a=True)
                back = tf.matmul(
                    g, tf.reshape(taps, [9 * channels_in, channels_out]), transpose_b=True
                )
                by_x = _summed_over_taps(back, channels_in, height, width, True)
            else:
                g_patches = _patches(
                    tf.reshape(g, [batch, height * width, channels_out]), height, width
                )
                turned = tf.transpose(tf.reverse(taps, [0]), [0, 2, 1])
                by_x = tf.matmul(g_patches, tf.reshape(turned, [9 * channels_out, channels_in]))
                by_tap = tf.matmul(tf.reshape(x, [-1, channels_in]), g_patches, transpose_a=True)
                by_kernel = tf.reverse(
                    tf.transpose(tf.reshape(by_tap, [channels_in, 9, channels_out]), [1, 0, 2]), [0]
                )
            return tf.reshape(by_x, tf.shape(flat_x)), tf.reshape(by_kernel, kernel.shape)

        return tf.reshape(out, [batch, height * width * channels_out]), gradient

    return product(flat_x, tf.convert_to_tensor(kernel))


@tf.custom_gradient
def conv3x3_same(x, kernel):
    """`tf.nn.conv2d(x, kernel, 1, 'SAME')` of [N, H, W, C_in], kernel [3, 3, C_in, C_out]; its
    gradients (`networks.loop_gradients`) as convolutions in the layout XLA:CPU's own kernels
    take (it canonicalizes only the entry computation's: TF's in a loop body ran as naive
    loops): the output's gradient g convolved with the kernel turned by 180 degrees (in and out
    swapped; Dumoulin and Visin 2016, https://arxiv.org/abs/1603.07285, Sec. 4), and x's
    channels as a batch [C_in, H, W, N] convolved with g as an [H, W, N, C_out] kernel, padded
    by 1."""
    x, kernel = tf.identity(x), tf.identity(kernel)  # This graph's: the gradient closes over them.

    def gradient(g):
        with tf.name_scope('loop_body_gradients'):
            turned = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            channels, spread = tf.transpose(x, [3, 1, 2, 0]), tf.transpose(g, [1, 2, 0, 3])
            by_kernel = tf.nn.conv2d(channels, spread, 1, [[0, 0], [1, 1], [1, 1], [0, 0]])
            return conv_same(g, turned), tf.transpose(by_kernel, [1, 2, 0, 3])

    return conv_same(x, kernel), gradient
