"""Memory-saving backprop through a flow: recompute activations instead of storing them.

Chosen per call with the bijector kwarg `memory_saving` of `tfp_flows.bijectors.Chain`, e.g.
`flow.log_prob(x, bijector_kwargs={'memory_saving': 'invert'})` inside a `GradientTape`:

- 'invert': invertible recompute (Gomez et al. 2017, The Reversible Residual Network,
  https://arxiv.org/abs/1707.04585; Jacobsen et al. 2018, i-RevNet,
  https://arxiv.org/abs/1802.07088). The chain keeps only its output. Backprop visits the
  steps last to first, nested chains and factor-outs included: it rebuilds each step's input
  from the step's output with the step's inverse map, reruns the step from that input under a
  tape and backpropagates through it alone. Held at once: the chain's input and output and
  one step's activations, whatever the depth. Cost: a coupling rebuilds its input from the
  conditioner output it computes anyway for the rerun (`_rerun_from_output`), so a training
  step does about 4 forward passes' work where plain backprop does 3 (the walk, the rerun,
  and backprop's 2); steps without that method rebuild with one more pass of their own.
- 'recompute': per-step checkpointing, which is what openai/glow's gradient checkpointing
  does (its `checkpoint(z, logdet)` after every step, with `memory_saving_gradients`): each
  step's input is kept and the step is rerun under a tape in backprop (`tf.recompute_grad`).
  Held at once: one input-sized tensor per step plus one step's activations, so memory still
  grows with depth, by the step's input size instead of its activations (for Glow the
  conditioner's hidden layers, `hidden_channels` wide, against the step's C channels).
  Cost: one more forward pass (about 4 against 3).

Both give the gradients of plain backprop: 'recompute' to float rounding; 'invert' at rebuilt
inputs, which carry the rounding error of inverting the steps after them (the tests bound the
difference at random parameters by 1e-4 relative in float32 and 1e-10 in float64; a flow whose
steps amplify rounding, e.g. log-scales near their bound in many steps, is better served by
'recompute'). Gradients reach the variables of every step, and any floating-point tensor
passed as a bijector kwarg (`conditional_input`). A step must be deterministic given its input
and kwargs: one that draws random numbers (dropout) would be rerun with other draws.
"""

import tensorflow as tf

from tfp_flows.bijectors.base import FlowBijector, reduce_log_det
from tfp_flows.validation import check_one_of

__all__ = ['MEMORY_SAVING_MODES', 'check_memory_saving']

MEMORY_SAVING_MODES = ('invert', 'recompute')


def check_memory_saving(memory_saving):
    """Returns `memory_saving` if it is None or one of `MEMORY_SAVING_MODES`, else raises
    `ValueError` naming the value."""
    if memory_saving is None:
        return None
    return check_one_of('memory_saving', memory_saving, MEMORY_SAVING_MODES)


def _chain_module():
    """tfp_flows.bijectors.chain, imported on first use: it imports this module."""
    from tfp_flows.bijectors import chain

    return chain


def _split_kwargs(kwargs):
    """(names, tensors, rest): the floating-point tensor kwargs, which get gradients, apart."""
    names = sorted(k for k, v in kwargs.items() if tf.is_tensor(v) and v.dtype.is_floating)
    rest = {k: v for k, v in kwargs.items() if k not in names}
    return names, [kwargs[k] for k in names], rest


def _after(tensor, gradient):
    """`tensor`, computed in a graph only once `gradient` is: a data dependency, so TF does not
    rebuild and rerun steps before backprop needs them (which would hold them all at once).
    The same construction as `tf.recompute_grad`'s, which XLA also keeps; the added value is 0
    (NaN where the gradient's first entry is NaN)."""
    if tf.executing_eagerly():
        return tensor
    first = tf.reduce_max(tf.reshape(gradient, [-1])[:1])
    flag = tf.cast(first, tf.bool)
    return tensor + tf.cast(tf.where(flag == flag, 0.0, float('nan')), tensor.dtype)


def _log_det_gradient(gradient, log_det):
    """The loss's gradient w.r.t. a step's log-det, given the one w.r.t. the summed log-det:
    summed over the batch where the step's log-det is one scalar for all examples."""
    if log_det.shape.rank == 0 and gradient.shape.rank != 0:
        return tf.reduce_sum(gradient)
    return gradient


