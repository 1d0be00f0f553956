"""TF thread pools are sized from the config before TF starts, or a warning says why not."""

import subprocess
import sys

from scripts import processes

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
