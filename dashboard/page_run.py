"""The run page: what was computed, with which data and model, and which steps are done."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts_view, context
from dashboard.cards import md_escape
from ogad_core.run.manifest import STEP_ORDER


def steps_in_order(steps: dict[str, Any]) -> pd.DataFrame:
    """One row per pipeline step, in pipeline order (steps this ogad does not know come last,
    in the manifest's order); every value as text."""
    known = [s for s in STEP_ORDER if s in steps]
    names = known + [s for s in steps if s not in known]
    return pd.DataFrame(
        [
            {"step": name, **{k: str(v) for k, v in steps[name].items() if k != "epochs"}}
            for name in names
        ]
    )


def render() -> None:
    """The whole run page."""
    ctx = context.load_context()
    view, manifest = ctx.view, ctx.view.manifest
    st.markdown(f"#### Run · {md_escape(view.path.name)}")
    for note in view.notes:
        st.info(note, icon=":material/info:")
    data = manifest.get("data", {})
    noise = data.get("noise")
    cols = st.columns(4)
    cols[0].metric("Samples", f"{view.n_samples:,}")
    cols[1].metric("Classes", f"{len(view.label_names)}")
    cols[2].metric("Kind", view.kind)
    cols[3].metric("Status", str(manifest.get("status", "unknown")))
    facts = {
        "run directory": str(view.path),
        "data": str(data.get("spec", "")),
        "labels": ", ".join(view.label_names),
        "injected noise": (
            f"{noise.get('rate')} {noise.get('kind')} (seed {noise.get('seed')}, "
            f"{noise.get('n_flipped')} flipped)"
            if noise
            else "none known"
        ),
        "gradient params": json.dumps(manifest.get("params", ""), default=str),
        "detectors": ", ".join(view.detectors) or "none yet",
        "map": "yes" if view.has_map else "not yet",
        "decisions file": str(ctx.store.path),
    }
    st.dataframe(
        pd.DataFrame({"": list(facts), "value": list(facts.values())}),
        hide_index=True,
        width="stretch",
    )
    model = manifest.get("model")
    if model:
        st.markdown("##### Model")
        st.json(model, expanded=True)  # whole, not cut to a table cell
    charts_view.run_charts(manifest)
    steps = manifest.get("steps", {})
    if steps:
        st.markdown("##### Steps (pipeline order)")
        st.dataframe(steps_in_order(steps), hide_index=True, width="stretch")
    with st.expander("manifest.json"):
        st.json(manifest, expanded=False)
