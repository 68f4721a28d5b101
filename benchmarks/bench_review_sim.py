"""The review session, simulated: review target, re-ranking, suggested labels, default detector.

    python -m benchmarks.bench_review_sim [--data mnist5k,digits,rotten-tomatoes] [--noise 0.1]
        [--estimate-noise 0.05,0.1,0.2] [--work /tmp/ogad_review_sim] [--timing-rows 50000]
        [--extra-seeds 1,2]

Real runs (``ogad compute --data D --noise R``, built under ``--work`` unless already there;
rotten-tomatoes from the offline sample, ``OGAD_RT_SOURCE=sample``). A simulated reviewer works
down the queue and answers from ``is_flipped``: Confirm for a flipped sample (bad), Reject for a
clean one (good). Measured:

1. *Re-ranking*: flipped samples among the first 100 / 200 / n_flipped reviews, in the
   detector's static order vs re-ranked by :class:`ogad_core.scoring.rerank.Reranker` refit
   after every decision or every k decisions; the same on runs of ``--extra-seeds``; and the
   *ceiling* of the re-ranker's features (models trained on the known flips, cross-validated:
   a bound, never a review order).
2. *Suggestions*: how often :class:`ogad_core.scoring.explain.Explainer`'s suggested label is the
   true label (``clean_label``) on the flipped samples, next to the model's prediction alone;
   and how often it keeps the given label on clean samples.
3. *Review target*: :func:`ogad_core.scoring.target.estimate_review_target`'s noise rate vs the
   injected rate, at several rates.
4. *Detectors*: AUROC, AP and recall@n_flipped of every detector of the run and of rank
   ensembles, to choose the default detector (``DEFAULT_DETECTOR``).
5. *Speed*: Reranker and Explainer at ``--timing-rows`` synthetic rows (last-layer layout).

Writes benchmarks/results/review_sim.json; ``docs_section`` renders it for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ogad_core.scoring.explain import Explainer
from ogad_core.scoring.rerank import Reranker, gaussian_ranks, queue_ranks
from ogad_core.scoring.target import estimate_review_target

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "review_sim.json"
ENSEMBLES = (("loss", "l2"), ("loss", "l1"), ("loss", "l2", "lof"), ("loss", "lof"))
#: the ceiling study's pool: this many times n_flipped of the static order's top
CEILING_POOL = 2.5


# ---- runs -----------------------------------------------------------------------------------


def run_dir(work: Path, data: str, noise: float, seed: int, epochs: int | None = None) -> Path:
    """The run directory of one (data, noise, seed), built with ``ogad compute`` if missing;
    ``epochs`` trains that many epochs in place of the built-in recipe's."""
    path = work / (f"{data}_n{noise:g}_s{seed}" + ("" if epochs is None else f"_e{epochs}"))
    if all((path / f).is_file() for f in ("samples.parquet", "gradients.npy", "scores.parquet")):
        return path  # scored (the map is not needed here)
    cmd = [sys.executable, "-m", "ogad_core.cli", "compute", "--data", data, "--noise"]
    cmd += [str(noise), "--seed", str(seed), "--run-dir", str(path), "--quiet"]
    cmd += [] if epochs is None else ["--epochs", str(epochs)]
    env = {**os.environ, "OGAD_RT_SOURCE": "sample"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    print("building:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, env=env)
    return path


def load_run(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(samples, scores, gradients memmap) of a run, both tables in sample_id order."""
    samples = pd.read_parquet(path / "samples.parquet").sort_values("sample_id")
    scores = pd.read_parquet(path / "scores.parquet").set_index("sample_id")
    scores = scores.reindex(samples["sample_id"]).reset_index()
    return samples.reset_index(drop=True), scores, np.load(path / "gradients.npy", mmap_mode="r")


def test_accuracy(path: Path) -> float | None:
    """The run's held-out accuracy from its manifest (None when unknown)."""
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    value = (manifest.get("model") or {}).get("test_accuracy")
    return None if value is None else float(value)


# ---- 1. the simulated reviewer ---------------------------------------------------------------


def simulate(
    reranker: Reranker | None, base: np.ndarray, flipped: np.ndarray, every: int, budget: int
) -> np.ndarray:
    """(budget,) rows in review order; refit every ``every`` decisions (None = static order)."""
    order = np.empty(budget, dtype=np.int64)
    score = np.asarray(base, dtype=np.float64).copy()
    done = np.zeros(len(base), dtype=bool)
    for step in range(budget):
        row = int(np.argmax(np.where(done, -np.inf, score)))
        order[step], done[row] = row, True
        if reranker is not None and (step + 1) % every == 0:
            score = reranker.scores(order[: step + 1], flipped[order[: step + 1]])
    return order


def found(order: np.ndarray, flipped: np.ndarray, cutoffs: dict[str, int]) -> dict[str, int]:
    """Flipped samples among the first k reviews, for each named cutoff k."""
    return {name: int(flipped[order[:k]].sum()) for name, k in cutoffs.items()}


def rerank_study(
    grads: np.ndarray,
    scores: pd.DataFrame,
    flipped: np.ndarray,
    detector: str,
    refits: list[int],
    explainer: Explainer,
) -> dict[str, Any]:
    """Static vs re-ranked flipped-found counts for one detector of one run.

    Two re-rankers: on the PCA'd gradients and the score (``Reranker``), and with the
    explainer's evidence too (``Reranker.with_evidence``: margin, neighbour agreement, loss).
    """
    base = scores[f"{detector}_score"].to_numpy(dtype=np.float64)
    n_flipped = int(flipped.sum())
    budget = min(len(base), max(200, n_flipped))
    cutoffs = {"first_100": 100, "first_200": 200, "first_n_flipped": n_flipped}
    cutoffs = {k: min(v, budget) for k, v in cutoffs.items()}
    ideal = {k: min(v, n_flipped) for k, v in cutoffs.items()}
    static = simulate(None, base, flipped, 1, budget)
    rows = [{"order": "ideal", **ideal}, {"order": "static", **found(static, flipped, cutoffs)}]
    builders = {
        "gradients": lambda: Reranker(grads, base),
        "gradients+evidence": lambda: Reranker.with_evidence(grads, base, explainer),
    }
    for name, build in builders.items():
        reranker = build()
        for every in refits:
            t0 = time.perf_counter()
            order = simulate(reranker, base, flipped, every, budget)
            seconds = time.perf_counter() - t0
            rows.append(
                {
                    "order": f"re-ranked ({name}), refit every {every}",
                    **found(order, flipped, cutoffs),
                    "ms_per_refit": 1000 * seconds / max(1, budget // every),
                }
            )
    # the ceiling of the dashboard's feature table (the explainer's evidence joined)
    ceiling = ceiling_study(Reranker.with_evidence(grads, base, explainer).features, base, flipped)
    return {
        "detector": detector,
        "n_flipped": n_flipped,
        "cutoffs": cutoffs,
        "rows": rows,
        "ceiling": ceiling,
    }


def ceiling_study(
    features: np.ndarray, base: np.ndarray, flipped: np.ndarray, seeds: int = 3
) -> dict[str, Any] | None:
    """How far any model on the re-ranker's (N, F) ``features`` could go: NOT a review order.

    Models trained on the TRUE labels (``is_flipped``) of the static order's top
    ``CEILING_POOL`` x n_flipped samples, 5-fold cross-validated (each sample scored by a model
    that never saw it, 4/5 of the pool as training labels, far more than a reviewer gives);
    the count is the flipped samples among the pool's top n_flipped by that out-of-fold
    score, one per seed of the folds. None when the pool has under 5 of either class.
    """
    n_flipped = int(flipped.sum())
    pool = np.argsort(-base, kind="stable")[: min(len(base), int(CEILING_POOL * n_flipped))]
    y = flipped[pool]
    if min(int(y.sum()), int((~y).sum())) < 5:
        return None
    models = {
        "logistic": LogisticRegression(C=1.0, max_iter=1000),
        "boosting": HistGradientBoostingClassifier(max_depth=3, random_state=0),
    }
    out: dict[str, Any] = {"pool": len(pool), "flipped_in_pool": int(y.sum())}
    for name, model in models.items():
        counts = []
        for seed in range(seeds):
            folds = StratifiedKFold(5, shuffle=True, random_state=seed)
            proba = cross_val_predict(model, features[pool], y, cv=folds, method="predict_proba")
            top = np.argsort(-proba[:, 1], kind="stable")[:n_flipped]
            counts.append(int(y[top].sum()))
        out[name] = counts
    return out


def seed_study(
    work: Path, data: str, noise: float, seeds: list[int], detector: str, epochs: int | None = None
) -> list[dict[str, Any]]:
    """Static vs re-ranked (+evidence, refit every decision) flipped among the first
    n_flipped reviews on runs of other seeds (other noise draws and models), built if missing;
    ``epochs``: runs trained that many epochs instead of the built-in recipe's."""
    out = []
    for seed in seeds:
        path = run_dir(work, data, noise, seed, epochs)
        samples, scores, grads = load_run(path)
        flipped = samples["is_flipped"].to_numpy(dtype=bool)
        base = scores[f"{detector}_score"].to_numpy(dtype=np.float64)
        n_flipped = int(flipped.sum())
        budget = min(len(base), max(200, n_flipped))
        reranker = Reranker.with_evidence(grads, base, Explainer(grads, samples, scores))
        static = simulate(None, base, flipped, 1, budget)
        reranked = simulate(reranker, base, flipped, 1, budget)
        out.append(
            {
                "seed": seed,
                "n_flipped": n_flipped,
                "static": int(flipped[static[:n_flipped]].sum()),
                "re-ranked": int(flipped[reranked[:n_flipped]].sum()),
                "test_accuracy": test_accuracy(path),
            }
        )
    return out


def label_order_study(path: Path, truth: pd.DataFrame) -> dict[str, Any] | None:
    """The dashboard's Label issues queue on a run with issues.parquet, simulated: the flipped
    samples (``truth`` kind ``flipped``, sample order) among the first 100 / n_flipped reviews
    in the label type's detector's order (the queue before it followed the label type) and in
    the label type's order, each static and re-ranked as the dashboard does (+evidence, refit
    after every decision). The other injected samples (duplicates, outliers, corrupt) are
    answered Reject: the label queue is not where they are decided. None without a label type."""
    from dashboard.issue_view import load_issue_view

    iv = load_issue_view(path)
    samples, scores, grads = load_run(path)
    queue = None if iv is None else iv.label_queue(samples["sample_id"].to_numpy())
    if iv is None or queue is None or iv.label_detector is None:
        return None
    flipped = truth["kind"].to_numpy() == "flipped"
    n_flipped = int(flipped.sum())
    budget = min(len(samples), max(100, n_flipped))
    cutoffs = {"first_100": min(100, budget), "first_n_flipped": n_flipped}
    explainer = Explainer(grads, samples, scores)
    detector = scores[f"{iv.label_detector}_score"].to_numpy(float)
    label = np.nan_to_num(queue[0], nan=-np.inf)
    rows = []
    for name, base in ((f"{iv.label_detector} (detector)", detector), ("label type", label)):
        static = simulate(None, base, flipped, 1, budget)
        reranker = Reranker.with_evidence(grads, base, explainer)
        orders = [("static", static), ("re-ranked", simulate(reranker, base, flipped, 1, budget))]
        if name == "label type":  # as the dashboard: the other types' flags after the rest
            last = _Last(reranker, queue[2])
            orders.append(
                ("re-ranked, the other types' flags last", last.simulate(base, flipped, budget))
            )
        for order, found_order in orders:
            rows.append({"base": name, "order": order, **found(found_order, flipped, cutoffs)})
    return {"run": str(path), "n": len(samples), "n_flipped": n_flipped, "rows": rows}


class _Last:
    """A re-ranker whose scores put the (N,) ``last`` rows after every other row (the
    dashboard's Label issues queue keeps the samples only another issue type flags there)."""

    def __init__(self, reranker: Reranker, last: np.ndarray) -> None:
        self.reranker, self.last = reranker, np.asarray(last, dtype=bool)

    def scores(self, ids: np.ndarray, bad: np.ndarray) -> np.ndarray:
        found = self.reranker.scores(ids, bad)
        return np.where(self.last, found - (np.ptp(found) + 1.0), found)

    def simulate(self, base: np.ndarray, flipped: np.ndarray, budget: int) -> np.ndarray:
        """:func:`simulate` from ``base`` re-ranked this way after every decision (before 2 bad
        and 2 good decisions the re-ranker keeps the base, as the dashboard's static order)."""
        return simulate(self, base, flipped, 1, budget)  # type: ignore[arg-type]


def label_order_part(mixes: list[str]) -> dict[str, Any]:
    """:func:`label_order_study` on each ``{kind}_run_{seed}`` with its
    ``{kind}_truth_{seed}.parquet`` under each of ``mixes`` (the issue-type benchmark's kept
    runs, ``benchmarks.bench_issues``)."""
    from benchmarks.bench_issues import _in_sample_order
    from ogad_core.run.rundir import RunDir

    out: dict[str, Any] = {"load_average_at_start": [round(v, 2) for v in os.getloadavg()]}
    runs = []
    for mix in mixes:
        for truth_path in sorted(Path(mix).glob("*_truth_*.parquet")):
            kind, _, seed = truth_path.stem.partition("_truth_")
            run = Path(mix) / f"{kind}_run_{seed}"
            if not (run / "issues.parquet").is_file():
                continue
            print(f"== label order: {run}", flush=True)
            truth = _in_sample_order(kind, RunDir(run), pd.read_parquet(truth_path))
            study = label_order_study(run, truth)
            if study is not None:
                runs.append({"mix": Path(mix).name, "kind": kind, "seed": int(seed), **study})
    out["runs"] = runs
    out["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return out


# ---- 2. suggestions, 3. target, 4. detectors ------------------------------------------------


def suggestion_study(explainer: Explainer, samples: pd.DataFrame) -> dict[str, Any]:
    """Suggested label vs clean_label on flipped samples (and vs the given label on clean)."""
    t0 = time.perf_counter()
    labels, confidence = explainer.suggestions()
    seconds = time.perf_counter() - t0
    flipped = samples["is_flipped"].to_numpy(dtype=bool)
    clean = samples["clean_label"].to_numpy()
    given = samples["label"].to_numpy()
    pred = samples["pred"].to_numpy()
    return {
        "space": explainer.space_name,
        "accuracy_on_flipped": float((labels == clean)[flipped].mean()),
        "pred_accuracy_on_flipped": float((pred == clean)[flipped].mean()),
        "keeps_given_on_clean": float((labels == given)[~flipped].mean()),
        "mean_confidence_on_flipped": float(confidence[flipped].mean()),
        "seconds_all_rows": seconds,
    }


def target_study(
    samples: pd.DataFrame, scores: pd.DataFrame, detector: str, test_accuracy: float | None
) -> dict[str, Any]:
    """The estimated noise rate next to the injected one."""
    target = estimate_review_target(samples, scores, detector, test_accuracy=test_accuracy)
    return {
        "lower_bound": target.lower_bound,
        "train_fit": float((samples["pred"] == samples["label"]).mean()),
        "test_accuracy": test_accuracy,
        "injected": float(samples["is_flipped"].mean()),
        "estimated": target.noise_rate,
        "n_target": target.n_target,
        "n_flipped": int(samples["is_flipped"].sum()),
        "method": target.method,
    }


def _detection(flipped: np.ndarray, score: np.ndarray) -> dict[str, float]:
    n_flipped = int(flipped.sum())
    top = np.argsort(-score, kind="stable")[:n_flipped]
    return {
        "auroc": float(roc_auc_score(flipped, score)),
        "ap": float(average_precision_score(flipped, score)),
        "recall_at_n": float(flipped[top].mean()),
    }


def detector_study(scores: pd.DataFrame, flipped: np.ndarray) -> dict[str, dict[str, float]]:
    """Detection figures of every detector in the table and of mean-Gaussian-rank ensembles."""
    names = [c[: -len("_score")] for c in scores.columns if c.endswith("_score")]
    out = {name: _detection(flipped, scores[f"{name}_score"].to_numpy()) for name in names}
    for members in ENSEMBLES:
        if all(m in names for m in members):
            ranks = [gaussian_ranks(scores[f"{m}_score"].to_numpy()) for m in members]
            out["+".join(members)] = _detection(flipped, np.mean(ranks, axis=0))
    return out


# ---- 5. speed ----------------------------------------------------------------------------


def synthetic_last_layer(n: int, classes: int = 10, hidden: int = 128, seed: int = 0):
    """(gradients (n, C*(H+1)) float32, samples table) in the last-layer layout."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, n)
    centers = rng.normal(0, 1, (classes, hidden))
    h = np.maximum(centers[true] + rng.normal(0, 0.7, (n, hidden)), 0).astype(np.float32)
    weight = rng.normal(0, 0.5, (classes, hidden))
    logits = h @ weight.T + 3.0 * np.eye(classes)[true]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    label = np.where(rng.random(n) < 0.1, rng.integers(0, classes, n), true)
    dz = p - np.eye(classes)[label]
    grads = np.hstack([(dz[:, :, None] * h[:, None, :]).reshape(n, -1), dz]).astype(np.float32)
    samples = pd.DataFrame(
        {
            "sample_id": np.arange(n),
            "label": label,
            "pred": p.argmax(axis=1),
            "confidence": p.max(axis=1),
            "loss": -np.log(p[np.arange(n), label]),
        }
    )
    return grads, samples


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def speed_study(n: int) -> dict[str, Any]:
    """Reranker and Explainer timings at ``n`` synthetic rows."""
    grads, samples = synthetic_last_layer(n)
    base = samples["loss"].to_numpy()
    t0 = time.perf_counter()
    reranker = Reranker(grads, base)
    out: dict[str, Any] = {"rows": n, "dims": grads.shape[1]}
    out["reranker_setup_s"] = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    for m in (20, 200, 2000):
        ids = np.argsort(-base)[:m]
        bad = rng.random(m) < 0.8
        out[f"rerank_ms_{m}_decisions"] = _median_ms(lambda i=ids, b=bad: reranker.scores(i, b), 21)
    t0 = time.perf_counter()
    explainer = Explainer(grads, samples)
    out["explainer_setup_s"] = time.perf_counter() - t0
    picks = rng.choice(n, 20, replace=False)
    out["explain_ms"] = _median_ms(lambda: [explainer.explain(int(i)) for i in picks], 3) / 20
    t0 = time.perf_counter()
    explainer.suggestions()
    out["suggestions_all_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with_evidence = Reranker.with_evidence(grads, base, explainer)
    out["reranker_evidence_setup_s"] = time.perf_counter() - t0
    for m in (20, 200, 2000):  # what one click costs in the dashboard: refit, score, reorder
        ids = np.argsort(-base)[:m]
        bad = rng.random(m) < 0.8
        out[f"rerank_reorder_ms_{m}_decisions"] = _median_ms(
            lambda i=ids, b=bad: queue_ranks(with_evidence.scores(i, b)), 21
        )
    return out


# ---- main ----------------------------------------------------------------------------------


def study_run(path: Path, detectors: list[str], refits: list[int]) -> dict[str, Any]:
    """Every figure of one run with known noise."""
    samples, scores, grads = load_run(path)
    flipped = samples["is_flipped"].to_numpy(dtype=bool)
    have = [d for d in detectors if f"{d}_score" in scores.columns]
    t0 = time.perf_counter()
    explainer = Explainer(grads, samples, scores)
    explainer_s = time.perf_counter() - t0
    suggestions = {**suggestion_study(explainer, samples), "setup_s": explainer_s}
    return {
        "run": path.name,
        "n": len(samples),
        "dims": int(grads.shape[1]),
        "n_flipped": int(flipped.sum()),
        "rerank": [rerank_study(grads, scores, flipped, d, refits, explainer) for d in have],
        "suggestions": suggestions,
        "target": target_study(samples, scores, have[0] if have else "loss", test_accuracy(path)),
        "detectors": detector_study(scores, flipped),
    }


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="mnist5k,digits,rotten-tomatoes")
    ap.add_argument("--noise", type=float, default=0.1, help="noise rate of the simulated runs")
    ap.add_argument("--estimate-noise", default="0.05,0.1,0.2", help="rates for the estimate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detectors", default="loss,l2,iforest")
    ap.add_argument("--refits", default="1,10", help="refit after every k decisions")
    ap.add_argument("--work", default="/tmp/ogad_review_sim", help="where runs are built")
    ap.add_argument("--timing-rows", type=int, default=50_000)
    ap.add_argument(
        "--extra-seeds",
        default="1,2",
        help="seeds of further runs of the first data set for the re-ranking figure",
    )
    ap.add_argument(
        "--compare-epochs",
        type=int,
        default=8,
        help="also runs of the main and extra seeds trained this many epochs (0 = none): the "
        "built-in image recipe's earlier length",
    )
    ap.add_argument(
        "--label-mixes",
        default="",
        help="folders of the issue-type benchmark's runs (KIND_run_SEED, KIND_truth_SEED.parquet)"
        ": measure only the Label issues queue's order on them and store it in --out beside "
        "the figures already there",
    )
    ap.add_argument("--out", default=str(OUT))
    return ap.parse_args(argv)


def seed_parts(
    a: argparse.Namespace, work: Path, datas: list[str], detectors: list[str]
) -> dict[str, Any]:
    """The first data set's re-ranking on the ``--extra-seeds`` runs (``seeds``), and on the
    main and extra seeds' runs trained ``--compare-epochs`` epochs (``compare_epochs``)."""
    out: dict[str, Any] = {}
    if not (detectors and datas):
        return out
    first, extra = datas[0], [int(v) for v in _csv(a.extra_seeds)]
    if extra:
        print(f"== {first}: seeds {extra}", flush=True)
        out["seeds"] = {
            "data": first,
            "detector": detectors[0],
            "runs": seed_study(work, first, a.noise, extra, detectors[0]),
        }
    if a.compare_epochs:
        seeds = [a.seed, *extra]
        print(f"== {first}: {a.compare_epochs} epochs, seeds {seeds}", flush=True)
        out["compare_epochs"] = {
            "data": first,
            "detector": detectors[0],
            "epochs": a.compare_epochs,
            "runs": seed_study(work, first, a.noise, seeds, detectors[0], a.compare_epochs),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.label_mixes:
        out = Path(a.out)
        report = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
        report["label_order"] = label_order_part(_csv(a.label_mixes))
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(_label_order_part(report))
        return 0
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    detectors, refits = _csv(a.detectors), [int(k) for k in _csv(a.refits)]
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "review_sim",
        "config": {**vars(a), "out": None},
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
        "runs": [],
        "estimates": [],
    }
    for data in _csv(a.data):
        path = run_dir(work, data, a.noise, a.seed)
        print(f"== {data} (noise {a.noise:g})", flush=True)
        report["runs"].append(
            {"data": data, "noise": a.noise, **study_run(path, detectors, refits)}
        )
        for rate in (float(r) for r in _csv(a.estimate_noise)):
            path = run_dir(work, data, rate, a.seed)
            samples, scores, _ = load_run(path)
            study = target_study(samples, scores, "loss", test_accuracy(path))
            report["estimates"].append({"data": data, **study})
    report.update(seed_parts(a, work, _csv(a.data), detectors))
    if a.timing_rows:
        report["speed"] = speed_study(a.timing_rows)
    report["seconds"] = time.perf_counter() - t0
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(summary(report))
    return 0


# ---- reporting ----------------------------------------------------------------------------


def _f3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| --- |" + " ---: |" * (len(headers) - 1)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


DASHBOARD_ORDER = "re-ranked (gradients+evidence), refit every 1"  # what the dashboard does


def _dashboard_rerank(run: dict[str, Any], detector: str) -> tuple[int, int, int]:
    """(static, re-ranked as the dashboard does, n_flipped) flipped among the first n_flipped
    reviews."""
    study = next(s for s in run["rerank"] if s["detector"] == detector)
    found = {r["order"]: r["first_n_flipped"] for r in study["rows"]}
    return found["static"], found[DASHBOARD_ORDER], study["cutoffs"]["first_n_flipped"]


def summary(r: dict[str, Any]) -> str:
    """One line of key figures (benchmarks/run_all.py's summary table)."""
    parts = []
    for run in r["runs"]:
        det = run["rerank"][0]["detector"] if run["rerank"] else None
        if det:
            static, reranked, n = _dashboard_rerank(run, det)
            parts.append(
                f"{run['data']}: first n_flipped {det} static {static / n:.1%}, re-ranked "
                f"{reranked / n:.1%}; suggestion {run['suggestions']['accuracy_on_flipped']:.1%}; "
                f"noise {run['target']['estimated']:.3f} vs {run['target']['injected']:.3f}"
            )
    if "speed" in r:
        s = r["speed"]
        ms = s.get("rerank_reorder_ms_200_decisions", s["rerank_ms_200_decisions"])
        parts.append(f"re-rank + reorder {ms:.0f} ms at {s['rows']:,} rows")
    return "; ".join(parts)


def _rerank_rows(r: dict[str, Any]) -> list[list[str]]:
    rows = []
    for run in r["runs"]:
        for study in run["rerank"]:
            for row in study["rows"]:
                n = study["cutoffs"]["first_n_flipped"]
                rows.append(
                    [
                        run["data"],
                        study["detector"],
                        row["order"],
                        str(row["first_100"]),
                        str(row["first_200"]),
                        f"{row['first_n_flipped']} / {n} ({row['first_n_flipped'] / n:.1%})",
                        f"{row['ms_per_refit']:.0f}" if "ms_per_refit" in row else "-",
                    ]
                )
    return rows


def _detector_rows(r: dict[str, Any]) -> list[list[str]]:
    names = list(dict.fromkeys(k for run in r["runs"] for k in run["detectors"]))
    rows = []
    for name in names:
        cells = [name]
        for run in r["runs"]:
            d = run["detectors"].get(name)
            cells.append("-" if d is None else f"{d['auroc']:.4f} / {d['recall_at_n']:.3f}")
        rows.append(cells)
    return rows


def docs_section(r: dict[str, Any] | None) -> str:
    """The "Review session" section of docs/benchmarks.md."""
    head = "## Review session: re-ranking, suggested labels, review target, default detector\n"
    if not r:
        return head + "\n_Not measured yet: run `python -m benchmarks.bench_review_sim`._\n"
    c, m = r["config"], r["machine"]
    out = [
        head,
        f"`python -m benchmarks.bench_review_sim` — real runs (`ogad compute --data D --noise "
        f"{c['noise']:g} --seed {c['seed']}`; rotten-tomatoes = the offline sample). A simulated "
        "reviewer works down the queue and answers from `is_flipped` (flipped = Confirm, "
        "clean = Reject). Counts are flipped samples among the first 100 / 200 / n_flipped "
        "reviews; *ideal* = every review a flipped sample. Re-ranked = "
        "`ogad_core.scoring.rerank.Reranker` (logistic regression on the detector score's "
        "Gaussianized rank and 16 PCA components of the gradients; *+evidence* adds the margin, "
        "the neighbours' agreement with the given label and the loss), refit after every "
        "decision or every 10; ms per refit includes choosing the next sample. "
        f"Load average {m.get('load_average_at_start')} at start, "
        f"{m.get('load_average_at_end')} at end on {m.get('cpus')} CPUs (timings are noisy).\n",
        _table(
            ["data", "detector", "order", "first 100", "first 200", "first n_flipped", "ms/refit"],
            _rerank_rows(r),
        ),
    ]
    out += [_verdict(r), _label_order_part(r), _seed_part(r), _ceiling_part(r)]
    out.append(_suggestion_part(r))
    out.append(_estimate_part(r))
    out.append(_detector_part(r))
    out.append(_speed_part(r))
    return "\n".join(p for p in out if p) + "\n"


def _verdict(r: dict[str, Any]) -> str:
    """The issue's goals against the figures (>= 95% of the first n_flipped reviews flipped on
    mnist5k at 10% noise; suggestion right on >= 90% of the flipped samples)."""
    lines = []
    for run in r["runs"]:
        if not run["rerank"]:
            continue
        det = run["rerank"][0]["detector"]
        static, reranked, n = _dashboard_rerank(run, det)
        iforest = [s for s in run["rerank"] if s["detector"] == "iforest"]
        gain = ""
        if iforest:
            i_static, i_reranked, _ = _dashboard_rerank(run, "iforest")
            gain = f"; from iforest's order {i_static / n:.1%} -> {i_reranked / n:.1%}"
        goal = "met" if reranked / n >= 0.95 else "not met"
        lines.append(
            f"- {run['data']}: first n_flipped reviews flipped, {det} static {static / n:.1%} -> "
            f"re-ranked {reranked / n:.1%} (goal 95%: {goal}){gain}; suggestion right on "
            f"{run['suggestions']['accuracy_on_flipped']:.1%} of the flipped samples (goal 90%: "
            f"{'met' if run['suggestions']['accuracy_on_flipped'] >= 0.9 else 'not met'})."
        )
    return (
        "\n**Reading.** The re-ranker the dashboard uses is *+evidence* refit after every "
        "decision: a logistic regression (C = 1) on the detector score's Gaussianized rank, 16 "
        "PCA components of the gradients, the margin, the share of the 10 nearest neighbours "
        "(penultimate features) carrying the given label, and the loss; it keeps the "
        "detector's order until 2 samples are confirmed or relabeled and 2 rejected. It lifts "
        "weak orders the most (l2, iforest); on a strong order it adds a few samples (loss on "
        "mnist5k) or moves one or two either way (digits, where the loss order already finds "
        "139 of 144), and on the 480-snippet text run, where every order is "
        "weak, it moves a few samples either way. What limits the mnist5k figure is the trained"
        " model, not the re-ranker: in the ceiling table below, models trained on the true "
        "labels of 4/5 of the candidates do no better on these features than the re-ranker does"
        " from the reviewer's answers. The clean samples left among the first n_flipped are "
        "real digits the model confidently assigns to another class (on the 8-epoch run "
        "p(given) 0.01-0.10; their feature-space neighbours carry the predicted label, as a "
        "flipped sample's do), so nothing the run holds tells them apart from flipped ones; a "
        "model that generalises better leaves fewer of them, which is why the built-in image "
        "recipe now trains 12 epochs instead of 8 (*Built-in recipe* below). Re-ranker variants"
        " measured on the 8-epoch runs' 27 orders (the 3 data sets x loss / l2 / iforest x "
        "noise 0.05 / 0.1 / 0.2) and not kept, each within about one sample per order: the "
        "predicted class's probability, the distance ratio to the class centroids, the "
        "gradient-norm percentile within the class and the neighbours' agreement with the "
        "prediction as further features; decisions target-encoded by given label, predicted "
        "label and their pair; C = 0.1 or 0.3; balanced class weights; a blend with the static "
        "order weighted by the number of decisions; 8 or 32 PCA components, or the penultimate "
        "features' PCA, in place of the gradients' 16; without the neighbour agreement (worse "
        "at 20% noise); raw-pixel neighbours on mnist5k (at most one sample more). Gradient "
        "boosting in place of the logistic regression was worse (mnist5k loss 367, digits "
        "loss 130 at 10% noise, 8 epochs).\n\n" + "\n".join(lines)
    )


def _label_order_part(r: dict[str, Any]) -> str:
    """The Label issues queue's order: the detector's vs the label type's, static and
    re-ranked, on the issue-type benchmark's kept runs."""
    part = r.get("label_order")
    if not part or not part.get("runs"):
        return ""
    rows = []
    for run in part["runs"]:
        n = run["n_flipped"]
        for row in run["rows"]:
            rows.append(
                [
                    f"{run['mix']} {run['kind']} {run['seed']}",
                    row["base"],
                    row["order"],
                    str(row["first_100"]),
                    f"{row['first_n_flipped']} / {n} ({row['first_n_flipped'] / n:.1%})",
                ]
            )
    return (
        "\n**The Label issues queue: the detector's order or the label issue type's** "
        "(`python -m benchmarks.bench_review_sim --label-mixes DIR,...` on the issue-type "
        "benchmark's kept runs, `benchmarks.bench_issues`: s6_main = the main mix, s6_alt = the "
        "held-out mix, issues step version 16). The dashboard's Label issues queue followed the "
        "selected detector's order (before); it now follows the label type's rank when the "
        "selected detector is the one the label type used, and re-ranks from the label type's "
        "score. The simulated reviewer confirms the flipped labels and rejects everything else "
        "(the duplicates, outliers and corrupt inputs are decided in their own queues); counts "
        "are flipped samples among the first 100 / n_flipped reviews; re-ranked = +evidence, "
        "refit after every decision. Load average "
        f"{part.get('load_average_at_start')} at start, {part.get('load_average_at_end')} at "
        "end.\n\n"
        + _table(["run", "base", "order", "first 100", "first n_flipped"], rows)
        + "\n\n"
        + _label_order_sums(part["runs"])
        + LABEL_ORDER_READING
    )


LABEL_ORDER_READING = (
    "\n**Reading** (session 7's run). Following the label type's order is the gain: the first "
    "n_flipped reviews find 76.0% -> 91.8% of the flips on the main mix's images, 60.2% -> "
    "90.0% on the held-out mix's (text 23.0% -> 25.3%, 26.3% -> 28.0%). The re-ranker lowers "
    "every order here, the detector's too (it lifted the mnist5k orders above, where the flips "
    "are the only injected issue): its loss and neighbour features lift the copies in "
    "duplicate sets whose labels differ, which the label type ranks below its flags and the "
    "reviewer rejects in this queue (6-13 of a held-out seed's misses, 8-10 of a main seed's). "
    "Keeping the samples only another issue type flags after the rest, as the dashboard now "
    "does, recovers part (images: held-out 84.0% -> 86.9%, main 88.4% -> 91.1%; text within "
    "one sample a seed) and stays at or below the static order. So in the label type's order "
    "re-ranking has a toggle of its own, off at first; in a detector's order it stays on.\n"
)


def _label_order_sums(runs: list[dict[str, Any]]) -> str:
    """One line per mix and kind: the flipped among the first n_flipped reviews over its
    seeds, per base and order."""
    lines = []
    for mix, kind in dict.fromkeys((r["mix"], r["kind"]) for r in runs):
        part = [r for r in runs if (r["mix"], r["kind"]) == (mix, kind)]
        n = sum(r["n_flipped"] for r in part)
        cells: dict[str, int] = {}
        for r in part:
            for row in r["rows"]:
                key = f"{row['base']} {row['order']}"
                cells[key] = cells.get(key, 0) + row["first_n_flipped"]
        text = "; ".join(f"{k} {v / n:.1%}" for k, v in cells.items())
        lines.append(f"- {mix} {kind} (seeds together, {n} flipped): {text}.")
    return "\n".join(lines) + "\n"


def _main_seed_row(r: dict[str, Any], data: str, detector: str) -> dict[str, Any] | None:
    """The main run's static and re-ranked (+evidence, refit every decision) counts."""
    run = next((x for x in r["runs"] if x["data"] == data), None)
    study = run and next((x for x in run["rerank"] if x["detector"] == detector), None)
    if not study:
        return None
    counts = {x["order"]: x["first_n_flipped"] for x in study["rows"]}
    return {
        "seed": r["config"]["seed"],
        "n_flipped": study["n_flipped"],
        "static": counts["static"],
        "re-ranked": counts[DASHBOARD_ORDER],
    }


def _seed_cell(x: dict[str, Any] | None) -> str:
    if x is None:
        return "-"
    n, goal = x["n_flipped"], int(np.ceil(0.95 * x["n_flipped"]))
    met = "met" if x["re-ranked"] >= goal else "not met"
    return f"{x['static']} -> {x['re-ranked']} ({x['re-ranked'] / n:.1%}, {met})"


def _seed_part(r: dict[str, Any]) -> str:
    """Static vs re-ranked per seed (``seed_study``), with the built-in image recipe and with
    ``--compare-epochs`` epochs."""
    extra, compare = r.get("seeds"), r.get("compare_epochs")
    if not extra and not compare:
        return ""
    head: dict[str, Any] = extra or compare or {}
    data, detector = head["data"], head["detector"]
    ours = {x["seed"]: x for x in (extra or {}).get("runs", [])}
    main = _main_seed_row(r, data, detector)
    if main:
        ours[main["seed"]] = main
    theirs = {x["seed"]: x for x in (compare or {}).get("runs", [])}
    epochs = compare["epochs"] if compare else None
    rows = [
        [str(seed), _seed_cell(ours.get(seed)), _seed_cell(theirs.get(seed))]
        for seed in sorted(set(ours) | set(theirs))
    ]
    accs = ", ".join(f"{x['test_accuracy']:.3f}" for x in theirs.values() if x.get("test_accuracy"))
    return (
        f"\n**Built-in recipe and seeds** ({data}, {detector}, the same noise rate; each seed "
        "draws other flips and trains another model): flipped among the first n_flipped "
        "reviews, static -> re-ranked (+evidence, refit every decision), and whether that meets "
        "the 95% goal. The built-in image recipe (SmallCNN, Adam lr 1e-3, weight decay 1e-4, "
        f"batch 64) trains 12 epochs; the right column is the same recipe at {epochs} epochs "
        f"(`--epochs {epochs}`, the built-in length before this study; test accuracy {accs}). "
        "Also measured in the recipe study (runs built the same way, not re-run here): on seeds"
        " 3 and 4, 12 epochs gave 373 -> 377 and 367 -> 379 (test accuracy 0.950, 0.938) "
        "against 376 -> 374 and 372 -> 376 at 8 (0.952, 0.942): re-ranked higher on all five "
        "seeds, the static order lower on these two, and the goal met on the benchmark's seeds "
        "0-2 but not on every seed. On the other runs above (loss, flipped among the first "
        "n_flipped, 8 -> 12 epochs): digits at 0.05 / 0.1 / 0.2 noise 66 -> 68, 138 -> 139, 280"
        " -> 280; mnist5k at 0.05 / 0.2 181 -> 187, 761 -> 768; test accuracy rose on each (the"
        " review-target table below has it). With 20% asymmetric noise (quality study, "
        "checkpoints) 12 epochs memorise a few more flips (5.6% against 4.2%) and the gradient "
        "detectors' best AUROC drops from 0.980 to 0.975. Not kept, seeds 0-2 unless said: 16 "
        "epochs (re-ranked 381-383 on seeds 0-4, but twice the training time, and on digits at "
        "20% noise it began to memorise: 276 found and test accuracy 0.933 against 280 and "
        "0.969 at 12); random shifts of up to 2 pixels at 8 epochs (static 365-370, re-ranked "
        "378-381) and at 12 (static 375-379, re-ranked 380-385, but on the 8 x 8 digits 128 of "
        "144 found against 139 without); the shifts with a cosine schedule at 12 epochs (static"
        " 373, re-ranked 373-375); mixup (alpha 0.2, 8 epochs: static 364-371, re-ranked "
        "374-378); a cosine learning-rate schedule alone (8 epochs: static 361-367, test "
        "accuracy 0.913-0.935).\n\n"
        + _table(["seed", "12 epochs (built-in)", f"{epochs} epochs" if epochs else "-"], rows)
    )


def _span(counts: list[int], n: int) -> str:
    low, high = min(counts), max(counts)
    text = f"{low}" if low == high else f"{low}-{high}"
    return f"{text} ({high / n:.1%})"


def _ceiling_rows(r: dict[str, Any]) -> list[list[str]]:
    rows = []
    for run in r["runs"]:
        for study in run["rerank"]:
            ceiling = study.get("ceiling")
            if not ceiling:
                continue
            static, reranked, n = _dashboard_rerank(run, study["detector"])
            rows.append(
                [
                    run["data"],
                    study["detector"],
                    str(n),
                    f"{ceiling['flipped_in_pool']} of {ceiling['pool']}",
                    f"{static} ({static / n:.1%})",
                    f"{reranked} ({reranked / n:.1%})",
                    _span(ceiling["logistic"], n),
                    _span(ceiling["boosting"], n),
                ]
            )
    return rows


def _ceiling_part(r: dict[str, Any]) -> str:
    """How far the re-ranker's features could go with the true labels (``ceiling_study``)."""
    rows = _ceiling_rows(r)
    if not rows:
        return ""
    return (
        "\n**Ceiling of the features** (`ceiling_study`; *not* a review order and not the "
        "protocol: the known flips are used here, and only here, to bound what any model on "
        "the re-ranker's feature table could reach). A logistic regression and a gradient-"
        f"boosting model are trained on the true labels of the static order's top "
        f"{CEILING_POOL:g} x n_flipped samples, 5-fold cross-validated, 3 fold seeds; the "
        "figure is the flipped samples among that pool's top n_flipped by the out-of-fold "
        "score (range over the seeds). The reviewer's simulation gives the re-ranker at most "
        "n_flipped labels, taken from the top of the queue, where almost all are flipped.\n\n"
        + _table(
            [
                "data",
                "detector",
                "n_flipped",
                "flipped in pool",
                "static",
                "re-ranked (dashboard)",
                "ceiling, logistic",
                "ceiling, boosting",
            ],
            rows,
        )
    )


def _suggestion_part(r: dict[str, Any]) -> str:
    rows = [
        [
            run["data"],
            run["suggestions"]["space"],
            f"{run['suggestions']['accuracy_on_flipped']:.1%}",
            f"{run['suggestions']['pred_accuracy_on_flipped']:.1%}",
            f"{run['suggestions']['keeps_given_on_clean']:.1%}",
            f"{run['suggestions']['setup_s'] + run['suggestions']['seconds_all_rows']:.1f}",
        ]
        for run in r["runs"]
    ]
    return (
        "\n**Suggested labels** (`Explainer.suggestions()`: the mean of the 10 nearest "
        "neighbours' label vote and the model's predicted distribution; neighbours by cosine in "
        "the model's penultimate features, recovered exactly from last-layer gradients). "
        "*Right on flipped* = the suggestion is the true (clean) label; *model alone* = the "
        "predicted class; *keeps clean* = the suggestion is the given label on clean samples.\n\n"
        + _table(
            ["data", "space", "right on flipped", "model alone", "keeps clean", "seconds"], rows
        )
    )


def _estimate_part(r: dict[str, Any]) -> str:
    rows = [
        [
            e["data"],
            f"{e['injected']:.3f}",
            f"{e['estimated']:.3f}",
            f"{e['n_flipped']:,}",
            f"{e['n_target']:,}",
            f"{e['train_fit']:.3f}",
            _f3(e.get("test_accuracy")),
            "yes" if e.get("lower_bound") else "no",
        ]
        for e in r["estimates"]
    ]
    return (
        "\n**Review target** (`estimate_review_target`: cleanlab's calibrated confident joint "
        "on the run's own predictions — pred, confidence and exp(-loss) per sample — with "
        "`num_label_issues(..., 'off_diagonal_calibrated')`).\n\n"
        + "Method `confident_joint` throughout. *Fit* = share of training samples whose "
        "prediction is their given label; where it exceeds the held-out accuracy the model has "
        "memorised labels and the estimate is flagged as a lower bound (`lower_bound`).\n\n"
        + _table(
            [
                "data",
                "injected",
                "estimated",
                "flipped",
                "target",
                "fit",
                "test acc",
                "lower bound",
            ],
            rows,
        )
    )


def _detector_part(r: dict[str, Any]) -> str:
    runs = [run["data"] for run in r["runs"]]
    return (
        "\n**Detectors** (AUROC / recall at n_flipped on the runs above; `a+b` = mean of the "
        "members' Gaussianized ranks). The default detector (`DEFAULT_DETECTOR`) is the best "
        "of these together with the mnist5k quality study, the moons study and the text "
        "benchmark.\n\n" + _table(["detector", *runs], _detector_rows(r))
    )


def _speed_part(r: dict[str, Any]) -> str:
    s = r.get("speed")
    if not s:
        return ""
    rows = [
        ["Reranker set-up (PCA, once per run)", f"{s['reranker_setup_s']:.2f} s"],
        *[
            [f"Reranker.scores, {m} decisions", f"{s[f'rerank_ms_{m}_decisions']:.1f} ms"]
            for m in (20, 200, 2000)
        ],
        ["Explainer set-up (features, PCA, neighbour index)", f"{s['explainer_setup_s']:.2f} s"],
        ["Explainer.explain, one sample", f"{s['explain_ms']:.1f} ms"],
        ["Explainer.suggestions, all rows", f"{s['suggestions_all_s']:.1f} s"],
    ]
    if "reranker_evidence_setup_s" in s:
        rows.append(
            [
                "Reranker.with_evidence set-up (after the suggestions)",
                f"{s['reranker_evidence_setup_s']:.2f} s",
            ]
        )
        rows += [
            [
                f"with evidence: scores + queue_ranks (one click), {m} decisions",
                f"{s[f'rerank_reorder_ms_{m}_decisions']:.1f} ms",
            ]
            for m in (20, 200, 2000)
        ]
    return (
        f"\n**Speed** at {s['rows']:,} synthetic rows x {s['dims']:,} gradient dimensions "
        "(last-layer layout, 10 classes), median of repeats:\n\n" + _table(["step", "time"], rows)
    )


if __name__ == "__main__":
    raise SystemExit(main())
