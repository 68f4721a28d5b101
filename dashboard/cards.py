"""One review card: the sample (image, text or features), its labels and scores, why it is
flagged, the suggested label, the buttons."""

from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from dashboard import actions, cache, keys, page_issues, state
from dashboard.issue_view import ALL, LABEL
from dashboard.run_view import CARD_IMAGE_PX, parse_features, text_preview
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED

if TYPE_CHECKING:  # the context module imports this one
    from dashboard.context import Context

STATUS_BADGE = {
    UNREVIEWED: ("unreviewed", "gray"),
    CONFIRMED: ("confirmed · dropped", "red"),
    REJECTED: ("rejected · kept", "green"),
    RELABELED: ("relabeled", "orange"),
}
LARGE_IMAGE_PX = 256  # focus mode (card and its buttons fit 1280 x 800)
NEIGHBOUR_IMAGE_PX = 72
HELD_OUT_IMAGE_PX = 72  # the held-out copy beside a leaking training image
NEIGHBOURS_SHOWN = 6
NEIGHBOUR_TEXT_CHARS = 140
RELABEL_MENU_PREFIX = keys.RELABEL_MENU  # + sample id: the popover holding the class list
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
    """What every card of one queue shares: the run (dashboard.context.Context) and its kind,
    class names, detector and whether decisions can be saved; ``queue``: the issue type whose
    order the queue shows (``label``, another type, ``all``: the card shows that type's rank),
    None for the detector's order (the card shows the detector's rank)."""

    run: Context
    kind: str
    label_names: list[str]
    detector: str | None
    writable: bool
    queue: str | None = None

    @property
    def run_path(self) -> str:
        return self.run.run_path


#: a card without a suggestion leaves out the model's guess (its labels line says so, muted,
#: with the card's ``CardActions.no_prediction`` as its tooltip)
NO_PREDICTION = "prediction not shown"
NO_PREDICTION_HELP = (
    "The model's guess on an input that carries no information (dark, noise, undecodable) is "
    "noise, not evidence of its class: Drop or Keep the input; relabel it only by what you see."
)
LEAK_NO_PREDICTION_HELP = (
    "A copy of a held-out sample: the model trained on it, so its guess here is no evidence of "
    "the class. Drop the training copy (the held-out score is then honest) or Keep it; "
    "relabel it only by what you see."
)


@dataclass(frozen=True)
class CardActions:
    """What a card's buttons say, and whether the card shows the model's suggested class (in
    its labels and why lines and as its Relabel menu's first choice) or leaves a relabel to
    the reviewer (the menu then starts on the given label and reads :data:`RELABEL_BY_HAND`;
    ``no_prediction``: why the labels line leaves the model's guess out, its tooltip)."""

    confirm: str = "Confirm"
    reject: str = "Reject"
    suggests: bool = True
    no_prediction: str = ""


RELABEL_BY_HAND = "Relabel…"
RELABEL_MEMBER = "Relabel a member…"  # a duplicate set's card in All
#: the issue types whose cards read otherwise than Confirm / Reject, without the model's guess:
#: a corrupt input is dropped or kept (the guess on an input with no information is noise); a
#: training copy of a held-out sample is dropped or kept (the model trained on it: its guess
#: there is no evidence of the class, and the question is the copy, not its label)
ISSUE_ACTIONS = {
    "corrupt": CardActions("Drop", "Keep", suggests=False, no_prediction=NO_PREDICTION_HELP),
    "leakage": CardActions("Drop", "Keep", suggests=False, no_prediction=LEAK_NO_PREDICTION_HELP),
}
LABEL_ACTIONS = CardActions()  # every other card: Confirm / Reject, the model's suggestion


def card_actions(ctx: CardContext, sample_id: int) -> CardActions:
    """The actions of sample ``sample_id``'s card: by the issue type it is reviewed as (in
    All, the type that placed it there)."""
    issue = page_issues.card_issue(ctx.run, ctx.queue, sample_id)
    return ISSUE_ACTIONS.get(issue or "", LABEL_ACTIONS)


def relabel_default(row: Any, n_classes: int, suggested: int | None = None) -> int:
    """The class a card's Relabel control starts on: the current label of a relabeled sample,
    else the suggested label (even when it is the given one: the card then says the evidence
    agrees with the label), else the prediction."""
    if row.status == RELABELED and not pd.isna(row.new_label):
        return int(row.new_label)
    if suggested is not None and 0 <= int(suggested) < n_classes:
        return int(suggested)
    return int(row.pred)


