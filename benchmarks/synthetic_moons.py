"""The paper's synthetic study (Chhabra et al., ICML 2025, Table 1) on two half-moons.

    python -m benchmarks.synthetic_moons [--seeds 5] [--train-seeds 2] [--epochs N] [--work-dir DIR]
                                         [--out benchmarks/results/synthetic_moons.json]
                                         [--plot docs/moons_flags.png]

For each data seed s (the moons, the 20 flipped labels and the model's initialisation all
depend on s): ``ogad compute --data moons --noise 20 --seed s`` (250 train / 100 test, the
built-in MLP with two hidden ReLU layers), then ``ogad evaluate --baselines --retrain --trim 8``
(8% of 250 = the top 20). Two figures per method, as in the paper's Table 1:

* detection accuracy: the fraction of the 20 flipped samples among the method's top 20
  (``recall_at_n_flipped``), mean ± std over the data seeds;
* test accuracy after trimming the top 20 and retraining from scratch (final epoch, 100 held-out
  points), mean ± std over data seeds x training seeds;
* the paper's own detection figure: its code (anshuman23/outlier-gradient-analysis,
  ``synthetic/BASELINES_LABEL_TOY_MLP.py``) flags with ``IForest(contamination=0.1)``, i.e. the
  top 10% (25 of 250), and reports sklearn's ``classification_report`` accuracy over all 250
  training samples: ``1 - (FP + FN) / 250``. A detector that finds all 20 flipped samples in its
  top 25 scores 98%; a random one 83.6% on average. We report it from each method's precision at
  10% (``(k + n_flipped - 2 * hits) / n`` errors, k = 25).

``--resummarize`` rebuilds the table from ``--out``'s per-seed results without running anything.

Methods: iforest, l1, l2 (gradient outliers), loss, selfconf, cleanlab (5-fold CV), TracIn (over
``--checkpoints`` checkpoints), random trimming and no trimming; plus the two oracles. The plot
shows the training points of one seed coloured by what each method flags.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ogad_core.evaluation.schema import (  # noqa: E402  (after the path fix)
    DetectionRow,
    EvaluationReport,
    RetrainResults,
)

METHODS = ("iforest", "l1", "l2", "loss", "selfconf", "cleanlab", "tracin")
#: the paper's Table 1 (moons, 20 flipped): (detection accuracy %, test accuracy %) where given
PAPER = {
    "iforest": (96.0, 96.0),
    "l1": (98.0, 87.0),
    "l2": (98.0, 87.0),
    "none": (None, 90.0),
}
N_FLIPPED = 20
PAPER_CONTAMINATION = 0.1  # the paper's IForest(contamination=0.1): the top 10% are flagged
TRIM_PERCENT = 8.0  # 8% of 250 = 20
PLOT_METHODS = ("iforest", "l2", "loss", "cleanlab")


@dataclass
class SeedResult:
    """What one data seed gave: the evaluation's detection rows and retraining results, and the
    fraction of flipped samples the final model predicts as their (wrong) given label."""

    seed: int
    detection: list[DetectionRow]
    retrain: RetrainResults
    flipped_fit_to_given_label: float

    def to_json(self) -> dict[str, Any]:
        report = EvaluationReport(detection=self.detection, retrain=self.retrain).to_json()
        return {
            "seed": self.seed,
            "detection": report["detection"],
            "retrain": report["retrain"],
            "flipped_fit_to_given_label": self.flipped_fit_to_given_label,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SeedResult:
        """Read with the evaluation report's schema (any version it reads)."""
        report = EvaluationReport.from_json(
            {"report_version": 1, "detection": raw["detection"], "retrain": raw["retrain"]}
        )
        if report.retrain is None:
            raise ValueError(f"seed {raw.get('seed')}: no retraining results")
        return cls(
            int(raw["seed"]),
            report.detection,
            report.retrain,
            float(raw["flipped_fit_to_given_label"]),
        )


