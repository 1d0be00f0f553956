"""The base class of this package's bijectors: output and log-det in one pass, saved structure."""

import inspect
import json

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks
from tfp_flows.bijectors.caching import EagerDensityCorrection, GraphOnlyCache
from tfp_flows.bijectors.shapes import reduce_log_det

tfb = tfp.bijectors

__all__ = ['FlowBijector', 'SavedStructure', 'reduce_log_det']


def _event_ndims(event_ndims, min_event_ndims):
    """`event_ndims` (None: the minimum) checked to be an int >= the minimum."""
    if event_ndims is None:
        return min_event_ndims
    return checks.integer(min_event_ndims).check('event_ndims', event_ndims)


class SavedStructure(tf.train.experimental.PythonState):
    """A bijector's `structure()`, saved in checkpoints as JSON. Reading a checkpoint into a
    bijector built with other choices raises `ValueError` naming the choice and both values."""

    def __init__(self, bijector):
        self._bijector = bijector

    def serialize(self):
        return json.dumps(self._bijector.structure(), sort_keys=True)

    def deserialize(self, string_value):
        saved = _upgraded(
            json.loads(string_value.decode() if isinstance(string_value, bytes) else string_value)
        )
        built = json.loads(self.serialize())
        difference = _first_difference(saved, built, '')
        if difference is not None:
            path, saved_value, built_value = difference
            # glow's `loop` (model.loop in a run): name the value the checkpoint needs.
            looped = 'True' if saved_value == 'Loop' else 'False' if built_value == 'Loop' else ''
            raise ValueError(
                f'The checkpoint was saved from a {type(self._bijector).__name__} '
                f'{self._bijector.name!r} with {path or "structure"} = {saved_value!r}, but this '
                f'one has {built_value!r}. Build the flow with the arguments the checkpoint was '
                'made with' + (f' (loop={looped}: model.loop).' if looped else '.')
            )


def _upgraded(saved):
    """A structure saved before 0.2 in 0.2's terms: a `_ContextCoupling` is a checkerboard
    `AffineCoupling` with a spatial context."""
    if not isinstance(saved, dict):
        return saved
    if saved.get('class') == 'Chain':
        steps = saved.get('steps', [])
        return {
            **saved,
            'steps': ['AffineCoupling' if s == '_ContextCoupling' else s for s in steps],
        }
    if saved.get('class') != '_ContextCoupling':
        return saved
    height, width, _ = saved['event_shape']
    return {
        'class': 'AffineCoupling',
        'event_shape': saved['event_shape'],
        'mask': 'checkerboard',
        'flip': saved['flip'],
        'scale': 'tanh',
        'log_scale_bound': saved['log_scale_bound'],
        'conditional_shape': [height, width, saved['context_channels']],
    }


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
    if isinstance(saved, list) and isinstance(built, list):  # The first differing entry.
        for i, (a, b) in enumerate(zip(saved, built, strict=False)):
            difference = _first_difference(a, b, f'{path}[{i}]')
            if difference is not None:
                return difference
    return None if saved == built else (path, saved, built)


