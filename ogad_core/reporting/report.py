"""``ogad report DIR --out FILE.html``: one self-contained HTML file to share a run's review.

The file holds the charts (:mod:`ogad_core.reporting.charts`, drawn by plotly.js), the decision
and issue tables, the top flagged samples (inline thumbnails or text snippets) and the run's
configuration. Nothing is fetched when it is opened: plotly.js is the partial bundle vendored
with the package (:data:`PLOTLY_JS`: scatter, bar and pie, 1.2 MB instead of the full 4.8 MB),
gzip-compressed and base64-encoded inside the file (about 0.5 MB), and is unpacked by the
browser's own ``DecompressionStream``; the figures are JSON beside it.
Torch-free, Streamlit-free.
"""

from __future__ import annotations

import base64
import gzip
import html
import io
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import utc_now, write_text_atomic
from ogad_core.errors import ConfigError, OgadError
from ogad_core.options import DEFAULT_DETECTOR
from ogad_core.reporting import charts
from ogad_core.review.export import choose_detector
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED, ReviewStore
from ogad_core.run.manifest import STEP_ORDER
from ogad_core.run.rundir import RunDir, check_output_path

TOP_SAMPLES = 24  # flagged samples shown with their thumbnail or snippet
THUMB_PX = 64
SNIPPET_CHARS = 220
ISSUES_FILE = "issues.parquet"  # RunDir.issues_path where the issue types are installed
#: plotly.js, the partial bundle the charts are drawn with (report and dashboard; see its README)
PLOTLY_DIR = Path(__file__).resolve().parent / "plotly"
PLOTLY_JS = PLOTLY_DIR / "plotly-basic.min.js"
PLOTLY_TRACE_TYPES = frozenset({"scatter", "bar", "pie"})  # the trace types PLOTLY_JS draws


@dataclass
class RunSummary:
    """What the report shows of a run, read once.

    ``table``: one row per sample (sample_id order): sample_id, ref, label, pred, is_flipped,
    status, the detector's score and rank, ``flagged`` (in the review target's top).
    """

    run: RunDir
    manifest: dict[str, Any]
    label_names: list[str]
    kind: str
    table: pd.DataFrame
    detector: str | None
    target: Any  # ogad_core.scoring.target.ReviewTarget or None
    decisions: pd.DataFrame  # in effect, oldest first
    scores: pd.DataFrame | None
    evaluation: Any = None  # schema.EvaluationReport or None
    issues: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


# ---- the --out check -----------------------------------------------------------------------
def check_out(run: RunDir, out: str | os.PathLike[str]) -> Path:
    """The report's file: the project's one ``--out`` check (``run.rundir.check_output_path``:
    no path the run owns, no folder, nothing but a regular file), and an existing folder to
    write it in."""
    target = check_output_path(out, run, example="report.html")
    if not target.parent.is_dir():
        raise ConfigError(f"`out` {out}: the folder {target.parent} does not exist", param="out")
    return target


# ---- reading the run -------------------------------------------------------------------------
def load_summary(run_dir: str | os.PathLike[str]) -> RunSummary:
    """Read a run's manifest, samples, scores, decisions, evaluation and issues."""
    run = RunDir(run_dir)
    manifest = run.read_manifest()
    names = run.label_names()
    samples = run.read_samples().sort_values("sample_id", kind="stable").reset_index(drop=True)
    detector = choose_detector(run, None)
    scores = run.read_scores() if detector is not None else None
    table = _table(samples, scores, detector)
    store = ReviewStore(
        run,
        sample_ids=samples["sample_id"].to_numpy(),
        labels=samples["label"].to_numpy(),
        label_names=names,
    )
    decisions = store.current().sort_values("updated_at", kind="stable")
    table = _with_status(table, decisions)
    target = _target(samples, scores, detector)
    table["flagged"] = _flagged(table, target)
    summary = RunSummary(
        run=run,
        manifest=manifest,
        label_names=names,
        kind=str(manifest.get("data", {}).get("kind", "image")),
        table=table,
        detector=detector,
        target=target,
        decisions=decisions,
        scores=scores,
    )
    summary.evaluation = _evaluation(run, summary.notes)
    summary.issues = read_issues(run, summary.notes)
    return summary


