"""`python train.py` as a user runs it: what it prints, when it refuses, what it leaves alone.

One tiny run of a named recipe (the class-conditional digits Glow) trains 4 epochs in a
subprocess (about 20 s; tests/run/conftest.py's `script_run`, which test_experiment.py reads as
a run too, and test_kill_resume.py as its unbroken run);
every other command here is refused or answered before TensorFlow is imported, which
`python -X importtime` shows, most of them beside that run.
"""

import contextlib
import functools
import glob
import json
import os
import pathlib
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import pytest
from absl import flags
from scripts import processes

from tfp_flows import checks
from tfp_flows.run import cli, schema

ROOT = processes.ROOT
EPOCHS = processes.SCRIPT_EPOCHS
TINY = (*processes.TINY_FLAGS, f'--config.train.epochs={EPOCHS}')


def _train(*flags, timeout=300, importtime=False):
    """Runs `python train.py FLAGS`; returns the CompletedProcess (stdout, stderr as text)."""
    command = processes.train_command(*flags)
    if importtime:
        command.insert(1, '-Ximporttime')
    return subprocess.run(
        command, cwd=ROOT, env=processes.user_env(), capture_output=True, text=True, timeout=timeout
    )


def _imported_tensorflow(result):
    return any(re.search(r'\| +tensorflow$', line) for line in result.stderr.splitlines())


def _messages(result):
    """stderr without `-X importtime`'s lines."""
    return [line for line in result.stderr.splitlines() if not line.startswith('import time:')]


