"""Test session setup: two logical CPU devices stand in for two GPUs, and the order the
tests start in.

Devices can only be configured before TensorFlow initialises them, so `pytest_configure` does
it, before any test module touches TensorFlow, in each process that runs tests: not in
pytest-xdist's controller, which only hands them out and so never imports TensorFlow (3.3 s of
CPU, 2026-12-07).
"""

import gc

import pytest

# A test process keeps many traced graphs alive, which Python's cycle collector walks again
# and again; collecting less often took 4 % less CPU from the training tests (2026-12-07).
gc.set_threshold(200_000, 50, 1000)


def pytest_configure(config):
    # Workers are started only with `-n N > 0`: pyproject.toml's `--dist loadgroup` alone (a
    # run without `-n`) runs the tests in this process, which needs the two devices.
    workers = config.getoption('numprocesses', None)
    controller = bool(workers) and not hasattr(config, 'workerinput')
    if controller:
        return
    import tensorflow as tf

    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


@pytest.fixture(scope='session')
def mirrored_strategy():
    """One 2-replica `MirroredStrategy` per session: two in one process collide in their
    collective-op instance keys."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices('CPU')])


# The directories and files whose tests train or trace the most, started first (in this
# order), so that the many quick tests of the rest fill the end of a parallel run;
# test_arguments.py last.
_FIRST = ('run', 'training', 'export', 'dequantization', 'bijectors', 'test_models.py', 'tools')


def _start_order(item):
    tests = item.config.rootpath / 'tests'
    name = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ''
    if name in _FIRST:
        return _FIRST.index(name)
    return len(_FIRST) + (name == 'test_arguments.py')


@pytest.hookimpl(tryfirst=True)  # Before xdist reads the groups.
def pytest_collection_modifyitems(config, items):
    """Orders the tests (`_FIRST`) and, for pytest-xdist's `--dist loadgroup` (pyproject.toml),
    puts the tests that read a run trained once per session (tests/run/conftest.py's
    `built_once`) in one group per build (the kill/resume runs with the script run they
    extend): each group runs on one worker, which builds the run while the other workers go
    on, instead of waiting on the build's lock. xdist starts
    the largest groups first, then the other tests in this order, each to the first free
    worker."""
    for item in items:
        if 'script_run' in item.fixturenames:  # train.py's run, read by three modules.
            item.add_marker(pytest.mark.xdist_group('script_run'))
        elif 'built_once' in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group('trained_runs'))
    items.sort(key=_start_order)
