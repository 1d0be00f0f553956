"""What `train.py` shows on the terminal: help, one-line errors, quiet start-up, results.

Nothing here imports TensorFlow until `import_experiment`, so `--help`, `--print_config` and
every error in the flags or the workdir answer at once.

Exit codes of `train.py`: 0 done (or nothing to do: the run is finished), 1 an error in the
run's inputs, 2 an error in the command line, 130 interrupted (Ctrl-C).
"""

import ast
import contextlib
import glob
import logging
import os
import re
import shlex
import sys
import tempfile

import ml_collections
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from tfp_flows.run import workdir as workdirs

__all__ = [
    'USAGE_ERROR',
    'default_workdir',
    'error_line',
    'exit_on_flag_errors',
    'format_config',
    'none_from_flags',
    'help_text',
    'check_config',
    'import_experiment',
    'interrupted_message',
    'make_flags_parser',
    'recipes',
    'result_lines',
    'use_terminal_logging',
]

USAGE_ERROR = 2
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_HELP_ARGS = ('-h', '--help', '-help', '--helpshort', '-?')
_TAGS = {workdirs.DEFINES_RUN: 'run', workdirs.TRAINING: 'training', workdirs.HARMLESS: ''}


def recipes(directory):
    """[(path relative to the cwd if inside it, first docstring line)] of directory/*.py."""
    found = []
    for path in sorted(glob.glob(os.path.join(directory, '*.py'))):
        if os.path.basename(path) == '__init__.py':
            continue
        with open(path) as f:
            docstring = ast.get_docstring(ast.parse(f.read())) or ''
        relative = os.path.relpath(path)
        found.append((path if relative.startswith('..') else relative, docstring.split('\n')[0]))
    return found


def default_workdir(recipe_path):
    """<tmp>/tfp_flows_runs/<recipe name>: a folder whose name cannot shadow the package."""
    name = os.path.splitext(os.path.basename(recipe_path))[0]
    return os.path.join(tempfile.gettempdir(), 'tfp_flows_runs', name)


def help_text(recipes_dir, flag_names):
    """`train.py --help`: what it does, the recipes, the flags and how to see a recipe."""
    lines = [
        'Trains a normalizing flow (Glow or Real NVP) from a recipe, tests it and exports it.',
        'Rerunning a command resumes its run; a finished run is left as it is.',
        '',
        'usage: python train.py [--config=RECIPE] [--config.FIELD=VALUE ...] [--workdir=DIR]',
        '                       [--export_dir=DIR] [--print_config]',
        '',
        'Recipes (--config=PATH):',
    ]
    listed = recipes(recipes_dir)
    width = max(len(path) for path, _ in listed)
    lines += [f'  {path:<{width}}  {summary}' for path, summary in listed]
    lines += ['', 'Flags:']
    for name in flag_names:
        flag = flags.FLAGS[name]
        default = (flag.default_as_str or '').strip("'")
        if os.path.isfile(default):
            default = os.path.relpath(default)
        shown = f' (default: {default})' if default and flag.default is not False else ''
        lines.append(f'  --{name}: {flag.help}{shown}')
    lines += [
        '  --config.FIELD=VALUE: override one field of the recipe, e.g. '
        '--config.train.epochs=10 or --config.model.hidden_channels=32',
        '  -h, --help: show this help and exit',
        '',
        "See a recipe's fields and values (with any overrides), then exit:",
        f'  python train.py --config={listed[0][0]} --print_config',
    ]
    return '\n'.join(lines)


def none_from_flags(config):
    """Sets to None every field of `config` whose value is the string 'None'; returns it.

    ml_collections parses `--config.train.memory_saving=None` of a str field as the string
    'None'; no field takes that string, so it means None (the fields' checks then say whether
    None is allowed). `TypeError` for a `config` that is not a ConfigDict or a dict.
    """
    if not isinstance(config, ml_collections.ConfigDict | dict):
        raise TypeError(f'`config` must be an ml_collections.ConfigDict or a dict; got {config!r}.')
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict | dict):
            none_from_flags(value)
        elif value == 'None':
            config[key] = None
    return config


