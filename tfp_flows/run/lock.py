"""The lock of a run's workdir: one run at a time works there.

`hold(workdir)` takes an exclusive `fcntl.flock` on `workdir/.lock`, which records the
holder's host and process id; another process is refused at once with `WorkdirInUse` naming
them. The kernel releases a flock when its process ends, so a killed run leaves nothing
stuck; a run that ends removes the file. Nothing here imports TensorFlow.
"""

import contextlib
import fcntl
import os
import socket

__all__ = ['NAME', 'WorkdirInUse', 'hold']

NAME = '.lock'
_HELD = set()  # The workdirs whose lock this process holds.


class WorkdirInUse(OSError):
    """Another process holds the workdir's lock: a run is working there."""


@contextlib.contextmanager
def hold(workdir):
    """Holds `workdir`'s lock while the block runs; the same process may enter it again.

    The workdir is made if it does not exist, and removed again at the end if the block wrote
    nothing into it. Raises `WorkdirInUse` naming the holder's host and pid.
    """
    workdir = os.path.abspath(workdir)
    if workdir in _HELD:
        yield
        return
    created = not os.path.isdir(workdir)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, NAME)
    with _locked_file(path) as f:
        f.truncate(0)
        f.write(f'host {socket.gethostname()}, pid {os.getpid()}')
        f.flush()
        _HELD.add(workdir)
        try:
            yield
        finally:
            _HELD.discard(workdir)
            os.remove(path)  # While locked: a process that opens it next makes a new one.
            if created:
                with contextlib.suppress(OSError):  # Not empty: the run wrote into it.
                    os.rmdir(workdir)


@contextlib.contextmanager
def _locked_file(path):
    """`path` opened and locked (made if missing); `WorkdirInUse` if another process holds it."""
    while True:
        with open(path, 'a+') as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read() or 'starting'
                raise WorkdirInUse(
                    f'workdir {os.path.dirname(path)!r} is in use by a run still working '
                    f'there ({holder}); wait for it to end, or pass another --workdir.'
                ) from None
            try:
                ours = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                ours = False  # Its holder removed it as we opened it: open it again.
            if ours:
                yield f
                return
