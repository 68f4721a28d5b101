"""Streaming store of the (N, D) float32 gradient matrix: ``gradients.npy`` + a done-mask.

Rows are written with positioned writes (``os.pwrite``) into a pre-sized ``.npy`` file, so
the process never maps or holds the whole matrix; a ``.done.npy`` bool mask marks finished
rows and a ``.json`` sidecar records shape and fingerprint. A killed compute reopens the store
and writes only the rows not yet done. Readers use ``np.load(mmap_mode="r")``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ogad_core._internal import write_json_atomic


class GradientStore:
    """Gradient rows on disk with resume.

    Args:
        path: the ``.npy`` file.
        n_rows, n_cols: N, D.
        fingerprint: what produced the rows; a store with another fingerprint or shape is
            started anew (never mixed).
    """

    def __init__(self, path: Path, *, n_rows: int, n_cols: int, fingerprint: str) -> None:
        self.path = Path(path)
        self.done_path = self.path.with_name(self.path.stem + ".done.npy")
        self.meta_path = self.path.with_name(self.path.stem + ".json")
        self.n_rows, self.n_cols, self.fingerprint = n_rows, n_cols, fingerprint
        self.resumed = self._can_resume()
        if not self.resumed:
            self._create()
        self.done = np.load(self.done_path, mmap_mode="r+")
        self._offset = self._header_len()

    def _can_resume(self) -> bool:
        if not (self.path.is_file() and self.done_path.is_file() and self.meta_path.is_file()):
            return False
        try:
            meta = json.loads(self.meta_path.read_text())
            header_ok = np.load(self.path, mmap_mode="r").shape == (self.n_rows, self.n_cols)
            done_ok = np.load(self.done_path, mmap_mode="r").shape == (self.n_rows,)
        except (OSError, ValueError):
            return False
        return (
            meta.get("fingerprint") == self.fingerprint
            and meta.get("shape") == [self.n_rows, self.n_cols]
            and header_ok
            and done_ok
        )

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for p in (self.meta_path, self.done_path, self.path):
            p.unlink(missing_ok=True)
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.n_rows, self.n_cols)}
        with open(self.path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            fh.truncate(fh.tell() + self.n_rows * self.n_cols * 4)
        np.save(self.done_path, np.zeros(self.n_rows, dtype=bool))
        write_json_atomic(
            self.meta_path,
            {
                "fingerprint": self.fingerprint,
                "shape": [self.n_rows, self.n_cols],
                "dtype": "float32",
            },
        )

    def _header_len(self) -> int:
        with open(self.path, "rb") as fh:
            np.lib.format.read_magic(fh)
            np.lib.format.read_array_header_1_0(fh)
            return fh.tell()

    def pending(self) -> np.ndarray:
        """Indices (int64) of the rows not written yet."""
        return np.flatnonzero(~np.asarray(self.done))

    @property
    def complete(self) -> bool:
        return bool(np.asarray(self.done).all())

    def write(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (B, D) at row indices ``rows`` (B,), then mark them done.

        Contiguous runs of rows are written in one call; data is synced before the mask.
        """
        values = np.ascontiguousarray(values, dtype="<f4")
        rows = np.asarray(rows, dtype=np.int64)
        if values.shape != (rows.shape[0], self.n_cols):
            raise ValueError(f"expected ({rows.shape[0]}, {self.n_cols}) rows, got {values.shape}")
        row_bytes = self.n_cols * 4
        fd = os.open(self.path, os.O_WRONLY)
        try:
            breaks = np.flatnonzero(np.diff(rows) != 1) + 1
            for seg_rows, seg_vals in zip(
                np.split(rows, breaks), np.split(values, breaks), strict=True
            ):
                os.pwrite(fd, seg_vals.tobytes(), self._offset + int(seg_rows[0]) * row_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done[rows] = True
        self.done.flush()

    def array(self) -> np.ndarray:
        """The matrix as a read-only memmap (N, D) float32."""
        return np.load(self.path, mmap_mode="r")