def _menu_text(ctx: CardContext, row: Any, relabel: tuple[str, str], acts: CardActions) -> str:
    """The Relabel menu's label: ``Relabel → 5``, or :data:`RELABEL_BY_HAND` on a card without
    a suggestion until the reviewer picks a class (or relabeled it)."""
    key, choice = relabel
    if not acts.suggests and key not in st.session_state and row.status != RELABELED:
        return RELABEL_BY_HAND
    return f"Relabel → {md_escape(choice)}"


def _relabel_choice(ctx: CardContext, row: Any, suggested: int | None) -> tuple[str, str]:
    """(widget key, class shown) of the card's Relabel choice: the reviewer's choice when the
    widget holds one, else the card's default (:func:`relabel_default`). The widget gets the
    default as its ``index`` (never a value pushed through the session state: a menu that is
    not open has no widget in the browser to receive it, and after the cards moved up the
    browser would then show and send the first class)."""
    new_label = None if pd.isna(row.new_label) else int(row.new_label)
    key = state.relabel_key(int(row.sample_id), str(row.status), new_label)
    default = ctx.label_names[relabel_default(row, len(ctx.label_names), suggested)]
    return key, str(st.session_state.get(key, default))


def _image(run_path: str, ref: str, size: int) -> None:
    png, problem = cache.card_image_png(run_path, ref, size)
    if png is None:
        st.warning(md_text(problem), icon=":material/broken_image:")  # file names literal
    else:
        st.image(png, width="content", output_format="PNG")


def _image_html(run_path: str, ref: str, size: int) -> str | None:
    """An ``<img>`` with the card image inline (one element with the card's text), or None
    when the image cannot be shown or is too big to send inline on every rerun."""
    uri = cache.card_image_uri(run_path, ref, size)
    if uri is None:
        return None
    return f'<img class="ogad-img" src="{uri}" alt="sample image">'


def _place_text(place: tuple[int, int] | None) -> str:
    """``card 3 of 120`` (the card's place in the queue as shown), or ''."""
    if place is None:
        return ""
    return f'<div class="ogad-place">card {place[0]:,} of {place[1]:,}</div>'


def _head(ctx: CardContext, row: Any, place: tuple[int, int] | None = None) -> str:
    """The card's first line (HTML): its place in the queue, sample id, then the rank and score
    of the order the queue follows: an issue type's (``ctx.queue``; All: its priority place),
    else the detector's (or the loss). The place is the queue as shown (re-ranked, filtered)."""
    sid = int(row.sample_id)
    where = _place_text(place)
    if ctx.queue is not None:
        text, tip = page_issues.card_rank(ctx.run, ctx.queue, sid)
        title = f' title="{html.escape(tip)}"' if tip else ""
        return f"{where}<b>#{sid}</b> · <span{title}>{html.escape(text)}</span>"
    detector = ctx.detector
    if detector is not None:
        score = float(getattr(row, f"{detector}_score"))
        rank = getattr(row, f"{detector}_rank")
        if pd.isna(rank) or math.isnan(score):
            return f"{where}<b>#{sid}</b> · not ranked by {html.escape(detector)}"
        name = html.escape(detector)
        return (
            f'{where}<b>#{sid}</b> · <span title="{name}: its rank and score (the place above '
            f"is the queue's)\">rank {int(rank):,} · score {score:.3f}</span>"
        )
    loss = float(row.loss)
    text = f"<b>#{sid}</b> · loss {loss:.3f}" if not math.isnan(loss) else f"<b>#{sid}</b>"
    return where + text


def _file_html(run_path: str, ref: str) -> str:
    """An image card's file name, with a control that copies the file's whole path (the click
    is handled by the page's script, dashboard.shortcuts)."""
    path = Path(ref) if Path(ref).is_absolute() else Path(run_path) / ref
    full = os.path.normpath(path)
    name = html.escape(Path(ref).name)
    return (
        f'<div class="ogad-file"><span class="ogad-fname" title="{html.escape(full)}">{name}'
        f'</span><button type="button" class="ogad-copy" data-copy="{html.escape(full)}" '
        f'title="Copy the file\'s path" aria-label="Copy the path of {name}">copy path</button>'
        "</div>"
    )


