"""Find damaged step outputs before ``ogad compute`` reuses a run, and set them aside.

A damaged output (unreadable JSON or parquet, truncated file) is renamed to ``NAME.damaged``
and its step is marked not done, so the pipeline recomputes it; each returns one line saying
what will be rebuilt. Gradient blocks are checked by :class:`~ogad_core.run.store.GradientStore`
itself and model checkpoints by the pipeline (torch). ``reviews.sqlite`` is never touched.

Torch-free.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from ogad_core.errors import RunDirError
from ogad_core.run.rundir import MAP, SAMPLES, SCORES, RunDir, table_problem

DAMAGED_SUFFIX = ".damaged"
#: the step each table belongs to
TABLE_STEPS = {SAMPLES: "predict", SCORES: "scores", MAP: "map"}


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``path.damaged`` (replacing an older one); returns the new path."""
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    os.replace(path, target)
    return target


def heal_manifest(rd: RunDir) -> str | None:
    """Set a damaged manifest.json (not UTF-8, not a JSON object) aside, so that the run is
    rebuilt in place; one line saying so, or None. A readable manifest of another schema
    version is left alone (the caller refuses it)."""
    if not rd.manifest_path.is_file():
        return None
    try:
        ok = isinstance(json.loads(rd.manifest_path.read_text(encoding="utf-8")), dict)
    except OSError as err:
        raise RunDirError(f"cannot read {rd.manifest_path}: {err.strerror}") from None
    except ValueError:  # UnicodeDecodeError, JSONDecodeError
        ok = False
    if ok:
        return None
    set_aside(rd.manifest_path)
    return (
        f"manifest.json was damaged (kept as manifest.json{DAMAGED_SUFFIX}); rebuilding "
        "the run from its files (reviews.sqlite is kept)"
    )


def heal_tables(rd: RunDir, steps: dict) -> list[str]:
    """Set damaged samples / scores / map tables aside and mark their steps not done.

    Args:
        steps: the manifest's ``steps`` mapping (changed in place).
    Returns:
        one line per table set aside.
    """
    lines = []
    for name, step in TABLE_STEPS.items():
        path = rd.path / name
        if not path.is_file():
            continue
        problem = table_problem(path)
        if problem is None:
            continue
        set_aside(path)
        steps.pop(step, None)
        lines.append(f"{name} was damaged ({problem}); rebuilding it")
    return lines


#: a temporary file of an atomic write (``_internal._atomic_target``): ``.NAME.XXXXXXXX.tmp``
TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")
#: temporaries younger than this may belong to a live reader (the dashboard writes evidence)
TEMPORARY_MIN_AGE_S = 120.0


def remove_stale_temporaries(rd: RunDir, *, min_age_s: float = TEMPORARY_MIN_AGE_S) -> int:
    """Remove the temporary files a killed atomic write left in the run (links not followed,
    files modified in the last ``min_age_s`` seconds kept); returns how many were removed."""
    removed = 0
    cutoff = time.time() - min_age_s
    for folder, _, files in os.walk(rd.path):
        for name in files:
            if not TEMPORARY.match(name):
                continue
            path = Path(folder) / name
            try:
                info = path.lstat()
                if info.st_mtime < cutoff and not path.is_symlink():
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed
