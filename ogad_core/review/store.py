"""The reviewers' decision store: ``<run>/reviews.sqlite`` (stdlib sqlite3, WAL). Torch-free.

Two tables:

* ``decisions``: the decision now in effect per sample (a sample without a row is unreviewed);
* ``history``: append-only log of every decision and every undo (who, when, what, the value it
  replaced). A decision written by a bulk action carries the bulk's ``batch_id``: undo takes the
  whole batch back as one step. A ``decide`` row whose ``decision`` is NULL sent the sample back
  to unreviewed;
* ``resets``: the ``decide`` row in effect for a sample that was sent back to unreviewed (so that
  step can be undone like any other);
* ``meta``: ``inputs``, a fingerprint of the inputs the decisions were made on (sample ids, given
  labels, label names), stamped by the first write. A store whose run has other inputs refuses
  to read or write it (:meth:`ReviewStore.inputs_status`); ``ogad compute`` sets such a file aside
  (:func:`set_aside_foreign_reviews`), so old decisions are never applied to other labels.

Decisions: ``confirmed`` (the flag is right: drop the sample), ``rejected`` (the flag is wrong:
keep it), ``relabeled`` (keep it with ``new_label``). Labels are stored as class indices into the
manifest's ``label_names``.

Every write is one ``BEGIN IMMEDIATE`` transaction (WAL, busy_timeout, synchronous FULL), so
several processes (two dashboard servers, a dashboard and ``ogad export``) can read and write the
same run at once without losing a decision. A store keeps one connection for its life (opening
and closing one per call cost a WAL checkpoint on every close: about half of a decision's time);
a lock makes it safe for the threads of one process (Streamlit's sessions), and it is reopened
when the file was removed or replaced, after an error, and in a forked child. A read-only run
directory can still be read (the database is copied to a temporary folder with its WAL, so
nothing committed is missed); writing to it raises :class:`~ogad_core.errors.RunDirError` with
one clear line.
"""

from __future__ import annotations

