"""Cost of the outlier type on an encoder's embeddings at scale, with and without the bulk's
second search (docs/benchmarks.md "Text outliers: a group from another source, measured
against the bulk")::

    OMP_NUM_THREADS=1 python -m benchmarks.bench_text_outliers --rows 1000000 [--before]

N synthetic 384-d embeddings (one layer, all-MiniLM-L6-v2's width: 50 Gaussian clusters, no
outliers planted), the outlier type alone (``OutlierIssue(spaces=("embeddings",))``); prints
wall and CPU seconds, the load average and the flags (a clean run's). ``--before``: the former
score (the first search's distances; no second search among the bulk).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: width of the synthetic embeddings (all-MiniLM-L6-v2's last layer) and their clusters
WIDTH, CLUSTERS = 384, 50


def synthetic_context(n: int, seed: int = 0) -> Any:
    """An IssueContext of ``n`` text rows with (n, WIDTH) float32 clustered embeddings."""
    from ogad_core.issues.base import IssueContext

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, WIDTH)).astype(np.float32)
    emb = centres[rng.integers(0, CLUSTERS, n)]
    emb += 1.5 * rng.normal(size=(n, WIDTH)).astype(np.float32)
    samples = pd.DataFrame({"sample_id": np.arange(n), "label": rng.integers(0, 2, n)})
    return IssueContext(
        samples=samples, label_names=["a", "b"], kind="text", embeddings=emb, seed=seed
    )


def measure(n: int, before: bool = False) -> dict[str, Any]:
    """Wall and CPU seconds of the outlier type on ``n`` synthetic embedding rows."""
    import ogad_core.issues.outlier as om

    context = synthetic_context(n)
    saved = om._past_the_group
    if before:  # the former score: the first search's mean distances
        om._past_the_group = lambda c, name, first, nearest, reference: first
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        fitted = om.OutlierIssue(spaces=("embeddings",)).fit(context)
    finally:
        om._past_the_group = saved
    return {
        "rows": n,
        "score": "before" if before else "bulk",
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "load_start": round(load, 1),
        "load_end": round(os.getloadavg()[0], 1),
        "flagged": int(fitted.flagged_.sum()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--before", action="store_true", help="the former score (no bulk)")
    p.add_argument("--out", type=Path, default=None, help="also write the result (JSON) here")
    a = p.parse_args()
    result = measure(a.rows, a.before)
    print(json.dumps(result), flush=True)
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
