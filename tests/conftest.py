"""Test session setup: two logical CPU devices stand in for two GPUs.

Devices can only be configured before TensorFlow initialises them, so this runs at import,
before any test module touches TensorFlow.
"""

import pytest
import tensorflow as tf

_cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(scope='session')
def mirrored_strategy():
    """One 2-replica `MirroredStrategy` per session: two in one process collide in their
    collective-op instance keys."""
    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices('CPU')])
