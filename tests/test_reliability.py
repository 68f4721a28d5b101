"""Reliability and security regressions (issue 12): run lock, umask, integrity, heads,
allowed hosts, data containment, one-line errors. Fast; the fault-injection run is slow."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ogad_core.errors import RunDirError
from ogad_core.run.lock import run_lock
from ogad_core.run.store import GradientStore, verify_gradients
from ogad_core.testing import DIGITS_CONFIG

ROOT = Path(__file__).resolve().parents[1]


# ---- run lock --------------------------------------------------------------------------------


def test_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time\n"
            "from ogad_core.run.lock import run_lock\n"
            f"with run_lock({str(run)!r}, 'compute', create=True):\n"
            "    print('locked', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=rf"in use by ogad compute \(pid {holder.pid} on "):
            with run_lock(run, "score"):
                pass
        holder.kill()  # kill -9: the OS releases the lock, nothing stale is left
        holder.wait()
        with run_lock(run, "score"):
            with run_lock(run, "map"):  # nested in one process: allowed
                pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# ---- umask -----------------------------------------------------------------------------------


def test_store_files_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        store = GradientStore(tmp_path / "g.npy", n_rows=4, n_cols=3, fingerprint="f")
        store.write(np.arange(4), np.ones((4, 3), dtype=np.float32))
        with run_lock(tmp_path, "compute", create=True):
            pass
    finally:
        os.umask(old)
    for name in ("g.npy", "g.done.npy", "g.json", ".ogad.lock"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o664, name


# ---- gradient integrity ----------------------------------------------------------------------


def _filled_store(path: Path, n_rows: int = 40, n_cols: int = 8) -> np.ndarray:
    values = np.random.default_rng(0).normal(size=(n_rows, n_cols)).astype(np.float32)
    store = GradientStore(path, n_rows=n_rows, n_cols=n_cols, fingerprint="fp")
    for lo in range(0, n_rows, 7):
        store.write(np.arange(lo, min(n_rows, lo + 7)), values[lo : lo + 7])
    return values


@pytest.mark.parametrize("garbage", [1.5, np.nan])
def test_garbage_in_gradients_is_found_and_rewritten(tmp_path, monkeypatch, garbage) -> None:
    monkeypatch.setattr("ogad_core.run.store.BLOCK_BYTES", 10 * 8 * 4)  # 10-row blocks
    path = tmp_path / "g.npy"
    values = _filled_store(path)
    verify_gradients(path, n_rows=40, n_cols=8)
    g = np.load(path, mmap_mode="r+")
    g[13, 2] = garbage  # finite garbage or NaN
    g.flush()
    del g
    with pytest.raises(RunDirError, match="10 rows in 1 block"):
        verify_gradients(path, n_rows=40, n_cols=8)
    reopened = GradientStore(path, n_rows=40, n_cols=8, fingerprint="fp")
    assert reopened.damage is not None and reopened.damage.bad_blocks == (1,)
    assert reopened.pending().tolist() == list(range(10, 20))
    reopened.write(np.arange(10, 20), values[10:20])
    verify_gradients(path, n_rows=40, n_cols=8)
    np.testing.assert_array_equal(np.load(path), values)


def test_truncated_gradients_start_anew(tmp_path: Path) -> None:
    path = tmp_path / "g.npy"
    _filled_store(path)
    with open(path, "r+b") as fh:
        fh.truncate(300)
    with pytest.raises(RunDirError, match="unreadable or truncated"):
        verify_gradients(path, n_rows=40, n_cols=8)
    fresh = GradientStore(path, n_rows=40, n_cols=8, fingerprint="fp")
    assert not fresh.resumed and len(fresh.pending()) == 40
    assert fresh.discarded is not None and "truncated" in fresh.discarded


# ---- heads -----------------------------------------------------------------------------------


def _head_models():
    import torch
    from torch import nn

    class HeadFirst(nn.Module):  # the head is defined before the body
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(6, 3)
            self.body = nn.Sequential(nn.Linear(5, 6), nn.Tanh())

        def forward(self, x):
            return self.head(self.body(x))

    class Shared(nn.Module):  # one head module applied twice
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(5, 3)
            self.head = nn.Linear(3, 3)

        def forward(self, x):
            return self.head(torch.tanh(self.head(self.proj(x))))

    class Scaled(nn.Module):  # temperature after the head
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(5, 6)
            self.head = nn.Linear(6, 3)

        def forward(self, x):
            return self.head(torch.relu(self.body(x))) / 0.5

    class LogSoftmax(Scaled):
        def forward(self, x):
            return torch.log_softmax(self.head(torch.relu(self.body(x))), dim=1)

    class Tied(nn.Module):  # the head's weight is used again, functionally
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(5, 3)
            self.head = nn.Linear(3, 3)

        def forward(self, x):
            h = torch.tanh(nn.functional.linear(self.body(x), self.head.weight))
            return self.head(h)

    return {
        "head_first": HeadFirst,
        "shared": Shared,
        "scaled": Scaled,
        "logsm": LogSoftmax,
        "tied": Tied,
    }


@pytest.mark.parametrize("case", ["head_first", "shared", "scaled", "logsm", "tied"])
def test_last_layer_gradients_match_the_loop(case: str) -> None:
    import torch
    from torch.utils.data import TensorDataset

    from ogad_core import compute_gradients
    from ogad_core.engine.gradients import per_sample_gradients_loop

    torch.manual_seed(0)
    model = _head_models()[case]()
    ds = TensorDataset(torch.randn(12, 5), torch.randint(0, 3, (12,)))
    got = compute_gradients(model, ds, params="last", batch_size=5, progress=False)
    ref = per_sample_gradients_loop(model, ds, "last")
    head = model.head
    assert got.shape[1] == head.weight.numel() + head.bias.numel()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_head_is_found_by_execution_order_and_softmax_is_refused() -> None:
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    from ogad_core import compute_gradients
    from ogad_core.engine.heads import trace_head
    from ogad_core.errors import ModelError

    models = _head_models()
    trace, _ = trace_head(models["head_first"](), torch.randn(2, 5))
    assert trace.name == "head" and trace.closed_form_problem() is None
    assert trace_head(models["shared"](), torch.randn(2, 5))[0].calls == 2
    model = nn.Sequential(nn.Linear(5, 3), nn.Softmax(dim=1))
    ds = TensorDataset(torch.randn(6, 5), torch.randint(0, 3, (6,)))
    with pytest.raises(ModelError, match="returns probabilities"):
        compute_gradients(model, ds, params="last", progress=False)


# ---- dashboard: allowed hosts ----------------------------------------------------------------


def _upgrade_status(port: int, host: str) -> str:
    """The status line the server answers a WebSocket upgrade with ``Host: host``."""
    import base64
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n"
                f"Origin: http://{host}\r\n\r\n"
            ).encode()
        )
        return sock.recv(200).decode(errors="replace").splitlines()[0]


def _http_status(port: int, host: str) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/_stcore/health", headers={"Host": host})
    status = conn.getresponse().status
    conn.close()
    return status


def test_dashboard_refuses_foreign_host_headers(tmp_path: Path) -> None:
    """DNS rebinding: a request naming another host reaches neither HTTP nor the WebSocket."""
    import signal

    from dashboard.serve import free_port
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=20)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ogad_core.cli", "dashboard", str(run), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _http_status(port, f"127.0.0.1:{port}") == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        assert _http_status(port, f"localhost:{port}") == 200
        assert _http_status(port, f"rebind.attacker.example:{port}") == 400
        assert " 101 " in _upgrade_status(port, f"127.0.0.1:{port}")
        assert " 400 " in _upgrade_status(port, f"rebind.attacker.example:{port}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_allowed_hosts_follow_the_bound_host() -> None:
    from dashboard.serve import allowed_hosts, streamlit_command

    assert allowed_hosts() == ["127.0.0.1", "localhost", "::1"]
    assert allowed_hosts("review.lab.example")[-1] == "review.lab.example"
    command = streamlit_command(8765, "10.0.0.5")
    assert command[command.index("--server.address") + 1] == "10.0.0.5"
    assert "10.0.0.5" in command[command.index("dashboard.serve") + 1].split(",")


# ---- data containment, labels, empty classes -------------------------------------------------


def _png(path: Path, value: int = 0) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 6), value, dtype=np.uint8)).save(path)
    return path


def test_csv_refs_outside_its_folder_need_allow_outside(tmp_path: Path) -> None:
    from ogad_core.data import load_data
    from ogad_core.data.sources import spec_data_roots
    from ogad_core.errors import DataError

    outside = tmp_path / "elsewhere"
    _png(outside / "far.png", 200)
    data_dir = tmp_path / "data"
    _png(data_dir / "a.png", 10)
    (data_dir / "link.png").symlink_to(outside / "far.png")
    csv = data_dir / "d.csv"
    for ref in ("../elsewhere/far.png", str(outside / "far.png"), "link.png"):
        csv.write_text(f"image,label\na.png,x\n{ref},y\n")
        with pytest.raises(DataError, match=rf"row 3 \({ref}\) lies outside {data_dir}"):
            load_data(f"csv:{csv}", run_dir=tmp_path)
    loaded = load_data(f"csv:{csv}", run_dir=tmp_path, allow_outside=[str(outside)])
    assert loaded.train.refs[1] == str((outside / "far.png").resolve())
    roots = spec_data_roots(loaded.spec, [str(outside)])
    assert roots == [data_dir, outside]


def test_imagefolder_links_out_are_refused_and_empty_classes_dropped(tmp_path, caplog) -> None:
    from ogad_core.data import load_data
    from ogad_core.errors import DataError

    root = tmp_path / "folder"
    _png(root / "cat" / "1.png", 1)
    _png(root / "dog" / "2.png", 2)
    (root / "empty").mkdir()
    with caplog.at_level("WARNING", logger="ogad"):
        data = load_data(f"imagefolder:{root}", run_dir=tmp_path)
    assert data.label_names == ["cat", "dog"] and data.train.labels.tolist() == [0, 1]
    assert "without images dropped: empty" in caplog.text
    (root / "dog" / "3.png").symlink_to(_png(tmp_path / "secret" / "s.png", 3))
    with pytest.raises(DataError, match=r"dog/3.png lies outside"):
        load_data(f"imagefolder:{root}", run_dir=tmp_path)
    ok = load_data(f"imagefolder:{root}", run_dir=tmp_path, allow_outside=[tmp_path / "secret"])
    assert len(ok.train) == 3


@pytest.mark.parametrize("missing", ["NA", "NaN", "n/a", "null", ""])
def test_missing_labels_are_refused_alike(tmp_path: Path, missing: str) -> None:
    from ogad_core.data import load_data
    from ogad_core.errors import DataError

    csv = tmp_path / "t.csv"
    csv.write_text(f"text,label\ngood,a\nfine,b\nodd,{missing}\n")
    with pytest.raises(DataError, match="row 4 has no label"):
        load_data(f"csv:{csv}", run_dir=tmp_path)


def test_data_roots_ignore_the_manifest_list(tmp_path: Path) -> None:
    import json

    from ogad_core.data.sources import run_data_roots
    from ogad_core.run.rundir import RunDir
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["data"]["data_roots"] = ["/"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    rd = RunDir(run)
    roots = run_data_roots(rd)
    assert roots == [(run / "data").resolve()]
    assert rd.resolve_ref("/etc/passwd", roots) is None
    assert rd.resolve_ref("../../../../etc/hostname", roots) is None


def test_binary_manifest_is_one_clear_error(tmp_path: Path) -> None:
    from ogad_core.run.rundir import RunDir
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    (run / "manifest.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    with pytest.raises(RunDirError, match=r"manifest.json is damaged .*ogad compute"):
        RunDir(run).read_manifest()


# ---- reviews and export ----------------------------------------------------------------------


def test_corrupt_reviews_is_one_clear_error_and_never_rewritten(tmp_path: Path) -> None:
    from ogad_core.cli import main
    from ogad_core.review.store import ReviewStore
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    garbage = b"this is not a database" * 300
    (run / "reviews.sqlite").write_bytes(garbage)
    store = ReviewStore(run)
    with pytest.raises(RunDirError, match=r"reviews.sqlite is damaged .*\.recover"):
        store.current()
    with pytest.raises(RunDirError, match="is damaged"):
        store.confirm(0, reviewer="r")
    assert main(["export", str(run), "--out", str(tmp_path / "x.csv")]) == 2
    assert (run / "reviews.sqlite").read_bytes() == garbage


def test_export_onto_a_symlink_writes_its_target(tmp_path: Path) -> None:
    from ogad_core.review.export import export_csv
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    target = tmp_path / "shared" / "cleaned.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    assert export_csv(run, link) == 12
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text().startswith("sample_id,ref,")


def test_dashboard_explains_a_damaged_reviews_file(tmp_path: Path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    (run / "reviews.sqlite").write_bytes(b"garbage" * 1000)
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    app = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=90).run()
    assert not app.exception
    assert any("reviews.sqlite is damaged" in e.value for e in app.error)


# ---- fault injection -------------------------------------------------------------------------

DIGITS_ARGS = ["--data", "digits", "--limit", "240", "--epochs", "2", "--batch-size", "64"]
DIGITS_ARGS += ["--detector", "l2,iforest", "--checkpoints", "2", "--quiet"]


def _ogad(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ogad_core.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outputs(run: Path) -> dict[str, object]:
    import pandas as pd

    out: dict[str, object] = {
        name: (run / name).read_bytes()
        for name in ("gradients.npy", "checkpoints/gradients_0.npy", "model/final.pt")
    }
    for name in ("samples.parquet", "scores.parquet", "map.parquet"):
        out[name] = pd.read_parquet(run / name)
    return out


@pytest.mark.slow
def test_compute_killed_at_random_points_ends_bit_identical(tmp_path: Path) -> None:
    """kill -9 `ogad compute` at random moments, 4 times, then let it finish: every output
    equals an uninterrupted run's, byte for byte (tables: value for value)."""
    import random

    import pandas as pd

    ref, victim = tmp_path / "ref", tmp_path / "victim"
    t0 = time.monotonic()
    done = _ogad("compute", *DIGITS_ARGS, "--run-dir", str(ref))
    assert done.wait() == 0, done.stderr.read()
    duration = time.monotonic() - t0
    rng, kills = random.Random(12), 0
    for _ in range(4):
        proc = _ogad("compute", *DIGITS_ARGS, "--run-dir", str(victim))
        try:
            proc.wait(timeout=rng.uniform(1.0, duration))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills += 1
    assert kills >= 1
    final = _ogad("compute", *DIGITS_ARGS, "--run-dir", str(victim))
    assert final.wait() == 0, final.stderr.read()
    expected, got = _outputs(ref), _outputs(victim)
    for name, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[name], value, check_exact=True, obj=name)
        else:
            assert got[name] == value, f"{name} differs after the kills"


