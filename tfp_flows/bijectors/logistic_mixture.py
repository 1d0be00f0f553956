"""The mixture-of-logistics CDF coupling of Flow++, the fourth kind of `coupling._Coupling`.

Its data -> latent map is in closed form; its latent -> data map (sampling) inverts it by
bisection, which training does not use (`log_prob` maps data to latent), unless memory-saving
backprop 'invert' rebuilds a step's input.
"""

import numpy as np
import tensorflow as tf

from tfp_flows import checks
from tfp_flows.bijectors.affine import LOG_SCALE_BOUND, log_scale
from tfp_flows.bijectors.coupling import _Coupling

__all__ = ['LogisticMixtureCoupling']

_COMPONENT_LOG_SCALE_BOUND = 7.0  # Flow++'s code floors component log-scales at -7.
_MAX_HALVINGS = 100  # Enough for brackets up to 2**100 tolerances wide.


def _log_sum_exp(x):
    """(m, log sum_j exp(x_j - m)) over the last axis, m its finite maximum (0 if none): their
    sum is the log-sum-exp, the difference x - m - log sum that of a log-softmax."""
    largest = tf.stop_gradient(tf.reduce_max(x, axis=-1))
    largest = tf.where(tf.math.is_finite(largest), largest, tf.zeros_like(largest))
    return largest, tf.math.log(tf.reduce_sum(tf.exp(x - largest[..., tf.newaxis]), axis=-1))


def _logit_cdf(v, log_weights, means, log_scales, slope=False):
    """g(v) = logit F(v), F = sum_j pi_j sigmoid(u_j), in log-sigmoid form (finite in the
    tails), for v [...] and the mixture [..., M]; with `slope`, (g(v), log g'(v))."""
    u = (v[..., tf.newaxis] - means) * tf.exp(-log_scales)
    # max(u, 0) and relu(-u): at u = 0 the gradients of u > 0 (relu's on both is 0 there).
    above, below = tf.maximum(u, tf.zeros([], u.dtype)), tf.nn.relu(-u)
    magnitude = above + below  # |u|: log sigmoid(+-u) = -softplus(-|u|) - relu(-+u)
    softplus = tf.nn.softplus(-magnitude)
    lower, upper = log_weights - softplus - below, log_weights - softplus - above
    cdf, survival = _log_sum_exp(lower), _log_sum_exp(upper)  # log F and log(1 - F), in parts
    log_cdf, log_survival = cdf[0] + cdf[1], survival[0] + survival[1]
    if not slope:
        return log_cdf - log_survival
    # log g' = log sum_j pi_j e^-s_j sigmoid(u_j) sigmoid(-u_j) - log F - log(1 - F): the sum's
    # terms pi_j sigmoid(-|u_j|) normalised by the smaller of F and 1 - F first, as a
    # log-softmax (in the tails both ~ -|u|: s_j and the others' share would be lost).
    right = log_cdf > log_survival  # The tail is 1 - F's side.
    tail_max, tail_log_sum = (tf.where(right, survival[i], cdf[i])[..., tf.newaxis] for i in (0, 1))
    # Its terms log(pi_j sigmoid(-|u_j|)) are those of the tail's sum where all u_j share a sign.
    terms = log_weights - softplus - magnitude - tail_max - tail_log_sum - softplus - log_scales
    log_slope = tf.reduce_logsumexp(terms, axis=-1) - tf.where(right, log_cdf, log_survival)
    return log_cdf - log_survival, log_slope


def _bisect(target, log_weights, means, log_scales):
    """The v with g(v) = target (no gradient), by halving the bracket of its root."""
    finfo = np.finfo(target.dtype.as_numpy_dtype)
    limit, eps = finfo.max / 4, finfo.eps  # Ends and their sums stay finite.
    ends = tf.clip_by_value(means + tf.exp(log_scales) * target[..., tf.newaxis], -limit, limit)

    def wide(low, high):
        return tf.reduce_any(high - low > 2 * eps * (1 + tf.abs(low) + tf.abs(high)))

    def halve(low, high):
        middle = low / 2 + high / 2
        below = _logit_cdf(middle, log_weights, means, log_scales) < target
        return tf.where(below, middle, low), tf.where(below, high, middle)

    bracket = (tf.reduce_min(ends, axis=-1), tf.reduce_max(ends, axis=-1))
    low, high = tf.while_loop(wide, halve, bracket, maximum_iterations=_MAX_HALVINGS)
    return low / 2 + high / 2


