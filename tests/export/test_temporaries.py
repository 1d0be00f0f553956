"""tfp_flows/temporaries.py: atomic directories; an export removes the leftovers of killed
exports, nothing else."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tfp_flows
from tfp_flows import temporaries
from tfp_flows.export import export_saved_model


def _dead_pid():
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def _make(parent, name, age_seconds=0):
    path = parent / name
    (path / 'saved_model' / 'variables').mkdir(parents=True)
    (path / 'saved_model' / 'saved_model.pb').write_bytes(b'partial')
    if age_seconds:
        then = time.time() - age_seconds
        for folder, _, files in os.walk(path):
            for name in files:
                os.utime(os.path.join(folder, name), (then, then))
            os.utime(folder, (then, then))
    return path


def test_an_export_removes_only_the_leftovers_of_dead_processes(tmp_path):
    host = socket.gethostname().replace('-', '_')
    dead = _make(tmp_path, f'.tmp-export-{host}-{_dead_pid()}-abc123')
    legacy_old = _make(tmp_path, '.tmp-export-x7k2m9p1', age_seconds=2 * 24 * 3600)
    kept = [
        _make(tmp_path, f'.tmp-export-{host}-{os.getpid()}-def456'),  # This live process.
        _make(tmp_path, f'.tmp-export-{host}-1-ghi789'),  # Another live process (init).
        _make(tmp_path, f'.tmp-export-otherhost-{_dead_pid()}-jkl012'),  # Another host's.
        _make(tmp_path, '.tmp-export-q8w3e5r7'),  # An earlier version's, changed recently.
        _make(tmp_path, 'results', age_seconds=2 * 24 * 3600),  # Not ours.
    ]
    (tmp_path / '.tmp-export-file').write_text('a file, not a directory')
    flow = tfp_flows.real_nvp(event_shape=(2,), num_steps=2, hidden_channels=4)
    export_saved_model(flow, tmp_path / 'model')
    assert not dead.exists() and not legacy_old.exists()
    assert all(path.exists() for path in kept)
    assert (tmp_path / '.tmp-export-file').exists()
    assert sorted(os.listdir(tmp_path)) == sorted(
        [path.name for path in kept] + ['.tmp-export-file', 'model']
    )


def test_a_temporary_directory_is_named_by_host_and_process(tmp_path):
    path = temporaries.temporary_directory(tmp_path)
    assert re.fullmatch(rf'\.tmp-export-[^-]+-{os.getpid()}-[^-]+', os.path.basename(path))
    assert temporaries.remove_stale_temporaries(tmp_path) == []  # Ours, and we run.
    assert temporaries.remove_stale_temporaries(tmp_path / 'missing') == []


def test_an_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    path = tmp_path / 'out'
    with temporaries.atomic_directory(path) as written:
        os.makedirs(written)
        (Path(written) / 'file').write_text('new')
        assert not path.exists()  # Not until the block ends.
    assert (path / 'file').read_text() == 'new'
    with pytest.raises(FileExistsError, match='already exists; .* pass overwrite=True'):
        with temporaries.atomic_directory(path):
            pass
    with pytest.raises(RuntimeError, match='failed'):
        with temporaries.atomic_directory(path, overwrite=True) as written:
            os.makedirs(written)
            raise RuntimeError('failed')
    assert (path / 'file').read_text() == 'new' and os.listdir(tmp_path) == ['out']
