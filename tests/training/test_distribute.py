"""Strategies by name; TF thread pools sized before TF starts, or a warning says why not."""

import subprocess
import sys

import pytest
import tensorflow as tf
from scripts import processes

from tfp_flows.training.distribute import configure_threads, make_strategy

_SCRIPT = """
import tensorflow as tf
from tfp_flows.training.distribute import configure_threads
configure_threads(intra_op_threads=1, inter_op_threads=3)
tf.constant(1.0) + 1.0  # TensorFlow's runtime starts: the pools are fixed from here on.
configure_threads(intra_op_threads=1, inter_op_threads=3)  # The same setting: silent.
configure_threads(intra_op_threads=2)
print(
    tf.config.threading.get_intra_op_parallelism_threads(),
    tf.config.threading.get_inter_op_parallelism_threads(),
)
"""


def test_threads_are_set_before_tf_starts_and_a_late_change_is_a_warning():
    result = subprocess.run(
        [sys.executable, '-c', _SCRIPT],
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ['1', '3']
    warnings = [line for line in result.stderr.splitlines() if 'not applied' in line]
    assert len(warnings) == 1
    assert (
        'intra_op_threads=2 not applied: TensorFlow already runs with intra_op_threads=1'
        in (warnings[0])
    )


def test_a_strategy_is_chosen_from_the_listed_names():
    assert make_strategy('auto') is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match=r"`name` must be one of \('auto', .*; got 'tpu'"):
        make_strategy('tpu')


@pytest.mark.parametrize('value', [-1, 1.5, True])
def test_a_thread_count_is_an_int_from_zero(value):
    with pytest.raises(ValueError, match=r'`inter_op_threads` must be an int >= 0; got'):
        configure_threads(inter_op_threads=value)
