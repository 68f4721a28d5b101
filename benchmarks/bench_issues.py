"""Issue types on injected mixes, side by side with cleanlab Datalab on the same run.

    nice -n 10 python -m benchmarks.bench_issues [--seeds 0,1,2] [--data images,text]
        [--tmp-dir DIR] [--out benchmarks/results/issues.json]

For each seed: the mixes of :mod:`benchmarks.issue_mixes` (mnist5k as an ImageFolder, Rotten
Tomatoes as a CSV) go through ``ogad compute`` (the issues step included); then, per injected
kind, the recall in its issue type's top-K (K = the number of samples injected for that type;
duplicates count both members of a pair), the recall of the type's flag, and whether any type
flags it; duplicate pairs whose members land in one set (ours) or are both in Datalab's
near-duplicate sets; the precision of "All" at K = every injected sample (the copied originals
of the duplicate pairs count as injected: they belong to a set); the label score's AUROC for the
flipped labels (the label type is the default detector's ranking, so it is unchanged by
construction). cleanlab's Datalab runs on the same run: the model's probabilities rebuilt from
samples.parquet (``pseudo_pred_probs``), the same features ogad's outlier type uses (the
encoder's embeddings on text, the model's features on images), its label / outlier /
near_duplicate issue types with their defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.issue_mixes import IMAGE_KINDS, TEXT_KINDS, image_mix, text_mix

RESULTS = Path(__file__).resolve().parent / "results" / "issues.json"
DATALAB_TYPES = {"label": "label", "duplicate": "near_duplicate", "outlier": "outlier"}


def _run_mix(kind: str, seed: int, tmp: Path) -> tuple[Path, pd.DataFrame]:
    """Write the mix, run ``ogad compute`` on it; (run dir, truth in sample order)."""
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute
    from ogad_core.run.rundir import RunDir

    run = tmp / f"{kind}_run_{seed}"
    if kind == "images":
        truth = image_mix(tmp / f"images_{seed}", seed)
        spec = f"imagefolder:{tmp / f'images_{seed}'}"
    else:
        from ogad_core.data import load_data

        base = load_data("rotten-tomatoes", run_dir=tmp / "rt", limit=3000, seed=0)
        names = base.label_names
        path = tmp / f"text_{seed}.csv"
        truth = text_mix(path, list(base.train.inputs), [names[i] for i in base.train.labels], seed)
        spec = f"csv:{path}"
    compute(ComputeConfig(data=spec, seed=seed, device="cpu"), run, progress=False)
    rd = RunDir(run)
    samples = rd.read_samples()
    if kind == "images":
        truth = truth.set_index("path").loc[[str(rd.resolve_ref(r)) for r in samples["ref"]]]
    truth = truth.reset_index()
    return run, truth


def _recalls(
    scores: dict[str, np.ndarray], flags: dict[str, np.ndarray], truth: pd.DataFrame, kinds: dict
) -> dict[str, dict[str, float]]:
    """Per injected kind: recall in its type's top-K, of the type's flag, of any type's flag."""
    kind = truth["kind"].to_numpy()
    expected = truth["expected"].to_numpy()
    any_flag = np.zeros(len(truth), dtype=bool)
    for f in flags.values():
        any_flag |= f
    out = {}
    for name, (_, issue) in kinds.items():
        rows = np.flatnonzero(kind == name)
        if issue not in scores or not len(rows):
            continue
        k = int((expected == issue).sum()) * (2 if issue == "duplicate" else 1)
        top = np.argsort(-scores[issue], kind="stable")[:k]
        out[name] = {
            "n": len(rows),
            "top_k": float(np.isin(rows, top).mean()),
            "flagged": float(flags[issue][rows].mean()),
            "any": float(any_flag[rows].mean()),
        }
    return out