def _badge(text: str, color: str, title: str | None = None) -> str:
    tip = f' title="{html.escape(title)}"' if title else ""
    return f'<span class="ogad-badge ogad-{color}"{tip}>{html.escape(text)}</span>'


def _prediction(row: Any, acts: CardActions) -> str:
    """``predicted <b>7</b> (93%)`` (another class than the given one highlighted), or on a
    card without a suggestion :data:`NO_PREDICTION`, muted, its tooltip saying why (HTML)."""
    if not acts.suggests:
        tip = html.escape(acts.no_prediction)
        return f'<span class="ogad-nopred" title="{tip}">{NO_PREDICTION}</span>'
    pred = html.escape(str(row.pred_name))
    pred_cls = ' class="ogad-diff"' if int(row.pred) != int(row.label) else ""
    return f"predicted <b{pred_cls}>{pred}</b> ({float(row.confidence):.0%})"


def _labels(row: Any, label_names: list[str], acts: CardActions = LABEL_ACTIONS) -> str:
    """Given and predicted label (:func:`_prediction`), the decision badge (HTML; names
    escaped)."""
    given = html.escape(str(row.label_name))
    text, color = STATUS_BADGE.get(row.status, (row.status, "gray"))
    if row.status == RELABELED:
        text = f"relabeled → {label_names[int(row.new_label)]}"
    if row.status != UNREVIEWED and isinstance(row.reviewer, str):
        text = f"{text} · {row.reviewer}"
    return (
        f'<div class="ogad-labels">given <b>{given}</b> · {_prediction(row, acts)}'
        f"</div><div>{_badge(str(text), color)}</div>"
    )


def why_parts(explanation: Any, label_names: list[str]) -> tuple[str, str | None, str]:
    """(why the sample is flagged, the suggested class name or None, its confidence): plain
    text, not escaped."""
    parts = []
    if explanation.loss is not None and not math.isnan(float(explanation.loss)):
        parts.append(f"loss {float(explanation.loss):.2f}")
    if explanation.margin is not None and not math.isnan(float(explanation.margin)):
        parts.append(f"margin {float(explanation.margin):+.2f}")
    pct = explanation.grad_norm_percentile
    if pct is not None and not math.isnan(float(pct)):
        parts.append(f"gradient norm p{float(pct):.0f} of its class")
    line = "why: " + " · ".join(parts) if parts else "why: —"
    if explanation.suggested_label is None:
        return line, None, ""
    name = str(label_names[int(explanation.suggested_label)])
    return line, name, f"{float(explanation.suggestion_confidence):.0%}"


def why_html(explanation: Any, label_names: list[str], suggests: bool = True) -> str:
    """The why line and (``suggests``) the suggestion as one HTML block (names escaped)."""
    line, name, confidence = why_parts(explanation, label_names)
    out = html.escape(line)
    if name is not None and suggests:
        out += f"<br>suggested <b>{html.escape(name)}</b> ({confidence})"
    return f'<div class="ogad-why">{out}</div>'


def _neighbours(ctx: CardContext, explanation: Any) -> None:
    """Focus mode: the reasons and the nearest neighbours with their given labels."""
    if explanation.reasons:
        st.markdown("\n".join(f"- {md_escape(r)}" for r in explanation.reasons))
    neighbours = list(explanation.neighbours)
    if not neighbours:
        return
    st.caption("Nearest neighbours, with their given labels:")
    view = cache.run_view(ctx.run_path)
    refs = view.table.set_index("sample_id")["ref"]
    shown = neighbours[:NEIGHBOURS_SHOWN]
    shows = card_kind(ctx.kind)
    per_row = shows.neighbours_per_row
    for start in range(0, len(shown), per_row):
        columns = st.columns(per_row)
        for column, (nid, label) in zip(columns, shown[start : start + per_row], strict=False):
            with column:
                ref = str(refs.get(int(nid), ""))
                name = html.escape(str(ctx.label_names[int(label)]))
                head = f'<div class="ogad-why">#{int(nid)} · <b>{name}</b></div>'
                shows.neighbour(ctx.run_path, ref, head)


