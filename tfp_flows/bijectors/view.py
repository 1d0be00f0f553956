"""Views of a flow step: copies of its module tree whose variables read given tensors (slice k
of a `Loop`'s stacked variables), made per use and never changed.

A `Recipe` holds what the K steps of one kind share: the first step's state (its eager tensors
kept as NumPy values, made anew in each view, so no loop body captures an eager tensor), the
names of its variables and submodules, and the ints and names that differ between steps (seeds
and names). A view's class is a subclass of the step's class (`ActNorm.LoopView`) whose
variables are properties; it equals only itself, so TFP's bijector cache, keyed on equality,
is never shared between steps, and it cannot be pickled.
"""

import functools

import numpy as np
import tensorflow as tf

__all__ = ['Recipe']


@functools.cache
def _view_class(cls, names):
    """`cls` with the attributes `names` read through the view's reads (a view's variables),
    equal only to itself (TFP's bijector cache keys on equality) and refusing to be pickled."""

    def reader(name):
        return property(lambda self: self.__dict__['_view_reads'][name]())

    def refuse(self, *_):
        raise TypeError(
            f"A {cls.__name__} in Loop.bijectors is a read-only view of a Loop's step and cannot "
            'be pickled or copied; save the flow with tf.train.Checkpoint.'
        )

    namespace = {
        '__module__': cls.__module__,
        '__qualname__': f'{cls.__qualname__}.LoopView',
        '__eq__': object.__eq__,
        '__hash__': object.__hash__,
        '__reduce_ex__': refuse,
    }
    namespace.update({name: reader(name) for name in names})
    return type(cls)(cls.__name__, (cls,), namespace)


class _Constant:
    """An eager tensor of a step's state (a `tfb.Permute`'s axis, a coupling's mask) kept as a
    NumPy value and made anew in each view: a loop body must not capture eager tensors made at
    construction (the gradient of `tf.recompute_grad` in a `tf.while_loop` cannot map them)."""

    def __init__(self, tensor):
        self.value, self.dtype = tensor.numpy(), tensor.dtype

    def __eq__(self, other):
        same_type = isinstance(other, _Constant) and self.dtype == other.dtype
        return same_type and np.array_equal(self.value, other.value)

    def __repr__(self):
        return repr(self.value)


def _frozen(value):
    """`value` (a nest) with its eager tensors as `_Constant`s."""
    return tf.nest.map_structure(
        lambda v: _Constant(v) if isinstance(v, tf.Tensor) and hasattr(v, 'numpy') else v, value
    )


def _same(a, b):
    """Whether two steps' (frozen) values of one attribute agree: one nest of equal tensors,
    arrays, numbers, strings and dtypes. Other objects (name scopes, saved structures) are the
    steps' machinery, compared by `_signature`."""
    try:
        tf.nest.assert_same_structure(a, b)
    except (TypeError, ValueError):
        return False
    return all(map(_same_leaf, tf.nest.flatten(a), tf.nest.flatten(b)))


def _same_leaf(a, b):
    if isinstance(a, np.ndarray | np.generic):
        return type(a) is type(b) and np.array_equal(a, b)
    if isinstance(a, _Constant | bool | int | float | complex | str | bytes | tf.DType | None):
        return type(a) is type(b) and a == b
    return True


def _thawed(value):
    return tf.nest.map_structure(
        lambda v: tf.constant(v.value, v.dtype) if isinstance(v, _Constant) else v, value
    )


class Recipe:
    """How to view one module of K steps (`modules`, at `path` in a step): the first's state
    without variables (eager tensors frozen), its variables' names (their paths appended to
    `paths`) and submodules' recipes, and the ints and strings that differ between the steps
    (seeds and names). `ValueError` naming any other attribute whose value differs."""

    def __init__(self, modules, path, paths):
        first = modules[0]
        self.state, self.names, self.children, self.varying = {}, [], {}, {}
        for name, value in sorted(vars(first).items()):
            if name.startswith('_self_') or name in ('_parameters', '_saved_structure'):
                continue  # Step 0's tracking, constructor arguments and checkpointed structure.
            if isinstance(value, tf.Variable):
                self.names.append(name)
                paths.append((*path, name))
            elif isinstance(value, tf.Module):
                inner = [vars(m)[name] for m in modules]
                self.children[name] = Recipe(inner, (*path, name), paths)
            else:
                values = [_frozen(vars(m).get(name)) for m in modules]
                if all(_same(v, values[0]) for v in values):
                    self.state[name] = values[0]
                elif isinstance(value, int | str) and not isinstance(value, bool):
                    self.varying[name] = values  # Seeds and names.
                else:
                    raise ValueError(
                        'The steps of a Loop must differ only in their variables, seeds and '
                        f'names; {first.name!r} has {name} = {values[0]!r}, the steps have '
                        f'{values!r}.'
                    )
        self.view_class = _view_class(type(first), tuple(self.names))

    def view(self, reads, k, path=()):
        """A view whose variable at path p reads `reads[p]()`, with step `k`'s scalars: `k`
        an int, or a tensor (then the varying ints as tensors, the names the first step's)."""
        view = object.__new__(self.view_class)
        view.__dict__.update({name: _thawed(value) for name, value in self.state.items()})
        for name, values in self.varying.items():
            if not tf.is_tensor(k):
                view.__dict__[name] = values[k]
            elif isinstance(values[0], int):
                view.__dict__[name] = tf.gather(tf.constant(values, tf.int32), k)
            else:
                view.__dict__[name] = values[0]
        view.__dict__['_view_reads'] = {n: reads[(*path, n)] for n in self.names}
        for name, child in self.children.items():
            view.__dict__[name] = child.view(reads, k, (*path, name))
        return view
