"""Projection cost and distortion: all-parameter per-sample gradients of a 4.2 M-parameter MLP
(128 samples) unprojected vs projected to k = 512 (CountSketch nnz = 1, sparse JL nnz = 4, and the
old blocked Gaussian on a slice), and ``params="all"`` + projection samples/s on ResNet-18.

    nice -n 10 python -m benchmarks.bench_projection [--out benchmarks/results/projection.json]

Distortion is measured on the real gradients: |gP|^2 / |g|^2 per sample and the error of the
pairwise cosines. The Gaussian comparator generates N(0, 1/k) blocks like the old projector did,
so it runs on the first ``--gauss-cols`` coordinates only (all methods are compared there too).
The pipeline timings (unprojected vs projected, both ``compute_gradients(params="all")``) follow
a warm-up and are the best of ``--repeat`` alternated runs, since the cores are shared.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from ogad_core import compute_gradients
from ogad_core.engine.models import MLP
from ogad_core.engine.projection import RandomProjector


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def gaussian_project(g: torch.Tensor, k: int, seed: int, block: int = 4096) -> torch.Tensor:
    """The old projector: N(0, 1/k) rows generated in blocks of 4,096 from (seed, block)."""
    out = torch.zeros(g.shape[0], k)
    for b, start in enumerate(range(0, g.shape[1], block)):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + b)
        rows = torch.randn(min(block, g.shape[1] - start), k, generator=gen) / math.sqrt(k)
        out += g[:, start : start + block] @ rows
    return out


def distortion(g: torch.Tensor, z: torch.Tensor) -> dict:
    """Norm ratio and cosine error of projected rows z against the originals g."""
    ratio = (z.norm(dim=1) / g.norm(dim=1)) ** 2
    gn = g / g.norm(dim=1, keepdim=True)
    zn = z / z.norm(dim=1, keepdim=True)
    off = ~torch.eye(g.shape[0], dtype=torch.bool)
    cos_err = ((zn @ zn.T) - (gn @ gn.T))[off].abs()
    return {
        "norm2_ratio_mean": float(ratio.mean()),
        "norm2_ratio_std": float(ratio.std()),
        "norm2_ratio_max_abs_err": float((ratio - 1).abs().max()),
        "cosine_abs_err_mean": float(cos_err.mean()),
        "cosine_abs_err_max": float(cos_err.max()),
    }


def mlp_rows(a: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model = MLP(in_features=2048, n_classes=10, hidden=(1024, 1024, 1024)).eval()
    d = sum(p.numel() for p in model.parameters())
    x, y = torch.randn(a.n, 2048), torch.randint(0, 10, (a.n,))
    ds = TensorDataset(x, y)
    kw = dict(batch_size=a.batch_size, progress=False)
    warm = TensorDataset(x[: a.batch_size], y[: a.batch_size])
    compute_gradients(model, warm, "all", proj_dim=a.k, **kw)  # warm-up: vmap, bucket cache
    t_full, t_proj = [], []
    for _ in range(a.repeat):  # alternated, best of each: the cores are shared
        full, t = _timed(lambda: compute_gradients(model, ds, "all", **kw))
        t_full.append(t)
        _, t = _timed(lambda: compute_gradients(model, ds, "all", proj_dim=a.k, seed=0, **kw))
        t_proj.append(t)
    t_full, t_proj = min(t_full), min(t_proj)
    g = torch.from_numpy(full)
    rows = {"params": d, "n": a.n, "k": a.k, "unprojected_seconds": t_full}
    rows["countsketch_pipeline_seconds"] = t_proj
    rows["countsketch_pipeline_over_unprojected"] = t_proj / t_full
    methods = {}
    for nnz in (1, 4):
        proj = RandomProjector(in_dim=d, proj_dim=a.k, seed=0, nnz=nnz)
        z, t = _timed(lambda p=proj: p.project(g))
        methods[f"sparse nnz={nnz}"] = {"project_seconds": t, **distortion(g, z)}
    cols = a.gauss_cols
    gs = g[:, :cols]
    z, t = _timed(lambda: gaussian_project(gs, a.k, 0))
    methods["gaussian (slice)"] = {
        "columns": cols,
        "project_seconds": t,
        "extrapolated_full_seconds": t * d / cols,
        **distortion(gs, z),
    }
    for nnz in (1, 4):
        proj = RandomProjector(in_dim=cols, proj_dim=a.k, seed=0, nnz=nnz)
        methods[f"sparse nnz={nnz} (slice)"] = {"columns": cols, **distortion(gs, proj.project(gs))}
    rows["methods"] = methods
    return rows


def resnet_rows(a: argparse.Namespace) -> dict:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=10).eval()
    x, y = torch.randn(a.resnet_n, 3, 32, 32), torch.randint(0, 10, (a.resnet_n,))
    ds = TensorDataset(x, y)
    _, t = _timed(
        lambda: compute_gradients(
            model, ds, "all", batch_size=16, proj_dim=a.k, seed=0, progress=False
        )
    )
    return {
        "model": "ResNet-18 (11.2 M params), 32x32, 10 classes",
        "n": a.resnet_n,
        "k": a.k,
        "samples_per_second": a.resnet_n / t,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--k", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--gauss-cols", type=int, default=262_144)
    ap.add_argument("--resnet-n", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/projection.json"))
    a = ap.parse_args(argv)
    result = {
        "machine": f"CPU, {torch.get_num_threads()} threads",
        "mlp": mlp_rows(a),
        "resnet18_all_projected_cpu": resnet_rows(a),
        "gpu": "unmeasured (no GPU in this session)",
    }
    print(json.dumps(result, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()


# ---- docs/benchmarks.md (called by benchmarks.run_all) ---------------------------------------


def summary(r: dict) -> str:
    """One line for the summary table."""
    m = r["mlp"]
    return (
        f"4.2M-param MLP, k={m['k']}: projected / unprojected "
        f"{m['countsketch_pipeline_over_unprojected']:.2f}x; ResNet-18 all+proj "
        f"{r['resnet18_all_projected_cpu']['samples_per_second']:.2f} samples/s (CPU)"
    )


def docs_section(r: dict) -> str:
    """The section of docs/benchmarks.md."""
    m = r["mlp"]
    head = [
        "## Projection: sparse JL (CountSketch) vs Gaussian\n",
        f"`python -m benchmarks.bench_projection` — per-sample gradients of all "
        f"{m['params']:,} parameters of an MLP (2048-1024-1024-1024-10), {m['n']} samples, "
        f"projected to k = {m['k']} ({r['machine']}). Unprojected: "
        f"{m['unprojected_seconds']:.1f} s; with the CountSketch projection in the pipeline: "
        f"{m['countsketch_pipeline_seconds']:.1f} s "
        f"(**{m['countsketch_pipeline_over_unprojected']:.2f}x**; the goal is <= 2x: the "
        "projected pass is even cheaper, because the unprojected one concatenates and stores "
        f"{m['n']} x {m['params']:,} floats while the projected one reduces each parameter's "
        "block as it comes). Projecting alone (the table) costs "
        f"{m['methods']['sparse nnz=1']['project_seconds']:.0f} s; the old Gaussian projector "
        "extrapolates to "
        f"{m['methods']['gaussian (slice)']['extrapolated_full_seconds']:.0f} s under the same "
        "load (issue 13, on an idle machine: 4.2 s unprojected, 86 s projected, 20.8x).\n",
        "Distortion on these real gradients: the squared-norm ratio |gP|^2/|g|^2 (ideal 1) and "
        "the error of the pairwise cosines. The Gaussian comparator generates its N(0, 1/k) "
        "blocks on the CPU as the old projector did, so it is measured on the first columns "
        "only, next to the sparse transforms on the same columns.\n",
        "| transform | columns | project s | norm² ratio mean ± std | max abs err | "
        "cosine err mean / max |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, x in m["methods"].items():
        secs = x.get("project_seconds")
        head.append(
            f"| {name} | {x.get('columns', m['params']):,} | "
            f"{'-' if secs is None else f'{secs:.2f}'} | "
            f"{x['norm2_ratio_mean']:.3f} ± {x['norm2_ratio_std']:.3f} | "
            f"{x['norm2_ratio_max_abs_err']:.3f} | "
            f"{x['cosine_abs_err_mean']:.3f} / {x['cosine_abs_err_max']:.3f} |"
        )
    meth = m["methods"]
    cost4 = meth["sparse nnz=4"]["project_seconds"] / meth["sparse nnz=1"]["project_seconds"]
    head.append(
        "\nChosen: nnz = 1 (CountSketch). Its distortion equals the Gaussian's (both at the "
        "theoretical sqrt(2/k) = 0.063 spread of the squared-norm ratio), nnz = 4 buys nothing "
        f"measurable at {cost4:.1f}x the cost, and SRHT was not pursued: a fast Walsh-Hadamard "
        "transform over D = 4.2 M coordinates per sample costs D log D work in torch ops, more "
        "than one scatter-add per entry.\n"
    )
    res = r["resnet18_all_projected_cpu"]
    head.append(
        f'\n`params="all"` + projection on {res["model"]}: '
        f"**{res['samples_per_second']:.2f} samples/s** on the CPU ({res['n']} samples, "
        f"k = {res['k']}). GPU: {r['gpu']}.\n"
    )
    return "\n".join(head) + "\n"
