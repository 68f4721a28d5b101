"""The data behind the review dashboard: the run's table, the queue, the summary. Torch-free.

The dashboard pages are thin over this module: they pick options and draw what it returns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core.errors import RunDirError
from ogad_core.review.export import default_detector
from ogad_core.review.store import CONFIRMED, DECISIONS, RELABELED, UNREVIEWED
from ogad_core.run.rundir import RunDir

STATUSES: tuple[str, ...] = (UNREVIEWED, *DECISIONS)
LONG_TEXT_CHARS = 400
CARD_IMAGE_PX = 160
_FEATURE_RE = re.compile(r"\s*([^=,]+?)\s*=\s*([^,]+?)\s*(?:,|$)")


@dataclass
class RunView:
    """What the dashboard needs of a run, read once (re-read when the files change).

    ``table`` has one row per sample (sample_id order): sample_id, ref, label, label_name, pred,
    pred_name, confidence, loss, is_flipped (bool, False when unknown), truncated (bool),
    ``{D}_score`` / ``{D}_rank`` per detector, x / y (NaN without a map).
    """

    path: Path
    manifest: dict[str, Any]
    kind: str
    label_names: list[str]
    table: pd.DataFrame
    detectors: list[str]
    has_map: bool
    noise_known: bool
    notes: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return len(self.table)

    @property
    def default_detector(self) -> str | None:
        return default_detector(self.detectors)


def run_files_stamp(run_dir: str | os.PathLike[str]) -> tuple:
    """(name, mtime_ns, size) of the run's tables: a cache key that changes when they change."""
    run = RunDir(run_dir)
    stamp = []
    for path in (run.manifest_path, run.samples_path, run.scores_path, run.map_path):
        try:
            st = path.stat()
            stamp.append((path.name, st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((path.name, None, None))
    return tuple(stamp)


def load_run_view(run_dir: str | os.PathLike[str]) -> RunView:
    """Read manifest, samples, scores and map; RunDirError when the run cannot be shown at all.

    A run without scores or map yet is still shown (``notes`` says what is missing).
    """
    if not str(run_dir).strip():
        raise RunDirError(
            "no run directory given: start with `ogad dashboard DIR` or set OGAD_RUN_DIR"
        )
    run = RunDir(run_dir)
    manifest = run.read_manifest()
    notes: list[str] = []
    if manifest.get("status") != "complete":
        pending = [s for s, v in manifest.get("steps", {}).items() if v.get("status") != "done"]
        detail = f" (steps not done: {', '.join(pending)})" if pending else ""
        notes.append(
            f"This run is incomplete{detail}; showing what it has. "
            f"Finish it with `ogad compute` on the same run directory."
        )
    data = manifest.get("data", {})
    names = [str(n) for n in data.get("label_names", [])]
    if not names:
        raise RunDirError(f"{run.manifest_path} lists no label_names")
    if not run.samples_path.is_file():
        raise RunDirError(
            f"{run.path} has no samples yet (samples.parquet); run `ogad compute` first"
        )
    samples = run.read_samples()
    missing = {"sample_id", "ref", "label", "pred", "confidence"} - set(samples.columns)
    if missing:
        raise RunDirError(f"{run.samples_path} lacks columns: {', '.join(sorted(missing))}")
    table = samples.sort_values("sample_id", kind="stable").reset_index(drop=True)
    table["sample_id"] = table["sample_id"].astype("int64")
    names_series = pd.Series(names, dtype="object")
    table["label_name"] = names_series.reindex(table["label"].to_numpy()).to_numpy()
    table["pred_name"] = names_series.reindex(table["pred"].to_numpy()).to_numpy()
    noise_known = "is_flipped" in table.columns
    table["is_flipped"] = table["is_flipped"].fillna(False).astype(bool) if noise_known else False
    table["truncated"] = (
        table["truncated"].fillna(False).astype(bool) if "truncated" in table.columns else False
    )
    if "loss" not in table.columns:
        table["loss"] = np.nan

    detectors = run.detectors()
    if detectors:
        scores = run.read_scores()
        keep = ["sample_id"] + [c for d in detectors for c in (f"{d}_score", f"{d}_rank")]
        table = table.merge(scores[keep], on="sample_id", how="left")
    else:
        notes.append(
            "No detector scores yet: the queue is ordered by training loss. "
            "Run `ogad score DIR` to rank by gradient outliers."
        )
    has_map = run.map_path.is_file()
    if has_map:
        coords = run.read_map()[["sample_id", "x", "y"]]
        table = table.merge(coords, on="sample_id", how="left")
    else:
        table["x"] = np.nan
        table["y"] = np.nan
        notes.append("No map yet: run `ogad map DIR` to draw the gradient map.")
    return RunView(
        path=run.path,
        manifest=manifest,
        kind=str(data.get("kind", "image")),
        label_names=names,
        table=table,
        detectors=detectors,
        has_map=has_map,
        noise_known=noise_known,
        notes=notes,
    )


def with_decisions(table: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """``table`` plus ``status`` (decision or unreviewed), ``new_label``, ``reviewer`` columns."""
    cur = decisions[["sample_id", "decision", "new_label", "reviewer"]].rename(
        columns={"decision": "status"}
    )
    out = table.merge(cur, on="sample_id", how="left")
    out["status"] = out["status"].fillna(UNREVIEWED).astype(str)
    out["new_label"] = out["new_label"].astype("Int64")
    return out


def order_column(view: RunView, detector: str | None) -> tuple[str, bool]:
    """(column, ascending) that orders the queue: the detector's rank, else loss descending."""
    if detector is not None and detector in view.detectors:
        return f"{detector}_rank", True
    return "loss", False


def build_queue(
    view: RunView,
    table: pd.DataFrame,
    *,
    detector: str | None,
    classes: list[int] | None = None,
    top_k: int | None = None,
    min_score: float | None = None,
    selected_ids: list[int] | None = None,
    show_reviewed: bool = False,
) -> pd.DataFrame:
    """The review queue: rows of ``table`` (with decisions) in ranking order.

    Filters, in order: given label in ``classes``; the ``top_k`` best ranked of those; score at
    least ``min_score``; sample_id in ``selected_ids`` (map selection); unreviewed only unless
    ``show_reviewed``. Reviewed samples keep their place, so showing them does not move others.
    """
    column, ascending = order_column(view, detector)
    queue = table
    if classes:
        queue = queue[queue["label"].isin(classes)]
    queue = queue.sort_values([column, "sample_id"], ascending=[ascending, True], kind="stable")
    if top_k is not None and top_k > 0:
        queue = queue.head(top_k)
    if min_score is not None and detector is not None and detector in view.detectors:
        queue = queue[queue[f"{detector}_score"] >= min_score]
    if selected_ids is not None:
        queue = queue[queue["sample_id"].isin(selected_ids)]
    if not show_reviewed:
        queue = queue[queue["status"] == UNREVIEWED]
    return queue


def page_of(queue: pd.DataFrame, page: int, per_page: int) -> tuple[pd.DataFrame, int, int]:
    """(rows of page ``page`` (0-based, clamped), that page index, number of pages ≥ 1)."""
    n_pages = max(1, -(-len(queue) // per_page))
    page = min(max(0, page), n_pages - 1)
    return queue.iloc[page * per_page : (page + 1) * per_page], page, n_pages


def summary_tables(view: RunView, table: pd.DataFrame) -> dict[str, Any]:
    """Counts and flag precision.

    Returns:
        counts: {status: n} for all four statuses.
        by_class: DataFrame, index = given label names, columns = statuses (+ total).
        precision: None without known noise, else {confirmed: (hits, n), relabeled: (hits, n),
            acted: (hits, n)} where hits counts samples that really were flipped.
        n_flipped: flipped samples in the run (None without known noise).
    """
    counts = {s: int((table["status"] == s).sum()) for s in STATUSES}
    by_class = (
        pd.crosstab(
            pd.Categorical(table["label_name"], categories=view.label_names),
            pd.Categorical(table["status"], categories=list(STATUSES)),
            dropna=False,
        )
        .rename_axis(index="given label", columns=None)
        .astype(int)
    )
    by_class["total"] = by_class.sum(axis=1)
    precision = None
    n_flipped = None
    if view.noise_known:
        flipped = table["is_flipped"].astype(bool)
        n_flipped = int(flipped.sum())
        precision = {}
        for name, mask in (
            (CONFIRMED, table["status"] == CONFIRMED),
            (RELABELED, table["status"] == RELABELED),
            ("acted", table["status"].isin([CONFIRMED, RELABELED])),
        ):
            precision[name] = (int((mask & flipped).sum()), int(mask.sum()))
    return {"counts": counts, "by_class": by_class, "precision": precision, "n_flipped": n_flipped}


# ---- card contents ---------------------------------------------------------------------
def load_card_image(run: RunDir, ref: str, *, size: int = CARD_IMAGE_PX) -> tuple[Any, str | None]:
    """(PIL image upscaled to about ``size`` px, None) or (None, a message why not).

    The run's thumbnail of the ref is preferred (never a multi-megapixel original); otherwise
    only files inside the run's data folders are opened (RunDir.resolve_ref). Small images are
    upscaled with nearest-neighbour so pixels stay sharp; large ones are shrunk to fit.
    """
    from PIL import Image, UnidentifiedImageError

    thumb = run.thumbnail_path(str(ref))
    path = thumb if thumb.is_file() else run.resolve_ref(str(ref))
    if path is None:
        return None, "image not shown: its path is outside the run's data folders"
    if not path.is_file():
        return None, f"image missing: {Path(str(ref)).name}"
    try:
        with Image.open(path) as img:
            img.load()
            picture = img.convert("RGB") if img.mode not in ("L", "RGB", "RGBA") else img.copy()
    except (UnidentifiedImageError, OSError, ValueError):
        return None, f"image unreadable (not a valid image file): {Path(str(ref)).name}"
    w, h = picture.size
    if w == 0 or h == 0:
        return None, f"image is empty: {Path(str(ref)).name}"
    scale = size / max(w, h)
    if scale >= 2:
        factor = round(scale)
        picture = picture.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    elif scale < 1:
        picture = picture.resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS
        )
    return picture, None


def text_preview(text: str, limit: int = LONG_TEXT_CHARS) -> tuple[str, bool]:
    """(the text or its first ``limit`` characters + an ellipsis, whether it was folded)."""
    text = str(text)
    if len(text) <= limit:
        return text, False
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip() + " …", True


def parse_features(ref: str) -> dict[str, str] | None:
    """``"x1=0.1, x2=-0.5"`` → {"x1": "0.1", "x2": "-0.5"}; None when ref is not in that form."""
    text = str(ref)
    pairs = _FEATURE_RE.findall(text)
    if not pairs or "".join(f"{k}={v}" for k, v in pairs) != re.sub(r"[\s,]", "", text):
        return None
    return {k: v for k, v in pairs}


def ids_from_selection(selection: Any) -> list[int] | None:
    """Sample ids of the points picked on the map (plotly selection state), None for none.

    Each map point carries its sample id as ``customdata[0]``.
    """
    if not selection:
        return None
    points = selection.get("points") if hasattr(selection, "get") else None
    if not points:
        return None
    ids: list[int] = []
    for point in points:
        custom = point.get("customdata") if hasattr(point, "get") else None
        if custom is None:
            continue
        value = custom[0] if isinstance(custom, list | tuple) else custom
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            continue
    return sorted(set(ids)) if ids else None
