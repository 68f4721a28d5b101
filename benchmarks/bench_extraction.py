"""Gradient extraction speed: closed-form last layer vs a plain forward pass, vmap, and one
backward per sample; ``params=all`` with a random projection.

    python -m benchmarks.bench_extraction [--n 4000] [--out benchmarks/results/extraction.json]

All figures come from one run on the same model (the built-in SmallCNN on the real MNIST digits
of ogad_core/data/files/mnist5k.npz) and the same batch size, so the ratios compare like with
like. The forward pass
is timed twice: over the tensor (``model(x[i:i+b])``) and over the same DataLoader path
compute_gradients streams from (batch slices, no per-sample collation).

``--precision``: the ranking effect of a bf16 / fp16 forward pass (autocast; float32 gradients):
SmallCNN trained 3 epochs on the digits with 10% flipped labels, then the Spearman correlation of
the per-sample gradient norms with fp32's and the overlap of the top-10% sets, plus the AUROC of
the norm for the flipped labels under each precision. GPU rows: unmeasured (no GPU here).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ogad_core import compute_gradients
from ogad_core.engine.datasets import TensorBatches, iterate, row_batches
from ogad_core.engine.gradients import loop_batch, select_params
from ogad_core.engine.models import SmallCNN


def _best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="samples for the batched methods")
    ap.add_argument("--n-loop", type=int, default=300, help="samples for the per-sample loop")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--precision", action="store_true", help="also measure bf16 / fp16 rankings")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/extraction.json"))
    a = ap.parse_args(argv)

    from ogad_core.data.loaders import MNIST5K_NPZ

    with np.load(MNIST5K_NPZ) as npz:
        x, y = npz["images"], npz["labels"]
    x = torch.as_tensor((x[: a.n] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28))
    y = torch.as_tensor(y[: a.n].astype(np.int64))
    torch.manual_seed(0)
    model = SmallCNN(in_channels=1, n_classes=10).eval()
    ds = TensorDataset(x, y)
    bs = a.batch_size
    torch.set_num_threads(torch.get_num_threads())

    @torch.no_grad()
    def forward_only() -> None:
        for i in range(0, len(y), bs):
            model(x[i : i + bs])

    batches = TensorBatches(x, y)

    @torch.no_grad()
    def forward_loader() -> None:
        for _, xb, _ in iterate(batches, row_batches(len(y), bs)):
            model(xb)

    def closed() -> None:
        compute_gradients(model, ds, "last", batch_size=bs, progress=False)

    def vmap_last() -> None:
        compute_gradients(model, ds, "last", batch_size=bs, method="vmap", progress=False)

    chosen = select_params(model, "last")
    xl, yl = x[: a.n_loop], y[: a.n_loop]

    def loop_last() -> None:
        loop_batch(model, chosen, xl, yl)

    n_all = min(a.n, 1000)
    ds_all = TensorDataset(x[:n_all], y[:n_all])

    def all_projected() -> None:
        compute_gradients(model, ds_all, "all", batch_size=64, proj_dim=2048, progress=False)

    closed()  # warm-up
    t_fwd = _best_of(forward_only, a.repeat) / a.n
    t_fwd_loader = _best_of(forward_loader, a.repeat) / a.n
    t_closed = _best_of(closed, a.repeat) / a.n
    t_vmap = _best_of(vmap_last, a.repeat) / a.n
    t_loop = _best_of(loop_last, 1) / a.n_loop
    t_all = _best_of(all_projected, 1) / n_all
    rows = {
        "forward pass (no grad)": t_fwd,
        "forward pass over the DataLoader path": t_fwd_loader,
        "params=last closed form": t_closed,
        "params=last torch.func vmap": t_vmap,
        "params=last one backward per sample": t_loop,
        "params=all vmap + projection to 2048": t_all,
    }
    result = {
        "n": a.n,
        "batch_size": bs,
        "threads": torch.get_num_threads(),
        "model": "SmallCNN (hidden 128), MNIST 28x28, 10 classes",
        "gradient_dim_last": 10 * 129,
        "seconds_per_sample": rows,
        "samples_per_second": {k: 1.0 / v for k, v in rows.items()},
        "ratio_closed_over_forward": t_closed / t_fwd,
        "ratio_closed_over_forward_loader": t_closed / t_fwd_loader,
        "gpu": "unmeasured (no GPU in this session)",
        "speedup_closed_vs_loop": t_loop / t_closed,
        "speedup_closed_vs_vmap": t_vmap / t_closed,
    }
    print(f"{'method':40s} {'samples/s':>12s} {'x forward':>10s}")
    for k, v in rows.items():
        print(f"{k:40s} {1.0 / v:12.0f} {v / t_fwd:10.2f}")
    print(f"closed form / forward = {result['ratio_closed_over_forward']:.3f} (target <= 1.3)")
    print(
        f"closed form vs one backward per sample: {result['speedup_closed_vs_loop']:.1f}x "
        "faster (target >= 20x)"
    )
    if a.precision:
        result["precision"] = precision_rows(x, y)
        print(json.dumps(result["precision"], indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    return result


def precision_rows(x: torch.Tensor, y: torch.Tensor) -> dict:
    """Ranking agreement of bf16 / fp16 forward passes with fp32 on a trained, noisy model."""
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    from ogad_core.engine.train import TrainRecipe, train_model

    rng = np.random.default_rng(0)
    noisy = y.clone()
    flip = rng.random(len(y)) < 0.1
    noisy[flip] = torch.as_tensor((y[flip].numpy() + rng.integers(1, 10, flip.sum())) % 10)
    torch.manual_seed(0)
    model = SmallCNN(in_channels=1, n_classes=10)
    recipe = TrainRecipe(epochs=3, batch_size=64)
    train_model(model, x, noisy, recipe=recipe, seed=0, device=torch.device("cpu"), progress=False)
    ds = TensorDataset(x, noisy)
    norms, rows = {}, {}
    for precision in ("fp32", "bf16", "fp16"):
        t0 = time.perf_counter()
        g = compute_gradients(model, ds, "last", 256, precision=precision, progress=False)
        seconds = time.perf_counter() - t0
        norms[precision] = np.linalg.norm(g, axis=1)
        top = int(0.1 * len(y))
        top_ref = set(np.argsort(-norms["fp32"])[:top])
        rows[precision] = {
            "seconds": seconds,
            "spearman_vs_fp32": float(spearmanr(norms["fp32"], norms[precision]).statistic),
            "top10pct_overlap_vs_fp32": len(top_ref & set(np.argsort(-norms[precision])[:top]))
            / top,
            "auroc_flipped_l2": float(roc_auc_score(flip, norms[precision])),
        }
    return {"n": len(y), "model": "SmallCNN, 3 epochs, 10% flipped labels", "rows": rows}


if __name__ == "__main__":
    main()
