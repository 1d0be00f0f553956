"""The one place that uses TFP internals: a bijector cache that memoises only in graphs.

TFP caches `forward`/`inverse` results keyed by the input tensor, and offers no public switch
for it (tensorflow/probability#1510). Eagerly a cached result outlives a variable update: while
`z = b.inverse(x)` is alive, `b.inverse(x)` returns the old `z` even after `b`'s variables
changed. Inside `tf.function` every trace makes new tensors, so a hit belongs to the current
variable values. TFP also offers no public way for a bijector to hand its log-det to
`inverse_log_det_jacobian` when `inverse` computed it anyway; its own FFJORD uses the internal
`BijectorCacheWithGreedyAttrs` for that, as we do.

`GraphOnlyCache` is that class with an eager bypass: eagerly every call computes, in graphs
`log_prob`'s `inverse(y)` then `inverse_log_det_jacobian(y)` run the flow once. It relies on
three members of TFP's internal `BijectorCache`: `_lookup(input, forward_name, inverse_name,
**kwargs)`, `_attributes(input, fn_name, **kwargs)` and `_invoke(input, fn_name, kwargs,
attributes)`. They are checked when this module is imported, and tests/test_caching.py pins
the behaviour (no stale eager result; one pass per `log_prob` in a graph), so a TFP upgrade
that changes them fails loudly instead of silently.

Within one traced function TFP's memo still holds: `inverse(x)`, a variable assignment, then
`inverse(x)` of the same tensor returns the first result. Compute after the update from a new
tensor, or in a separate call of the function.
"""

import inspect

import tensorflow as tf
from tensorflow_probability.python.internal import cache_util

__all__ = ['GraphOnlyCache']


def _check_tfp_cache_api():
    """Raises `ImportError` if TFP's internal cache lost a member this module relies on."""
    expected = {
        '_lookup': ['self', 'input', 'forward_name', 'inverse_name', 'kwargs'],
        '_attributes': ['self', 'input', 'fn_name', 'kwargs'],
        '_invoke': ['self', 'input', 'fn_name', 'kwargs', 'attributes'],
    }
    cache_class = cache_util.BijectorCacheWithGreedyAttrs
    for name, parameters in expected.items():
        method = getattr(cache_class, name, None)
        found = None if method is None else list(inspect.signature(method).parameters)
        if found != parameters:
            raise ImportError(
                f'tfp_flows relies on TFP internal BijectorCache.{name}{tuple(parameters)}; '
                f'this TFP has {found}. Install the TFP version pinned in setup.cfg.'
            )


_check_tfp_cache_api()


class GraphOnlyCache(cache_util.BijectorCacheWithGreedyAttrs):
    """TFP's greedy-attribute bijector cache, bypassed when executing eagerly.

    The bound bijector implements `forward_name`/`inverse_name` methods returning
    `(output, {'fldj': ..., 'ildj': ...})`, each log-det at the bijector's minimal event ndims.
    """

    def _lookup(self, input, forward_name, inverse_name, **kwargs):  # noqa: A002 (TFP's name)
        if tf.executing_eagerly():
            return self._invoke(input, forward_name, kwargs, attributes={})
        return super()._lookup(input, forward_name, inverse_name, **kwargs)

    def _attributes(self, input, fn_name, **kwargs):  # noqa: A002
        if tf.executing_eagerly():
            return {}
        return super()._attributes(input, fn_name, **kwargs)
