"""Streaming images at scale: peak RSS and wall time of the image data path for N synthetic RGB
JPEGs (224 x 224, ten class folders), and the pretrained-encoder pass in images/s.

    nice -n 10 python -m benchmarks.bench_images [--sizes 12000 50000] [--workers 2]

For each N, in a fresh process: ``load_data("imagefolder:...")`` (header scan), one epoch of
the built-in SmallCNN at ``--image-size 32``, the prediction pass and the closed-form gradient
pass, every one streaming from the JPEGs through ``--workers`` DataLoader processes. Peak memory is
sampled every 0.25 s over the whole process tree (parent + workers) as the sum of PSS, so pages
shared after fork count once. The encoder pass decodes the same
JPEGs through ResNet-18's own transforms (resize 256, crop 224) with random-init weights saved
to a file (no pretrained weights on this machine; the speed does not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def make_jpegs(root: Path, n: int, size: int = 224, classes: int = 10) -> None:
    """N smooth random RGB JPEGs (about 8 KB each) in ``classes`` sub-folders (kept if present)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    bases = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(classes)]
    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = root / f"class_{i % classes}" / f"{i:06d}.jpg"
        if path.is_file():
            continue
        small = np.clip(bases[i % classes] + rng.normal(0, 40, (8, 8, 3)), 0, 255)
        img = Image.fromarray(small.astype(np.uint8)).resize((size, size), Image.BILINEAR)
        img.save(path, quality=85)


class PeakRss:
    """Samples the memory of this process and its children every ``interval`` s: the sum of
    their PSS (shared pages split between the processes sharing them), or RSS where PSS is
    not available."""

    def __init__(self, interval: float = 0.25) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    info = p.memory_full_info()
                    total += getattr(info, "pss", info.rss)
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def make_csv(root: Path, n: int) -> Path:
    """A CSV of ``n`` rows cycling through the JPEGs under ``root`` (image,label)."""
    files = sorted(root.glob("class_*/*.jpg"))
    path = root.parent / f"rows_{n}.csv"
    lines = ["image,label"]
    for i in range(n):
        f = files[i % len(files)]
        lines.append(f"{f.relative_to(root.parent)},{f.parent.name}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_pipeline(spec: str, workers: int, batch_size: int, passes: list[str]) -> dict:
    """The measured child: scan, then ``passes`` (train = one epoch, predict, gradients)."""
    import torch

    from ogad_core import compute_gradients
    from ogad_core.data import load_data
    from ogad_core.engine.datasets import ImageBatches
    from ogad_core.engine.models import SmallCNN
    from ogad_core.engine.train import TrainRecipe, predict, train_model

    torch.manual_seed(0)
    times = {}
    with PeakRss() as rss:
        t0 = time.perf_counter()
        data = load_data(spec, run_dir=Path(tempfile.mkdtemp()), image_size=32)
        files, labels = data.train.inputs, data.train.labels
        times["scan"] = time.perf_counter() - t0
        model = SmallCNN(in_channels=3, n_classes=data.n_classes)
        recipe = TrainRecipe(epochs=1, batch_size=batch_size)
        kw = dict(device=torch.device("cpu"), workers=workers)
        steps = {
            "train_1_epoch": lambda: train_model(
                model, files, labels, recipe=recipe, seed=0, progress=False, **kw
            ),
            "predict": lambda: predict(model, files, labels, batch_size=256, **kw),
            "gradients": lambda: compute_gradients(
                model,
                ImageBatches(files, labels),
                "last",
                256,
                "cpu",
                workers=workers,
                progress=False,
            ),
        }
        for name in passes:
            t0 = time.perf_counter()
            steps[name]()
            times[name] = time.perf_counter() - t0
    return {
        "n": len(files),
        "spec": spec.split(":", 1)[0],
        "passes": passes,
        "peak_rss_gib": rss.peak / 2**30,
        "seconds": times,
        "total_seconds": sum(times.values()),
        "images_per_second_per_pass": len(files) / times["predict"] if "predict" in times else None,
    }


def run_encoder(root: Path, workers: int, n: int) -> dict:
    import torch
    from torchvision.models import resnet18

    from ogad_core.data import load_data
    from ogad_core.engine.image_encoder import encode_images

    data = load_data(f"imagefolder:{root}", run_dir=root, image_size=32)
    files = data.train.inputs[:n]
    weights = root / "resnet18_random.pth"
    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), weights)
    with PeakRss() as rss:
        t0 = time.perf_counter()
        feats = encode_images(
            files,
            "torchvision:resnet18",
            weights=weights,
            batch_size=64,
            workers=workers,
            progress=False,
        )
        t = time.perf_counter() - t0
    return {
        "encoder": "torchvision:resnet18 (random-init weights file), 224 px crop",
        "n": n,
        "features": list(feats.shape),
        "images_per_second": n / t,
        "peak_rss_gib": rss.peak / 2**30,
    }


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``fn()``."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    fn()
    return time.perf_counter() - t0, _cpu_seconds() - c0


