"""Reliability, class 1 (issue 22): nothing may lose or silently corrupt data — a full disk
during the gradient pass, a damaged manifest under other inputs, `--out` onto the run's own
files or special files, a lock file that is a symlink. Real files, real processes, a real tmpfs."""

from __future__ import annotations

import errno
import os
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
@pytest.mark.parametrize("size", ["3m", "9m", "10m", "11m"])  # the PNGs, the models, the gradients
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


# ---- decisions are tied to the inputs they were made on --------------------------------------


def _copy_run(digits_run: Path, tmp_path: Path) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    return run


def _decide_twenty(run: Path) -> list[int]:
    from ogad_core.review.store import ReviewStore

    store = ReviewStore(run)
    ids = list(range(0, 40, 2))
    for sid in ids:
        store.confirm(sid, reviewer="ann")
    store.close()
    return ids


def _compute(run: Path, **changes: object) -> list[str]:
    from ogad_core._internal import captured_log
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute
    from ogad_core.testing import DIGITS_CONFIG

    with captured_log() as lines:
        compute(ComputeConfig(**{**DIGITS_CONFIG, **changes}), run, progress=False)
    return lines


def test_damaged_manifest_and_other_labels_set_decisions_aside(digits_run, tmp_path) -> None:
    """A damaged manifest, then `compute` with other noise on the same data: the run is rebuilt
    and the 20 decisions made on the old labels are set aside with a message, never applied."""
    from ogad_core.review.store import ReviewStore

    run = _copy_run(digits_run, tmp_path)
    _decide_twenty(run)
    (run / "manifest.json").write_bytes(b"{ damaged")
    lines = "\n".join(_compute(run, noise=0.2))
    assert "set aside as reviews.sqlite.set-aside-" in lines and "not applied" in lines
    assert ReviewStore(run).current().empty
    kept = next(run.glob("reviews.sqlite.set-aside-*[0-9]"))
    with pytest.raises(Exception, match="other inputs"):  # the set-aside file is not this run's
        import shutil

        shutil.copy(kept, run / "reviews.sqlite")
        ReviewStore(run).current()


def test_damaged_manifest_with_the_same_inputs_keeps_decisions(digits_run, tmp_path) -> None:
    from ogad_core.review.store import ReviewStore

    run = _copy_run(digits_run, tmp_path)
    ids = _decide_twenty(run)
    before = (run / "reviews.sqlite").read_bytes()
    (run / "manifest.json").write_bytes(b"{ damaged")
    lines = "\n".join(_compute(run))
    assert "set aside" not in lines
    assert (run / "reviews.sqlite").read_bytes() == before
    assert ReviewStore(run).current()["sample_id"].tolist() == ids


def test_a_store_refuses_decisions_stamped_with_other_labels(tmp_path: Path) -> None:
    from ogad_core.errors import RunDirError
    from ogad_core.review.store import ReviewStore
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    ReviewStore(run).confirm(3, reviewer="ann")
    ids = np.arange(12)
    other = ReviewStore(run, sample_ids=ids, labels=(ids + 1) % 3)
    with pytest.raises(RunDirError, match="made on other inputs"):
        other.current()
    with pytest.raises(RunDirError, match="made on other inputs"):
        other.reject(4, reviewer="bob")
    assert ReviewStore(run).current()["sample_id"].tolist() == [3]


# ---- `--out` never replaces the run's own files or special files -------------------------------


@pytest.fixture
def small_run(tmp_path: Path) -> Path:
    from ogad_core.review.store import ReviewStore
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    ReviewStore(run).confirm(3, reviewer="ann")
    return run