def _table(samples: pd.DataFrame, scores: pd.DataFrame | None, detector: str | None):
    table = samples.copy()
    if "is_flipped" not in table.columns:
        table["is_flipped"] = np.nan
    if scores is not None and detector is not None:
        cols = ["sample_id", f"{detector}_score", f"{detector}_rank"]
        table = table.merge(scores[cols], on="sample_id", how="left")
        table = table.rename(columns={cols[1]: "score", cols[2]: "rank"})
    else:
        table["score"] = table.get("loss", np.nan)
        table["rank"] = table["score"].rank(ascending=False, method="first")
    return table


def _with_status(table: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    status = decisions.set_index("sample_id")["decision"]
    table["status"] = table["sample_id"].map(status).astype(object).fillna(UNREVIEWED).astype(str)
    new_label = decisions.set_index("sample_id")["new_label"]
    table["new_label"] = table["sample_id"].map(new_label)
    return table


def _target(samples: pd.DataFrame, scores: pd.DataFrame | None, detector: str | None) -> Any:
    from ogad_core.scoring.target import estimate_review_target

    try:
        return estimate_review_target(samples, scores, detector or DEFAULT_DETECTOR)
    except (OgadError, ValueError, KeyError):
        return None


def _flagged(table: pd.DataFrame, target: Any) -> np.ndarray:
    """(N,) bool: the review target's top-ranked samples."""
    n = 0 if target is None else int(target.n_target)
    rank = table["rank"].to_numpy(dtype=np.float64)
    return np.nan_to_num(rank, nan=np.inf) <= n


def _evaluation(run: RunDir, notes: list[str]) -> Any:
    from ogad_core.evaluation.schema import read_report

    if not run.evaluation_path.is_file():
        return None
    try:
        return read_report(run.evaluation_path).report
    except OgadError as err:
        notes.append(f"evaluation.json is not shown: {err}")
        return None


def read_issues(run: RunDir, notes: list[str]) -> pd.DataFrame | None:
    """issues.parquet when the run has one (a reason appended to ``notes`` when unusable)."""
    path = getattr(run, "issues_path", run.path / ISSUES_FILE)
    if not path.is_file():
        return None
    try:
        issues = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        notes.append(f"{ISSUES_FILE} is not shown: {err}")
        return None
    wanted = {"sample_id", "issue", "score", "rank", "flagged"}
    if not wanted <= set(issues.columns):
        notes.append(f"{ISSUES_FILE} lacks columns {sorted(wanted - set(issues.columns))}")
        return None
    return issues


# ---- the charts ---------------------------------------------------------------------------
def score_distributions(summary: RunSummary) -> dict[str, tuple[np.ndarray, float | None]]:
    """{detector or issue type: (scores, flag threshold)}: every detector of the run (threshold
    at the review target) and every issue type of issues.parquet (threshold at its flags)."""
    out: dict[str, tuple[np.ndarray, float | None]] = {}
    n_flag = 0 if summary.target is None else int(summary.target.n_target)
    if summary.scores is not None:
        for column in [c for c in summary.scores.columns if c.endswith("_score")]:
            values = summary.scores[column].to_numpy(dtype=np.float64)
            out[column.removesuffix("_score")] = (values, charts.threshold_at(values, n_flag))
    out.update(issue_distributions(summary.issues))
    return out


def issue_distributions(issues: pd.DataFrame | None) -> dict[str, tuple[np.ndarray, float | None]]:
    """{"issue: NAME": (scores, the lowest flagged score)} of issues.parquet; an issue type that
    flags nothing with one score for every sample (leakage without a held-out split) is left
    out: its chart would be one bar."""
    if issues is None:
        return {}
    out = {}
    for name, part in issues.groupby("issue", sort=True):
        values = part["score"].to_numpy(dtype=np.float64)
        flagged = values[part["flagged"].to_numpy(dtype=bool)]
        finite = values[np.isfinite(values)]
        if not flagged.size and (not finite.size or finite.min() == finite.max()):
            continue
        out[f"issue: {name}"] = (values, float(flagged.min()) if flagged.size else None)
    return out


def issue_table(issues: pd.DataFrame | None) -> pd.DataFrame:
    """Per issue type: samples scored, flagged, and duplicate sets (set_id)."""
    if issues is None or issues.empty:
        return pd.DataFrame(columns=["issue", "scored", "flagged", "sets"])
    grouped = issues.groupby("issue", sort=True)
    sets = (
        grouped["set_id"].nunique() if "set_id" in issues.columns else grouped["issue"].size() * 0
    )
    return pd.DataFrame(
        {
            "issue": list(grouped.groups),
            "scored": grouped.size().to_numpy(),
            "flagged": grouped["flagged"].sum().astype(int).to_numpy(),
            "sets": sets.to_numpy(),
        }
    )


def known_noise_ranks(summary: RunSummary) -> dict[str, np.ndarray]:
    """{method: (N,) rank} of every detector and baseline in scores.parquet (sample_id order)."""
    if summary.scores is None:
        return {}
    scores = summary.scores.set_index("sample_id").reindex(summary.table["sample_id"])
    return {
        c.removesuffix("_rank"): scores[c].to_numpy(dtype=np.float64)
        for c in scores.columns
        if c.endswith("_rank")
    }


def figures(summary: RunSummary) -> list[Any]:
    """The report's charts, in reading order."""
    table, target = summary.table, summary.target
    expected = 0 if target is None else round(target.noise_rate * len(table))
    out = []
    if len(summary.decisions):
        data = charts.progress_data(summary.decisions, expected)
        out.append(charts.progress_figure(data, None if target is None else target.n_target))
    dists = score_distributions(summary)
    if dists:
        out.append(charts.scores_figure(dists))
    health = charts.class_health_data(table, summary.label_names, table["flagged"].to_numpy())
    out.append(charts.class_health_figure(health))
    out.append(charts.given_pred_figure(given_by_predicted(table, summary.label_names)))
    flipped = table["is_flipped"]
    if flipped.notna().all() and flipped.astype(bool).any():
        ranks = known_noise_ranks(summary)
        precision = charts.precision_at_k_data(ranks, flipped.to_numpy(dtype=bool))
        out.append(charts.precision_figure(precision, int(flipped.astype(bool).sum())))
    retrain = getattr(summary.evaluation, "retrain", None)
    if retrain is not None and retrain.rows:
        out.append(charts.retrain_figure(*charts.retrain_data(retrain)))
    out.extend(run_figures(summary.manifest))
    return out


def run_figures(manifest: dict[str, Any]) -> list[Any]:
    """Training loss per epoch (when the run recorded it) and time per step."""
    steps = manifest.get("steps", {})
    out = []
    epochs = steps.get("train", {}).get("epochs")
    if epochs:
        out.append(charts.training_figure(epochs))
    if steps:
        out.append(charts.steps_figure(steps, STEP_ORDER))
    return out


def given_by_predicted(table: pd.DataFrame, label_names: list[str]) -> pd.DataFrame:
    """Counts by given (rows) x predicted (columns) label, every class."""
    k = len(label_names)
    given = table["label"].to_numpy(dtype=np.int64)
    pred = table["pred"].to_numpy(dtype=np.int64)
    ok = (given >= 0) & (given < k) & (pred >= 0) & (pred < k)
    counts = np.bincount(given[ok] * k + pred[ok], minlength=k * k).reshape(k, k)
    names = [str(n) for n in label_names]
    return pd.DataFrame(counts, index=names, columns=names)


# ---- the HTML ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def plotly_js_gzip_b64() -> str:
    """The vendored plotly.js bundle (:data:`PLOTLY_JS`), gzip-compressed, base64 (ASCII)."""
    return base64.b64encode(gzip.compress(PLOTLY_JS.read_bytes(), 9)).decode("ascii")


_LOADER = """<script>
(async () => {
  const status = document.getElementById('ogad-status');
  try {
    const packed = document.getElementById('ogad-plotly').textContent.trim();
    const bytes = Uint8Array.from(atob(packed), (c) => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    const code = await new Response(stream).text();
    const url = URL.createObjectURL(new Blob([code], {type: 'text/javascript'}));
    await new Promise((ok, fail) => {
      const s = document.createElement('script'); s.src = url; s.onload = ok; s.onerror = fail;
      document.head.appendChild(s);
    });
    for (const node of document.querySelectorAll('script.ogad-figure')) {
      const fig = JSON.parse(node.textContent);
      const div = document.createElement('div'); div.className = 'ogad-chart';
      node.after(div);
      await Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false, responsive: true});
    }
    document.body.dataset.charts = String(document.querySelectorAll('.ogad-chart').length);
    status.remove();
  } catch (err) {
    status.textContent = 'The charts need a browser with DecompressionStream (Chrome 80+, '
      + 'Firefox 113+, Safari 16.4+): ' + err;
  }
})();
</script>"""

_CSS = """<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222;
  padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f4f5f7; }
.tiles { display: flex; gap: 1rem; flex-wrap: wrap; }
.tile { border: 1px solid #ddd; border-radius: 0.4rem; padding: 0.5rem 0.9rem; }
.tile b { display: block; font-size: 1.3rem; }
.samples { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr));
  gap: 0.6rem; }
.sample { border: 1px solid #ddd; border-radius: 0.4rem; padding: 0.4rem; font-size: 0.8rem; }
.sample img { image-rendering: pixelated; width: 96px; height: auto; display: block; }
.sample .file { font-family: monospace; overflow-wrap: anywhere; opacity: 0.8; }
.ogad-chart { margin: 0.5rem 0 1rem 0; }
.note { opacity: 0.75; font-size: 0.85rem; }
</style>"""


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, escape=True, na_rep="")