class LogisticMixtureCoupling(_Coupling):
    """Mixture-of-logistics CDF coupling (Flow++): each value of the changed part x2 goes
    through the logit of its own mixture's CDF, then an affine map, given the kept part x1.

    Event [H, W, C] or [C], split by `mask` as in `AffineCoupling`. Per value of x2, NN(x1)
    gives M mixture logits, M means mu, M raw log-scales, a raw log-scale and a shift b (3M + 2):
      pi = softmax(logits),  mu_j = raw mean_j + o_j,  o_j = 4 j / (M + 1) - 2  (j = 1..M),
      s_j = 7 tanh(raw_j / 7),  a = bound tanh(raw_a / bound),  u_j(v) = (v - mu_j) exp(-s_j)
      g(v) = logit(sum_j pi_j sigmoid(u_j(v)))  (log-sigmoid sums: finite in the tails)
      inverse (data -> latent):  x1 = y1,  x2 = g(y2) exp(a) + b  (Flow++ eq. 8)
      forward (latent -> data):  y1 = x1,  y2 = g^-1((x2 - b) exp(-a)), by bisection in
        [min_j, max_j of mu_j + exp(s_j) t] (where g's root for target t lies), halved until
        every bracket is at most 2 eps (1 + |ends|) wide (eps the dtype's machine epsilon;
        at most 100 halvings), then one Newton step, which also gives the gradient
      log|det dy/dx| = -sum over x2 of (a + log g'(y2)),
        log g' = log sum_j pi_j exp(-s_j) sigmoid(u_j) sigmoid(-u_j) - log F - log(1 - F)
    A fresh conditioner outputs zero: M equal logistics spread by o, a fixed odd map (the
    identity only for M = 1), whose shape training moves from the first step (from the
    identity, M equal components would move as one affine map to first order).
    Arguments (output_size: 3M + 2 per channel of x2, channel c's logits, means, log-scales,
    raw a and b from output c (3M + 2) on), context and errors as `AffineCoupling`'s, with
    `log_scale_bound` (of a) and `mixture_components` M (an int in [1, 1000)), both in
    `structure()`.

    Reference: Ho et al. (2019), Flow++, https://arxiv.org/abs/1902.00275
    """

    def __init__(
        self,
        event_shape,
        mask='channel',
        flip=False,
        conditioner_fn=None,
        hidden_channels=512,
        mixture_components=4,
        log_scale_bound=2.0,
        seed=0,
        dtype=tf.float32,
        validate_args=False,
        name='logistic_mixture_coupling',
        conditional_shape=None,
        dropout_rate=0.0,
        dtype_policy=None,
        residual_blocks=0,
    ):
        parameters = dict(locals())
        components = checks.MIXTURE_COMPONENTS.check('mixture_components', mixture_components)
        self._log_scale_bound = LOG_SCALE_BOUND.check('log_scale_bound', log_scale_bound)
        self._components, self.num_params = components, 3 * components + 2
        self._mean_offsets = np.linspace(-2.0, 2.0, components + 2)[1:-1]
        super().__init__(parameters)

    def structure(self):
        return {**super().structure(), 'mixture_components': self._components}

    def _mixture(self, params, channels):
        """(log pi, mu, log-scales [..., channels, M], a, b [..., channels]) from the output."""
        dtype, shape = params.dtype, tf.shape(params)[:-1]
        params = tf.reshape(params, tf.concat([shape, [channels, self.num_params]], axis=0))
        logits, means, raw, raw_a, shift = tf.split(params, [self._components] * 3 + [1, 1], -1)
        log_weights = tf.nn.log_softmax(logits)
        means = means + tf.constant(self._mean_offsets, dtype)
        log_scales = log_scale(raw, 'tanh', _COMPONENT_LOG_SCALE_BOUND)
        outer = log_scale(raw_a[..., 0], 'tanh', self._log_scale_bound)
        return log_weights, means, log_scales, outer, shift[..., 0]

    def _map(self, x, params, inverse):
        log_weights, means, log_scales, outer, shift = self._mixture(params, x.shape[-1])
        mixture = (log_weights, means, log_scales)
        if inverse:
            logit, log_slope = _logit_cdf(x, *mixture, slope=True)
            y, log_det = logit * tf.exp(outer) + shift, outer + log_slope
        else:
            target = (x - shift) * tf.exp(-outer)
            root = _bisect(*(tf.stop_gradient(t) for t in (target, *mixture)))
            logit, log_slope = _logit_cdf(root, *mixture, slope=True)
            # A Newton step: refines the root, and its gradient is the implicit function's.
            y = root - (logit - target) * tf.stop_gradient(tf.exp(-log_slope))
            log_det = -outer - _logit_cdf(y, *mixture, slope=True)[1]
        return y, tf.reduce_sum(log_det, axis=list(range(-len(self._event_shape), 0)))
