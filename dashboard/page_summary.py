"""The summary page: counts by decision and class, flag precision, the detection quality measured
by `ogad evaluate` (known noise only), the cleaned-CSV export."""

from __future__ import annotations

import csv
import io

import pandas as pd
import streamlit as st

from dashboard import cache, charts_view, context, keys, page_issues, review_aids, state
from dashboard.cards import md_escape
from dashboard.chart_component import preload_plotly
from dashboard.evaluation_view import WARNING
from dashboard.filters import review_progress, share_text
from dashboard.run_view import run_files_stamp, summary_tables
from dashboard.table_component import frame_table
from ogad_core.reporting.report import issue_table, load_summary, report_html
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED

EXPORT_LABEL = "Export cleaned CSV"
HISTORY_ROWS = 50


def _ratio(hits: int, n: int) -> str:
    return share_text(hits / n) if n else "–"


def _precision_section(summary: dict) -> None:
    precision = summary["precision"]
    if precision is None:
        st.caption(
            "This run has no injected noise (no is_flipped column), so the precision of the "
            "flags cannot be measured."
        )
        return
    st.markdown("##### Flag precision (the run knows which labels were flipped)")
    cols = st.columns(4)
    hits, n = precision[CONFIRMED]
    cols[0].metric(
        "Confirmed that were flipped",
        _ratio(hits, n),
        f"{hits} of {n}",
        delta_color="off",
        delta_arrow="off",
    )
    hits, n = precision[RELABELED]
    cols[1].metric(
        "Relabeled that were flipped",
        _ratio(hits, n),
        f"{hits} of {n}",
        delta_color="off",
        delta_arrow="off",
    )
    hits, n = precision["acted"]
    cols[2].metric(
        "Confirmed + relabeled",
        _ratio(hits, n),
        f"{hits} of {n}",
        delta_color="off",
        delta_arrow="off",
    )
    n_flipped = summary["n_flipped"] or 0
    cols[3].metric(
        "Flipped samples caught",
        _ratio(hits, n_flipped),
        f"{hits} of {n_flipped}",
        delta_color="off",
        delta_arrow="off",
    )


def _evaluation_section(ctx: context.Context) -> None:
    """What `ogad evaluate` measured (evaluation.json), for runs whose noise is known."""
    if not ctx.view.noise_known:
        return  # the precision section already says there is no injected noise
    ev = cache.evaluation_view(ctx.run_path)
    if ev is None:
        return
    st.markdown("##### Detection quality (known noise)")
    st.caption(ev.caption)
    if ev.reason:
        show = st.warning if ev.level == WARNING else st.info
        show(ev.reason, icon=":material/warning:" if ev.level == WARNING else ":material/info:")
    if not ev.detection.empty:
        frame_table(ev.detection, key=f"{keys.TABLE}detection", formats=ev.column_formats)
    if ev.verdict is not None:
        show = st.success if ev.verdict.ok else st.warning
        show(
            ev.verdict.text, icon=":material/check_circle:" if ev.verdict.ok else ":material/error:"
        )
    if ev.references is not None and ev.trims is not None:
        st.markdown("**Retraining without each method's top k% (held-out test accuracy)**")
        frame_table(ev.references, key=f"{keys.TABLE}references")
        frame_table(ev.trims, key=f"{keys.TABLE}trims")
        if ev.retrain_caption:
            st.caption(ev.retrain_caption)
    if ev.notes:
        with st.expander("How these figures were made"):
            st.markdown("\n".join(f"- {note}" for note in ev.notes))


def _detector(ctx: context.Context) -> str | None:
    """The detector the review page orders by (its default when none was chosen)."""
    detector = st.session_state.get(state.DETECTOR)
    if detector not in ctx.view.detectors:
        detector = review_aids.default_detector(ctx.view.detectors)
    return detector


def _issues_section(ctx: context.Context) -> None:
    """The issue types of issues.parquet, when the run has them."""
    issues = charts_view.issues_of(ctx.run_path)
    if issues is None:
        return
    st.markdown("##### Issue types")
    frame_table(issue_table(issues), key=f"{keys.TABLE}issues")


def _report_section(ctx: context.Context) -> None:
    """The shareable HTML report (built when the button is pressed, not on every visit)."""
    st.markdown("##### Report")
    run_path = ctx.run_path
    st.download_button(
        "Download report (HTML)",
        data=lambda: report_html(load_summary(run_path)),
        file_name=f"{ctx.name}_report.html",
        mime="text/html",
        icon=":material/description:",
        on_click="ignore",
        key=keys.REPORT_HTML,
    )
    st.caption(
        "One self-contained file: these charts, the decision and issue tables, the top flagged "
        "samples and the run's configuration; it opens offline. The same file as "
        "`ogad report DIR --out FILE.html`."
    )


