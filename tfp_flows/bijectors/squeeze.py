"""Squeeze: the 2x2 space-to-depth reshaping of the multi-scale architecture."""

import tensorflow as tf

from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.shapes import check_float

__all__ = ['Squeeze']


def _images_op(op, x, shape):
    """Applies a [N, H, W, C] op (`tf.nn.space_to_depth`...) to `x` of any batch rank."""
    if x.shape.rank == 4:
        return op(x, 2)
    dynamic = tf.shape(x)
    batch, event = dynamic[:-3], dynamic[-3:]
    out = op(tf.reshape(x, tf.concat([[-1], event], axis=0)), 2)
    out = tf.reshape(out, tf.concat([batch, tf.shape(out)[1:]], axis=0))
    out.set_shape(shape)
    return out


class Squeeze(FlowBijector):
    """2x2 squeeze between an image [H, W, C] and its latent side [H/2, W/2, 4C].

    A permutation of the values, so its log-det is 0. As for every step here, `forward` maps
    latent to data (TFP's `tfb.Glow` calls this direction `Expand`):
      forward (latent -> data):  tf.nn.depth_to_space, [H/2, W/2, 4C] -> [H, W, C]
      inverse (data -> latent):  tf.nn.space_to_depth, the squeeze, [H, W, C] -> [H/2, W/2, 4C]
        z[i, j, (2a + b) * C + c] = x[2i + a, 2j + b, c]   for a, b in {0, 1}
      log|det| = 0
    H and W must be even. A level of a multi-scale flow lists `Squeeze()` on its data side
    and `tfb.Invert(Squeeze())` on its latent side, so its latent keeps the data's shape.

    Reference: Dinh et al. (2017), Real NVP. https://arxiv.org/abs/1605.08803
    """

    def __init__(self, validate_args=False, name='squeeze'):
        """Creates the squeeze. Raises `ValueError` for an odd H or W, or C not divisible by 4
        on the latent side, when the tensors' shapes are known, and for a non-bool
        `validate_args` at construction."""
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            super().__init__(
                forward_min_event_ndims=3,
                is_constant_jacobian=True,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @staticmethod
    def _latent_shape(shape):
        """Static [..., H, W, C] -> [..., H/2, W/2, 4C], with a clear error for odd H or W."""
        if shape.rank is None:
            return tf.TensorShape(None)
        if shape.rank < 3:
            raise ValueError(
                f'Squeeze expects images of shape [..., H, W, C]; got shape {shape.as_list()}.'
            )
        height, width, channels = shape[-3:]
        for name, size in (('height', height), ('width', width)):
            if size is not None and size % 2:
                raise ValueError(
                    f'Squeeze needs an even {name}; got {name} {size} in shape '
                    f'{shape.as_list()}. Use image sizes divisible by 2 ** num_levels.'
                )
        return shape[:-3].concatenate(
            [
                None if height is None else height // 2,
                None if width is None else width // 2,
                None if channels is None else channels * 4,
            ]
        )

    @staticmethod
    def _data_shape(shape):
        """Static [..., H, W, 4C] -> [..., 2H, 2W, C], with a clear error if 4 does not divide
        the channels."""
        if shape.rank is None:
            return tf.TensorShape(None)
        if shape.rank < 3:
            raise ValueError(
                f'Squeeze.forward expects latents of shape [..., H, W, 4C]; got shape '
                f'{shape.as_list()}.'
            )
        height, width, channels = shape[-3:]
        if channels is not None and channels % 4:
            raise ValueError(
                f'Squeeze.forward needs channels divisible by 4; got {channels} in shape '
                f'{shape.as_list()}.'
            )
        return shape[:-3].concatenate(
            [
                None if height is None else height * 2,
                None if width is None else width * 2,
                None if channels is None else channels // 4,
            ]
        )

    def _forward_and_log_det(self, z):
        check_float(z, 'Squeeze')
        x = _images_op(tf.nn.depth_to_space, z, self._data_shape(z.shape))
        return x, tf.zeros([], z.dtype)

    def _inverse_and_log_det(self, x):
        check_float(x, 'Squeeze')
        z = _images_op(tf.nn.space_to_depth, x, self._latent_shape(x.shape))
        return z, tf.zeros([], x.dtype)

    def _forward_event_shape(self, input_shape):
        return self._data_shape(input_shape)

    def _inverse_event_shape(self, output_shape):
        return self._latent_shape(output_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] * 2, input_shape[-1:] // 4], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], output_shape[-3:-1] // 2, output_shape[-1:] * 4], 0)