def format_config(config, recipe):
    """The leaves of `config`, one `FIELD  VALUE  [class]` a line (`--print_config`)."""
    leaves = workdirs.leaves(config)
    width = max(len(key) for key in leaves)
    lines = [
        f'# {recipe}, with the command line overrides. Override a field with',
        '# --config.FIELD=VALUE. A rerun into a workdir may not change [run] fields; [training]',
        '# fields may change when a run resumes (recorded in config_history.json).',
    ]
    for key, value in leaves.items():
        tag = _TAGS[workdirs.KEY_CLASSES.get(key, workdirs.DEFINES_RUN)]
        lines.append(f'{key:<{width}}  {value!r}' + (f'  [{tag}]' if tag else ''))
    return '\n'.join(lines)


def _innermost_message(error):
    while isinstance(error, BaseException):  # AttributeError(KeyError('...')) and the like.
        error = error.args[0] if error.args else type(error).__name__
    return str(error)


def error_line(error):
    """The innermost message of `error` on one line."""
    return ' '.join(_innermost_message(error).split())


def _exit_with(message, code):
    print(f'Error: {message}', file=sys.stderr)
    sys.exit(code)


def _field_error(error, argv):
    """One line for an override naming a field the config lacks, with ml_collections' hint."""
    name, _, hint = _innermost_message(error).partition('\n')  # "'epoch'\nDid you mean ...?"
    name = name.strip('\'"')
    overrides = [arg.split('=')[0] for arg in argv if re.match(r'-{1,2}config\.', arg)]
    named = [flag for flag in overrides if name in flag.split('.')[1:]]
    flag = (named or overrides or ['--config.?'])[0]
    message = f'{flag}: the config has no field {name!r}. {hint} See the fields: --print_config.'
    return ' '.join(message.split())


@contextlib.contextmanager
def exit_on_flag_errors(argv=None):
    """Turns an error in the command line into one line on stderr and exit code 2.

    ml_collections reads `--config.FIELD` overrides when the config flag is defined (without
    `--config`) or parsed, and raises AttributeError/KeyError for a field the config lacks; a
    recipe given with `--config` is loaded (and may fail) while the flags are parsed.
    """
    argv = sys.argv if argv is None else argv
    try:
        yield
    except (AttributeError, KeyError) as error:
        _exit_with(_field_error(error, argv), USAGE_ERROR)
    except flags.Error as error:
        _exit_with(error_line(error), USAGE_ERROR)
    except Exception as error:  # Loading the recipe failed: no such file, or its own error.
        recipes = [arg.split('=', 1)[1] for arg in argv if re.match(r'-{1,2}config=', arg)]
        _exit_with(_recipe_error(recipes[-1] if recipes else '?', error), USAGE_ERROR)


def _recipe_error(path, error):
    if not os.path.exists(path):
        return f'--config={path}: no such recipe file; see --help.'
    return f'--config={path} could not be loaded: {type(error).__name__}: ' + ' '.join(
        str(error).split()
    )


def make_flags_parser(help_fn):
    """A `flags_parser` for `absl.app.run`: help on -h/--help (exit 0), one-line errors.

    It also loads the recipe, so a missing or broken recipe file fails here, before anything
    else runs.
    """

    def parse(argv):
        if any(arg in _HELP_ARGS for arg in argv[1:]):
            print(help_fn())
            sys.exit(0)
        with exit_on_flag_errors(argv):
            remaining = flags.FLAGS(argv)
        if len(remaining) > 1:
            _exit_with(f'unexpected arguments {remaining[1:]}; see --help.', USAGE_ERROR)
        flag = flags.FLAGS['config']
        try:  # ml_collections defers a recipe's failure to load to the first use of a field.
            flag.value.keys()
        except Exception as error:  # OSError, or the recipe's own error.
            _exit_with(_recipe_error(config_flags.get_config_filename(flag), error), USAGE_ERROR)
        return remaining

    return parse


class _TerminalHandler(logging.Handler):
    """tfp_flows' INFO lines plain on stdout; anyone's warnings and errors on stderr."""

    def emit(self, record):
        try:
            if record.levelno >= logging.WARNING:
                stream, text = sys.stderr, f'{record.levelname}: {self.format(record)}'
            elif record.pathname.startswith(_PACKAGE_DIR):
                stream, text = sys.stdout, self.format(record)
            else:
                return  # Other libraries' INFO lines (TFDS, TF) are for debugging.
            stream.write(text + '\n')
            stream.flush()
        except Exception:
            self.handleError(record)