def test_reviews_honour_a_group_umask(tmp_path: Path) -> None:
    from ogad_core.review.store import ReviewStore
    from ogad_core.testing import make_run

    run = make_run(tmp_path / "run", kind="image", n=12)
    old = os.umask(0o002)
    try:
        ReviewStore(run).confirm(3, reviewer="ann")
    finally:
        os.umask(old)
    for path in run.glob("reviews.sqlite*"):
        assert path.stat().st_mode & 0o777 == 0o664, path.name


# ---- healing and one-line errors on a real run -----------------------------------------------

DIGITS = DIGITS_CONFIG  # the conftest digits_run


def _copy(digits_run: Path, tmp_path: Path) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    return run


def _compute_logged(run: Path) -> list[str]:
    from ogad_core._internal import captured_log
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    with captured_log() as lines:
        compute(ComputeConfig(**DIGITS), run, progress=False)
    return lines


def test_compute_heals_damaged_outputs_and_keeps_reviews(digits_run: Path, tmp_path) -> None:
    import pandas as pd

    from ogad_core.review.store import ReviewStore

    run = _copy(digits_run, tmp_path)
    ReviewStore(run).confirm(5, reviewer="ann")
    reviews = (run / "reviews.sqlite").read_bytes()
    expected = {n: (run / n).read_bytes() for n in ("gradients.npy", "model/checkpoint_0.pt")}
    scores, xy = pd.read_parquet(run / "scores.parquet"), pd.read_parquet(run / "map.parquet")
    (run / "scores.parquet").write_bytes(b"PAR1 not parquet")
    (run / "map.parquet").write_bytes((run / "map.parquet").read_bytes()[:100])
    (run / "model" / "checkpoint_0.pt").write_bytes(b"\x80\x04garbage")
    g = np.load(run / "gradients.npy", mmap_mode="r+")
    g[17, 3] = np.nan
    g.flush()
    del g
    lines = "\n".join(_compute_logged(run))
    assert "scores.parquet was damaged" in lines and "map.parquet was damaged" in lines
    assert "model/checkpoint_0.pt is damaged" in lines and "retraining" in lines
    assert "gradients.npy: " in lines and "hold NaN or infinite values; recomputing" in lines
    for name, data in expected.items():
        assert (run / name).read_bytes() == data, name
    pd.testing.assert_frame_equal(pd.read_parquet(run / "scores.parquet"), scores)
    pd.testing.assert_frame_equal(pd.read_parquet(run / "map.parquet"), xy)
    assert (run / "reviews.sqlite").read_bytes() == reviews


