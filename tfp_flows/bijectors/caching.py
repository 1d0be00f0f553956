"""The one place that uses TFP internals: a bijector cache that memoises only in graphs, and
the eager log-det hand-over of `log_prob`.

TFP caches `forward`/`inverse` results keyed by the input tensor, with no public switch
(tensorflow/probability#1510): eagerly a cached result outlives a variable update.
`GraphOnlyCache` is TFP's internal `BijectorCacheWithGreedyAttrs` (as FFJORD's) bypassed
eagerly; in graphs (new tensors every trace) `log_prob` runs the flow once. Within one traced
function the memo holds: `inverse(x)`, a variable assignment, then `inverse(x)` of the same
tensor returns the first result.

`EagerDensityCorrection` (a base class of `FlowBijector`) overrides TFP's private hook
`Bijector._experimental_compute_density_correction`, which `TransformedDistribution.log_prob`
calls with x = inverse(y): eagerly it hands over the log-det that `inverse` computed instead
of running a second (forward) pass.

tests/bijectors/test_caching.py pins what this relies on, so a TFP upgrade that changes it
fails loudly; setup.cfg pins TFP. (`walk.is_invert` also knows TFP's private `_Invert`.)
"""

import weakref

import tensorflow as tf
from tensorflow_probability.python.internal import cache_util

from tfp_flows.bijectors.shapes import reduce_log_det

__all__ = ['EagerDensityCorrection', 'GraphOnlyCache']

for _member in ('_lookup', '_attributes', '_invoke'):  # What `GraphOnlyCache` relies on.
    if not callable(getattr(cache_util.BijectorCacheWithGreedyAttrs, _member, None)):
        raise ImportError(
            f'tfp_flows relies on TFP internal BijectorCache.{_member}, which this TFP lacks. '
            'Install the TFP version pinned in setup.cfg.'
        )


class GraphOnlyCache(cache_util.BijectorCacheWithGreedyAttrs):
    """TFP's greedy-attribute bijector cache, bypassed when executing eagerly. The bijector's
    `forward_name`/`inverse_name` methods return `(output, {'fldj': ..., 'ildj': ...})`."""

    def _lookup(self, input, forward_name, inverse_name, **kwargs):  # noqa: A002 (TFP's name)
        if tf.executing_eagerly():
            return self._invoke(input, forward_name, kwargs, attributes={})
        return super()._lookup(input, forward_name, inverse_name, **kwargs)

    def _attributes(self, input, fn_name, **kwargs):  # noqa: A002
        if tf.executing_eagerly():
            return {}
        return super()._attributes(input, fn_name, **kwargs)


class _EagerLogDets:
    """Log-dets of eager `inverse` calls, kept weakly by the output tensor for one lookup."""

    def __init__(self):
        self._entries = {}

    def record(self, x, y, ildj, min_event_ndims):
        key = id(x)
        self._entries[key] = (
            weakref.ref(x, lambda _: self._entries.pop(key, None)),
            y,
            ildj,
            min_event_ndims,
        )

    def pop(self, x):
        entry = self._entries.pop(id(x), None)
        if entry is None or entry[0]() is not x:
            return None
        return entry[1:]


_EAGER_LOG_DETS = _EagerLogDets()


class EagerDensityCorrection:
    """Eager `log_prob` in one pass: a subclass calls `self._record_eager_inverse(x, y, ildj)`
    when its `inverse` maps y to x with log|det dx/dy| = `ildj` (at its minimal event ndims)."""

    def _record_eager_inverse(self, x, y, ildj):
        if tf.executing_eagerly():
            _EAGER_LOG_DETS.record(x, y, ildj, self.inverse_min_event_ndims)

    def _experimental_compute_density_correction(
        self, x, tangent_space, backward_compat=False, **kwargs
    ):
        """TFP's hook for `TransformedDistribution.log_prob`: log|det dy/dx| at x = inverse(y);
        eagerly the one `inverse` computed, not a forward pass from x (a wrong one where
        forward(inverse(y)) != y: outside a preprocessing's support, at a saturated sigmoid)."""
        event_ndims = kwargs.get('event_ndims')
        if backward_compat and tf.executing_eagerly() and event_ndims is not None:
            found = _EAGER_LOG_DETS.pop(x)
            if found is not None:
                y, ildj, min_event_ndims = found
                return -reduce_log_det(ildj, y, min_event_ndims, event_ndims), tangent_space
        return super()._experimental_compute_density_correction(
            x, tangent_space, backward_compat=backward_compat, **kwargs
        )
