"""Detection quality on real digits: gradient detectors vs cleanlab (cross-validated) and TracIn.

    python -m benchmarks.bench_quality [--work-dir runs/bench_quality] [--threads 1]
                                       [--retrain --trim 10 --retrain-methods iforest,l2,...]
                                       [--skip-quality] [--skip-checkpoint-study]
                                       [--ckpt-cases asymmetric:0.2:30:6,...] [--fresh]
                                       [--out benchmarks/results/quality.json]

1. **Quality and cost** — mnist5k (4,000 real MNIST digits to clean, 1,000 held out) with 10%
   symmetric label noise, the built-in CNN (12 epochs), 4 checkpoints for TracIn:
   ``ogad compute`` then ``ogad evaluate --baselines`` (5-fold cleanlab CV, TracIn). Reports
   AUROC, AP, precision@k and wall time of iforest / l2 / l1 / lof / loss / selfconf / cleanlab /
   tracin, and the compute ratio of the best gradient detector vs cleanlab. The bar: the best
   gradient detector within 0.01 AUROC of cleanlab's, or better, at a fraction of its compute.
   With ``--retrain``: trim the top k% of the chosen methods, retrain, held-out test accuracy.
2. **Checkpoints vs the final model** — mnist5k with 20% asymmetric noise (c -> c+1) trained
   long (30 and 60 epochs, 6 checkpoints) until it memorises flipped labels, and the default
   12-epoch recipe (20% asymmetric and 10% symmetric, 4 checkpoints): detection from the final
   model's gradients vs ``ogad score --embedding checkpoints`` (all checkpoints' gradients side
   by side), per-checkpoint AUROC of l2, iforest and the loss (the loss at a checkpoint is read
   off its last-layer bias gradient: ``p_y = 1 + dL/db_y``), and TracIn. ``--ckpt-cases`` takes
   ``KIND:RATE:EPOCHS:CHECKPOINTS`` items; a case run again replaces its earlier result, the
   others are kept.

A skipped part keeps its previous result in ``--out``. Timings come from this machine as it is
(shared CPUs are noisy); the run is computed in this process with ``--threads`` torch threads so
that training, CV folds and gradients are timed under the same setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ogad_core.evaluation.schema import EvaluationReport  # noqa: E402  (after the path fix)

QUALITY_CONFIG = dict(
    data="mnist5k", noise=0.1, noise_kind="symmetric", seed=0, params="auto", checkpoints=4
)
CKPT_CASES = (
    "asymmetric:0.2:30:6",
    "asymmetric:0.2:60:6",
    "asymmetric:0.2:12:4",
    "symmetric:0.1:12:4",
)
CKPT_DETECTORS = ("iforest", "l2", "l1")


def _log(msg: str) -> None:
    print(f"  {msg}", flush=True)


def _compute(config_kw: dict[str, Any], run_dir: Path, fresh: bool) -> float:
    """Compute (or reuse) a run; returns the wall time of this call."""
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline import compute

    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    compute(ComputeConfig(device="cpu", **config_kw), run_dir, progress=False)
    return time.perf_counter() - t0


def quality_study(
    work_dir: Path,
    *,
    fresh: bool,
    folds: int,
    retrain: bool,
    trim: list[float],
    retrain_methods: list[str] | None,
    retrain_seeds: int,
) -> EvaluationReport:
    """Part 1: compute (or reuse) the mnist5k run and evaluate it with the baselines."""
    from ogad_core.evaluation.report import evaluate_run, format_report

    run_dir = work_dir / "mnist5k_sym10"
    seconds = _compute(QUALITY_CONFIG, run_dir, fresh)
    _log(f"run ready ({seconds:.0f} s)")
    report = evaluate_run(
        run_dir,
        retrain=retrain,
        baselines=True,
        trim_percents=trim,
        seeds=retrain_seeds,
        detectors=retrain_methods,
        folds=folds,
    )
    print(format_report(report), flush=True)
    return report


def read_quality_report(result: dict[str, Any]) -> EvaluationReport:
    """The evaluation report of a quality.json result (``quality``), typed; ValueError when
    it is missing or unusable."""
    raw = result.get("quality")
    if raw is None:
        raise ValueError("quality.json has no quality report (part 1 never ran)")
    return EvaluationReport.from_json(raw)


def _bias_probs(g: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, C) softmax read off the last-layer bias gradient: dL/db = softmax(z) - onehot(y)."""
    p = np.array(g[:, -n_classes:], dtype=np.float64)
    p[np.arange(labels.shape[0]), labels] += 1.0
    return p


