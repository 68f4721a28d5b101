"""One review card: the sample (image, text or features), its labels and scores, why it is
flagged, the suggested label, the buttons."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
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
LARGE_IMAGE_PX = 320  # focus mode
NEIGHBOUR_IMAGE_PX = 72
NEIGHBOURS_SHOWN = 6
NEIGHBOUR_TEXT_CHARS = 140
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$])")


def md_escape(text: object) -> str:
    """``text`` with every Markdown-special character backslash-escaped (for label names)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


_MD_INLINE = re.compile(r"([\\`*_{}\[\]<>#|~:$])")


def md_text(text: object) -> str:
    """A one-line message with the characters that start Markdown / HTML / directives escaped
    (links, emphasis, code, tags, ``:material/...:``), punctuation such as ``-`` kept readable."""
    return _MD_INLINE.sub(r"\\\1", str(text))


@dataclass(frozen=True)
class CardContext:
    """What every card of one queue shares."""

    run_path: str
    kind: str
    label_names: list[str]
    detector: str | None
    writable: bool


def relabel_default(row: Any, n_classes: int, suggested: int | None = None) -> int:
    """The class pre-selected in the Relabel control: the current label of a relabeled sample,
    else the suggested label, else the prediction (the next class when those equal the given)."""
    label = int(row.label)
    if row.status == RELABELED and not pd.isna(row.new_label):
        return int(row.new_label)
    for candidate in (suggested, int(row.pred)):
        if candidate is not None and int(candidate) != label:
            return int(candidate)
    return (label + 1) % n_classes


def _relabel_choice(ctx: CardContext, row: Any, suggested: int | None) -> str:
    """Session key of the card's class choice, (re)set whenever the card's decision changed."""
    sid = int(row.sample_id)
    key = f"{state.RELABEL_PREFIX}{sid}"
    source = (str(row.status), None if pd.isna(row.new_label) else int(row.new_label))
    src_key = f"{state.RELABEL_SOURCE_PREFIX}{sid}"
    if key not in st.session_state or st.session_state.get(src_key) != source:
        choice = relabel_default(row, len(ctx.label_names), suggested)
        st.session_state[key] = ctx.label_names[choice]
        st.session_state[src_key] = source
    return key


def _image(run_path: str, ref: str, size: int) -> None:
    png, problem = cache.card_image_png(run_path, ref, size)
    if png is None:
        st.warning(md_text(problem), icon=":material/broken_image:")  # file names literal
    else:
        st.image(png, width="content", output_format="PNG")


def _sample_body(ctx: CardContext, row: Any, large: bool) -> None:
    ref = str(row.ref)
    if ctx.kind == "image":
        _image(ctx.run_path, ref, LARGE_IMAGE_PX if large else CARD_IMAGE_PX)
        return
    if ctx.kind == "text":
        if bool(getattr(row, "truncated", False)):
            st.badge("truncated", color="orange", help="The model saw a cut version of this text.")
        preview, folded = text_preview(ref)
        if large:
            preview, folded = ref, False
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


def _head(row: Any, detector: str | None) -> str:
    sid = int(row.sample_id)
    if detector is not None:
        score = float(getattr(row, f"{detector}_score"))
        rank = getattr(row, f"{detector}_rank")
        if pd.isna(rank) or math.isnan(score):
            return f"**#{sid}** · not ranked by {md_escape(detector)}"
        return f"**#{sid}** · rank {int(rank):,} · score {score:.3f}"
    loss = float(row.loss)
    return f"**#{sid}** · loss {loss:.3f}" if not math.isnan(loss) else f"**#{sid}**"


def _labels_md(row: Any, label_names: list[str]) -> str:
    given, pred = md_escape(row.label_name), md_escape(row.pred_name)
    pred_md = f":orange[**{pred}**]" if int(row.pred) != int(row.label) else f"**{pred}**"
    text, color = STATUS_BADGE.get(row.status, (row.status, "gray"))
    if row.status == RELABELED:
        text = f"relabeled → {label_names[int(row.new_label)]}"
    if row.status != UNREVIEWED and isinstance(row.reviewer, str):
        text = f"{text} · {row.reviewer}"
    return (
        f"given **{given}** · predicted {pred_md} ({float(row.confidence):.0%})  \n"
        f":{color}-badge[{md_escape(text)}]"
    )


def why_md(explanation: Any, label_names: list[str]) -> str:
    """One Markdown line: why the sample is flagged and the suggested label."""
    parts = []
    if explanation.loss is not None and not math.isnan(float(explanation.loss)):
        parts.append(f"loss {float(explanation.loss):.2f}")
    if explanation.margin is not None and not math.isnan(float(explanation.margin)):
        parts.append(f"margin {float(explanation.margin):+.2f}")
    pct = explanation.grad_norm_percentile
    if pct is not None and not math.isnan(float(pct)):
        parts.append(f"gradient norm p{float(pct):.0f} of its class")
    line = "why: " + " · ".join(parts) if parts else "why: —"
    if explanation.suggested_label is not None:
        name = md_escape(label_names[int(explanation.suggested_label)])
        conf = float(explanation.suggestion_confidence)
        line += f"  \nsuggested **{name}** ({conf:.0%})"
    return line


