"""The ImageNet-size rehearsal (issue 21): N synthetic photos through the real ``ogad compute``
with a pretrained-encoder model, then the dashboard, each stage timed against its measured limit.

    python -m benchmarks.bench_rehearsal --n 100000 --out DIR [--docs]

1. ``DIR/images``: N synthetic JPEGs (128-256 px, 100 classes, 5% filed under a wrong class;
   the truth in ``DIR/truth.csv``, outside the ImageFolder; :mod:`benchmarks.synthetic_jpegs`).
2. ``DIR/<encoder>_random.pth``: the encoder's random-init weights (torchvision's own init,
   seed 0), passed with ``--weights`` as a user would pass a downloaded file.
3. Measured limits on a sample of the photos: JPEG decode alone, decode + the weights'
   transforms, a plain torchvision loop (DataLoader + transforms + forward), the forward alone,
   a matmul-bound head epoch and the closed-form gradient's outer product.
4. ``ogad compute`` in a child process (stderr lines time-stamped into ``DIR/compute.log``):
   per-step seconds from the run's manifest, CPU seconds of the process tree, peak memory of the
   whole tree (the sum of RSS, and of PSS, sampled every second) and the load average.
5. Detection against the truth: the head's accuracy, the default detector's AUROC and recall
   of the flipped photos, the label issues flagged.
6. ``ogad dashboard`` on the run, the page loaded in headless Chromium (Playwright): seconds
   until the map has drawn and until the first card shows.
7. Projections to 1.28M photos (one machine, N Ray nodes, one 8-GPU node), from the measured
   per-row seconds; every projected figure is labelled so.

Writes ``benchmarks/results/rehearsal.json`` (``--result``) and, with ``--docs``, replaces only
its own section of docs/benchmarks.md. A finished run in ``DIR/run`` is not recomputed: its
recorded measurements (``DIR/compute.json``) are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.registry import DOCS, RESULTS
from benchmarks.synthetic_jpegs import make_dataset, read_truth

REPO = Path(__file__).resolve().parents[1]
TITLE = "## ImageNet-size rehearsal"
#: the cheapest torchvision classifier (0.04 GFLOPs at 224 px); see the docs section for why
ENCODER = "shufflenet_v2_x0_5"
IMAGENET = 1_281_167
#: the order of the pipeline's steps in the manifest, with what each does
STAGES = {
    "data": "header scan; thumbnails and input properties (one decode of each file)",
    "encode": "encoder pass (decode, resize 256, crop 224, forward)",
    "train": "the linear head (100 epochs on the cached features)",
    "predict": "predictions",
    "gradients": "closed-form last-layer gradients, CountSketch-projected",
    "scores": "detectors",
    "map": "UMAP map",
    "evidence": "review evidence (neighbours, suggestions)",
    "issues": "issue types",
}
#: stages that run on the workers with ``--engine ray`` (the rest on the driver)
PARALLEL = ("encode", "gradients")


# ---- 1-2: the photos and the weights file -------------------------------------------------


def make_weights(path: Path, encoder: str, seed: int = 0) -> Path:
    """Torchvision's random initialisation of ``encoder`` saved as a state_dict (kept if there)."""
    import torch
    from torchvision import models

    if not path.is_file():
        torch.manual_seed(seed)
        torch.save(models.get_model(encoder, weights=None).state_dict(), path)
    return path


# ---- 3: measured limits ---------------------------------------------------------------------


class _Photos:
    """A torch Dataset over photo files: PIL RGB images, or tensors through ``transform``."""

    def __init__(self, files: list[Path], transform: Any = None) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Any:
        from PIL import Image

        with Image.open(self.files[i]) as im:
            img = im.convert("RGB")
        return 0 if self.transform is None else self.transform(img)


def _loader_rate(ds: _Photos, workers: int, model: Any = None) -> float:
    """Images per second through a DataLoader (batches of 64), and ``model`` when given."""
    import torch

    dl = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in dl:
            if model is not None:
                model(x)
    return len(ds) / (time.perf_counter() - t0)


