"""The run page: what was computed, with which data and model, and which steps are done."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import context
from dashboard.cards import md_escape


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
        "model": json.dumps(manifest.get("model", {}), default=str),
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
    steps = manifest.get("steps", {})
    if steps:
        st.markdown("##### Steps")
        st.dataframe(
            pd.DataFrame(
                [{"step": k, **{kk: str(vv) for kk, vv in v.items()}} for k, v in steps.items()]
            ),
            hide_index=True,
            width="stretch",
        )
    with st.expander("manifest.json"):
        st.json(manifest, expanded=False)