def _target_tile(target: Any) -> tuple[str, int]:
    """(caption, value) of the review target's tile: the target's words
    (``ReviewTarget.describe``, its number in the value) and the value."""
    return target.describe(count=False), target.n_target


def _tiles(summary: RunSummary) -> str:
    status = summary.table["status"].value_counts()
    items = [("samples", len(summary.table))] + [
        (name, int(status.get(name, 0))) for name in (CONFIRMED, RELABELED, REJECTED, UNREVIEWED)
    ]
    if summary.target is not None:
        items.append(_target_tile(summary.target))
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><b>{value:,}</b>{html.escape(name)}</div>' for name, value in items
        )
        + "</div>"
    )


def _decision_table(summary: RunSummary) -> pd.DataFrame:
    health = charts.class_health_data(
        summary.table, summary.label_names, summary.table["flagged"].to_numpy()
    )
    health["share_flagged"] = health["share_flagged"].map("{:.1%}".format)
    return health.rename(columns={"share_flagged": "flagged share"})


def _config(summary: RunSummary) -> pd.DataFrame:
    manifest = summary.manifest
    facts = {
        "run directory": str(summary.run.path),
        "data": manifest.get("data", {}).get("spec", ""),
        "kind": summary.kind,
        "labels": ", ".join(summary.label_names),
        "detector (queue order)": summary.detector or "none (loss)",
        "model": json.dumps(manifest.get("model", {}), default=str),
        "configuration": json.dumps(manifest.get("config", {}), default=str),
        "noise": json.dumps(manifest.get("data", {}).get("noise"), default=str),
        "status": manifest.get("status", ""),
    }
    if summary.target is not None:
        facts["review target"] = summary.target.note
    return pd.DataFrame({"": list(facts), "value": [str(v) for v in facts.values()]})


