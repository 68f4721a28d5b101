"""The issue queues in the Streamlit app (AppTest): each issue queue's header states its own
count and how its flag is decided, not the label review target."""

from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ogad_core.run.manifest import StepRecord
from ogad_core.run.rundir import RunDir
from ogad_core.testing import make_run

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
OUTLIER_RULE = "far from every other sample (test rule)"


def _with_issues(run: Path) -> None:
    """issues.parquet with 6 label flags and 3 outliers, and the issues step's record."""
    rd = RunDir(run)
    n = len(rd.read_samples())
    rows = []
    for issue, flagged in (("label", range(6)), ("outlier", (10, 11, 12))):
        for sid in range(n):
            hit = sid in flagged
            rows.append((sid, issue, float(hit), sid + 1, hit, None, "why" if hit else ""))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table.to_parquet(rd.issues_path)
    manifest = rd.load_manifest()
    types = {
        "label": {"flagged": 6, "threshold": "the review target"},
        "outlier": {"flagged": 3, "threshold": OUTLIER_RULE},
    }
    manifest.mark_done("issues", StepRecord(fingerprint="test", extra={"types": types}))
    rd.save_manifest(manifest)


def _text(at: AppTest) -> str:
    bodies = [str(getattr(e, "proto", e)) for e in at.get("html")]
    return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(bodies)))


