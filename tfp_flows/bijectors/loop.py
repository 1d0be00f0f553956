"""A level's K flow steps of one kind as one `tf.while_loop` over stacked parameters.

Each of Glow's levels repeats one step (ActNorm -> 1x1 conv -> coupling) K times. `Loop` keeps
the K steps' variables stacked, [K, *shape] each, and runs the steps as one loop whose body is
one step, so the traced graph holds one step's ops whatever K is (as JAX code scans over
stacked layers). The step's math is the steps' own: the body runs *views* of the first step
(`bijectors.view`), whose variables read slice k of the stacked ones and whose per-step ints
(a coupling's dropout seed) are step k's. A view is made per use and never changed, so traces
in several threads (a `MirroredStrategy`'s replicas) share nothing that changes.

A `Loop` runs its steps itself (`run_looped`, the walk's `is_looped`). Outside the plain loop,
it is the `Chain` of its K steps' read-only views: `held_steps()` and `bijectors` list
them, reading `variable[k]` when used, so `tfp_flows.initialize` sets step k's ActNorm in its
slice of the stacked variables (each step's statistics in turn, as unrolled). Memory-saving
backprop runs in loops too: 'recompute' reruns each step in the loop (`backprop.recomputed`),
'invert' walks back through the steps in a second loop (`walk_back`).
"""

import functools

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks, networks
from tfp_flows.bijectors import backprop, walk
from tfp_flows.bijectors.base import FlowBijector
from tfp_flows.bijectors.chain import Chain, _checked_steps, _kind
from tfp_flows.bijectors.view import Recipe

tfb = tfp.bijectors

__all__ = ['Loop']


class _Views:
    """The K steps' views and the stacked variables in the order of their paths, out of
    `tf.Module` and checkpoint tracking (a plain object), and the `Chain` of the first step's
    views, which gives the event shapes the K steps keep."""

    def __init__(self, views, step_length, event_ndims, stacked):
        self.views, self.stacked = tuple(views), tuple(stacked)
        self.step = Chain(self.views[:step_length], event_ndims)


def _checked_lists(steps):
    """`steps` as K lists of bijectors (K >= 1) of the same kinds and structures, with the
    variables of one shape and dtype at each place; else `TypeError` or `ValueError`."""
    expected = '`steps` must be a non-empty list of K non-empty lists of bijectors'
    if not isinstance(steps, list | tuple):
        raise TypeError(f'{expected}; got {steps!r}.')
    steps = [list(s) if isinstance(s, list | tuple) else s for s in steps]
    if not steps or not all(
        isinstance(s, list) and s and all(isinstance(b, tfb.Bijector) for b in s) for s in steps
    ):
        raise TypeError(f'{expected}; got {steps!r}.')
    if len({id(b) for step in steps for b in step}) < sum(map(len, steps)):
        raise ValueError(
            'The steps of a Loop must be distinct bijectors (each step gets its own slice of '
            'the stacked variables, so one object listed twice would be untied); got one twice.'
        )
    first = [_signature(s) for s in steps[0]]
    for k, step in enumerate(steps[1:], 1):
        if [_signature(s) for s in step] != first:
            raise ValueError(
                f'Step {k} of the Loop differs from step 0: got {[_kind(s) for s in step]} with '
                f'structures and variables {[_signature(s) for s in step]}; step 0 has {first}.'
            )
    return steps


def _signature(step):
    """What the K steps of a Loop must share at one place: kind, structure and variables."""
    structure = step.structure() if isinstance(step, FlowBijector) else None
    variables = [(v.shape.as_list(), v.dtype.name) for v in step.variables]
    return _kind(step), structure, variables


