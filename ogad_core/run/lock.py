"""An exclusive lock per run directory for the writing commands (compute, score, map, evaluate).

The lock is a POSIX record lock (``fcntl.lockf``) on ``DIR/.ogad.lock``: the kernel releases it
when the holder exits, however it exits (crash, ``kill -9``), so a lock is never stale. A POSIX
lock belongs to the process, not to the open file: the DataLoader workers a compute forks do not
hold it, so a killed compute's run is free at once, not when its workers notice (``flock`` would
be held by every child that inherited the descriptor). The file
keeps the holder's pid, host, command and start time so that a second writer is told who holds
the run. Readers (the dashboard, ``ogad export``) never take the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ogad_core._internal import pwrite_all, utc_now
from ogad_core.errors import RunDirError

_held: dict[Path, int] = {}  # lock files this process holds (re-entrant per process)


def _holder_text(fd: int) -> str:
    """The holder named in an open lock file, e.g. ``ogad compute (pid 12, host h, since T)``."""
    try:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        info = json.loads(raw)
        return (
            f"ogad {info.get('command', '?')} (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, since {info.get('started', '?')})"
        )
    except (OSError, ValueError, AttributeError):
        return "another ogad process"


def _write_holder(fd: int, command: str) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "argv": sys.argv[1:],
        "started": utc_now(),
    }
    try:  # who holds the lock is shown to others; a full disk must not stop the holder
        os.ftruncate(fd, 0)
        pwrite_all(fd, json.dumps(info).encode("utf-8"), 0)
    except OSError:
        pass


def _open_lock_file(run_path: Path, path: Path) -> int:
    """Open (or create) the lock file without following a symbolic link, and refuse anything
    but a regular file: a link planted there must never make a writer truncate its target."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        run_path.mkdir(parents=True, exist_ok=True)
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):  # a link or device is never even opened
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise RunDirError(_not_regular(path, what))
    except FileNotFoundError:
        pass
    except OSError as err:
        raise RunDirError(f"cannot lock {run_path}: {err.strerror}") from None
    try:
        fd = os.open(path, flags, 0o666)  # mode honours the umask; O_NONBLOCK: a FIFO never hangs
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RunDirError(_not_regular(path, "a symbolic link")) from None
        if err.errno in (errno.EISDIR, errno.ENXIO):
            raise RunDirError(_not_regular(path, "not a regular file")) from None
        raise RunDirError(f"cannot lock {run_path}: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RunDirError(_not_regular(path, "not a regular file"))
    os.set_blocking(fd, True)
    return fd


def _not_regular(path: Path, what: str) -> str:
    return (
        f"the lock file {path} is {what}; ogad never writes through it: remove it "
        f"(`rm {path}`) and run the command again"
    )


@contextmanager
def run_lock(
    run_dir: str | os.PathLike[str], command: str, *, create: bool = False
) -> Iterator[Path]:
    """Hold the run directory's exclusive lock for the ``with`` block; yields the lock file.

    A second writer (another process) gets one ``RunDirError`` naming the holder; nesting in
    one process is allowed.

    Args:
        run_dir: the run directory.
        command: what holds it (``compute``, ``score``, ``map``, ``evaluate``), shown to others.
        create: create the run directory when missing (``compute``); else a missing one, or
            a folder that holds neither a manifest nor a lock file, is a RunDirError (and is
            left as it was).
    """
    from ogad_core.run.rundir import MANIFEST, RunDir

    rd = RunDir(run_dir)
    path = rd.lock_path
    if path in _held:
        yield path
        return
    if rd.path.exists() and not rd.path.is_dir():
        raise RunDirError(f"run directory {rd.path} is a file, not a folder")
    if not create and not rd.path.is_dir():
        raise RunDirError(f"run directory not found: {rd.path}")
    if not create and not (path.exists() or path.is_symlink() or rd.has_manifest()):
        # a folder that is no run gets no lock file (the loaders would take it for a run)
        raise RunDirError(f"not an ogad run directory (no {MANIFEST}): {rd.path}")
    fd = _open_lock_file(rd.path, path)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EAGAIN):
            os.close(fd)
            raise RunDirError(f"cannot lock {rd.path}: {err.strerror}") from None
        holder = _holder_text(fd)
        os.close(fd)
        raise RunDirError(
            f"{rd.path} is in use by {holder}; wait for it to finish "
            "(readers such as the dashboard and export are not affected)"
        ) from None
    _held[path] = fd
    try:
        _write_holder(fd, command)
        yield path
    finally:
        del _held[path]
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing releases the lock