import hashlib
import operator
import os
import random
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ogad_core._internal import log, utc_now
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
CREATE TABLE IF NOT EXISTS resets (
    sample_id   INTEGER PRIMARY KEY,
    history_id  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
INPUTS_KEY = "inputs"
# who made a step (undo per browser session or per reviewer) → the history column to match
_WHO_COLUMNS = ("session_id", "reviewer")
# the newest decide row of one reviewer / session still in effect (a decision or a reset)
_IN_EFFECT_FROM = (
    "FROM history h "
    "LEFT JOIN decisions d ON d.sample_id = h.sample_id AND d.history_id = h.id "
    "LEFT JOIN resets r ON r.sample_id = h.sample_id AND r.history_id = h.id "
    "WHERE h.action = 'decide' AND h.{who} = ? AND h.undone_by IS NULL "
    "AND (d.sample_id IS NOT NULL OR r.sample_id IS NOT NULL)"
)
_IN_EFFECT_SQL = (
    "SELECT h.id, h.sample_id, h.decision, h.new_label, h.prev_decision, h.prev_label, "
    "h.prev_history_id, h.reviewer, h.batch_id " + _IN_EFFECT_FROM
)

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
    batch_id: str | None = None


def _add_batch_column(conn: sqlite3.Connection) -> None:
    """Databases written before bulk actions get the nullable ``history.batch_id`` column."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(history)")}
    if "batch_id" not in columns:
        conn.execute("ALTER TABLE history ADD COLUMN batch_id TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS history_by_batch ON history (batch_id)")


def _state_of(conn: sqlite3.Connection, sid: int) -> tuple[str | None, int | None, int | None]:
    """(decision or None, new label, id of the decide row in effect or None) of one sample."""
    row = conn.execute(
        "SELECT decision, new_label, history_id FROM decisions WHERE sample_id = ?", (sid,)
    ).fetchone()
    if row is not None:
        return row[0], row[1], row[2]
    reset = conn.execute("SELECT history_id FROM resets WHERE sample_id = ?", (sid,)).fetchone()
    return None, None, (reset[0] if reset else None)


def _merge_wal(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database and empty it, if no other connection is reading (best
    effort, never waits; what closing the last connection did when each call had its own): the
    database file alone then holds every decision, and a file put in its place later never meets
    committed frames of this one in a leftover WAL."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.OperationalError:  # busy: the next write tries again
        pass
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


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


def inputs_fingerprint(
    sample_ids: np.ndarray, labels: np.ndarray, label_names: Iterable[str]
) -> str:
    """What decisions are tied to: sample ids (N,) and given labels (N,) as int64, and the class
    names (a relabel stores a class index)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(sample_ids, dtype="<i8").tobytes())
    h.update(b"|")
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    h.update("|".join(str(n) for n in label_names).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _stored_inputs(conn: sqlite3.Connection) -> str | None:
    """The inputs fingerprint a database was stamped with (None: not stamped, older ogad)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (INPUTS_KEY,)).fetchone()
    except sqlite3.OperationalError as err:
        if "no such table" in str(err):
            return None
        raise
    return None if row is None else str(row[0])


def _append_history(conn: sqlite3.Connection, **columns: Any) -> int:
    """Append one row to the history table; returns its id."""
    names = ", ".join(columns)
    marks = ", ".join("?" * len(columns))
    cur = conn.execute(f"INSERT INTO history ({names}) VALUES ({marks})", tuple(columns.values()))
    return int(cur.lastrowid or 0)


def _put_decision(
    conn: sqlite3.Connection,
    sample_id: int,
    decision: str | None,
    new_label: int | None,
    reviewer: str | None,
    session_id: str | None,
    updated_at: str,
    history_id: int | None,
) -> None:
    """Set the decision in effect for one sample (the history row ``history_id`` made it).

    ``decision`` None: the sample is unreviewed; ``history_id`` is then the reset row that made it
    so (None when no decide row did: it was never reviewed, or its first decision was undone).
    """
    if decision is None:
        conn.execute("DELETE FROM decisions WHERE sample_id = ?", (sample_id,))
        if history_id is None:
            conn.execute("DELETE FROM resets WHERE sample_id = ?", (sample_id,))
        else:
            conn.execute(
                "INSERT OR REPLACE INTO resets (sample_id, history_id) VALUES (?, ?)",
                (sample_id, history_id),
            )
        return
    conn.execute("DELETE FROM resets WHERE sample_id = ?", (sample_id,))
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
        self.inputs = inputs_fingerprint(ids, given, self.label_names)
        self._inputs_seen: str | None = None  # "checked" (read) / "bound" (stamped) this conn
        self.path: Path = self.run.reviews_path
        self._schema_ready = False
        self._lock = threading.RLock()  # one user of the connection at a time
        self._conn: sqlite3.Connection | None = None
        self._conn_key: tuple[int, int, int] | None = None  # (pid, device, inode) it was opened on

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

    def _foreign_message(self) -> str:
        return (
            f"{self.path} holds decisions made on other inputs (the sample ids, given labels "
            "or class names differ from this run's); they are not applied: run the run's "
            "`ogad compute` command again to set them aside, or move the file away"
        )

    def _check_inputs(self, conn: sqlite3.Connection, *, bind: bool) -> None:
        """Refuse a database stamped with other inputs; ``bind``: stamp an unstamped one
        (inside the write transaction)."""
        if self._inputs_seen == "bound" or (self._inputs_seen == "checked" and not bind):
            return
        try:
            stored = _stored_inputs(conn)
        except sqlite3.DatabaseError as err:  # not a database, malformed: never rewritten
            if not bind:
                self.close()
            raise RunDirError(self._damaged_message(err)) from None
        if stored is not None and stored != self.inputs:
            raise RunDirError(self._foreign_message())
        if stored is None and bind:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (INPUTS_KEY, self.inputs))
        self._inputs_seen = "bound" if bind or stored is not None else "checked"

    def inputs_status(self) -> str:
        """``none`` (no decisions), ``same`` (stamped with this run's inputs), ``unstamped``
        (decisions from an ogad that did not stamp them) or ``other`` (other inputs)."""
        with self._lock:
            if not self.path.is_file():
                return "none"
            try:
                with self._read(check_inputs=False) as conn:
                    if conn is None:
                        return "none"
                    stored = _stored_inputs(conn)
                    if stored is not None:
                        return "same" if stored == self.inputs else "other"
                    found = conn.execute("SELECT 1 FROM history LIMIT 1").fetchall()
            except sqlite3.OperationalError as err:
                if "no such table" in str(err):
                    return "none"
                raise RunDirError(f"cannot read {self.path}: {err}") from None
            except sqlite3.DatabaseError as err:
                self.close()
                raise RunDirError(self._damaged_message(err)) from None
            return "unstamped" if found else "none"

    def _connect(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _file_key(self) -> tuple[int, int, int] | None:
        """(pid, device, inode) of reviews.sqlite now; None when there is no such file."""
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return os.getpid(), info.st_dev, info.st_ino

    def _shared(self, *, check: bool) -> sqlite3.Connection:
        """The store's connection (call with ``_lock`` held), opened again when the file was
        removed or replaced since, or in a forked child. ``check``: a new connection must read
        the schema (a read-only folder fails here: its WAL index cannot be created)."""
        key = self._file_key()
        if self._conn is not None and key is not None and key == self._conn_key:
            return self._conn
        self.close()
        conn = self._connect(self.path)
        if check:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error:
                conn.close()
                raise
        self._conn, self._conn_key = conn, key
        return conn

    def __del__(self) -> None:
        # sqlite3.Connection sits in a reference cycle (its statement cache), so without this a
        # dropped store would keep its connection, and the WAL unmerged, until the next GC
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def close(self) -> None:
        """Close the store's connection (the next call opens a new one)."""
        with self._lock:
            conn, key = self._conn, self._conn_key
            self._conn, self._conn_key, self._schema_ready = None, None, False
            self._inputs_seen = None
            if conn is not None and key is not None and key[0] == os.getpid():
                try:
                    conn.close()
                except sqlite3.Error:
                    pass

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL and create the tables, waiting out another process doing the same:
        SQLite answers a race for a new file's journal mode or schema with "locked" at once,
        without its busy handler (two readers upgrading would deadlock)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while not self._schema_ready:
            try:
                self._create_schema(conn)
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                _rollback(conn)
                time.sleep(random.uniform(0.005, 0.05))

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RunDirError(f"cannot switch {self.path} to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")  # a saved decision survives a power cut
        conn.executescript(_SCHEMA)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise RunDirError(
                f"{self.path} has review schema {version}; this ogad reads {SCHEMA_VERSION}"
            )
        _add_batch_column(conn)
        self._schema_ready = True

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE`` (committed on success, rolled back on
        error; after an SQLite error the connection is closed, the next call opens a new one)."""
        if not self.run.path.is_dir():
            raise RunDirError(f"run directory not found: {self.run.path}")
        if self.path.is_symlink():
            raise RunDirError(
                f"{self.path} is a symbolic link; ogad never writes decisions through one: "
                "replace it with the file itself"
            )
        with self._lock:
            try:
                if not self.path.exists():  # SQLite creates 0644 whatever the umask: create it
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666))  # (-wal, -shm)
                conn = self._shared(check=False)
            except (OSError, sqlite3.Error) as err:
                self.close()
                raise RunDirError(self._readonly_message(err)) from None
            try:
                yield from self._transaction(conn)
            except sqlite3.Error:
                self.close()
                raise
            except RunDirError:
                self.close()
                raise

    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
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
            self._check_inputs(conn, bind=True)
            yield conn
            conn.execute("COMMIT")
            _merge_wal(conn)
        except sqlite3.Error as err:
            _rollback(conn)
            if _is_readonly_error(err):
                raise RunDirError(self._readonly_message(err)) from None
            raise RunDirError(f"cannot write {self.path}: {err}") from None
        except BaseException:
            _rollback(conn)
            raise

    @contextmanager
    def _read(self, *, check_inputs: bool = True) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, or None when no decision was ever saved; RunDirError when
        its decisions were made on other inputs (``check_inputs``).

        A database that cannot be opened in place (read-only folder) is copied with its WAL to a
        temporary folder and read there, so committed decisions still in the WAL are seen.
        """
        with self._lock:
            if not self.path.is_file():
                self.close()
                yield None
                return
            try:
                conn = self._shared(check=True)
            except sqlite3.Error:
                self.close()
                conn = None
            if conn is not None:
                try:
                    if check_inputs:
                        self._check_inputs(conn, bind=False)
                    yield conn
                except sqlite3.Error:
                    self.close()  # damaged or gone: open it again next time
                    raise
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
                try:
                    stored = _stored_inputs(conn) if check_inputs else None
                except sqlite3.DatabaseError as err:
                    raise RunDirError(self._damaged_message(err)) from None
                if stored not in (None, self.inputs):
                    raise RunDirError(self._foreign_message())
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
                self.close()  # never hold a damaged file open: it may be restored in its place
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
    def _check_decision(
        self, sid: int, decision: str, new_label: int | str | None
    ) -> tuple[str | None, int | None]:
        """(decision to store, None for back to unreviewed; the class index of a relabel)."""
        if decision == UNREVIEWED:
            if new_label is not None:
                raise ReviewError(f"a new label is only given with {RELABELED!r}, not {decision!r}")
            return None, None
        if decision not in DECISIONS:
            choices = ", ".join((*DECISIONS, UNREVIEWED))
            raise ReviewError(f"unknown decision {decision!r}; use one of: {choices}")
        if decision != RELABELED:
            if new_label is not None:
                raise ReviewError(f"a new label is only given with {RELABELED!r}, not {decision!r}")
            return decision, None
        if new_label is None:
            raise ReviewError("a relabel needs the new label")
        label = self.check_label(new_label)
        if label == self._label_of[sid]:
            raise ReviewError(
                f"sample {sid} already has label {self.label_names[label]!r}; "
                "choose another class, or Reject to keep it as it is"
            )
        return decision, label

    @staticmethod
    def _record(
        conn: sqlite3.Connection,
        sid: int,
        stored: tuple[str | None, int | None],
        who: tuple[str, str | None, str | None],
        ts: str,
    ) -> HistoryEntry:
        """Append the decide row for ``stored`` = (decision, label) and put it in effect.

        ``who`` = (reviewer, session id, batch id).
        """
        decision, label = stored
        name, session_id, batch_id = who
        prev_decision, prev_label, prev_hid = _state_of(conn, sid)
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
            batch_id=batch_id,
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
            batch_id,
        )

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
        ``decision='unreviewed'`` sends a reviewed sample back to the queue (ReviewError when it
        is unreviewed already); that step is logged and can be undone like a decision.
        """
        sid = self.check_sample_id(sample_id)
        stored = self._check_decision(sid, decision, new_label)
        name = self.check_reviewer(reviewer)
        ts = utc_now("milliseconds")
        with self._write() as conn:
            if stored[0] is None and _state_of(conn, sid)[0] is None:
                raise ReviewError(f"sample {sid} is unreviewed already")
            return self._record(conn, sid, stored, (name, session_id, None), ts)

    def decide_many(
        self,
        sample_ids: Iterable[int],
        decision: str,
        *,
        reviewer: str,
        new_label: int | str | None = None,
        session_id: str | None = None,
    ) -> list[HistoryEntry]:
        """Record one decision for many samples at once (a bulk action), in one transaction.

        The rows share a new ``batch_id``, so :meth:`undo_last` takes them back as one step.
        Samples that already have exactly this decision are skipped (they need no new row).
        Returns the entries written (oldest first; empty when nothing changed).
        """
        sids = list(dict.fromkeys(self.check_sample_id(s) for s in sample_ids))
        stored = {sid: self._check_decision(sid, decision, new_label) for sid in sids}
        return self._record_step(stored, reviewer, session_id)

    def decide_each(
        self, decisions: Mapping[int, str], *, reviewer: str, session_id: str | None = None
    ) -> list[HistoryEntry]:
        """Record a decision per sample (``{sample_id: decision}``, no relabel) as one step, in
        one transaction: a duplicate set's *Keep one* (the kept member rejected, the others
        confirmed) is undone at once. Samples that already have their decision are skipped."""
        stored = {
            sid: self._check_decision(sid, decision, None)
            for sid, decision in ((self.check_sample_id(s), d) for s, d in decisions.items())
        }
        return self._record_step(stored, reviewer, session_id)

    def _record_step(
        self,
        stored: Mapping[int, tuple[str | None, int | None]],
        reviewer: str,
        session_id: str | None,
    ) -> list[HistoryEntry]:
        """Write the checked decisions (sample id -> stored value) under one new ``batch_id``;
        returns the entries written (oldest first)."""
        name = self.check_reviewer(reviewer)
        ts = utc_now("milliseconds")
        batch_id = uuid.uuid4().hex
        entries: list[HistoryEntry] = []
        with self._write() as conn:
            for sid, value in stored.items():
                if _state_of(conn, sid)[:2] == value:
                    continue
                who = (name, session_id, batch_id)
                entries.append(self._record(conn, sid, value, who, ts))
        return entries

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

    def unreview(self, sample_id: int, *, reviewer: str, session_id: str | None = None):
        """Send a reviewed sample back to unreviewed (logged; undoable)."""
        return self.decide(sample_id, UNREVIEWED, reviewer=reviewer, session_id=session_id)

    def _who(self, reviewer: str | None, session_id: str | None) -> tuple[str, str]:
        """(history column, value) that selects the steps of ``session_id``, else ``reviewer``."""
        if session_id is not None:
            return "session_id", session_id
        if reviewer is None:
            raise ReviewError("undo needs a reviewer or a session id")
        return "reviewer", self.check_reviewer(reviewer)

    @staticmethod
    def _undo_row(
        conn: sqlite3.Connection, row: tuple, actor: str | None, session_id: str | None, ts: str
    ) -> HistoryEntry:
        """Take back one decide row in effect: the sample gets the value it replaced."""
        hid, sid, decision, label, prev_decision, prev_label, prev_hid, by, batch_id = row
        actor = actor if actor is not None else by
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
            batch_id=batch_id,
        )
        conn.execute("UPDATE history SET undone_by = ? WHERE id = ?", (undo_id, hid))
        restored = None
        if prev_hid is not None:
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
            batch_id,
        )

    def undo_step(
        self, *, reviewer: str | None = None, session_id: str | None = None
    ) -> list[HistoryEntry]:
        """Undo the latest step of ``session_id`` (or else of ``reviewer``) still in effect.

        A step is one decision, one "back to unreviewed", or one bulk action (all its decisions
        still in effect). Each sample gets back the value the step replaced, and every undo is
        appended to the history. A decision another reviewer has since overwritten is not in
        effect any more and is skipped (undoing it would erase theirs). Repeated calls undo
        further back; by reviewer this works across browser sessions and restarts. Returns the
        undo entries, newest decision first (empty when there is nothing to undo).
        """
        who, match = self._who(reviewer, session_id)
        actor = match if who == "reviewer" else None
        ts = utc_now("milliseconds")
        sql = _IN_EFFECT_SQL.format(who=who)
        with self._write() as conn:
            latest = conn.execute(sql + " ORDER BY h.id DESC LIMIT 1", (match,)).fetchone()
            if latest is None:
                return []
            rows = [latest]
            if latest[-1] is not None:  # a bulk action: its other decisions still in effect
                rows = conn.execute(
                    sql + " AND h.batch_id = ? ORDER BY h.id DESC", (match, latest[-1])
                ).fetchall()
            return [self._undo_row(conn, row, actor, session_id, ts) for row in rows]

    def undo_last(
        self, *, reviewer: str | None = None, session_id: str | None = None
    ) -> HistoryEntry | None:
        """:meth:`undo_step`, returning the undo of its newest decision (None: nothing undone)."""
        entries = self.undo_step(reviewer=reviewer, session_id=session_id)
        return entries[0] if entries else None

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
        """Whether :meth:`undo_step` with the same arguments would undo something."""
        if session_id is None and reviewer is None:
            return False
        who, match = self._who(reviewer, session_id)
        sql = "SELECT 1 " + _IN_EFFECT_FROM.format(who=who) + " LIMIT 1"
        if not self._query("SELECT 1 FROM sqlite_master WHERE name = 'resets'"):
            # a database from before "back to unreviewed", not written since: no resets table
            sql = sql.replace("LEFT JOIN resets r", "LEFT JOIN decisions r")
        return bool(self._query(sql, (match,)))

    def writable(self) -> bool:
        """Whether decisions can be saved (best guess without writing: folder and file access)."""
        if not self.run.path.is_dir():
            return False
        if self.path.exists() and not os.access(self.path, os.W_OK):
            return False
        return os.access(self.run.path, os.W_OK)


def set_aside_foreign_reviews(
    rd: RunDir,
    sample_ids: np.ndarray,
    labels: np.ndarray,
    label_names: list[str],
    *,
    verified: bool,
) -> str | None:
    """Move ``reviews.sqlite`` aside when its decisions were made on other inputs than
    (sample_ids (N,), labels (N,), label_names); one line saying so, or None (kept).

    ``verified``: the run's data was checked against its manifest (then unstamped decisions of
    an older ogad are kept, and stamped on their next write); a rebuilt run cannot vouch for
    unstamped decisions, so they are set aside too. A damaged file is left for the reader to
    report (ogad never rewrites it).
    """
    store = ReviewStore(rd, sample_ids=sample_ids, labels=labels, label_names=label_names)
    try:
        status = store.inputs_status()
    except RunDirError:
        return None
    finally:
        store.close()
    if status in ("none", "same") or (status == "unstamped" and verified):
        return None
    target = rd.reviews_set_aside_path(utc_now().replace(":", ""))
    for suffix in ("", "-wal", "-shm"):
        side = rd.reviews_path.with_name(rd.reviews_path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    why = "other inputs" if status == "other" else "inputs this rebuilt run cannot confirm"
    message = (
        f"reviews.sqlite holds decisions made on {why} (sample ids, given labels or class "
        f"names); set aside as {target.name}, not applied to this run"
    )
    log.warning(message)
    return message
