"""The base class of this package's bijectors: output and log-det in one pass, saved structure."""

import json
import weakref

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors.caching import GraphOnlyCache
from tfp_flows.validation import check_int

tfb = tfp.bijectors

__all__ = ['FlowBijector', 'reduce_log_det']


def reduce_log_det(log_det, x, min_event_ndims, event_ndims):
    """Sums a log-det computed at `min_event_ndims` over the further event dims of `x`.

    `log_det` has the shape of `x` without its last `min_event_ndims` axes, or is a scalar
    (a constant Jacobian, the same at every position): then it is multiplied by the number of
    positions, as TFP does.
    """
    extra = event_ndims - min_event_ndims
    if extra < 0:
        raise ValueError(f'`event_ndims` must be >= {min_event_ndims}; got {event_ndims}.')
    if extra == 0:
        return log_det
    if log_det.shape.rank == 0:
        rank = x.shape.rank
        static = None if rank is None else x.shape[rank - event_ndims : rank - min_event_ndims]
        if static is not None and static.is_fully_defined():  # One op, none to trace.
            return log_det * static.num_elements()
        rank = tf.rank(x)
        positions = tf.shape(x)[rank - event_ndims : rank - min_event_ndims]
        return log_det * tf.cast(tf.reduce_prod(positions), log_det.dtype)
    return tf.reduce_sum(log_det, axis=list(range(-extra, 0)))


def _event_ndims(event_ndims, min_event_ndims):
    """`event_ndims` (None: the minimum) checked to be an int >= the minimum.

    An `event_ndims` above the input's rank is left to each step's check of the event shape,
    which names the shape it expects.
    """
    if event_ndims is None:
        return min_event_ndims
    return check_int('event_ndims', event_ndims, low=min_event_ndims)


class _SavedStructure(tf.train.experimental.PythonState):
    """A bijector's structural choices, saved in checkpoints and checked when one is read.

    Values that define the density but are not variables (a coupling's mask and flip, a
    preprocessing margin, the kinds and order of a chain's steps) are written into every
    checkpoint as JSON. Reading a checkpoint into a bijector built with other choices raises
    `ValueError` naming the choice and both values, instead of giving another density.
    """

    def __init__(self, bijector):
        self._bijector = bijector

    def serialize(self):
        return json.dumps(self._bijector.structure(), sort_keys=True)

    def deserialize(self, string_value):
        saved = json.loads(
            string_value.decode() if isinstance(string_value, bytes) else string_value
        )
        built = json.loads(self.serialize())
        difference = _first_difference(saved, built, '')
        if difference is not None:
            path, saved_value, built_value = difference
            raise ValueError(
                f'The checkpoint was saved from a {type(self._bijector).__name__} '
                f'{self._bijector.name!r} with {path or "structure"} = {saved_value!r}, but this '
                f'one has {built_value!r}. Build the flow with the arguments the checkpoint was '
                'made with.'
            )


def _first_difference(saved, built, path):
    """(path, saved, built) of the first difference of two JSON values, or None."""
    if isinstance(saved, dict) and isinstance(built, dict):
        for key in sorted(set(saved) | set(built)):
            difference = _first_difference(
                saved.get(key), built.get(key), f'{path}.{key}' if path else key
            )
            if difference is not None:
                return difference
        return None
    if isinstance(saved, list) and isinstance(built, list) and len(saved) == len(built):
        for i, (a, b) in enumerate(zip(saved, built, strict=True)):
            difference = _first_difference(a, b, f'{path}[{i}]')
            if difference is not None:
                return difference
        return None
    return None if saved == built else (path, saved, built)


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


