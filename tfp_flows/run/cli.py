"""What `train.py` shows on the terminal: a quiet start, help, one-line errors, results.

Nothing here imports TensorFlow, so `--help`, `--print_config` and every error in the flags
or the workdir answer at once. Exit codes of `train.py`: 0 done (or nothing to do: the run is
finished), 1 an error in the run's inputs, 2 an error in the command line, 130 interrupted.
"""

import ast
import contextlib
import glob
import itertools
import logging
import os
import re
import shlex
import sys
import tempfile

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from tfp_flows.run import schema
from tfp_flows.run import workdir as workdirs

__all__ = [
    'USAGE_ERROR',
    'config_from_flags',
    'default_workdir',
    'error_line',
    'help_text',
    'interrupted_message',
    'make_flags_parser',
    'print_text',
    'quiet_tensorflow',
    'result_lines',
    'usage_errors',
    'use_terminal_logging',
]

USAGE_ERROR = 2
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tfp_flows/
_HELP_ARGS = ('-h', '--help', '-help', '--helpshort', '-?')
# A bool: absl's words too on the command line; Python's bools only elsewhere (`checks.BOOL`).
_BOOL = 'True or False (on the command line also true, false, t, f, 1 or 0)'


def quiet_tensorflow():
    """Quiets TensorFlow's C++ start-up (call it before TensorFlow is imported): sets
    `TF_CPP_MIN_LOG_LEVEL`, unless the user did, to '3' without an NVIDIA GPU (where CUDA's
    failed start says only that), to '1' (no INFO lines) with one."""
    has_gpu = bool(glob.glob('/dev/nvidia[0-9]*') or os.path.exists('/dev/dxg'))
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1' if has_gpu else '3')


def _recipes(directory):
    """[(path relative to the cwd if inside it, first docstring line)] of directory/*.py."""
    found = []
    for path in sorted(glob.glob(os.path.join(directory, '[!_]*.py'))):
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
        "Rerunning a command goes on with the run's own config and the overrides given then;",
        'a finished run is left as it is.',
        '',
        'usage: python train.py [--config=RECIPE] [--config.FIELD=VALUE ...] [--workdir=DIR]',
        '                       [--export_dir=DIR] [--print_config]',
        '',
        'Recipes (--config=PATH):',
    ]
    listed = _recipes(recipes_dir)
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
        "See a recipe's fields, values, rerun classes and docs, then exit:",
        f'  python train.py --config={listed[0][0]} --print_config',
    ]
    return '\n'.join(lines)


def print_text(text):
    """Prints `text`; a reader that stops early (`| head`) ends the program quietly."""
    try:
        print(text, flush=True)
    except BrokenPipeError:  # As the Python docs advise (signal module, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def error_line(error):
    """The innermost message of `error` (`AttributeError(KeyError('...'))`) on one line; the
    whole message of an OS error with its number ("[Errno 1] Operation not permitted: 'x'")."""
    while isinstance(error, BaseException) and not (isinstance(error, OSError) and error.errno):
        error = error.args[0] if error.args else type(error).__name__
    return ' '.join(str(error).split())


def _bad_value(error):
    """'`--config.model.loop` must be True or False (...); got '2'.' for absl's 'flag
    --NAME=VALUE: <the parser's error>' of a bool flag or a config field (the field's domain
    from the schema: '`--config.model.num_levels` must be a positive int; got 'two'.'); else
    absl's line."""
    text, cause = str(error), error.__context__
    name = text.removeprefix('flag --').split('=', 1)[0]
    field = schema.FIELDS.get(name.removeprefix('config.'))
    if name in flags.FLAGS and flags.FLAGS[name].boolean:
        expected = _BOOL
    elif name.startswith('config.') and field is not None:
        expected = field.domain.description
    else:
        return error_line(error)
    if not isinstance(cause, ValueError | TypeError):
        return error_line(error)
    value = text[len(f'flag --{name}=') : len(text) - len(f': {cause}')]
    return f'`--{name}` must be {expected}; got {value!r}.'


def _exit_with(message, code):
    print(f'Error: {message}', file=sys.stderr)
    sys.exit(code)


@contextlib.contextmanager
def usage_errors():
    """Turns an error in the command line (ml_collections' AttributeError or KeyError for an
    unknown field, absl's `flags.Error`, a recipe's own error) into one line on stderr and
    exit code 2."""
    try:
        yield
    except (AttributeError, KeyError) as error:
        line = error_line(error).replace(' Did you mean', '. Did you mean')
        _exit_with(f'--config has no field {line} (see --print_config)', USAGE_ERROR)
    except flags.IllegalFlagValueError as error:
        _exit_with(_bad_value(error), USAGE_ERROR)
    except flags.Error as error:
        _exit_with(error_line(error), USAGE_ERROR)
    except Exception as error:  # The recipe failed to load (ml_collections defers it),
        line = error_line(error)  # or absl's plain ValueError for --noNAME=VALUE.
        if (given := re.fullmatch(r'--no(\S+?)=(.*) does not take an argument', line)) is not None:
            name, value = given.groups()
            _exit_with(
                f'`--no{name}` takes no value (it sets `--{name}=False`); got {value!r}.',
                USAGE_ERROR,
            )
        _exit_with(f'--config: {line}', USAGE_ERROR)


