"""The one affine map of the flows, y = x * exp(log_scale) + shift, and its bounded log-scale:
ActNorm, the affine couplings and the split and top priors apply it with their own parameters.
"""

import tensorflow as tf

from tfp_flows import checks

__all__ = ['LOG_SCALE_BOUND', 'SCALE', 'affine', 'log_scale']

SCALE = checks.one_of('tanh', 'sigmoid')
LOG_SCALE_BOUND = checks.POSITIVE_NUMBER


def affine(x, shift, log_scale, inverse, event_rank):
    """The affine map of `x` [..., *event] and its log-det: (output, log|det d output / d x|).

      forward (inverse=False):  y = x * exp(log_scale) + shift
      inverse (inverse=True):   x = (y - shift) * exp(-log_scale)
      log|det| = +-sum of log_scale over the last `event_rank` axes

    `shift` and `log_scale` broadcast to `x`; a `log_scale` [..., 1, 1, C] counts at every
    position, and one without batch dims gives one log-det for all (ActNorm's [C]).
    """
    if inverse:
        y = (x - shift) * tf.exp(-log_scale)
    else:
        y = x * tf.exp(log_scale) + shift
    log_det = tf.reduce_sum(_over_event(log_scale, x, event_rank), axis=list(range(-event_rank, 0)))
    return y, -log_det if inverse else log_det


def _over_event(log_scale, x, event_rank):
    """`log_scale` broadcast to the event shape of `x` where it covers only part of it."""
    event = x.shape[-event_rank:] if x.shape.rank is not None else tf.TensorShape(None)
    if not event.is_fully_defined():
        return log_scale + tf.zeros(tf.shape(x)[-event_rank:], log_scale.dtype)
    if log_scale.shape.rank >= event_rank and log_scale.shape[-event_rank:] == event:
        return log_scale
    return log_scale + tf.zeros(event, log_scale.dtype)  # A constant: no op to run.


def log_scale(raw, scale, log_scale_bound):
    """The log-scale from a network's raw output.

    'tanh':     log_scale = bound * tanh(raw / bound), in (-bound, bound): a soft clamp (as
                FrEIA's `affine_clamping`), so one bad batch cannot overflow the inverse.
    'sigmoid':  log_scale = -log sigmoid(raw + 2) > 0: Glow's, whose data -> latent map
                multiplies by sigmoid(raw + 2) <= 1.
    """
    if scale == 'sigmoid':
        return -tf.math.log_sigmoid(raw + tf.constant(2.0, raw.dtype))
    bound = tf.constant(log_scale_bound, raw.dtype)
    return bound * tf.tanh(raw / bound)
