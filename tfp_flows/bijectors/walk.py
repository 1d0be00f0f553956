"""The one walk of a flow: its steps in order, statically and with data.

A flow is a tree of steps. A *container* holds steps and says how data goes through them
(`Chain`: in turn; `FactorOut`: its inner flow on half the channels; `StandardizedContext`:
its flow, given a standardised context); a `tfb.Invert` holds the step it inverts; every other
step is a *leaf*. A container offers

  held_steps()                 the steps it holds (a tuple; the static traversal)
  walk(x, inverse, kwargs)     a generator: takes `x` through its steps in direction
                               `inverse` (True: data -> latent), each with `step` below, and
                               returns (output, log-det at its minimal event rank)
  walk_back(...)               optional: memory-saving backprop (`backprop.Backward`)
  run_looped(x, inverse, kwargs, rerun=None)
                               optional (a `Loop`): runs its steps itself as one loop,
                               each step through `rerun` (see `is_looped`)

`step(...)` yields a `Visit` *before* the step runs, and whoever drives the walk answers with
the step's (output, log-det), or with `DESCEND` to walk inside a container: a plain run runs
each step (`apply`); `tfp_flows.initialize` descends and sets each ActNorm from its input
(several batches in lockstep: `drive`); 'recompute' backprop reruns each leaf under
`tf.recompute_grad`.
"""

import collections

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import checks
from tfp_flows.bijectors.base import FlowBijector, reduce_log_det

tfb = tfp.bijectors

__all__ = [
    'DESCEND',
    'Visit',
    'all_steps',
    'apply',
    'direction',
    'drive',
    'held_steps',
    'is_container',
    'is_invert',
    'is_looped',
    'kwargs_taken',
    'run',
    'step',
    'trace',
]

# A step about to run: `step` (no `tfb.Invert`) maps `x` in direction `inverse` (True: its
# inverse), with log-det summed over `event_ndims` dims and the bijector `kwargs`.
Visit = collections.namedtuple('Visit', ['step', 'x', 'inverse', 'event_ndims', 'kwargs'])

DESCEND = object()  # The answer to a container's visit that walks inside it.


def is_invert(step):
    """Whether `step` is a `tfb.Invert`: for a bijector that is not a `CompositeTensor` (ours
    hold variables) `tfb.Invert(b)` makes an instance of its private base class `_Invert`, so
    both names are recognised (pinned by tests/bijectors/test_chain.py)."""
    return type(step).__name__ in ('Invert', '_Invert') and isinstance(
        getattr(step, 'bijector', None), tfb.Bijector
    )


def direction(step, inverse):
    """(bijector, whether to run its inverse) once `tfb.Invert` wrappers are taken off."""
    while is_invert(step):
        step, inverse = step.bijector, not inverse
    return step, inverse


def is_container(step):
    """Whether `step` holds steps and walks them (see the module docstring)."""
    return callable(getattr(step, 'held_steps', None)) and callable(getattr(step, 'walk', None))


def is_looped(step):
    """Whether container `step` runs its steps itself as one loop (`bijectors.Loop`): then
    a plain or 'invert' walk calls `run_looped(x, inverse, kwargs)`, and 'recompute' calls
    `run_looped(x, inverse, kwargs, backprop.recomputed)` to rerun each step in the loop."""
    return is_container(step) and callable(getattr(step, 'run_looped', None))


def held_steps(step):
    """The steps `step` holds: a container's, or the step a `tfb.Invert` inverts; else ()."""
    if is_invert(step):
        return (step.bijector,)
    return tuple(step.held_steps()) if is_container(step) else ()


def all_steps(flow):
    """Every step of `flow` (a bijector), itself first, depth first in the order held."""
    found = [flow]
    for inner in held_steps(flow):
        found += all_steps(inner)
    return found


def step(flow_step, x, inverse, event_ndims, kwargs):
    """Walks one step (a generator; see the module docstring): (output, log-det over
    `event_ndims` dims)."""
    bijector, inverse = direction(flow_step, inverse)
    answer = yield Visit(bijector, x, inverse, event_ndims, kwargs)
    if answer is not DESCEND:
        return answer
    output, log_det = yield from bijector.walk(x, inverse, kwargs)
    min_ndims = bijector.inverse_min_event_ndims if inverse else bijector.forward_min_event_ndims
    return output, reduce_log_det(log_det, x, min_ndims, event_ndims)


def kwargs_taken(bijector, kwargs):
    """The bijector kwargs `kwargs` that `bijector` takes (its `kwarg_names`). A step taking
    `dropout_seed` but not `dropout_rows` (offset, total) cannot take its rows of the whole
    batch's masks: it gets the seed folded with the offset, so the parts of a batch (replicas,
    micro-batches) draw their own masks, not all the same ones."""
    names = getattr(bijector, 'kwarg_names', ())
    taken = {k: v for k, v in kwargs.items() if k in names}
    rows = kwargs.get('dropout_rows')
    if 'dropout_seed' in taken and 'dropout_rows' not in names and rows is not None:
        offset = tf.cast(checks.DROPOUT_ROWS.check('dropout_rows', rows)[0], tf.int64)
        seed = tf.cast(taken['dropout_seed'], tf.int64)
        taken['dropout_seed'] = tf.random.experimental.stateless_fold_in(seed, offset)
    return taken


def apply(visit):
    """Runs the visited step whole: (output, log-det over `visit.event_ndims` dims); other
    TFP bijectors than ours get no kwargs."""
    bijector, x, inverse, event_ndims, kwargs = visit
    if isinstance(bijector, FlowBijector):
        step_kwargs = kwargs_taken(bijector, kwargs)
        method = bijector.inverse_and_log_det if inverse else bijector.forward_and_log_det
        return method(x, event_ndims, **step_kwargs)
    if inverse:
        return bijector.inverse(x), bijector.inverse_log_det_jacobian(x, event_ndims=event_ndims)
    return bijector.forward(x), bijector.forward_log_det_jacobian(x, event_ndims=event_ndims)


def drive(walks, answer):
    """Runs the generators `walks` in lockstep, `answer(visits)` giving what to send back to
    each; returns their results. `RuntimeError` if the walks do not end together."""
    answers, results = [None] * len(walks), [None] * len(walks)
    while True:
        visits = []
        for i, (walk, sent) in enumerate(zip(walks, answers, strict=True)):
            try:
                visits.append(walk.send(sent))
            except StopIteration as end:
                results[i] = end.value
        if not visits:
            return results
        if len(visits) < len(walks):
            raise RuntimeError('The walks took different paths through the flow.')
        answers = answer(visits)


def run(walk):
    """The result of one walk whose every visit runs its step whole (`apply`)."""
    return drive([walk], lambda visits: [apply(visits[0])])[0]


def trace(flow, x, inverse, visitor, event_ndims=None, kwargs=None):
    """Runs `flow` (a bijector) on `x` going into every container, and calls
    `visitor(visit)` before each step runs (containers included): (output, log-det).

    E.g. `trace(flow.bijector, x, True, lambda visit: print(visit.step.name, visit.x.shape))`
    shows the input of every step from data to latent.
    """
    if event_ndims is None:
        event_ndims = flow.inverse_min_event_ndims if inverse else flow.forward_min_event_ndims

    def answer(visits):
        (visit,) = visits
        visitor(visit)
        return [DESCEND if is_container(visit.step) else apply(visit)]

    return drive([step(flow, x, inverse, event_ndims, kwargs or {})], answer)[0]