def plain_encoder_loop(root: Path, weights: Path, workers: int, batch_size: int) -> None:
    """The reference: torchvision's ImageFolder + DataLoader + the backbone, same transforms."""
    import torch
    from torchvision import datasets, models

    spec = models.ResNet18_Weights.IMAGENET1K_V1
    data = datasets.ImageFolder(str(root), transform=spec.transforms())
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, num_workers=workers)
    model = models.resnet18()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.fc = torch.nn.Identity()
    model.eval()
    with torch.inference_mode():
        for x, _ in loader:
            model(x).numpy()


def ours_encoder_step(root: Path, weights: Path, workers: int, batch_size: int) -> None:
    """ogad's encoder pass as the encode step runs it: into a fresh resumable store."""
    from ogad_core.data import load_data
    from ogad_core.engine.image_encoder import encoder_pass

    files = load_data(f"imagefolder:{root}", run_dir=root, image_size=32).train.inputs
    with tempfile.TemporaryDirectory() as cache:
        encoder_pass(
            files,
            "torchvision:resnet18",
            weights=weights,
            batch_size=batch_size,
            workers=workers,
            cache_dir=Path(cache),
            progress=False,
        )


def encoder_pace(root: Path, workers: int, n: int, repeats: int) -> dict:
    """The encoder step vs the plain loop on the same n JPEGs, alternated ``repeats`` times;
    the best of each (the least disturbed by the other work on shared cores)."""
    import torch
    from torchvision.models import resnet18

    folder = root / f"pace_{n}"
    make_jpegs(folder, n)
    weights = root / "resnet18_random.pth"
    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), weights)
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "ours": []}
    for _ in range(repeats):
        times["plain"].append(_timed(lambda: plain_encoder_loop(folder, weights, workers, 64)))
        times["ours"].append(_timed(lambda: ours_encoder_step(folder, weights, workers, 64)))
    best = {k: min(v) for k, v in times.items()}
    return {
        "n": n,
        "workers": workers,
        "repeats": repeats,
        "plain_images_per_s": round(n / best["plain"][0], 2),
        "ours_images_per_s": round(n / best["ours"][0], 2),
        "ratio_ours_vs_plain": round(best["plain"][0] / best["ours"][0], 3),
        "cpu_seconds": {k: round(v[1], 1) for k, v in best.items()},
        "all_seconds": {k: [round(w, 1) for w, _ in v] for k, v in times.items()},
    }


def write_digit_folder(root: Path) -> Path:
    """mnist5k's 4,000 train and 1,000 test digits as PNGs in train/ and test/ class folders."""
    from PIL import Image

    from ogad_core.data import load_data

    data = load_data("mnist5k", run_dir=root)
    out = root / "mnist5k_png"
    for name, split in (("train", data.train), ("test", data.test)):
        assert split is not None
        for i, (x, y) in enumerate(zip(split.inputs, split.labels, strict=True)):
            path = out / name / f"{int(y)}" / f"{i:05d}.png"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray((np.asarray(x)[0] * 255).round().astype(np.uint8)).save(path)
    return out


