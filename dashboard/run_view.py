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
from ogad_core.run.manifest import data_kind
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
    orders: dict[tuple[str, bool], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n_samples(self) -> int:
        return len(self.table)

    @property
    def default_detector(self) -> str | None:
        return default_detector(self.detectors)


def run_files_stamp(run_dir: str | os.PathLike[str]) -> tuple:
    """(name, mtime_ns, size) of the run's tables: a cache key that changes when they change."""
    run = RunDir(run_dir)
    stamp: list[tuple[str, int | None, int | None]] = []
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
    notes = _incomplete_note(manifest)
    data = manifest.get("data", {})
    names = [str(n) for n in data.get("label_names", [])]
    if not names:
        raise RunDirError(f"{run.manifest_path} lists no label_names")
    table, noise_known = _samples_table(run, names)
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
    table, has_map = _with_map(run, table, notes)
    return RunView(
        path=run.path,
        manifest=manifest,
        kind=data_kind(data),
        label_names=names,
        table=table,
        detectors=detectors,
        has_map=has_map,
        noise_known=noise_known,
        notes=notes,
    )


def _incomplete_note(manifest: dict[str, Any]) -> list[str]:
    if manifest.get("status") == "complete":
        return []
    pending = [s for s, v in manifest.get("steps", {}).items() if v.get("status") != "done"]
    detail = f" (steps not done: {', '.join(pending)})" if pending else ""
    return [
        f"This run is incomplete{detail}; showing what it has. "
        f"Finish it with `ogad compute` on the same run directory."
    ]


def _samples_table(run: RunDir, names: list[str]) -> tuple[pd.DataFrame, bool]:
    """(samples.parquet in sample_id order with label names and the optional columns filled,
    whether it had ``is_flipped``)."""
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
    return table, noise_known


def _with_map(run: RunDir, table: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, bool]:
    """``table`` with the map's x, y (NaN and a note when there is no map yet)."""
    if run.map_path.is_file():
        coords = run.read_map()[["sample_id", "x", "y"]]
        return table.merge(coords, on="sample_id", how="left"), True
    table["x"] = np.nan
    table["y"] = np.nan
    notes.append("No map yet: run `ogad map DIR` to draw the gradient map.")
    return table, False


def _positions(sids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row positions of the ids ``wanted`` in the sorted id array ``sids``; unknown ids dropped."""
    pos = np.searchsorted(sids, wanted)
    ok = pos < len(sids)
    pos, wanted = pos[ok], wanted[ok]
    return pos[sids[pos] == wanted]


def status_codes(table: pd.DataFrame) -> np.ndarray:
    """(n,) int8 index into STATUSES of each row's status (0 = unreviewed)."""
    column = table["status"]
    if isinstance(column.dtype, pd.CategoricalDtype) and tuple(column.cat.categories) == STATUSES:
        return column.cat.codes.to_numpy()
    return pd.Categorical(column, categories=list(STATUSES)).codes


def with_decisions(table: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """``table`` plus ``status`` (decision or unreviewed), ``new_label``, ``reviewer`` columns.

    ``table`` must be in sample_id order (as :func:`load_run_view` gives it). The run's columns
    are shared, not copied (a shallow copy), and the three decision columns are written from the
    decided rows only: O(n) allocation plus O(decisions) work, cheap at a million rows. status
    and reviewer are categoricals (status categories = STATUSES; reviewer NaN when unreviewed);
    new_label is nullable Int64.
    """
    out = table.copy(deep=False)
    n = len(out)
    sids = out["sample_id"].to_numpy()
    dec_ids = decisions["sample_id"].to_numpy(dtype=np.int64)
    pos = np.minimum(np.searchsorted(sids, dec_ids), max(n - 1, 0))
    known = sids[pos] == dec_ids if n else np.zeros(len(dec_ids), dtype=bool)
    pos, picked = pos[known], decisions.iloc[np.flatnonzero(known)]

    codes = np.zeros(n, dtype=np.int8)
    codes[pos] = pd.Categorical(picked["decision"], categories=list(STATUSES)).codes
    status_dtype = pd.CategoricalDtype(list(STATUSES))
    out["status"] = pd.Categorical.from_codes(codes, dtype=status_dtype, validate=False)

    values = np.zeros(n, dtype=np.int64)
    missing = np.ones(n, dtype=bool)
    new_label = picked["new_label"].astype("Int64")
    values[pos] = new_label.fillna(0).to_numpy(dtype=np.int64)
    missing[pos] = new_label.isna().to_numpy()
    out["new_label"] = pd.arrays.IntegerArray(values, missing)

    names = pd.Categorical(picked["reviewer"].astype(object))
    who = np.full(n, -1, dtype=np.int64)
    who[pos] = names.codes
    out["reviewer"] = pd.Categorical.from_codes(who, categories=names.categories, validate=False)
    return out


def order_column(view: RunView, detector: str | None) -> tuple[str, bool]:
    """(column, ascending) that orders the queue: the detector's rank, else loss descending."""
    if detector is not None and detector in view.detectors:
        return f"{detector}_rank", True
    return "loss", False


def queue_order(view: RunView, detector: str | None) -> np.ndarray:
    """(n,) row positions of ``view.table`` in queue order (best rank first, ties by sample_id).

    Computed once per detector and kept on the view (the table never changes under it).
    """
    column, ascending = order_column(view, detector)
    key = (column, ascending)
    if key not in view.orders:
        values = view.table[column].to_numpy(dtype=np.float64)
        order = _rank_permutation(values) if ascending else None
        if order is None:
            sids = view.table["sample_id"].to_numpy()
            order = np.lexsort((sids, values if ascending else -values))  # NaN sorts last
        order.flags.writeable = False
        view.orders[key] = order
    return view.orders[key]


def order_by_rank(ranks: np.ndarray, sample_ids: np.ndarray) -> np.ndarray:
    """(N,) row positions sorted by ``ranks`` (1 = first), ties by sample id."""
    ranks = np.asarray(ranks, dtype=np.float64)
    order = _rank_permutation(ranks)
    return order if order is not None else np.lexsort((np.asarray(sample_ids), ranks))


def _rank_permutation(ranks: np.ndarray) -> np.ndarray | None:
    """The sorting order of ``ranks`` in O(n) when they are exactly 1..n, else None."""
    n = len(ranks)
    if n == 0 or not np.isfinite(ranks).all() or ranks.min() != 1 or ranks.max() != n:
        return None
    position = ranks.astype(np.int64) - 1
    order = np.full(n, -1, dtype=np.int64)
    order[position] = np.arange(n)
    return order if (order >= 0).all() and (position == ranks - 1).all() else None


@dataclass(frozen=True)
class QueueRows:
    """The review queue as row positions into ``table`` (queue order); rows are read per page.

    ``len()`` is the queue length; :meth:`frame` builds the whole DataFrame (slow at a million
    rows: use :func:`page_of`, which reads only one page's rows).
    """

    table: pd.DataFrame
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def sample_ids(self) -> np.ndarray:
        """(len,) sample ids in queue order."""
        return self.table["sample_id"].to_numpy()[self.rows]

    def frame(self) -> pd.DataFrame:
        return self.table.iloc[self.rows]

    def position_of(self, sample_id: int) -> int | None:
        """The 0-based place of ``sample_id`` in the queue, None when it is not in it."""
        hits = np.flatnonzero(self.sample_ids == int(sample_id))
        return int(hits[0]) if len(hits) else None


def queue_rows(
    view: RunView,
    table: pd.DataFrame,
    *,
    detector: str | None,
    classes: list[int] | None = None,
    top_k: int | None = None,
    min_score: float | None = None,
    selected_ids: list[int] | None = None,
    show_reviewed: bool = False,
    order: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    undecided: np.ndarray | None = None,
) -> QueueRows:
    """The review queue (see :func:`build_queue`) as row positions: numpy masks over a cached
    order, no table copied. ``table`` is ``view.table`` with decisions (same rows and order).

    ``order`` (N,) row positions replaces the detector's order (re-ranking); ``keep`` (N,) bool
    and ``classes`` narrow the ``top_k`` best-ranked rows (the sidebar's filters narrow the
    queue; pass ``top_k=None`` to look at every sample, as a search or a drill-down does);
    ``undecided`` (N,) bool: rows the queue keeps as unreviewed whatever their own status
    (All's set cards while a member is undecided).
    """
    rows = queue_order(view, detector) if order is None else order
    if top_k is not None and top_k > 0:
        rows = rows[:top_k]  # the filters below narrow this queue, never reach past it
    if keep is not None:
        rows = rows[keep[rows]]
    if classes:
        rows = rows[np.isin(table["label"].to_numpy()[rows], classes)]
    if min_score is not None and detector is not None and detector in view.detectors:
        rows = rows[table[f"{detector}_score"].to_numpy()[rows] >= min_score]
    if selected_ids is not None:
        chosen = np.zeros(len(table), dtype=bool)
        chosen[
            _positions(table["sample_id"].to_numpy(), np.asarray(selected_ids, dtype=np.int64))
        ] = 1
        rows = rows[chosen[rows]]
    picked_one = selected_ids is not None and len(selected_ids) == 1
    if not show_reviewed and not picked_one:
        open_rows = status_codes(table)[rows] == 0
        rows = rows[open_rows if undecided is None else open_rows | undecided[rows]]
    return QueueRows(table, rows)


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

    Filters, in order: the ``top_k`` best ranked; of those, given label in ``classes``; score at
    least ``min_score``; sample_id in ``selected_ids`` (map selection); unreviewed only unless
    ``show_reviewed`` or the selection is one sample (a point clicked on the map opens its card,
    reviewed or not). Reviewed samples keep their place, so showing them does not move others.
    At a million rows prefer :func:`queue_rows` (no DataFrame of the whole queue).
    """
    return queue_rows(
        view,
        table,
        detector=detector,
        classes=classes,
        top_k=top_k,
        min_score=min_score,
        selected_ids=selected_ids,
        show_reviewed=show_reviewed,
    ).frame()


def page_of(
    queue: pd.DataFrame | QueueRows, page: int, per_page: int
) -> tuple[pd.DataFrame, int, int]:
    """(rows of page ``page`` (0-based, clamped), that page index, number of pages ≥ 1)."""
    n_pages = max(1, -(-len(queue) // per_page))
    page = min(max(0, page), n_pages - 1)
    if isinstance(queue, QueueRows):
        return queue.table.iloc[queue.rows[page * per_page : (page + 1) * per_page]], page, n_pages
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
    codes = status_codes(table).astype(np.int64)
    k, n_status = len(view.label_names), len(STATUSES)
    labels = table["label"].to_numpy(dtype=np.int64)
    valid = (codes >= 0) & (labels >= 0) & (labels < k)
    cells = np.bincount(labels[valid] * n_status + codes[valid], minlength=k * n_status)
    by_class = pd.DataFrame(
        cells.reshape(k, n_status),
        index=pd.Index(view.label_names, name="given label"),
        columns=list(STATUSES),
    )
    by_class["total"] = by_class.sum(axis=1)
    per_status = np.bincount(codes[codes >= 0], minlength=n_status)
    counts = {s: int(c) for s, c in zip(STATUSES, per_status, strict=True)}
    precision = None
    n_flipped = None
    if view.noise_known:
        flipped = table["is_flipped"].to_numpy(dtype=bool)
        n_flipped = int(flipped.sum())
        confirmed, relabeled = (
            codes == STATUSES.index(CONFIRMED),
            codes == STATUSES.index(RELABELED),
        )
        precision = {
            name: (int((mask & flipped).sum()), int(mask.sum()))
            for name, mask in (
                (CONFIRMED, confirmed),
                (RELABELED, relabeled),
                ("acted", confirmed | relabeled),
            )
        }
    return {"counts": counts, "by_class": by_class, "precision": precision, "n_flipped": n_flipped}


# ---- card contents ---------------------------------------------------------------------
def load_card_image(run: RunDir, ref: str, *, size: int = CARD_IMAGE_PX) -> tuple[Any, str | None]:
    """(PIL image upscaled to about ``size`` px, None) or (None, a message why not).

    The run's thumbnail of the ref is preferred (never a multi-megapixel original); otherwise
    only files inside the run's data folders are opened (RunDir.resolve_ref). Small images are
    upscaled with nearest-neighbour so pixels stay sharp; large ones are shrunk to fit.
    """
    from PIL import Image, UnidentifiedImageError

    from ogad_core.data.sources import run_data_roots

    thumb = run.thumbnail_path(str(ref))
    path = thumb if thumb.is_file() else run.resolve_ref(str(ref), run_data_roots(run))
    if path is None:
        return None, "image not shown: its path is outside the run's data folders"
    if not path.is_file():
        return None, f"image missing: {Path(str(ref)).name}"
    try:
        with Image.open(path) as img:
            img.load()
            picture = img.convert("RGB") if img.mode not in ("L", "RGB", "RGBA") else img.copy()
    except Image.DecompressionBombError:  # an original above PIL's limit, its thumbnail gone
        return None, (
            f"image too large to show: {Path(str(ref)).name}; run the same `ogad compute` "
            "again to rebuild its thumbnail"
        )
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
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
