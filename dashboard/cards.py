"""One review card: the sample (image, text or features), its labels and scores, the buttons."""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import actions, cache, state
from dashboard.queue import CARD_IMAGE_PX, parse_features, text_preview
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED

STATUS_BADGE = {
    UNREVIEWED: ("unreviewed", "gray"),
    CONFIRMED: ("confirmed · dropped", "red"),
    REJECTED: ("rejected · kept", "green"),
    RELABELED: ("relabeled", "orange"),
}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")


def md_escape(text: object) -> str:
    """``text`` with every Markdown-special character backslash-escaped (for label names)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


_MD_INLINE = re.compile(r"([\\`*_{}\[\]<>#|~:$])")


def md_text(text: object) -> str:
    """A one-line message with the characters that start Markdown / HTML / directives escaped
    (links, emphasis, code, tags, ``:material/...:``), punctuation such as ``-`` kept readable."""
    return _MD_INLINE.sub(r"\\\1", str(text))


def _relabel_default(row: Any, n_classes: int) -> int:
    """The class pre-selected for a relabel: the prediction, or the next class when it agrees."""
    pred, label = int(row.pred), int(row.label)
    return pred if pred != label else (label + 1) % n_classes


def _sample_body(run_path: str, kind: str, row: Any) -> None:
    ref = str(row.ref)
    if kind == "image":
        png, problem = cache.card_image_png(run_path, ref, CARD_IMAGE_PX)
        if png is None:
            st.warning(md_text(problem), icon=":material/broken_image:")  # file names literal
        else:
            st.image(png, width="content", output_format="PNG")
        return
    if kind == "text":
        if bool(getattr(row, "truncated", False)):
            st.badge("truncated", color="orange", help="The model saw a cut version of this text.")
        preview, folded = text_preview(ref)
        st.text(preview, wrap=True, width="stretch")
        if folded:
            with st.expander(f"Full text ({len(ref):,} characters)"):
                st.text(ref, wrap=True, width="stretch")
        return
    features = parse_features(ref)
    if features is None:
        st.text(ref, wrap=True, width="stretch")
    else:
        st.text("\n".join(f"{k} = {v}" for k, v in features.items()), width="stretch")


def render_card(
    run_path: str,
    kind: str,
    label_names: list[str],
    row: Any,
    *,
    detector: str | None,
    writable: bool,
) -> None:
    """Draw the card of one queue row (a namedtuple from ``DataFrame.itertuples``)."""
    sid = int(row.sample_id)
    with st.container(border=True, key=f"card_{sid}"):
        if detector is not None:
            score = float(getattr(row, f"{detector}_score"))
            rank = getattr(row, f"{detector}_rank")
            if pd.isna(rank) or math.isnan(score):
                head = f"**#{sid}** · not ranked by {md_escape(detector)}"
            else:
                head = f"**#{sid}** · rank {int(rank):,} · score {score:.3f}"
        else:
            loss = float(row.loss)
            head = f"**#{sid}** · loss {loss:.3f}" if not math.isnan(loss) else f"**#{sid}**"
        st.markdown(head)
        _sample_body(run_path, kind, row)
        given, pred = md_escape(row.label_name), md_escape(row.pred_name)
        pred_md = f":orange[**{pred}**]" if int(row.pred) != int(row.label) else f"**{pred}**"
        text, color = STATUS_BADGE.get(row.status, (row.status, "gray"))
        if row.status == RELABELED:
            text = f"relabeled → {label_names[int(row.new_label)]}"
        if row.status != UNREVIEWED and isinstance(row.reviewer, str):
            text = f"{text} · {row.reviewer}"
        st.markdown(  # one element for labels and status: fewer deltas per card, faster reruns
            f"given **{given}** · predicted {pred_md} ({float(row.confidence):.0%})  \n"
            f":{color}-badge[{md_escape(text)}]"
        )
        left, right = st.columns(2)
        left.button(
            "Confirm",
            key=f"confirm_{sid}",
            type="primary",
            width="stretch",
            help="The flag is right: drop this sample from the cleaned set.",
            on_click=actions.decide,
            args=(run_path, sid, CONFIRMED),
            disabled=not writable,
        )
        right.button(
            "Reject",
            key=f"reject_{sid}",
            width="stretch",
            help="The flag is wrong: keep this sample with its given label.",
            on_click=actions.decide,
            args=(run_path, sid, REJECTED),
            disabled=not writable,
        )
        pick, go = st.columns([3, 2], vertical_alignment="bottom")
        key = f"{state.RELABEL_PREFIX}{sid}"
        if key not in st.session_state:
            st.session_state[key] = label_names[_relabel_default(row, len(label_names))]
        pick.selectbox(
            f"New class for #{sid}",
            label_names,
            key=key,
            label_visibility="collapsed",
        )
        go.button(
            "Relabel",
            key=f"relabel_{sid}",
            width="stretch",
            help="Keep this sample with the class chosen on the left.",
            on_click=actions.decide,
            args=(run_path, sid, RELABELED),
            disabled=not writable,
        )