class Loop(Chain):
    """K flow steps of one kind, each a list of bijectors (data side first, as a `Chain`'s),
    run as one `tf.while_loop` over their stacked variables.

    Loop([[a_1, b_1], ..., [a_K, b_K]]) is the map of Chain([a_1, b_1, ..., a_K, b_K]) with
    the steps' current values: forward (latent -> data) runs step K first, inverse (data ->
    latent) step 1 first, log|det| = the sum of the steps' log-dets. The steps' variables are
    copied into [K, *shape] variables (`stacked`, `steps`) and the steps are not kept: the
    loop's body runs views of step 1 on slice k (module docstring). The traced graph holds
    one step, so its size and the trace time do not grow with K. Every step must keep the
    event's shape; the steps may differ only in their variables, their int seeds and names.
    `event_ndims`: the rank of the events the steps act on (3, the default, for images
    [H, W, C]; 1 for vectors), as `Chain`'s (a call refuses a tensor of lower rank).

    `structure()` (saved in checkpoints) is a 'Loop' of K steps with the steps' structures: a
    checkpoint of the K steps one by one does not restore into a Loop, nor the other way.
    `TypeError` for steps that are not lists of bijectors; `ValueError` for no steps, one
    bijector listed twice, steps
    of different kinds, structures or variable shapes, steps differing in other state (an
    option, a constant: the message names the attribute), a step that changes the event's
    shape, a variable that is not an attribute (of a step or a `tf.Module` it holds), or a bad
    `event_ndims`.

    Reference: Kingma and Dhariwal (2018), Glow (the step). https://arxiv.org/abs/1807.03039
    """

    def __init__(self, steps, event_ndims=3, validate_args=False, name='loop'):
        parameters = dict(event_ndims=event_ndims, validate_args=validate_args, name=name)
        event_ndims = checks.POSITIVE_INT.check('event_ndims', event_ndims)
        steps = _checked_lists(steps)
        _, dtype = _checked_steps([s for step in steps for s in step], event_ndims)
        self._num_steps, paths = len(steps), []
        self._recipes = [
            Recipe(list(kind), (i,), paths) for i, kind in enumerate(zip(*steps, strict=True))
        ]
        for i, step in enumerate(steps[0]):
            if sum(path[0] == i for path in paths) != len(step.variables):
                raise ValueError(
                    f'A Loop stacks the variables that are attributes of a step or of its '
                    f'tf.Modules; {step.name!r} holds others (in a list?) and cannot be stacked.'
                )
        with tf.name_scope(name) as name:
            stacked = [_stacked(path, [_at(step, path) for step in steps]) for path in paths]
            self._init_step(parameters, name, event_ndims, dtype)
        self.steps = _tree(paths, stacked)  # Tracked (checkpoints) as steps/0/shift, ...
        self._paths = paths
        views = [self._step_views(k, self._slice_reads(k, stacked)) for k in range(len(steps))]
        views = [v for step in views for v in step]
        self._views = _Views(views, len(self._recipes), event_ndims, stacked)
        probe, step = [16] * event_ndims, self._views.step
        try:  # Any shape, but the one a step of one shape (TFP's Reshape) gives unknown dims.
            probe = [d or 16 for d in step.inverse_event_shape([None] * event_ndims).as_list()]
            shape = step.inverse_event_shape(probe).as_list()
        except ValueError as error:  # Such a step that changes the shape refuses its own.
            shape = f'an error ({error})'
        if shape != probe:
            raise ValueError(
                f"Every step of a Loop must keep the event's shape; the step "
                f'{[_kind(s) for s in steps[0]]} maps {probe} to {shape}.'
            )

    @property
    def num_steps(self):
        """K, the number of steps."""
        return self._num_steps

    @property
    def stacked(self):
        """The stacked variables, [K, *shape] each (`steps` holds them by step and name)."""
        return list(self._views.stacked)

    @property
    def bijectors(self):
        """The K steps' views in a `Chain`'s order, read-only: each reads (and an ActNorm's
        `initialize` assigns) its slice of `stacked` when used, lists no variables of its own,
        equals only itself and cannot be pickled or copied."""
        return list(self._views.views)

    @property
    def dtype_policy(self):
        """The mixed policy of the steps' networks (`tfp_flows.mixed_precision`), or None."""
        policies = (getattr(v, 'dtype_policy', None) for v in self._views.views)
        return next((p for p in policies if p is not None), None)

    def structure(self):
        step = self._views.step.bijectors
        step = [s.structure() if isinstance(s, FlowBijector) else _kind(s) for s in step]
        return {'class': 'Loop', 'num_steps': self._num_steps, 'step': step}

    def _slice_reads(self, k, stacked):
        return {
            p: functools.partial(_slice, v, k) for p, v in zip(self._paths, stacked, strict=True)
        }

    def _value_reads(self, values):
        return dict(zip(self._paths, map(_constant, values), strict=True))

    def _step_views(self, k, reads):
        return [recipe.view(reads, k, (i,)) for i, recipe in enumerate(self._recipes)]

    # One step's shapes, K times the same: graphs of shapes do not grow with K either.
    def _forward_event_shape(self, shape):
        return self._views.step.forward_event_shape(shape)

    def _inverse_event_shape(self, shape):
        return self._views.step.inverse_event_shape(shape)

    def _forward_event_shape_tensor(self, shape):
        return self._views.step.forward_event_shape_tensor(shape)

    def _inverse_event_shape_tensor(self, shape):
        return self._views.step.inverse_event_shape_tensor(shape)

    def _run(self, x, inverse, kwargs):
        """The loop; with `memory_saving`, `backprop.run` ('recompute': the loop rerunning
        each step in backprop; 'invert': `walk_back` in backprop)."""
        if kwargs.get('memory_saving') is not None:
            return backprop.run(self, x, inverse, kwargs)
        kwargs.pop('memory_saving', None)
        return self.run_looped(x, inverse, kwargs)

    def run_looped(self, x, inverse, kwargs, recompute=None):
        """The K steps on `x` in direction `inverse` as one `tf.while_loop`: (output, log-det
        [batch] at rank `event_ndims`); `kwargs` go to every step that takes them. With
        `recompute` (`backprop.recomputed`) each step is rerun in backprop ('recompute')."""
        count, rank, read = self._num_steps, self.forward_min_event_ndims, self._reader()

        def body(i, x, log_det):
            k = i if inverse else count - 1 - i

            def step(x, values, kwargs):
                views, log_dets = self._step_views(k, self._value_reads(values)), []
                with networks.loop_gradients():  # Also where 'recompute' reruns it in backprop.
                    for view in views if inverse else reversed(views):
                        x, view_log_det = walk.apply(walk.Visit(view, x, inverse, rank, kwargs))
                        log_dets.append(view_log_det)
                return x, functools.reduce(tf.add, log_dets)

            x, step_log_det = (recompute or _plain)(step, x, read(k), kwargs)
            return [i + 1, x, log_det + step_log_det]

        batch = x.shape[: x.shape.rank - rank]
        log_det = tf.ensure_shape(tf.zeros(tf.shape(x)[: tf.rank(x) - rank], x.dtype), batch)
        loop_vars = [tf.constant(0), x, log_det]
        _, x, log_det = tf.while_loop(
            lambda i, *_: i < count, body, loop_vars, maximum_iterations=count
        )
        return x, log_det

    def walk_back(self, output, output_gradient, inverse, backward):
        """'invert' backprop (`backprop.Backward`) as one loop, the last step first: each
        step's views rebuild its input from its output and take the gradients w.r.t. its
        slices, written into the stacked variables' [K, ...] gradients."""
        count, rank, read = self._num_steps, self.forward_min_event_ndims, self._reader()
        trained = [j for j, v in enumerate(self.stacked) if v.trainable]
        num_kwargs = len(backward.kwarg_gradients)

        def body(i, y, gradient, kwarg_gradients, gradient_arrays):
            k = count - 1 - i if inverse else i
            values = read(k)
            inner = backward.nested([values[j] for j in trained])
            views = self._step_views(k, self._value_reads(values))
            # TF's own convolution gradients: with the loop body's, memory grew with K here.
            for view in reversed(views) if inverse else views:
                y, gradient = inner.step(view, y, gradient, inverse, rank)
            found = inner.kwarg_gradients
            kwarg_gradients = [
                a + b for a, b in zip(kwarg_gradients, found[:num_kwargs], strict=True)
            ]
            written = zip(gradient_arrays, found[num_kwargs:], strict=True)
            return [i + 1, y, gradient, kwarg_gradients, [a.write(k, g) for a, g in written]]

        zeros = [tf.zeros_like(g) for g in backward.kwarg_gradients]
        gradient_arrays = [tf.TensorArray(self.stacked[j].dtype, count) for j in trained]
        start = [tf.constant(0), output, output_gradient, zeros, gradient_arrays]
        _, x, gradient, kwarg_gradients, gradient_arrays = tf.while_loop(
            lambda i, *_: i < count, body, start, maximum_iterations=count
        )
        found = zip(trained, gradient_arrays, strict=True)
        backward.add({self.stacked[j].ref(): a.stack() for j, a in found}, kwarg_gradients)
        return x, gradient

    def _reader(self):
        """`read(k)`: the stacked variables' slices k, in their order. Their values are read
        once and packed into one `tf.TensorArray` of K slices per dtype, slice k holding the
        variables' slices k flattened end to end, so a step reads one slice per dtype and the
        loop and its gradient carry one list per dtype, not one per variable (which cut the
        traced train step of Glow by a sixth). Written slice by slice, the gradient of such
        a list costs O(K), not O(K^2) as a gather's."""
        count, stacked, groups = self._num_steps, self.stacked, {}
        for j, v in enumerate(stacked):
            groups.setdefault(v.dtype, []).append(j)
        arrays = {}
        for dtype, members in groups.items():
            flat = tf.concat([tf.reshape(stacked[j].value(), [count, -1]) for j in members], 1)
            arrays[dtype] = tf.TensorArray(dtype, count, element_shape=flat.shape[1:]).unstack(flat)

        def read(k):
            values = [None] * len(stacked)
            for dtype, members in groups.items():
                sizes = [stacked[j].shape[1:].num_elements() for j in members]
                for j, part in zip(members, tf.split(arrays[dtype].read(k), sizes), strict=True):
                    values[j] = tf.reshape(part, stacked[j].shape[1:])
            return values

        return read