def _thumb_uri(run: RunDir, ref: str) -> str | None:
    """A small PNG of an image ref as a data URI (the run's thumbnail when it has one)."""
    from PIL import Image

    from ogad_core.data.sources import run_data_roots

    thumb = run.thumbnail_path(ref)
    path = thumb if thumb.is_file() else run.resolve_ref(ref, run_data_roots(run))
    if path is None or not path.is_file():
        return None
    try:
        with Image.open(path) as img:
            img.thumbnail((THUMB_PX, THUMB_PX))
            buffer = io.BytesIO()
            img.convert("RGB" if img.mode not in ("L", "RGB") else img.mode).save(buffer, "PNG")
    except (OSError, ValueError):
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _samples_html(summary: RunSummary) -> str:
    """The top flagged samples: thumbnail (images) or snippet (text), labels, rank, status."""
    top = summary.table.sort_values("rank", kind="stable").head(TOP_SAMPLES)
    names = summary.label_names
    cards = []
    row: Any
    for row in top.itertuples(index=False):
        ref = str(row.ref)
        if summary.kind == "image":
            uri = _thumb_uri(summary.run, ref)
            body = f'<img src="{uri}" alt="#{row.sample_id}">' if uri else "(no image)"
            body += f'<div class="file">{html.escape(Path(ref).name)}</div>'
        else:
            body = html.escape(ref[:SNIPPET_CHARS] + ("…" if len(ref) > SNIPPET_CHARS else ""))
        cards.append(
            f'<div class="sample"><b>#{int(row.sample_id)}</b> · rank {int(row.rank):,}<br>'
            f"{body}<div>given <b>{html.escape(str(names[int(row.label)]))}</b> · predicted "
            f"{html.escape(str(names[int(row.pred)]))} · {html.escape(str(row.status))}</div>"
            "</div>"
        )
    return '<div class="samples">' + "".join(cards) + "</div>"