def _explain(ctx: CardContext, explanation: Any, large: bool) -> None:
    """The why line; in focus mode also the reasons and the nearest neighbours."""
    st.caption(why_md(explanation, ctx.label_names))
    if not large:
        return
    if explanation.reasons:
        st.markdown("\n".join(f"- {md_escape(r)}" for r in explanation.reasons))
    neighbours = list(explanation.neighbours)
    if not neighbours:
        return
    st.caption("Nearest neighbours, with their given labels:")
    view = cache.run_view(ctx.run_path)
    refs = view.table.set_index("sample_id")["ref"]
    shown = neighbours[:NEIGHBOURS_SHOWN]
    per_row = NEIGHBOURS_SHOWN if ctx.kind == "image" else 3  # snippets need the width
    for start in range(0, len(shown), per_row):
        columns = st.columns(per_row)
        for column, (nid, label) in zip(columns, shown[start : start + per_row], strict=False):
            with column:
                name = md_escape(ctx.label_names[int(label)])
                st.caption(f"#{int(nid)} · **{name}**")
                ref = str(refs.get(int(nid), ""))
                if ctx.kind == "image":
                    _image(ctx.run_path, ref, NEIGHBOUR_IMAGE_PX)
                else:
                    st.text(text_preview(ref, NEIGHBOUR_TEXT_CHARS)[0], wrap=True)


def _decision_buttons(ctx: CardContext, row: Any, relabel_key: str) -> None:
    sid = int(row.sample_id)
    left, right = st.columns(2)
    left.button(
        "Confirm",
        key=f"confirm_{sid}",
        type="primary",
        width="stretch",
        help="The flag is right: drop this sample from the cleaned set. Key: C",
        on_click=actions.decide,
        args=(ctx.run_path, sid, CONFIRMED),
        disabled=not ctx.writable,
    )
    right.button(
        "Reject",
        key=f"reject_{sid}",
        width="stretch",
        help="The flag is wrong: keep this sample with its given label. Key: R",
        on_click=actions.decide,
        args=(ctx.run_path, sid, REJECTED),
        disabled=not ctx.writable,
    )
    pick, go = st.columns(2, vertical_alignment="bottom")
    pick.selectbox(
        f"New class for #{sid}",
        ctx.label_names,
        key=relabel_key,
        label_visibility="collapsed",
    )
    go.button(
        "Relabel",
        key=f"relabel_{sid}",
        width="stretch",
        help="Keep this sample with the class chosen on the left. Key: L",
        on_click=actions.decide,
        args=(ctx.run_path, sid, RELABELED),
        disabled=not ctx.writable,
    )
    if row.status != UNREVIEWED:
        st.button(
            "Back to unreviewed",
            key=f"unreview_{sid}",
            icon=":material/restart_alt:",
            type="tertiary",
            help="Forget the decision in effect: the sample returns to the queue. Key: B",
            on_click=actions.decide,
            args=(ctx.run_path, sid, UNREVIEWED),
            disabled=not ctx.writable,
        )


def render_card(
    ctx: CardContext,
    row: Any,
    *,
    explanation: Any = None,
    suggested: int | None = None,
    large: bool = False,
) -> None:
    """Draw the card of one queue row (a namedtuple from ``DataFrame.itertuples``).

    ``explanation``: an ``ogad_core.review.explain.Explanation`` (None: not shown);
    ``suggested``: the class pre-selected for a relabel; ``large``: the focus-mode card.
    """
    sid = int(row.sample_id)
    with st.container(border=True, key=f"card_{sid}"):
        st.markdown(_head(row, ctx.detector))
        _sample_body(ctx, row, large)
        st.markdown(_labels_md(row, ctx.label_names))  # one element: fewer deltas per card
        if explanation is not None:
            _explain(ctx, explanation, large)
        _decision_buttons(ctx, row, _relabel_choice(ctx, row, suggested))


def render_peek(ctx: CardContext, row: Any, caption: str) -> None:
    """A small preview of a neighbouring card in the queue (focus mode)."""
    with st.container(border=True, key=f"peek_{int(row.sample_id)}"):
        st.caption(f"{caption} · #{int(row.sample_id)} · given {md_escape(row.label_name)}")
        if ctx.kind == "image":
            _image(ctx.run_path, str(row.ref), CARD_IMAGE_PX // 2)
        else:
            st.text(text_preview(str(row.ref), NEIGHBOUR_TEXT_CHARS)[0], wrap=True)