def _reviewed_metric(ctx: context.Context, column, table: pd.DataFrame, reviewed: int) -> None:
    """Reviewed: the count, and its share of the review target and of the run."""
    n = ctx.view.n_samples
    detector = _detector(ctx)
    target = review_aids.review_target(ctx, detector)
    delta = f"{_ratio(reviewed, n)} of run"
    if target is not None and target.n_target > 0:
        prog = review_progress(table, target.n_target, target.noise_rate)
        delta = f"{share_text(prog.of_target)} of target ({target.n_target:,}) · {delta}"
    column.metric(  # the delta is cut to the column's width: its tooltip says it whole
        "Reviewed",
        f"{reviewed:,}",
        delta,
        delta_color="off",
        delta_arrow="off",
        help=f"Reviewed: {delta}.",
    )


def _history_table(ctx: context.Context) -> pd.DataFrame:
    history = ctx.store.history().tail(HISTORY_ROWS).iloc[::-1]
    names = pd.Series(ctx.view.label_names, dtype="object")
    return pd.DataFrame(
        {
            "when (UTC)": history["ts"].str.replace("T", " ").str.slice(0, 19),
            "reviewer": history["reviewer"],
            "sample": history["sample_id"],
            "action": history["action"],
            "now": history["decision"].fillna(UNREVIEWED),
            "new label": names.reindex(history["new_label"].astype("float")).to_numpy(),
            "before": history["prev_decision"].fillna(UNREVIEWED),
        }
    )


def _export_section(ctx: context.Context, version: int) -> None:
    st.markdown("##### Export")
    view = ctx.view
    detector = None
    left, mid = st.columns(2)
    if view.detectors:
        if st.session_state.get(state.EXPORT_DETECTOR) not in view.detectors:
            st.session_state[state.EXPORT_DETECTOR] = view.default_detector
        detector = left.selectbox(
            "score / rank from",
            view.detectors,
            key=state.EXPORT_DETECTOR,
            help=f"The default matches `ogad export`: {md_escape(view.default_detector)} for "
            "this run (ogad's default detector when the run has it, else its first).",
        )
    only_kept = mid.toggle(
        "Only kept samples",
        key=state.EXPORT_ONLY_KEPT,
        help="Leave out the confirmed (dropped) samples, like `ogad export --only-kept`.",
    )
    stamp = run_files_stamp(ctx.run_path)
    text = cache.export_text(ctx.run_path, stamp, version, bool(only_kept), detector)
    n_rows = text.count("\n") - 1
    st.download_button(
        EXPORT_LABEL,
        data=lambda: text,  # sent when pressed: a visit does not fetch the file to check it
        file_name=f"{ctx.name}_cleaned.csv",
        mime="text/csv",
        type="primary",
        icon=":material/download:",
        on_click="ignore",
        key=keys.EXPORT_CSV,
    )
    flag = " --only-kept" if only_kept else ""
    columns = ", ".join(next(csv.reader(io.StringIO(text)), []))  # the file's own header
    st.caption(
        f"{n_rows:,} rows · columns {md_escape(columns)} · the same file as "
        f"`ogad export DIR --out FILE.csv{flag}`"
    )


def render() -> None:
    """The whole summary page."""
    with st.sidebar:  # below the sidebar's own elements: its placeholder moves nothing
        preload_plotly()
    ctx = context.load_context()
    table, version = ctx.table()
    summary = summary_tables(ctx.view, table)
    st.markdown(f"#### Summary · {md_escape(ctx.name)}")
    for note in ctx.view.notes:
        st.info(note, icon=":material/info:")
    counts = summary["counts"]
    cols = st.columns(5)
    reviewed = ctx.view.n_samples - counts[UNREVIEWED]
    _reviewed_metric(ctx, cols[0], table, reviewed)
    cols[1].metric("Confirmed (dropped)", f"{counts[CONFIRMED]:,}")
    cols[2].metric("Rejected (kept)", f"{counts[REJECTED]:,}")
    cols[3].metric("Relabeled", f"{counts[RELABELED]:,}")
    cols[4].metric("Unreviewed", f"{counts[UNREVIEWED]:,}")
    _precision_section(summary)
    detector = _detector(ctx)
    charts_view.summary_charts(ctx, detector)
    _issues_section(ctx)
    _evaluation_section(ctx)
    st.markdown("##### Decisions by given class")
    frame_table(summary["by_class"].reset_index(), key=f"{keys.TABLE}by_class")
    page_issues.health_section(ctx)
    _export_section(ctx, version)
    _report_section(ctx)
    st.markdown("##### Latest decisions")
    history = _history_table(ctx)
    if history.empty:
        st.caption("No decisions yet.")
    else:
        frame_table(history, key=f"{keys.TABLE}history")
