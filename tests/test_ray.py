"""The Ray executor on a real local Ray cluster (127.0.0.1, 2 CPUs): the one execution API
(``compute_gradients(..., executor=RayExecutor())``, the same for the encoders) gives the local
engine's rows, a worker killed mid-run is retried by Ray, the store resumes, and the local engine
never imports Ray. The two-node cluster with a node removed mid-run is tests/test_ray_nodes.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

pytest.importorskip("ray")

from ogad_core import compute_gradients  # noqa: E402
from ogad_core.engine.models import MLP, SmallCNN  # noqa: E402
from ogad_core.engine.ray_engine import RayExecutor, ray_session  # noqa: E402
from ogad_core.errors import ConfigError  # noqa: E402
from ogad_core.run.store import GradientStore  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the module; started through ogad's own session."""
    with ray_session(None, num_cpus=2) as ray:
        yield ray


def _cnn_data(n: int = 300, seed: int = 0) -> tuple[torch.nn.Module, TensorDataset]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 12, 12, generator=g)
    y = torch.randint(0, 5, (n,), generator=g)
    torch.manual_seed(seed)
    return SmallCNN(in_channels=1, n_classes=5, hidden=16), TensorDataset(x, y)


class KillOnce(torch.utils.data.Dataset):
    """A dataset whose worker process SIGKILLs itself the first time it reads ``row``.

    The marker file (created with O_EXCL) makes exactly one process die, whichever reads first.
    """

    def __init__(self, base: TensorDataset, row: int, marker: Path) -> None:
        self.base, self.row, self.marker = base, row, str(marker)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        if i == self.row:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return self.base[i]


def test_closed_form_is_bit_for_bit_and_resumes_only_the_pending_rows(ray_cluster, tmp_path):
    model, ds = _cnn_data()
    local = compute_gradients(model, ds, "last", batch_size=32, progress=False)
    path, d = tmp_path / "g.npy", local.shape[1]
    first = GradientStore(path, n_rows=300, n_cols=d, fingerprint="a")
    sentinel = np.full((64, d), 7.0, dtype=np.float32)
    first.write(np.arange(64), sentinel)  # "finished before the crash": must not be redone
    store = GradientStore(path, n_rows=300, n_cols=d, fingerprint="a")
    assert store.resumed and len(store.pending()) == 236
    written: list[int] = []
    executor = RayExecutor(shard_batches=2, on_shard=lambda rows, node: written.extend(rows))
    remote = compute_gradients(model, ds, "last", batch_size=32, out=store, executor=executor)
    assert sorted(written) == list(range(64, 300))  # only the pending rows were computed
    assert store.complete
    np.testing.assert_array_equal(np.asarray(remote[:64]), sentinel)
    np.testing.assert_array_equal(np.asarray(remote[64:]), local[64:])


@pytest.mark.slow
def test_vmap_and_projection_match_within_float_tolerance(ray_cluster) -> None:
    torch.manual_seed(3)
    model = MLP(in_features=6, n_classes=3, hidden=(8,))
    x, y = torch.randn(90, 6), torch.randint(0, 3, (90,))
    ds = TensorDataset(x, y)
    kwargs = {"params": "all", "batch_size": 16, "proj_dim": 12, "seed": 5}
    local = compute_gradients(model, ds, progress=False, **kwargs)
    remote = compute_gradients(model, ds, executor=RayExecutor(workers=2), **kwargs)
    assert remote.shape == (90, 12)
    np.testing.assert_allclose(remote, local, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_by_ray_and_the_result_is_identical(
    ray_cluster, tmp_path
) -> None:
    model, ds = _cnn_data(n=400, seed=1)
    local = compute_gradients(model, ds, "last", batch_size=25, progress=False)
    store = GradientStore(tmp_path / "g.npy", n_rows=400, n_cols=local.shape[1], fingerprint="k")
    dying = KillOnce(ds, row=260, marker=tmp_path / "killed")
    shards: list[int] = []
    executor = RayExecutor(shard_batches=2, workers=2, on_shard=lambda r, n: shards.append(len(r)))
    remote = compute_gradients(model, dying, "last", batch_size=25, out=store, executor=executor)
    assert (tmp_path / "killed").exists()  # a worker really died
    assert shards == [50] * 8  # each shard written once: the lost one was retried, not doubled
    assert store.complete
    np.testing.assert_array_equal(np.asarray(remote), local)


def test_bad_arguments_fail_before_ray() -> None:
    model, ds = _cnn_data(n=10)
    with pytest.raises(ConfigError, match="workers"):
        RayExecutor(workers=0)
    with pytest.raises(ConfigError, match="shard_batches"):
        RayExecutor(shard_batches=0)
    with pytest.raises(ConfigError, match="batch_size"):
        compute_gradients(model, ds, batch_size=0, executor=RayExecutor())


def test_a_task_error_on_a_worker_is_raised_once_not_retried(ray_cluster) -> None:
    """An error of the model itself is not a lost worker: one clear error, no retries."""
    from ogad_core.errors import ModelError

    class Broken(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] == 1:  # the workers' batches, not the driver's head detection
                raise ValueError("broken on purpose")
            return self.fc(x)

    ds = TensorDataset(torch.randn(6, 3), torch.randint(0, 2, (6,)))
    with pytest.raises(ModelError, match="broken on purpose") as info:
        compute_gradients(Broken(), ds, batch_size=1, executor=RayExecutor(workers=2))
    assert "\n" not in str(info.value)


def test_an_unreachable_or_malformed_ray_address_is_one_clear_error() -> None:
    model, ds = _cnn_data(n=10)
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConfigError, match=f"nothing answers at 127.0.0.1:{port}") as info:
        compute_gradients(model, ds, executor=RayExecutor(address=f"127.0.0.1:{port}"))
    assert info.value.param == "ray_address"
    with pytest.raises(ConfigError, match="must be HOST:PORT"):
        compute_gradients(model, ds, executor=RayExecutor(address="head-without-port"))