def _plain(step, x, values, kwargs):
    return step(x, values, kwargs)


def _slice(variable, k):
    """`variable[k]`, which `assign`s into that slice as a variable's slice does (under a
    `MirroredStrategy` too, whose variables' slices are plain tensors)."""
    value = variable[k]
    if not hasattr(value, 'assign'):
        value.assign = functools.partial(_assign_slice, variable, k)
    return value


def _assign_slice(variable, k, value):
    value = tf.convert_to_tensor(value, variable.dtype)[tf.newaxis]
    return variable.scatter_update(tf.IndexedSlices(value, tf.constant([k])))


def _constant(value):
    return lambda: value


def _at(step, path):
    """The variable at `path` (a place in the step's list, then attribute names) of `step`."""
    value = step[path[0]]
    for name in path[1:]:
        value = vars(value)[name]
    return value


def _tree(paths, variables):
    """{'0': {'shift': ...}, '2': {'conditioner': {'kernel_in': ...}}}: `variables` by path."""
    tree = {}
    for path, variable in zip(paths, variables, strict=True):
        node = tree
        for key in map(str, path[:-1]):
            node = node.setdefault(key, {})
        node[path[-1]] = variable
    return tree


def _stacked(path, variables):
    """One variable [K, *shape] holding `variables`' values, trainable and aggregated as they
    are (an ActNorm's flag keeps its first-replica aggregation under a strategy)."""
    first = variables[0]
    return tf.Variable(
        tf.stack([v.value() for v in variables]),
        trainable=first.trainable,
        aggregation=first.aggregation,
        name='.'.join(map(str, path)),
    )
