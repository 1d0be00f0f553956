"""Every shell or Python example in a tfp_flows docstring runs in a test.

An example is an indented block of a docstring that parses as Python, or whose first line is
a command (`python`, `saved_model_cli`, `tensorboard`). Each found is run here, or named in
`ELSEWHERE` with the test that runs it; a new example fails `test_every_example_is_run`.
(The README's Python blocks run in tests/test_readme.py.)
"""

import ast
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.export import export_saved_model

PACKAGE = pathlib.Path(tfp_flows.__file__).parent
COMMANDS = ('python ', 'saved_model_cli ', 'tensorboard ')
# (module, the example's first line without its comment): the test file that runs it.
ELSEWHERE = {
    # Both commands of the block: the first as a subprocess, the second in-process.
    ('run/figures.py', 'python -m tfp_flows.run.figures --workdir=W --out=PNG'): (
        'tests/run/test_figures.py'
    ),
    # Beside the README's commands, on an export whose numbers it checks (one process less).
    ('export.py', 'saved_model_cli run --dir PATH --tag_set serve --signature_def log_prob \\'): (
        'tests/export/test_export.py'
    ),
}
HERE = {
    ('export.py', 'loaded = tf.saved_model.load(path)'): 'test_the_export_python_example_runs',
}


def _is_example(block):
    if block.lstrip().startswith(COMMANDS):
        return True
    try:
        tree = ast.parse(block)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Call) for node in ast.walk(tree))


def _examples():
    """{(module path, first line): the example's text, dedented} of every docstring."""
    examples = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                continue
            for block in re.split(r'\n\s*\n', ast.get_docstring(node) or ''):
                lines = block.splitlines()
                if not lines or not all(line.startswith('    ') for line in lines):
                    continue
                text = '\n'.join(line[4:] for line in lines)
                if _is_example(text):
                    module = path.relative_to(PACKAGE).as_posix()
                    examples[module, text.splitlines()[0].split('#')[0].strip()] = text
    return examples


def test_every_example_is_run():
    assert set(_examples()) == set(ELSEWHERE) | set(HERE)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    flow = tfp_flows.real_nvp((2,), num_steps=1, hidden_channels=8)
    path = export_saved_model(flow, tmp_path_factory.mktemp('export') / 'model')
    x = np.random.default_rng(0).normal(size=(4, 2)).astype('float32')
    return path, x, flow.log_prob(x).numpy()


def _example(name):
    (key,) = [key for key, test in HERE.items() if test == name]
    return _examples()[key]


def test_the_export_python_example_runs(exported):
    path, x, log_prob = exported
    scope = {'tf': tf, 'path': path, 'x': x}
    lines = _example('test_the_export_python_example_runs').splitlines()
    exec(lines[0], scope)  # noqa: S102 - the docstring's own example
    for line in lines[1:]:  # Each line an expression: its value checked.
        value = eval(line.split('#')[0], scope)  # noqa: S307
        if 'log_prob' in line:
            np.testing.assert_allclose(value['log_prob'] if 'sig' in line else value, log_prob)
        else:
            assert value.shape == (16, 2)
