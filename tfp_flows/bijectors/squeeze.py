"""Squeeze: the 2x2 space-to-depth reshaping of the multi-scale architecture."""

import tensorflow as tf

from tfp_flows.bijectors.base import FlowBijector

__all__ = ['Squeeze']


def _squeezed_shape(shape, inverse):
    """The static shape after the squeeze (`inverse`: [..., H, W, C] -> [..., H/2, W/2, 4C])
    or after its inverse; `ValueError` for odd H or W, or C not divisible by 4."""
    if shape.rank is None:
        return tf.TensorShape(None)
    if shape.rank < 3:
        raise ValueError(f'Squeeze expects a shape [..., H, W, C]; got {shape.as_list()}.')
    height, width, channels = shape[-3:]
    sizes = [('height', height, 2), ('width', width, 2)] if inverse else [('channels', channels, 4)]
    for name, size, factor in sizes:
        if size is not None and size % factor:
            need = f'an even {name}' if factor == 2 else f'{name} divisible by 4'
            hint = ' Use image sizes divisible by 2 ** num_levels.' if factor == 2 else ''
            raise ValueError(
                f'Squeeze needs {need}; got {name} {size} in shape {shape.as_list()}.{hint}'
            )
    factors = (0.5, 0.5, 4) if inverse else (2, 2, 0.25)
    new = [None if d is None else int(d * f) for d, f in zip(shape[-3:], factors, strict=True)]
    return shape[:-3].concatenate(new)


class Squeeze(FlowBijector):
    """2x2 squeeze between an image [H, W, C] and its latent side [H/2, W/2, 4C].

    A permutation of the values (TFP's `tfb.Glow` calls `forward` `Expand`):
      forward (latent -> data):  tf.nn.depth_to_space, [H/2, W/2, 4C] -> [H, W, C]
      inverse (data -> latent):  tf.nn.space_to_depth, the squeeze, [H, W, C] -> [H/2, W/2, 4C]
        z[i, j, (2a + b) * C + c] = x[2i + a, 2j + b, c]   for a, b in {0, 1}
      log|det| = 0
    `ValueError` for odd H or W (when known), `TypeError` for integer tensors.

    Reference: Dinh et al. (2017), Real NVP. https://arxiv.org/abs/1605.08803
    """

    def __init__(self, validate_args=False, name='squeeze'):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            self._init_step(parameters, name, 3, None, constant_jacobian=True)

    def _apply(self, x, inverse):
        if not x.dtype.is_floating:  # The one step without a dtype: FlowBijector takes any.
            raise TypeError(
                'Squeeze expects a floating-point tensor (dequantize integer images first, e.g. '
                f'with `tfp_flows.uniform_dequantize`); got dtype {x.dtype.name}.'
            )
        shape = _squeezed_shape(x.shape, inverse)
        op = tf.nn.space_to_depth if inverse else tf.nn.depth_to_space
        if x.shape.rank == 4:
            return op(x, 2), tf.zeros([], x.dtype)
        dynamic = tf.shape(x)  # The op takes [N, H, W, C]: other batch ranks are reshaped.
        y = op(tf.reshape(x, tf.concat([[-1], dynamic[-3:]], axis=0)), 2)
        y = tf.reshape(y, tf.concat([dynamic[:-3], tf.shape(y)[1:]], axis=0))
        return tf.ensure_shape(y, shape), tf.zeros([], x.dtype)

    def _forward_and_log_det(self, z):
        return self._apply(z, False)

    def _inverse_and_log_det(self, x):
        return self._apply(x, True)

    def _forward_event_shape(self, input_shape):
        return _squeezed_shape(input_shape, False)

    def _inverse_event_shape(self, output_shape):
        return _squeezed_shape(output_shape, True)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] * 2, input_shape[-1:] // 4], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], output_shape[-3:-1] // 2, output_shape[-1:] * 4], 0)