def test_the_local_engine_never_imports_ray() -> None:
    code = (
        "import sys, torch, ogad_core.cli, ogad_core.pipeline, ogad_core.pipeline.gradient_step\n"
        "from ogad_core import compute_gradients\n"
        "data = [(torch.ones(3), 1), (torch.zeros(3), 0)]\n"
        "compute_gradients(torch.nn.Linear(3, 2), data, progress=False)\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_compute_with_engine_ray_stores_the_local_engines_gradients(ray_cluster, tmp_path) -> None:
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    runs = {}
    for engine in ("local", "ray"):
        config = ComputeConfig(data="moons", limit=300, engine=engine, detectors=("l2",))
        manifest = compute(config, tmp_path / engine, progress=False)
        assert manifest["status"] == "complete"
        runs[engine] = np.load(tmp_path / engine / "gradients.npy")
    np.testing.assert_array_equal(runs["ray"], runs["local"])


def test_the_cli_refuses_a_ray_address_without_the_ray_engine(capsys) -> None:
    from ogad_core.cli import main

    assert main(["compute", "--data", "moons", "--run-dir", "x", "--ray-address", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ogad: error: --ray-address needs") and "--engine" in err


@pytest.mark.slow
def test_the_text_encoder_pass_on_ray_matches_the_local_one(ray_cluster, tmp_path) -> None:
    from ogad_core.engine import text_encoder

    texts = [f"review {i}: " + "a good film " * (i % 7) + "bad ending" * (i % 3) for i in range(90)]
    local = text_encoder.encode_texts(texts, encoder=None, batch_size=16, progress=False)
    remote = text_encoder.encode_texts(
        texts, encoder=None, cache_dir=tmp_path, batch_size=16, executor=RayExecutor(workers=2)
    )
    np.testing.assert_allclose(np.asarray(remote), local, rtol=1e-4, atol=1e-5)
    again = text_encoder.encode_texts(texts, encoder=None, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(remote))  # the same cache


def test_compute_with_engine_ray_on_streamed_image_files(
    ray_cluster, sample_data, tmp_path
) -> None:
    """Image folders are decoded lazily: the Ray workers decode their own shards' files."""
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    spec = f"imagefolder:{sample_data / 'digits_folder'}"
    runs = {}
    for engine in ("local", "ray"):
        config = ComputeConfig(
            data=spec, image_size=16, epochs=1, engine=engine, detectors=("l2",), workers=0
        )
        compute(config, tmp_path / engine, progress=False)
        runs[engine] = np.load(tmp_path / engine / "gradients.npy")
    np.testing.assert_allclose(runs["ray"], runs["local"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_image_encoder_pass_on_ray_matches_the_local_one(ray_cluster, tmp_path) -> None:
    """The heaviest step for photos runs on the Ray workers too, into the same resumable cache."""
    from PIL import Image
    from torchvision import models

    from ogad_core.data import load_data
    from ogad_core.engine import image_encoder

    rng = np.random.default_rng(0)
    for i in range(6):
        (tmp_path / "img" / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "img" / f"c{i % 2}" / f"{i}.png")
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(models.resnet18(weights=None).state_dict(), weights)
    files = load_data(f"imagefolder:{tmp_path / 'img'}", run_dir=tmp_path).train.inputs
    kw = {"weights": weights, "batch_size": 2, "progress": False}
    local = image_encoder.encode_images(files, "torchvision:resnet18", workers=0, **kw)
    nodes: list[str] = []
    remote = image_encoder.encoder_pass(
        files,
        "torchvision:resnet18",
        cache_dir=tmp_path / "emb",
        executor=RayExecutor(workers=2, shard_batches=1, on_shard=lambda r, n: nodes.append(n)),
        **kw,
    )
    assert remote.run is not None and remote.run.n_shards == 3 and len(nodes) == 3
    # one torch thread per worker vs two here: the convolutions may sum in another order
    np.testing.assert_allclose(remote.features, local, rtol=1e-4, atol=1e-5)
    again = image_encoder.encoder_pass(
        files, "torchvision:resnet18", cache_dir=tmp_path / "emb", **kw
    )
    assert again.run is None  # the Ray pass filled the same cache the local engine reads
    np.testing.assert_array_equal(again.features, remote.features)
