"""Speed of the outlier detectors and of the gradient map on gradient-sized matrices.

    python -m benchmarks.bench_detectors [--sizes 5000,50000,200000] [--dim 5130]
                                         [--out benchmarks/results/detectors.json]

The gradient matrix (float32; 200,000 x 5,130 is 4.1 GB) is written as an ``.npy`` memmap under
``--tmp-dir`` in chunks and reused by later runs; every detector reads it as a memmap, as
``ogad score`` does. For each size the table shows wall time, rows/s and the peak growth of the
process's anonymous (non-file) memory while the detector ran, which shows that the memmap is
not copied whole. LOF (brute-force neighbours, quadratic in N) runs on a seeded subsample of
``--lof-max-rows`` rows above that size, and says so. The map (PCA + UMAP) is timed at the sizes
in ``--map-sizes``; a size above ``--map-always-upto`` whose time, extrapolated (N log N) from
the largest one measured, would exceed ``--map-budget-s`` is skipped and reported as such.
This measures speed only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ogad_core.scoring.detectors import suspicion_scores  # noqa: E402
from ogad_core.scoring.gradient_map import gradient_map  # noqa: E402
from ogad_core.scoring.metrics import detection_metrics  # noqa: E402

DETECTORS = ("iforest", "l2", "l1", "lof", "loss", "selfconf")
OUTLIER_RATE = 0.05
GEN_ROWS = 5000


def _anon_mib() -> float:
    """Resident anonymous memory of this process in MiB (Linux), else NaN."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class PeakAnon:
    """Samples RssAnon every 20 ms; ``peak_growth_mib`` is the peak above the start value."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._start = _anon_mib()
        self._peak = self._start
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, _anon_mib())

    def __enter__(self) -> PeakAnon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, _anon_mib())

    @property
    def peak_growth_mib(self) -> float:
        return self._peak - self._start


def make_gradients(n: int, dim: int, tmp_dir: Path) -> tuple[np.memmap, np.ndarray]:
    """A seeded (n, dim) float32 memmap: small Gaussian rows, 5% rows 4x larger and shifted.

    Returns the read-only memmap and the (n,) bool outlier flags. Reuses a complete file.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / f"gradients_{n}x{dim}.npy"
    done = path.with_suffix(".done")
    rng = np.random.default_rng(12345)
    outlier = rng.random(n) < OUTLIER_RATE
    if not (path.is_file() and done.is_file()):
        done.unlink(missing_ok=True)
        started = time.perf_counter()
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
        shift = rng.normal(size=dim).astype(np.float32) * 0.02
        for start in range(0, n, GEN_ROWS):
            stop = min(n, start + GEN_ROWS)
            block = rng.standard_normal((stop - start, dim), dtype=np.float32) * 0.01
            rows = outlier[start:stop]
            block[rows] = block[rows] * 4.0 + shift
            mm[start:stop] = block
        mm.flush()
        del mm
        done.touch()
        print(
            f"  wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
    return np.load(path, mmap_mode="r"), outlier


def bench_detectors(
    X: np.memmap, outlier: np.ndarray, detectors: list[str], lof_max_rows: int
) -> list[dict[str, Any]]:
    n = X.shape[0]
    rng = np.random.default_rng(0)
    loss = rng.exponential(size=n) + 2.0 * outlier
    samples = pd.DataFrame(
        {"sample_id": np.arange(n), "label": rng.integers(0, 10, n), "loss": loss}
    )
    results = []
    for name in detectors:
        rows = np.arange(n)
        note = ""
        if name == "lof" and n > lof_max_rows:
            rows = np.sort(rng.choice(n, size=lof_max_rows, replace=False))
            note = f"subsample of {lof_max_rows:,} rows (brute-force LOF is quadratic in N)"
        data = X if rows.size == n else np.asarray(X[rows])
        table = samples if rows.size == n else samples.iloc[rows].reset_index(drop=True)
        with PeakAnon() as mem:
            started = time.perf_counter()
            scores = suspicion_scores(name, data, table, seed=0)
            seconds = time.perf_counter() - started
        auroc = detection_metrics(scores, outlier[rows])["auroc"]
        results.append(
            {
                "size": n,
                "detector": name,
                "rows": int(rows.size),
                "seconds": round(seconds, 4),
                "rows_per_s": round(rows.size / seconds, 1) if seconds > 0 else None,
                "peak_anon_growth_mib": round(mem.peak_growth_mib, 1),
                "auroc_planted": round(auroc, 4),
                "note": note,
            }
        )
        r = results[-1]
        print(
            f"  {name:9s} {r['rows']:>8,} rows {seconds:9.2f} s "
            f"{r['rows_per_s'] or float('inf'):>12,.0f} rows/s "
            f"peak +{r['peak_anon_growth_mib']:7.1f} MiB  AUROC {auroc:.3f}  {note}",
            flush=True,
        )
    return results


def bench_map(
    X: np.memmap, budget_s: float, always_upto: int, previous: list[dict[str, Any]]
) -> dict[str, Any]:
    n = X.shape[0]
    measured = [m for m in previous if m.get("seconds")]
    if measured and n > always_upto:
        ref = max(measured, key=lambda m: m["size"])
        estimate = ref["seconds"] * (n / ref["size"]) * np.log(n) / np.log(ref["size"])
        if estimate > budget_s:
            note = (
                f"skipped: about {estimate / 60:.0f} min extrapolated from "
                f"{ref['size']:,} rows (budget {budget_s / 60:.0f} min)"
            )
            print(f"  map       {n:>8,} rows {note}", flush=True)
            return {"size": n, "seconds": None, "rows_per_s": None, "note": note}
    with PeakAnon() as mem:
        started = time.perf_counter()
        gradient_map(X, seed=0)
        seconds = time.perf_counter() - started
    print(
        f"  map       {n:>8,} rows {seconds:9.2f} s {n / seconds:>12,.0f} rows/s "
        f"peak +{mem.peak_growth_mib:7.1f} MiB",
        flush=True,
    )
    return {
        "size": n,
        "seconds": round(seconds, 2),
        "rows_per_s": round(n / seconds, 1),
        "peak_anon_growth_mib": round(mem.peak_growth_mib, 1),
        "note": "",
    }


def _ints(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=_ints,
        default=[5000, 50000, 200000],
        help="row counts, comma-separated (default 5000,50000,200000)",
    )
    parser.add_argument("--dim", type=int, default=5130, help="columns (default 5130)")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--lof-max-rows", type=int, default=10000)
    parser.add_argument(
        "--map-sizes",
        type=_ints,
        default=None,
        help="sizes for the map (default: every size in --sizes)",
    )
    parser.add_argument(
        "--map-budget-s",
        type=float,
        default=600.0,
        help="skip a map size above --map-always-upto expected to take longer",
    )
    parser.add_argument(
        "--map-always-upto",
        type=int,
        default=50000,
        help="map sizes up to this are always measured (default 50000)",
    )
    parser.add_argument("--tmp-dir", type=Path, default=Path("/tmp/ogad_bench"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/detectors.json")
    args = parser.parse_args(argv)
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    map_sizes = args.map_sizes if args.map_sizes is not None else args.sizes

    import sklearn

    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "sklearn": sklearn.__version__,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
        "dim": args.dim,
        "dtype": "float32 memmap",
        "detectors": [],
        "map": [],
    }
    started = time.perf_counter()
    warm = np.random.default_rng(0).normal(size=(300, 60)).astype(np.float32)
    gradient_map(warm)  # import umap and compile its numba code once
    report["map_warmup_seconds"] = round(time.perf_counter() - started, 1)
    import umap

    report["machine"]["umap"] = umap.__version__
    print(
        f"map warm-up (umap import, numba compile, 300-row map): {report['map_warmup_seconds']} s",
        flush=True,
    )

    for n in sorted(args.sizes):
        print(f"{n:,} x {args.dim:,} float32:", flush=True)
        X, outlier = make_gradients(n, args.dim, args.tmp_dir)
        report["detectors"] += bench_detectors(X, outlier, detectors, args.lof_max_rows)
        if n in map_sizes:
            report["map"].append(
                bench_map(X, args.map_budget_s, args.map_always_upto, report["map"])
            )
        del X

    print("\nrows/s (seconds)")
    sizes = sorted(args.sizes)
    header = f"{'detector':10s}" + "".join(f"{n:>24,}" for n in sizes)
    print(header)
    for name in detectors + ["map"]:
        cells = []
        for n in sizes:
            pool = report["map"] if name == "map" else report["detectors"]
            hit = [r for r in pool if r["size"] == n and (name == "map" or r["detector"] == name)]
            if not hit or hit[0]["seconds"] is None:
                cells.append(f"{'skipped' if hit else '-':>24}")
                continue
            r = hit[0]
            star = "*" if r.get("note") else " "
            cells.append(f"{r['rows_per_s']:>13,.0f} ({r['seconds']:7.2f}s){star}")
        print(f"{name:10s}" + "".join(cells))
    print("* LOF on a subsample; see the notes above and in the JSON.")
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print(
        f"load average (1, 5, 15 min) at start {report['machine']['load_average_at_start']}, "
        f"at end {report['machine']['load_average_at_end']} on {os.cpu_count()} CPUs"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
