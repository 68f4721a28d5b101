"""The Streamlit app through ``AppTest``: every page renders; the buttons write the right rows."""

from __future__ import annotations

import html
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from dashboard import keys, pages, state
from dashboard.testing import (
    card_ids,
    chart_figures,
    click_chart,
    deck_cards,
    deck_data,
    open_page,
    page_tables,
    press_card,
)
from ogad_core.review.export import export_csv
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED, ReviewStore
from ogad_core.testing import (
    CORRUPT_ID,
    HTML_ID,
    HTML_TEXT,
    LONG_ID,
    MISSING_ID,
    make_run,
    write_evaluation,
)

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "dashboard" / "app.py")
PAGES = (pages.REVIEW, pages.SUMMARY, pages.RUN)
TIMEOUT = 90
PER_PAGE = state.DEFAULTS[state.PER_PAGE]  # cards on a page by default


def start_app(run: Path | None, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    if run is None:
        monkeypatch.delenv("OGAD_RUN_DIR", raising=False)
    else:
        monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def html_bodies(at: AppTest) -> list[str]:
    """The bodies of the page's ``st.html`` elements (queue header, focus-mode card), not style
    sheets, and of the card deck's cards."""
    bodies = [h.proto.body for h in at.get("html") if not h.proto.body.startswith("<style>")]
    return bodies + [card["body"] for card in deck_cards(at)]


def html_texts(at: AppTest, css_class: str = "") -> list[str]:
    """The text (tags stripped, entities decoded) of the ``st.html`` elements whose body
    contains ``css_class``."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", body)) for body in html_bodies(at) if css_class in body
    ]


@pytest.fixture
def image_run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "img", kind="image", n=60)


@pytest.mark.parametrize("kind", ["image", "text", "tabular"])
def test_every_page_renders(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path / kind, kind=kind, n=60)
    at = start_app(run, monkeypatch)
    assert_clean(at)
    queue_length = at.number_input(key=state.TOP_K).value  # the review target
    assert 0 < queue_length <= 60
    assert len(card_ids(at)) == min(PER_PAGE, queue_length)  # first page of the queue
    deck = deck_data(at)
    assert deck is not None and deck["writable"] and len(deck["label_names"]) >= 2
    open_page(at, pages.SUMMARY).run()
    assert_clean(at)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Export cleaned CSV", "Download report (HTML)"]
    open_page(at, pages.RUN).run()
    assert_clean(at)


def test_review_queue_follows_the_detector_ranking(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores = pd.read_parquet(image_run / "scores.parquet")
    at = start_app(image_run, monkeypatch)
    at.number_input(key=state.TOP_K).set_value(0).run()  # the whole run, not the target
    assert card_ids(at) == scores.sort_values("iforest_rank")["sample_id"].head(PER_PAGE).tolist()
    at.selectbox(key=state.DETECTOR).set_value("l2").run()
    assert card_ids(at) == scores.sort_values("l2_rank")["sample_id"].head(PER_PAGE).tolist()
    at.button(key=keys.PAGE_NEXT).click().run()
    by_l2 = scores.sort_values("l2_rank")["sample_id"]
    assert card_ids(at) == by_l2.iloc[PER_PAGE : 2 * PER_PAGE].tolist()
    at.multiselect(key=state.CLASSES).set_value(["cross"]).run()
    samples = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")
    assert card_ids(at) and all(samples.loc[i, "label_name"] == "cross" for i in card_ids(at))
    at.number_input(key=state.TOP_K).set_value(3).run()  # the crosses among the top 3
    top3 = by_l2.head(3).tolist()
    assert card_ids(at) == [i for i in top3 if samples.loc[i, "label_name"] == "cross"]
    assert_clean(at)


def test_buttons_write_decisions_and_the_queue_moves_on(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(image_run, monkeypatch)
    at.text_input(key=state.REVIEWER).input("alice").run()
    first, second, third = card_ids(at)[:3]

    press_card(at, first, "confirm")
    assert_clean(at)
    store = ReviewStore(image_run)
    assert store.get(first) == CONFIRMED
    assert store.history().iloc[-1]["reviewer"] == "alice"
    assert first not in card_ids(at)  # reviewed samples leave the queue

    press_card(at, second, "reject")
    assert store.get(second) == REJECTED

    labels = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")["label"]
    names = ["circle", "square", "cross"]
    target = names[(labels[third] + 2) % 3]
    press_card(at, third, "relabel", label=names.index(target))
    cur = store.current().set_index("sample_id")
    assert cur.loc[third, "decision"] == RELABELED
    assert names[int(cur.loc[third, "new_label"])] == target
    assert len(store.current()) == 3

    at.button(key=keys.UNDO).click().run()  # undoes the relabel
    assert store.get(third) == UNREVIEWED and third in card_ids(at)
    at.toggle(key=state.SHOW_REVIEWED).set_value(True).run()
    assert first in card_ids(at)
    assert_clean(at)

    open_page(at, pages.SUMMARY).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Confirmed (dropped)"] == "1" and metrics["Rejected (kept)"] == "1"
    assert metrics["Relabeled"] == "0"


def test_relabel_to_the_given_label_is_explained_not_saved(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(image_run, monkeypatch)
    sid = card_ids(at)[0]
    own = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")
    press_card(at, sid, "relabel", label=int(own.loc[sid, "label"]))
    assert not at.exception
    assert any("already has label" in e.value for e in at.error)
    assert ReviewStore(image_run).current().empty


EVAL_HEADING = "##### Detection quality (known noise)"


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The one table on the page (st.dataframe or the table element) that has ``column``."""
    frames = [d.value for d in at.dataframe] + page_tables(at)
    (frame,) = [d for d in frames if column in d.columns]
    return frame


def test_summary_shows_the_evaluation_report(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = write_evaluation(image_run, retrain=True, cleanlab=True)
    at = start_app(image_run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    assert_clean(at)
    assert EVAL_HEADING in [m.value for m in at.markdown]
    assert not at.warning  # the report matches the run
    detection = frame_with(at, "AUROC")
    expected = {r["detector"]: r["auroc"] for r in report["detection"]}
    assert dict(zip(detection["method"], detection["AUROC"], strict=True)) == expected
    assert list(detection["method"]) == sorted(expected, key=expected.get, reverse=True)
    assert set(detection["kind"]) == {"gradient", "baseline"}
    (verdict,) = [s.value for s in at.success]
    best = report["compute"]["best_gradient_detector"]
    assert verdict.startswith(f"Best gradient detector `{best}`") and "cleanlab" in verdict

    references = frame_with(at, "reference")
    assert list(references["reference"])[0] == "no trimming"
    trims = frame_with(at, "trim 10% (6 removed)")
    rows = {(r["method"], r["trim_percent"]): r for r in report["retrain"]["rows"]}
    cell = trims.set_index("method").loc["l2", "trim 10% (6 removed)"]
    r = rows[("l2", 10.0)]
    assert cell == f"{r['mean']:.4f} ± {r['std']:.4f} [{r['flipped_trimmed']:g} flipped]"
    captions = " | ".join(c.value for c in at.caption)
    assert "written by `ogad evaluate`" in captions and "seed(s) (0, 1, 2)" in captions
    assert "no model selection" in captions


def test_summary_explains_a_missing_stale_or_corrupt_report(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(image_run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    assert_clean(at)
    (note,) = [i.value for i in at.info]  # no report yet: figures computed now
    assert "No evaluation.json yet" in note and "ogad evaluate" in note
    live = frame_with(at, "AUROC")
    assert set(live["method"]) == {"iforest", "l2"} and "seconds" not in live.columns

    report = write_evaluation(image_run)
    at.run()
    assert not at.info and not at.warning
    expected = {r["detector"]: r["auroc"] for r in report["detection"]}
    shown = frame_with(at, "AUROC")
    assert dict(zip(shown["method"], shown["AUROC"], strict=True)) == expected

    scores = pd.read_parquet(image_run / "scores.parquet")
    scores["lof_score"], scores["lof_rank"] = scores["l2_score"] * -1, 1
    scores.to_parquet(image_run / "scores.parquet", index=False)
    at.run()
    assert_clean(at)
    (stale,) = [w.value for w in at.warning]
    assert "no longer matches this run" in stale and "`lof`" in stale
    assert "ogad evaluate" in stale

    (image_run / "evaluation.json").write_text("{not json", encoding="utf-8")
    at.run()
    assert_clean(at)
    (bad,) = [w.value for w in at.warning]
    assert "evaluation.json is unusable" in bad and "not valid JSON" in bad
    assert set(frame_with(at, "AUROC")["method"]) == {"iforest", "l2", "lof"}


def test_summary_without_known_noise_has_no_evaluation(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = pd.read_parquet(image_run / "samples.parquet")
    samples.drop(columns="is_flipped").to_parquet(image_run / "samples.parquet", index=False)
    at = start_app(image_run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    assert_clean(at)
    assert EVAL_HEADING not in [m.value for m in at.markdown]
    assert not any("AUROC" in d.columns for d in page_tables(at))
    assert any("no injected noise" in c.value for c in at.caption)


class CapturingManager(MediaFileManager):
    """The media file manager AppTest uses, remembering its last instance."""

    last: CapturingManager | None = None

    def __init__(self, storage: MemoryMediaFileStorage) -> None:
        super().__init__(storage)
        CapturingManager.last = self


def test_export_button_data_equals_ogad_export(
    image_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", CapturingManager)
    store = ReviewStore(image_run)
    store.confirm(5, reviewer="alice")
    store.relabel(6, (store._label_of[6] + 1) % 3, reviewer="alice")
    at = start_app(image_run, monkeypatch)
    for only_kept in (False, True):
        open_page(at, pages.SUMMARY).run()
        if only_kept:
            at.toggle(key=state.EXPORT_ONLY_KEPT).set_value(True).run()
        assert_clean(at)
        (button,) = [b for b in at.get("download_button") if b.label.startswith("Export")]
        assert button.label == "Export cleaned CSV"
        manager = CapturingManager.last
        assert manager is not None
        assert button.proto.deferred_file_id  # built when pressed, not fetched by every visit
        url = manager.execute_deferred(button.proto.deferred_file_id)
        data = manager._storage.get_file(url.rsplit("/", 1)[1].split(".")[0]).content
        out = tmp_path / f"cli_{only_kept}.csv"
        export_csv(image_run, out, only_kept=only_kept)
        assert data == out.read_bytes()


def test_broken_images_and_escaped_text_are_shown_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(make_run(tmp_path / "img", kind="image", n=60), monkeypatch)
    assert {MISSING_ID, CORRUPT_ID} <= set(card_ids(at))
    problems = " | ".join(html_texts(at, "ogad-problem"))
    assert "image missing" in problems and "image unreadable" in problems
    assert_clean(at)

    at = start_app(make_run(tmp_path / "txt", kind="text", n=60), monkeypatch)
    assert {HTML_ID, LONG_ID} <= set(card_ids(at))
    texts = html_texts(at, "ogad-text")
    assert any(HTML_TEXT in t for t in texts)  # shown as plain text, never as Markdown/HTML
    assert not any("<b>x</b>" in m.value for m in at.markdown)
    assert not any("<b>x</b>" in body for body in html_bodies(at))  # escaped in the cards too
    assert any("<summary>Full text (" in body for body in html_bodies(at))
    assert any("ogad-badge" in b and ">truncated</span>" in b for b in html_bodies(at))
    assert_clean(at)


def test_run_without_scores_or_map_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "bare", n=30, with_scores=False, with_map=False, status="incomplete")
    at = start_app(run, monkeypatch)
    assert_clean(at)
    notes = " | ".join(i.value for i in at.info)
    assert "incomplete" in notes and "No detector scores" in notes and "No map yet" in notes
    losses = pd.read_parquet(run / "samples.parquet").sort_values("loss", ascending=False)
    assert card_ids(at) == losses["sample_id"].head(PER_PAGE).tolist()
    press_card(at, card_ids(at)[0], "confirm")
    assert len(ReviewStore(run).current()) == 1
    for page in PAGES[1:]:
        open_page(at, page).run()
        assert_clean(at)


@pytest.mark.parametrize("problem", ["unset", "missing", "not_a_run"])
def test_missing_run_directory_is_explained(
    problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = {"unset": None, "missing": tmp_path / "nope", "not_a_run": tmp_path}[problem]
    at = start_app(run, monkeypatch)
    assert not at.exception
    (message,) = [e.value for e in at.error]
    expected = {
        "unset": "No run directory given",
        "missing": "run directory not found",
        "not_a_run": "not an ogad run directory",
    }[problem]
    assert expected in message


def test_readonly_store_shows_a_clear_error(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ReviewStore(image_run).confirm(0, reviewer="alice")

    def readonly_connect(self: ReviewStore, path: Path) -> sqlite3.Connection:
        # as the store's own connections: usable from the next script run's thread (AppTest
        # runs each in a new thread; the cached store keeps its connection)
        return sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )

    monkeypatch.setattr(ReviewStore, "_connect", readonly_connect)
    at = start_app(image_run, monkeypatch)
    sid = card_ids(at)[0]
    press_card(at, sid, "confirm")
    assert not at.exception
    assert any("read-only" in e.value for e in at.error)
    assert ReviewStore(image_run).get(sid) == UNREVIEWED
    assert ReviewStore(image_run).get(0) == CONFIRMED


def test_dashboard_never_imports_torch(image_run: Path) -> None:
    write_evaluation(image_run, retrain=True, cleanlab=True)  # the summary draws the report
    code = (
        "import sys, os\n"
        "import dashboard.cache, dashboard.state, dashboard.cards, dashboard.map_view\n"
        "import dashboard.page_review, dashboard.page_summary, dashboard.page_run\n"
        "import dashboard.serve, ogad_core.review.export, ogad_core.review.store\n"
        "import dashboard.run_view\n"
        "import dashboard.evaluation_view, dashboard.review_aids, dashboard.filters\n"
        "import dashboard.shortcuts, dashboard.actions\n"
        "assert 'torch' not in sys.modules, 'imported torch'\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout={TIMEOUT}).run()\n"
        "from dashboard.testing import open_page\n"
        "for page in ('summary', 'run_info'):\n"
        "    open_page(at, page).run()\n"
        "assert not at.exception, at.exception\n"
        "assert 'torch' not in sys.modules, 'the app imported torch'\n"
        "print('torch-free')\n"
    )
    env = {**os.environ, "OGAD_RUN_DIR": str(image_run)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "torch-free" in result.stdout


# ---- the review session: shortcuts, bulk actions, undo after a reload, filters, re-ranking --
def add_gradients(run: Path, dim: int = 8, seed: int = 1) -> np.ndarray:
    """Write a gradients.npy (N, dim) whose flipped samples sit apart; returns it."""
    samples = pd.read_parquet(run / "samples.parquet")
    rng = np.random.default_rng(seed)
    grads = rng.normal(0, 1, (len(samples), dim)).astype(np.float32)
    grads[samples["is_flipped"].to_numpy(), 0] += 4.0
    np.save(run / "gradients.npy", grads)
    return grads


def started(run: Path, monkeypatch: pytest.MonkeyPatch, reviewer: str = "alice") -> AppTest:
    """The app on ``run`` with the reviewer name in the address (as after a reload)."""
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params[state.REVIEWER_PARAM] = reviewer
    return at.run()


def test_bulk_confirm_of_a_page_is_one_undo_step(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = started(image_run, monkeypatch)
    assert at.text_input(key=state.REVIEWER).value == "alice"
    store = ReviewStore(image_run)
    store.reject(59, reviewer="alice")  # an earlier single decision
    at.run()
    page = card_ids(at)
    named = f"{len(page)} unreviewed samples: " + ", ".join(f"#{i}" for i in page)
    assert any(c.value.startswith(named) for c in at.caption)  # the menu names its cards
    assert _bulk_menu_ids(at) == [keys.of(keys.BULK_MENU, 0)]
    at.button(key=f"{keys.BULK}{CONFIRMED}").click().run()
    assert_clean(at)
    assert _bulk_menu_ids(at) == [
        keys.of(keys.BULK_MENU, 1)
    ]  # a new menu: closed, not offering the next page
    cur = store.current().set_index("sample_id")
    assert set(cur.index) == {*page, 59} and (cur.loc[page, "decision"] == CONFIRMED).all()
    assert store.history()["reviewer"].eq("alice").all()
    assert not set(page) & set(card_ids(at))  # the next page of the queue moved up
    assert any("U undoes it" in t for t in html_texts(at, "ogad-flash"))

    at.button(key=keys.UNDO).click().run()  # the whole page at once, not the decision on 59
    assert set(store.current()["sample_id"]) == {59}
    assert card_ids(at) == page
    flash = [t for t in html_texts(at, "ogad-flash")]
    assert any(f"bulk action on {len(page)} samples" in t for t in flash)
    assert not any("U undoes it" in t for t in flash)  # an undo is not undone by U


def _bulk_menu_ids(at: AppTest) -> list[str]:
    """The keys of the page's Bulk popovers (their ids end with the key)."""
    found: list[str] = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            proto = getattr(child, "proto", None)
            if getattr(child, "type", None) == "popover" and proto.popover.label == "Bulk":
                found.append(proto.id.rsplit("-", 1)[-1])
            walk(child)

    walk(at._tree)
    return found


def test_undo_works_after_a_reload_for_the_same_reviewer(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = started(image_run, monkeypatch)
    sid = card_ids(at)[0]
    press_card(at, sid, "confirm")
    assert ReviewStore(image_run).get(sid) == CONFIRMED

    other = started(image_run, monkeypatch, reviewer="bob")  # someone else: nothing to undo
    assert other.button(key=keys.UNDO).disabled
    again = started(image_run, monkeypatch)  # alice reloads: a new session, the name kept
    assert not again.button(key=keys.UNDO).disabled
    again.button(key=keys.UNDO).click().run()
    assert_clean(again)
    assert ReviewStore(image_run).get(sid) == UNREVIEWED and sid in card_ids(again)


def test_revisit_shows_the_current_label_and_goes_back_to_unreviewed(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ReviewStore(image_run)
    sid = 7 if 7 != CORRUPT_ID else 8
    new = (store._label_of[sid] + 2) % 3
    store.relabel(sid, new, reviewer="bob")
    at = started(image_run, monkeypatch)
    at.toggle(key=state.SHOW_REVIEWED).set_value(True).run()
    at.text_input(key=state.SEARCH).input(f"#{sid}").run()
    assert card_ids(at) == [sid]
    names = ["circle", "square", "cross"]
    (card,) = deck_cards(at)
    assert card["choice"] == new and names[card["choice"]] == names[new]
    assert card["choice_key"] == state.relabel_key(sid, RELABELED, new)
    press_card(at, sid, "unreview")
    assert_clean(at)
    assert store.get(sid) == UNREVIEWED
    assert pd.isna(store.history().iloc[-1]["decision"])
    at.button(key=keys.UNDO).click().run()
    assert store.get(sid) == RELABELED


def test_filters_by_prediction_disagreement_and_search(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")
    at = started(image_run, monkeypatch)
    at.number_input(key=state.TOP_K).set_value(0).run()
    at.selectbox(key=state.PER_PAGE).set_value(36).run()
    at.multiselect(key=state.PRED_CLASSES).set_value(["square"]).run()
    shown = card_ids(at)
    assert shown and all(samples.loc[i, "pred"] == 1 for i in shown)
    assert len(shown) == min(36, int((samples["pred"] == 1).sum()))
    at.multiselect(key=state.PRED_CLASSES).set_value([]).run()
    at.toggle(key=state.DISAGREE).set_value(True).run()
    shown = card_ids(at)
    expected = int((samples["label"] != samples["pred"]).sum())
    assert len(shown) == min(36, expected)
    assert all(samples.loc[i, "label"] != samples.loc[i, "pred"] for i in shown)
    at.toggle(key=state.DISAGREE).set_value(False).run()
    at.number_input(key=state.TOP_K).set_value(3).run()
    assert 12 not in card_ids(at)
    at.text_input(key=state.SEARCH).input("00012.PNG").run()  # a file name, any case
    assert card_ids(at) == [12]  # a search looks beyond the queue length
    at.text_input(key=state.SEARCH).input("no such sample").run()
    assert card_ids(at) == [] and any("No samples match" in i.value for i in at.info)
    assert_clean(at)


def test_review_target_sets_the_queue_length_and_shows_progress(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ogad_core.scoring.target import estimate_review_target

    samples = pd.read_parquet(image_run / "samples.parquet")
    scores = pd.read_parquet(image_run / "scores.parquet")
    target = estimate_review_target(samples, scores, "iforest")
    at = started(image_run, monkeypatch)
    assert at.number_input(key=state.TOP_K).value == target.n_target
    (bar,) = html_texts(at, "ogad-progress")
    low, high = target.interval
    assert f"review target ≈ {target.n_target} (95% range {low}–{high}" in bar
    noise = f"; estimated noise {target.noise_rate:.1%}, {target.method}"
    assert target.describe(more=noise) in bar  # the report's tile says it in the same words
    assert "Queue length: the estimate" in bar and target.note in bar  # why it is what it is
    first = card_ids(at)[0]
    press_card(at, first, "confirm")
    bar = html_texts(at, "ogad-progress")[0]
    assert bar.startswith(f"1 of {target.n_target} reviewed")
    at.number_input(key=state.TOP_K).set_value(5).run()  # the reviewer's own length stays
    at.selectbox(key=state.DETECTOR).set_value("l2").run()
    assert at.number_input(key=state.TOP_K).value == 5
    open_page(at, pages.SUMMARY).run()
    (reviewed,) = [m for m in at.metric if m.label == "Reviewed"]
    assert f"of target ({target.n_target})" in reviewed.delta and "of run" in reviewed.delta
    assert reviewed.delta in reviewed.help  # cut to a narrow column: the tooltip has it whole
    assert_clean(at)


def test_rerank_toggle_reorders_the_queue_from_the_decisions(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ogad_core.scoring.explain import Explainer
    from ogad_core.scoring.rerank import rerank_scores

    grads = add_gradients(image_run)
    samples = pd.read_parquet(image_run / "samples.parquet")
    scores = pd.read_parquet(image_run / "scores.parquet")
    store = ReviewStore(image_run)
    flipped = samples.loc[samples["is_flipped"], "sample_id"].tolist()
    clean = samples.loc[~samples["is_flipped"], "sample_id"].tolist()
    store.decide_many(flipped[:3], CONFIRMED, reviewer="alice")
    store.decide_many(clean[:3], REJECTED, reviewer="alice")
    decided = np.array(flipped[:3] + clean[:3])
    bad = np.array([True] * 3 + [False] * 3)

    at = started(image_run, monkeypatch)
    at.number_input(key=state.TOP_K).set_value(0).run()
    assert at.toggle(key=state.RERANK).value  # on by default
    evidence = Explainer(grads, samples)  # the dashboard re-ranks with the explainer's evidence
    new = rerank_scores(grads, scores["iforest_score"].to_numpy(), decided, bad, explainer=evidence)
    order = [i for i in np.argsort(-new, kind="stable") if i not in set(decided)]
    assert card_ids(at) == [int(i) for i in order[:PER_PAGE]]
    assert any("re-ranked from the decisions" in t for t in html_texts(at, "ogad-title"))

    at.toggle(key=state.RERANK).set_value(False).run()
    static = scores.sort_values("iforest_rank")["sample_id"]
    assert card_ids(at) == [int(i) for i in static if i not in set(decided)][:PER_PAGE]
    assert_clean(at)


def test_cards_explain_the_flag_and_preselect_the_suggestion(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ogad_core.scoring.explain import Explainer

    grads = add_gradients(image_run)
    samples = pd.read_parquet(image_run / "samples.parquet")
    explainer = Explainer(grads, samples)
    labels, _ = explainer.suggestions()
    at = started(image_run, monkeypatch)
    for card in deck_cards(at):
        sid = int(card["sid"])
        row = samples.set_index("sample_id").loc[sid]
        # the suggestion, also where it is the card's own label (never "the next class")
        assert card["choice"] == int(labels[sid]), (sid, row["label"])
    whys = html_texts(at, "ogad-why")
    assert len(whys) == len(card_ids(at)) and all("why: loss" in w for w in whys)
    assert all("suggested" in w for w in whys)

    at.toggle(key=state.FOCUS_MODE).set_value(True).run()
    assert_clean(at)
    first = card_ids(at)
    assert len(first) == 1  # one large card
    assert any(c.value.startswith("Nearest neighbours") for c in at.caption)
    at.button(key=keys.FOCUS_NEXT).click().run()
    second = card_ids(at)
    assert len(second) == 1 and second != first
    press_card(at, second[0], "confirm")  # the next card takes its place
    assert ReviewStore(image_run).get(second[0]) == CONFIRMED
    assert card_ids(at) and card_ids(at) != second


def test_shortcuts_script_and_legend_are_on_the_review_page(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = started(image_run, monkeypatch)
    scripts = [h.proto.body for h in at.get("html") if "__ogadKeys" in h.proto.body]
    assert len(scripts) == 1 and f'"c": "{keys.CONFIRM}"' in scripts[0]
    assert any("Keys: C confirm" in t for t in html_texts(at, "ogad-sub"))


def test_run_page_lists_steps_in_pipeline_order_and_the_whole_model(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = started(image_run, monkeypatch)
    open_page(at, pages.RUN).run()
    assert_clean(at)
    steps = frame_with(at, "step")
    from ogad_core.run.manifest import STEP_ORDER

    assert list(steps["step"]) == [s for s in STEP_ORDER if s in set(steps["step"])]
    assert "##### Model" in [m.value for m in at.markdown]
    assert any('"spec": "fixture"' in j.proto.body or "fixture" in j.proto.body for j in at.json)


def test_a_given_by_predicted_cell_opens_those_samples_in_the_queue(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = pd.read_parquet(image_run / "samples.parquet")
    at = started(image_run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    figures = chart_figures(at)
    grid = next(f for f in figures if f["layout"]["title"]["text"].startswith("Given x predicted"))
    cells = grid["data"][0]
    counts = pd.crosstab(samples["label"], samples["pred"]).reindex(
        index=range(3), columns=range(3), fill_value=0
    )
    assert [int(t.replace(",", "")) for t in cells["text"]] == counts.to_numpy().ravel().tolist()
    click_chart(
        at, keys.of(keys.CHART_GIVEN_PRED, 0), ["square", "circle"]
    )  # given square, predicted circle
    assert_clean(at)
    want = samples[(samples["label_name"] == "square") & (samples["pred"] == 0)]["sample_id"]
    assert set(card_ids(at)) <= set(want) and len(card_ids(at)) == min(PER_PAGE, len(want))
    assert any(f"Review queue · {len(want)} in the queue" in t for t in html_texts(at))
    # the queue's own length and filters are kept aside, and Back brings them back
    target = at.number_input(key=state.TOP_K).value
    assert any("Showing every sample given" in i.value for i in at.info)
    open_page(at, pages.REVIEW).run()  # AppTest itself stays on the page it was given
    at.button(key=keys.LEAVE_DRILL).click().run()
    assert_clean(at)
    assert at.multiselect(key=state.CLASSES).value == []
    assert at.multiselect(key=state.PRED_CLASSES).value == []
    assert at.toggle(key=state.SHOW_REVIEWED).value is False
    assert at.number_input(key=state.TOP_K).value == target
    assert not any("Showing every sample given" in i.value for i in at.info)
    assert any(f"Review queue · {target} to review" in t for t in html_texts(at))


def test_class_filters_narrow_the_current_queue(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")
    scores = pd.read_parquet(image_run / "scores.parquet")
    at = started(image_run, monkeypatch)
    detector = at.selectbox(key=state.DETECTOR).value
    at.number_input(key=state.TOP_K).set_value(12).run()
    at.selectbox(key=state.PER_PAGE).set_value(36).run()
    queue = scores.sort_values(f"{detector}_rank")["sample_id"].head(12).tolist()
    at.multiselect(key=state.CLASSES).set_value(["square"]).run()
    want = [i for i in queue if samples.loc[i, "label"] == 1]
    assert card_ids(at) == want  # the squares of the queue, not the run's squares
    at.multiselect(key=state.CLASSES).set_value([]).run()
    at.multiselect(key=state.PRED_CLASSES).set_value(["circle"]).run()
    assert card_ids(at) == [i for i in queue if samples.loc[i, "pred"] == 0]
    assert_clean(at)


def test_cards_show_their_place_in_the_queue_and_their_file_name(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")
    at = started(image_run, monkeypatch)
    at.number_input(key=state.TOP_K).set_value(0).run()
    at.button(key=keys.PAGE_NEXT).click().run()  # the second page: places 9..16
    n = len(samples)
    for place, card in enumerate(deck_cards(at), start=PER_PAGE + 1):
        text = html.unescape(re.sub(r"<[^>]+>", " ", card["body"]))
        assert f"card {place} of {n}" in " ".join(text.split())
        ref = str(samples.loc[int(card["sid"]), "ref"])
        assert Path(ref).name in text  # the file name, with a control copying its whole path
        copy = re.search(r'class="ogad-copy" data-copy="([^"]+)"', card["body"])
        assert copy and Path(html.unescape(copy[1])) == (image_run / ref).resolve()
    at.toggle(key=state.FOCUS_MODE).set_value(True).run()  # focus mode's card: the same
    (sid,) = card_ids(at)
    body = " ".join(html_texts(at, "ogad-copy"))
    assert f"card 1 of {n}" in body and Path(str(samples.loc[sid, "ref"])).name in body
    assert_clean(at)


def test_the_queue_goes_on_past_a_low_target_while_decisions_confirm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ogad_core.scoring.target import KEEP_GOING_BLOCK

    run = make_run(tmp_path / "img", kind="image", n=120, noise_rate=0.3)
    at = started(run, monkeypatch)
    target = at.number_input(key=state.TOP_K).value
    store = ReviewStore(run)
    for _ in range(target):  # every card of the queue was a real flag
        press_card(at, card_ids(at)[0], "confirm")
    assert_clean(at)
    assert at.number_input(key=state.TOP_K).value == target + KEEP_GOING_BLOCK
    assert len(card_ids(at)) == min(PER_PAGE, KEEP_GOING_BLOCK)  # cards past the estimate
    assert any(f"past the estimate ({target})" in t for t in html_texts(at, "ogad-progress"))
    for sid in card_ids(at)[: KEEP_GOING_BLOCK // 2 + 1]:  # then mostly fine samples: stop
        store.reject(sid, reviewer="alice")
    at.run()
    assert at.number_input(key=state.TOP_K).value == target
    assert any(f"the estimate ({target}) stands" in t for t in html_texts(at, "ogad-progress"))
    assert_clean(at)


def test_the_export_help_names_the_detector_ogad_export_uses(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ogad_core.review.export import default_detector
    from ogad_core.run.rundir import RunDir

    at = started(image_run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    box = at.selectbox(key=state.EXPORT_DETECTOR)
    want = default_detector(RunDir(image_run).detectors())
    assert box.value == want
    assert f"`ogad export`: {want} for this run" in box.help.replace("\\\\", "")


def test_summary_and_run_pages_draw_their_charts_and_a_class_bar_opens_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "img", kind="image", n=60)
    write_evaluation(run, retrain=True)
    samples = pd.read_parquet(run / "samples.parquet")
    ReviewStore(run).confirm(int(samples["sample_id"][0]), reviewer="alice")
    at = started(run, monkeypatch)
    open_page(at, pages.SUMMARY).run()
    assert_clean(at)
    titles = [f["layout"]["title"]["text"] for f in chart_figures(at)]
    for want in (
        "Review progress",
        "Class health",
        "Given x predicted",
        "Score distributions",
        "Precision@k",
        "Trim and retrain",
    ):
        assert any(t.startswith(want) for t in titles), (want, titles)
    assert any(b.label.startswith("Download report") for b in at.get("download_button"))
    click_chart(
        at, keys.of(keys.CHART_CLASSES, 0), "cross"
    )  # a class bar: its samples in the queue
    assert_clean(at)
    want = set(samples.loc[samples["label_name"] == "cross", "sample_id"])
    assert any(f"Review queue · {len(want)} in the queue" in t for t in html_texts(at))
    open_page(at, pages.RUN).run()
    assert_clean(at)
    titles = [f["layout"]["title"]["text"] for f in chart_figures(at)]
    assert "Time per step" in titles


def test_undo_in_focus_mode_shows_the_restored_card(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = started(image_run, monkeypatch)
    at.toggle(key=state.FOCUS_MODE).set_value(True).run()
    at.button(key=keys.FOCUS_NEXT).click().run()
    at.button(key=keys.FOCUS_NEXT).click().run()  # the third card of the queue
    (third,) = card_ids(at)
    press_card(at, third, "confirm")
    assert card_ids(at) != [third]
    at.button(key=keys.FOCUS_PREV).click().run()
    at.button(key=keys.FOCUS_PREV).click().run()  # back on the first card of the queue
    assert card_ids(at) != [third]
    at.button(key=keys.UNDO).click().run()
    assert_clean(at)
    assert card_ids(at) == [third]  # focus mode moved back to the card Undo brought back
    assert not any("U undoes it" in t for t in html_texts(at, "ogad-flash"))
