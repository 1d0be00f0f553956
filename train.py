"""Trains a flow from a recipe: `python train.py --config=configs/realnvp_moons.py`.

Flags -> config -> workdir -> `tfp_flows.run.experiment.train`, as flax's main.py does.
`python train.py --help` lists the recipes and flags; `--print_config` shows a recipe's
fields. A rerun into a workdir goes on with the run's own config.json and this command's
`--config.FIELD=VALUE` overrides. The config and the workdir are checked, and a finished run
answered, before TensorFlow starts; every error is one line (`tfp_flows.run.cli`).
"""

import functools
import os
import sys

from tfp_flows.run import cli

cli.quiet_tensorflow()  # Before anything imports TensorFlow.

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from tfp_flows.run import schema  # noqa: E402
from tfp_flows.run import workdir as workdirs  # noqa: E402

_RECIPES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'configs')
with cli.usage_errors():  # Overrides are read here when --config is not given.
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
for _name in ('workdir', 'export_dir'):
    flags.register_validator(_name, lambda path: path != '', 'must be a path, not empty.')
_PRINT_CONFIG = flags.DEFINE_bool(
    'print_config',
    False,
    'Print the fields this command would run with (the recipe, or for a rerun the '
    "workdir's config.json, with the overrides) and exit.",
)


def main(argv):
    del argv  # Checked by the flags parser.
    flag = flags.FLAGS['config']
    recipe_config, overrides = cli.config_from_flags(flag)
    recipe = config_flags.get_config_filename(flag)
    workdir = os.path.abspath(_WORKDIR.value or cli.default_workdir(recipe))
    try:
        config = workdirs.rerun_config(workdir, recipe_config, overrides, flag.present > 0)
        if _PRINT_CONFIG.value:  # What this command would run with.
            base = os.path.relpath(recipe)
            if config is not recipe_config:
                base = os.path.join(workdir, 'config.json')
            cli.print_text(schema.describe(schema.check_config(config), base))
            return
        with workdirs.open_run(config, workdir, _EXPORT_DIR.value) as run:
            if run.finished:
                cli.print_text(workdirs.leave_finished(run))
                return
            from tfp_flows.run import experiment  # TensorFlow starts here.

            cli.use_terminal_logging()
            metrics = experiment.train(run)
    except KeyboardInterrupt as interrupt:
        print(cli.interrupted_message(interrupt), file=sys.stderr)
        sys.exit(130)
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        print(f'Error: {cli.error_line(error)}', file=sys.stderr)
        sys.exit(1)
    cli.print_text('\n'.join(cli.result_lines(metrics, workdir, _EXPORT_DIR.value)))


if __name__ == '__main__':
    _help = functools.partial(
        cli.help_text, _RECIPES, ['config', 'workdir', 'export_dir', 'print_config']
    )
    app.run(main, flags_parser=cli.make_flags_parser(_help))
