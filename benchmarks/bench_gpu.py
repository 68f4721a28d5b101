"""The GPU figures in one command: the encoder pass, closed-form last-layer gradients against a
forward pass, and all-parameter projected gradients, on ResNet-18 / ResNet-50 (random-init
weights: the speed does not depend on the values).

    python -m benchmarks.bench_gpu                # on a CUDA machine: writes docs/benchmarks.md
    python -m benchmarks.bench_gpu --smoke        # tiny sizes on CPU: checks the script works

1. Encoder pass (bf16): a plain loop — torchvision ImageFolder + DataLoader (pinned memory,
   the same workers) + the backbone channels-last under bf16 autocast — against ogad's encoder
   pass (``encoder_pass``: decode_jpeg on the device, channels-last, ``--precision bf16``, into
   the resumable store). Goal: ours >= 0.8x the plain loop's images/s.
2. Closed-form last-layer gradients (``params=last``, 10 classes) against a forward pass over
   the same batches (logits copied to the host), inputs streamed from host memory. Goal: <= 1.2x
   the forward pass.
3. ``params=all`` + projection to 1,024 (torch.func vmap): samples/s. Goal: ResNet-18 >= 1,000.

The figures go to ``--out`` (JSON) and, on CUDA (or with ``--docs`` named), into the "GPU"
section of ``--docs``, with ``torch.cuda.get_device_name()``. A CPU run never touches the
repository's docs unless told to.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.docs_splice import DOCS, splice
from benchmarks.gpu_docs import HEADING, docs_section

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn: Callable[[], Any], dev: torch.device) -> float:
    """Seconds of ``fn()`` (the device synchronised before and after)."""
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t0


def _backbone(name: str, classes: int | None = None) -> torch.nn.Module:
    from torchvision import models

    torch.manual_seed(0)
    return models.get_model(name, weights=None, num_classes=classes or 1000).eval()


# ---- 1. the encoder pass -------------------------------------------------------------------


def plain_bf16_loop(
    folder: Path, weights: Path, dev: torch.device, workers: int, batch: int, name: str
) -> None:
    """The reference: ImageFolder + DataLoader (pinned) + channels-last backbone, bf16."""
    from torchvision import datasets, models

    tf = models.get_model_weights(name).DEFAULT.transforms()
    data = datasets.ImageFolder(str(folder), transform=tf, allow_empty=True)
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch, num_workers=workers, pin_memory=dev.type == "cuda"
    )
    model = _backbone(name)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.fc = torch.nn.Identity()
    model = model.to(dev).to(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16):
        for x, _ in loader:
            x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
            model(x).float().cpu()


def ours_encoder(
    folder: Path, weights: Path, dev: torch.device, workers: int, batch: int, name: str
) -> None:
    """ogad's encoder pass (bf16, on the device), into a fresh resumable store."""
    from ogad_core.data import load_data
    from ogad_core.engine.image_encoder import encoder_pass

    files = load_data(f"imagefolder:{folder}", run_dir=folder, image_size=32).train.inputs
    with tempfile.TemporaryDirectory() as cache:
        encoder_pass(
            files,
            f"torchvision:{name}",
            weights=weights,
            device=str(dev),
            batch_size=batch,
            workers=workers,
            cache_dir=Path(cache),
            precision="bf16",
            progress=False,
        )


