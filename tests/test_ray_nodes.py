"""The Ray executor on a two-node local cluster (``ray.cluster_utils.Cluster``: a head with 1 CPU
and one worker node with 1 CPU): the worker node is removed mid-run, the shards it held are run
again by Ray's own task retries on the head, and the gradients end byte-identical to the local
engine's (closed form, whole batches per shard)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from ogad_core import compute_gradients  # noqa: E402
from ogad_core.engine.models import SmallCNN  # noqa: E402
from ogad_core.engine.ray_engine import RayExecutor  # noqa: E402
from ogad_core.run.store import GradientStore  # noqa: E402


@pytest.fixture
def two_nodes():
    """A head (1 CPU, the driver's node) and one worker node (1 CPU); torn down after."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    ray.init(
        address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}}
    )
    try:
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()


class SlowRows(torch.utils.data.Dataset):
    """The samples of ``base``, 2 ms each, so that the run lasts past the node's removal.

    In a Ray task on the node ``hold_node`` a sample waits (at most 60 s) until the file ``go``
    exists, so the head cannot finish every shard before the worker node, slower to start its
    worker process under load, has written one.
    """

    def __init__(self, base: TensorDataset, hold_node: str, go: Path) -> None:
        self.base, self.hold_node, self.go = base, hold_node, go

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        import time

        context = ray.get_runtime_context()
        in_a_task = ray.is_initialized() and context.get_task_id() is not None
        if in_a_task and context.get_node_id() == self.hold_node:
            deadline = time.monotonic() + 60
            while not self.go.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(0.002)
        return self.base[i]


@pytest.mark.slow
@pytest.mark.timeout(360)
def test_a_node_removed_mid_run_loses_only_its_shards(two_nodes, tmp_path) -> None:
    cluster, worker = two_nodes
    g = torch.Generator().manual_seed(4)
    x, y = torch.rand(300, 1, 12, 12, generator=g), torch.randint(0, 5, (300,), generator=g)
    torch.manual_seed(4)
    model = SmallCNN(in_channels=1, n_classes=5, hidden=16)
    local = compute_gradients(model, TensorDataset(x, y), "last", batch_size=20, progress=False)

    written: list[tuple[int, str]] = []  # (first row, node) per shard, in the order written
    removed_after: list[int] = []
    go = tmp_path / "worker_wrote_a_shard"

    def on_shard(rows: np.ndarray, node: str) -> None:
        written.append((int(rows[0]), node))
        if node == worker.node_id and not removed_after:
            go.touch()  # the head may go on
            cluster.remove_node(worker)  # its next shard is in flight there: lost with it
            removed_after.append(len(written))

    store = GradientStore(tmp_path / "g.npy", n_rows=300, n_cols=local.shape[1], fingerprint="n")
    executor = RayExecutor(workers=2, shard_batches=1, progress=False, on_shard=on_shard)
    remote = compute_gradients(
        model,
        SlowRows(TensorDataset(x, y), cluster.head_node.node_id, go),
        "last",
        batch_size=20,
        out=store,
        executor=executor,
    )
    assert removed_after and removed_after[0] < 15  # the worker node computed and was removed
    after = {node for _, node in written[removed_after[0] :]}
    assert after and worker.node_id not in after  # the rest ran on the head alone
    assert sorted(first for first, _ in written) == list(range(0, 300, 20))  # each shard once
    assert store.complete
    np.testing.assert_array_equal(np.asarray(remote), local)