def _bias_loss(g: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) cross-entropy with the given label, from the bias gradient."""
    p_given = _bias_probs(g, labels, n_classes)[np.arange(labels.shape[0]), labels]
    return -np.log(np.clip(p_given, 1e-12, 1.0))


def parse_case(case: str) -> dict[str, Any]:
    """``KIND:RATE:EPOCHS:CHECKPOINTS`` -> the run's config (mnist5k, seed 0, params auto)."""
    try:
        kind, rate, epochs, checkpoints = case.split(":")
        return dict(
            data="mnist5k",
            noise=float(rate),
            noise_kind=kind,
            seed=0,
            params="auto",
            epochs=int(epochs),
            checkpoints=int(checkpoints),
        )
    except ValueError:
        raise SystemExit(
            f"--ckpt-cases: expected KIND:RATE:EPOCHS:CHECKPOINTS, got {case!r}"
        ) from None


def case_id(config: dict[str, Any]) -> str:
    """A short name of a checkpoint-study case: ``asym20_e30``, ``sym10_e12``."""
    kind = {"asymmetric": "asym", "symmetric": "sym"}.get(
        config["noise_kind"], config["noise_kind"]
    )
    return f"{kind}{round(100 * config['noise'])}_e{config['epochs']}"


def _per_checkpoint(
    paths: list[Path], epochs: list[int], samples: Any, n_classes: int
) -> list[dict[str, Any]]:
    """Each checkpoint's gradients alone: fit of the given labels, l2 / iforest / loss AUROC."""
    from ogad_core.scoring.detectors import suspicion_scores
    from ogad_core.scoring.metrics import detection_metrics

    flags = samples["is_flipped"].to_numpy(dtype=bool)
    labels = samples["label"].to_numpy()
    out = []
    for k, (path, epoch) in enumerate(zip(paths, epochs, strict=True)):
        g = np.load(path, mmap_mode="r")
        pred = _bias_probs(g, labels, n_classes).argmax(axis=1)
        row: dict[str, Any] = {
            "checkpoint": k,
            "epoch": epoch,
            "train_acc_on_given_labels": float(np.mean(pred == labels)),
            "flipped_fit_to_given_label": float(np.mean(pred[flags] == labels[flags])),
        }
        scores = {name: suspicion_scores(name, g, samples, seed=0) for name in ("l2", "iforest")}
        scores["loss"] = _bias_loss(g, labels, n_classes)
        for name, s in scores.items():
            m = detection_metrics(s, flags)
            row[f"{name}_auroc"], row[f"{name}_recall_at_n_flipped"] = (
                m["auroc"],
                m["recall_at_n_flipped"],
            )
        out.append(row)
    return out


