"""Writing a directory atomically, for `tfp_flows.export`: never a partial one at its path.

What is written goes into a temporary directory `.tmp-export-<host>-<pid>-<random>` beside the
target and is renamed into place (`atomic_directory`); the next write into the same parent
removes what a killed writer left (`remove_stale_temporaries`). No TensorFlow here.
"""

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time

__all__ = ['PREFIX', 'atomic_directory', 'remove_stale_temporaries', 'temporary_directory']

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
    """Removes the `.tmp-export-*` directories in `parent` that a killed process left; returns
    their paths.

    Stale: named with this host and a process id that no longer runs (a reused id counts as
    running; another host's, on a shared file system, is never touched), or named by an
    earlier version (which did not record its process) and unchanged for a day.
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


@contextlib.contextmanager
def atomic_directory(path, overwrite=False):
    """Yields a path (in a new private temporary directory beside `path`) to write a directory
    at; when the block ends, it is renamed to `path`, replacing a directory there only with
    `overwrite`. If the block or the renaming fails, `path` is left as it was. Raises
    `FileExistsError` if `path` exists without `overwrite`, or is a file.
    """
    path = os.path.abspath(os.fspath(path))
    exists = os.path.lexists(path)
    if exists and not overwrite:
        raise FileExistsError(
            f'{path} already exists; write to a new path, or pass overwrite=True to replace it.'
        )
    if exists and not os.path.isdir(path):
        raise FileExistsError(f'{path} exists and is not a directory; refusing to replace it.')
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temporaries(parent)  # Left by killed writers; never one still written.
    # A private (mode 0700) directory; what is written into a subdirectory of it gets the
    # usual permissions, and the replaced directory can be moved into it as well.
    temporary = temporary_directory(parent)
    try:
        written = os.path.join(temporary, 'written')
        yield written
        if exists:
            replaced = os.path.join(temporary, 'replaced')
            os.replace(path, replaced)
            try:
                os.replace(written, path)
            except BaseException:
                os.replace(replaced, path)
                raise
        else:
            os.replace(written, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
