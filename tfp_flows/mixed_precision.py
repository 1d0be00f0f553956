"""Keras mixed-precision policies for the conditioner networks of a flow.

A flow built with `dtype_policy='mixed_bfloat16'` or `'mixed_float16'` runs its conditioner
networks in bfloat16 or float16 and gets float32 back; the variables (checkpoints restore across
policies), the other steps, every log-det and log-density, and the loss stay float32. A policy
changes rounding only, so it is no step's `structure()`. float16 needs loss scaling (Micikevicius
et al. 2018, https://arxiv.org/abs/1710.03740), which `FlowTrainer` adds; bfloat16 has
float32's exponent range (Kalamkar et al. 2019, https://arxiv.org/abs/1905.12322).
"""

import keras
import tensorflow as tf

__all__ = ['MIXED_POLICIES', 'check_dtype_policy', 'compute_dtype', 'dtype_policy_of']

# Keras' policy names that compute in a lower precision than their float32 variables.
MIXED_POLICIES = ('mixed_bfloat16', 'mixed_float16')


def check_dtype_policy(dtype_policy, dtype=tf.float32):
    """`dtype_policy` (None, 'mixed_bfloat16', 'mixed_float16' or a Keras `DTypePolicy` of
    one) as the mixed policy's name, or None for one that computes in `dtype` (the variables').
    `ValueError` naming another value, or a mixed policy with float64 variables."""
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
    """The mixed policy of the `tfp_flows.networks` in `flow` (a `tf.Module`, else
    `TypeError`), or None; `ValueError` if they were built with different ones."""
    if not isinstance(flow, tf.Module):
        raise TypeError(
            f'`flow` must be a tf.Module (a flow, bijector or network); got {type(flow).__name__}.'
        )
    found = {getattr(module, 'dtype_policy', None) for module in flow.submodules}
    found &= set(MIXED_POLICIES)  # The networks' names (other modules may hold other things).
    if len(found) > 1:
        raise ValueError(f'The networks of this flow have different policies: {sorted(found)}.')
    return found.pop() if found else None