def _final_vs_checkpoints(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Each detector on the final model's gradients vs on all checkpoints' (``D_ckpt``)."""
    rows = {r["detector"]: r for r in records}
    compare = []
    for name in CKPT_DETECTORS:
        final, ck = rows[name], rows[f"{name}_ckpt"]
        compare.append(
            {
                "detector": name,
                "final_auroc": final["auroc"],
                "checkpoints_auroc": ck["auroc"],
                "final_ap": final["average_precision"],
                "checkpoints_ap": ck["average_precision"],
                "final_recall_at_n_flipped": final["recall_at_n_flipped"],
                "checkpoints_recall_at_n_flipped": ck["recall_at_n_flipped"],
            }
        )
    best_final = max(r["auroc"] for r in records if not r["detector"].endswith("_ckpt"))
    best_ckpt = max(r["auroc"] for r in records if r["detector"].endswith("_ckpt"))
    return {
        "final_vs_checkpoints": compare,
        "best_final_auroc": best_final,
        "best_checkpoints_auroc": best_ckpt,
        "checkpoints_clearly_better": bool(best_ckpt - best_final > 0.01),
    }


def checkpoint_study(work_dir: Path, *, config: dict[str, Any], fresh: bool) -> dict[str, Any]:
    """Part 2 for one case: detection from the final model vs from all checkpoints."""
    from ogad_core.engine.train import checkpoint_epochs, default_recipe
    from ogad_core.evaluation.baselines import checkpoint_gradient_paths, tracin_self_influence
    from ogad_core.pipeline import score
    from ogad_core.run.rundir import RunDir
    from ogad_core.scoring.metrics import detection_metrics, evaluation_table

    run_dir = work_dir / f"mnist5k_{case_id(config)}"
    seconds = _compute(config, run_dir, fresh)
    _log(f"checkpoint run ready ({seconds:.0f} s)")
    rd = RunDir(run_dir)
    manifest = rd.read_manifest()
    if manifest["dims"].get("proj_dim") or manifest.get("params") != "last":
        raise SystemExit("the checkpoint study reads last-layer bias gradients; use params=last")
    score(run_dir, list(CKPT_DETECTORS), embedding="checkpoints")
    samples = rd.read_samples()
    flags = samples["is_flipped"].to_numpy(dtype=bool)
    labels = samples["label"].to_numpy()
    records = evaluation_table(rd.read_scores(), flags).to_dict(orient="records")
    paths = checkpoint_gradient_paths(rd, rd.load_manifest())
    epochs = checkpoint_epochs(config["epochs"], config["checkpoints"])
    tr = detection_metrics(tracin_self_influence(paths, default_recipe("image").lr), flags)
    pred = samples["pred"].to_numpy()
    return {
        "run": {
            "config": config,
            "test_accuracy": manifest["model"]["test_accuracy"],
            "n_flipped": int(flags.sum()),
            "final_train_acc_on_given_labels": float(np.mean(pred == labels)),
            "flipped_predicted_as_given_label": float(np.mean(pred[flags] == labels[flags])),
        },
        "detection": [
            {k: v for k, v in r.items() if k not in ("n", "noise_rate")} for r in records
        ],
        **_final_vs_checkpoints(records),
        "tracin": {
            "auroc": tr["auroc"],
            "average_precision": tr["average_precision"],
            "recall_at_n_flipped": tr["recall_at_n_flipped"],
            "checkpoints": len(paths),
        },
        "per_checkpoint": _per_checkpoint(
            paths, epochs, samples, int(manifest["data"]["n_classes"])
        ),
    }


def plot_quality(
    report: EvaluationReport | None, studies: list[dict[str, Any]], out_dir: Path
) -> list[str]:
    """AUROC vs total compute (mnist5k 10%), and AUROC per checkpoint (each long run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if report is not None:
        paths.append(_plot_cost(report, out_dir, plt, matplotlib))
    for ckpt in studies:
        paths.append(_plot_checkpoints(ckpt, out_dir, plt))
    return paths


def _plot_cost(report: EvaluationReport, out_dir: Path, plt, matplotlib) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = {"gradient": "#2b83ba", "loss-based": "#999999", "baseline": "#d7191c"}
    points: dict[tuple[float, float], list[str]] = {}
    for r in report.detection:
        if r.total_seconds is None:
            continue
        ax.scatter(r.total_seconds, r.auroc, c=colors[r.kind], s=40)
        points.setdefault((round(r.total_seconds, 1), round(r.auroc, 4)), []).append(r.detector)
    for (x, y), names in points.items():  # identical points (loss = selfconf) share a label
        ax.annotate(
            " = ".join(names), (x, y), fontsize=8, xytext=(4, 3), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("total wall time from raw data, s (log; training included)")
    ax.set_ylabel("AUROC (flipped labels)")
    ax.set_title("mnist5k, 10% symmetric noise: quality vs compute", fontsize=10)
    for kind, c in colors.items():
        ax.scatter([], [], c=c, label=kind)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    p = out_dir / "quality_auroc_vs_time.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return str(p)


def _plot_checkpoints(ckpt: dict[str, Any], out_dir: Path, plt) -> str:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.0), gridspec_kw={"width_ratios": [3, 2]})
    epochs = [r["epoch"] for r in ckpt["per_checkpoint"]]
    for key, label, c in (
        ("l2_auroc", "l2 (gradient norm)", "C0"),
        ("iforest_auroc", "iforest", "C1"),
        ("loss_auroc", "loss", "C2"),
    ):
        ax.plot(
            epochs,
            [r[key] for r in ckpt["per_checkpoint"]],
            marker="o",
            c=c,
            label=f"{label} at that checkpoint",
        )
    for r in ckpt["final_vs_checkpoints"]:
        c = {"l2": "C0", "iforest": "C1", "l1": "C3"}[r["detector"]]
        ax.axhline(
            r["checkpoints_auroc"],
            ls=":",
            lw=1.2,
            c=c,
            label=f"{r['detector']} --embedding checkpoints",
        )
    ax.set_xlabel("epoch of the checkpoint")
    ax.set_ylabel("AUROC (flipped labels)")
    ax.set_title("detection from one checkpoint vs all checkpoints", fontsize=9)
    ax.legend(fontsize=7)
    ax2.plot(
        epochs,
        [r["flipped_fit_to_given_label"] for r in ckpt["per_checkpoint"]],
        marker="o",
        c="k",
        label="flipped samples predicted as their wrong label",
    )
    ax2.plot(
        epochs,
        [r["train_acc_on_given_labels"] for r in ckpt["per_checkpoint"]],
        marker="s",
        c="grey",
        label="training accuracy on the given labels",
    )
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("epoch of the checkpoint")
    ax2.set_title("memorisation of the flipped labels", fontsize=9)
    ax2.legend(fontsize=7)
    cfg = ckpt["run"]["config"]
    fig.suptitle(
        f"mnist5k, {100 * cfg['noise']:g}% {cfg['noise_kind']} noise, {cfg['epochs']} epochs",
        fontsize=10,
    )
    fig.tight_layout()
    p = out_dir / f"checkpoint_auroc_{case_id(cfg)}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return str(p)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--work-dir", type=Path, default=Path("runs/bench_quality"))
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: faster than 2 on a shared 2-core machine)",
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--retrain", action="store_true", help="also trim and retrain")
    ap.add_argument("--trim", default="10", help="percentages for --retrain (default 10)")
    ap.add_argument("--retrain-methods", default="iforest,l2,loss,cleanlab,tracin")
    ap.add_argument("--retrain-seeds", type=int, default=1)
    ap.add_argument(
        "--skip-quality",
        action="store_true",
        help="skip part 1 (its previous result in --out is kept)",
    )
    ap.add_argument(
        "--skip-checkpoint-study",
        action="store_true",
        help="skip part 2 (its previous result in --out is kept)",
    )
    ap.add_argument(
        "--ckpt-cases",
        default=",".join(CKPT_CASES),
        help="training lengths of the checkpoint study (default 30,60)",
    )
    ap.add_argument("--fresh", action="store_true", help="recompute the runs from scratch")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quality.json"))
    ap.add_argument("--plots", type=Path, default=Path("docs"))
    return ap


