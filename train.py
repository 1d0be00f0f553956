"""Trains a flow: `python train.py --config=configs/glow_digits.py --workdir=/tmp/run`.

Thin on purpose: flags -> config -> strategy -> `tfp_flows.experiment.train_and_evaluate`.
Override any config field on the command line, e.g. `--config.train.batch_size=32`.
"""

import json
import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(__file__), 'configs', 'default.py'), 'Recipe file.'
)
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/tfp_flows/run', 'Where the run writes.')
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'Also export the best model as a SavedModel here (must not exist).'
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
    logging.set_verbosity(logging.WARNING)  # TF's INFO lines would bury Keras' progress bar.
    if _EXPORT_DIR.value and os.path.exists(_EXPORT_DIR.value):
        raise app.UsageError(
            f'--export_dir {_EXPORT_DIR.value!r} already exists; choose a new path or remove it.'
        )
    from tfp_flows import experiment  # After flag parsing: importing TF is slow.

    metrics = experiment.train_and_evaluate(
        _CONFIG.value, _WORKDIR.value, export_dir=_EXPORT_DIR.value
    )
    print(json.dumps(metrics, indent=2))
    for key, value in metrics.items():
        if key.startswith('test_'):
            print(f'Test {key[5:].replace("_", " ")}: {value:.4f}')
    workdir = os.path.abspath(_WORKDIR.value)
    print(
        f'Samples: {workdir}/samples  Checkpoints: {workdir}/checkpoints  '
        f'SavedModel: {workdir}/saved_model  TensorBoard: tensorboard --logdir {workdir}/logs'
    )


if __name__ == '__main__':
    app.run(main)