def _figure_html(fig: Any) -> str:
    text = fig.to_json(engine="json").replace("</", "<\\/")  # never closes the script element
    return f'<script type="application/json" class="ogad-figure">{text}</script>'


def report_html(summary: RunSummary) -> str:
    """The whole report as one HTML document (nothing fetched when it is opened)."""
    name = html.escape(summary.run.path.name)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ogad report · {name}"
        f"</title>{_CSS}</head><body>",
        f"<h1>ogad report · {name}</h1>",
        f'<p class="note">Written {utc_now()} by ogad. Everything in this file is offline.</p>',
        _tiles(summary),
        '<p id="ogad-status" class="note">Drawing the charts…</p>',
        "<h2>Charts</h2>",
        *(_figure_html(fig) for fig in figures(summary)),
        "<h2>Decisions by given class</h2>",
        _table_html(_decision_table(summary)),
    ]
    if summary.issues is not None:
        parts += ["<h2>Issue types (issues.parquet)</h2>", _table_html(issue_table(summary.issues))]
    parts += [
        f"<h2>Top {TOP_SAMPLES} flagged samples</h2>",
        _samples_html(summary),
        "<h2>Run configuration</h2>",
        _table_html(_config(summary)),
        *(f'<p class="note">{html.escape(n)}</p>' for n in summary.notes),
        f'<script type="application/octet-stream" id="ogad-plotly">{plotly_js_gzip_b64()}</script>',
        _LOADER,
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the report of ``run_dir`` to ``out`` atomically; returns the file written."""
    run = RunDir(run_dir)
    run.read_manifest()  # a clear error for a missing run before the --out check
    target = check_out(run, out)
    text = report_html(load_summary(run_dir))
    try:
        write_text_atomic(target, text)
    except OSError as err:
        raise ConfigError(f"cannot write {target}: {err.strerror or err}") from None
    return target
