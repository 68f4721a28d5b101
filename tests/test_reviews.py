"""The decision store: decisions, history, undo, bad input, two writer processes, read-only, one
connection per store (threads, other processes, a removed or replaced file)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ogad_core.errors import ReviewError, RunDirError
from ogad_core.review.store import (
    CONFIRMED,
    REJECTED,
    RELABELED,
    UNREVIEWED,
    ReviewStore,
)
from ogad_core.testing import IMAGE_LABELS, make_run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", n=40)


@pytest.fixture
def store(run: Path) -> ReviewStore:
    return ReviewStore(run)


def other_label(store: ReviewStore, sid: int) -> int:
    """A class index different from the sample's given label."""
    return (store._label_of[sid] + 1) % len(IMAGE_LABELS)


def test_decisions_are_saved_with_history(store: ReviewStore) -> None:
    assert store.current().empty and store.version() == 0
    store.confirm(3, reviewer="alice", session_id="s1")
    store.reject(4, reviewer="bob")
    new = other_label(store, 5)
    store.relabel(5, IMAGE_LABELS[new], reviewer="alice")  # by name
    store.decide(3, REJECTED, reviewer="bob")  # bob overrides alice on sample 3

    cur = store.current().set_index("sample_id")
    assert cur.loc[3, "decision"] == REJECTED and cur.loc[3, "reviewer"] == "bob"
    assert cur.loc[4, "decision"] == REJECTED
    assert cur.loc[5, "decision"] == RELABELED and cur.loc[5, "new_label"] == new
    assert store.get(3) == REJECTED and store.get(0) == UNREVIEWED

    hist = store.history()
    assert list(hist["sample_id"]) == [3, 4, 5, 3]
    last = hist.iloc[-1]
    assert (last["decision"], last["prev_decision"], last["reviewer"]) == (
        REJECTED,
        CONFIRMED,
        "bob",
    )
    assert hist.iloc[0]["session_id"] == "s1" and hist["ts"].str.endswith("+00:00").all()
    assert store.version() == 4
    counts = store.counts()
    assert counts == {CONFIRMED: 0, REJECTED: 2, RELABELED: 1, UNREVIEWED: 37}