def _decision_buttons(
    ctx: CardContext, row: Any, relabel: tuple[str, str], acts: CardActions
) -> None:
    """Confirm / Reject (in ``acts``' words), the Relabel popover (class list and Relabel
    button: mounted only when opened), Back to unreviewed. No tooltips (the legend above the
    queue says what the buttons and keys do): every element drawn costs time on each
    decision."""
    sid = int(row.sample_id)
    decide, locked = actions.decide, not ctx.writable
    with st.container(horizontal=True, gap="small"):
        st.button(
            acts.confirm,
            key=keys.of(keys.CONFIRM, sid),
            type="primary",
            width="stretch",
            on_click=decide,
            args=(ctx.run, sid, CONFIRMED),
            disabled=locked,
        )
        st.button(
            acts.reject,
            key=keys.of(keys.REJECT, sid),
            width="stretch",
            on_click=decide,
            args=(ctx.run, sid, REJECTED),
            disabled=locked,
        )
    relabel_key, choice = relabel
    menu = _menu_text(ctx, row, relabel, acts)
    with st.popover(menu, key=keys.of(keys.RELABEL_MENU, sid), width="stretch"):
        st.selectbox(
            f"New class for #{sid}",
            ctx.label_names,
            index=ctx.label_names.index(choice) if choice in ctx.label_names else 0,
            key=relabel_key,
        )
        st.button(
            "Relabel",
            key=keys.of(keys.RELABEL, sid),
            type="primary",
            width="stretch",
            on_click=decide,
            args=(ctx.run, sid, RELABELED, relabel_key),
            disabled=locked,
        )
    if row.status != UNREVIEWED:
        st.button(
            "Back to unreviewed",
            key=keys.of(keys.UNREVIEW, sid),
            icon=":material/restart_alt:",
            type="tertiary",
            on_click=decide,
            args=(ctx.run, sid, UNREVIEWED),
            disabled=locked,
        )


def _details(
    ctx: CardContext, row: Any, explanation: Any, acts: CardActions = LABEL_ACTIONS
) -> str:
    """Labels, badges and the why line (HTML; the model's suggestion when ``acts.suggests``)."""
    parts = [_labels(row, ctx.label_names, acts), card_kind(ctx.kind).badges(row)]
    skip: tuple[str, ...] = ()
    if explanation is not None:  # the why line is the label evidence: not said twice
        parts.append(why_html(explanation, ctx.label_names, acts.suggests))
        skip = (LABEL,)
    parts.append(page_issues.why_issue_html(ctx.run, int(row.sample_id), skip))
    parts.append(page_issues.held_out_copy_html(ctx.run, ctx.kind, int(row.sample_id)))
    return "".join(parts)


def _card_html(*parts: str) -> str:
    return '<div class="ogad-card">' + "".join(parts) + "</div>"


def _problem_html(problem: str | None) -> str:
    return f'<div class="ogad-problem">⚠ {html.escape(problem or "image unavailable")}</div>'


def _body_html(
    ctx: CardContext,
    row: Any,
    explanation: Any,
    large: bool,
    place: tuple[int, int] | None = None,
    acts: CardActions = LABEL_ACTIONS,
) -> str:
    """A card above its buttons (HTML, escaped): head, the sample, labels, badges, why line.
    ``place``: (1-based place in the queue, queue length)."""
    head = f'<div class="ogad-head">{_head(ctx, row, place)}</div>'
    sample = card_kind(ctx.kind).sample_html(ctx.run_path, str(row.ref), large)
    return head + sample + _details(ctx, row, explanation, acts)


def card_payload(
    ctx: CardContext,
    row: Any,
    explanation: Any,
    suggested: int | None,
    place: tuple[int, int] | None = None,
) -> dict:
    """One grid card for the card deck (dashboard.deck_component): its HTML body (escaped),
    status, the class pre-selected in its Relabel menu and the key that choice is kept under,
    its buttons' words and, on a card without a suggestion, its menu's label until a class is
    picked. ``place``: (1-based place in the queue, queue length)."""
    sid = int(row.sample_id)
    members = page_issues.set_members(ctx.run, sid) if ctx.queue == ALL else []
    if members:
        return set_payload(ctx, row, members, place)
    new_label = None if pd.isna(row.new_label) else int(row.new_label)
    acts = card_actions(ctx, sid)
    if not acts.suggests:
        suggested = int(row.label)
    return {
        "sid": sid,
        "body": _body_html(ctx, row, explanation, False, place, acts),
        "status": str(row.status),
        "choice": relabel_default(row, len(ctx.label_names), suggested),
        "choice_key": state.relabel_key(sid, str(row.status), new_label),
        "texts": {"confirm": acts.confirm, "reject": acts.reject},
        "menu": None if acts.suggests or row.status == RELABELED else RELABEL_BY_HAND,
    }