def run_seed(
    seed: int, *, work_dir: Path, train_seeds: int, checkpoints: int, epochs: int | None, log
) -> SeedResult:
    """Compute and evaluate one data seed."""
    from ogad_core.evaluation.report import evaluate_run
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute
    from ogad_core.run.rundir import RunDir

    run_dir = work_dir / (f"moons_seed{seed}" if epochs is None else f"moons_e{epochs}_seed{seed}")
    config = ComputeConfig(
        data="moons",
        noise=N_FLIPPED,
        seed=seed,
        params="auto",
        checkpoints=checkpoints,
        device="cpu",
        epochs=epochs,
        detectors=("iforest", "l2", "l1", "loss", "selfconf"),
    )
    t0 = time.perf_counter()
    compute(config, run_dir, progress=False)
    log(f"seed {seed}: run computed in {time.perf_counter() - t0:.1f} s")
    report = evaluate_run(
        run_dir,
        retrain=True,
        baselines=True,
        trim_percents=[TRIM_PERCENT],
        seeds=train_seeds,
        detectors=list(METHODS),
    )
    assert report.retrain is not None  # retrain=True
    samples = RunDir(run_dir).read_samples()
    flipped = samples["is_flipped"].to_numpy(dtype=bool)
    fit = samples["pred"].to_numpy()[flipped] == samples["label"].to_numpy()[flipped]
    return SeedResult(seed, report.detection, report.retrain, float(fit.mean()))


def _stats(values: list[float]) -> dict[str, float | None]:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "n": int(arr.size),
    }


def _paper_k(n: int) -> int:
    """How many samples the paper's ``IForest(contamination=0.1)`` flags among ``n``."""
    return math.ceil(round(PAPER_CONTAMINATION * n, 9))


def paper_detection_accuracy(n: int, n_flipped: int, hits_top10: float) -> float:
    """The paper's detection figure, in %: accuracy over all ``n`` training samples of flagging
    the top ceil(10%) (pyod ``IForest(contamination=0.1)``) as outliers, given ``hits_top10``
    flipped samples among them."""
    return 100.0 * (1.0 - (_paper_k(n) + n_flipped - 2.0 * hits_top10) / n)


def _detection_figures(name: str, res: SeedResult, figures: dict[str, list[float]]) -> None:
    """Add one seed's detection %, AUROC and the paper's metric of ``name`` to ``figures``."""
    row = next((d for d in res.detection if d.detector == name), None)
    if row is not None and row.n and row.n_flipped:
        figures["detect"].append(100 * (row.recall_at_n_flipped or 0.0))
        figures["auroc"].append(row.auroc)
        hits = (row.precision_at_10pct or 0.0) * _paper_k(row.n)
        figures["paper"].append(paper_detection_accuracy(row.n, row.n_flipped, hits))
    elif name == "random" and res.detection:
        d = res.detection[0]  # expected value: k * n_flipped / n hits
        if d.n and d.n_flipped:
            hits = _paper_k(d.n) * d.n_flipped / d.n
            figures["paper"].append(paper_detection_accuracy(d.n, d.n_flipped, hits))


def _retrain_figures(name: str, rt: RetrainResults, figures: dict[str, list[float]]) -> None:
    """Add one seed's test accuracies (%) of ``name`` (and random's detection %)."""
    entry = rt.reference(name) or next((r for r in rt.rows if r.method == name), None)
    if entry is not None:
        figures["acc"] += [100 * a for a in entry.accuracy if a is not None]
    random = next((r for r in rt.rows if r.method == "random"), None)
    if name == "random" and random is not None and random.flipped_trimmed is not None:
        figures["detect"].append(100 * random.flipped_trimmed / N_FLIPPED)


def summarize(results: list[SeedResult]) -> list[dict[str, Any]]:
    """One row per method: detection accuracy and test accuracy (%) over the seeds."""
    rows = []
    for name in (*METHODS, "random", "none", "oracle_drop_flipped", "oracle_clean_labels"):
        figures: dict[str, list[float]] = {"detect": [], "acc": [], "auroc": [], "paper": []}
        for res in results:
            _detection_figures(name, res, figures)
            _retrain_figures(name, res.retrain, figures)
        paper = PAPER.get(name, (None, None))
        rows.append(
            {
                "method": name,
                "detection_pct": _stats(figures["detect"]),
                "test_accuracy_pct": _stats(figures["acc"]),
                "auroc": _stats(figures["auroc"]),
                "paper_metric_pct": _stats(figures["paper"]),
                "paper_detection_pct": paper[0],
                "paper_test_accuracy_pct": paper[1],
            }
        )
    return rows