class Backprop:
    """One memory-saving backprop: rebuilds inputs and reruns steps, collecting gradients.

    Made by the chain that starts it (`invertible_walk`); `Chain` and `FactorOut` call
    `step` for their steps in their `_backprop_from_output`, and `gradients` for their own
    computations. Direction: `inverse=True` for a walk from data to latent.
    """

    def __init__(self, log_det_gradient, names, tensors, rest):
        self._log_det_gradient = log_det_gradient
        self._names, self._tensors, self._rest = names, list(tensors), rest
        self.kwarg_gradients = [tf.zeros_like(t) for t in self._tensors]
        self.variable_gradients = {}

    def kwargs(self):
        return {**self._rest, **dict(zip(self._names, self._tensors, strict=True))}

    def step(self, step, output, output_gradient, inverse, event_ndims):
        """(input, gradient w.r.t. input) of `step` run in direction `inverse`, from its
        output and the loss's gradient w.r.t. that output."""
        chain = _chain_module()
        bijector, run_inverse = chain.direction(step, inverse)
        # `_backprop_from_output` and `_rerun_from_output` are this module's protocol with the
        # bijectors that take part (Chain, FactorOut, the couplings): not for users.
        if hasattr(bijector, '_backprop_from_output'):
            return bijector._backprop_from_output(  # noqa: SLF001 (protocol, see above)
                output, output_gradient, run_inverse, self
            )
        output = _after(output, output_gradient)
        kwargs = self.kwargs()
        if isinstance(bijector, FlowBijector) and hasattr(bijector, '_rerun_from_output'):
            step_kwargs = {k: v for k, v in kwargs.items() if k in bijector.kwarg_names}

            def rerun(tape):
                tape.watch(output)
                x, y, log_det = bijector._rerun_from_output(  # noqa: SLF001 (protocol)
                    tape, output, run_inverse, **step_kwargs
                )
                if run_inverse:
                    min_ndims = bijector.inverse_min_event_ndims
                else:
                    min_ndims = bijector.forward_min_event_ndims
                return [x, output], (y, reduce_log_det(log_det, x, min_ndims, event_ndims))
        else:

            def rerun(tape):
                # New tensors in and out: TFP's own bijectors memoise results by input tensor,
                # and a memoised result would be off the tape.
                with tape.stop_recording():
                    x, _ = chain.apply_step(
                        step, tf.identity(output), not inverse, event_ndims, kwargs
                    )
                x = tf.identity(x)
                tape.watch(x)
                return [x], chain.apply_step(step, x, inverse, event_ndims, kwargs)

        sources, gradients = self._run(rerun, output_gradient)
        return sources[0], tf.add_n(gradients) if len(gradients) > 1 else gradients[0]

    def gradients(self, fn, inputs, output_gradient):
        """Gradients w.r.t. `inputs` of `fn(*inputs) -> (output, log_det)` (a step's own part,
        e.g. a factor-out's prior), given the loss's gradient w.r.t. `output`."""

        def rerun(tape):
            tape.watch(inputs)
            return list(inputs), fn(*inputs)

        return self._run(rerun, output_gradient)[1]

    def _run(self, rerun, output_gradient):
        """Runs `rerun(tape) -> (sources, (output, log_det))` under a tape; returns sources and
        the gradients w.r.t. them, adding those w.r.t. variables and kwargs to the totals."""
        with tf.GradientTape() as tape:
            tape.watch(self._tensors)
            sources, (output, log_det) = rerun(tape)
        variables = tape.watched_variables()
        gradients = tape.gradient(
            [output, log_det],
            [*sources, *self._tensors, *variables],
            output_gradients=[output_gradient, _log_det_gradient(self._log_det_gradient, log_det)],
        )
        count = len(sources)
        for i, gradient in enumerate(gradients[count : count + len(self._tensors)]):
            if gradient is not None:
                self.kwarg_gradients[i] += gradient
        for variable, gradient in zip(
            variables, gradients[count + len(self._tensors) :], strict=True
        ):
            if gradient is None:
                continue
            total = self.variable_gradients.get(variable.ref())
            self.variable_gradients[variable.ref()] = (
                gradient if total is None else total + gradient
            )
        found = [
            tf.zeros_like(s) if g is None else g
            for s, g in zip(sources, gradients[:count], strict=True)
        ]
        return sources, found


def invertible_walk(chain, x, inverse, kwargs):
    """`chain`'s walk in direction `inverse` with 'invert' memory saving: (output, log-det).

    The walk runs under `tf.recompute_grad`, used here only because it runs its function
    without recording on any tape (the public way to do that without the tape's handle); its
    own gradient is never used, since the `tf.custom_gradient` around it answers first.
    """
    names, tensors, rest = _split_kwargs(kwargs)

    def plain_walk(x, *tensors):
        walk_kwargs = {**rest, **dict(zip(names, tensors, strict=True))}
        if inverse:
            return chain.inverse_and_log_det(x, **walk_kwargs)
        return chain.forward_and_log_det(x, **walk_kwargs)

    @tf.custom_gradient
    def walk(x, *tensors):
        output, log_det = tf.recompute_grad(plain_walk)(x, *tensors)

        def gradient(output_gradient, log_det_gradient, variables=None):
            # None where the loss does not use that output (in a graph).
            if output_gradient is None:
                output_gradient = tf.zeros_like(output)
            if log_det_gradient is None:
                log_det_gradient = tf.zeros_like(log_det)
            backprop = Backprop(log_det_gradient, names, tensors, rest)
            _, x_gradient = chain._backprop_from_output(  # noqa: SLF001 (protocol, see `step`)
                output, output_gradient, inverse, backprop
            )
            variable_gradients = [backprop.variable_gradients.get(v.ref()) for v in variables or []]
            return [x_gradient, *backprop.kwarg_gradients], variable_gradients

        return (output, log_det), gradient

    return walk(x, *tensors)


def recompute_step(step, x, inverse, event_ndims, kwargs):
    """One step of a walk with 'recompute' memory saving: `apply_step` under
    `tf.recompute_grad`, floating-point tensor kwargs passed as inputs so they get gradients."""
    names, tensors, rest = _split_kwargs(kwargs)
    apply_step = _chain_module().apply_step

    def run(x, *tensors):
        return apply_step(
            step, x, inverse, event_ndims, {**rest, **dict(zip(names, tensors, strict=True))}
        )

    return tf.recompute_grad(run)(x, *tensors)
