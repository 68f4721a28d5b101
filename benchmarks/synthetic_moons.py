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
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

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


def _quiet(_msg: str) -> None:
    pass


def run_seed(
    seed: int, *, work_dir: Path, train_seeds: int, checkpoints: int, epochs: int | None, log
) -> dict[str, Any]:
    """Compute and evaluate one data seed; returns the evaluation report."""
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
        log=_quiet,
    )
    samples = RunDir(run_dir).read_samples()
    flipped = samples["is_flipped"].to_numpy(dtype=bool)
    fit = samples["pred"].to_numpy()[flipped] == samples["label"].to_numpy()[flipped]
    report["flipped_fit_to_given_label"] = float(fit.mean())  # memorised by the final model
    return report


def _stats(values: list[float]) -> dict[str, float | None]:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "n": int(arr.size),
    }


def paper_detection_accuracy(n: int, n_flipped: int, hits_top10: float) -> float:
    """The paper's detection figure, in %: accuracy over all ``n`` training samples of flagging
    the top ceil(10%) (pyod ``IForest(contamination=0.1)``) as outliers, given ``hits_top10``
    flipped samples among them."""
    k = math.ceil(round(PAPER_CONTAMINATION * n, 9))
    return 100.0 * (1.0 - (k + n_flipped - 2.0 * hits_top10) / n)


def summarize(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method: detection accuracy and test accuracy (%) over the seeds."""
    rows = []
    for name in (*METHODS, "random", "none", "oracle_drop_flipped", "oracle_clean_labels"):
        detect, acc, auroc, paper_metric = [], [], [], []
        for rep in reports:
            det = {r["detector"]: r for r in rep["detection"]}
            if name in det:
                d = det[name]
                detect.append(100 * d["recall_at_n_flipped"])
                auroc.append(d["auroc"])
                k = math.ceil(round(PAPER_CONTAMINATION * d["n"], 9))
                paper_metric.append(
                    paper_detection_accuracy(d["n"], d["n_flipped"], d["precision_at_10pct"] * k)
                )
            elif name == "random" and rep["detection"]:
                d = rep["detection"][0]  # expected value: k * n_flipped / n hits
                k = math.ceil(round(PAPER_CONTAMINATION * d["n"], 9))
                paper_metric.append(
                    paper_detection_accuracy(d["n"], d["n_flipped"], k * d["n_flipped"] / d["n"])
                )
            rt = rep["retrain"]
            entries = [r for r in rt["references"] if r["method"] == name] or [
                r for r in rt["rows"] if r["method"] == name
            ]
            if entries:
                acc += [100 * a for a in entries[0]["accuracy"]]
            if name == "random":
                row = next(r for r in rt["rows"] if r["method"] == "random")
                detect.append(100 * row["flipped_trimmed"] / N_FLIPPED)
        paper = PAPER.get(name, (None, None))
        rows.append(
            {
                "method": name,
                "detection_pct": _stats(detect),
                "test_accuracy_pct": _stats(acc),
                "auroc": _stats(auroc),
                "paper_metric_pct": _stats(paper_metric),
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
    from ogad_core.pipeline import load_run_data as _load
    from ogad_core.run.rundir import RunDir

    rd = RunDir(run_dir)
    manifest = rd.read_manifest()
    data = _load(ComputeConfig.from_dict(manifest["config"]), rd)
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
    result["rows"] = summarize(result["per_seed"])
    result["table_md"] = format_table(result["rows"])
    _describe_setup(result["setup"])
    out.write_text(json.dumps(result, indent=2))
    print(result["table_md"])
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    a = ap.parse_args(argv)
    if a.resummarize:
        return resummarize(a.out)

    def log(msg: str) -> None:
        print(f"  {msg}", flush=True)

    import torch

    torch.set_num_threads(a.threads)

    from ogad_core.engine.train import default_recipe

    epochs = a.epochs or default_recipe("tabular").epochs
    t0 = time.perf_counter()
    reports = []
    for seed in range(a.seeds):
        reports.append(
            run_seed(
                seed,
                work_dir=a.work_dir,
                train_seeds=a.train_seeds,
                checkpoints=a.checkpoints,
                epochs=a.epochs,
                log=log,
            )
        )
        rt = reports[-1]["retrain"]
        log(
            f"seed {seed}: evaluated ({rt['models_trained']} models, "
            f"{rt['seconds_per_model']:.1f} s each)"
        )
    rows = summarize(reports)
    table = format_table(rows)
    print(table)
    plot_flags(
        a.work_dir / ("moons_seed0" if a.epochs is None else f"moons_e{a.epochs}_seed0"), a.plot
    )
    fit = [r["flipped_fit_to_given_label"] for r in reports]
    print(
        f"the final model predicts the wrong given label of {100 * np.mean(fit):.0f}% of the "
        "flipped samples (mean over data seeds)"
    )
    print(f"plot: {a.plot}")
    result = {
        "benchmark": "synthetic_moons",
        "setup": {
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
        },
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
        "per_seed": [
            {
                "seed": s,
                "detection": r["detection"],
                "retrain": r["retrain"],
                "flipped_fit_to_given_label": r["flipped_fit_to_given_label"],
            }
            for s, r in enumerate(reports)
        ],
    }
    _describe_setup(result["setup"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
