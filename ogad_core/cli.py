"""The ``ogad`` command line (see ../shared/CONTRACT.md).

Every failure the user can fix prints one line ``ogad: error: ...`` on stderr and exits 2;
a bug prints one line too (``OGAD_DEBUG=1`` shows the traceback) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from ogad_core.errors import ConfigError, OgadError
from ogad_core.options import DEFAULT_DETECTORS

EXIT_USAGE = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _csv_list(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _noise(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ogad",
        description="Outlier Gradient Analysis: find, review and export "
        "the training samples that hurt a model.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("compute", help="train (or load) a model, compute gradients, scores, map")
    c.add_argument(
        "--data",
        required=True,
        help="mnist5k, digits, moons, rotten-tomatoes, imagefolder:PATH or csv:PATH",
    )
    c.add_argument("--run-dir", required=True, type=Path)
    c.add_argument("--model", help="module:factory (or path/to/file.py:factory) of your model")
    c.add_argument("--checkpoint", help="weights (.pt state_dict) for --model; else it is trained")
    c.add_argument(
        "--params",
        default="auto",
        help="last (default), all, or parameter names/prefixes/globs, comma-separated",
    )
    c.add_argument("--proj-dim", type=int, help="random projection of gradients to N dimensions")
    c.add_argument(
        "--noise",
        type=_noise,
        default=0.0,
        help="inject label noise: a rate in [0, 1) or a count (>= 1)",
    )
    c.add_argument("--noise-kind", choices=("symmetric", "asymmetric"), default="symmetric")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument(
        "--checkpoints",
        type=int,
        default=1,
        help="keep K checkpoints over training and take gradients at each (TracIn)",
    )
    c.add_argument("--epochs", type=int, help="training epochs (default: per data kind)")
    c.add_argument("--lr", type=float, help="learning rate (default: per data kind)")
    c.add_argument("--image-size", type=int, default=32, help="side length for your images")
    c.add_argument("--limit", type=int, help="a seeded subset of N training samples")
    c.add_argument(
        "--encoder", help="sentence-transformers model for text (default all-MiniLM-L6-v2, offline)"
    )
    c.add_argument("--finetune", choices=("lora",), help="text: train LoRA adapters too")
    c.add_argument(
        "--detector",
        type=_csv_list,
        default=list(DEFAULT_DETECTORS),
        help=f"detectors to score with (default {','.join(DEFAULT_DETECTORS)})",
    )
    c.add_argument("--per-class", action="store_true", help="one detector per given class")
    c.add_argument("--quiet", action="store_true", help="no progress bars")

    s = sub.add_parser("score", help="(re)score a run's gradients")
    s.add_argument("run_dir", type=Path)
    s.add_argument(
        "--detector",
        type=_csv_list,
        default=list(DEFAULT_DETECTORS),
        help="registry names (iforest,l2,l1,lof,loss,selfconf) or module:Class of "
        "any sklearn outlier detector",
    )
    s.add_argument("--per-class", action="store_true")
    s.add_argument(
        "--embedding",
        choices=("final", "checkpoints"),
        default="final",
        help="final model's gradients, or all checkpoints' side by side",
    )
    s.add_argument("--seed", type=int, default=0)

    m = sub.add_parser("map", help="2-D UMAP map of the gradient embeddings")
    m.add_argument("run_dir", type=Path)
    m.add_argument("--seed", type=int, default=0)

    e = sub.add_parser("evaluate", help="AUROC, AP, precision@k per detector (known noise)")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument(
        "--baselines",
        action="store_true",
        help="also score with cleanlab (cross-validated) and TracIn self-influence",
    )
    e.add_argument(
        "--retrain",
        action="store_true",
        help="trim each detector's top k%%, retrain, report held-out test accuracy",
    )
    e.add_argument(
        "--trim",
        type=_csv_list,
        default=["2.5", "5", "10", "12.5"],
        help="percentages to trim with --retrain (default 2.5,5,10,12.5)",
    )
    e.add_argument("--seeds", type=int, default=3, help="retraining seeds (default 3)")
    e.add_argument(
        "--detector",
        type=_csv_list,
        help="methods to retrain with (default: every scored detector)",
    )
    e.add_argument(
        "--folds",
        type=int,
        default=5,
        help="cross-validation folds of the cleanlab baseline (default 5)",
    )

    x = sub.add_parser("export", help="write the cleaned dataset index as CSV")
    x.add_argument("run_dir", type=Path)
    x.add_argument("--out", required=True, type=Path)
    x.add_argument("--only-kept", action="store_true")
    x.add_argument("--detector", help="whose score and rank to write (default iforest)")

    d = sub.add_parser("dashboard", help="serve the review dashboard on 127.0.0.1")
    d.add_argument("run_dir", type=Path)
    d.add_argument("--port", type=int)

    o = sub.add_parser("demo", help="build the sample run and serve the dashboard")
    o.add_argument("--run-dir", type=Path)
    o.add_argument(
        "--data", choices=("mnist5k", "rotten-tomatoes", "digits", "moons"), default="mnist5k"
    )
    o.add_argument("--no-dashboard", action="store_true")
    o.add_argument("--port", type=int)
    return p


# ---- commands ------------------------------------------------------------------------------


def _cmd_compute(a: argparse.Namespace) -> int:
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline.steps import compute

    config = ComputeConfig(
        data=a.data,
        model=a.model,
        checkpoint=a.checkpoint,
        params=a.params,
        proj_dim=a.proj_dim,
        noise=a.noise,
        noise_kind=a.noise_kind,
        seed=a.seed,
        device=a.device,
        batch_size=a.batch_size,
        checkpoints=a.checkpoints,
        epochs=a.epochs,
        lr=a.lr,
        image_size=a.image_size,
        limit=a.limit,
        encoder=a.encoder,
        finetune=a.finetune,
        detectors=tuple(a.detector),
        per_class=a.per_class,
    )
    manifest = compute(config, a.run_dir, progress=not a.quiet)
    print(
        f"run complete: {Path(a.run_dir).resolve()} "
        f"({manifest['data']['n_samples']} samples, detectors: "
        f"{', '.join(manifest.get('detectors', []))})"
    )
    return 0


def _cmd_score(a: argparse.Namespace) -> int:
    from ogad_core.pipeline.steps import score

    table = score(a.run_dir, a.detector, per_class=a.per_class, seed=a.seed, embedding=a.embedding)
    print(f"wrote {Path(a.run_dir).resolve() / 'scores.parquet'} ({len(table)} rows)")
    return 0


def _cmd_map(a: argparse.Namespace) -> int:
    from ogad_core.pipeline.steps import make_map

    table = make_map(a.run_dir, seed=a.seed)
    print(f"wrote {Path(a.run_dir).resolve() / 'map.parquet'} ({len(table)} points)")
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from ogad_core.evaluation.report import evaluate_run, format_report

    if not (a.retrain or a.baselines):
        # detection metrics only (no training, no re-timing); still written to evaluation.json,
        # keeping the baselines and retraining of an earlier evaluation whose scores are unchanged
        import pandas as pd

        report = evaluate_run(a.run_dir, retrain=False, baselines=False, time_detectors=False)
        table = pd.DataFrame(report.to_json()["detection"]).drop(
            columns=["kind", "seconds", "total_seconds"], errors="ignore"
        )
        if a.json:
            print(json.dumps(table.to_dict(orient="records"), indent=2))
        else:
            print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return 0
    try:
        trim = [float(t) for t in a.trim]
    except ValueError:
        raise ConfigError(f"--trim takes percentages, got {','.join(a.trim)}") from None
    report = evaluate_run(
        a.run_dir,
        retrain=a.retrain,
        baselines=a.baselines,
        trim_percents=trim,
        seeds=a.seeds,
        detectors=a.detector,
        folds=a.folds,
    )
    print(json.dumps(report.to_json(), indent=2) if a.json else format_report(report))
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from ogad_core.review.export import export_csv

    n = export_csv(a.run_dir, a.out, only_kept=a.only_kept, detector=a.detector)
    print(f"wrote {a.out} ({n} rows)")
    return 0


def _serve(run_dir: Path, port: int | None) -> int:
    from ogad_core.run.rundir import RunDir

    RunDir(run_dir).read_manifest()  # a clear error before starting a server
    try:
        from dashboard.serve import serve
    except ImportError as err:
        raise ConfigError(f"the dashboard is not installed ({err})") from None
    return serve(run_dir, port=port)


def _cmd_dashboard(a: argparse.Namespace) -> int:
    return _serve(a.run_dir, a.port)


def _cmd_demo(a: argparse.Namespace) -> int:
    from ogad_core.options import ComputeConfig
    from ogad_core.pipeline.steps import compute

    run_dir = a.run_dir or Path("runs") / f"demo-{a.data}"
    extra = {"limit": 4000} if a.data == "rotten-tomatoes" else {}
    noise = 20 if a.data == "moons" else 0.1
    config = ComputeConfig(data=a.data, noise=noise, noise_kind="symmetric", seed=0, **extra)
    compute(config, run_dir)
    print(f"demo run ready: {Path(run_dir).resolve()}")
    if a.no_dashboard:
        print(f"serve it with: ogad dashboard {run_dir}")
        return 0
    return _serve(Path(run_dir), a.port)


COMMANDS = {
    "compute": _cmd_compute,
    "score": _cmd_score,
    "map": _cmd_map,
    "evaluate": _cmd_evaluate,
    "export": _cmd_export,
    "dashboard": _cmd_dashboard,
    "demo": _cmd_demo,
}


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"ogad: warning: {str(message).splitlines()[0]}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ogad`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warning
    debug = bool(os.environ.get("OGAD_DEBUG"))
    try:
        return COMMANDS[args.command](args)
    except OgadError as err:
        if debug:
            raise
        print(f"ogad: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ogad: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
        if debug:
            raise
        print(f"ogad: error: {err.strerror}: {err.filename}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(
            "ogad: error: out of memory; try a smaller --batch-size or --proj-dim", file=sys.stderr
        )
        return EXIT_USAGE
    except Exception as err:  # a bug: one line, traceback on request
        if debug:
            raise
        msg = str(err).splitlines()[0] if str(err) else ""
        print(
            f"ogad: internal error: {type(err).__name__}: {msg} "
            "(set OGAD_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG


if __name__ == "__main__":
    raise SystemExit(main())