def _pairs_recovered(set_ids: np.ndarray, truth: pd.DataFrame) -> float:
    """Share of injected duplicate pairs whose members share one set id (>= 0)."""
    key = truth["set_key"].to_numpy()
    is_dup = truth["kind"].astype(str).str.startswith("dup_").to_numpy()
    injected = np.unique(key[is_dup & (key >= 0)])
    hits = []
    for k in injected:
        ids = set_ids[key == k]
        hits.append(len(ids) >= 2 and ids[0] >= 0 and (ids == ids[0]).all())
    return float(np.mean(hits)) if hits else float("nan")


def _ours(run: Path, truth: pd.DataFrame, kinds: dict) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from ogad_core.issues.queue import all_queue
    from ogad_core.run.rundir import RunDir

    rd = RunDir(run)
    issues = rd.read_issues()
    scores, flags = {}, {}
    for name, part in issues.groupby("issue"):
        part = part.sort_values("sample_id")
        scores[str(name)] = part["score"].to_numpy()
        flags[str(name)] = part["flagged"].to_numpy(dtype=bool)
    dup = issues[issues["issue"] == "duplicate"].sort_values("sample_id")
    set_ids = dup["set_id"].fillna(-1).to_numpy(dtype=np.int64)
    bad = truth["kind"].to_numpy() != "clean"
    queue = all_queue(issues)["sample_id"].to_numpy()
    k_all = int(bad.sum())
    flipped = truth["kind"].to_numpy() == "flipped"
    clean = truth["kind"].to_numpy() == "clean"
    label_auroc = roc_auc_score(flipped[flipped | clean], scores["label"][flipped | clean])
    step = rd.load_manifest().steps["issues"]
    return {
        "kinds": _recalls(scores, flags, truth, kinds),
        "pairs_recovered": _pairs_recovered(set_ids, truth),
        "all_precision": float(bad[queue[:k_all]].mean()),
        "all_flagged": len(queue),
        "k_all": k_all,
        "label_auroc": float(label_auroc),
        "issues_seconds": step.seconds,
        "flagged": {n: int(f.sum()) for n, f in flags.items()},
    }


def _datalab(run: Path, truth: pd.DataFrame, kinds: dict) -> dict[str, Any]:
    """cleanlab Datalab's label / outlier / near_duplicate issues on the same run."""
    import cleanlab
    from cleanlab import Datalab

    from ogad_core.pipeline.issue_step import load_context
    from ogad_core.run.rundir import RunDir
    from ogad_core.scoring.target import pseudo_pred_probs

    rd = RunDir(run)
    ctx = load_context(rd, rd.load_manifest())
    features = ctx.embeddings if ctx.embeddings is not None else ctx.features
    labels, probs = pseudo_pred_probs(ctx.samples, len(ctx.label_names))
    started = time.process_time()
    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(
        features=np.asarray(features, dtype=np.float32),
        pred_probs=probs,
        issue_types={"label": {}, "outlier": {}, "near_duplicate": {}},
    )
    cpu = time.process_time() - started
    scores, flags = {}, {}
    for ours, theirs in DATALAB_TYPES.items():
        table = lab.get_issues(theirs)
        scores[ours] = -table[f"{theirs}_score"].to_numpy()  # theirs: lower = worse
        flags[ours] = table[f"is_{theirs}_issue"].to_numpy(dtype=bool)
    sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    set_ids = np.full(len(truth), -1, dtype=np.int64)
    flagged = flags["duplicate"]
    for i, members in enumerate(sets):  # a pair is recovered when each lists the other
        if flagged[i] and len(members):
            set_ids[i] = min(i, *map(int, members))
    return {
        "version": cleanlab.__version__,
        "kinds": _recalls(scores, flags, truth, kinds),
        "pairs_recovered": _pairs_recovered(set_ids, truth),
        "cpu_seconds": round(cpu, 2),
        "flagged": {n: int(f.sum()) for n, f in flags.items()},
    }


