"""Tests of tfp_flows/initialization.py under tf.distribute.MirroredStrategy on two CPUs.

Two logical CPU devices can only be set up before TensorFlow initialises its devices, so this
module does it at import (pytest imports every test module before running any test). If
TensorFlow was initialised earlier anyway, the test runs this file again in a new process.
"""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.bijectors import ActNorm

_CPU = tf.config.list_physical_devices('CPU')[0]
if len(tf.config.get_logical_device_configuration(_CPU) or []) < 2:
    try:
        tf.config.set_logical_device_configuration(
            _CPU, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    except RuntimeError:  # Devices already initialised: see `_two_cpus_or_rerun`.
        pass


def _two_cpus_or_rerun(request):
    """True if this process has two logical CPUs; else reruns the test in a fresh process."""
    if len(tf.config.list_logical_devices('CPU')) >= 2:
        return True
    test_id = f'{__file__}::{request.node.name}'
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', test_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return False


@pytest.mark.parametrize('in_tf_function', [False, True])
def test_every_replica_gets_the_same_act_norm_values(in_tf_function, request):
    if not _two_cpus_or_rerun(request):
        return
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    with strategy.scope():
        flow = tfp_flows.glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8)
    reference = tfp_flows.glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8)
    data = np.random.default_rng(0).beta(2.0, 5.0, size=[32, 8, 8, 1]).astype(np.float32)
    if in_tf_function:
        tf.function(lambda data: tfp_flows.initialize(flow, data))(data)
    else:
        tfp_flows.initialize(flow, data)
    tfp_flows.initialize(reference, data)

    act_norms = [m for m in flow.submodules if isinstance(m, ActNorm)]
    expected = [m for m in reference.submodules if isinstance(m, ActNorm)]
    assert len(act_norms) == len(expected) == 2
    for act_norm, single in zip(act_norms, expected, strict=True):
        for name in ('shift', 'log_scale', 'initialized'):
            replicas = strategy.experimental_local_results(getattr(act_norm, name))
            assert len(replicas) == 2
            np.testing.assert_array_equal(replicas[0], replicas[1])
            np.testing.assert_allclose(replicas[1], getattr(single, name), rtol=1e-5, atol=1e-6)
        assert act_norm.initialized.numpy()
        assert not np.allclose(act_norm.log_scale.numpy(), 0.0)
