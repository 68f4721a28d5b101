"""The reviewers' decision store: ``<run>/reviews.sqlite`` (stdlib sqlite3, WAL). Torch-free.

Two tables:

* ``decisions``: the decision now in effect per sample (a sample without a row is unreviewed);
* ``history``: append-only log of every decision and every undo (who, when, what, the value it
  replaced).

Decisions: ``confirmed`` (the flag is right: drop the sample), ``rejected`` (the flag is wrong:
keep it), ``relabeled`` (keep it with ``new_label``). Labels are stored as class indices into the
manifest's ``label_names``.

Every write is one ``BEGIN IMMEDIATE`` transaction on a fresh connection (WAL, busy_timeout), so
several processes (two dashboard servers, a dashboard and ``ogad export``) can read and write the
same run at once without losing a decision. A read-only run directory can still be read (the
database is copied to a temporary folder with its WAL, so nothing committed is missed); writing
to it raises :class:`~ogad_core.errors.RunDirError` with one clear line.
"""

from __future__ import annotations

import operator
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import utc_now
from ogad_core.errors import ReviewError, RunDirError
from ogad_core.run.rundir import RunDir

CONFIRMED = "confirmed"
REJECTED = "rejected"
RELABELED = "relabeled"
UNREVIEWED = "unreviewed"
DECISIONS: tuple[str, ...] = (CONFIRMED, REJECTED, RELABELED)
ACTION_DECIDE = "decide"
ACTION_UNDO = "undo"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 15_000
MAX_REVIEWER_LEN = 80

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS decisions (
    sample_id   INTEGER PRIMARY KEY,
    decision    TEXT NOT NULL CHECK (decision IN ('{CONFIRMED}', '{REJECTED}', '{RELABELED}')),
    new_label   INTEGER,
    reviewer    TEXT NOT NULL,
    session_id  TEXT,
    updated_at  TEXT NOT NULL,
    history_id  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id       INTEGER NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('{ACTION_DECIDE}', '{ACTION_UNDO}')),
    decision        TEXT,
    new_label       INTEGER,
    prev_decision   TEXT,
    prev_label      INTEGER,
    prev_history_id INTEGER,
    reviewer        TEXT NOT NULL,
    session_id      TEXT,
    ts              TEXT NOT NULL,
    undoes          INTEGER,
    undone_by       INTEGER
);
CREATE INDEX IF NOT EXISTS history_by_reviewer ON history (reviewer, id);
CREATE INDEX IF NOT EXISTS history_by_session ON history (session_id, id);
CREATE INDEX IF NOT EXISTS history_by_sample ON history (sample_id, id);
"""

CURRENT_COLUMNS = ["sample_id", "decision", "new_label", "reviewer", "session_id", "updated_at"]
HISTORY_COLUMNS = [
    "id",
    "sample_id",
    "action",
    "decision",
    "new_label",
    "prev_decision",
    "prev_label",
    "reviewer",
    "session_id",
    "ts",
    "undoes",
    "undone_by",
]


@dataclass(frozen=True)
class HistoryEntry:
    """One row of the history log: a decision (``action='decide'``) or an undo.

    ``decision`` / ``new_label`` is the value the sample has after the entry (None = unreviewed);
    ``prev_decision`` / ``prev_label`` the value it replaced.
    """

    id: int
    sample_id: int
    action: str
    decision: str | None
    new_label: int | None
    prev_decision: str | None
    prev_label: int | None
    reviewer: str
    session_id: str | None
    ts: str


def _is_readonly_error(err: sqlite3.Error) -> bool:
    text = str(err).lower()
    return any(
        part in text
        for part in ("readonly", "read-only", "unable to open", "disk i/o", "permission")
    )


def _is_damaged_error(err: sqlite3.Error) -> bool:
    """A database file that is not SQLite, or a malformed one."""
    text = str(err).lower()
    return isinstance(err, sqlite3.DatabaseError) and (
        "not a database" in text or "malformed" in text
    )


def _append_history(conn: sqlite3.Connection, **columns: Any) -> int:
    """Append one row to the history table; returns its id."""
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    cur = conn.execute(f"INSERT INTO history ({names}) VALUES ({marks})", tuple(columns.values()))
    return int(cur.lastrowid or 0)


def _put_decision(
    conn: sqlite3.Connection,
    sample_id: int,
    decision: str,
    new_label: int | None,
    reviewer: str | None,
    session_id: str | None,
    updated_at: str,
    history_id: int,
) -> None:
    """Set the decision in effect for one sample (the history row ``history_id`` made it)."""
    conn.execute(
        "INSERT OR REPLACE INTO decisions (sample_id, decision, new_label, reviewer, "
        "session_id, updated_at, history_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sample_id, decision, new_label, reviewer, session_id, updated_at, history_id),
    )


class ReviewStore:
    """Read and write the decisions of one run.

    Args:
        run: the run directory (path or :class:`RunDir`); its samples.parquet must exist.
        sample_ids: the run's sample ids (default: read from samples.parquet).
        labels: the given label per sample, aligned with ``sample_ids`` (default: from
            samples.parquet); used to refuse a relabel to the label the sample already has.
        label_names: the class names (default: the manifest's ``label_names``).
    """

    def __init__(
        self,
        run: RunDir | str | os.PathLike[str],
        *,
        sample_ids: Iterable[int] | None = None,
        labels: Iterable[int] | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        self.run = run if isinstance(run, RunDir) else RunDir(run)
        if sample_ids is None or labels is None:
            samples = self.run.read_samples()
            sample_ids = samples["sample_id"].to_numpy()
            labels = samples["label"].to_numpy()
        ids = np.asarray(list(sample_ids) if not isinstance(sample_ids, np.ndarray) else sample_ids)
        given = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
        if ids.shape != given.shape:
            raise ReviewError(f"{len(ids)} sample ids but {len(given)} labels")
        self._label_of: dict[int, int] = dict(zip(ids.tolist(), given.tolist(), strict=True))
        self.label_names: list[str] = (
            list(label_names) if label_names is not None else self.run.label_names()
        )
        self.path: Path = self.run.reviews_path
        self._schema_ready = False

    # ---- connections -------------------------------------------------------------------
    def _readonly_message(self, err: BaseException) -> str:
        return (
            f"cannot save the decision: the run directory {self.run.path} is read-only "
            f"({err}); earlier decisions are kept — make the folder writable or review a copy"
        )

    def _damaged_message(self, err: BaseException) -> str:
        return (
            f"{self.path} is damaged ({err}); ogad never rewrites it: restore it from a backup "
            f"or recover it (`sqlite3 {self.path.name} .recover | sqlite3 recovered.sqlite`, "
            f"then move recovered.sqlite to {self.path.name})"
        )

    def _connect(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        if self._schema_ready:
            return
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RunDirError(f"cannot switch {self.path} to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(_SCHEMA)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise RunDirError(
                f"{self.path} has review schema {version}; this ogad reads {SCHEMA_VERSION}"
            )
        self._schema_ready = True

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE`` (committed on success, rolled back on error)."""
        if not self.run.path.is_dir():
            raise RunDirError(f"run directory not found: {self.run.path}")
        try:
            if not self.path.exists():  # SQLite creates 0644 whatever the umask: create it
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666))  # (-wal, -shm follow)
            conn = self._connect(self.path)
        except (OSError, sqlite3.Error) as err:
            raise RunDirError(self._readonly_message(err)) from None
        try:
            try:
                self._ensure_schema(conn)
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                if _is_readonly_error(err):
                    raise RunDirError(self._readonly_message(err)) from None
                if _is_damaged_error(err):
                    raise RunDirError(self._damaged_message(err)) from None
                raise RunDirError(f"cannot write {self.path}: {err}") from None
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                conn.execute("ROLLBACK")
                if _is_readonly_error(err):
                    raise RunDirError(self._readonly_message(err)) from None
                raise RunDirError(f"cannot write {self.path}: {err}") from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, or None when no decision was ever saved.

        A database that cannot be opened in place (read-only folder) is copied with its WAL to a
        temporary folder and read there, so committed decisions still in the WAL are seen.
        """
        if not self.path.is_file():
            yield None
            return
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect(self.path)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            if conn is not None:
                conn.close()
            conn = None
        if conn is not None:
            try:
                yield conn
            finally:
                conn.close()
            return
        with tempfile.TemporaryDirectory(prefix="ogad_reviews_") as tmp:
            copy = Path(tmp) / self.path.name
            try:
                shutil.copy2(self.path, copy)
                for suffix in ("-wal",):
                    side = self.path.with_name(self.path.name + suffix)
                    if side.is_file():
                        shutil.copy2(side, copy.with_name(copy.name + suffix))
                conn = self._connect(copy)
            except (OSError, sqlite3.Error) as err:
                raise RunDirError(f"cannot read {self.path}: {err}") from None
            try:
                yield conn
            finally:
                conn.close()

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._read() as conn:
            if conn is None:
                return []
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as err:
                if "no such table" in str(err):
                    return []
                raise RunDirError(f"cannot read {self.path}: {err}") from None
            except sqlite3.DatabaseError as err:  # not a database, malformed image
                raise RunDirError(self._damaged_message(err)) from None

    # ---- validation --------------------------------------------------------------------
    def check_sample_id(self, sample_id: object) -> int:
        """The sample id as int; ReviewError when it is not one of the run's samples."""
        if isinstance(sample_id, bool | np.bool_):
            raise ReviewError(f"sample id must be an integer, got {sample_id!r}")
        try:
            sid = operator.index(sample_id)  # type: ignore[arg-type]
        except TypeError:
            raise ReviewError(f"sample id must be an integer, got {sample_id!r}") from None
        if sid not in self._label_of:
            raise ReviewError(
                f"sample id {sid} does not exist in this run ({len(self._label_of)} samples)"
            )
        return sid

    def check_label(self, label: object) -> int:
        """A class index or name as a class index; ReviewError when not in the label set."""
        if isinstance(label, str):
            if label in self.label_names:
                return self.label_names.index(label)
            raise ReviewError(
                f"unknown label {label!r}; this run's labels are: {', '.join(self.label_names)}"
            )
        if isinstance(label, bool | np.bool_):
            raise ReviewError(f"label must be a class name or index, got {label!r}")
        try:
            index = operator.index(label)  # type: ignore[arg-type]
        except TypeError:
            raise ReviewError(f"label must be a class name or index, got {label!r}") from None
        if not 0 <= index < len(self.label_names):
            raise ReviewError(
                f"label index {index} is out of range (0..{len(self.label_names) - 1})"
            )
        return index

    @staticmethod
    def check_reviewer(reviewer: object) -> str:
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise ReviewError("a reviewer name is required (a non-empty string)")
        name = " ".join(reviewer.split())
        if len(name) > MAX_REVIEWER_LEN:
            raise ReviewError(f"reviewer name is longer than {MAX_REVIEWER_LEN} characters")
        return name

    # ---- writes ------------------------------------------------------------------------
    def decide(
        self,
        sample_id: int,
        decision: str,
        *,
        reviewer: str,
        new_label: int | str | None = None,
        session_id: str | None = None,
    ) -> HistoryEntry:
        """Record a decision for one sample; returns its history entry.

        ``new_label`` (class index or name) is required for ``relabeled`` and refused otherwise.
        """
        sid = self.check_sample_id(sample_id)
        if decision not in DECISIONS:
            raise ReviewError(f"unknown decision {decision!r}; use one of: {', '.join(DECISIONS)}")
        name = self.check_reviewer(reviewer)
        label: int | None = None
        if decision == RELABELED:
            if new_label is None:
                raise ReviewError("a relabel needs the new label")
            label = self.check_label(new_label)
            if label == self._label_of[sid]:
                raise ReviewError(
                    f"sample {sid} already has label {self.label_names[label]!r}; "
                    "choose another class, or Reject to keep it as it is"
                )
        elif new_label is not None:
            raise ReviewError(f"a new label is only given with {RELABELED!r}, not {decision!r}")
        ts = utc_now("milliseconds")
        with self._write() as conn:
            prev = conn.execute(
                "SELECT decision, new_label, history_id FROM decisions WHERE sample_id = ?",
                (sid,),
            ).fetchone()
            prev_decision, prev_label, prev_hid = prev if prev else (None, None, None)
            hid = _append_history(
                conn,
                sample_id=sid,
                action=ACTION_DECIDE,
                decision=decision,
                new_label=label,
                prev_decision=prev_decision,
                prev_label=prev_label,
                prev_history_id=prev_hid,
                reviewer=name,
                session_id=session_id,
                ts=ts,
            )
            _put_decision(conn, sid, decision, label, name, session_id, ts, hid)
        return HistoryEntry(
            hid,
            sid,
            ACTION_DECIDE,
            decision,
            label,
            prev_decision,
            prev_label,
            name,
            session_id,
            ts,
        )

    def confirm(self, sample_id: int, *, reviewer: str, session_id: str | None = None):
        """The flag is right: drop the sample."""
        return self.decide(sample_id, CONFIRMED, reviewer=reviewer, session_id=session_id)

    def reject(self, sample_id: int, *, reviewer: str, session_id: str | None = None):
        """The flag is wrong: keep the sample with its label."""
        return self.decide(sample_id, REJECTED, reviewer=reviewer, session_id=session_id)

    def relabel(
        self,
        sample_id: int,
        new_label: int | str,
        *,
        reviewer: str,
        session_id: str | None = None,
    ) -> HistoryEntry:
        """Keep the sample with ``new_label`` (class index or name)."""
        return self.decide(
            sample_id, RELABELED, reviewer=reviewer, new_label=new_label, session_id=session_id
        )

    def undo_last(
        self, *, reviewer: str | None = None, session_id: str | None = None
    ) -> HistoryEntry | None:
        """Undo the latest decision of ``session_id`` (or else of ``reviewer``) still in effect.

        The sample gets back the value that decision replaced, and the undo is itself appended to
        the history. A decision that another reviewer has since overwritten is not in effect any
        more and is skipped (undoing it would erase their decision). Repeated calls undo further
        back. Returns the undo's history entry, or None when there is nothing to undo.
        """
        if session_id is None and reviewer is None:
            raise ReviewError("undo needs a reviewer or a session id")
        name = self.check_reviewer(reviewer) if reviewer is not None else None
        who, match = ("session_id", session_id) if session_id is not None else ("reviewer", name)
        ts = utc_now("milliseconds")
        with self._write() as conn:
            row = conn.execute(
                "SELECT h.id, h.sample_id, h.decision, h.new_label, h.prev_decision, "
                "h.prev_label, h.prev_history_id, h.reviewer FROM history h "
                "JOIN decisions d ON d.sample_id = h.sample_id AND d.history_id = h.id "
                f"WHERE h.action = ? AND h.{who} = ? AND h.undone_by IS NULL "
                "ORDER BY h.id DESC LIMIT 1",
                (ACTION_DECIDE, match),
            ).fetchone()
            if row is None:
                return None
            hid, sid, decision, label, prev_decision, prev_label, prev_hid, by = row
            actor = name if name is not None else by
            undo_id = _append_history(
                conn,
                sample_id=sid,
                action=ACTION_UNDO,
                decision=prev_decision,
                new_label=prev_label,
                prev_decision=decision,
                prev_label=label,
                prev_history_id=hid,
                reviewer=actor,
                session_id=session_id,
                ts=ts,
                undoes=hid,
            )
            conn.execute("UPDATE history SET undone_by = ? WHERE id = ?", (undo_id, hid))
            if prev_decision is None:
                conn.execute("DELETE FROM decisions WHERE sample_id = ?", (sid,))
            else:
                restored = conn.execute(
                    "SELECT reviewer, session_id, ts FROM history WHERE id = ?", (prev_hid,)
                ).fetchone()
                prev_by, prev_session, prev_ts = restored if restored else (actor, None, ts)
                _put_decision(
                    conn, sid, prev_decision, prev_label, prev_by, prev_session, prev_ts, prev_hid
                )
        return HistoryEntry(
            undo_id,
            sid,
            ACTION_UNDO,
            prev_decision,
            prev_label,
            decision,
            label,
            actor,
            session_id,
            ts,
        )

    # ---- reads -------------------------------------------------------------------------
    def current(self) -> pd.DataFrame:
        """The decisions in effect: one row per reviewed sample, columns CURRENT_COLUMNS.

        ``new_label`` is a nullable Int64 class index (set for ``relabeled`` only).
        """
        rows = self._query(
            "SELECT sample_id, decision, new_label, reviewer, session_id, updated_at "
            "FROM decisions ORDER BY sample_id"
        )
        frame = pd.DataFrame(rows, columns=CURRENT_COLUMNS)
        frame["sample_id"] = frame["sample_id"].astype("int64")
        frame["new_label"] = frame["new_label"].astype("Int64")
        return frame

    def get(self, sample_id: int) -> str:
        """The decision in effect for one sample (``unreviewed`` when none)."""
        sid = self.check_sample_id(sample_id)
        rows = self._query("SELECT decision FROM decisions WHERE sample_id = ?", (sid,))
        return str(rows[0][0]) if rows else UNREVIEWED

    def history(self, sample_id: int | None = None) -> pd.DataFrame:
        """The append-only log, oldest first, columns HISTORY_COLUMNS."""
        sql = f"SELECT {', '.join(HISTORY_COLUMNS)} FROM history"
        params: tuple = ()
        if sample_id is not None:
            sql += " WHERE sample_id = ?"
            params = (self.check_sample_id(sample_id),)
        frame = pd.DataFrame(self._query(sql + " ORDER BY id", params), columns=HISTORY_COLUMNS)
        for col in ("new_label", "prev_label", "undoes", "undone_by"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def version(self) -> int:
        """The id of the latest history entry (0 when none): changes on every write."""
        rows = self._query("SELECT COALESCE(MAX(id), 0) FROM history")
        return int(rows[0][0]) if rows else 0

    def counts(self) -> dict[str, int]:
        """Number of samples per decision, ``unreviewed`` included."""
        rows = dict(self._query("SELECT decision, count(*) FROM decisions GROUP BY decision"))
        out = {d: int(rows.get(d, 0)) for d in DECISIONS}
        out[UNREVIEWED] = len(self._label_of) - sum(out.values())
        return out

    def can_undo(self, *, reviewer: str | None = None, session_id: str | None = None) -> bool:
        """Whether :meth:`undo_last` with the same arguments would undo something."""
        if session_id is None and reviewer is None:
            return False
        if session_id is not None:
            who, match = "session_id", session_id
        else:
            who, match = "reviewer", self.check_reviewer(reviewer)
        rows = self._query(
            "SELECT 1 FROM history h JOIN decisions d "
            "ON d.sample_id = h.sample_id AND d.history_id = h.id "
            f"WHERE h.action = ? AND h.{who} = ? AND h.undone_by IS NULL LIMIT 1",
            (ACTION_DECIDE, match),
        )
        return bool(rows)

    def writable(self) -> bool:
        """Whether decisions can be saved (best guess without writing: folder and file access)."""
        if not self.run.path.is_dir():
            return False
        if self.path.exists() and not os.access(self.path, os.W_OK):
            return False
        return os.access(self.run.path, os.W_OK)