def test_damaged_manifest_is_rebuilt_by_compute(digits_run: Path, tmp_path: Path) -> None:
    from ogad_core.cli import main

    run = _copy(digits_run, tmp_path)
    gradients = (run / "gradients.npy").read_bytes()
    (run / "manifest.json").write_bytes(b"\x00\xff\xfe binary")
    for command in (["score", str(run)], ["export", str(run), "--out", str(tmp_path / "o.csv")]):
        assert main(command) == 2  # one line naming the damage and `ogad compute`
    lines = "\n".join(_compute_logged(run))
    assert "manifest.json was damaged" in lines
    assert (run / "manifest.json.damaged").is_file()
    assert (run / "gradients.npy").read_bytes() == gradients  # verified blocks are reused
    assert json_status(run) == "complete"


def json_status(run: Path) -> str:
    import json

    return json.loads((run / "manifest.json").read_text())["status"]


def test_cli_errors_are_one_line_with_a_hint(digits_run, tmp_path, capfd) -> None:
    from ogad_core.cli import main

    run = _copy(digits_run, tmp_path)
    g = np.load(run / "gradients.npy", mmap_mode="r+")
    g[3, 0] = np.inf
    g.flush()
    del g
    cases = [
        (["score", str(run)], "run the same `ogad compute` command again"),
        (["map", str(run), "--seed", "1"], "NaN or infinite values"),  # a new map
        (
            ["compute", "--data", "moons", "--run-dir", str(tmp_path / "x"), "--noise", "inf"],
            "--noise",
        ),
        (
            [
                "compute",
                "--data",
                "moons",
                "--run-dir",
                str(tmp_path / "x"),
                "--device",
                "cuda:abc",
            ],
            "--device",
        ),
    ]
    for argv, needle in cases:
        capfd.readouterr()
        assert main(argv) == 2, argv
        err = capfd.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ogad: error: ") and needle in err[0], err
    from ogad_core.engine.models import MLP, load_checkpoint
    from ogad_core.errors import ModelError

    (tmp_path / "bad.pt").write_bytes(b"\x80\x04 not a checkpoint")  # the user's --checkpoint
    with pytest.raises(ModelError, match="cannot load"):
        load_checkpoint(MLP(in_features=2, n_classes=2), tmp_path / "bad.pt")