def use_terminal_logging():
    """Shows tfp_flows' absl INFO lines (resuming, initialising) as plain lines beside Keras'
    progress bar, and warnings on stderr, in place of absl's prefixed log format."""
    absl_logging.set_verbosity(absl_logging.INFO)
    root = logging.getLogger()
    root.removeHandler(absl_logging.get_absl_handler())
    root.addHandler(_TerminalHandler())


def _has_nvidia_gpu():
    return bool(glob.glob('/dev/nvidia[0-9]*') or os.path.exists('/dev/dxg'))


def _startup_noise(has_gpu):
    """A predicate: is this stderr line TensorFlow's harmless start-up chatter?"""
    patterns = [
        r'WARNING: All log messages before absl::InitializeLog\(\) is called are written to',
        r'I\d{4} ',  # INFO lines printed before TF_CPP_MIN_LOG_LEVEL applies (oneDNN, CUDA stub).
        r'To enable the following instructions: ',  # The second line of an INFO line.
    ]
    if not has_gpu:  # No GPU device: CUDA's failed initialisation says only that.
        patterns.append(r'E\d{4} .*failed call to cuInit')
    return re.compile('|'.join(f'(?:{p})' for p in patterns)).match


@contextlib.contextmanager
def _filtered_stderr(is_noise):
    """Captures file descriptor 2 (C++ writes too) and replays the lines not `is_noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors='replace').splitlines(keepends=True)
            sys.stderr.write(''.join(line for line in lines if not is_noise(line)))
            sys.stderr.flush()


def check_config(config):
    """`tfp_flows.run.config_checks.check_config`, imported as `import_experiment` imports
    (it imports TensorFlow)."""
    import_experiment().check_config(config)


def import_experiment():
    """Imports `tfp_flows.run.experiment` (and TensorFlow) without TF's C++ start-up chatter.

    Unless the user set TF_CPP_MIN_LOG_LEVEL (then nothing is hidden), it is set to 1 (no
    INFO lines) and, while TensorFlow loads and finds its devices, stderr drops only the
    lines TF prints before that setting applies: the absl preamble, INFO notices (oneDNN, no
    CUDA driver) and, on a machine without an NVIDIA device, the failed cuInit. Every other
    line, warnings and errors included, is shown.
    """
    if 'TF_CPP_MIN_LOG_LEVEL' in os.environ:
        from tfp_flows.run import experiment

        return experiment
    os.environ['TF_CPP_MIN_LOG_LEVEL'] = '1'
    with _filtered_stderr(_startup_noise(_has_nvidia_gpu())):
        import tensorflow as tf

        from tfp_flows.run import experiment

        tf.config.list_physical_devices()  # CUDA initialises here, before any op runs.
    return experiment


def interrupted_message(workdir, argv=None):
    """What to say on Ctrl-C: the last complete checkpoint and the command that resumes."""
    argv = sys.argv if argv is None else argv
    command = shlex.join(['python', *argv])
    checkpoint = workdirs.last_checkpoint(workdir)
    if checkpoint is None:
        return (
            'Interrupted before the first epoch finished: there is no checkpoint, and the same '
            f'command starts the run again:\n  {command}'
        )
    path, epoch = checkpoint
    return (
        f'Interrupted. Epoch {epoch} is the last finished one, saved in {path}; the same '
        f'command resumes from it:\n  {command}'
    )


def result_lines(metrics, workdir, export_dir=None):
    """The end of a run: the test figure, then each output it holds, one a line."""
    unit = 'bits_per_dim' if 'test_bits_per_dim' in metrics else 'nats_per_dim'
    test, validation = metrics[f'test_{unit}'], metrics[f'validation_{unit}']
    lines = [
        f'Test {unit.replace("_", " ")}: {test:.4f} (validation {validation:.4f}; best epoch '
        f'{metrics["best_epoch"]} of {metrics["epochs_trained"]})'
    ]
    if not os.path.isdir(workdir):  # Another worker than the chief: it writes nothing.
        return lines + [f'This worker wrote nothing: the chief writes {workdir}.']
    outputs = workdirs.written_outputs(workdir, export_dir)
    width = max(len(path) for path, _ in outputs)
    lines.append('The run holds:')
    lines += [f'  {path:<{width}}  {what}' for path, what in outputs]
    return lines
