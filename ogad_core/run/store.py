"""Streaming store of the (N, D) float32 gradient matrix: ``gradients.npy`` + a done-mask.

Rows are written with positioned writes (``os.pwrite``) into a pre-sized ``.npy`` file, so
the process never maps or holds the whole matrix; a ``.done.npy`` bool mask marks finished
rows and a ``.json`` sidecar records shape, fingerprint and a BLAKE2b checksum of every
finished block of rows. A killed compute reopens the store, verifies the finished blocks
(checksum and finite values) and writes only the rows not yet done or found corrupt. Readers
use ``np.load(mmap_mode="r")``; :func:`verify_gradients` checks a finished file before use.

Write order, so that a finished block always has its checksum: rows (fsync) -> checksums of
the blocks they complete (sidecar, atomic) -> done-mask.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ogad_core._internal import one_line, pwrite_all, write_json_atomic
from ogad_core.errors import RunDirError

#: about this many bytes per checksummed block of rows
BLOCK_BYTES = 4 * 2**20
STORE_FORMAT = 2


def block_rows_for(n_cols: int) -> int:
    """Rows per checksummed block for rows of ``n_cols`` float32."""
    return max(1, BLOCK_BYTES // max(1, n_cols * 4))


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Damage:
    """What a verification found: blocks whose bytes fail their checksum or hold NaN / inf."""

    bad_blocks: tuple[int, ...]
    bad_rows: int
    nonfinite: bool

    def describe(self, name: str) -> str:
        what = "NaN or infinite values" if self.nonfinite else "bytes that fail their checksum"
        return f"{name}: {self.bad_rows} rows in {len(self.bad_blocks)} block(s) hold {what}"


class GradientStore:
    """Gradient rows on disk with resume and per-block checksums.

    Args:
        path: the ``.npy`` file.
        n_rows, n_cols: N, D.
        fingerprint: what produced the rows; a store with another fingerprint or shape is
            started anew (never mixed).

    Attributes:
        resumed: an earlier store with the same fingerprint and shape was reopened.
        damage: what reopening found corrupt (those rows are pending again), or None.
        discarded: why files found at ``path`` were not reused (all rows pending), or None.
    """

    def __init__(self, path: Path, *, n_rows: int, n_cols: int, fingerprint: str) -> None:
        self.path = Path(path)
        self.done_path = self.path.with_name(self.path.stem + ".done.npy")
        self.meta_path = self.path.with_name(self.path.stem + ".json")
        self.n_rows, self.n_cols, self.fingerprint = n_rows, n_cols, fingerprint
        self.block_rows = block_rows_for(n_cols)
        self.damage: Damage | None = None
        self.discarded: str | None = None  # why existing files were not reused
        meta = self._resumable_meta()
        self.resumed = meta is not None
        if meta is None:
            self._create()
            self.checksums: dict[str, str] = {}
        else:
            self.checksums = dict(meta.get("blocks", {}))
        self.done = np.load(self.done_path, mmap_mode="r+")
        self._offset = self._header_len()
        if self.resumed:
            self._verify_on_open()

    # ---- opening -----------------------------------------------------------------------
    def _resumable_meta(self) -> dict | None:
        if not (self.path.is_file() and self.done_path.is_file() and self.meta_path.is_file()):
            return None
        if any(p.is_symlink() for p in (self.path, self.done_path, self.meta_path)):
            self.discarded = "a symbolic link (never written through)"
            return None  # start anew: the links are removed, never followed
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            header_ok = np.load(self.path, mmap_mode="r").shape == (self.n_rows, self.n_cols)
            done_ok = np.load(self.done_path, mmap_mode="r").shape == (self.n_rows,)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            self.discarded = f"unreadable or truncated ({one_line(err, 80)})"
            return None  # start anew
        ok = (
            isinstance(meta, dict)
            and meta.get("fingerprint") == self.fingerprint
            and meta.get("shape") == [self.n_rows, self.n_cols]
            and meta.get("format") == STORE_FORMAT
            and meta.get("block_rows") == self.block_rows
            and header_ok
            and done_ok
        )
        if not ok:
            self.discarded = "made from other inputs, or by an older ogad"
        return meta if ok else None

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for p in (self.meta_path, self.done_path, self.path):
            p.unlink(missing_ok=True)
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.n_rows, self.n_cols)}
        with open(self.path, "wb") as fh:  # open() and np.save honour the umask
            np.lib.format.write_array_header_1_0(fh, header)
            fh.truncate(fh.tell() + self.n_rows * self.n_cols * 4)
        np.save(self.done_path, np.zeros(self.n_rows, dtype=bool))
        self.checksums = {}
        self._write_meta()

    def _write_meta(self) -> None:
        write_json_atomic(
            self.meta_path,
            {
                "format": STORE_FORMAT,
                "fingerprint": self.fingerprint,
                "shape": [self.n_rows, self.n_cols],
                "dtype": "float32",
                "block_rows": self.block_rows,
                "blocks": self.checksums,
            },
        )

    def _header_len(self) -> int:
        with open(self.path, "rb") as fh:
            np.lib.format.read_magic(fh)
            np.lib.format.read_array_header_1_0(fh)
            return fh.tell()

    def _verify_on_open(self) -> None:
        """Mark the rows of finished blocks that fail verification as pending again."""
        damage = verify_blocks(self, only_done=True)
        if damage is None:
            return
        self.damage = damage
        for b in damage.bad_blocks:
            lo, hi = self._block_span(b)
            self.done[lo:hi] = False
            self.checksums.pop(str(b), None)
        self.done.flush()
        self._write_meta()

    # ---- blocks ------------------------------------------------------------------------
    @property
    def n_blocks(self) -> int:
        return -(-self.n_rows // self.block_rows)

    def _block_span(self, block: int) -> tuple[int, int]:
        lo = block * self.block_rows
        return lo, min(self.n_rows, lo + self.block_rows)

    def read_block(self, block: int, fd: int | None = None) -> bytes:
        """The raw bytes of one block of rows."""
        lo, hi = self._block_span(block)
        row_bytes = self.n_cols * 4
        handle = os.open(self.path, os.O_RDONLY) if fd is None else fd
        try:
            return os.pread(handle, (hi - lo) * row_bytes, self._offset + lo * row_bytes)
        finally:
            if fd is None:
                os.close(handle)

    # ---- rows --------------------------------------------------------------------------
    def pending(self) -> np.ndarray:
        """Indices (int64) of the rows not written yet."""
        return np.flatnonzero(~np.asarray(self.done))

    @property
    def complete(self) -> bool:
        return bool(np.asarray(self.done).all())

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (B, D) at row indices ``rows`` (B,), then mark them done.

        Contiguous runs of rows are written in one call; data is synced, then the checksums
        of the blocks these rows complete are recorded, then the mask is set. Every byte count
        is checked: a short write (full disk) raises ``OSError`` before any row is marked done.
        """
        values = np.ascontiguousarray(values, dtype="<f4")
        rows = np.asarray(rows, dtype=np.int64)
        if values.shape != (rows.shape[0], self.n_cols):
            raise ValueError(f"expected ({rows.shape[0]}, {self.n_cols}) rows, got {values.shape}")
        row_bytes = self.n_cols * 4
        fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW)  # never write through a link
        try:
            breaks = np.flatnonzero(np.diff(rows) != 1) + 1
            for seg_rows, seg_vals in zip(
                np.split(rows, breaks), np.split(values, breaks), strict=True
            ):
                pwrite_all(fd, seg_vals.tobytes(), self._offset + int(seg_rows[0]) * row_bytes)
            os.fsync(fd)
            if self._record_completed_blocks(rows, fd):
                self._write_meta()
        finally:
            os.close(fd)
        self.done[rows] = True
        self.done.flush()

    def _record_completed_blocks(self, rows: np.ndarray, fd: int) -> bool:
        """Checksum every block that ``rows`` complete; whether any was recorded."""
        recorded = False
        for b in np.unique(rows // self.block_rows).tolist():
            lo, hi = self._block_span(b)
            will_be_done = np.asarray(self.done[lo:hi]).copy()
            in_block = rows[(rows >= lo) & (rows < hi)]
            will_be_done[in_block - lo] = True
            if will_be_done.all():
                self.checksums[str(b)] = _digest(self.read_block(b, fd))
                recorded = True
        return recorded

    @classmethod
    def open_readonly(cls, path: Path) -> GradientStore | None:
        """A finished store opened for verification only (nothing is written); None when its
        sidecar or mask is missing, unreadable or from an older format."""
        store = cls.__new__(cls)
        store.path = Path(path)
        store.done_path = store.path.with_name(store.path.stem + ".done.npy")
        store.meta_path = store.path.with_name(store.path.stem + ".json")
        try:
            meta = json.loads(store.meta_path.read_text(encoding="utf-8"))
            store.n_rows, store.n_cols = (int(v) for v in meta["shape"])
            store.fingerprint = str(meta["fingerprint"])
            store.block_rows = int(meta["block_rows"])
            store.checksums = dict(meta["blocks"])
            store.done = np.load(store.done_path, mmap_mode="r")
            store._offset = store._header_len()
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None
        if meta.get("format") != STORE_FORMAT or store.done.shape != (store.n_rows,):
            return None
        store.resumed, store.damage = True, None
        return store

    def array(self) -> np.ndarray:
        """The matrix as a read-only memmap (N, D) float32."""
        return np.load(self.path, mmap_mode="r")


def verify_blocks(store: GradientStore, *, only_done: bool = True) -> Damage | None:
    """Check every finished block's checksum and finiteness; None when all are sound.

    A finished block without a recorded checksum counts as damaged (the write order records
    the checksum before the mask).
    """
    done = np.asarray(store.done)
    bad: list[int] = []
    nonfinite = False
    fd = os.open(store.path, os.O_RDONLY)
    try:
        for b in range(store.n_blocks):
            lo, hi = store._block_span(b)
            if only_done and not done[lo:hi].all():
                continue
            data = store.read_block(b, fd)
            if len(data) != (hi - lo) * store.n_cols * 4:
                bad.append(b)
                continue
            if not np.isfinite(np.frombuffer(data, dtype="<f4")).all():
                bad.append(b)
                nonfinite = True
            elif store.checksums.get(str(b)) != _digest(data):
                bad.append(b)
    finally:
        os.close(fd)
    if not bad:
        return None
    rows = sum(store._block_span(b)[1] - store._block_span(b)[0] for b in bad)
    return Damage(bad_blocks=tuple(bad), bad_rows=rows, nonfinite=nonfinite)


def _check_finite(path: Path, matrix: np.ndarray, hint: str) -> None:
    """RunDirError naming the first row with NaN / inf (read in chunks of rows)."""
    from ogad_core._internal import row_chunks

    for rows in row_chunks(matrix.shape[0], max(1, matrix.shape[1]) * 4):
        bad = ~np.isfinite(np.asarray(matrix[rows])).all(axis=1)
        if bad.any():
            first = rows.start + int(np.flatnonzero(bad)[0])
            raise RunDirError(f"{path} holds NaN or infinite values (row {first}); {hint}")


def verify_gradients(path: Path, *, n_rows: int | None = None, n_cols: int | None = None) -> None:
    """Check a finished gradient file before it is used: its shape, then every block against
    the checksums of its sidecar (a file written before checksums existed: finite values).

    Raises:
        RunDirError: one line naming the damage, with the command that rebuilds it.
    """
    path = Path(path)
    hint = "run the same `ogad compute` command again to rebuild it"
    try:
        matrix = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as err:
        raise RunDirError(f"{path} is unreadable or truncated ({err}); {hint}") from None
    expected = (n_rows or matrix.shape[0], n_cols or matrix.shape[1])
    if matrix.ndim != 2 or tuple(matrix.shape) != expected:
        raise RunDirError(f"{path} holds {matrix.shape}, expected {expected}; {hint}")
    opened = GradientStore.open_readonly(path)
    if opened is None:  # no checksum record (an older run, or a file from elsewhere)
        _check_finite(path, matrix, hint)
        return
    if opened.n_rows != expected[0] or opened.n_cols != expected[1] or not opened.complete:
        raise RunDirError(f"{path} is incomplete; {hint}")
    damage = verify_blocks(opened, only_done=False)
    if damage is not None:
        raise RunDirError(f"{damage.describe(str(path))}; {hint}")


# ---- the one row store, for every resumable (N, D) float32 matrix ---------------------------
# GradientStore is it: gradients.npy, the text embeddings and the image-encoder features all go
# through it (a cache is a store whose fingerprint is its key). ArrayRows is its in-memory twin
# for callers that keep nothing on disk, so no caller branches on "cache or array".


class ArrayRows:
    """(N, D) float32 rows in memory with a GradientStore's ``done`` / ``pending`` / ``write`` /
    ``array``: nothing is written to disk, nothing resumes."""

    def __init__(self, n_rows: int, n_cols: int) -> None:
        self.values = np.empty((n_rows, n_cols), dtype=np.float32)
        self.done = np.zeros(n_rows, dtype=bool)

    def pending(self) -> np.ndarray:
        """Indices (int64) of the rows not written yet."""
        return np.flatnonzero(~self.done)

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Put (B, D) ``values`` at (B,) ``rows`` and mark them done."""
        self.values[rows] = values
        self.done[rows] = True

    def array(self) -> np.ndarray:
        """The (N, D) float32 rows."""
        return self.values


def finished_rows(path: Path, *, n_rows: int, fingerprint: str) -> np.ndarray | None:
    """The (N, D) float32 matrix of a finished, sound store at ``path`` made from
    ``fingerprint`` (read-only memmap); None when absent, unfinished, other or damaged."""
    store = GradientStore.open_readonly(path)
    if store is None or store.fingerprint != fingerprint or store.n_rows != n_rows:
        return None
    if not store.complete or verify_blocks(store, only_done=False) is not None:
        return None
    return store.array()


def row_store(
    path: Path | None, *, n_rows: int, n_cols: int, fingerprint: str
) -> GradientStore | ArrayRows:
    """A resumable GradientStore at ``path`` (reopened when it holds the same fingerprint and
    shape), or rows in memory when ``path`` is None."""
    if path is None:
        return ArrayRows(n_rows, n_cols)
    return GradientStore(Path(path), n_rows=n_rows, n_cols=n_cols, fingerprint=fingerprint)