def files_vs_arrays(root: Path, workers: int) -> dict:
    """The whole compute on mnist5k's arrays vs the same digits as PNG files (image size 28)."""
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    folder = write_digit_folder(root)
    out: dict = {"n": 4000}
    for name, spec in (("arrays", "mnist5k"), ("files", f"imagefolder:{folder}")):
        config = ComputeConfig(data=spec, image_size=28, workers=workers, noise=0.1)
        with tempfile.TemporaryDirectory() as run:
            wall, cpu = _timed(lambda c=config, r=run: compute(c, Path(r) / "run", progress=False))
            manifest = json.loads((Path(run) / "run" / "manifest.json").read_text())
        steps = {k: v.get("seconds") for k, v in manifest["steps"].items()}
        out[name] = {"seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "steps": steps}
    out["ratio_files_vs_arrays"] = round(out["files"]["seconds"] / out["arrays"]["seconds"], 3)
    for step in ("train", "predict", "gradients"):
        a, f = out["arrays"]["steps"].get(step), out["files"]["steps"].get(step)
        if a and f:
            out[f"ratio_{step}"] = round(f / a, 2)
    return out


def run_pace(root: Path, workers: int, n: int, repeats: int) -> dict:
    """Both pace checks in one process, with the load average before and after."""
    import os

    load = [os.getloadavg()[0]]
    out = {"encoder": encoder_pace(root, workers, n, repeats)}
    out["files_vs_arrays"] = files_vs_arrays(root, workers)
    load.append(os.getloadavg()[0])
    out["load_average"] = [round(v, 1) for v in load]
    out["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[12_000, 50_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--encoder-n", type=int, default=256)
    ap.add_argument("--root", type=Path, default=None, help="keep the JPEGs here (default: tmp)")
    ap.add_argument("--child", choices=["pipeline", "encoder"], default=None)
    ap.add_argument(
        "--pace",
        action="store_true",
        help="only: the encoder step vs a plain torchvision loop, and the whole compute on "
        "files vs arrays (merged into the result file; the docs section is spliced)",
    )
    ap.add_argument("--pace-n", type=int, default=96, help="--pace: JPEGs for the encoder")
    ap.add_argument("--repeats", type=int, default=2, help="--pace: alternated runs of each")
    ap.add_argument("--spec", default=None, help="child: the data spec")
    ap.add_argument("--passes", default="train_1_epoch,predict,gradients")
    ap.add_argument(
        "--csv-rows",
        type=int,
        nargs="*",
        default=[],
        help="also: N rows of a CSV cycling through the first size's JPEGs (scan + --passes)",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/images.json"))
    a = ap.parse_args(argv)
    if a.child:  # measured in a fresh process so the peaks do not mix
        root = a.root
        if a.child == "pipeline":
            out = run_pipeline(a.spec, a.workers, a.batch_size, a.passes.split(","))
        else:
            out = run_encoder(root, a.workers, a.encoder_n)
        print(json.dumps(out))
        return out
    base = a.root or Path(tempfile.mkdtemp(prefix="ogad_bench_images_"))
    if a.pace:
        return pace_main(a, base)
    result: dict = {"workers": a.workers, "model": "SmallCNN at --image-size 32", "rows": []}
    for n in a.sizes:
        root = base / f"jpegs_{n}"
        t0 = time.perf_counter()
        make_jpegs(root, n)
        print(f"{n} JPEGs ready in {time.perf_counter() - t0:.0f} s", flush=True)
        row = _child(["--child", "pipeline", "--spec", f"imagefolder:{root}"], a)
        print(json.dumps(row), flush=True)
        result["rows"].append(row)
    for n in a.csv_rows:
        csv = make_csv(base / f"jpegs_{a.sizes[0]}", n)
        row = _child(["--child", "pipeline", "--spec", f"csv:{csv}"], a)
        print(json.dumps(row), flush=True)
        result["rows"].append(row)
    root = base / f"jpegs_{a.sizes[0]}"
    result["encoder"] = _child(["--child", "encoder", "--root", str(root)], a)
    result["gpu"] = "unmeasured (no GPU in this session)"
    print(json.dumps(result, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    return result


def pace_main(a: argparse.Namespace, base: Path) -> dict:
    """``--pace``: measure, merge into the result file, splice the docs section."""
    from benchmarks.bench_images import docs_section  # defined below the __main__ guard
    from benchmarks.docs_splice import splice

    pace = run_pace(base, a.workers, a.pace_n, a.repeats)
    print(json.dumps(pace, indent=2), flush=True)
    result = json.loads(a.out.read_text()) if a.out.is_file() else {"rows": []}
    result["pace"] = pace
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    if result.get("rows"):
        splice(docs_section(result), "## Images at scale: streaming memory and the encoder pass")
    return pace


def _child(args: list[str], a: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_images", *args, "--workers", str(a.workers)]
    cmd += ["--batch-size", str(a.batch_size), "--encoder-n", str(a.encoder_n)]
    cmd += ["--passes", a.passes]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()


# ---- docs/benchmarks.md (called by benchmarks.run_all) ---------------------------------------


def summary(r: dict) -> str:
    """One line for the summary table."""
    rows = ", ".join(f"{x['n']:,}: {x['peak_rss_gib']:.2f} GiB" for x in r["rows"])
    enc = r.get("encoder", {})
    return f"peak memory {rows}; encoder {enc.get('images_per_second', 0):.1f} images/s"


def docs_section(r: dict) -> str:
    """The section of docs/benchmarks.md."""
    lines = [
        "## Images at scale: streaming memory and the encoder pass\n",
        f"`python -m benchmarks.bench_images` — synthetic 224 x 224 RGB JPEGs in ten class "
        f"folders; {r['model']}, {r['workers']} DataLoader workers; after the header scan, one "
        "training epoch, the prediction pass and the closed-form gradient pass, all streaming "
        "from the files (`csv` rows: a CSV cycling through the same JPEGs, for N beyond the "
        "files generated). Peak memory: the PSS of the process and its workers, sampled every "
        "0.25 s.\n",
        "| rows | spec | peak memory | scan | train (1 epoch) | predict | gradients |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def sec(x: dict, key: str) -> str:
        v = x["seconds"].get(key)
        return "-" if v is None else f"{v:.0f} s"

    for x in r["rows"]:
        lines.append(
            f"| {x['n']:,} | {x.get('spec', 'imagefolder')} | {x['peak_rss_gib']:.2f} GiB | "
            f"{sec(x, 'scan')} | {sec(x, 'train_1_epoch')} | {sec(x, 'predict')} | "
            f"{sec(x, 'gradients')} |"
        )
    enc = r.get("encoder")
    if enc:
        lines.append(
            f"\nEncoder pass ({enc['encoder']}): {enc['images_per_second']:.1f} images/s on "
            f"{enc['n']} images, peak memory {enc['peak_rss_gib']:.2f} GiB, load average "
            f"{enc.get('load_average', '-')}. GPU rows: "
            f"{r.get('gpu', 'unmeasured')}.\n"
        )
    if r.get("note"):
        lines.append(f"\n{r['note']}\n")
    if r.get("pace"):
        lines += pace_lines(r["pace"])
    return "\n".join(lines) + "\n"


def pace_lines(p: dict) -> list[str]:
    """The pace checks (``--pace``): measured side by side in one run."""
    e, f = p["encoder"], p["files_vs_arrays"]
    load = " -> ".join(f"{v:.1f}" for v in p["load_average"])
    steps = ", ".join(
        f"{s} {f['files']['steps'][s]:.1f} s vs {f['arrays']['steps'][s]:.1f} s "
        f"({f[f'ratio_{s}']:.2f}x)"
        for s in ("train", "predict", "gradients")
        if f"ratio_{s}" in f
    )
    cpu_ratio = f["files"]["cpu_seconds"] / f["arrays"]["cpu_seconds"]

    def runs(k: str) -> str:
        return ", ".join(f"{v:.1f}" for v in e["all_seconds"][k])

    return [
        "### Pace of the encoder step and of the file path (measured side by side)\n",
        f"`python -m benchmarks.bench_images --pace` ({p['when']}, load average {load} on the "
        "2 shared cores; best of "
        f"{e['repeats']} alternated runs each).\n",
        "| check | ours | reference | ratio | goal |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| encoder step (ResNet-18, random-init weights file, {e['n']} 224 px JPEGs, "
        f"{e['workers']} workers, into the resumable store) vs a plain torchvision loop "
        "(ImageFolder + DataLoader, same transforms and workers) | "
        f"{e['ours_images_per_s']:.2f} images/s | {e['plain_images_per_s']:.2f} images/s | "
        f"{e['ratio_ours_vs_plain']:.2f}x the loop's pace | >= 0.8x |",
        f"| whole `ogad compute` on mnist5k's {f['n']:,} digits as PNG files (train/ + test/) "
        "vs the same digits as arrays | "
        f"{f['files']['seconds']:.1f} s | {f['arrays']['seconds']:.1f} s | "
        f"{f['ratio_files_vs_arrays']:.2f}x the arrays' time | <= 1.3x |",
        "",
        f"Per step, files vs arrays: {steps}. CPU seconds (process + workers), the fairer "
        f"figure on shared cores: compute on files {f['files']['cpu_seconds']}, on arrays "
        f"{f['arrays']['cpu_seconds']} ({cpu_ratio:.2f}x); encoder step "
        f"{e['cpu_seconds']['ours']}, plain loop {e['cpu_seconds']['plain']}. Every encoder "
        f"run (s): ours {runs('ours')}, plain {runs('plain')}. GPU paths (decode_jpeg on the "
        "device, pinned memory, channels-last, `--precision bf16`): unmeasured (no GPU in this "
        "session); "
        "`benchmarks/bench_gpu.py` measures them.\n",
    ]