def _pm(stat: dict[str, Any], digits: int = 1) -> str:
    if stat["mean"] is None:
        return "-"
    s = f"{stat['mean']:.{digits}f}"
    return s + (f" ± {stat['std']:.{digits}f}" if stat.get("std") is not None else "")


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: ours next to the paper's Table 1."""
    lines = [
        "| method | flipped in top 20, % (ours) | detection acc. %, paper's metric (ours) | paper "
        "| test acc. % after trimming 20 (ours) | paper | AUROC (ours) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        paper_d = "-" if r["paper_detection_pct"] is None else f"{r['paper_detection_pct']:.1f}"
        paper_a = (
            "-" if r["paper_test_accuracy_pct"] is None else f"{r['paper_test_accuracy_pct']:.1f}"
        )
        lines.append(
            f"| {r['method']} | {_pm(r['detection_pct'])} | "
            f"{_pm(r.get('paper_metric_pct') or {'mean': None})} | {paper_d} | "
            f"{_pm(r['test_accuracy_pct'])} | {paper_a} | {_pm(r['auroc'], 3)} |"
        )
    return "\n".join(lines)


def plot_flags(run_dir: Path, out: Path, methods: tuple[str, ...] = PLOT_METHODS) -> None:
    """Scatter of the training points, one panel per method, coloured by flag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import load_run_data
    from ogad_core.run.rundir import RunDir

    rd = RunDir(run_dir)
    manifest = rd.read_manifest()
    data = load_run_data(ComputeConfig.from_dict(manifest["config"]), rd)
    x = np.asarray(data.train.inputs)
    samples = rd.read_samples()
    scores = rd.read_scores()
    flipped = samples["is_flipped"].to_numpy(dtype=bool)
    given = samples["label"].to_numpy()
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4.2), sharey=True)
    styles = [
        ("clean, kept", dict(c="#c8c8c8", s=14, marker="o")),
        ("flipped, found", dict(c="#1a9641", s=46, marker="o", edgecolors="k", linewidths=0.6)),
        ("flipped, missed", dict(c="#fdae61", s=60, marker="X", edgecolors="k", linewidths=0.6)),
        ("clean, flagged", dict(c="#d7191c", s=46, marker="s", edgecolors="k", linewidths=0.6)),
    ]
    for ax, name in zip(np.atleast_1d(axes), methods, strict=True):
        flagged = scores[f"{name}_rank"].to_numpy() <= N_FLIPPED
        groups = [~flipped & ~flagged, flipped & flagged, flipped & ~flagged, ~flipped & flagged]
        for label0 in (0, 1):  # the given label as a faint ring on the background points
            m = groups[0] & (given == label0)
            ax.scatter(
                x[m, 0],
                x[m, 1],
                facecolors="none",
                edgecolors=["#2b83ba", "#abdda4"][label0],
                s=14,
                linewidths=0.8,
            )
        for (label, style), mask in zip(styles[1:], groups[1:], strict=True):
            ax.scatter(x[mask, 0], x[mask, 1], label=f"{label} ({int(mask.sum())})", **style)
        found = int((flipped & flagged).sum())
        ax.set_title(f"{name}: {found}/{int(flipped.sum())} flipped in its top {N_FLIPPED}")
        ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
        ax.set_xlabel("x1")
    np.atleast_1d(axes)[0].set_ylabel("x2")
    fig.suptitle(
        f"moons (seed {manifest['config']['seed']}): 250 training points, "
        f"{int(flipped.sum())} labels flipped; rings = given label (blue 0, green 1)",
        fontsize=10,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _describe_setup(setup: dict[str, Any]) -> None:
    setup["detection_is"] = (
        "fraction of the 20 flipped among the method's top 20 (random: among 20 random samples)"
    )
    setup["paper_metric_is"] = (
        "the paper's code: the top 10% (25) flagged, accuracy over all 250 training samples, "
        "1 - (FP + FN) / 250 (random: its expected value, 83.6%)"
    )


def resummarize(out: Path) -> dict[str, Any]:
    """Rebuild rows and table of an earlier result file from its per-seed results."""
    result = json.loads(out.read_text())
    result["rows"] = summarize([SeedResult.from_json(r) for r in result["per_seed"]])
    result["table_md"] = format_table(result["rows"])
    _describe_setup(result["setup"])
    out.write_text(json.dumps(result, indent=2))
    print(result["table_md"])
    return result


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="data seeds (default 5)")
    ap.add_argument(
        "--train-seeds", type=int, default=2, help="retraining seeds per data seed (default 2)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: a tiny MLP trains fastest on one)",
    )
    ap.add_argument("--checkpoints", type=int, default=4, help="checkpoints for TracIn")
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (default: the built-in tabular recipe's)",
    )
    ap.add_argument("--work-dir", type=Path, default=Path("runs/bench_moons"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/synthetic_moons.json"))
    ap.add_argument("--plot", type=Path, default=Path("docs/moons_flags.png"))
    ap.add_argument(
        "--resummarize",
        action="store_true",
        help="rebuild the table from --out's per-seed results; run nothing",
    )
    return ap


def _log(msg: str) -> None:
    print(f"  {msg}", flush=True)


def _run_seeds(a: argparse.Namespace) -> list[SeedResult]:
    results = []
    for seed in range(a.seeds):
        res = run_seed(
            seed,
            work_dir=a.work_dir,
            train_seeds=a.train_seeds,
            checkpoints=a.checkpoints,
            epochs=a.epochs,
            log=_log,
        )
        each = res.retrain.seconds_per_model or 0.0
        _log(f"seed {seed}: evaluated ({res.retrain.models_trained} models, {each:.1f} s each)")
        results.append(res)
    return results


def _setup(a: argparse.Namespace, epochs: int, fit: list[float]) -> dict[str, Any]:
    setup = {
        "data": "sklearn make_moons(350, noise=0.15, random_state=seed): 250 train / 100 test",
        "noise": f"{N_FLIPPED} labels flipped (symmetric)",
        "model": f"MLP 2 -> 64 -> 64 -> 2 (ReLU), Adam lr 1e-2, {epochs} epochs, batch 32",
        "epochs": epochs,
        "flipped_fit_to_given_label": _stats([100 * v for v in fit]),
        "trim": f"top {N_FLIPPED} ({TRIM_PERCENT:g}%)",
        "data_seeds": list(range(a.seeds)),
        "train_seeds_per_data_seed": a.train_seeds,
        "checkpoints": a.checkpoints,
        "test_accuracy_is": "final-epoch accuracy on the 100 held-out points, pooled over "
        "data seeds x training seeds",
    }
    _describe_setup(setup)
    return setup


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = _parser().parse_args(argv)
    if a.resummarize:
        return resummarize(a.out)
    import torch

    from ogad_core.engine.train import default_recipe

    torch.set_num_threads(a.threads)
    epochs = a.epochs or default_recipe("tabular").epochs
    t0 = time.perf_counter()
    results = _run_seeds(a)
    rows = summarize(results)
    table = format_table(rows)
    print(table)
    plot_flags(
        a.work_dir / ("moons_seed0" if a.epochs is None else f"moons_e{a.epochs}_seed0"), a.plot
    )
    fit = [r.flipped_fit_to_given_label for r in results]
    print(
        f"the final model predicts the wrong given label of {100 * np.mean(fit):.0f}% of the "
        "flipped samples (mean over data seeds)"
    )
    print(f"plot: {a.plot}")
    result = {
        "benchmark": "synthetic_moons",
        "setup": _setup(a, epochs, fit),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": a.threads,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
        "table_md": table,
        "plot": str(a.plot),
        "per_seed": [r.to_json() for r in results],
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
