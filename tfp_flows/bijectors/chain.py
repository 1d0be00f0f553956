"""A chain of bijectors whose results never go stale in eager mode."""

from tensorflow_probability.python.bijectors import chain as tfp_chain

from tfp_flows.bijectors.caching import GraphOnlyCache

__all__ = ['Chain']


class Chain(tfp_chain._Chain):  # noqa: SLF001 (tfb.Chain's non-CompositeTensor form)
    """`tfb.Chain` (forward applies the last bijector first) with `GraphOnlyCache`.

    Used to compose flow steps: `tfb.Chain` memoises by input tensor also in eager mode, so
    after an optimiser step `chain.inverse(x)` would return the latent computed before it.
    Built on the form `tfb.Chain` itself takes for bijectors holding variables (not a
    `CompositeTensor`), so it works inside `tfb.Chain`, `tfd.TransformedDistribution` and
    `tf.Module` variable tracking like any TFP bijector.
    """

    _cache = GraphOnlyCache()

    # Identity, not TFP's recursive hash of every nested bijector's parameters (see
    # `FlowBijector`).
    __eq__ = object.__eq__
    __hash__ = object.__hash__
