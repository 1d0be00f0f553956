"""The README's Python blocks run as written (STYLE.md: a test runs the README's code).

Each ```python block of README.md runs in a fresh namespace, in a temporary working directory,
so a block that writes files leaves nothing in the repository.
"""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).parents[1] / 'README.md'
BLOCKS = re.findall(r'```python\n(.*?)```', README.read_text(), re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize('index', range(len(BLOCKS)))
def test_a_readme_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f'README.md (python block {index + 1})', 'exec'), {})