@pytest.mark.parametrize("issue", ["outlier", "all"])
def test_an_issue_queue_states_its_own_count_and_rule(
    issue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import state
    from dashboard.page_issues import ISSUE

    run = make_run(tmp_path / "run", n=60)
    _with_issues(run)
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[ISSUE] = issue
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    n = 3 if issue == "outlier" else 9
    title = "Outliers" if issue == "outlier" else "All issues"
    assert f"0 of {n} flagged reviewed · {title}: {n} flagged" in text, text[:2000]
    assert "review target" not in text
    rule = OUTLIER_RULE if issue == "outlier" else "every sample some issue type flags"
    assert rule in text
    # the queue says it follows that type's order, and it is never re-ranked (no toggle)
    order = "the outlier issue type's rank" if issue == "outlier" else "the All queue's priority"
    assert f"ordered by {order}" in " ".join(text.split())
    assert "ordered by loss" not in text
    assert not [t for t in at.toggle if t.key in (state.RERANK, state.RERANK_LABEL)]
    at.session_state[ISSUE] = "label"
    at.run()
    assert "review target" in _text(at)  # the label queue keeps its target header


def test_the_duplicate_card_marks_a_member_that_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate set whose member copies a held-out file: the card's title says the set leaks
    and the member carries the leakage reason; Leakage joins the selector; the title says how
    the members matched."""
    from dashboard.page_issues import ISSUE

    run = make_run(tmp_path / "run", n=60)
    rd = RunDir(run)
    rows = []
    for sid in range(60):
        in_set = sid in (4, 5)
        leak = sid == 5
        how = "near duplicate (aligned by a shift, rotation or rescale) of #" + str(9 - sid)
        dup_why = f"{how} (set of 2)" if in_set else ""
        rows.append(
            (sid, "duplicate", float(in_set), sid + 1, in_set, 4 if in_set else None, dup_why)
        )
        why = "exact copy of held-out val/a.png: the held-out score is inflated" if leak else ""
        rows.append((sid, "leakage", float(leak), sid + 1, leak, 5 if leak else None, why))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = table["set_id"].astype("Int64")
    table.to_parquet(rd.issues_path)
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state[ISSUE] = "duplicate"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    titles = " ".join(m.value for m in at.markdown)
    assert "Duplicate set #4" in titles and "leaks into the held-out split" in titles
    # the title says how the members matched (a reviewer checks an aligned copy more closely)
    shown = titles.replace("\\", "")  # markdown escapes, as the page renders them
    assert "2 samples · near duplicates (aligned by a shift, rotation or rescale)" in shown
    text = _text(at)
    assert text.count("leakage: exact copy of held-out val/a.png") == 1
    options = at.get("button_group")[0].proto.options if at.get("button_group") else []
    assert any("Leakage 1" in str(o) for o in options)


def _with_duplicate_sets(run: Path) -> None:
    """issues.parquet with two duplicate sets: {4, 5, 6} and {10, 11}."""
    rows = []
    for sid in range(60):
        set_id = 4 if sid in (4, 5, 6) else 10 if sid in (10, 11) else None
        why = f"exact copy (set of {3 if set_id == 4 else 2})" if set_id is not None else ""
        rows.append((sid, "duplicate", float(set_id is not None), sid + 1, bool(why), set_id, why))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = table["set_id"].astype("Int64")
    table.to_parquet(RunDir(run).issues_path)


def test_the_duplicates_page_says_what_keep_one_did_and_one_undo_takes_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep one on a set's card: the page says which member was kept and which were dropped
    (the message was left for another queue to show), and its Undo (key U) takes the whole
    action back in one step; Keep all and a member's Relabel say what they did too."""
    from dashboard import keys, state
    from dashboard.page_issues import ISSUE, KEEP_PREFIX
    from dashboard.run_view import load_run_view
    from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED, ReviewStore

    run = make_run(tmp_path / "run", n=60)
    _with_duplicate_sets(run)
    at = _started(run, monkeypatch)
    at.session_state[ISSUE] = "duplicate"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    undo = at.button(key=keys.UNDO)
    assert undo.disabled  # nothing to undo yet
    assert "undone by Undo (key U)" in _text(at)
    samples = RunDir(run).read_samples().set_index("sample_id")
    names = list(load_run_view(run).label_names)
    shown = " ".join(_text(at).split())
    for sid in (4, 5, 6):  # each member says what the model predicts (which label is right)
        given, pred = names[samples.at[sid, "label"]], names[samples.at[sid, "pred"]]
        assert f"#{sid} · given {given} · predicted {pred} · unreviewed" in shown
    keep = at.selectbox(key=f"{KEEP_PREFIX}4")
    assert keep.options == ["keep #4", "keep #5", "keep #6"]  # says what it chooses
    keep.set_value(5).run()
    at.button(key=keys.of(keys.KEEP_ONE, 4)).click().run()
    store = ReviewStore(run)
    assert [store.get(s) for s in (4, 5, 6)] == [CONFIRMED, REJECTED, CONFIRMED]
    assert "kept #5, dropped #4, #6 · U undoes it" in " ".join(_text(at).split())
    at.button(key=keys.UNDO).click().run()
    assert [store.get(s) for s in (4, 5, 6)] == [UNREVIEWED] * 3  # one step
    assert "undone: a bulk action on 3 samples" in _text(at)

    other = (int(RunDir(run).read_samples().set_index("sample_id").at[11, "label"]) + 1) % 3
    at.selectbox(key=f"{state.RELABEL_PREFIX}11").set_value(other).run()
    at.button(key=keys.of(keys.DUP_RELABEL, 11)).click().run()
    assert store.get(11) == RELABELED and "relabeled #11" in _text(at)
    at.button(key=keys.of(keys.KEEP_ALL, 10)).click().run()
    assert store.get(10) == REJECTED and store.get(11) == RELABELED
    assert "rejected 1 sample (duplicate set #10)" in _text(at)


def test_the_duplicates_page_says_whether_it_found_none_or_all_are_reviewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose duplicate type found no set says so (it read "No open duplicate sets", as if
    they were reviewed); once every set is reviewed the page says where to see them again; the
    sidebar's label filters, which the sets ignore, are named as not applying."""
    from dashboard import state
    from dashboard.page_issues import ALL_SETS_REVIEWED, ISSUE, NO_SETS, SETS_UNFILTERED
    from ogad_core.review.store import REJECTED, ReviewStore

    run = make_run(tmp_path / "run", n=60)
    _with_duplicate_sets(run)
    at = _started(run, monkeypatch)
    at.session_state[ISSUE] = "duplicate"
    at.run()
    assert SETS_UNFILTERED.strip() not in " ".join(c.value for c in at.caption)
    name = str(RunDir(run).read_samples()["label_name"].iloc[0])
    at.multiselect(key=state.CLASSES).set_value([name]).run()
    assert SETS_UNFILTERED.strip() in " ".join(c.value for c in at.caption)
    ReviewStore(run).decide_many([4, 5, 6, 10, 11], REJECTED, reviewer="alice")
    at.run()
    assert [s.value for s in at.success] == [ALL_SETS_REVIEWED]

    none = make_run(tmp_path / "none", n=60)
    _with_duplicate_sets(none)
    table = pd.read_parquet(RunDir(none).issues_path)
    table["flagged"] = False
    table.to_parquet(RunDir(none).issues_path)
    at = _started(none, monkeypatch)
    at.session_state[ISSUE] = "duplicate"
    at.run()
    assert not at.exception and [s.value for s in at.success] == [NO_SETS]


def _why_line(loss: float) -> SimpleNamespace:
    """A detector's explanation of a sample (its loss, margin, gradient-norm percentile)."""
    return SimpleNamespace(loss=loss, margin=-0.9, grad_norm_percentile=100.0, suggested_label=None)


def _card_details(run: Path, explanation: SimpleNamespace | None) -> str:
    """Sample 0's card details in ``run`` (labels, badges, why and issue lines; HTML
    unescaped) as an image card of the classes a, b, c."""
    from dashboard import cards
    from dashboard.context import Context

    table, _ = cards.cache.table_with_decisions(str(run))
    row = next(table[table["sample_id"] == 0].itertuples())
    ctx = cards.CardContext(Context(str(run)), "image", ["a", "b", "c"], "loss", True)
    return html.unescape(cards._details(ctx, row, explanation))


def test_a_card_with_a_why_line_does_not_repeat_the_label_issue(tmp_path: Path) -> None:
    """A card whose why line gives the label evidence leaves out the `label: ...` issue line
    (it said the same thing in three more lines and pushed Confirm below a laptop's fold);
    the other issues that flag the sample stay, each clamped on the card with its whole text
    as the tooltip; a card without a why line keeps the label line."""

    run = make_run(tmp_path / "run", n=40)
    _with_issues(run)
    rd = RunDir(run)
    issues = rd.read_issues()
    also_outlier = (issues["issue"] == "outlier") & (issues["sample_id"] == 0)
    issues.loc[also_outlier, ["flagged", "explanation"]] = [True, "why"]
    issues.to_parquet(rd.issues_path)
    with_why = _card_details(run, _why_line(loss=9.5))
    assert "label: why" not in with_why
    assert 'class="ogad-issue-line" title="outlier: why"' in with_why
    without_why = _card_details(run, None)
    assert "label: why" in without_why and "outlier: why" in without_why


def test_a_label_card_adds_what_the_label_type_says_beyond_the_why_line(tmp_path: Path) -> None:
    """The label type's likeliest true class and neighbour share are one short line under the
    why line, its whole reason the tooltip; the detector's score and the model's guess, which
    the why line gives, are not repeated on the card."""

    run = make_run(tmp_path / "run", n=40)
    _with_issues(run)
    rd = RunDir(run)
    issues = rd.read_issues()
    reason = (
        "label looks wrong (loss score 6.77; 0 of its 42 nearest samples carry its label): the"
        " model predicts c at 100%; 12 samples filed as a look like c (wrong-label posterior"
        " 0.98; likeliest true class c at 0.97)"
    )
    issues.loc[(issues["issue"] == "label") & (issues["sample_id"] == 0), "explanation"] = reason
    issues.to_parquet(rd.issues_path)
    card = _card_details(run, _why_line(loss=6.8))
    line = "label: likely c (0.97) · 0/42 neighbours agree"
    assert f'title="label: {reason}">{line}</div>' in card
    assert "loss score 6.77" not in re.sub(r'title="[^"]*"', "", card)


def _with_label_order(run: Path, detector: str | None = "iforest") -> pd.DataFrame:
    """issues.parquet whose label type ranks the samples in reverse sample-id order (unlike
    every detector) and flags the top 6; outliers 0-11 (the label type does not flag them).
    ``detector``: the label type's detector in the issues step's record (None: not recorded)."""
    rd = RunDir(run)
    n = len(rd.read_samples())
    rows = []
    for sid in range(n):
        top = sid >= n - 6
        rows.append((sid, "label", float(sid), n - sid, top, None, "why" if top else ""))
        out = sid < 12
        rows.append((sid, "outlier", float(-sid), sid + 1, out, None, "far" if out else ""))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table.to_parquet(rd.issues_path)
    manifest = rd.load_manifest()
    label: dict[str, object] = {"flagged": 6, "threshold": "the review target"}
    if detector is not None:
        label["detector"] = detector
    types = {"label": label, "outlier": {"flagged": 12, "threshold": OUTLIER_RULE}}
    manifest.mark_done("issues", StepRecord(fingerprint="test", extra={"types": types}))
    rd.save_manifest(manifest)
    return table


def _started(run: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    from dashboard import state

    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params[state.REVIEWER_PARAM] = "alice"
    return at.run()


def test_the_label_queue_follows_the_label_types_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the detector the label type ranked with, the Label issues queue is the label type's
    rank, as long as its flags, and its length and progress count the label queue's decisions
    (not those on samples only another issue type flags: 12 confirmed outliers would extend the
    queue by the keep-going rule); another detector gives that detector's order and the page
    says which detector gives the label type's."""
    from dashboard import state
    from dashboard.testing import card_ids
    from ogad_core.review.store import CONFIRMED, ReviewStore

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    ReviewStore(run).decide_many(list(range(12)), CONFIRMED, reviewer="alice")  # outliers
    at = _started(run, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key=state.DETECTOR).value == "iforest"
    assert card_ids(at) == [59, 58, 57, 56, 55, 54]  # the label flags, its rank 1 first
    text = " ".join(_text(at).split())
    assert "ordered by the label issue type's rank" in text
    assert "0 of 6 reviewed" in text and "Label issues: 6 flagged" in text
    ReviewStore(run).decide_many([59], CONFIRMED, reviewer="alice")
    at.run()
    assert card_ids(at) == [58, 57, 56, 55, 54]
    assert "1 of 6 reviewed" in " ".join(_text(at).split())

    at.selectbox(key=state.DETECTOR).set_value("l2").run()
    assert not at.exception, [e.value for e in at.exception]
    scores = pd.read_parquet(run / "scores.parquet").sort_values("l2_rank")
    n = at.number_input(key=state.TOP_K).value
    want = [i for i in scores["sample_id"].head(n) if i >= 12 and i != 59][:8]
    assert n > 6 and card_ids(at) == want  # l2's order, the review target long
    text = " ".join(_text(at).split())
    head = _head_line(at)  # short, so Bulk and Undo stay on its line; the hint in its tooltip
    assert head.endswith("ordered by l2 rank<") and "Choose iforest in the sidebar" in head
    assert "review target" in text and "Label issues: 6 flagged" not in text


def test_the_label_queue_without_a_recorded_detector_uses_the_steps_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose issues step did not record the label type's detector (made before it did):
    the step's own choice (the default detector when the run has it, else its first) is the
    label type's; a run without issues.parquet keeps the detector's order."""
    from dashboard.issue_view import load_issue_view
    from dashboard.testing import card_ids

    run = make_run(tmp_path / "run", n=60)
    scores = pd.read_parquet(run / "scores.parquet").sort_values("iforest_rank")
    at = _started(run, monkeypatch)
    assert card_ids(at)[:3] == scores["sample_id"].head(3).tolist()  # no issues.parquet
    _with_label_order(run, detector=None)
    iv = load_issue_view(run)
    assert iv is not None and iv.label_detector == "iforest"  # make_run has no loss scores
    at = _started(run, monkeypatch)
    assert card_ids(at) == [59, 58, 57, 56, 55, 54]


def test_reranking_in_the_label_queue_starts_from_the_label_types_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The review session's re-ranker gets the label type's score as its base in the Label
    issues queue, and the detector's in another issue type's queue or with another detector."""
    import numpy as np

    from dashboard import state
    from ogad_core.review.store import CONFIRMED, REJECTED, ReviewStore
    from ogad_core.scoring import rerank

    run = make_run(tmp_path / "run", n=60)
    rng = np.random.default_rng(1)
    np.save(RunDir(run).gradients_path, rng.normal(0, 1, (60, 8)).astype(np.float32))
    _with_label_order(run)
    ReviewStore(run).decide_many([59, 58], CONFIRMED, reviewer="alice")
    ReviewStore(run).decide_many([10, 11], REJECTED, reviewer="alice")
    bases: list[np.ndarray] = []
    real = rerank.rerank_scores

    def spy(embeddings, base_scores, *args, **kwargs):  # type: ignore[no-untyped-def]
        bases.append(np.asarray(base_scores, dtype=float).copy())
        return real(embeddings, base_scores, *args, **kwargs)

    monkeypatch.setattr(rerank, "rerank_scores", spy)
    at = _started(run, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.toggle(key=state.RERANK_LABEL).value  # off at first in the label type's order
    assert "re-ranked from the decisions" not in " ".join(_text(at).split())
    at.toggle(key=state.RERANK_LABEL).set_value(True).run()
    assert bases and np.array_equal(bases[-1], np.arange(60, dtype=float))  # the label score
    assert "re-ranked from the decisions" in " ".join(_text(at).split())
    at.selectbox(key=state.DETECTOR).set_value("l2").run()
    assert at.toggle(key=state.RERANK).value  # in a detector's order: on
    l2 = pd.read_parquet(run / "scores.parquet").sort_values("sample_id")["l2_score"]
    assert np.array_equal(bases[-1], l2.to_numpy(dtype=float))


def test_reranking_keeps_what_another_issue_type_explains_below_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-ranked from decisions, the Label issues queue keeps the samples only another issue
    type flags after every other sample (the re-ranker's loss and neighbour features would lift
    them back: the duplicate copies the label type leaves to their set's card); in the static
    order they stay where the label type ranks them."""
    import numpy as np

    from dashboard import state
    from dashboard.testing import card_ids
    from ogad_core.review.store import CONFIRMED, REJECTED, ReviewStore

    run = make_run(tmp_path / "run", n=60)
    np.save(RunDir(run).gradients_path, np.random.default_rng(1).normal(0, 1, (60, 8)))
    table = _with_label_order(run)
    first = (table["issue"] == "label") & table["sample_id"].isin([0, 1, 2])
    table.loc[first, "score"] = 100.0 - table.loc[first, "sample_id"]  # ranked first here
    table.loc[table["issue"] == "label", "rank"] = (
        table.loc[table["issue"] == "label", "score"].rank(ascending=False).astype(int)
    )
    table.to_parquet(RunDir(run).issues_path)
    ReviewStore(run).decide_many([59, 58], CONFIRMED, reviewer="alice")
    ReviewStore(run).decide_many([10, 11], REJECTED, reviewer="alice")
    at = _started(run, monkeypatch)
    at.number_input(key=state.TOP_K).set_value(0).run()
    at.selectbox(key=state.PER_PAGE).set_value(36).run()
    assert card_ids(at)[:3] == [0, 1, 2]  # the static order (the default): the label type's
    at.toggle(key=state.RERANK_LABEL).set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not {0, 1, 2} & set(card_ids(at))  # re-ranked: after the 56 - 3 others


def _head_text(body: str) -> str:
    """The text of a card body's head line (``card 1 of 6 #59 · rank 1 · score 59.000``)."""
    head = body.split('<div class="ogad-head">', 1)[1].split('<div class="ogad-place">', 1)[-1]
    head = head.split("</span>", 1)[0]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", head)).split())


def _head_tip(body: str) -> str:
    found = re.search(r'<div class="ogad-head">.*?<span title="([^"]*)"', body)
    return "" if found is None else html.unescape(found.group(1))


def test_a_cards_rank_is_the_rank_of_the_queues_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the label type's order a card shows the label type's rank and score (not the
    detector's: "rank 16" on the first card read as a bug), and its tooltip says so; in the
    Outliers queue the outlier type's; in All its priority place and the type that set it;
    another detector in Label issues and a run without issues.parquet keep the detector's."""
    from dashboard import state
    from dashboard.page_issues import ISSUE
    from dashboard.testing import deck_cards

    run = make_run(tmp_path / "run", n=60)
    scores = pd.read_parquet(run / "scores.parquet").set_index("sample_id")
    plain = _started(run, monkeypatch)  # no issues.parquet: the detector's rank, as before
    first = deck_cards(plain)[0]
    sid = int(first["sid"])
    rank, score = scores.at[sid, "iforest_rank"], scores.at[sid, "iforest_score"]
    iforest = f"rank {int(rank)} · score {score:.3f}"
    assert iforest in _head_text(first["body"]) and "iforest" in _head_tip(first["body"])

    _with_label_order(run)
    at = _started(run, monkeypatch)
    bodies = [c["body"] for c in deck_cards(at)]
    assert _head_text(bodies[0]).endswith("#59 · rank 1 · score 59.000")
    assert _head_text(bodies[1]).endswith("#58 · rank 2 · score 58.000")
    assert "label issue type's rank and score" in _head_tip(bodies[0])

    at.session_state[ISSUE] = "outlier"
    at.run()
    bodies = [c["body"] for c in deck_cards(at)]
    assert _head_text(bodies[1]).endswith("#1 · rank 2 · score -1.000")
    assert "outlier issue type's rank and score" in _head_tip(bodies[1])

    at.session_state[ISSUE] = "all"
    at.run()
    at.selectbox(key=state.PER_PAGE).set_value(36).run()
    heads = {int(c["sid"]): c["body"] for c in deck_cards(at)}
    assert _head_text(heads[0]).endswith("#0 · priority 1 · outlier rank 1")
    assert _head_text(heads[59]).endswith("#59 · priority 13 · label rank 1")
    assert "All queue's priority: place 13 of 18" in _head_tip(heads[59])

    at.session_state[ISSUE] = "label"
    at.run()
    at.selectbox(key=state.DETECTOR).set_value("l2").run()  # the detector's order: its rank
    body = deck_cards(at)[0]["body"]
    sid = int(deck_cards(at)[0]["sid"])
    l2 = f"rank {int(scores.at[sid, 'l2_rank'])} · score {scores.at[sid, 'l2_score']:.3f}"
    assert _head_text(body).endswith(f"#{sid} · {l2}") and "l2" in _head_tip(body)


def _map_data(at: AppTest) -> dict:
    """The map component's data as the page sent it."""
    import json

    from dashboard.map_component import COMPONENT_NAME

    maps = [e for e in at.get("bidi_component") if e.proto.component_name == COMPONENT_NAME]
    assert maps, "no map on the page"
    return json.loads(maps[0].proto.json)


def _map_top(at: AppTest) -> list[int]:
    """The sample ids the map outlines (drawn last, the first of the queue last of all)."""
    import base64
    import json

    import numpy as np

    from dashboard.map_component import COMPONENT_NAME

    maps = [e for e in at.get("bidi_component") if e.proto.component_name == COMPONENT_NAME]
    assert maps, "no map on the page"
    data = json.loads(maps[0].proto.json)
    sids = np.frombuffer(base64.b64decode(data["sid"]), dtype="<f8").astype(int)
    return sids[len(sids) - int(data["n_top"]) :].tolist()


def test_the_map_outlines_the_first_samples_of_the_queue_under_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map's outlined layer is the queue beside it: the label type's flags in the Label
    issues queue (its rank 1 drawn last), the outliers in the Outliers queue, the detector's
    top with another detector; its caption says whose order."""
    from dashboard import state
    from dashboard.page_issues import ISSUE, MAP_SPACE

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    at = _started(run, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert _map_top(at) == [54, 55, 56, 57, 58, 59]  # the label flags, rank 1 (#59) last
    caption = " ".join(c.value for c in at.caption)
    assert "queue's first 6 cards (in its order, after the sidebar's filters)" in caption
    at.session_state[ISSUE] = "outlier"
    at.run()
    assert _map_top(at) == list(range(9, -1, -1))  # 10 of the 12 outliers (60 // 50 -> 10)
    coords = pd.read_parquet(RunDir(run).map_path).sample(frac=1.0, random_state=0)
    coords.assign(x=-coords["y"], y=coords["x"]).to_parquet(RunDir(run).features_map_path)
    at.session_state[MAP_SPACE] = "features"  # the model's features: the same queue on top
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Feature map" in " ".join(m.value for m in at.markdown)
    assert _map_top(at) == list(range(9, -1, -1))
    at.session_state[MAP_SPACE] = "gradients"
    at.session_state[ISSUE] = "label"
    at.selectbox(key=state.DETECTOR).set_value("l2").run()
    l2 = pd.read_parquet(run / "scores.parquet").sort_values("l2_rank")["sample_id"]
    assert _map_top(at) == l2.head(10).tolist()[::-1]  # the detector's order: its queue
    assert "queue's first 10 cards (in its order" in " ".join(c.value for c in at.caption)


def _outlined_are_the_first_cards(at: AppTest) -> list[int]:
    """The outlined sample ids, the queue's first first, checked against the cards shown."""
    from dashboard.testing import card_ids

    assert not at.exception, [e.value for e in at.exception]
    top, cards = _map_top(at)[::-1], card_ids(at)
    shown = min(len(top), len(cards))  # the outline may reach past the first page
    assert shown and top[:shown] == cards[:shown]
    return top


def test_the_map_outlines_the_queue_the_sidebars_filters_leave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outline is the queue beside the map after the sidebar's filters (given and predicted
    label), in the Label issues queue, another issue type's and the detector's order; filters
    that empty the queue outline nothing, and the caption says so."""
    from dashboard import state
    from dashboard.page_issues import ISSUE
    from dashboard.run_view import load_run_view

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    samples = RunDir(run).read_samples().set_index("sample_id")
    names = list(load_run_view(run).label_names)
    given = samples["label_name"]
    predicted = samples["pred"].map(dict(enumerate(names)))
    at = _started(run, monkeypatch)
    name = str(given[57])  # a class of the label queue's flags (59 ... 54)
    at.multiselect(key=state.CLASSES).set_value([name]).run()
    assert _outlined_are_the_first_cards(at) == [s for s in range(59, 53, -1) if given[s] == name]
    at.session_state[ISSUE] = "outlier"  # its flags 0-11 of that class, by its rank
    at.run()
    assert _outlined_are_the_first_cards(at) == [s for s in range(12) if given[s] == name][:10]
    at.session_state[ISSUE] = "label"
    at.run()
    at.multiselect(key=state.CLASSES).set_value([]).run()
    at.selectbox(key=state.DETECTOR).set_value("l2").run()  # the detector's order
    at.multiselect(key=state.PRED_CLASSES).set_value([str(predicted[30])]).run()
    outlined = _outlined_are_the_first_cards(at)
    assert set(predicted[outlined]) == {predicted[30]}

    at.selectbox(key=state.DETECTOR).set_value("iforest").run()
    flags = set(zip(given.loc[54:59], predicted.loc[54:59], strict=True))
    pair = next((g, p) for g in names for p in names if (g, p) not in flags)
    at.multiselect(key=state.CLASSES).set_value([pair[0]]).run()
    at.multiselect(key=state.PRED_CLASSES).set_value([pair[1]]).run()
    assert not at.exception and _map_top(at) == []  # nothing left: nothing outlined
    caption = " ".join(c.value for c in at.caption)
    assert "No card is in the queue with these filters: nothing is outlined." in caption


def test_the_map_of_an_issue_queue_puts_its_first_samples_on_top_of_a_raster(
    tmp_path: Path,
) -> None:
    """build_map with the queue's first rows: they are the top-ranked points over the raster
    (then the detector's order), at most as many outlined as the queue holds."""
    import numpy as np

    from dashboard.map_view import build_map
    from dashboard.run_view import load_run_view

    run = make_run(tmp_path / "run", n=60)
    view = load_run_view(run)
    rows = np.array([7, 3, 40])
    layer = build_map(
        view,
        color_by="label",
        detector="iforest",
        full_points_max=20,
        overlay_points=5,
        first=rows,
    )
    sids = view.table["sample_id"].to_numpy()
    assert layer.raster and layer.n_top == 3 and layer.payload["top_text"] == "the queue's first 3"
    assert layer.drawn_ids[-3:].tolist() == sids[[40, 3, 7]].tolist()  # the first drawn last
    rest = view.table.sort_values("iforest_rank")["sample_id"]
    rest = [s for s in rest if s not in set(sids[rows])][:2]
    assert sorted(layer.drawn_ids[:2].tolist()) == sorted(rest)
    assert build_map(view, color_by="label", detector="iforest").payload["top_text"] is None


def test_a_reload_keeps_the_issue_queue_under_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The selected issue type is kept in the address (``?issue=outlier``) as the reviewer's
    name is, so a reload (a new session with that address) stays in the Outliers queue; Label
    issues, the default, is left out of the address; an unknown name falls back to it."""
    from dashboard import pages, state
    from dashboard.page_issues import ISSUE
    from dashboard.testing import open_page

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    at = _started(run, monkeypatch)
    assert state.ISSUE_PARAM not in at.query_params
    at.button_group[0].set_value("outlier").run()
    assert at.query_params[state.ISSUE_PARAM] == "outlier"
    at.button_group[0].set_value("all").run()
    assert at.query_params[state.ISSUE_PARAM] == "all"
    open_page(at, pages.SUMMARY).run()  # another page keeps it (and the choice) too
    assert not at.exception and at.query_params[state.ISSUE_PARAM] == "all"
    open_page(at, pages.REVIEW).run()
    assert at.session_state[ISSUE] == "all" and at.query_params[state.ISSUE_PARAM] == "all"

    for value, order in (
        ("outlier", "the outlier issue type's rank"),
        ("all", "the All queue's priority"),
        ("bogus'<x>", "the label issue type's rank"),
        ("duplicate", None),  # no duplicate type in this run: Label issues
    ):
        reloaded = AppTest.from_file(APP, default_timeout=90)
        reloaded.query_params[state.REVIEWER_PARAM] = "alice"
        reloaded.query_params[state.ISSUE_PARAM] = value
        reloaded.run()
        assert not reloaded.exception, [e.value for e in reloaded.exception]
        text = " ".join(_text(reloaded).split())
        assert f"ordered by {order or LABEL_ORDER}" in text, (value, text[:500])
        expected = value if value in ("outlier", "all") else "label"
        assert reloaded.session_state[ISSUE] == expected
        kept = reloaded.query_params.get(state.ISSUE_PARAM)
        assert kept == (value if expected != "label" else None)
        assert reloaded.query_params[state.REVIEWER_PARAM] == "alice"


LABEL_ORDER = "the label issue type's rank"


def test_the_summarys_class_health_counts_the_label_queues_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Summary's class-health chart counts as flagged what the Label issues queue flags:
    the label type's flags while its detector is chosen, the detector's top otherwise."""
    import base64

    import numpy as np

    from dashboard import pages, state
    from dashboard.testing import chart_figures, open_page

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    labels = RunDir(run).read_samples().set_index("sample_id")["label"]
    at = _started(run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    assert not at.exception, [e.value for e in at.exception]

    def flagged_bars() -> list[int]:
        for fig in chart_figures(at):
            for trace in fig["data"]:
                if trace.get("name") == "flagged (estimated noisy)":
                    y = trace["y"]  # plotly's typed array: {"dtype", "bdata"}, or a list
                    if isinstance(y, dict):
                        y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
                    return [int(v) for v in y]
        raise AssertionError("no class-health chart")

    want = np.bincount(labels.loc[[54, 55, 56, 57, 58, 59]].to_numpy(), minlength=3)
    assert flagged_bars() == want.tolist()
    at.session_state[state.DETECTOR] = "l2"
    at.run()
    assert sum(flagged_bars()) > 6  # l2's top of the review target (longer than 6)


def _sidebar_text(at: AppTest) -> str:
    return " ".join(str(getattr(e, "value", "")) for e in at.sidebar.caption)


def test_an_issue_queues_sidebar_length_is_its_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Outliers and All the sidebar's queue length is that queue's (its flags, said in the
    label), not the review target, and cannot be set there; the Label issues queue keeps the
    length the reviewer set by hand over a visit to another queue."""
    from dashboard import state
    from dashboard.page_issues import ISSUE, LENGTH_BOX
    from dashboard.testing import card_ids

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    at = _started(run, monkeypatch)
    assert at.number_input(key=state.TOP_K).value == 6  # the label flags
    at.number_input(key=state.TOP_K).set_value(4).run()
    assert card_ids(at) == [59, 58, 57, 56]
    for issue, n, said in (("outlier", 12, "Outliers: its flags"), ("all", 18, "All: its flags")):
        at.session_state[ISSUE] = issue
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        box = at.number_input(key=LENGTH_BOX)
        assert box.value == n and box.disabled and said in box.label, (box.label, box.value)
        assert not [w for w in at.number_input if w.key == state.TOP_K]
        assert f"Review queue · {n} to review" in _text(at)
    at.session_state[ISSUE] = "label"
    at.run()
    assert at.number_input(key=state.TOP_K).value == 4 and card_ids(at) == [59, 58, 57, 56]


def test_the_score_threshold_filters_by_the_queues_issue_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an issue queue the score threshold is a minimum of that type's score (the card's),
    over its own range, by default the median of its flags: in Outliers (scores -sid) the
    surer half of its 12 flags; in the label type's order the label type's score; in All it
    is disabled with a one-line reason; each type keeps its own setting; another detector in
    Label issues keeps the detector's threshold, as before."""
    from dashboard import state
    from dashboard.page_issues import ISSUE, THRESHOLD_OFF, THRESHOLD_PREFIX
    from dashboard.testing import card_ids

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    at = _started(run, monkeypatch)
    at.session_state[ISSUE] = "outlier"
    at.run()
    at.toggle(key=state.USE_MIN_SCORE).set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    slider = at.slider(key=THRESHOLD_PREFIX + "outlier")
    assert (slider.min, slider.max, slider.value) == (-59.0, 0.0, -5.5)
    assert card_ids(at) == [0, 1, 2, 3, 4, 5]
    slider.set_value(-2.0).run()
    assert card_ids(at) == [0, 1, 2]

    at.session_state[ISSUE] = "all"
    at.run()
    off = at.toggle(key=THRESHOLD_OFF)
    assert off.disabled and not off.value and "scores do not compare" in _sidebar_text(at)
    assert "Review queue · 18 to review" in _text(at)
    head = _head_line(at)  # short on the page (Bulk and Undo stay on its line), more in its tip
    assert head.endswith("ordered by the All queue's priority<") and "rank / how many" in head

    at.session_state[ISSUE] = "label"  # the label type's order: its score, flags 54-59
    at.run()
    label = at.slider(key=THRESHOLD_PREFIX + "label")
    assert (label.min, label.max, label.value) == (0.0, 59.0, 56.5)
    assert card_ids(at) == [59, 58, 57]
    at.session_state[ISSUE] = "outlier"
    at.run()
    assert at.slider(key=THRESHOLD_PREFIX + "outlier").value == -2.0
    assert card_ids(at) == [0, 1, 2]

    at.session_state[ISSUE] = "label"
    at.run()
    at.selectbox(key=state.DETECTOR).set_value("l2").run()  # the detector's order: as before
    scores = pd.read_parquet(run / "scores.parquet").set_index("sample_id")["l2_score"]
    minimum = at.slider(key=state.MIN_SCORE).value
    shown = card_ids(at)
    assert shown and all(scores[s] >= minimum for s in shown)


def _head_line(at: AppTest) -> str:
    """The queue header's order line with its tooltip."""
    bodies = " ".join(str(getattr(getattr(e, "proto", None), "body", "")) for e in at.get("html"))
    found = re.search(r'<div class="ogad-sub"( title="[^"]*")?>[^<]*ordered by[^<]*<', bodies)
    return html.unescape(found.group(0)) if found else ""


def test_the_summarys_export_caption_names_the_files_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export's caption lists the columns of the file it sends: with issues.parquet the
    ``issues`` column too (it read as eight columns, without it)."""
    from dashboard import pages
    from dashboard.testing import open_page
    from ogad_core.review.export import export_csv

    run = make_run(tmp_path / "run", n=60)
    _with_label_order(run)
    at = _started(run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    assert not at.exception, [e.value for e in at.exception]
    export_csv(run, tmp_path / "cli.csv")
    header = (tmp_path / "cli.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[-1] == "issues"
    caption = next(c.value for c in at.caption if "rows · columns" in c.value)
    assert f"columns {', '.join(header)} · the same file".replace("_", "\\_") in caption


def _with_corrupt(run: Path) -> None:
    """issues.parquet with label flags 0-5 and corrupt flags 10 and 11."""
    rd = RunDir(run)
    n = len(rd.read_samples())
    rows = []
    for issue, flagged in (("label", range(6)), ("corrupt", (10, 11))):
        for sid in range(n):
            hit = sid in flagged
            why = "very dark, near-constant input" if issue == "corrupt" else "why"
            rows.append((sid, issue, float(hit), sid + 1, hit, None, why if hit else ""))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = pd.array([pd.NA] * len(table), dtype="Int64")
    table.to_parquet(rd.issues_path)


def _labels_line(body: str) -> str:
    """The text of a card's labels line (given, predicted) from its HTML body."""
    line = re.search(r'<div class="ogad-labels">(.*?)</div>', body)
    assert line, body
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", line.group(1))).split())


def _drop_keep_body(card: dict, given_label: int, help_text: str) -> str:
    """Checks a Drop / Keep card (corrupt, leakage): no model suggestion, *Relabel…* by hand
    from the given label, the prediction left out and said so with ``help_text``; returns its
    unescaped HTML body."""
    from dashboard import cards as cards_mod
    from dashboard.cards import RELABEL_BY_HAND

    assert card["texts"] == {"confirm": "Drop", "reject": "Keep"}
    assert card["menu"] == RELABEL_BY_HAND and card["choice"] == given_label
    labels = _labels_line(card["body"])
    assert "predicted" not in labels and cards_mod.NO_PREDICTION in labels
    body = html.unescape(card["body"])
    assert help_text in body
    return body


def test_a_corrupt_card_offers_drop_and_keep_and_no_relabel_from_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A corrupt card (in Corrupt, and in All where corrupt placed it) reads Drop / Keep, its
    why line has no "suggested" class and its Relabel menu starts on the given label, reading
    "Relabel…" and its labels line leaves out the model's prediction (the model's guess on a
    dark or noise image is no evidence: not shown, the line says so); Drop is a
    confirmation (keep = false in the export) and a relabel by hand still works. A label card
    keeps Confirm / Reject and its suggestion."""
    from dashboard import cards as cards_mod
    from dashboard.context import Context
    from dashboard.page_issues import ISSUE
    from dashboard.testing import deck_cards, press_card
    from ogad_core.review.store import ReviewStore

    run = make_run(tmp_path / "run", n=60)
    _with_corrupt(run)
    given = RunDir(run).read_samples().set_index("sample_id")["label"]
    at = _started(run, monkeypatch)
    label_cards = {int(c["sid"]): c for c in deck_cards(at)}
    assert label_cards[0]["texts"] == {"confirm": "Confirm", "reject": "Reject"}
    assert label_cards[0]["menu"] is None
    at.session_state[ISSUE] = "corrupt"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = {int(c["sid"]): c for c in deck_cards(at)}
    assert sorted(cards) == [10, 11]
    for sid, card in cards.items():  # the model's guess is left out, said so
        _drop_keep_body(card, int(given[sid]), cards_mod.NO_PREDICTION_HELP)
    assert "predicted" in _labels_line(label_cards[0]["body"])  # a label card keeps it
    why = SimpleNamespace(loss=9.5, margin=-0.9, grad_norm_percentile=99.0, suggested_label=1)
    why.suggestion_confidence = 0.24
    for queue, suggests in (("corrupt", False), ("label", True)):  # the why line, as drawn
        ctx = cards_mod.CardContext(Context(str(run)), "image", ["a", "b", "c"], None, True, queue)
        acts = cards_mod.card_actions(ctx, 10)
        assert acts.suggests is suggests
        row = next(cards_mod.cache.table_with_decisions(str(run))[0].itertuples())
        body = cards_mod._details(ctx, row, why, acts)
        assert ("suggested" in body) is suggests
    at = press_card(at, 10, "confirm")
    at = press_card(at, 11, "relabel", label=(int(given[11]) + 1) % 3)
    store = ReviewStore(run)
    assert store.get(10) == "confirmed" and store.get(11) == "relabeled"
    at.session_state[ISSUE] = "all"
    at.session_state["ctl_show_reviewed"] = True
    at.run()
    cards = {int(c["sid"]): c for c in deck_cards(at)}
    assert cards[10]["texts"]["confirm"] == "Drop" and cards[0]["texts"]["confirm"] == "Confirm"
    assert cards[11]["menu"] is None  # relabeled: the menu names its class


def _with_leakage(run: Path, held_out: str) -> None:
    """issues.parquet with label flags 0-5 and leakage flags 20 and 21 (copies of the held-out
    file ``held_out``, as the leakage type words it)."""
    rd = RunDir(run)
    n = len(rd.read_samples())
    why = f"exact copy of held-out {held_out} (as are 1 other training samples): the held-out "
    why += "score is inflated"
    rows = []
    for issue, flagged in (("label", range(6)), ("leakage", (20, 21))):
        for sid in range(n):
            hit = sid in flagged
            text = why if issue == "leakage" else "why"
            set_id = 20 if hit and issue == "leakage" else None
            rows.append((sid, issue, float(hit), sid + 1, hit, set_id, text if hit else ""))
    cols = ["sample_id", "issue", "score", "rank", "flagged", "set_id", "explanation"]
    table = pd.DataFrame(rows, columns=cols)
    table["set_id"] = table["set_id"].astype("Int64")
    table.to_parquet(rd.issues_path)


def test_a_leakage_card_shows_the_held_out_file_whole_and_offers_drop_and_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leakage card (a training copy of a held-out sample; in Leakage, and in All where
    leakage placed it) shows its reason whole, never cut to two lines: the held-out file's
    name is what its reviewer checks. It reads Drop / Keep (the training copy goes or stays),
    without the model's guess or suggestion (the model trained on the copy), its Relabel menu
    on the given label; Drop is a confirmation (keep = false in the export, whose columns stay
    the contract's), Keep a rejection."""
    import io

    from dashboard import cards as cards_mod
    from dashboard.page_issues import ISSUE
    from dashboard.testing import deck_cards, press_card
    from ogad_core.review.export import export_csv_text
    from ogad_core.review.store import ReviewStore

    run = make_run(tmp_path / "run", n=60)
    held_out = str(tmp_path / "held_out" / "test" / "class_7" / "a_rather_long_file_0042.png")
    _with_leakage(run, held_out)
    given = RunDir(run).read_samples().set_index("sample_id")["label"]
    at = _started(run, monkeypatch)
    at.session_state[ISSUE] = "leakage"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = {int(c["sid"]): c for c in deck_cards(at)}
    assert sorted(cards) == [20, 21]
    for sid, card in cards.items():
        body = _drop_keep_body(card, int(given[sid]), cards_mod.LEAK_NO_PREDICTION_HELP)
        assert "suggested" not in body
        # the reason in a line that is not clamped (.ogad-whole), the held-out path in full
        whole = re.findall(r'<div class="ogad-issue-line ogad-whole">(.*?)</div>', body)
        whole = [line.replace("<wbr>", "") for line in whole]  # a path breaks after a "/"
        reason = f"exact copy of held-out {held_out} (as are 1 other training samples)"
        assert whole == [f"leakage: {reason}: the held-out score is inflated"]
    assert ".ogad-issue-line.ogad-whole { display: block;" in cards_mod.CARD_CSS
    at = press_card(at, 20, "confirm")
    at = press_card(at, 21, "reject")
    store = ReviewStore(run)
    assert store.get(20) == "confirmed" and store.get(21) == "rejected"
    export = pd.read_csv(io.StringIO(export_csv_text(run)))
    assert list(export.columns) == [
        "sample_id", "ref", "original_label", "final_label", "decision", "score", "rank",
        "keep", "issues",
    ]  # fmt: skip
    rows = export.set_index("sample_id")
    assert rows.loc[20, "decision"] == "confirmed" and not rows.loc[20, "keep"]
    assert rows.loc[21, "decision"] == "rejected" and rows.loc[21, "keep"]
    assert "leakage" in rows.loc[20, "issues"]
    at.session_state[ISSUE] = "all"
    at.session_state["ctl_show_reviewed"] = True
    at.run()
    cards = {int(c["sid"]): c for c in deck_cards(at)}
    assert cards[20]["texts"]["confirm"] == "Drop" and cards[0]["texts"]["confirm"] == "Confirm"


def test_all_shows_a_duplicate_set_as_one_set_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In All a duplicate set is one card at its first member's place (the other members
    leave the queue and its count): its members side by side, Keep #id per member and Keep
    all, no Confirm / Reject (one member's Confirm dropped the correctly labelled original);
    Keep #5 keeps 5 and drops 4 and 6 as one step; a member's relabel and Keep all work as on
    the Duplicates page; Bulk leaves the sets alone; the export carries the decisions."""
    from dashboard import keys, state
    from dashboard.page_issues import ISSUE
    from dashboard.testing import deck_cards, press_card
    from ogad_core.review.export import export_csv
    from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, ReviewStore

    run = make_run(tmp_path / "run", n=60)
    _with_duplicate_sets(run)
    at = _started(run, monkeypatch)
    at.session_state[ISSUE] = "all"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = {int(c["sid"]): c for c in deck_cards(at)}
    assert sorted(cards) == [4, 10]  # one card per set
    assert [m["sid"] for m in cards[4]["set"]] == [4, 5, 6]
    assert "texts" not in cards[4]  # no Confirm / Reject words: no such buttons
    assert cards[4]["menu"] == "Relabel a member…"
    body = html.unescape(re.sub(r"<[^>]+>", " ", cards[4]["body"]))
    assert "Duplicate set #4 · 3 samples" in " ".join(body.split())
    for sid in (4, 5, 6):
        assert f"#{sid} · given" in body
    assert "0 of 2 flagged reviewed · All issues: 2 flagged" in " ".join(_text(at).split())
    bulk = at.button(key=f"{keys.BULK}{CONFIRMED}")
    assert bulk.disabled and bulk.label == "Confirm all 0"  # the sets are not bulk-decided
    at = press_card(at, 5, "keep_one")
    store = ReviewStore(run)
    assert [store.get(s) for s in (4, 5, 6)] == [CONFIRMED, REJECTED, CONFIRMED]
    assert "kept #5, dropped #4, #6" in _text(at)
    assert store.undo_step(reviewer="alice")  # one step
    at.run()
    given11 = int(RunDir(run).read_samples().set_index("sample_id").at[11, "label"])
    at = press_card(at, 11, "relabel", label=(given11 + 1) % 3)  # the member picked
    at = press_card(at, 10, "keep_all")
    assert store.get(11) == RELABELED and store.get(10) == REJECTED
    assert [int(c["sid"]) for c in deck_cards(at)] == [4]
    export = tmp_path / "out.csv"
    at = press_card(at, 6, "keep_one")
    export_csv(run, export)
    table = pd.read_csv(export).set_index("sample_id")
    assert table.loc[[4, 5, 6], "keep"].tolist() == [False, False, True]
    assert table.loc[10, "keep"] and table.loc[11, "decision"] == RELABELED
    assert not deck_cards(at)  # every set reviewed
    assert REJECTED == store.get(6)
    assert store.undo_step(reviewer="alice")  # set 4 open again: focus mode shows its set card
    at.session_state[state.FOCUS_MODE] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.button(key=keys.of(keys.KEEP_ONE, 4)) and at.button(key=keys.of(keys.KEEP_ALL, 4))
    assert not [b for b in at.button if b.key and b.key.startswith(keys.CONFIRM)]


def test_all_keeps_a_set_while_a_member_is_undecided_and_outlines_every_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate set whose first member (#4, the set card's sample in All) was decided alone
    in another queue stays in All while #5 and #6 are undecided, and counts as unreviewed; the
    map outlines every member of each set card, not its first member only. Once every member
    is decided the set leaves All."""
    from dashboard.page_issues import ISSUE
    from dashboard.testing import deck_cards, press_card
    from ogad_core.review.store import ReviewStore

    run = make_run(tmp_path / "run", n=60)
    _with_duplicate_sets(run)
    at = _started(run, monkeypatch)
    at.session_state[ISSUE] = "all"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert _map_top(at)[::-1] == [4, 5, 6, 10, 11]  # the cards 4 and 10, each with its set
    caption = " ".join(c.value for c in at.caption)  # the caption and legend count both
    assert "The queue's first 2 cards (5 samples) (in its order" in caption
    assert _map_data(at)["top_text"] == "the queue's first 2 cards (5 samples)"
    store = ReviewStore(run)
    store.confirm(4, reviewer="alice")  # decided alone (as in another queue)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = {int(c["sid"]): c for c in deck_cards(at)}
    assert sorted(cards) == [4, 10] and cards[4]["status"] == "unreviewed"
    assert "0 of 2 flagged reviewed" in " ".join(_text(at).split())
    assert _map_top(at)[::-1] == [4, 5, 6, 10, 11]
    at = press_card(at, 10, "keep_all")
    store.reject(5, reviewer="alice")
    store.reject(6, reviewer="alice")
    at.run()
    assert not deck_cards(at)  # every member decided: the set leaves All
    assert "2 of 2 flagged reviewed" in " ".join(_text(at).split())
