"""Trains a flow from a recipe: `python train.py --config=configs/realnvp_moons.py`.

Thin on purpose: flags -> config -> workdir checks -> `tfp_flows.run.experiment.train_and_evaluate`
(which builds the strategy from the config). `python train.py --help` lists the recipes and
flags; `--print_config` shows a recipe's fields. Everything the user may get wrong is checked
before TensorFlow starts where it can be, and reported as one line (`tfp_flows.run.cli`).
"""

import functools
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from tfp_flows.run import cli
from tfp_flows.run import workdir as workdirs

_RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs')
with cli.exit_on_flag_errors():  # Overrides are read here when --config is not given.
    _CONFIG = config_flags.DEFINE_config_file(
        'config', os.path.join(_RECIPES, 'default.py'), 'The recipe, a file like configs/*.py.'
    )
_WORKDIR = flags.DEFINE_string(
    'workdir',
    None,
    'Where the run writes (default: <tmp>/tfp_flows_runs/<recipe name>). The same command '
    'again resumes the run there; a finished run is left as it is.',
)
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'Also export the best model as a SavedModel here: a new path.'
)
_PRINT_CONFIG = flags.DEFINE_bool(
    'print_config', False, "Print the recipe's fields (with the overrides) and exit."
)


def main(argv):
    del argv  # Checked by the flags parser.
    config = cli.none_from_flags(_CONFIG.value)
    recipe = config_flags.get_config_filename(flags.FLAGS['config'])
    if _PRINT_CONFIG.value:
        print(cli.format_config(config, recipe))
        return
    workdir = os.path.abspath(_WORKDIR.value or cli.default_workdir(recipe))
    export_dir = _EXPORT_DIR.value
    try:
        rerun = workdirs.check_rerun(workdir, config)
        workdirs.check_export_dir(export_dir, workdir)
        if rerun.finished:
            if rerun.differing:  # Settings that would apply on training on: values checked.
                cli.check_config(config)
            print(workdirs.finished_message(rerun, config.train.epochs))
            if export_dir is not None:
                print(f'Copied its best model to {workdirs.copy_export(workdir, export_dir)}.')
            return
        experiment = cli.import_experiment()
        cli.use_terminal_logging()
        metrics = experiment.train_and_evaluate(config, workdir, export_dir=export_dir)
    except KeyboardInterrupt:
        print(cli.interrupted_message(workdir), file=sys.stderr)
        sys.exit(130)
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        print(f'Error: {cli.error_line(error)}', file=sys.stderr)
        sys.exit(1)
    print('\n'.join(cli.result_lines(metrics, workdir, export_dir)))


if __name__ == '__main__':
    _help = functools.partial(
        cli.help_text, _RECIPES, ['config', 'workdir', 'export_dir', 'print_config']
    )
    app.run(main, flags_parser=cli.make_flags_parser(_help))