def _best_rate(fn: Any, items: int, repeat: int = 3) -> float:
    """Items per second of ``fn()``, the best of ``repeat`` timed calls after a warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return items / best


def measure_limits(files: list[Path], encoder: str, weights: Path, workers: int) -> dict:
    """Rates (per second) of what each stage cannot beat on this machine, on ``files``."""
    import torch
    from torchvision import models

    from ogad_core.engine.image_encoder import load_backbone, parse_encoder

    spec = parse_encoder(f"torchvision:{encoder}")
    backbone, dim = load_backbone(spec, weights)
    tf = spec.transforms()
    x = torch.randn(64, 3, 224, 224)
    out: dict[str, Any] = {"sample": len(files), "feature_dim": dim}
    out["decode_per_s"] = _loader_rate(_Photos(files), workers)
    out["decode_transform_per_s"] = _loader_rate(_Photos(files, tf), workers)
    out["plain_loop_per_s"] = _loader_rate(_Photos(files, tf), workers, backbone)
    with torch.inference_mode():
        out["forward_per_s"] = _best_rate(lambda: backbone(x), 64)
    out["torch_threads"] = torch.get_num_threads()
    out.update(_head_limits(dim, n_classes=100))
    del models
    return out


def limits_once(out: Path, sample: list[Path], weights: Path, a: argparse.Namespace) -> dict:
    """The limits, measured once per ``out`` and settings (kept in ``out/limits.json``)."""
    import torch

    record = out / "limits.json"
    key = {"sample": len(sample), "encoder": a.encoder, "threads": a.threads}
    if record.is_file():
        done = json.loads(record.read_text(encoding="utf-8"))
        if done.get("key") == key:
            return dict(done)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"limits on {len(sample)} photos ...", flush=True)
    lim = {"key": key, **measure_limits(sample, a.encoder, weights, a.workers)}
    lim["load_1min"] = os.getloadavg()[0]
    record.write_text(json.dumps(lim, indent=2), encoding="utf-8")
    print(json.dumps(lim), flush=True)
    return lim


#: encoders compared for the rehearsal (forward speed, scale of their random-init features)
CANDIDATES = ("shufflenet_v2_x0_5", "mobilenet_v3_small", "resnet18")


def candidates_once(out: Path, sample: list[Path], a: argparse.Namespace) -> list[dict]:
    """Per candidate encoder, with torchvision's random init: the forward's images/s (batches
    of 64 at 224 px) and the mean |feature| on ``sample`` (kept in ``out/candidates.json``)."""
    import torch
    from torch import nn
    from torchvision import models

    from ogad_core.engine.models import last_linear

    record = out / "candidates.json"
    if record.is_file():
        return list(json.loads(record.read_text(encoding="utf-8")))
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = []
    for name in CANDIDATES:
        torch.manual_seed(0)
        model = models.get_model(name, weights=None).eval()
        head, _ = last_linear(model)
        parent, _, child = head.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, nn.Identity())
        tf = models.get_model_weights(name).DEFAULT.transforms()
        x = torch.stack([_Photos(sample, tf)[i] for i in range(len(sample))])
        with torch.inference_mode():
            scale = float(model(x).abs().mean())
            rate = _best_rate(lambda m=model, x=x: m(x), len(sample), repeat=2)
        row = {"encoder": name, "forward_per_s": rate, "mean_abs_feature": scale}
        if name == a.encoder:  # and with every core as intra-op threads, for the threads note
            torch.set_num_threads(os.cpu_count() or 1)
            with torch.inference_mode():
                row["forward_per_s_all_threads"] = _best_rate(lambda m=model, x=x: m(x), len(x), 2)
            torch.set_num_threads(a.threads or os.cpu_count() or 1)
            row["threads"], row["load_1min"] = a.threads, os.getloadavg()[0]
        rows.append(row)
    record.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


def _head_limits(dim: int, n_classes: int) -> dict:
    """The head's arithmetic at the machine's matmul pace, and the gradient's outer product."""
    import torch

    a, w = torch.randn(4096, dim + 1), torch.randn(dim + 1, n_classes)
    flops = 2 * 4096 * (dim + 1) * n_classes
    gflops = _best_rate(lambda: a @ w, flops) / 1e9
    p, h = torch.randn(256, n_classes), torch.randn(256, dim + 2)
    outer = _best_rate(lambda: (p[:, :, None] * h[:, None, :]).reshape(256, -1), 256)
    return {"matmul_gflops": gflops, "outer_product_per_s": outer}


# ---- 4: the run through the real CLI --------------------------------------------------------