def run_seed(kind: str, seed: int, tmp: Path) -> dict[str, Any]:
    kinds = IMAGE_KINDS if kind == "images" else TEXT_KINDS
    started = time.perf_counter()
    run, truth = _run_mix(kind, seed, tmp)
    out = {"data": kind, "seed": seed, "n": len(truth), "ours": _ours(run, truth, kinds)}
    out["datalab"] = _datalab(run, truth, kinds)
    out["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps({k: out[k] for k in ("data", "seed", "n", "wall_seconds")}), flush=True)
    return out


def scale_run(n: int, tmp: Path) -> dict[str, Any]:
    """The issue pass (every built-in type, issues.parquet's table) on bench_evidence's
    synthetic last-layer gradients of ``n`` rows (features recovered from them; no input
    properties): wall and CPU seconds, to set beside bench_evidence's evidence build."""
    from benchmarks.bench_evidence import N_CLASSES, synthetic_run
    from ogad_core.issues.base import IssueContext
    from ogad_core.issues.features import CHUNK_ROWS, features_from_gradients
    from ogad_core.issues.table import fit_issue_types, issues_table
    from ogad_core.options import DEFAULT_ISSUE_TYPES

    grads, samples = synthetic_run(n, tmp)
    load_start = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    feats = np.concatenate(
        [
            features_from_gradients(np.asarray(grads[i : i + CHUNK_ROWS]), N_CLASSES)
            for i in range(0, n, CHUNK_ROWS)
        ]
    )
    features_s = time.perf_counter() - wall
    scores = pd.DataFrame({"sample_id": samples["sample_id"], "loss_score": samples["loss"]})
    context = IssueContext(
        samples=samples,
        label_names=[str(c) for c in range(N_CLASSES)],
        gradients=grads,
        features=feats,
        scores=scores,
        detector="loss",
    )
    per_type = {}
    fitted = []
    for name in DEFAULT_ISSUE_TYPES:
        started = time.perf_counter()
        fitted += fit_issue_types(context, [name])
        per_type[name] = round(time.perf_counter() - started, 1)
    table = issues_table(fitted, samples["sample_id"].to_numpy())
    return {
        "rows": n,
        "cols": int(grads.shape[1]),
        "features_s": round(features_s, 1),
        "per_type_s": per_type,
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "table_rows": len(table),
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }


def summary_table(results: list[dict[str, Any]]) -> str:
    """The docs' table: per data and kind, the mean over seeds of ours and Datalab's recall."""
    rows = [
        "| data | kind (issue type) | n | ours: top-K | ours: flag | any type "
        "| Datalab: top-K | Datalab: flag |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # noqa: E501
    for data in ("images", "text"):
        part = [r for r in results if r["data"] == data]
        if not part:
            continue
        kinds = IMAGE_KINDS if data == "images" else TEXT_KINDS
        for name, (n, issue) in kinds.items():
            ours = [r["ours"]["kinds"][name] for r in part if name in r["ours"]["kinds"]]
            theirs = [r["datalab"]["kinds"].get(name) for r in part]
            theirs = [t for t in theirs if t]

            def m(xs: list[dict], key: str) -> str:
                return f"{np.mean([x[key] for x in xs]):.2f}" if xs else "-"

            rows.append(
                f"| {data} | {name} ({issue}) | {n} | {m(ours, 'top_k')} | {m(ours, 'flagged')} "
                f"| {m(ours, 'any')} | {m(theirs, 'top_k')} | {m(theirs, 'flagged')} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--data", default="images,text")
    p.add_argument("--tmp-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--scale", type=int, default=0, help="only the issue pass at N rows")
    a = p.parse_args(argv)
    tmp = a.tmp_dir or Path(tempfile.mkdtemp(prefix="ogad_issues_"))
    tmp.mkdir(parents=True, exist_ok=True)
    if a.scale:
        result = scale_run(a.scale, tmp)
        print(json.dumps(result))
        out = a.out.with_name(a.out.stem + "_scale.json")
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return 0
    results = [
        run_seed(kind, int(seed), tmp) for kind in a.data.split(",") for seed in a.seeds.split(",")
    ]
    record = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": list(os.getloadavg()),
        "results": results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record, indent=1, default=float) + "\n", encoding="utf-8")
    print(summary_table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
