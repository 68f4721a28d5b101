"""Peak memory of streaming gradient extraction into the run's gradients.npy.

    python -m benchmarks.bench_memory [--rows 50000] [--hidden 512] [--classes 10]

Builds an MLP whose last layer has ``hidden`` inputs and ``classes`` outputs, so one gradient
has classes * (hidden + 1) entries (10 * 513 = 5,130 by default), computes the gradients of
``rows`` samples into a :class:`GradientStore` on disk in a fresh child process, and reports
the child's peak RSS next to the size of the gradient matrix. Inputs are generated batch by
batch by a lazy dataset, so the figure is the extraction's own footprint.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(rows: int, hidden: int, classes: int, features: int, path: str) -> None:
    import torch
    from torch.utils.data import Dataset

    from ogad_core import compute_gradients
    from ogad_core.engine.models import MLP
    from ogad_core.run.store import GradientStore

    class Lazy(Dataset):
        def __len__(self) -> int:
            return rows

        def __getitem__(self, i: int):
            g = torch.Generator().manual_seed(i)
            return torch.randn(features, generator=g), int(i % classes)

    torch.manual_seed(0)
    model = MLP(in_features=features, n_classes=classes, hidden=(hidden,))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = GradientStore(
        Path(path), n_rows=rows, n_cols=classes * (hidden + 1), fingerprint="bench"
    )
    t0 = time.perf_counter()
    compute_gradients(model, Lazy(), "last", batch_size=1024, out=store, progress=False)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_kib": peak, "rss_before_kib": base, "seconds": seconds}))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a tmpdir)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        _child(a.rows, a.hidden, a.classes, a.features, a.path)
        return {}
    cols = a.classes * (a.hidden + 1)
    matrix_bytes = a.rows * cols * 4
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        path = Path(tmp) / "gradients.npy"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_memory",
                "--child",
                "--rows",
                str(a.rows),
                "--hidden",
                str(a.hidden),
                "--classes",
                str(a.classes),
                "--features",
                str(a.features),
                "--path",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        on_disk = path.stat().st_size
    peak = child["peak_rss_kib"] * 1024
    result = {
        "rows": a.rows,
        "cols": cols,
        "matrix_bytes": matrix_bytes,
        "file_bytes": on_disk,
        "peak_rss_bytes": peak,
        "rss_before_extraction_bytes": child["rss_before_kib"] * 1024,
        "peak_rss_over_matrix": peak / matrix_bytes,
        "seconds": child["seconds"],
        "rows_per_second": a.rows / child["seconds"],
    }
    gib = 2**30
    print(f"gradient matrix {a.rows} x {cols} float32 = {matrix_bytes / gib:.2f} GiB")
    print(
        f"peak RSS of the extracting process   = {peak / gib:.2f} GiB "
        f"({result['peak_rss_over_matrix']:.2f} x the matrix; target well under 2x)"
    )
    print(f"extraction: {child['seconds']:.1f} s, {result['rows_per_second']:.0f} rows/s")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
