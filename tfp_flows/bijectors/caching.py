"""A bijector cache that memoises only while tracing a graph.

TFP caches `forward`/`inverse` results keyed by the input tensor. Eagerly, a cached result
outlives a variable update: while `z = b.inverse(x)` is alive, `b.inverse(x)` returns the old
`z` even after `b`'s variables changed (and `b.forward(z)` returns the old `x` without
computing anything). Inside `tf.function` every trace makes new tensors, so a cache hit always
belongs to the current variable values.

Within one traced function, TFP's memo still holds: `inverse(x)`, a variable assignment, then
`inverse(x)` of the same tensor returns the first result. Compute after the update from a new
tensor, or in a separate call of the function.

`GraphOnlyCache` therefore computes every call in eager mode and memoises only in graph mode,
where it also lets a bijector return its log-det together with its output
(`BijectorCacheWithGreedyAttrs`), so `log_prob` runs each coupling network once per step.
"""

import tensorflow as tf
from tensorflow_probability.python.internal import cache_util

__all__ = ['GraphOnlyCache', 'GreedyGraphOnlyCache']


class _EagerBypass:
    """Computes every call when executing eagerly; memoises only while tracing a graph."""

    def _lookup(self, input, forward_name, inverse_name, **kwargs):  # noqa: A002 (TFP's name)
        if tf.executing_eagerly():
            return self._invoke(input, forward_name, kwargs, attributes={})
        return super()._lookup(input, forward_name, inverse_name, **kwargs)

    def _attributes(self, input, fn_name, **kwargs):  # noqa: A002
        if tf.executing_eagerly():
            return {}
        return super()._attributes(input, fn_name, **kwargs)


class GraphOnlyCache(_EagerBypass, cache_util.BijectorCache):
    """TFP's `BijectorCache`, bypassed when executing eagerly."""


class GreedyGraphOnlyCache(_EagerBypass, cache_util.BijectorCacheWithGreedyAttrs):
    """`BijectorCacheWithGreedyAttrs`, bypassed when executing eagerly.

    The bound bijector implements `forward_name`/`inverse_name` methods returning
    `(output, {'fldj': ..., 'ildj': ...})`, each log-det unreduced at the minimal event ndims.
    """