class FlowBijector(EagerDensityCorrection, tfb.Bijector):
    """A `tfb.Bijector` that computes each direction together with its log-det.

    Subclasses implement

      _forward_and_log_det(x, **kwargs) -> (y, log|det dy/dx|)
      _inverse_and_log_det(y, **kwargs) -> (x, log|det dx/dy|)

    with log-dets at `forward_min_event_ndims` (a scalar for a constant Jacobian). TFP's own
    methods work as for any bijector: `log_prob` runs the flow once, and eagerly each call
    recomputes, so a result never goes stale after a variable update (`caching.py`).
    `kwarg_names` lists the bijector kwargs a subclass takes; `structure()` (the choices that
    define the map besides its variables: a coupling's mask and flip, a chain's steps) is
    saved with every checkpoint (`SavedStructure`). Every public method refuses a tensor of
    another dtype with a `TypeError` saying what to do (dequantize or cast).
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

    def __new__(cls, *args, **kwargs):
        """Checks a step's `validate_args` (True or False) before its `__init__` makes variables."""
        arguments = inspect.signature(cls.__init__).bind_partial(None, *args, **kwargs).arguments
        checks.BOOL.check('validate_args', arguments.get('validate_args', False))
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._saved_structure = SavedStructure(self)

    def _init_step(self, parameters, name, event_ndims, dtype=None, constant_jacobian=False):
        """`FlowBijector.__init__` as every step here calls it: `parameters` is the step's
        constructor's `locals()` (with `validate_args`), `name` its name scope, `event_ndims`
        its forward minimal event rank."""
        FlowBijector.__init__(
            self,
            forward_min_event_ndims=event_ndims,
            is_constant_jacobian=constant_jacobian,
            dtype=dtype,
            validate_args=parameters['validate_args'],
            parameters=parameters,
            name=name,
        )

    @classmethod
    def _parameter_properties(cls, dtype):
        return dict()  # Variables are created in `__init__`, not passed in.

    # What a step was built with, None where it takes no such thing.
    event_shape = property(lambda self: getattr(self, '_event_shape', None))
    conditional_shape = property(lambda self: getattr(self, '_conditional_shape', None))
    log_scale_bound = property(lambda self: getattr(self, '_log_scale_bound', None))

    def structure(self):
        """The choices that define this map besides its variables, as a JSON-able dict: the
        class, and a step's event shape, conditional shape and log-scale bound where it has them."""
        structure = {'class': type(self).__name__}
        for key in ('event_shape', 'conditional_shape', 'log_scale_bound'):
            if (value := getattr(self, key)) is not None:
                structure[key] = value if key == 'log_scale_bound' else list(value)
        return structure

    def forward_and_log_det(self, x, event_ndims=None, **kwargs):
        """(y, log|det dy/dx|) in one pass, the log-det over `event_ndims` (default: the
        minimum; `ValueError` below it) dims."""
        x = self._convert(x, 'x')
        event_ndims = _event_ndims(event_ndims, self.forward_min_event_ndims)
        y, log_det = self._forward_and_log_det(x, **kwargs)
        return y, reduce_log_det(log_det, x, self.forward_min_event_ndims, event_ndims)

    def inverse_and_log_det(self, y, event_ndims=None, **kwargs):
        """(x, log|det dx/dy|) in one pass, as `forward_and_log_det`."""
        y = self._convert(y, 'y')
        event_ndims = _event_ndims(event_ndims, self.inverse_min_event_ndims)
        x, log_det = self._inverse_and_log_det(y, **kwargs)
        return x, reduce_log_det(log_det, y, self.inverse_min_event_ndims, event_ndims)

    def _convert(self, value, name):
        """`value` as a tensor of this bijector's dtype (NumPy and Python numbers converted)."""
        value = tf.convert_to_tensor(value, dtype_hint=self.dtype, name=name)
        if self.dtype is not None and value.dtype != self.dtype:
            todo = f'cast it first (`tf.cast({name}, tf.{self.dtype.name})`)'
            if value.dtype.is_integer:
                todo = (
                    'dequantize integer pixels to [0, 1] first '
                    '(`tfp_flows.uniform_dequantize(pixels, num_bins)`)'
                )
            elif not value.dtype.is_floating:
                todo = 'a flow takes float tensors'
            raise TypeError(
                f'{type(self).__name__} {self.name!r} has dtype {self.dtype.name}; got `{name}` '
                f'of dtype {value.dtype.name}: {todo}.'
            )
        return value

    # TFP's conversion error prints the whole tensor and says nothing of what to do.
    def forward(self, x, name='forward', **kwargs):
        return super().forward(self._convert(x, 'x'), name, **kwargs)

    def inverse(self, y, name='inverse', **kwargs):
        return super().inverse(self._convert(y, 'y'), name, **kwargs)

    def forward_log_det_jacobian(
        self, x, event_ndims=None, name='forward_log_det_jacobian', **kwargs
    ):
        return super().forward_log_det_jacobian(self._convert(x, 'x'), event_ndims, name, **kwargs)

    def inverse_log_det_jacobian(
        self, y, event_ndims=None, name='inverse_log_det_jacobian', **kwargs
    ):
        return super().inverse_log_det_jacobian(self._convert(y, 'y'), event_ndims, name, **kwargs)

    def _cached_forward(self, x, **kwargs):
        y, fldj = self._forward_and_log_det(x, **kwargs)
        return y, {'fldj': fldj, 'ildj': -fldj}

    def _cached_inverse(self, y, **kwargs):
        x, ildj = self._inverse_and_log_det(y, **kwargs)
        self._record_eager_inverse(x, y, ildj)
        return x, {'ildj': ildj, 'fldj': -ildj}

    def _forward(self, x, **kwargs):
        return self._forward_and_log_det(x, **kwargs)[0]

    def _inverse(self, y, **kwargs):
        return self._inverse_and_log_det(y, **kwargs)[0]

    def _forward_log_det_jacobian(self, x, **kwargs):
        return self._forward_and_log_det(x, **kwargs)[1]

    def _inverse_log_det_jacobian(self, y, **kwargs):
        return self._inverse_and_log_det(y, **kwargs)[1]