def _print_study(ckpt: dict[str, Any]) -> None:
    for r in ckpt["final_vs_checkpoints"]:
        print(
            f"  {r['detector']:8s} AUROC final {r['final_auroc']:.4f}  checkpoints "
            f"{r['checkpoints_auroc']:.4f}",
            flush=True,
        )
    print(
        f"  tracin AUROC {ckpt['tracin']['auroc']:.4f}; per checkpoint (epoch: l2 / "
        "loss AUROC / flipped fit): "
        + ", ".join(
            f"{r['epoch']}: {r['l2_auroc']:.3f} / {r['loss_auroc']:.3f} / "
            f"{r['flipped_fit_to_given_label']:.2f}"
            for r in ckpt["per_checkpoint"]
        ),
        flush=True,
    )


def checkpoint_studies(
    a: argparse.Namespace, studies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Part 2 for each ``--ckpt-cases`` case; the earlier studies of other cases are kept."""
    cases = [parse_case(c) for c in a.ckpt_cases.split(",") if c.strip()]
    rerun = {case_id(c) for c in cases}
    studies = [s for s in studies if case_id(s["run"]["config"]) not in rerun]
    for config in cases:
        print(
            f"2. checkpoints vs final model: mnist5k, {100 * config['noise']:g}% "
            f"{config['noise_kind']} noise, {config['epochs']} epochs, "
            f"{config['checkpoints']} checkpoints",
            flush=True,
        )
        ckpt = checkpoint_study(a.work_dir, config=config, fresh=a.fresh)
        _print_study(ckpt)
        studies.append(ckpt)
    return sorted(
        studies,
        key=lambda s: (
            s["run"]["config"]["noise_kind"] != "symmetric",
            s["run"]["config"]["epochs"],
        ),
    )


def _previous(out: Path) -> dict[str, Any]:
    """The earlier result file ({} when missing or unreadable)."""
    if not out.is_file():
        return {}
    try:
        old = json.loads(out.read_text())
    except ValueError:
        return {}
    return old if isinstance(old, dict) else {}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = _parser().parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    old = _previous(a.out)
    t0 = time.perf_counter()
    report = read_quality_report(old) if old.get("quality") else None
    if not a.skip_quality:
        print("1. quality and cost: mnist5k, 10% symmetric noise", flush=True)
        report = quality_study(
            a.work_dir,
            fresh=a.fresh,
            folds=a.folds,
            retrain=a.retrain,
            trim=[float(t) for t in a.trim.split(",")],
            retrain_methods=[m for m in a.retrain_methods.split(",") if m],
            retrain_seeds=a.retrain_seeds,
        )
    studies = old.get("checkpoint_studies") or []
    if not a.skip_checkpoint_study:
        studies = checkpoint_studies(a, studies)
    plots = plot_quality(report, studies, a.plots)
    parts = [("quality", a.skip_quality), ("checkpoint_studies", a.skip_checkpoint_study)]
    result = {
        "benchmark": "quality",
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": a.threads,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        "parts_run_now": [p for p, skip in parts if not skip],
        "quality": None if report is None else report.to_json(),
        "checkpoint_studies": studies,
        "plots": plots,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main()
