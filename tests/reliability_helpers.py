"""Real-world fault helpers for the reliability suites: a small tmpfs (a full disk), the `ogad`
command in a child process, a digits reference run. Tests that need root skip with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mount_error(where: Path, size: str) -> str | None:
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}"


@contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``"1m"``) mounted at ``where`` for the block (a disk that
    fills up for real); skips the test when it cannot be mounted."""
    where.mkdir(parents=True, exist_ok=True)
    problem = _mount_error(where, size)
    if problem:
        pytest.skip(problem)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow_disk(where: Path, size: str) -> None:
    """Give a mounted tmpfs more room (space is back)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def ogad(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """``python -m ogad_core.cli ARGS`` in a child process (this checkout's code)."""
    return subprocess.run(
        [sys.executable, "-m", "ogad_core.cli", *args],
        cwd=kwargs.pop("cwd", ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT), **kwargs.pop("env", {})},  # type: ignore[dict-item]
        capture_output=True,
        text=True,
        timeout=kwargs.pop("timeout", 600),
        **kwargs,  # type: ignore[arg-type]
    )


def error_lines(stderr: str) -> list[str]:
    """The non-empty lines a failed command printed."""
    return [ln for ln in stderr.splitlines() if ln.strip()]