class FlowBijector(tfb.Bijector):
    """A `tfb.Bijector` that computes each direction together with its log-det.

    Subclasses implement

      _forward_and_log_det(x, **kwargs) -> (y, log|det dy/dx|)
      _inverse_and_log_det(y, **kwargs) -> (x, log|det dx/dy|)

    with log-dets at `forward_min_event_ndims` (a scalar for a constant Jacobian). The public
    `forward_and_log_det` and `inverse_and_log_det` return both in one pass, reduced to
    `event_ndims`; `tfp_flows.bijectors.Chain` walks a flow with them. TFP's own methods work
    as for any bijector; inside `tf.function`, `log_prob`'s `inverse(y)` then
    `inverse_log_det_jacobian(y)` run the computation once, and eagerly each call recomputes,
    so a result never goes stale after a variable update (see `caching.py`).

    `kwarg_names` lists the bijector kwargs a subclass takes (e.g. 'conditional_input',
    'training'); a chain passes each step only those. `structure()` describes the choices
    that define the map and are not variables; it is saved with every checkpoint and checked
    on reading one.
    """

    _cache = GraphOnlyCache(forward_name='_cached_forward', inverse_name='_cached_inverse')

    kwarg_names = ()

    # TFP compares and hashes bijectors by their constructor parameters, recursively through
    # nested bijectors, and hashes on every cached call: a third of the time to trace log_prob
    # of the default Glow went there. These bijectors own variables their parameters do not
    # name (two ActNorms of the same size are different maps), so identity is the right
    # equality, and hashing it is free.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._saved_structure = _SavedStructure(self)

    @classmethod
    def _parameter_properties(cls, dtype):
        return dict()  # Variables are created in `__init__`, not passed in.

    def structure(self):
        """The choices that define this map besides its variables, as a JSON-able dict."""
        return {'class': type(self).__name__}

    def forward_and_log_det(self, x, event_ndims=None, **kwargs):
        """(y, log|det dy/dx|) in one pass; the log-det summed over `event_ndims` dims.

        `event_ndims` defaults to `forward_min_event_ndims`; kwargs go to the bijector.
        Raises `ValueError` for an `event_ndims` that is not an int >= the minimum.
        """
        x = self._convert(x, 'x')
        event_ndims = _event_ndims(event_ndims, self.forward_min_event_ndims)
        y, log_det = self._forward_and_log_det(x, **kwargs)
        return y, reduce_log_det(log_det, x, self.forward_min_event_ndims, event_ndims)

    def inverse_and_log_det(self, y, event_ndims=None, **kwargs):
        """(x, log|det dx/dy|) in one pass; the log-det summed over `event_ndims` dims.

        `event_ndims` defaults to `inverse_min_event_ndims`; kwargs go to the bijector.
        Raises `ValueError` for an `event_ndims` that is not an int >= the minimum.
        """
        y = self._convert(y, 'y')
        event_ndims = _event_ndims(event_ndims, self.inverse_min_event_ndims)
        x, log_det = self._inverse_and_log_det(y, **kwargs)
        return x, reduce_log_det(log_det, y, self.inverse_min_event_ndims, event_ndims)

    def _convert(self, value, name):
        value = tf.convert_to_tensor(value, dtype_hint=self.dtype, name=name)
        if self.dtype is not None and value.dtype != self.dtype:
            raise TypeError(
                f'{type(self).__name__} {self.name!r} has dtype {self.dtype.name}; got `{name}` '
                f'of dtype {value.dtype.name}.'
            )
        return value

    def _cached_forward(self, x, **kwargs):
        y, fldj = self._forward_and_log_det(x, **kwargs)
        return y, {'fldj': fldj, 'ildj': -fldj}

    def _cached_inverse(self, y, **kwargs):
        x, ildj = self._inverse_and_log_det(y, **kwargs)
        if tf.executing_eagerly():
            _EAGER_LOG_DETS.record(x, y, ildj, self.inverse_min_event_ndims)
        return x, {'ildj': ildj, 'fldj': -ildj}

    def _experimental_compute_density_correction(
        self, x, tangent_space, backward_compat=False, **kwargs
    ):
        """TFP's hook for `TransformedDistribution.log_prob`: log|det dy/dx| at x = inverse(y).

        Eagerly TFP keeps no log-det from `inverse(y)` (our cache computes every eager call),
        and would run the flow forward from x for it: a second pass, and a wrong one where
        forward(inverse(y)) != y (outside a preprocessing's support, at a saturated sigmoid).
        So the log-det that `inverse` computed with x is taken instead, once: `log_prob` is one
        pass and equals base.log_prob(x) + log|det dx/dy| at y exactly. Inside `tf.function`
        TFP's cache does the same.
        """
        event_ndims = kwargs.get('event_ndims')
        if backward_compat and tf.executing_eagerly() and event_ndims is not None:
            found = _EAGER_LOG_DETS.pop(x)
            if found is not None:
                y, ildj, min_event_ndims = found
                return -reduce_log_det(ildj, y, min_event_ndims, event_ndims), tangent_space
        return super()._experimental_compute_density_correction(
            x, tangent_space, backward_compat=backward_compat, **kwargs
        )

    def _forward(self, x, **kwargs):
        return self._forward_and_log_det(x, **kwargs)[0]

    def _inverse(self, y, **kwargs):
        return self._inverse_and_log_det(y, **kwargs)[0]

    def _forward_log_det_jacobian(self, x, **kwargs):
        return self._forward_and_log_det(x, **kwargs)[1]

    def _inverse_log_det_jacobian(self, y, **kwargs):
        return self._inverse_and_log_det(y, **kwargs)[1]
