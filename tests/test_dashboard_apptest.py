"""The Streamlit app through ``AppTest``: every page renders; the buttons write the right rows."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from dashboard import state
from ogad_core.review.export import export_csv
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED, ReviewStore
from tests.run_fixture import (
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
PAGES = ("views/review.py", "views/summary.py", "views/run_info.py")
TIMEOUT = 90


def start_app(run: Path | None, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    if run is None:
        monkeypatch.delenv("OGAD_RUN_DIR", raising=False)
    else:
        monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def queue_ids(at: AppTest) -> list[int]:
    """Sample ids of the cards on screen, in order (from the Confirm button keys)."""
    return [int(b.key.split("_")[1]) for b in at.button if b.key and b.key.startswith("confirm_")]


@pytest.fixture
def image_run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "img", kind="image", n=60)


@pytest.mark.parametrize("kind", ["image", "text", "tabular"])
def test_every_page_renders(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path / kind, kind=kind, n=60)
    at = start_app(run, monkeypatch)
    assert_clean(at)
    assert len(queue_ids(at)) == 12  # first page of the queue
    assert {b.label for b in at.button} >= {"Confirm", "Reject", "Relabel"}
    at.switch_page("views/summary.py").run()
    assert_clean(at)
    assert [b.label for b in at.get("download_button")] == ["Export cleaned CSV"]
    at.switch_page("views/run_info.py").run()
    assert_clean(at)


def test_review_queue_follows_the_detector_ranking(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores = pd.read_parquet(image_run / "scores.parquet")
    at = start_app(image_run, monkeypatch)
    assert queue_ids(at) == scores.sort_values("iforest_rank")["sample_id"].head(12).tolist()
    at.selectbox(key=state.DETECTOR).set_value("l2").run()
    assert queue_ids(at) == scores.sort_values("l2_rank")["sample_id"].head(12).tolist()
    at.button(key="page_next").click().run()
    assert queue_ids(at) == scores.sort_values("l2_rank")["sample_id"].iloc[12:24].tolist()
    at.multiselect(key=state.CLASSES).set_value(["cross"]).run()
    samples = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")
    assert queue_ids(at) and all(samples.loc[i, "label_name"] == "cross" for i in queue_ids(at))
    at.number_input(key=state.TOP_K).set_value(3).run()
    assert len(queue_ids(at)) == 3
    assert_clean(at)


def test_buttons_write_decisions_and_the_queue_moves_on(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(image_run, monkeypatch)
    at.text_input(key=state.REVIEWER).input("alice").run()
    first, second, third = queue_ids(at)[:3]

    at.button(key=f"confirm_{first}").click().run()
    assert_clean(at)
    store = ReviewStore(image_run)
    assert store.get(first) == CONFIRMED
    assert store.history().iloc[-1]["reviewer"] == "alice"
    assert first not in queue_ids(at)  # reviewed samples leave the queue

    at.button(key=f"reject_{second}").click().run()
    assert store.get(second) == REJECTED

    labels = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")["label"]
    names = ["circle", "square", "cross"]
    target = names[(labels[third] + 2) % 3]
    at.selectbox(key=f"{state.RELABEL_PREFIX}{third}").set_value(target).run()
    at.button(key=f"relabel_{third}").click().run()
    cur = store.current().set_index("sample_id")
    assert cur.loc[third, "decision"] == RELABELED
    assert names[int(cur.loc[third, "new_label"])] == target
    assert len(store.current()) == 3

    at.button(key="undo_last").click().run()  # undoes the relabel
    assert store.get(third) == UNREVIEWED and third in queue_ids(at)
    at.toggle(key=state.SHOW_REVIEWED).set_value(True).run()
    assert first in queue_ids(at)
    assert_clean(at)

    at.switch_page("views/summary.py").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Confirmed (dropped)"] == "1" and metrics["Rejected (kept)"] == "1"
    assert metrics["Relabeled"] == "0"


def test_relabel_to_the_given_label_is_explained_not_saved(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(image_run, monkeypatch)
    sid = queue_ids(at)[0]
    own = pd.read_parquet(image_run / "samples.parquet").set_index("sample_id")
    at.selectbox(key=f"{state.RELABEL_PREFIX}{sid}").set_value(own.loc[sid, "label_name"]).run()
    at.button(key=f"relabel_{sid}").click().run()
    assert not at.exception
    assert any("already has label" in e.value for e in at.error)
    assert ReviewStore(image_run).current().empty


EVAL_HEADING = "##### Detection quality (known noise)"


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The one st.dataframe on the page that has ``column``."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def test_summary_shows_the_evaluation_report(
    image_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = write_evaluation(image_run, retrain=True, cleanlab=True)
    at = start_app(image_run, monkeypatch)
    at.switch_page("views/summary.py").run()
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
    at.switch_page("views/summary.py").run()
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
    at.switch_page("views/summary.py").run()
    assert_clean(at)
    assert EVAL_HEADING not in [m.value for m in at.markdown]
    assert not any("AUROC" in d.value.columns for d in at.dataframe)
    assert any("no injected noise" in c.value for c in at.caption)


class CapturingStorage(MemoryMediaFileStorage):
    """The in-memory media storage AppTest uses, remembering its last instance."""

    last: CapturingStorage | None = None

    def __init__(self, media_endpoint: str) -> None:
        super().__init__(media_endpoint)
        CapturingStorage.last = self


def test_export_button_data_equals_ogad_export(
    image_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", CapturingStorage)
    store = ReviewStore(image_run)
    store.confirm(5, reviewer="alice")
    store.relabel(6, (store._label_of[6] + 1) % 3, reviewer="alice")
    at = start_app(image_run, monkeypatch)
    for only_kept in (False, True):
        at.switch_page("views/summary.py").run()
        if only_kept:
            at.toggle(key=state.EXPORT_ONLY_KEPT).set_value(True).run()
        assert_clean(at)
        (button,) = at.get("download_button")
        assert button.label == "Export cleaned CSV"
        assert CapturingStorage.last is not None
        data = CapturingStorage.last.get_file(button.proto.url.rsplit("/", 1)[1]).content
        out = tmp_path / f"cli_{only_kept}.csv"
        export_csv(image_run, out, only_kept=only_kept)
        assert data == out.read_bytes()


def test_broken_images_and_escaped_text_are_shown_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = start_app(make_run(tmp_path / "img", kind="image", n=60), monkeypatch)
    assert {MISSING_ID, CORRUPT_ID} <= set(queue_ids(at))
    warnings = " | ".join(w.value for w in at.warning)
    assert "image missing" in warnings and "image unreadable" in warnings
    assert_clean(at)

    at = start_app(make_run(tmp_path / "txt", kind="text", n=60), monkeypatch)
    assert {HTML_ID, LONG_ID} <= set(queue_ids(at))
    texts = [t.value for t in at.text]
    assert HTML_TEXT in texts  # shown as plain text, never as Markdown/HTML
    assert not any("<b>x</b>" in m.value for m in at.markdown)
    assert any(e.label.startswith("Full text (") for e in at.expander)
    assert any("truncated" in m.value for m in at.markdown if "badge" in m.value)
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
    assert queue_ids(at) == losses["sample_id"].head(12).tolist()
    at.button(key=f"confirm_{queue_ids(at)[0]}").click().run()
    assert len(ReviewStore(run).current()) == 1
    for page in PAGES[1:]:
        at.switch_page(page).run()
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
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    monkeypatch.setattr(ReviewStore, "_connect", readonly_connect)
    at = start_app(image_run, monkeypatch)
    sid = queue_ids(at)[0]
    at.button(key=f"confirm_{sid}").click().run()
    assert not at.exception
    assert any("read-only" in e.value for e in at.error)
    assert ReviewStore(image_run).get(sid) == UNREVIEWED
    assert ReviewStore(image_run).get(0) == CONFIRMED


def test_dashboard_never_imports_torch(image_run: Path) -> None:
    write_evaluation(image_run, retrain=True, cleanlab=True)  # the summary draws the report
    code = (
        "import sys, os\n"
        "import dashboard.cache, dashboard.state, dashboard.cards, dashboard.mapfig\n"
        "import dashboard.page_review, dashboard.page_summary, dashboard.page_run\n"
        "import dashboard.serve, ogad_core.review.export, ogad_core.review.store, dashboard.queue\n"
        "import dashboard.evaluation_view\n"
        "assert 'torch' not in sys.modules, 'imported torch'\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({APP!r}, default_timeout={TIMEOUT}).run()\n"
        "for page in ('views/summary.py', 'views/run_info.py'):\n"
        "    at.switch_page(page).run()\n"
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