def test_a_second_compute_is_refused_while_readers_go_on(digits_run, tmp_path, capfd) -> None:
    from ogad_core.cli import main

    run = _copy(digits_run, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom ogad_core.run.lock import run_lock\n"
            f"with run_lock({str(run)!r}, 'compute'):\n"
            "    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        argv = ["compute", "--run-dir", str(run), "--data", "digits", "--limit", "300"]
        argv += ["--noise", "0.1", "--epochs", "3", "--checkpoints", "2", "--device", "cpu"]
        capfd.readouterr()
        for command in (argv, ["score", str(run)], ["map", str(run)], ["evaluate", str(run)]):
            assert main(command) == 2
            err = capfd.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"in use by ogad compute (pid {holder.pid}" in err[0], err
        assert main(["export", str(run), "--out", str(tmp_path / "e.csv")]) == 0  # a reader
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # two imports of transformers
def test_quiet_silences_the_loading_weights_bar() -> None:
    """--quiet: the bar transformers draws while loading an encoder's weights stays hidden."""
    code = (
        "import sys\nfrom ogad_core.cli import setup_output\nsetup_output(%s, False)\n"
        "from transformers.utils.logging import tqdm\n"
        "for _ in tqdm(range(3), desc='Loading weights'): pass\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TQDM_DISABLE", None)
    runs = {
        quiet: subprocess.run(
            [sys.executable, "-c", code % quiet], env=env, capture_output=True, text=True
        )
        for quiet in (True, False)
    }
    assert "Loading weights" in runs[False].stderr  # the bar exists ...
    assert "Loading weights" not in runs[True].stderr  # ... and --quiet hides it


def test_run_names_are_shown_literally(tmp_path: Path, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from ogad_core.testing import make_run

    name = "**bold**[click](javascript:alert(1))<img src=x onerror=alert(1)>"
    run = make_run(tmp_path / name, kind="image", n=12)
    monkeypatch.setenv("OGAD_RUN_DIR", str(run))
    app = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=90).run()
    from dashboard.testing import open_page

    open_page(app, "run_info").run()
    assert not app.exception
    heading = [m.value for m in app.markdown if "Run ·" in m.value][0]
    assert "\\*\\*bold\\*\\*\\[click\\]\\(" in heading and "\\<img" in heading  # escaped
    assert heading.replace("\\", "").endswith(name)  # the same characters, escaped