def set_payload(
    ctx: CardContext, row: Any, members: list[int], place: tuple[int, int] | None = None
) -> dict:
    """The card deck's card of a duplicate set in All (``row``: its first member there): the
    set's members side by side, Keep #id per member (the others dropped), Keep all and a
    Relabel menu that picks the member; no Confirm / Reject (one member's Confirm could drop
    the correctly labelled original)."""
    rows = cache.table_with_decisions(ctx.run_path)[0].set_index("sample_id")
    head = f'<div class="ogad-head">{_head(ctx, row, place)}</div>'
    status = rows.loc[members, "status"].astype(str)
    given = [int(v) for v in rows.loc[members, "label"].to_numpy()]
    return {
        "sid": int(row.sample_id),
        "body": head + page_issues.set_card_html(ctx.run, members, rows),
        "status": UNREVIEWED if (status == UNREVIEWED).any() else str(status.iloc[0]),
        "choice": given[0],
        "choice_key": f"set_relabel_{int(row.sample_id)}",
        "set": [{"sid": int(m), "label": label} for m, label in zip(members, given, strict=True)],
        "menu": RELABEL_MEMBER,
    }


def render_card(
    ctx: CardContext,
    row: Any,
    *,
    explanation: Any = None,
    suggested: int | None = None,
    large: bool = False,
    place: tuple[int, int] | None = None,
) -> None:
    """Draw the card of one queue row (a namedtuple from ``DataFrame.itertuples``) with native
    elements: focus mode's card (the grid's cards are one card-deck element, see card_payload).

    ``explanation``: an ``ogad_core.scoring.explain.Explanation`` (None: not shown);
    ``suggested``: the class pre-selected for a relabel; ``large``: the focus-mode card.
    """
    sid = int(row.sample_id)
    acts = card_actions(ctx, sid)
    relabel = _relabel_choice(ctx, row, suggested if acts.suggests else int(row.label))
    with st.container(border=True, key=keys.of(keys.CARD, sid), gap="small", width="stretch"):
        st.html(_card_html(_body_html(ctx, row, explanation, large, place, acts)))
        _decision_buttons(ctx, row, relabel, acts)  # above the neighbours: in view unscrolled
        if large and explanation is not None:
            _neighbours(ctx, explanation)


def render_peek(ctx: CardContext, row: Any, caption: str) -> None:
    """A small preview of a neighbouring card in the queue (focus mode)."""
    with st.container(border=True, key=keys.of(keys.PEEK, row.sample_id)):
        st.caption(f"{caption} · #{int(row.sample_id)} · given {md_escape(row.label_name)}")
        card_kind(ctx.kind).peek(ctx.run_path, str(row.ref))


# ---- what a card shows of its sample, per data kind (the registry; no kind branches elsewhere)


