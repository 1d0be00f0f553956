"""Squeeze: the 2x2 space-to-depth reshaping of the multi-scale architecture."""

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors.shapes import check_float

tfb = tfp.bijectors

__all__ = ['Squeeze']


class Squeeze(tfb.Bijector):
    """2x2 space-to-depth: [H, W, C] -> [H/2, W/2, 4C]; a permutation, so log-det 0.

      forward:  y[i, j, (2a + b) * C + c] = x[2i + a, 2j + b, c]   for a, b in {0, 1}
      inverse:  the depth-to-space map back to [H, W, C]
      log|det dy/dx| = 0
    H and W must be even. Unlike the other steps this is written data -> latent; a flow uses
    `tfb.Invert(Squeeze())` where its forward direction goes from latent to data.

    Reference: Dinh et al. (2017), Real NVP. https://arxiv.org/abs/1605.08803
    """

    def __init__(self, validate_args=False, name='squeeze'):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            super().__init__(
                forward_min_event_ndims=3,
                is_constant_jacobian=True,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype):
        return dict()

    @staticmethod
    def _squeezed_shape(shape):
        """Static [H, W, C] -> [H/2, W/2, 4C], with a clear error for odd H or W."""
        if shape.rank is not None and shape.rank < 3:
            raise ValueError(
                f'Squeeze expects a tensor of shape [..., H, W, C]; got shape {shape.as_list()}.'
            )
        if shape.rank is None:
            return tf.TensorShape(None)
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
    def _unsqueezed_shape(shape):
        """Static [H, W, 4C] -> [2H, 2W, C], with a clear error if channels % 4 != 0."""
        if shape.rank is not None and shape.rank < 3:
            raise ValueError(
                f'Squeeze.inverse expects a tensor of shape [..., H, W, 4C]; got shape '
                f'{shape.as_list()}.'
            )
        if shape.rank is None:
            return tf.TensorShape(None)
        height, width, channels = shape[-3:]
        if channels is not None and channels % 4:
            raise ValueError(
                f'Squeeze.inverse needs channels divisible by 4; got {channels} in shape '
                f'{shape.as_list()}.'
            )
        return shape[:-3].concatenate(
            [
                None if height is None else height * 2,
                None if width is None else width * 2,
                None if channels is None else channels // 4,
            ]
        )

    def _forward(self, x):
        check_float(x, 'Squeeze')
        x_shape = x.shape
        self._squeezed_shape(x_shape)
        shape = tf.shape(x)
        batch, (height, width, channels) = shape[:-3], tf.unstack(shape[-3:])
        x = tf.reshape(x, tf.concat([batch, [height // 2, 2, width // 2, 2, channels]], axis=0))
        rank = tf.rank(x)
        perm = tf.concat([tf.range(rank - 5), rank - 5 + tf.constant([0, 2, 1, 3, 4])], axis=0)
        x = tf.transpose(x, perm)
        y = tf.reshape(x, tf.concat([batch, [height // 2, width // 2, 4 * channels]], axis=0))
        y.set_shape(self._squeezed_shape(x_shape))
        return y

    def _inverse(self, y):
        check_float(y, 'Squeeze')
        y_shape = y.shape
        self._unsqueezed_shape(y_shape)
        shape = tf.shape(y)
        batch, (height, width, channels) = shape[:-3], tf.unstack(shape[-3:])
        y = tf.reshape(y, tf.concat([batch, [height, width, 2, 2, channels // 4]], axis=0))
        rank = tf.rank(y)
        perm = tf.concat([tf.range(rank - 5), rank - 5 + tf.constant([0, 2, 1, 3, 4])], axis=0)
        y = tf.transpose(y, perm)
        x = tf.reshape(y, tf.concat([batch, [2 * height, 2 * width, channels // 4]], axis=0))
        x.set_shape(self._unsqueezed_shape(y_shape))
        return x

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], x.dtype)

    def _forward_event_shape(self, input_shape):
        return self._squeezed_shape(input_shape)

    def _inverse_event_shape(self, output_shape):
        return self._unsqueezed_shape(output_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] // 2, input_shape[-1:] * 4], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], output_shape[-3:-1] * 2, output_shape[-1:] // 4], 0)