def encoder_rows(a: argparse.Namespace, dev: torch.device, root: Path) -> list[dict]:
    from benchmarks.bench_images import make_jpegs

    folder = root / f"jpegs_{a.images}_{a.jpeg_size}"
    make_jpegs(folder, a.images, size=a.jpeg_size)
    rows = []
    for name in a.models:
        weights = root / f"{name}_random.pth"
        torch.save(_backbone(name).state_dict(), weights)
        args = (folder, weights, dev, a.workers, a.encoder_batch, name)
        warm_up = _timed(lambda args=args: plain_bf16_loop(*args), dev) if a.repeats > 1 else 0
        plain = min(_timed(lambda args=args: plain_bf16_loop(*args), dev) for _ in a.runs)
        ours = min(_timed(lambda args=args: ours_encoder(*args), dev) for _ in a.runs)
        rows.append(
            {
                "model": name,
                "images": a.images,
                "plain_images_per_s": round(a.images / plain, 1),
                "ours_images_per_s": round(a.images / ours, 1),
                "ratio": round(plain / ours, 3),
                "warm_up_s": round(warm_up, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---- 2. and 3. gradients -------------------------------------------------------------------


def _inputs(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def forward_pass(model: torch.nn.Module, x: torch.Tensor, dev: torch.device, batch: int) -> None:
    """Logits of every batch, copied to the host (what the closed form is measured against)."""
    with torch.no_grad():
        for start in range(0, x.shape[0], batch):
            model(x[start : start + batch].to(dev, non_blocking=True)).float().cpu()


def gradient_rows(a: argparse.Namespace, dev: torch.device) -> list[dict]:
    from torch.utils.data import TensorDataset

    from ogad_core.engine.gradients import compute_gradients

    rows = []
    for name in a.models:
        model = _backbone(name, classes=10).to(dev)
        x, y = _inputs(a.rows, a.image_size)
        data = TensorDataset(x.pin_memory() if dev.type == "cuda" else x, y)
        kw = {"device": str(dev), "progress": False, "workers": 0}

        def closed(model=model, data=data, kw=kw) -> None:
            compute_gradients(model, data, "last", batch_size=a.batch, **kw)

        def forward(model=model, x=data.tensors[0]) -> None:
            forward_pass(model, x, dev, a.batch)

        if a.repeats > 1:  # warm-up (kernels, allocator)
            forward()
            closed()
        t_forward = min(_timed(forward, dev) for _ in a.runs)
        t_closed = min(_timed(closed, dev) for _ in a.runs)
        n_all = min(a.rows, a.all_rows)
        sub = TensorDataset(x[:n_all], y[:n_all])

        def projected(model=model, sub=sub, kw=kw) -> None:
            compute_gradients(model, sub, "all", batch_size=a.all_batch, proj_dim=1024, **kw)

        if a.repeats > 1:
            projected()
        t_all = min(_timed(projected, dev) for _ in a.runs)
        rows.append(
            {
                "model": name,
                "rows": a.rows,
                "image_size": a.image_size,
                "forward_samples_per_s": round(a.rows / t_forward, 1),
                "closed_samples_per_s": round(a.rows / t_closed, 1),
                "closed_vs_forward": round(t_closed / t_forward, 3),
                "all_projected_rows": n_all,
                "all_projected_samples_per_s": round(n_all / t_all, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--jpeg-size", type=int, default=256)
    ap.add_argument("--encoder-batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--rows", type=int, default=8192)
    ap.add_argument("--all-rows", type=int, default=2048)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--all-batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each (best kept)")
    ap.add_argument("--root", type=Path, default=None, help="keep the JPEGs here")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--docs", type=Path, default=None, help="default: docs/benchmarks.md on CUDA")
    a = ap.parse_args(argv)
    if a.smoke:
        a.images, a.jpeg_size, a.encoder_batch, a.workers = 4, 64, 2, 0
        a.rows, a.all_rows, a.image_size, a.batch, a.all_batch = 8, 4, 16, 4, 2
        a.repeats = 1
    a.runs = range(max(1, a.repeats))
    a.models = a.models or (["resnet18"] if a.smoke else ["resnet18", "resnet50"])
    dev = torch.device(a.device or ("cpu" if a.smoke else "cuda"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu: no CUDA device here (use --smoke to check the script on CPU)")
    root = a.root or Path(tempfile.mkdtemp(prefix="ogad_bench_gpu_"))
    root.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "cuda": dev.type == "cuda",
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU",
        "torch": torch.__version__,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "jpeg_size": a.jpeg_size,
        "workers": a.workers,
    }
    load = [os.getloadavg()[0]]
    result["encoder"] = encoder_rows(a, dev, root)
    result["gradients"] = gradient_rows(a, dev)
    load.append(os.getloadavg()[0])
    result["load_average"] = " -> ".join(f"{v:.1f}" for v in load)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    docs = a.docs or (DOCS if result["cuda"] else None)
    if docs is not None:
        splice(docs_section(result), HEADING, path=docs)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