def _refused(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.parametrize(
    "name",
    [
        "reviews.sqlite",
        "reviews.sqlite-wal",
        "samples.parquet",
        "manifest.json",
        ".",
        "issues.parquet",  # a table a later ogad writes
    ],
)
def test_export_refuses_the_runs_own_files(small_run: Path, name: str) -> None:
    before = {p.name: p.read_bytes() for p in small_run.iterdir() if p.is_file()}
    _refused(ogad("export", str(small_run), "--out", str(small_run / name)), "--out", "run")
    after = {p.name: p.read_bytes() for p in small_run.iterdir() if p.is_file()}
    assert after == before


def test_export_refuses_links_into_the_run(small_run: Path, tmp_path: Path) -> None:
    reviews = (small_run / "reviews.sqlite").read_bytes()
    (tmp_path / "latest.csv").symlink_to(small_run / "reviews.sqlite")
    (tmp_path / "runlink").symlink_to(small_run)
    for out in (tmp_path / "latest.csv", tmp_path / "runlink" / "reviews.sqlite"):
        _refused(ogad("export", str(small_run), "--out", str(out)), "belongs to the run")
    assert (small_run / "reviews.sqlite").read_bytes() == reviews
    assert (tmp_path / "latest.csv").is_symlink()


def test_export_refuses_fifos_and_devices(small_run: Path, tmp_path: Path) -> None:
    import stat

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    targets = [fifo, Path("/dev/null")]
    if os.geteuid() == 0:
        node = tmp_path / "null.csv"
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second /dev/null
        targets.append(node)
    kinds = [os.stat(t).st_mode for t in targets]
    for out in targets:
        _refused(ogad("export", str(small_run), "--out", str(out), timeout=60), "regular file")
    assert [os.stat(t).st_mode for t in targets] == kinds


def test_export_into_the_run_folder_under_a_new_name_works(small_run: Path) -> None:
    done = ogad("export", str(small_run), "--out", str(small_run / "cleaned.csv"))
    assert done.returncode == 0, done.stderr
    assert (small_run / "cleaned.csv").read_text().startswith("sample_id,")


# ---- the lock file is never written through --------------------------------------------------


def test_a_lock_file_symlink_is_refused_and_its_target_kept(small_run: Path, tmp_path) -> None:
    victim = tmp_path / "theirs.txt"
    victim.write_text("a file of another group member\n")
    (small_run / ".ogad.lock").symlink_to(victim)
    _refused(ogad("evaluate", str(small_run)), "symbolic link", ".ogad.lock")
    assert victim.read_text() == "a file of another group member\n"


def test_a_lock_file_that_is_a_fifo_or_device_is_refused(small_run: Path) -> None:
    import stat

    from ogad_core.errors import RunDirError
    from ogad_core.run.lock import run_lock

    lock = small_run / ".ogad.lock"
    os.mkfifo(lock)
    with pytest.raises(RunDirError, match="not a regular file"):
        with run_lock(small_run, "score"):
            pass
    assert stat.S_ISFIFO(os.lstat(lock).st_mode)
    if os.geteuid() == 0:
        lock.unlink()
        os.mknod(lock, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        with pytest.raises(RunDirError, match="not a regular file"):
            with run_lock(small_run, "score"):
                pass


def test_a_killed_writers_children_do_not_hold_the_lock(tmp_path: Path) -> None:
    """A writer that forked (DataLoader workers) is killed: its run is free at once, though
    the children that inherited the lock file's descriptor live on."""
    import signal
    import subprocess
    import sys
    import time

    from ogad_core.run.lock import run_lock

    script = (
        "import os, sys, time\n"
        "from ogad_core.run.lock import run_lock\n"
        "with run_lock(sys.argv[1], 'compute', create=True):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(60); os._exit(0)\n"  # a worker that outlives its parent
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    run = tmp_path / "run"
    writer = subprocess.Popen(
        [sys.executable, "-c", script, str(run)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        with run_lock(run, "compute"):  # at once: no waiting for the orphaned child
            pass
    finally:
        os.killpg(writer.pid, signal.SIGKILL)  # the orphaned child (its own session)
        time.sleep(0.1)


def test_a_rerun_removes_the_temporaries_of_a_killed_write(digits_run, tmp_path) -> None:
    import time

    run = _copy_run(digits_run, tmp_path)
    old = [run / ".scores.parquet.k3j2x9ab.tmp", run / "model" / ".final.pt.q1w2e3r4.tmp"]
    fresh = run / ".map.parquet.z9y8x7w6.tmp"  # may be a live reader's: kept
    for path in (*old, fresh):
        path.write_bytes(b"half-written")
    stale = time.time() - 3600
    for path in old:
        os.utime(path, (stale, stale))
    _compute(run)
    assert not any(p.exists() for p in old)
    assert fresh.exists()


def test_planted_links_in_the_run_are_never_written_through(small_run: Path, tmp_path) -> None:
    """reviews.sqlite or a gradient file replaced by a link to someone else's file: the
    decision store refuses to write, the gradient store starts anew without following it."""
    import shutil

    from ogad_core.errors import RunDirError
    from ogad_core.review.store import ReviewStore

    victim_db = tmp_path / "theirs.sqlite"
    shutil.move(small_run / "reviews.sqlite", victim_db)
    before = victim_db.read_bytes()
    (small_run / "reviews.sqlite").symlink_to(victim_db)
    with pytest.raises(RunDirError, match="symbolic link"):
        ReviewStore(small_run).reject(5, reviewer="mallory")
    assert victim_db.read_bytes() == before

    path = tmp_path / "g" / "gradients.npy"
    store = GradientStore(path, n_rows=8, n_cols=4, fingerprint="fp")
    store.write(np.arange(4), np.ones((4, 4), np.float32))
    del store
    victim = tmp_path / "theirs.npy"
    shutil.move(path.with_name("gradients.done.npy"), victim)
    path.with_name("gradients.done.npy").symlink_to(victim)
    kept = victim.read_bytes()
    again = GradientStore(path, n_rows=8, n_cols=4, fingerprint="fp")
    again.write(np.arange(8), np.ones((8, 4), np.float32))
    assert victim.read_bytes() == kept and not path.with_name("gradients.done.npy").is_symlink()
