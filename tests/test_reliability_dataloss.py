"""Reliability, class 1 (issue 22): nothing may lose or silently corrupt data — a full disk
during the gradient pass, a damaged manifest under other inputs, `--out` onto the run's own
files or special files, a lock file that is a symlink. Real files, real processes, a real tmpfs."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from ogad_core.run.store import GradientStore, verify_gradients
from tests.reliability_helpers import error_lines, grow_disk, ogad, small_disk

# ---- a full disk -------------------------------------------------------------------------------


def test_full_disk_never_marks_unwritten_rows_done(tmp_path: Path) -> None:
    """Rows are written onto a 1 MB tmpfs until it is full: the write fails with ENOSPC, no row
    that did not reach the disk is marked done; with space back the store resumes and ends equal
    to the rows given, every block verified."""
    n_rows, n_cols = 1200, 256  # 1.2 MB of rows on a 1 MB disk
    expected = np.random.default_rng(0).standard_normal((n_rows, n_cols)).astype(np.float32)
    with small_disk(tmp_path / "disk", "1m") as disk:
        path = disk / "gradients.npy"
        store = GradientStore(path, n_rows=n_rows, n_cols=n_cols, fingerprint="fp")
        failed = None
        for lo in range(0, n_rows, 50):
            rows = np.arange(lo, min(n_rows, lo + 50))
            try:
                store.write(rows, expected[rows] + 1.0)  # +1: a zero row can never pass as data
            except OSError as err:
                failed = err
                break
        assert failed is not None and failed.errno == errno.ENOSPC
        done = np.flatnonzero(np.asarray(store.done))
        on_disk = np.load(path)  # read(), not a map: a hole on a full tmpfs faults (SIGBUS)
        np.testing.assert_array_equal(on_disk[done], expected[done] + 1.0)
        del store, on_disk
        grow_disk(disk, "8m")
        again = GradientStore(path, n_rows=n_rows, n_cols=n_cols, fingerprint="fp")
        assert again.resumed
        pending = again.pending()
        again.write(pending, expected[pending] + 1.0)
        assert again.complete
        np.testing.assert_array_equal(np.load(path), expected + 1.0)
        verify_gradients(path, n_rows=n_rows, n_cols=n_cols)


DIGITS_ARGS = ["--data", "digits", "--limit", "240", "--epochs", "2", "--batch-size", "64"]
DIGITS_ARGS += ["--detector", "l2,iforest", "--checkpoints", "2", "--quiet"]
#: outputs compared byte for byte after a full disk
BYTES_OUTPUTS = ("gradients.npy", "checkpoints/gradients_0.npy", "model/final.pt")
TABLE_OUTPUTS = ("samples.parquet", "scores.parquet", "map.parquet")


@pytest.fixture(scope="module")
def digits_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted `ogad compute` of 240 digits on a disk with room."""
    run = tmp_path_factory.mktemp("reference") / "run"
    done = ogad("compute", *DIGITS_ARGS, "--run-dir", str(run))
    assert done.returncode == 0, done.stderr
    return run


@pytest.mark.slow
@pytest.mark.parametrize("size", ["9m", "10m", "11m"])  # fills up before / during the gradients
def test_compute_on_a_full_disk_then_again_is_identical(digits_reference, tmp_path, size) -> None:
    """`ogad compute` onto a tmpfs too small for the run fails with one line and exit 2; the same
    command once space is back ends with outputs equal to an uninterrupted run's."""
    import pandas as pd

    with small_disk(tmp_path / "disk", size) as disk:
        run = disk / "run"
        first = ogad("compute", *DIGITS_ARGS, "--run-dir", str(run))
        assert first.returncode == 2, first.stderr
        assert error_lines(first.stderr) == [error_lines(first.stderr)[0]]
        assert "no space left on the device" in first.stderr
        grow_disk(disk, "64m")
        again = ogad("compute", *DIGITS_ARGS, "--run-dir", str(run))
        assert again.returncode == 0, again.stderr
        for name in BYTES_OUTPUTS:
            assert (run / name).read_bytes() == (digits_reference / name).read_bytes(), name
        for name in TABLE_OUTPUTS:
            pd.testing.assert_frame_equal(
                pd.read_parquet(run / name), pd.read_parquet(digits_reference / name), obj=name
            )
