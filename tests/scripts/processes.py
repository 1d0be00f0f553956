"""Runs this repository's scripts as subprocesses in tests: timeouts, logs, no leftovers.

`Processes` starts commands with their output in log files (a pipe nobody reads would fill
and block the child) and, on leaving its `with` block, kills whatever is still running, so a
failed or timed-out test leaves no process behind. Failures quote the end of the child's
stderr.
"""

import ast
import importlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

# A model small enough to train an epoch of digits in seconds (see tests/test_experiment.py).
TINY_FLAGS = (
    '--config.model.num_levels=2',
    '--config.model.num_steps=1',
    '--config.model.hidden_channels=8',
    '--config.dequantizer.num_steps=2',
    '--config.dequantizer.hidden_channels=4',
    '--config.dequantizer.context_channels=2',
    '--config.eval.iw_samples=0',
    '--config.train.warmup_steps=5',
    '--config.train.sample_every_epochs=100',
)

# The class-conditional digits recipe made tiny, with EMA weights, dropout and gradient
# accumulation, for 4 epochs: tests/run/conftest.py's `script_run`, which is also the unbroken
# run that tests/run/test_kill_resume.py's resumed run must end as.
SCRIPT_EPOCHS = 4
SCRIPT_FLAGS = (
    f'--config={ROOT / "configs" / "glow_digits_conditional.py"}',
    *TINY_FLAGS,
    f'--config.train.epochs={SCRIPT_EPOCHS}',
    '--config.train.ema_momentum=0.9',
    '--config.model.dropout_rate=0.1',
    '--config.train.accumulation_steps=2',
)


def default_config(*flags):
    """The config `python train.py FLAGS` runs with (the default recipe, or a
    `--config=configs/NAME.py` flag's, and `--config.SECTION.KEY=VALUE` flags), for the same run
    in this process."""
    recipe = next((f.removeprefix('--config=') for f in flags if f.startswith('--config=')), None)
    recipe = pathlib.Path(recipe).stem if recipe else 'default'
    config = importlib.import_module(f'configs.{recipe}').get_config()
    for flag in (f for f in flags if not f.startswith('--config=')):
        path, value = flag.removeprefix('--config.').split('=')
        section, key = path.split('.')
        current = config[section][key]
        if isinstance(current, bool):
            value = value.lower() in ('true', 't', '1')
        else:  # A field whose default is None takes the literal (a number here).
            value = ast.literal_eval(value) if current is None else type(current)(value)
        config[section][key] = value
    return config


def train_command(*flags):
    """The command line of `python train.py FLAGS`."""
    return [sys.executable, str(ROOT / 'train.py'), *flags]


class CommandFailed(Exception):
    """A command exited with an error; the message is the end of its stderr."""


def run(command, timeout):
    """Runs `command` to the end; returns its stdout, or raises `CommandFailed`."""
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_env()
    )
    if result.returncode != 0:
        raise CommandFailed(f'exit code {result.returncode}: {result.stderr[-3000:]}')
    return result.stdout


_PORTS_GIVEN = set()


def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago, each given out once.

    A started worker binds its port only after importing TensorFlow, so a port given to one
    cluster could look free to the next; this process never gives out the same port twice.
    """
    ports = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            ports.append(port)
    return ports


def tf_config(ports, index):
    """The `TF_CONFIG` of worker `index` of a cluster of workers on 127.0.0.1:`ports`."""
    cluster = {'worker': [f'127.0.0.1:{port}' for port in ports]}
    return json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})


def _env(**extra):
    """This environment without `TF_CONFIG`, quieter TF logs, this repository first on
    PYTHONPATH (a script outside it, such as activation_memory.py, imported the installed
    tfp_flows, which may be another checkout's), and `extra`."""
    env = {key: value for key, value in os.environ.items() if key != 'TF_CONFIG'}
    path = os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')]))
    env.update({'TF_CPP_MIN_LOG_LEVEL': '2', 'PYTHONUNBUFFERED': '1', 'PYTHONPATH': path, **extra})
    return env


def user_env(**extra):
    """This environment as a user's shell gives it to `train.py`: no `TF_CONFIG`, no
    `TF_CPP_MIN_LOG_LEVEL` (train.py's own default), this repository on PYTHONPATH."""
    drop = ('TF_CONFIG', 'TF_CPP_MIN_LOG_LEVEL')
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED='1', **extra)
    return env


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Process:
    """A started command whose stdout and stderr go to `log_dir/NAME.out` and `.err`."""

    def __init__(self, name, command, log_dir, **env):
        self.name = name
        self._out = pathlib.Path(log_dir) / f'{name}.out'
        self._err = pathlib.Path(log_dir) / f'{name}.err'
        with open(self._out, 'w') as out, open(self._err, 'w') as err:
            self.popen = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=out,
                stderr=err,
                env=_env(**env),
                # Ctrl-C reaches the command as in a terminal, also when the tests themselves
                # run in the background (`pytest &` ignores SIGINT, and children inherit that).
                preexec_fn=_default_sigint,
            )

    @property
    def stdout(self):
        return self._out.read_text()

    @property
    def stderr(self):
        return self._err.read_text()

    def report(self):
        """The end of stdout and stderr, to quote in a failure."""
        return f'--- {self.name} stdout:\n{self.stdout[-2000:]}\n--- stderr:\n{self.stderr[-4000:]}'

    def wait(self, timeout):
        """Waits for the exit; kills the process and fails after `timeout` seconds."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f'{self.name} ran over {timeout} s.\n{self.report()}') from None
        return self

    def check(self, timeout):
        """Waits for the exit and fails unless the exit code is 0; returns stdout."""
        code = self.wait(timeout).popen.returncode
        assert code == 0, f'{self.name} exited with {code}.\n{self.report()}'
        return self.stdout


def check_all(started, timeout):
    """Waits for all of `started` to exit with code 0; returns their stdouts.

    Fails as soon as one exits with an error (workers of one cluster would otherwise wait
    for it until the timeout), and after `timeout` seconds; either way it kills the rest.
    """
    deadline = time.monotonic() + timeout
    while any(process.popen.poll() is None for process in started):
        failed = [p for p in started if p.popen.returncode not in (None, 0)]
        if failed or time.monotonic() > deadline:
            for process in started:
                if process.popen.poll() is None:
                    process.popen.kill()
                    process.popen.wait()
            reports = '\n'.join(process.report() for process in started)
            problem = f'{failed[0].name} failed' if failed else f'ran over {timeout} s'
            raise AssertionError(f'{problem}.\n{reports}')
        time.sleep(0.2)
    return [process.check(timeout=1) for process in started]


class Processes:
    """A `with` block that starts `Process`es and kills those still running when it ends."""

    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.started = []

    def start(self, name, command, **env):
        process = Process(name, command, self.log_dir, **env)
        self.started.append(process)
        return process

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for process in self.started:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait()