def test_store_file_is_wal_and_survives_a_restart(run: Path, store: ReviewStore) -> None:
    store.confirm(1, reviewer="alice")
    store.relabel(2, other_label(store, 2), reviewer="alice")
    with sqlite3.connect(run / "reviews.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    del store
    code = (
        "import json, sys; from ogad_core.review.store import ReviewStore; "
        "s = ReviewStore(sys.argv[1]); "
        "print(json.dumps(s.current()[['sample_id', 'decision']].values.tolist()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(run)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [[1, CONFIRMED], [2, RELABELED]]


@pytest.mark.parametrize("sample_id", [-1, 40, 10_000, "3", 2.5, None, True], ids=lambda v: repr(v))
def test_unknown_sample_ids_are_refused(store: ReviewStore, sample_id: object) -> None:
    with pytest.raises(ReviewError, match="sample id"):
        store.confirm(sample_id, reviewer="alice")  # type: ignore[arg-type]
    assert store.current().empty


def test_numpy_sample_ids_are_accepted(store: ReviewStore) -> None:
    store.confirm(np.int64(6), reviewer="alice")
    assert store.get(6) == CONFIRMED


def test_bad_labels_decisions_and_reviewers_are_refused(store: ReviewStore) -> None:
    own = store._label_of[8]
    with pytest.raises(ReviewError, match="unknown label 'dog'"):
        store.relabel(8, "dog", reviewer="alice")
    with pytest.raises(ReviewError, match="out of range"):
        store.relabel(8, len(IMAGE_LABELS), reviewer="alice")
    with pytest.raises(ReviewError, match="already has label"):
        store.relabel(8, own, reviewer="alice")
    with pytest.raises(ReviewError, match="needs the new label"):
        store.decide(8, RELABELED, reviewer="alice")
    with pytest.raises(ReviewError, match="only given with"):
        store.decide(8, CONFIRMED, reviewer="alice", new_label=other_label(store, 8))
    with pytest.raises(ReviewError, match="unknown decision 'drop'"):
        store.decide(8, "drop", reviewer="alice")
    with pytest.raises(ReviewError, match="reviewer name"):
        store.confirm(8, reviewer="   ")
    assert store.current().empty and store.history().empty


def test_undo_restores_the_previous_value_and_is_logged(store: ReviewStore) -> None:
    new = other_label(store, 10)
    store.confirm(10, reviewer="alice", session_id="s1")
    store.relabel(10, new, reviewer="alice", session_id="s1")
    store.reject(11, reviewer="alice", session_id="s1")

    undo = store.undo_last(session_id="s1")
    assert undo is not None and undo.sample_id == 11 and undo.decision is None
    assert store.get(11) == UNREVIEWED
    undo = store.undo_last(session_id="s1")
    assert undo is not None and (undo.decision, undo.prev_decision) == (CONFIRMED, RELABELED)
    assert store.get(10) == CONFIRMED
    undo = store.undo_last(session_id="s1")  # the first decision is in effect again: undo it
    assert undo is not None and store.get(10) == UNREVIEWED
    assert store.undo_last(session_id="s1") is None
    assert not store.can_undo(session_id="s1")

    hist = store.history()
    assert list(hist["action"]) == ["decide"] * 3 + ["undo"] * 3
    assert hist["undone_by"].notna().sum() == 3
    assert list(hist.loc[hist["action"] == "undo", "undoes"]) == [3, 2, 1]


def test_undo_skips_a_decision_another_reviewer_overwrote(store: ReviewStore) -> None:
    store.confirm(12, reviewer="alice", session_id="a")
    store.confirm(13, reviewer="alice", session_id="a")
    store.reject(13, reviewer="bob", session_id="b")  # bob overwrites alice's latest
    undo = store.undo_last(reviewer="alice")
    assert undo is not None and undo.sample_id == 12  # bob's decision on 13 is untouched
    assert store.get(13) == REJECTED and store.get(12) == UNREVIEWED
    undo = store.undo_last(session_id="b")
    assert undo is not None and store.get(13) == CONFIRMED  # bob's undo restores alice's value
    with pytest.raises(ReviewError, match="reviewer or a session"):
        store.undo_last()


def _writer(run_dir: str, name: str, sample_ids: list[int], start: object) -> None:
    store = ReviewStore(run_dir)
    start.wait(30)  # type: ignore[attr-defined]
    for i, sid in enumerate(sample_ids):
        if i % 3 == 2:
            store.undo_last(session_id=name)
        else:
            store.decide(sid, CONFIRMED if i % 2 else REJECTED, reviewer=name, session_id=name)


def test_two_processes_writing_at_once_lose_nothing(run: Path) -> None:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    ids_a = list(range(0, 40, 2)) * 3  # overlapping samples, interleaved undos
    ids_b = list(range(0, 40, 3)) * 3
    procs = [
        ctx.Process(target=_writer, args=(str(run), "A", ids_a, start)),
        ctx.Process(target=_writer, args=(str(run), "B", ids_b, start)),
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    store = ReviewStore(run)
    hist = store.history()
    n_decide = {
        name: sum(1 for i in range(len(ids)) if i % 3 != 2)
        for name, ids in (("A", ids_a), ("B", ids_b))
    }
    decides = hist[hist["action"] == "decide"]
    assert decides.groupby("reviewer").size().to_dict() == n_decide
    assert list(hist["id"]) == list(range(1, len(hist) + 1))  # nothing lost, no gaps
    # the current table is exactly what replaying the history gives
    replay: dict[int, str | None] = {}
    for row in hist.itertuples():
        replay[row.sample_id] = row.decision
    expected = {sid: d for sid, d in replay.items() if isinstance(d, str)}  # None / NaN: undone
    cur = store.current()
    assert dict(zip(cur["sample_id"], cur["decision"], strict=True)) == expected
    with sqlite3.connect(run / "reviews.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_readonly_database_gives_a_clear_error_and_keeps_decisions(
    store: ReviewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.confirm(14, reviewer="alice")

    def readonly_connect(self: ReviewStore, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 1000")
        return conn

    monkeypatch.setattr(ReviewStore, "_connect", readonly_connect)
    fresh = ReviewStore(store.run)
    with pytest.raises(RunDirError, match="read-only"):
        fresh.reject(15, reviewer="alice")
    assert fresh.get(14) == CONFIRMED and fresh.get(15) == UNREVIEWED


READONLY_CHILD = """
import json, sys
from ogad_core.errors import RunDirError
from ogad_core.review.export import export_csv_text
from ogad_core.review.store import ReviewStore
store = ReviewStore(sys.argv[1])
out = {"current": store.current()[["sample_id", "decision"]].values.tolist()}
try:
    store.reject(20, reviewer="carol")
    out["write"] = "saved"
except RunDirError as err:
    out["write"] = str(err)
out["export"] = export_csv_text(sys.argv[1]).splitlines()[1:4]
print(json.dumps(out))
"""


def test_readonly_run_directory_reads_everything_and_refuses_writes() -> None:
    """A real read-only folder (as an unprivileged user), with decisions still in the WAL."""
    root = Path(tempfile.mkdtemp(prefix="ogad_ro_"))
    try:
        os.chmod(root, 0o755)
        run = make_run(root / "run", n=30)
        store = ReviewStore(run)
        store.confirm(1, reviewer="alice")
        holder = sqlite3.connect(store.path, isolation_level=None)
        holder.execute("BEGIN")  # an open read keeps the WAL from being checkpointed away
        holder.execute("SELECT count(*) FROM decisions").fetchone()
        store.relabel(2, other_label(store, 2), reviewer="alice")
        assert store.path.with_name("reviews.sqlite-wal").stat().st_size > 0
        for folder, _, files in os.walk(run):
            os.chmod(folder, 0o555)
            for name in files:
                os.chmod(Path(folder) / name, 0o444)
        cmd = [sys.executable, "-c", READONLY_CHILD, str(run)]
        if os.geteuid() == 0:  # root ignores file modes: run the reader as nobody
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: cannot make a folder read-only")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        holder.close()
        assert result.returncode == 0, result.stderr[-2000:]
        out = json.loads(result.stdout)
        assert out["current"] == [[1, CONFIRMED], [2, RELABELED]]
        assert "read-only" in out["write"] and "earlier decisions are kept" in out["write"]
        assert out["export"][0].startswith("0,") and ",confirmed," in out["export"][1]
    finally:
        for folder, _, _ in os.walk(root):
            os.chmod(folder, 0o755)
        shutil.rmtree(root, ignore_errors=True)


def test_a_bulk_action_is_one_undo_step(store: ReviewStore) -> None:
    store.reject(20, reviewer="alice", session_id="s1")
    store.confirm(21, reviewer="alice", session_id="s1")  # already confirmed: no new row
    entries = store.decide_many([21, 22, 23, 22], CONFIRMED, reviewer="alice", session_id="s1")
    assert [e.sample_id for e in entries] == [22, 23]
    assert len({e.batch_id for e in entries}) == 1 and entries[0].batch_id is not None
    assert all(store.get(s) == CONFIRMED for s in (21, 22, 23))

    undone = store.undo_step(session_id="s1")  # the whole bulk action, newest first
    assert [u.sample_id for u in undone] == [23, 22]
    assert store.get(22) == UNREVIEWED and store.get(23) == UNREVIEWED
    assert store.get(21) == CONFIRMED  # the single decision before the bulk stays
    assert store.undo_last(session_id="s1").sample_id == 21
    assert store.undo_last(session_id="s1").sample_id == 20
    assert not store.can_undo(session_id="s1")


def test_decisions_per_sample_are_one_undo_step(store: ReviewStore) -> None:
    """decide_each (a duplicate set's Keep one: one member kept, the others dropped) writes one
    step: one undo takes every decision of it back; a sample with its decision already is
    skipped; a refused decision writes nothing."""
    store.confirm(32, reviewer="alice")
    decisions = {30: REJECTED, 31: CONFIRMED, 32: CONFIRMED}
    entries = store.decide_each(decisions, reviewer="alice", session_id="s2")
    assert [(e.sample_id, e.decision) for e in entries] == [(30, REJECTED), (31, CONFIRMED)]
    assert len({e.batch_id for e in entries}) == 1 and entries[0].batch_id is not None
    assert [u.sample_id for u in store.undo_step(reviewer="alice")] == [31, 30]
    assert store.get(30) == UNREVIEWED and store.get(31) == UNREVIEWED
    assert store.get(32) == CONFIRMED
    with pytest.raises(ReviewError, match="unknown decision"):
        store.decide_each({33: REJECTED, 34: "drop"}, reviewer="alice")
    assert store.get(33) == UNREVIEWED


def test_a_bulk_action_skips_samples_another_reviewer_changed_on_undo(store: ReviewStore) -> None:
    store.decide_many([24, 25], REJECTED, reviewer="alice")
    store.confirm(25, reviewer="bob")
    undone = store.undo_step(reviewer="alice")
    assert [u.sample_id for u in undone] == [24]
    assert store.get(25) == CONFIRMED and store.get(24) == UNREVIEWED
    with pytest.raises(ReviewError, match="unknown decision"):
        store.decide_many([1], "drop", reviewer="alice")
    with pytest.raises(ReviewError, match="sample id"):
        store.decide_many([1, 999], CONFIRMED, reviewer="alice")
    assert store.get(1) == UNREVIEWED  # nothing of a refused bulk is written


def test_back_to_unreviewed_is_logged_and_undoable(store: ReviewStore) -> None:
    new = other_label(store, 30)
    store.relabel(30, new, reviewer="alice")
    store.unreview(30, reviewer="bob")
    assert store.get(30) == UNREVIEWED and 30 not in set(store.current()["sample_id"])
    last = store.history().iloc[-1]
    assert pd.isna(last["decision"]) and last["prev_decision"] == RELABELED
    with pytest.raises(ReviewError, match="unreviewed already"):
        store.unreview(30, reviewer="bob")
    assert store.can_undo(reviewer="bob")
    undo = store.undo_last(reviewer="bob")
    assert undo is not None and (undo.decision, undo.new_label) == (RELABELED, new)
    cur = store.current().set_index("sample_id")
    assert cur.loc[30, "decision"] == RELABELED and cur.loc[30, "reviewer"] == "alice"
    # reset again, decide anew, undo that: back to the reset state, whose undo restores alice's
    store.unreview(30, reviewer="bob")
    store.reject(30, reviewer="bob")
    store.undo_last(reviewer="bob")
    assert store.get(30) == UNREVIEWED
    store.undo_last(reviewer="bob")
    assert store.get(30) == RELABELED


def test_undo_by_reviewer_works_in_a_new_process_and_store(run: Path) -> None:
    ReviewStore(run).decide_many([31, 32], CONFIRMED, reviewer="carol", session_id="old")
    ReviewStore(run).reject(33, reviewer="dave", session_id="other")
    fresh = ReviewStore(run)  # a reload: a new session, the same reviewer name
    assert fresh.can_undo(reviewer="carol") and not fresh.can_undo(session_id="new")
    assert {u.sample_id for u in fresh.undo_step(reviewer="carol")} == {31, 32}
    assert fresh.get(33) == REJECTED


def test_a_database_from_before_bulk_actions_is_upgraded(run: Path) -> None:
    with sqlite3.connect(run / "reviews.sqlite") as conn:  # the old schema, one decision
        conn.executescript(
            "CREATE TABLE decisions (sample_id INTEGER PRIMARY KEY, decision TEXT NOT NULL, "
            "new_label INTEGER, reviewer TEXT NOT NULL, session_id TEXT, updated_at TEXT NOT "
            "NULL, history_id INTEGER NOT NULL);"
            "CREATE TABLE history (id INTEGER PRIMARY KEY AUTOINCREMENT, sample_id INTEGER NOT "
            "NULL, action TEXT NOT NULL, decision TEXT, new_label INTEGER, prev_decision TEXT, "
            "prev_label INTEGER, prev_history_id INTEGER, reviewer TEXT NOT NULL, session_id "
            "TEXT, ts TEXT NOT NULL, undoes INTEGER, undone_by INTEGER);"
            "INSERT INTO history (sample_id, action, decision, reviewer, ts) "
            "VALUES (2, 'decide', 'confirmed', 'eve', '2026-01-01T00:00:00+00:00');"
            "INSERT INTO decisions VALUES (2, 'confirmed', NULL, 'eve', NULL, "
            "'2026-01-01T00:00:00+00:00', 1);"
            "PRAGMA user_version = 1;"
        )
    store = ReviewStore(run)
    assert store.can_undo(reviewer="eve")  # readable before any write upgrades it
    store.decide_many([3, 4], REJECTED, reviewer="eve")
    assert [u.sample_id for u in store.undo_step(reviewer="eve")] == [4, 3]
    assert store.undo_last(reviewer="eve").sample_id == 2
    assert store.current().empty


# ---- one connection per store --------------------------------------------------------------
def test_one_store_shared_by_threads_loses_nothing(store: ReviewStore) -> None:
    """Streamlit's sessions are threads sharing one store (and so one connection)."""
    errors: list[BaseException] = []

    def work(ids: list[int], name: str) -> None:
        try:
            for sid in ids:
                store.confirm(sid, reviewer=name)
                store.version()
                store.current()
                store.can_undo(reviewer=name)
            store.undo_step(reviewer=name)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [
        threading.Thread(target=work, args=(list(range(i, 40, 4)), f"t{i}")) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    hist = store.history()
    assert list(hist["id"]) == list(range(1, 45))  # 40 decisions and 4 undos, no gaps
    undone = set(hist.loc[hist["action"] == "undo", "sample_id"])
    assert len(undone) == 4
    assert set(store.current()["sample_id"]) == set(range(40)) - undone


WRITER_CHILD = """
import sys
from ogad_core.review.store import ReviewStore
ReviewStore(sys.argv[1]).reject(2, reviewer="bob")
"""


def test_a_store_keeps_its_connection_and_sees_other_processes(run: Path) -> None:
    store = ReviewStore(run)
    store.confirm(1, reviewer="ann")
    conn = store._conn
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    subprocess.run([sys.executable, "-c", WRITER_CHILD, str(run)], check=True, env=env)
    assert store.get(2) == REJECTED and store.version() == 2  # the other process's decision
    store.confirm(3, reviewer="ann")
    assert store._conn is conn  # one connection for the store's life
    assert list(store.history()["sample_id"]) == [1, 2, 3]


def _remove_reviews(run: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (run / f"reviews.sqlite{suffix}").unlink(missing_ok=True)


def test_the_store_reopens_a_removed_or_replaced_file(run: Path, tmp_path: Path) -> None:
    store = ReviewStore(run)
    store.confirm(1, reviewer="ann")
    backup = tmp_path / "backup.sqlite"
    with sqlite3.connect(run / "reviews.sqlite") as src, sqlite3.connect(backup) as dst:
        src.backup(dst)  # a consistent copy with decision 1 only
    store.confirm(2, reviewer="ann")

    _remove_reviews(run)
    assert store.current().empty and store.version() == 0 and store.get(1) == UNREVIEWED
    store.reject(3, reviewer="ann")  # a new file
    assert dict(store.current()[["sample_id", "decision"]].values.tolist()) == {3: REJECTED}

    store.close()  # (SQLite: never replace a file under an open connection)
    _remove_reviews(run)
    shutil.copy(backup, run / "reviews.sqlite")  # restored from the backup
    assert store.get(1) == CONFIRMED and store.get(3) == UNREVIEWED
    store.confirm(4, reviewer="ann")
    assert store.get(4) == CONFIRMED and store.version() == 2
    with sqlite3.connect(run / "reviews.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_store_survives_a_file_replaced_behind_its_back(run: Path, tmp_path: Path) -> None:
    """Another process swaps the file (a new inode): the store reads and writes the new one."""
    store = ReviewStore(run)
    store.confirm(1, reviewer="ann")
    other = make_run(tmp_path / "other", n=40)
    ReviewStore(other).reject(5, reviewer="bob")
    os.replace(other / "reviews.sqlite", run / "reviews.sqlite")
    assert store.get(5) == REJECTED and store.get(1) == UNREVIEWED
    store.confirm(6, reviewer="ann")
    assert set(store.current()["sample_id"]) == {5, 6}
