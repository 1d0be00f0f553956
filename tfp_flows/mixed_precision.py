"""Keras mixed-precision policies for the conditioner networks of a flow.

A flow built with `dtype_policy='mixed_bfloat16'` or `'mixed_float16'` (Keras' policy names,
`keras.mixed_precision.DTypePolicy`) runs its conditioner networks (`tfp_flows.networks`: the
couplings' and the split priors') in bfloat16 or float16: each network casts its input, kernels
and biases to the policy's compute dtype, computes there and returns float32. Its variables stay
float32, so checkpoints are the same as a float32 flow's and restore into it either way.
Everything else stays in float32: ActNorm (its statistics and map), the 1x1 convolution and its
log|det|, the couplings' affine map (shift and scale applied in float32 to the network's output
cast to float32), every log-det, the split priors' and the latent's log-densities, and the
loss. A policy changes rounding only, not what the density is, so it is not part of any step's
`structure()`.

Each coupling's log-det is the sum of its log-scales, which are float32 functions of the
network's output; the Jacobian is triangular whatever precision the network runs in, so the
log-det stays exact for the map actually computed (to float32 rounding). What changes is the
map: its shift and scale carry the compute dtype's rounding (bfloat16: 8 significant bits, a
relative error up to 2**-9 ~ 0.2%; float16: 11 bits, 2**-12 ~ 0.02%).

Training in float16 needs loss scaling: gradients below float16's smallest subnormal (2**-24)
flush to zero unless the loss is multiplied first (Micikevicius et al. 2018). `FlowTrainer`
wraps its optimizer in `keras.optimizers.LossScaleOptimizer` for a 'mixed_float16' flow, as
Keras' `Model.compile(auto_scale_loss=True)` does. bfloat16 has float32's exponent range and
needs none (Kalamkar et al. 2019).

References: Micikevicius et al. (2018), Mixed Precision Training,
https://arxiv.org/abs/1710.03740; Kalamkar et al. (2019), A Study of BFLOAT16 for Deep
Learning Training, https://arxiv.org/abs/1905.12322
"""

import keras
import tensorflow as tf

__all__ = ['MIXED_POLICIES', 'check_dtype_policy', 'compute_dtype', 'dtype_policy_of']

# Keras' policy names that compute in a lower precision than their float32 variables.
MIXED_POLICIES = ('mixed_bfloat16', 'mixed_float16')


def check_dtype_policy(dtype_policy, dtype=tf.float32):
    """The mixed policy's name, or None for computing in `dtype` itself.

    Args:
      dtype_policy: None, 'mixed_bfloat16', 'mixed_float16', or a
        `keras.mixed_precision.DTypePolicy` of one of them; a policy that computes in `dtype`
        itself (e.g. `keras.mixed_precision.global_policy()` by default, 'float32') is None.
      dtype: the dtype of the variables (and of the flow), a floating `tf.DType` (checked
        by the caller, which consumes it).

    Raises:
      ValueError: for another value, naming it; for a mixed policy with float64 variables
        (mixed policies keep float32 variables).
    """
    dtype = tf.as_dtype(dtype)
    name = dtype_policy.name if isinstance(dtype_policy, keras.DTypePolicy) else dtype_policy
    if dtype_policy is None or (isinstance(name, str) and name == dtype.name):
        return None
    if not isinstance(name, str) or name not in MIXED_POLICIES:
        raise ValueError(
            "`dtype_policy` must be None, 'mixed_bfloat16', 'mixed_float16' or a "
            f'keras.mixed_precision.DTypePolicy of one of them; got {dtype_policy!r}.'
        )
    if dtype != tf.float32:
        raise ValueError(
            f'`dtype_policy` {name!r} keeps float32 variables, so it needs dtype float32; got '
            f'dtype {dtype.name}.'
        )
    return name


def compute_dtype(dtype_policy, dtype=tf.float32):
    """The `tf.DType` a network computes in under `dtype_policy`, a policy name as
    `check_dtype_policy` returns it (None: `dtype` itself)."""
    if dtype_policy is None:
        return tf.as_dtype(dtype)
    return tf.as_dtype(keras.DTypePolicy(dtype_policy).compute_dtype)


def dtype_policy_of(flow):
    """The mixed policy of the `tfp_flows.networks` in `flow` (any `tf.Module`), or None.

    Raises:
      TypeError: for a `flow` that is not a `tf.Module`.
      ValueError: if its networks were built with different mixed policies.
    """
    if not isinstance(flow, tf.Module):
        raise TypeError(
            f'`flow` must be a tf.Module (a flow, bijector or network); got {type(flow).__name__}.'
        )
    found = {getattr(module, 'dtype_policy', None) for module in flow.submodules}
    found &= set(MIXED_POLICIES)  # The networks' names (other modules may hold other things).
    if len(found) > 1:
        raise ValueError(f'The networks of this flow have different policies: {sorted(found)}.')
    return found.pop() if found else None
