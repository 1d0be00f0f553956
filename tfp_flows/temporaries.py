"""Temporary directories that make a directory appear whole, and removing those a kill left.

An export writes into `.tmp-export-<host>-<pid>-<random>` beside its target and renames it
into place, so the target never holds a partial SavedModel. A process killed mid-write
leaves its temporary directory behind; the next export into the same parent removes it.
The name records who writes, so a directory another live process is writing is never taken
for a leftover. Nothing here imports TensorFlow.
"""

import os
import re
import shutil
import socket
import tempfile
import time

__all__ = ['PREFIX', 'remove_stale_temporaries', 'temporary_directory']

PREFIX = '.tmp-export-'
_LEGACY_STALE_SECONDS = 24 * 3600
_NAME = re.compile(rf'{re.escape(PREFIX)}([^-]+)-(\d+)-[^-]+')


def _host():
    return socket.gethostname().replace('-', '_').replace(os.sep, '_') or 'host'


def temporary_directory(parent):
    """Makes and returns a new private (mode 0700) directory `.tmp-export-<host>-<pid>-*`."""
    return tempfile.mkdtemp(dir=parent, prefix=f'{PREFIX}{_host()}-{os.getpid()}-')


def _process_alive(pid):
    if os.name != 'posix':  # os.kill(pid, 0) would signal the process on Windows.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Alive, owned by another user.
        return True
    return True


def _last_change(directory):
    times = [os.lstat(directory).st_mtime]
    for folder, names, files in os.walk(directory):
        times += [os.lstat(os.path.join(folder, name)).st_mtime for name in names + files]
    return max(times)


def remove_stale_temporaries(parent):
    """Removes the `.tmp-export-*` directories in `parent` that a killed process left.

    A directory is stale when its name gives this host and a process id that no longer runs;
    an id reused by a new process counts as running, so the directory is kept, and one named
    after another host (a shared file system) is never touched. A directory named by an
    earlier version, which did not record its process, is stale when nothing in it changed
    for a day. Nothing else in `parent` is looked at. Returns the paths removed.
    """
    removed = []
    if not os.path.isdir(parent):
        return removed
    for entry in os.scandir(parent):
        if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        match = _NAME.fullmatch(entry.name)
        if match:
            stale = match[1] == _host() and not _process_alive(int(match[2]))
        else:
            stale = time.time() - _last_change(entry.path) > _LEGACY_STALE_SECONDS
        if stale:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
