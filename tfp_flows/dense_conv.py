"""A 3x3 'SAME' convolution of a small map as one product with the kernel's dense matrix, and
that product's gradients (`networks` takes it for maps of at most 16 positions)."""

import functools

import numpy as np
import tensorflow as tf

__all__ = ['dense_conv3x3']


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