def make_flags_parser(help_fn):
    """A `flags_parser` for `absl.app.run`: help on -h/--help (exit 0), one-line errors; it
    loads the recipe, so a missing or broken recipe fails here, before anything else runs."""

    def parse(argv):
        if any(arg in _HELP_ARGS for arg in argv[1:]):
            print_text(help_fn())
            sys.exit(0)
        argv, _NONE_FIELDS[:] = _without_none_fields(argv)
        _check_recipe(argv)  # Before absl parses the flags, which runs the recipe's file.
        with usage_errors():
            remaining = flags.FLAGS(argv)
        if len(remaining) > 1:
            _exit_with(f'unexpected arguments {remaining[1:]}; see --help.', USAGE_ERROR)
        flag = flags.FLAGS['config']
        path = config_flags.get_config_filename(flag)
        try:  # ml_collections defers a recipe's failure to load to the first use of a field.
            flag.value.keys()
        except Exception as error:  # The recipe's own error.
            _exit_with(f'--config={path} could not be loaded: {error_line(error)}', USAGE_ERROR)
        return remaining

    return parse


def _check_recipe(argv):
    """Exits with one line unless the last `--config=PATH` (or `--config PATH`, with one dash or
    two, before any `--`, as absl reads them) in `argv`, if any, is a recipe: a Python file
    that binds get_config (a def, an assignment or an import)."""
    path = None  # absl takes the last one.
    args = argv[1 : argv.index('--')] if '--' in argv else argv[1:]
    for arg, following in itertools.pairwise([*args, None]):
        name = arg.removeprefix('-').removeprefix('-') if arg.startswith('-') else ''
        if name == 'config':
            path = following
        elif name.startswith('config='):
            path = name.removeprefix('config=')
    if path is None:
        return
    if not os.path.isfile(path):
        _exit_with(f'--config={path}: no such recipe file; see --help.', USAGE_ERROR)
    try:
        with open(path, 'rb') as f:  # Bytes: Python reads the file's coding line.
            nodes = list(ast.walk(ast.parse(f.read(), path)))
    except (OSError, ValueError, SyntaxError) as error:  # A null byte is a ValueError.
        _exit_with(
            f'--config={path} is not a recipe file: not Python ({error_line(error)}); see --help.',
            USAGE_ERROR,
        )
    bound = {n.name for n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    bound |= {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {n.asname or n.name for n in nodes if isinstance(n, ast.alias)}
    if not bound & {'get_config', '*'}:
        _exit_with(
            f'--config={path} is not a recipe file: it defines no get_config(); see --help.',
            USAGE_ERROR,
        )


# The fields set to None on the command line, which the flags parser takes out of absl's
# hands: absl parses a field's value by the recipe's type, so it cannot read None into a number.
_NONE_FIELDS = []


def _without_none_fields(argv):
    """(argv less each `--config.FIELD=None` or `--config.FIELD None` of a field that may be
    None, those fields in order); a later value of the same field wins, as in absl."""
    kept, none_fields, rest = [], [], list(argv)
    while rest:
        arg = rest.pop(0)
        name, equals, value = arg.partition('=')
        key = name.removeprefix('--config.')
        field = schema.FIELDS.get(key) if name.startswith('--config.') else None
        if field is not None and key in none_fields:
            none_fields.remove(key)
        if field is None or not field.domain.contains(None):
            kept.append(arg)
        elif equals and value == 'None':
            none_fields.append(key)
        elif not equals and rest and rest[0] == 'None':
            none_fields.append(key)
            rest.pop(0)
        else:
            kept.append(arg)
    return kept, none_fields


def config_from_flags(flag):
    """(recipe config with this command's overrides, the overrides alone) of the `--config`
    flag. `--config.FIELD=None` means None (ml_collections reads it as the str 'None', and a
    number field's flag could not take it: the flags parser keeps those aside)."""
    overrides = {
        key: None if value == 'None' else value
        for key, value in config_flags.get_override_values(flag).items()
    }
    overrides.update(dict.fromkeys(_NONE_FIELDS))
    config = flag.value
    config.update_from_flattened_dict(overrides)
    return config, overrides


def use_terminal_logging():
    """Shows tfp_flows' absl INFO lines (resuming, initialising) plainly on stdout, beside Keras'
    progress bar, and anyone's warnings on stderr, in place of absl's prefixed format."""
    absl_logging.set_verbosity(absl_logging.INFO)
    ours = logging.StreamHandler(sys.stdout)
    ours.addFilter(lambda r: r.levelno < logging.WARNING and r.pathname.startswith(_PACKAGE_DIR))
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter('%(levelname)s: %(message)s'))
    root = logging.getLogger()
    root.removeHandler(absl_logging.get_absl_handler())
    root.addHandler(ours)
    root.addHandler(warnings)


def interrupted_message(interrupt, argv=None):
    """What to say on Ctrl-C (`interrupt`): where the run goes on, and the command that does."""
    command = shlex.join(['python', *(sys.argv if argv is None else argv)])
    if not hasattr(interrupt, 'checkpoint'):  # Not while training (`experiment.Interrupted`).
        return f'Interrupted. The same command goes on where the run is:\n  {command}'
    if interrupt.checkpoint is None:
        return (
            'Interrupted before the first epoch finished: there is no checkpoint, and the same '
            f'command starts the run again:\n  {command}'
        )
    return (
        f'Interrupted. Epoch {interrupt.epoch} is the last finished one, saved in '
        f'{interrupt.checkpoint}; the same command resumes from it:\n  {command}'
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
    outputs = workdirs.written_outputs(workdir, metrics, export_dir)
    width = max(len(path) for path, _ in outputs)
    lines.append('The run holds:')
    lines += [f'  {path:<{width}}  {what}' for path, what in outputs]
    return lines
