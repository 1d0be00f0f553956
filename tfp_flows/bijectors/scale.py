"""The log-scale of affine couplings and split priors, bounded so one bad batch cannot overflow."""

import tensorflow as tf

__all__ = ['SCALES', 'check_scale', 'log_scale']

SCALES = ('tanh', 'sigmoid')


def check_scale(scale, log_scale_bound):
    """Raises `ValueError` naming a bad `scale` or `log_scale_bound`."""
    if scale not in SCALES:
        raise ValueError(f'`scale` must be one of {SCALES}; got {scale!r}.')
    if (
        isinstance(log_scale_bound, bool)
        or not isinstance(log_scale_bound, (int, float))
        or not 0 < log_scale_bound < float('inf')
    ):
        raise ValueError(f'`log_scale_bound` must be a finite number > 0; got {log_scale_bound!r}.')


def log_scale(raw, scale, log_scale_bound):
    """The log-scale from a network's raw output.

    'tanh':     log_scale = bound * tanh(raw / bound), in (-bound, bound): a soft clamp, the
                identity near 0 (as FrEIA's `affine_clamping`).
    'sigmoid':  log_scale = -log sigmoid(raw + 2), in (0, inf): Glow's scale (openai/glow,
                model.py), whose data -> latent map multiplies by sigmoid(raw + 2) <= 1;
                this package's `forward` (latent -> data) divides by it. Computed as a
                log-sigmoid, so it never overflows.
    """
    if scale == 'sigmoid':
        return -tf.math.log_sigmoid(raw + tf.constant(2.0, raw.dtype))
    bound = tf.constant(log_scale_bound, raw.dtype)
    return bound * tf.tanh(raw / bound)