class TreeMonitor:
    """Samples a process tree every ``interval`` s: peak sum of RSS and of PSS, load averages,
    the tree's CPU seconds so far (the root's own, its reaped children's, the live
    descendants') as ``(unix time, cpu s)`` pairs, and its PSS as ``(unix time, bytes)``."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = self.peak_pss = 0
        self.loads: list[tuple[float, float, float]] = []
        self.cpu: list[tuple[float, float]] = []
        self.pss: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        rss = pss = 0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
            t = self.root.cpu_times()
        except psutil.Error:
            return
        cpu = t.children_user + t.children_system
        for p in procs:
            try:
                info = p.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
                times = p.cpu_times()
                cpu += times.user + times.system
            except psutil.Error:
                pass
        self.cpu.append((time.time(), cpu))
        self.pss.append((time.time(), pss))
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._sample()
            if time.monotonic() - last >= 10:
                self.loads.append(os.getloadavg())
                last = time.monotonic()
            time.sleep(self.interval)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def facts(self) -> dict:
        one = [x[0] for x in self.loads] or [os.getloadavg()[0]]
        return {
            "peak_rss_gib": self.peak_rss / 2**30,
            "peak_pss_gib": self.peak_pss / 2**30,
            "load_1min_mean": float(np.mean(one)),
            "load_1min_max": float(np.max(one)),
            "load_samples": len(self.loads),
        }


def _pump(stream: Any, log: Path, t0: float) -> None:
    """Copies the child's stderr into ``log``, each line (progress bars: the last of a burst
    of carriage returns) prefixed with seconds since the start."""
    last_bar = 0.0
    with open(log, "w", encoding="utf-8") as fh:
        buf = ""
        for chunk in iter(lambda: stream.read1(65536), b""):
            buf += chunk.decode("utf-8", "replace")
            *lines, buf = re.split(r"[\r\n]", buf)
            for line in lines:
                now = time.perf_counter() - t0
                bar = line.rstrip().endswith("/s]")
                if line.strip() and (not bar or now - last_bar >= 30):
                    fh.write(f"{now:8.1f} {line}\n")
                    last_bar = now if bar else last_bar
            fh.flush()


def compute_command(out: Path, encoder: str, weights: Path, a: argparse.Namespace) -> list[str]:
    """The ``ogad compute`` command line of the rehearsal."""
    ogad = str(Path(sys.executable).with_name("ogad"))
    return [
        ogad, "compute",
        "--data", f"imagefolder:{out / 'images'}",
        "--run-dir", str(out / "run"),
        "--encoder", f"torchvision:{encoder}",
        "--weights", str(weights),
        "--proj-dim", str(a.proj_dim),
        "--workers", str(a.workers),
        "--seed", "0",
    ]  # fmt: skip


def run_compute(cmd: list[str], out: Path, threads: int | None = None) -> dict:
    """Runs ``cmd``; its wall and CPU seconds, peak memory and load, and the manifest's steps."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=REPO, env=env
    )
    pump = threading.Thread(target=_pump, args=(proc.stderr, out / "compute.log", t0))
    pump.start()
    with TreeMonitor(proc.pid) as mon:
        rc = proc.wait()
    pump.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        tail = (out / "compute.log").read_text(encoding="utf-8").splitlines()[-5:]
        raise SystemExit(f"ogad compute failed ({rc}): " + " / ".join(tail))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    manifest = json.loads((out / "run" / "manifest.json").read_text(encoding="utf-8"))
    steps = _steps(manifest)
    for rec in steps.values():
        rec.update(_step_cpu(rec, mon.cpu))
        rec.update(_step_peak(rec, mon.pss))
    return {
        "command": " ".join(cmd),
        "omp_num_threads": threads,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        **mon.facts(),
        "steps": steps,
        "dims": manifest.get("dims"),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _steps(manifest: dict) -> dict[str, dict]:
    """The manifest's step records (seconds and any rate), without the per-epoch list."""
    return {
        name: {k: v for k, v in rec.items() if k not in ("epochs", "fingerprint")}
        for name, rec in manifest.get("steps", {}).items()
        if isinstance(rec, dict)
    }


def _step_cpu(rec: dict, series: list[tuple[float, float]]) -> dict:
    """The process tree's CPU seconds within a step (its manifest record: finished, seconds),
    from the monitor's samples (1 s apart; the record's end has 1 s resolution)."""
    from datetime import datetime

    if not series or "finished" not in rec or "seconds" not in rec:
        return {}
    end = datetime.fromisoformat(rec["finished"]).timestamp() + 0.5
    t, c = np.array(series).T
    used = float(np.interp(end, t, c) - np.interp(end - rec["seconds"], t, c))
    return {"cpu_seconds": round(max(used, 0.0), 2)}


def _step_peak(rec: dict, series: list[tuple[float, float]]) -> dict:
    """The process tree's peak PSS (GiB) within a step (its manifest record), from the
    monitor's samples (1 s apart)."""
    from datetime import datetime

    if not series or "finished" not in rec or "seconds" not in rec:
        return {}
    end = datetime.fromisoformat(rec["finished"]).timestamp() + 1.0
    inside = [b for t, b in series if end - rec["seconds"] - 1.0 <= t <= end]
    return {"peak_pss_gib": round(max(inside) / 2**30, 3)} if inside else {}


def compute_once(cmd: list[str], out: Path, threads: int | None) -> dict:
    """The measured run, or the measurements of the finished run already in ``out``."""
    record = out / "compute.json"
    if record.is_file() and (out / "run" / "manifest.json").is_file():
        done = json.loads(record.read_text(encoding="utf-8"))
        if done.get("command") == " ".join(cmd) and done.get("omp_num_threads") == threads:
            print("reusing the measured run in", out / "run", flush=True)
            return dict(done)
    result = run_compute(cmd, out, threads)
    record.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


# ---- 5: detection against the truth --------------------------------------------------------


def detection(run: Path, truth_csv: Path) -> dict:
    """The head's accuracy and how well the run's flags find the photos filed wrongly."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    truth = read_truth(truth_csv)
    index = {p: i for i, p in enumerate(truth.paths)}
    samples = pd.read_parquet(run / "samples.parquet")
    rows = np.array([index["/".join(Path(r).parts[-3:])] for r in samples["ref"]])
    true, flipped = truth.true[rows], truth.flipped[rows]
    scores = pd.read_parquet(run / "scores.parquet").set_index("sample_id")
    detector = _default_detector(run)
    score = scores.loc[samples["sample_id"], f"{detector}_score"].to_numpy()
    k = int(flipped.sum())
    top = np.argsort(-score, kind="stable")[:k]
    out = {
        "n": len(samples),
        "n_flipped": k,
        "head_accuracy_true": float(np.mean(samples["pred"].to_numpy() == true)),
        "head_accuracy_given": float(np.mean(samples["pred"].to_numpy() == samples["label"])),
        "detector": detector,
        "auroc": float(roc_auc_score(flipped, score)) if 0 < k < len(samples) else None,
        "recall_at_n_flipped": float(flipped[top].mean()) if k else None,
    }
    out.update(_issue_flags(run, samples["sample_id"].to_numpy(), flipped))
    return out


def _default_detector(run: Path) -> str:
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    return str((manifest.get("detectors") or ["loss"])[0])


def _issue_flags(run: Path, ids: np.ndarray, flipped: np.ndarray) -> dict:
    """Flags per issue type; for ``label``: precision and recall against the flipped photos."""
    import pandas as pd

    path = run / "issues.parquet"
    if not path.is_file():
        return {}
    issues = pd.read_parquet(path)
    flagged = issues[issues["flagged"]]
    out: dict[str, Any] = {"flagged": flagged.groupby("issue").size().astype(int).to_dict()}
    label = set(flagged.loc[flagged["issue"] == "label", "sample_id"].tolist())
    hit = np.array([i in label for i in ids])
    if hit.any():
        out["label_precision"] = float(flipped[hit].mean())
        out["label_recall"] = float(hit[flipped].mean()) if flipped.any() else None
    return out


def head_check(out: Path, weight_decays: tuple[float, ...] = (1.5, 1e-4)) -> list[dict]:
    """The run's head retrained on its cached encoder features with each weight decay (the
    built-in recipe's is 1.5; the rest of the recipe kept): how much of the detection the
    recipe, rather than the features, limits. Kept in ``out/head_check.json``."""
    import pandas as pd
    import torch
    from sklearn.metrics import roc_auc_score

    from ogad_core.engine.text_head import TEXT_HEAD_RECIPE, build_text_head
    from ogad_core.engine.train import TrainRecipe, train_model
    from ogad_core.run.rundir import RunDir

    record = out / "head_check.json"
    if record.is_file():
        return list(json.loads(record.read_text(encoding="utf-8")))
    rd = RunDir(out / "run")
    (matrix,) = [p for p in rd.embeddings_dir.glob("*.npy") if not p.name.endswith(".done.npy")]
    x = torch.as_tensor(np.load(matrix))
    samples = pd.read_parquet(rd.path / "samples.parquet").sort_values("sample_id")
    given = torch.as_tensor(samples["label"].to_numpy(dtype=np.int64).copy())
    truth = read_truth(out / "truth.csv")
    index = {p: i for i, p in enumerate(truth.paths)}
    rows = np.array([index["/".join(Path(r).parts[-3:])] for r in samples["ref"]])
    true, flipped = truth.true[rows], truth.flipped[rows]
    found = []
    for wd in weight_decays:
        head = build_text_head(n_classes=int(given.max()) + 1, embeddings=x, seed=0)
        recipe = TrainRecipe(**{**TEXT_HEAD_RECIPE, "weight_decay": wd})  # type: ignore[arg-type]
        train_model(head, x, given, recipe=recipe, seed=0, device=torch.device("cpu"),
                    progress=False, workers=0)  # fmt: skip
        with torch.no_grad():
            logits = head(x)
            loss = torch.nn.functional.cross_entropy(logits, given, reduction="none").numpy()
        top = np.argsort(-loss, kind="stable")[: int(flipped.sum())]
        found.append(
            {
                "weight_decay": wd,
                "head_accuracy_true": float((logits.argmax(1).numpy() == true).mean()),
                "auroc": float(roc_auc_score(flipped, loss)),
                "recall_at_n_flipped": float(flipped[top].mean()),
            }
        )
    record.write_text(json.dumps(found, indent=2), encoding="utf-8")
    return found


# ---- 6: the dashboard in Chromium ----------------------------------------------------------

MAP_PAINTED_JS = """() => {
  const m = window.__ogadMap;
  return !!m && m.root.isConnected && Number(m.root.dataset.painted) >= 1;
}"""


def dashboard_timings(run: Path, out: Path, loads: int = 2) -> dict:
    """``ogad dashboard RUN``: seconds to serve, then per page load in Chromium: until the map
    has drawn and until the first card's Confirm shows (the first load is cold)."""
    from dashboard.serve import free_port

    port = free_port()
    ogad = str(Path(sys.executable).with_name("ogad"))
    t0 = time.perf_counter()
    with open(out / "dashboard.log", "wb") as log:
        server = subprocess.Popen(
            [ogad, "dashboard", str(run), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(port, server)
        result: dict[str, Any] = {"serve_seconds": time.perf_counter() - t0}
        with TreeMonitor(server.pid) as mon:
            result["loads"] = _browser_loads(f"http://127.0.0.1:{port}/", loads)
        result["server_peak_rss_gib"] = mon.facts()["peak_rss_gib"]
        return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _wait_healthy(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.3)
    raise SystemExit("ogad dashboard did not start (see dashboard.log)")


def _browser_loads(url: str, loads: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from ogad_core.testing import CHROMIUM, CHROMIUM_ARGS

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads):
                page = browser.new_page(viewport={"width": 1500, "height": 1100})
                page.set_default_timeout(600_000)
                start = time.perf_counter()
                page.goto(url)
                page.wait_for_function(MAP_PAINTED_JS, timeout=600_000)
                drawn = time.perf_counter() - start
                page.get_by_role("button", name="Confirm").first.wait_for()
                card = time.perf_counter() - start
                points = page.evaluate("() => window.__ogadMap.root.dataset.points")
                raster = page.evaluate("() => window.__ogadMap.root.dataset.raster")
                out.append({"map_drawn_s": drawn, "first_card_s": card, "points": points,
                            "raster": raster})  # fmt: skip
                page.close()
        finally:
            browser.close()
    return out


# ---- 7: projections ---------------------------------------------------------------------------


def projections(
    r: dict, nodes: tuple[int, ...] = (1, 4, 16, 64), node_cores: int = 96
) -> list[dict]:
    """Projected wall seconds for 1.28M photos from the measured per-row seconds of each stage,
    every stage scaled linearly in rows (the map above 100,000 rows fits a 100,000-row
    subsample, so this overestimates it). On N Ray nodes like this machine the encoder pass and
    the gradients are divided by N, the rest stays on the driver. On one 8-GPU node the GPU
    forward is unmeasured: the row gives the CPU side's bound, JPEG decode + transforms at this
    machine's measured rate per core on ``node_cores`` cores, and the driver's stages as here."""
    n, steps = r["n"], r["compute"]["steps"]
    per_row = {s: steps[s]["seconds"] / n for s in STAGES if "seconds" in steps.get(s, {})}
    other = r["compute"]["wall_seconds"] - sum(v * n for v in per_row.values())
    driver = (sum(v for s, v in per_row.items() if s not in PARALLEL) + other / n) * IMAGENET
    parallel = {s: per_row.get(s, 0.0) * IMAGENET for s in PARALLEL}
    out = []
    for k in nodes:
        out.append(
            {
                "setting": f"{k} Ray node{'s' if k > 1 else ''} of {r['cpus']} cores"
                + (" (this machine)" if k == 1 else ""),
                "encode_seconds": parallel["encode"] / k,
                "gradients_seconds": parallel["gradients"] / k,
                "driver_seconds": driver,
            }
        )
    per_core = r["limits"]["decode_transform_per_s"] / max(r["cpus"] or 1, 1)
    out.append(
        {
            "setting": f"one 8-GPU node ({node_cores} CPU cores assumed)",
            "encode_seconds": IMAGENET / (per_core * node_cores),
            "encode_basis": "CPU decode + transforms bound; GPU forward unmeasured",
            "gradients_seconds": None,
            "driver_seconds": driver,
        }
    )
    for row in out:
        row["seconds"] = sum(v for k, v in row.items() if k.endswith("_seconds") and v)
    return out


# ---- main -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="photos (the rehearsal: 100000)")
    ap.add_argument("--out", type=Path, required=True, help="photos, weights and the run go here")
    ap.add_argument("--encoder", default=ENCODER, help="a torchvision classification model")
    ap.add_argument("--proj-dim", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", type=int, default=1000, help="photos the limits are measured on")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (OMP_NUM_THREADS) of ogad compute and the limits (default: torch's)",
    )
    ap.add_argument("--no-browser", action="store_true", help="skip the dashboard in Chromium")
    ap.add_argument("--result", type=Path, default=RESULTS / "rehearsal.json")
    ap.add_argument("--docs", action="store_true", help="splice the section into the docs")
    return ap


def main(argv: list[str] | None = None) -> dict:
    a = _parser().parse_args(argv)
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    r: dict[str, Any] = {
        "n": a.n,
        "encoder": a.encoder,
        "workers": a.workers,
        "cpus": os.cpu_count(),
    }
    r["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    t0 = time.perf_counter()
    truth = make_dataset(out, a.n, seed=a.seed, workers=a.workers)
    r["generate_seconds"] = time.perf_counter() - t0
    r["dataset_gib"] = sum(f.stat().st_size for f in (out / "images").rglob("*.jpg")) / 2**30
    weights = make_weights(out / f"{a.encoder}_random.pth", a.encoder)
    r["limits"] = limits_once(out, [out / p for p in truth.paths[: a.sample]], weights, a)
    r["candidates"] = candidates_once(out, [out / p for p in truth.paths[:64]], a)
    r["compute"] = compute_once(compute_command(out, a.encoder, weights, a), out, a.threads)
    r["detection"] = detection(out / "run", out / "truth.csv")
    r["head_check"] = head_check(out)
    if not a.no_browser and shutil.which("chromium"):
        r["dashboard"] = dashboard_timings(out / "run", out)
    r["projections"] = projections(r)
    r["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    a.result.parent.mkdir(parents=True, exist_ok=True)
    a.result.write_text(json.dumps(r, indent=2), encoding="utf-8")
    print(summary(r), flush=True)
    if a.docs:
        splice_section(DOCS, docs_section(r))
    return r


# ---- docs/benchmarks.md (also called by benchmarks.docs_writer) ------------------------------


def summary(r: dict) -> str:
    """One line for the summary table."""
    c, d = r["compute"], r["detection"]
    return (
        f"{r['n']:,} photos: ogad compute {c['wall_seconds'] / 60:.1f} min (load "
        f"{c['load_1min_mean']:.1f}), peak {c['peak_pss_gib']:.2f} GiB PSS; encoder "
        f"{c['steps'].get('encode', {}).get('images_per_s', 0):.0f} images/s; flipped AUROC "
        f"{d['auroc']:.3f}"
    )


def splice_section(path: Path, section: str) -> None:
    """Replaces this benchmark's section of ``path`` (from its heading to the next ``## ``), or
    appends it; the rest of the page is left byte for byte."""
    text = path.read_text(encoding="utf-8")
    start = text.find(TITLE)
    if start < 0:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(TITLE))
        end = len(text) if nxt < 0 else nxt + 1
        new = text[:start] + section + ("\n" if nxt >= 0 else "") + text[end:]
    path.write_text(new, encoding="utf-8")


def _rate(n: int, seconds: float | None) -> str:
    return "-" if not seconds else f"{n / seconds:,.0f}"


def _limit_rows(r: dict) -> dict[str, tuple[str, float]]:
    """Per stage: (what bounds it, that bound in rows/s), measured in this run."""
    lim, n = r["limits"], r["n"]
    dim, classes = lim["feature_dim"], 100
    head_flops = 100 * n * (dim + 1) * classes * 6  # 100 epochs, forward + backward
    head_rate = n / (head_flops / (lim["matmul_gflops"] * 1e9))
    return {
        "data": ("JPEG decode alone, 2 DataLoader workers", lim["decode_per_s"]),
        "encode": (
            "plain torchvision loop (DataLoader + transforms + forward)",
            lim["plain_loop_per_s"],
        ),  # fmt: skip
        "train": (
            f"100 epochs of (N x {dim + 1}) @ ({dim + 1} x {classes}), forward + backward, "
            f"at the matmul's {lim['matmul_gflops']:.0f} GFLOP/s",
            head_rate,
        ),  # fmt: skip
        "predict": (
            f"one (N x {dim + 1}) @ ({dim + 1} x {classes}) at the same pace",
            lim["matmul_gflops"] * 1e9 / (2 * (dim + 1) * classes),
        ),
        "gradients": (
            f"the closed form's outer product alone ({classes} x {dim + 2} per row)",
            lim["outer_product_per_s"],
        ),  # fmt: skip
    }


def _stage_table(r: dict) -> str:
    n, steps, limits = r["n"], r["compute"]["steps"], _limit_rows(r)
    lines = [
        "| stage | what | seconds | CPU s | rows/s | measured limit (photos: "
        f"{r['limits']['sample']:,} of them) | limit rows/s | of the limit | peak PSS (GiB) |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, what in STAGES.items():
        sec = steps.get(name, {}).get("seconds")
        if sec is None:
            continue
        how, rate = limits.get(name, ("-", None))
        share = "-" if rate is None else f"{(n / sec) / rate:.2f}x"
        cpu, peak = steps[name].get("cpu_seconds"), steps[name].get("peak_pss_gib")
        lines.append(
            f"| {name} | {what} | {sec:,.1f} | {'-' if cpu is None else f'{cpu:,.0f}'} | "
            f"{_rate(n, sec)} | {how} | "
            f"{'-' if rate is None else f'{rate:,.0f}'} | {share} | "
            f"{'-' if peak is None else f'{peak:.2f}'} |"
        )
    c = r["compute"]
    rest = c["wall_seconds"] - sum(v.get("seconds", 0) for k, v in steps.items() if k in STAGES)
    lines.append(
        f"| other | start-up, the review evidence (no step record), between steps | {rest:,.1f} "
        "| | | | | | |"
    )
    lines.append(
        f"| **ogad compute** | the whole command (imports included) | {c['wall_seconds']:,.0f} | "
        f"{c['cpu_seconds']:,.0f} | {_rate(n, c['wall_seconds'])} | | | | "
        f"{c['peak_pss_gib']:.2f} |"
    )
    return "\n".join(lines) + "\n"


def _projection_table(r: dict) -> str:
    lines = [
        "| setting (all **projected**) | encoder pass | gradients | driver stages | total |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]

    def m(v: float | None) -> str:
        return "unmeasured" if v is None else f"{v / 60:,.0f} min"

    for p in r["projections"]:
        enc = m(p["encode_seconds"]) + (" (CPU bound)" if p.get("encode_basis") else "")
        lines.append(
            f"| {p['setting']} | {enc} | {m(p['gradients_seconds'])} | "
            f"{m(p['driver_seconds'])} | {m(p['seconds'])}"
            f"{' + GPU time' if p['gradients_seconds'] is None else ''} |"
        )
    return "\n".join(lines) + "\n"


def _detection_text(d: dict) -> str:
    flags = ", ".join(f"{k} {v:,}" for k, v in sorted(d.get("flagged", {}).items()))
    label = ""
    if d.get("label_precision") is not None:
        label = (
            f" The `label` issue type flagged photos with precision "
            f"{d['label_precision']:.3f} and recall {d['label_recall']:.3f} of the flipped ones."
        )
    return (
        f"The head's predictions match the true class of {d['head_accuracy_true']:.1%} of the "
        f"photos (the given, partly wrong, class: {d['head_accuracy_given']:.1%}). The default "
        f"detector (`{d['detector']}`) ranks the {d['n_flipped']:,} flipped photos with AUROC "
        f"{d['auroc']:.3f}; {d['recall_at_n_flipped']:.1%} of its top {d['n_flipped']:,} are "
        f"flipped.{label} Flags per issue type: {flags or 'none'} (nothing but the flipped "
        "labels was planted: duplicate, outlier and corrupt flags are false alarms or the "
        "generator's look-alikes).\n"
    )


def _head_check_text(r: dict) -> str:
    rows = r.get("head_check") or []
    if not rows:
        return ""
    cells = "; ".join(
        f"weight decay {x['weight_decay']:g}: accuracy on the true classes "
        f"{x['head_accuracy_true']:.1%}, loss AUROC {x['auroc']:.3f}, recall "
        f"{x['recall_at_n_flipped']:.1%} in the top n_flipped"
        for x in rows
    )
    first, last = rows[0], rows[-1]
    verdict = (
        f" The weaker weight decay finds the flipped photos better (AUROC {first['auroc']:.3f} "
        f"-> {last['auroc']:.3f}): on these features the recipe limits the detection."
        if last["auroc"] > first["auroc"] + 0.01
        else " The weaker weight decay does not find them better: the features are the limit."
    )
    return (
        "The run's head is the built-in features head with the image-features recipe "
        "(engine/text_head.IMAGE_HEAD_RECIPE: 100 epochs, Adam, weight decay 1e-3; the text "
        "recipe's 1.5 was used for image features before, see 'Feature head recipe'). "
        "Retrained here on the run's cached features with other weight decays, the rest of "
        f"the recipe kept: {cells}.{verdict}\n"
    )


def _dashboard_text(r: dict) -> str:
    dash = r.get("dashboard")
    if not dash:
        return "Dashboard: not measured in this run (`--no-browser` or no Chromium).\n"
    loads = dash["loads"]
    first, rest = loads[0], loads[1:]
    warm = ""
    if rest:
        warm = (
            f"; warm: {np.median([x['map_drawn_s'] for x in rest]):.1f} s and "
            f"{np.median([x['first_card_s'] for x in rest]):.1f} s"
        )
    raster = ", over a raster of all photos" if first["raster"] == "true" else ""
    return (
        f"Dashboard: `ogad dashboard` answered after {dash['serve_seconds']:.1f} s; a page load "
        f"in headless Chromium on the same cores drew the map in {first['map_drawn_s']:.1f} s "
        f"({first['points']} points{raster}) "
        f"and showed the first card in {first['first_card_s']:.1f} s (cold){warm}; the "
        f"server's peak RSS {dash['server_peak_rss_gib']:.2f} GiB.\n"
    )


def _why_text(r: dict) -> str:
    """Why this encoder: the candidates' forward speed and random-init feature scale."""
    cands = r.get("candidates") or []
    if not cands:
        return ""
    cells = ", ".join(
        f"{c['encoder']} {c['forward_per_s']:,.0f} images/s (mean |feature| "
        f"{c['mean_abs_feature']:.0e})"
        for c in cands
    )
    return (
        f"Why `{r['encoder']}`: the forward alone at 224 px with torchvision's random init, "
        f"measured here on 64 of the photos: {cells}. The encoder path takes the weights' own "
        "transforms (resize 256, crop 224): `ogad compute` has no smaller input size for "
        "`--encoder`, so the cheapest network is the lever. mobilenet_v3_small's random-init "
        "features are about 1e-9 (its BatchNorm statistics are the initial 0 / 1); under the "
        "head's former absolute standardisation floor (1e-6) the head could not learn from "
        "them (a 2,000-photo run kept the loss at ln 100 for all 100 epochs); the floor is now "
        "relative to the features' scale (engine/text_head.std_with_floor), but the rehearsal "
        "kept the network it was first measured with." + _threads_text(r, cands)
    )


def _threads_text(r: dict, cands: list[dict]) -> str:
    chosen = next((c for c in cands if "forward_per_s_all_threads" in c), None)
    threads = r["compute"].get("omp_num_threads")
    if chosen is None or not threads:
        return "\n"
    return (
        f" The run used `OMP_NUM_THREADS={threads}` (shared cores): the forward ran "
        f"{chosen['forward_per_s']:,.0f} images/s with "
        f"{threads} thread and {chosen['forward_per_s_all_threads']:,.0f} with {r['cpus']} "
        f"(load {chosen['load_1min']:.1f}).\n"
    )


def _memory_text(r: dict) -> str:
    """The whole tree's peak against the goal, the steps that set it, and how it came down
    (the history: measured on earlier runs of this benchmark, 2026-12-06)."""
    c = r["compute"]
    steps = {k: v["peak_pss_gib"] for k, v in c["steps"].items() if "peak_pss_gib" in v}
    top = sorted(steps.items(), key=lambda kv: -kv[1])[:3]
    met = "met" if c["peak_pss_gib"] <= 3.0 else "**not met**"
    return (
        f"**Memory** (goal <= 3 GiB for the whole tree, {met}): this run peaked at "
        f"**{c['peak_pss_gib']:.2f} GiB PSS** ({c['peak_rss_gib']:.2f} GiB as a plain sum of "
        "RSS); the highest steps (peak PSS column above, sampled every second): "
        + ", ".join(f"{k} {v:.2f} GiB" for k, v in top)
        + ". How it came down (earlier runs on the same photos): the first 100,000-photo "
        "run (11:15 UTC) peaked at 7.78 GiB PSS in the issue step, whose `duplicate` type "
        "gathered its PCA candidates in fixed 65,536-row chunks (about 6 GiB); it chunks by "
        "bytes now (`ogad issues` alone: 7.35 -> 2.21 GB max RSS, results bit-identical). "
        "After that fix, `ogad compute` resumed after the encoder step (train to issues in one "
        "process) still reached 3.27 GiB max RSS: the one process kept what each step loaded, "
        "the encoder features (0.41 GiB, the model step's tensor) through the file steps, and "
        "0.76 GiB of cyclic garbage after the encoder step until the collector ran. `compute` "
        "now runs the file steps (scores, map, evidence, issues) on the run's files alone, so "
        "the features, model and weights are freed before them, and collects garbage (`gc`, "
        "glibc's `malloc_trim`) after every step. Meanwhile the outlier type became a "
        "Mahalanobis distance whose fit held (N, d) float64 copies of the unit embeddings "
        "(5.62 GiB at 100,000 x 1,024, measured alone); it sums X^T X and (X^2)^T (X^2) in "
        "row chunks now (space/covariance.py: 1.29 GiB, 3.8x faster, distances within 1e-12, "
        "the same 1,176 flags).\n"
    )


def docs_section(r: dict) -> str:
    """The section of docs/benchmarks.md."""
    c, lim = r["compute"], r["limits"]
    enc = c["steps"].get("encode", {})
    threads = f" --threads {c['omp_num_threads']}" if c.get("omp_num_threads") else ""
    return "\n".join(
        [
            TITLE + "\n",
            f"`python -m benchmarks.bench_rehearsal --n {r['n']} --out DIR --sample "
            f"{lim['sample']}{threads} --docs` — {r['n']:,} "
            "synthetic photos (JPEG, sides 128-256 px, random aspect, "
            f"{r['dataset_gib']:.1f} GiB; 100 classes told apart by colour, stripes and a disc; "
            "5% filed under a wrong class, the truth kept outside the ImageFolder), through the "
            f"real CLI: `ogad compute --data imagefolder:DIR/images --encoder "
            f"torchvision:{r['encoder']} --weights FILE --proj-dim "
            f"{c['dims'].get('proj_dim')} --workers {r['workers']}` (a random-init weights file "
            "saved from torchvision's own initialisation: no pretrained weights on this "
            "machine; the speed does not depend on the values), then `ogad dashboard` loaded in "
            f"headless Chromium. **Measured** on {r['cpus']} CPU cores (shared with other "
            "work; the load average says how much): load average (1 min) during the run "
            f"{c['load_1min_mean']:.1f} on average, {c['load_1min_max']:.1f} at most "
            f"({c['load_samples']} samples, every 10 s); the limits were measured just before, "
            f"at load {lim['load_1min']:.1f}. Finished {c['finished'][:16].replace('T', ' ')} "
            "UTC.\n",
            f"**Whole run: {c['wall_seconds'] / 60:.1f} min** of wall time, "
            f"{c['cpu_seconds'] / 60:.1f} CPU minutes; peak memory of the whole process tree "
            f"(ogad and its DataLoader workers) {c['peak_pss_gib']:.2f} GiB PSS "
            f"({c['peak_rss_gib']:.2f} GiB as a plain sum of RSS, which counts pages shared "
            "after fork once per process; goal <= 3 GiB). The encoder pass, a step of its own "
            f"in the manifest: {enc.get('images_per_s', 0):,.0f} images/s against the plain "
            f"torchvision loop's {lim['plain_loop_per_s']:,.0f} (goal >= 0.8x). Other measured "
            f"limits: decode + the weights' transforms {lim['decode_transform_per_s']:,.0f} "
            f"images/s, the forward alone {lim['forward_per_s']:,.0f} images/s (batches of 64, "
            f"torch threads: {lim['torch_threads']}).\n",
            _why_text(r),
            _stage_table(r),
            _memory_text(r),
            _detection_text(r["detection"]),
            _head_check_text(r),
            _dashboard_text(r),
            "**Extrapolated to ImageNet's 1,281,167 photos — projections, not measurements**: "
            "each stage's measured seconds per row times 1.28M (linear; the map fits at most a "
            "100,000-row subsample, so it is overestimated); on N Ray nodes like this machine "
            "the encoder pass and the gradients divide by N (`--engine ray` runs both on the "
            "workers) while the data scan, thumbnails, head, scores, map, evidence and issues "
            "stay on the driver; on one 8-GPU node no GPU figure exists (no GPU was lent, and "
            "docs/benchmarks.md has no measured GPU row to project from), so the encoder row "
            "is the CPU side's bound only: decode + transforms at this machine's measured rate "
            "per core, on the cores the node is assumed to have.\n",
            _projection_table(r),
            _hundred_k_text(r),
        ]
    )


def _hundred_k_text(r: dict) -> str:
    """What 100,000 photos (the issue's size) would take here, when the run measured fewer."""
    n, c = r["n"], r["compute"]
    if n >= 100_000:
        return ""
    scale = 100_000 / n
    return (
        f"The issue's 100,000 photos were not run: at this run's pace under the shared load, "
        f"100,000 would take about {c['wall_seconds'] * scale / 60:,.0f} min (projected, "
        f"linear in rows); its {c['cpu_seconds'] * scale / 60:,.0f} CPU minutes on {r['cpus']} "
        f"otherwise idle cores would be about {c['cpu_seconds'] * scale / 60 / r['cpus']:,.0f} "
        "min (projected lower bound). Peak memory at 100,000 is not measured.\n"
    )


if __name__ == "__main__":
    main()