def _files(directory):
    """{relative path: (bytes, mtime)} of every file under `directory`."""
    found = {}
    for path in pathlib.Path(directory).rglob('*'):
        if path.is_file():
            found[str(path.relative_to(directory))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


@pytest.fixture(scope='module')
def tiny_run(script_run, tmp_path_factory):
    """A copy of `script_run`'s workdir, for the commands run in it (each takes its lock)."""
    workdir = tmp_path_factory.mktemp('train') / 'run'
    shutil.copytree(script_run[0], workdir)
    return workdir


def test_a_run_prints_its_figures_and_each_output_on_a_line(script_run):
    workdir, result = script_run
    lines = result['stdout'].splitlines()
    assert 'Initialising ActNorm on the first training batch (64 examples).' in lines
    assert re.search(
        rf'^Test bits per dim: \d\.\d{{4}} \(validation \d\.\d{{4}}; best epoch \d of '
        rf'{EPOCHS}\)$',
        result['stdout'],
        re.MULTILINE,
    ), result['stdout']
    held = lines[lines.index('The run holds:') + 1 :]
    names = [line.split()[0].removeprefix(f'{workdir}/') for line in held]
    assert names == [
        'config.json',
        'metrics.json',
        'checkpoints/latest',
        'checkpoints/best',
        'samples',
        'saved_model',
        'logs',
    ]
    assert all(os.path.exists(line.split()[0]) for line in held)
    assert re.search(rf'^  {workdir}/samples +1 PNG sample figure$', result['stdout'], re.M)
    # The recipe's model: conditional on the one-hot digit, with one row of samples per class
    # (10 rows of 8x8 digits shown at 8x, each 66 pixels with its separator, under a title).
    config = json.loads((workdir / 'config.json').read_text())
    assert (config['data']['conditional'], config['model']['conditional_shape']) == (True, [10])
    best_epoch = json.loads((workdir / 'metrics.json').read_text())['best_epoch']
    picture = (workdir / 'samples' / f'epoch_{best_epoch:04d}.png').read_bytes()
    height = int.from_bytes(picture[20:24], 'big')  # The PNG header's IHDR height.
    assert height == 2 * 12 + 32 + 10 * 66 + 2


def test_tensorflows_start_up_is_quiet_through_its_public_switch(script_run):
    stderr = script_run[1]['stderr']
    assert 'Traceback' not in stderr
    if not glob.glob('/dev/nvidia[0-9]*'):  # CUDA's failed start says only that.
        assert 'cuInit' not in stderr, stderr
    code = (
        'import os; from tfp_flows.run import cli; cli.quiet_tensorflow(); '
        'print(os.environ["TF_CPP_MIN_LOG_LEVEL"])'
    )
    for given, expected in ((None, {'1', '3'}), ('0', {'0'})):
        env = (
            processes.user_env()
            if given is None
            else processes.user_env(TF_CPP_MIN_LOG_LEVEL=given)
        )
        result = subprocess.run(
            [sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.stdout.strip() in expected, result.stderr  # The user's setting stays.


def test_a_rerun_with_another_image_size_is_refused_before_tensorflow(tiny_run):
    workdir = tiny_run
    before = _files(workdir)
    result = _train(f'--workdir={workdir}', *TINY, '--config.data.image_size=16', importtime=True)
    assert result.returncode == 1
    assert _messages(result) == [
        f"Error: workdir '{workdir}' holds a run of another model or data (data.image_size: "
        'None in the workdir, 16 now). These fields define the model, the data it is scored '
        'on or its checkpointed state, so the run cannot go on with them changed; nothing was '
        "changed. Use a new --workdir, or the workdir's values (its config.json; a rerun "
        'without --config starts from it).'
    ]
    assert not _imported_tensorflow(result)
    assert _files(workdir) == before


@pytest.mark.parametrize('repeat', [True, False], ids=['flags repeated', 'one flag'])
def test_a_rerun_of_a_finished_run_says_so_and_changes_nothing(tiny_run, repeat):
    # Issue 21's handed case: a rerun changing one setting starts from the run's own config
    # (4 epochs here), not from the recipe (60): it is finished and says so.
    workdir = tiny_run
    before = _files(workdir)
    flags = TINY if repeat else ()
    result = _train(
        f'--workdir={workdir}', *flags, '--config.train.learning_rate=0.0005', importtime=True
    )
    assert result.returncode == 0
    assert re.fullmatch(
        rf'{workdir} holds a finished run: it reached epoch {EPOCHS} of {EPOCHS}; test bits '
        r'per dim \d\.\d{4}, validation bits per dim \d\.\d{4}, best epoch \d '
        r'\(metrics\.json\)\. Nothing was trained or changed\.\n'
        rf'  To train it on, rerun with --config\.train\.epochs=N, N > {EPOCHS}\.\n'
        r'  For a new run, pass a new --workdir\.\n'
        r'  The changed settings \(train\.learning_rate 0\.003 -> 0\.0005\) apply only if it '
        r'trains on\.\n',
        result.stdout,
    ), result.stdout
    assert _messages(result) == []
    assert not _imported_tensorflow(result)
    assert _files(workdir) == before


def test_a_bad_value_beside_a_finished_run_is_refused_as_such(tiny_run):
    # A free setting too is checked like one of a new run (a training one: the bad command
    # lines below).
    workdir = tiny_run
    before = _files(workdir)
    result = _train(f'--workdir={workdir}', *TINY, '--config.train.memory_saving=foo')
    assert result.returncode == 1
    (line,) = _messages(result)
    assert line.startswith('Error: `config.train.memory_saving` must be None or one'), line
    assert _files(workdir) == before


def test_an_export_dir_under_a_file_is_refused_before_training(tmp_path):
    (tmp_path / 'afile').write_text('')
    result = _train(
        f'--workdir={tmp_path / "run"}', *TINY, f'--export_dir={tmp_path / "afile" / "model"}'
    )
    assert result.returncode == 1
    (line,) = _messages(result)
    assert line == (
        f"Error: export_dir '{tmp_path / 'afile' / 'model'}' cannot be created: "
        f"'{tmp_path / 'afile'}' is a file, not a directory; choose another path."
    )
    assert not (tmp_path / 'run').exists()


def test_a_finished_run_is_copied_to_a_new_export_dir(tiny_run, tmp_path):
    workdir = tiny_run
    before = _files(workdir)
    export_dir = tmp_path / 'model'
    result = _train(f'--workdir={workdir}', *TINY, f'--export_dir={export_dir}', importtime=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f'Copied its best model to {export_dir}.\n')
    saved = {k: v[0] for k, v in _files(workdir / 'saved_model').items()}
    assert {k: v[0] for k, v in _files(export_dir).items()} == saved
    assert not _imported_tensorflow(result)
    assert _files(workdir) == before


@pytest.mark.parametrize(
    'flags, message',
    [
        (
            ('--export_dir={workdir}/saved_model',),
            r"Error: export_dir '.*/run/saved_model' already exists; choose a new path or "
            r'remove it\.',
        ),
        (
            ('--workdir={new}', '--export_dir={new}/model'),
            r"Error: export_dir '.*/new/model' overlaps the workdir '.*/new', which the run "
            r'writes itself .*; choose a path outside the workdir\.',
        ),
        (
            ('--config=missing.py',),
            r'Error: --config=missing\.py: no such recipe file; see --help\.',
        ),
        # Files that are not recipes (a newcomer's tries): named, before absl runs them.
        (
            ('--config=README.md',),
            r'Error: --config=README\.md is not a recipe file: not Python \(invalid character '
            r'.*\); see --help\.',
        ),
        (
            ('--config=train.py',),
            r'Error: --config=train\.py is not a recipe file: it defines no get_config\(\); see '
            r'--help\.',
        ),
        (
            ('--config', 'configs/__init__.py'),
            r'Error: --config=configs/__init__\.py is not a recipe file: it defines no '
            r'get_config\(\); see --help\.',
        ),
        (('--workdir=',), r'Error: flag --workdir=: must be a path, not empty\.'),
        (('--export_dir=',), r'Error: flag --export_dir=: must be a path, not empty\.'),
        (
            ('--config.train.epoch=3',),
            r'Error: --config has no field \'epoch\'\. Did you mean "epochs" instead of "epoch"\? '
            r'\(see --print_config\)',
        ),
        (
            ('--config=configs/realnvp_moons.py', '--config.train.no_such_key=1'),
            r"Error: --config has no field 'no_such_key' \(see --print_config\)",
        ),
        (
            ('--config=configs/realnvp_moons.py', '--config.train.epochs=1.5'),
            r"Error: `--config\.train\.epochs` must be a positive int; got '1\.5'\.",
        ),
        (
            ('--config.train.learning_rate=-1',),
            r'Error: `config\.train\.learning_rate` must be a finite number > 0; got -1\.0\.',
        ),
        (
            ('--config.model.num_levels=two',),
            r"Error: `--config\.model\.num_levels` must be a positive int; got 'two'\.",
        ),
        (('positional',), r"Error: unexpected arguments \['positional'\]; see --help\."),
    ],
)
def test_a_bad_command_line_is_one_line_before_tensorflow(flags, message, tiny_run, tmp_path):
    workdir = tiny_run
    before = _files(workdir)
    flags = [flag.format(workdir=workdir, new=tmp_path / 'new') for flag in flags]
    if not any(flag.startswith('--workdir') for flag in flags):
        flags.insert(0, f'--workdir={workdir}')
    config = [flag for flag in flags if flag.startswith('--config=') or flag == '--config']
    config += [flags[flags.index('--config') + 1]] if '--config' in flags else []
    result = _train(
        *config, *TINY, *(flag for flag in flags if flag not in config), importtime=True
    )
    assert result.returncode in (1, 2)
    [line] = _messages(result)
    assert re.fullmatch(message, line), line
    assert not _imported_tensorflow(result)
    assert _files(workdir) == before
    assert not (tmp_path / 'new').exists()


# Every kind of error train.py and the figure commands print: an OS error kept its number only
# ("Error: 1" for `--workdir=/sys/foo`, a newcomer's finding).
@pytest.mark.parametrize(
    'error, line',
    [
        (
            OSError(1, 'Operation not permitted', '/sys/foo'),
            "[Errno 1] Operation not permitted: '/sys/foo'",
        ),
        (PermissionError(13, 'Permission denied'), '[Errno 13] Permission denied'),
        (ValueError(OSError(2, 'No such file', 'x')), "[Errno 2] No such file: 'x'"),
        (FileExistsError("export_dir 'x' already exists"), "export_dir 'x' already exists"),
        (ValueError('two\n lines'), 'two lines'),
        (AttributeError(KeyError("'epoch'")), "'epoch'"),
        (OSError(), 'OSError'),
    ],
)
def test_an_error_is_one_line_and_an_os_error_keeps_its_number_and_path(error, line):
    assert cli.error_line(error) == line


# Recipes that bind get_config otherwise than by a def: absl loads them (and 0.2 ran them).
OTHER_RECIPES = {
    'an import': 'from configs.affine_digits import get_config\n',
    'an assignment': 'from configs import affine_digits\n\nget_config = affine_digits.get_config\n',
    'a star import': 'from configs.affine_digits import *\n',
    'a coding line': '# -*- coding: latin-1 -*-\n"""\xe9."""\nfrom configs.default import *\n',
}


@pytest.mark.parametrize('text', OTHER_RECIPES.values(), ids=list(OTHER_RECIPES))
def test_a_recipe_that_binds_get_config_otherwise_is_read(text, tmp_path):
    path = tmp_path / 'mine.py'
    path.write_bytes(text.encode('latin-1'))
    result = _train(f'--config={path}', f'--workdir={tmp_path / "run"}', '--print_config')
    assert result.returncode == 0, result.stderr
    assert re.search(r'^model\.coupling +', result.stdout, re.M)


@pytest.mark.parametrize(
    'flags, message',
    [
        (('-config=README.md',), r'Error: --config=README\.md is not a recipe file: not Python .*'),
        (
            ('-config', 'README.md'),
            r'Error: --config=README\.md is not a recipe file: not Python .*',
        ),
        (
            ('--', '--config=README.md'),
            r"Error: unexpected arguments \['--config=README\.md'\]; .*",
        ),
    ],
    ids=['one dash', 'one dash, its value apart', 'an argument after --'],
)
def test_the_recipe_check_reads_the_config_flag_as_absl_does(flags, message, tmp_path):
    result = _train(f'--workdir={tmp_path / "run"}', *flags, importtime=True)
    assert result.returncode == 2
    [line] = _messages(result)
    assert re.fullmatch(message, line), line
    assert not _imported_tensorflow(result)


def test_a_folder_of_a_users_files_is_refused_as_a_workdir_and_kept(tmp_path):
    # The handed case (a newcomer's, 2026-12-07): a run wrote over metrics.json and deleted
    # saved_model/README.txt of a folder that held no run.
    workdir = tmp_path / 'mine'
    (workdir / 'saved_model').mkdir(parents=True)
    (workdir / 'metrics.json').write_text('{"my": "results"}')
    (workdir / 'saved_model' / 'README.txt').write_text('notes')
    before = _files(workdir)
    result = _train(f'--workdir={workdir}', *TINY, importtime=True)
    assert result.returncode == 1
    assert _messages(result) == [
        f"Error: workdir '{workdir}' holds files but no run (it has no config.json): "
        'metrics.json, saved_model. A run would write over them; choose a new or empty --workdir.'
    ]
    assert not _imported_tensorflow(result)
    assert _files(workdir) == before


@pytest.mark.skipif(not os.path.isdir('/sys'), reason='needs /sys, which no one can write in')
def test_an_export_dir_that_cannot_be_written_is_refused_before_training(tmp_path):
    # The handed case: `--export_dir=/sys/foo` trained the whole run, then printed "Error: 1".
    result = _train(
        f'--workdir={tmp_path / "run"}', '--export_dir=/sys/foo', *TINY, importtime=True
    )
    assert result.returncode == 1
    [line] = _messages(result)
    assert re.fullmatch(
        r"Error: Cannot write to export_dir '/sys/foo': no directory can be made in '/sys' "
        r'\(\[Errno \d+\] [^/]+\)\.',
        line,
    )
    assert not _imported_tensorflow(result)
    assert not (tmp_path / 'run').exists()


def test_help_lists_every_recipe_and_how_to_see_its_fields():
    result = _train('--help', importtime=True)
    assert result.returncode == 0, result.stderr
    for path in sorted(glob.glob(str(ROOT / 'configs' / '[!_]*.py'))):
        name = os.path.relpath(path, ROOT)
        with open(path) as f:
            summary = f.read().split('"""')[1].split('\n')[0]
        assert re.search(rf'^  {re.escape(name)} +{re.escape(summary)}$', result.stdout, re.M)
    assert '--print_config' in result.stdout
    assert '--config.FIELD=VALUE' in result.stdout
    assert 'tfp_flows_runs' in result.stdout  # Where a run writes by default.
    assert not _imported_tensorflow(result)


def test_print_config_shows_the_resolved_fields_and_exits(tmp_path):
    result = _train(
        '--config=configs/realnvp_moons.py',
        '--config.train.epochs=3',
        f'--workdir={tmp_path / "new"}',
        '--print_config',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('# configs/realnvp_moons.py, with the command line overrides')
    assert re.search(r"^data\.name +'moons' +\[run\] +'digits', a 2-D toy", result.stdout, re.M)
    assert re.search(r'^train\.epochs +3 +\[training\] +Epochs to train\.$', result.stdout, re.M)
    assert re.search(r'^train\.intra_op_threads +1 +Threads one op', result.stdout, re.M)
    assert not (tmp_path / 'new').exists()


def test_print_config_of_a_rerun_shows_the_runs_own_config(tiny_run):
    workdir = tiny_run
    before = _files(workdir)
    result = _train(
        f'--workdir={workdir}', '--config.train.learning_rate=0.0005', '--print_config',
        importtime=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f'# {workdir}/config.json, with the command line overrides')
    assert re.search(rf'^train\.epochs +{EPOCHS} +\[training\]', result.stdout, re.M)
    assert re.search(r'^model\.hidden_channels +8 +\[run\]', result.stdout, re.M)
    assert re.search(r'^train\.learning_rate +0\.0005 +\[training\]', result.stdout, re.M)
    assert not _imported_tensorflow(result)
    assert _files(workdir) == before


def test_print_config_into_a_pipe_that_closes_early_ends_quietly(tmp_path):
    command = shlex.join(processes.train_command('--print_config', f'--workdir={tmp_path}/new'))
    result = subprocess.run(
        f'{command} | head -1',
        shell=True,
        cwd=ROOT,
        env=processes.user_env(),
        capture_output=True,
        text=True,
    )
    assert result.stdout.startswith('# configs/default.py, with the command line overrides.')
    assert result.stderr == ''


def test_none_on_the_command_line_is_none_for_every_field_that_takes_it():
    # absl parses a field's value by the recipe's type: it could not read None into a number
    # field (`--config.train.ema_momentum=None` was refused as "must be None or ...").
    optional = [key for key, field in schema.FIELDS.items() if field.domain.contains(None)]
    assert {'train.ema_momentum', 'model.preprocessing', 'data.image_size'} < set(optional)
    for recipe in ('default', 'realnvp_table', 'logistic_mixture_digits'):
        path = f'--config={ROOT / "configs" / recipe}.py'
        for key in optional:
            for given in ([f'--config.{key}=None'], [f'--config.{key}', 'None']):
                config, overrides = _resolved(path, *given)
                assert _field(config, key) is None and overrides == {key: None}, (recipe, key)
    path = f'--config={ROOT / "configs" / "logistic_mixture_digits.py"}'  # The handed case.
    config, _ = _resolved(path, '--config.train.ema_momentum=None')
    assert config.train.ema_momentum is None and config.model.dropout_rate == 0.15
    later = ('--config.train.ema_momentum=None', '--config.train.ema_momentum=0.5')
    assert _resolved(path, *later)[0].train.ema_momentum == 0.5  # The last value wins.
    assert _resolved(path, *reversed(later))[0].train.ema_momentum is None


def _field(config, key):
    return functools.reduce(lambda node, name: node[name], key.split('.'), config)


def test_the_default_workdir_cannot_shadow_the_package(tmp_path):
    workdir = pathlib.Path(cli.default_workdir('configs/glow_mnist.py'))
    assert workdir == pathlib.Path(tempfile.gettempdir(), 'tfp_flows_runs', 'glow_mnist')
    assert 'tfp_flows' not in workdir.parts
    (tmp_path / workdir.relative_to(tempfile.gettempdir())).mkdir(parents=True)
    result = subprocess.run(  # Python started where the runs are: the package still loads.
        [sys.executable, '-c', 'import tfp_flows; print(tfp_flows.__version__)'],
        cwd=tmp_path,
        env=processes.user_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_plain_pytest_collects_the_tests_that_import_configs():
    """`pytest` (not `python -m pytest`) has no repository root on sys.path of its own.

    test_workdir.py imports `configs` and the test helpers (`scripts`) at its top; without the
    conftest files, collecting it loads no TensorFlow."""
    env = {key: value for key, value in processes.user_env().items() if key != 'PYTHONPATH'}
    result = subprocess.run(
        [sys.executable, '-P', '-m', 'pytest', '--collect-only', '-q', '-p', 'no:cacheprovider']
        + ['--noconftest', 'tests/run/test_workdir.py'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r'\d+ tests collected', result.stdout)


def test_a_missing_recipe_is_named():
    result = _train('--config=missing.py', importtime=True)
    assert result.returncode == 2
    assert _messages(result) == ['Error: --config=missing.py: no such recipe file; see --help.']
    assert not _imported_tensorflow(result)


@contextlib.contextmanager
def _train_py_flags(*argv):
    """train.py's flags parser on `argv` in this process: yields {name: flag} of the flags
    train.py defined (removed from absl's FLAGS after); `SystemExit` where train.py exits."""
    before = set(flags.FLAGS)
    try:
        with mock.patch.object(sys, 'argv', ['train.py', *argv]):
            runpy.run_path(str(ROOT / 'train.py'))  # Reads the overrides if --config is not given.
            cli.make_flags_parser(str)(sys.argv)
        yield {name: flags.FLAGS[name] for name in set(flags.FLAGS) - before}
    finally:
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()


def _parsed(*argv):
    with _train_py_flags(*argv) as parsed:
        return parsed


def _resolved(*argv):
    """(config, overrides) train.py runs with for `argv` (`cli.config_from_flags`)."""
    with _train_py_flags(*argv) as parsed:
        return cli.config_from_flags(parsed['config'])


def test_every_number_field_refuses_a_word_naming_its_domain(capsys):
    # absl parses an int or float field's value by the default's type; its error is ours.
    numbers = [
        (key, field)
        for key, field in schema.FIELDS.items()
        if type(field.default) in (int, float) or field.kind in (int, float)
    ]
    assert ('model.mixture_components', schema.FIELDS['model.mixture_components']) in numbers
    for key, field in numbers:
        with pytest.raises(SystemExit) as exit:
            _parsed(f'--config.{key}=abc')
        assert exit.value.code == cli.USAGE_ERROR, key
        expected = f"Error: `--config.{key}` must be {field.domain.description}; got 'abc'.\n"
        assert capsys.readouterr().err == expected


def test_every_bool_field_and_flag_refuses_a_non_bool_naming_what_it_takes(capsys):
    own = sorted(name for name, flag in _parsed().items() if flag.boolean and name != 'config')
    fields = [
        f'config.{key}' for key, field in schema.FIELDS.items() if field.domain is checks.BOOL
    ]
    assert own == ['print_config'] and 'config.model.loop' in fields
    for recipe in (None, *sorted(glob.glob(str(ROOT / 'configs' / 'glow_*.py')))):
        config = () if recipe is None else (f'--config={recipe}',)  # None: read at definition.
        for name in (*fields, *own):
            with pytest.raises(SystemExit) as exit:
                _parsed(*config, f'--{name}=2')
            assert exit.value.code == cli.USAGE_ERROR, (recipe, name)
            assert capsys.readouterr().err == (
                f'Error: `--{name}` must be True or False (on the command line also true, false, '
                f"t, f, 1 or 0); got '2'.\n"
            )
            with pytest.raises(SystemExit):  # absl's --noNAME takes no value.
                _parsed(*config, f'--no{name}=2')
            assert capsys.readouterr().err == (
                f"Error: `--no{name}` takes no value (it sets `--{name}=False`); got '2'.\n"
            )
    recipe = f'--config={ROOT / "configs" / "glow_digits.py"}'
    for word, value in (('1', True), ('0', False), ('TRUE', True), ('f', False)):
        parsed = _parsed(recipe, f'--config.model.loop={word}', f'--print_config={word}')
        assert parsed['config'].value.model.loop is value and parsed['print_config'].value is value
