"""Small helpers every layer shares: atomic writes, timestamps, one-line errors, row chunks,
worker counts and the ``ogad`` logger. Torch-free; nothing here knows about runs or models."""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: the package logger; the CLI installs its handler (``ogad: message`` on stderr)
log = logging.getLogger("ogad")

#: rows are processed in chunks of about this many bytes (float64 working copies)
CHUNK_BYTES = 64 * 2**20


def utc_now(timespec: str = "seconds") -> str:
    """The current UTC time in ISO 8601 (e.g. ``2026-11-30T19:37:04+00:00``)."""
    return datetime.now(UTC).isoformat(timespec=timespec)


def one_line(err: object, limit: int = 200) -> str:
    """The first non-empty line of an error or message (the type name when it has no text)."""
    text = str(err)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__ if isinstance(err, BaseException) else ""
    return lines[0][:limit]


def folded(text: object, limit: int = 2000) -> str:
    """A message as one line: its lines joined with `` / ``, control characters (a NUL byte,
    an escape sequence) shown escaped, cut at ``limit`` characters."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    joined = " / ".join(lines)
    shown = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in joined)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def last_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of a tool's output (where pip and friends put the reason)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[-1][:limit] if lines else ""


def row_chunks(n_rows: int, row_bytes: int, chunk_bytes: int | None = None) -> Iterator[slice]:
    """Consecutive slices covering ``n_rows`` rows of ``row_bytes`` each, about ``chunk_bytes``
    (default ``CHUNK_BYTES``) per slice and at least one row: the one row-chunking helper."""
    size = max(1, (CHUNK_BYTES if chunk_bytes is None else chunk_bytes) // max(1, row_bytes))
    return (slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size))


def worker_count(cap: int = 8) -> int:
    """Processes or threads to use: the CPUs this process may run on, at most ``cap``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, cap))


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """``os.pwrite`` all of ``data`` at ``offset``, or raise: a short count (a full disk, a file
    size limit) is continued, and a write that makes no progress is ``OSError(ENOSPC)``."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done += n


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``os.write`` all of ``data`` (short counts continued; no progress is ENOSPC)."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        n = os.write(fd, view[done:])
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done += n


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _atomic_target(path: Path, mode: str) -> Iterator[tuple[IO[Any], Path]]:
    """A temporary file beside ``path``; renamed over it (with the umask's mode) on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: honour the user's umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``."""
    with _atomic_target(Path(path), "wb") as (fh, _):
        if fh.write(data) != len(data):  # buffered files retry; a short count is a failure
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def write_with_atomic(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` to fill a temporary file, then rename it over ``path``.

    For writers that want a path rather than an open file (parquet, ``torch.save``, PNG).
    """
    with _atomic_target(Path(path), "wb") as (_, tmp):
        writer(tmp)


def write_table_atomic(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a DataFrame as parquet (pyarrow, no index) atomically."""
    write_with_atomic(path, lambda tmp: df.to_parquet(tmp, engine="pyarrow", index=False))


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.INFO)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@contextmanager
def captured_log() -> Iterator[list[str]]:
    """Collect the ``ogad`` logger's messages (INFO and up) into a list while the block runs."""
    lines: list[str] = []
    handler = _ListHandler(lines)
    level = log.level
    log.addHandler(handler)
    log.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


#: source files of the user's code imported by :func:`import_callable` (models, transforms,
#: detectors): the CLI names a failure raised inside them as the user's, not as a bug
USER_CODE_FILES: set[str] = set()


def user_code_frame(err: BaseException) -> str | None:
    """``file:line`` of the innermost frame of ``err``'s traceback in the user's code, or None."""
    import traceback

    found = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) in USER_CODE_FILES:
            found = f"{Path(frame.filename).name}:{frame.lineno}"
    if found is None:  # re-raised from a DataLoader worker: its traceback is in the text
        text = str(err)
        found = next((Path(f).name for f in sorted(USER_CODE_FILES) if f in text), None)
    return found


def import_user_module(module_name: str) -> Any:
    """Import ``module_name`` (``pkg.module``) as the user's code, as ``--model``,
    ``--detector`` and ``--issue-type`` do: the current folder is searched too, and the
    module's file joins :data:`USER_CODE_FILES` (a failure raised in it is named by
    file:line). Raises whatever the import raises."""
    import importlib
    import sys

    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    module = importlib.import_module(module_name)
    _add_user_file(getattr(module, "__file__", None))
    return module


def _add_user_file(where: str | None) -> None:
    """Count ``where`` as the user's code, unless it is one of ogad's own files (a class of
    ours named by import path: a bug in it stays a bug) or an installed package's."""
    if not where:
        return
    path = Path(where).resolve()
    if Path(__file__).resolve().parent not in path.parents and not _installed(path):
        USER_CODE_FILES.add(str(path))


#: folders that hold installed packages (pip's, a Linux distribution's)
INSTALLED_FOLDERS = ("site-packages", "dist-packages")


def _installed(path: Path) -> bool:
    """Whether the (resolved) file ``path`` belongs to an installed package or the standard
    library (a module of a package named as a plugin, ``sklearn.ensemble._iforest``): an
    error raised in it is not the user's to fix at that file:line."""
    import sysconfig

    if any(part in INSTALLED_FOLDERS for part in path.parts):
        return True
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    roots = {Path(sysconfig.get_path(key)).resolve() for key in keys}
    return any(root in path.parents for root in roots)


def import_callable(spec: str, *, what: str, error: type[Exception]) -> Any:
    """The callable ``spec`` names: ``pkg.module:name`` or ``path/to/file.py:name``.

    Args:
        what: how errors name the option (``--model``, `transform`).
        error: the exception type raised, with one clear line, when it cannot be imported.
    """
    import importlib
    import importlib.util
    import sys

    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise error(f"{what} must be module:callable, got {spec!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            if not path.is_file():
                raise error(f"{what}: file not found: {path}")
            found = importlib.util.spec_from_file_location(path.stem, path)
            if found is None or found.loader is None:
                raise error(f"{what}: cannot import {path}")
            module = importlib.util.module_from_spec(found)
            sys.modules[path.stem] = module
            found.loader.exec_module(module)
        else:
            module = import_user_module(module_name)
    except error:
        raise
    except (Exception, SystemExit) as err:  # sys.exit() at import is a failure too
        raise error(f"{what} {spec}: cannot import {module_name}: {one_line(err)}") from None
    _add_user_file(getattr(module, "__file__", None))
    obj = getattr(module, attr, None)
    if obj is None or not callable(obj):
        raise error(f"{what} {spec}: {module_name} has no callable {attr!r}")
    return obj