class ImageCard:
    """An image sample: the picture (or why it cannot be shown) and its file name."""

    neighbours_per_row = NEIGHBOURS_SHOWN
    columns = 4  # the grid's cards per row at most

    def sample_html(self, run_path: str, ref: str, large: bool) -> str:
        size = LARGE_IMAGE_PX if large else CARD_IMAGE_PX
        uri, problem = cache.card_image_src(run_path, ref, size)
        picture = (
            _problem_html(problem)
            if uri is None
            else f'<img class="ogad-img" src="{uri}" alt="sample image">'
        )
        return picture + _file_html(run_path, ref)

    def neighbour(self, run_path: str, ref: str, head: str) -> None:
        img = _image_html(run_path, ref, NEIGHBOUR_IMAGE_PX)
        st.html(_card_html(head, img or '<div class="ogad-why">(image unavailable)</div>'))

    def peek(self, run_path: str, ref: str) -> None:
        _image(run_path, ref, CARD_IMAGE_PX // 2)

    def held_out_html(self, run_path: str, ref: str) -> str:
        """The held-out image a training image copies (its thumbnail from the issue pass),
        small, captioned, to set beside the sample; its path the tooltip."""
        uri, problem = cache.card_image_src(run_path, ref, HELD_OUT_IMAGE_PX)
        picture = (
            f'<img class="ogad-img" src="{uri}" alt="held-out copy">'
            if uri
            else f"<div>⚠ {html.escape(problem or 'image unavailable')}</div>"
        )
        return (  # the leakage reason names the file: its tooltip here
            f'<div class="ogad-held-out" title="{html.escape(ref)}">{picture}'
            "<div>its held-out copy</div></div>"
        )

    def badges(self, row: Any) -> str:
        return ""

    def member_html(self, run_path: str, ref: str, size: int) -> tuple[str, str]:
        """(the sample small, its caption) for a list of samples such as an issue's set."""
        uri, problem = cache.card_image_src(run_path, ref, size)
        body = (
            f'<img class="ogad-img" src="{uri}" alt="sample image">'
            if uri
            else f"<div>⚠ {html.escape(problem or 'image unavailable')}</div>"
        )
        return body, Path(ref).name


class TextCard:
    """A text sample: the preview, the whole text folded under it when long; a badge when the
    model saw a cut version."""

    neighbours_per_row = 3  # snippets need the width
    columns = 3

    def sample_html(self, run_path: str, ref: str, large: bool) -> str:
        preview, folded = (ref, False) if large else text_preview(ref)
        out = f'<div class="ogad-text">{html.escape(preview)}</div>'
        if folded:
            out += (
                f"<details><summary>Full text ({len(ref):,} characters)</summary>"
                f'<div class="ogad-text">{html.escape(ref)}</div></details>'
            )
        return out

    def neighbour(self, run_path: str, ref: str, head: str) -> None:
        st.html(_card_html(head))
        st.text(text_preview(ref, NEIGHBOUR_TEXT_CHARS)[0], wrap=True)

    def peek(self, run_path: str, ref: str) -> None:
        st.text(text_preview(ref, NEIGHBOUR_TEXT_CHARS)[0], wrap=True)

    def member_html(self, run_path: str, ref: str, size: int) -> tuple[str, str]:
        """(the sample's first 400 characters, no caption) for a list of samples."""
        return f'<div class="ogad-text">{html.escape(ref[:400])}</div>', ""

    def held_out_html(self, run_path: str, ref: str) -> str:
        """Nothing: the leakage reason quotes the held-out text whole."""
        return ""

    def badges(self, row: Any) -> str:
        if not bool(getattr(row, "truncated", False)):
            return ""
        tip = "The model saw a cut version of this text."
        return f"<div>{_badge('truncated', 'orange', tip)}</div>"


class FeatureCard(TextCard):
    """A feature row (tabular data, and any data kind without a card of its own): one
    ``name = value`` line each."""

    columns = 4

    def sample_html(self, run_path: str, ref: str, large: bool) -> str:
        features = parse_features(ref)
        lines = ref if features is None else "\n".join(f"{k} = {v}" for k, v in features.items())
        return f'<div class="ogad-text">{html.escape(lines)}</div>'

    def badges(self, row: Any) -> str:
        return ""


#: data kind -> what its cards show; a data kind without an entry shows as a feature row
CARD_KINDS: dict[str, ImageCard | TextCard] = {
    "image": ImageCard(),
    "text": TextCard(),
    "tabular": FeatureCard(),
}


def card_kind(kind: str) -> ImageCard | TextCard:
    """What a card of data ``kind`` shows (a feature row for a kind without its own card)."""
    return CARD_KINDS.get(kind, CARD_KINDS["tabular"])


CARD_CSS = """<style>
.ogad-card { font-size: 0.95rem; line-height: 1.45; }
.ogad-card .ogad-head { margin-bottom: 0.5rem; }
.ogad-card .ogad-img { display: block; max-width: 100%; height: auto; margin: 0 0 0.6rem 0;
  border-radius: 0.25rem; image-rendering: pixelated; }
.ogad-card .ogad-labels { margin-bottom: 0.3rem; }
.ogad-card .ogad-diff { color: #e07a10; }
.ogad-card .ogad-nopred { opacity: 0.6; font-size: 0.85rem; cursor: help; }
.ogad-card .ogad-badge { display: inline-block; font-size: 0.8rem; line-height: 1.2;
  padding: 0.1rem 0.4rem; border-radius: 0.25rem; margin-bottom: 0.2rem; }
.ogad-card .ogad-gray { color: rgb(115, 118, 133); background: rgba(128, 132, 149, 0.15); }
.ogad-card .ogad-red { color: rgb(212, 52, 52); background: rgba(255, 75, 75, 0.12); }
.ogad-card .ogad-green { color: rgb(23, 144, 62); background: rgba(33, 195, 84, 0.13); }
.ogad-card .ogad-orange { color: rgb(200, 110, 10); background: rgba(255, 164, 33, 0.15); }
.ogad-card .ogad-file { display: flex; gap: 0.4rem; align-items: center; font-size: 0.8rem;
  margin: -0.3rem 0 0.4rem 0; min-width: 0; }
.ogad-card .ogad-fname { overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  font-family: monospace; opacity: 0.85; min-width: 0; }
.ogad-card .ogad-copy { flex: none; font-size: 0.75rem; padding: 0 0.35rem; line-height: 1.5;
  border: 1px solid rgba(128, 132, 149, 0.4); border-radius: 0.25rem; background: transparent;
  color: inherit; cursor: pointer; }
.ogad-card .ogad-copy[data-copied] { color: rgb(23, 144, 62); border-color: rgb(23, 144, 62); }
.ogad-card .ogad-place { opacity: 0.65; font-size: 0.8rem; line-height: 1.2; }
.ogad-deck button.ogad-copy, .ogad-card button.ogad-copy { width: auto; min-height: 0;
  padding: 0 0.35rem; font-size: 0.75rem; line-height: 1.5; }
.ogad-help summary { cursor: pointer; font-size: 0.8rem; opacity: 0.75; }
.ogad-help { font-size: 0.8rem; opacity: 0.8; display: inline-block; margin-right: 1.2rem;
  vertical-align: top; }
.ogad-help[open] { display: block; }
.ogad-helps { line-height: 1.3; }
.ogad-card .ogad-why { font-size: 0.85rem; opacity: 0.7; margin-top: 0.4rem; }
.ogad-card .ogad-held-out { font-size: 0.85rem; margin-top: 0.4rem; }
.ogad-card .ogad-held-out .ogad-img { margin: 0 0 0.2rem 0; }
.ogad-card .ogad-issue-line {
  display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
}
.ogad-card .ogad-issue-line.ogad-whole { display: block; overflow: visible;
  overflow-wrap: anywhere; }
.ogad-card .ogad-text { margin-bottom: 0.5rem; white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: 0.9rem; }
.ogad-card details summary { cursor: pointer; font-size: 0.85rem; opacity: 0.8; }
.ogad-card .ogad-problem { color: rgb(146, 108, 5); background: rgba(255, 193, 7, 0.15);
  border-radius: 0.25rem; padding: 0.5rem; font-size: 0.85rem; overflow-wrap: anywhere;
  margin-bottom: 0.5rem; }
.ogad-title { font-size: 1.25rem; font-weight: 600; line-height: 1.4; }
.ogad-sub, .ogad-flash { font-size: 0.875rem; opacity: 0.75; line-height: 1.5; }
.ogad-flash { opacity: 0.9; margin: 0.3rem 0; }
.ogad-ok { color: rgb(33, 195, 84); font-weight: 700; }
.ogad-progress { font-size: 0.875rem; margin: 0.2rem 0 0.4rem 0; }
.ogad-track { height: 0.5rem; border-radius: 0.25rem; background: rgba(128, 132, 149, 0.2);
  margin-top: 0.3rem; overflow: hidden; }
.ogad-bar { height: 100%; background: rgb(255, 75, 75); }
.ogad-target-note { font-size: 0.8rem; opacity: 0.7; margin-top: 0.2rem; }
</style>"""
#: the queue's title and order line take the width Bulk and Undo leave and wrap inside it
#: (Streamlit sizes an element of a row by its text, which pushed the buttons to a row below)
HEAD_CSS = (
    f"<style>.{keys.css_class(keys.QUEUE_HEAD)} > .stElementContainer:first-child "
    "{ flex: 1 1 0; min-width: 12rem; }</style>"
)


def install_style() -> None:
    """The cards' CSS, once per page (a style-only ``st.html`` takes no space)."""
    st.html(CARD_CSS + HEAD_CSS)
