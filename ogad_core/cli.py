"""The ``ogad`` command line (see ../shared/CONTRACT.md).

Each command's flags are generated from its options dataclass in :mod:`ogad_core.options` (the
single source of every option's default, help and validation). Every failure the user can fix
prints one line ``ogad: error: ...`` on stderr and exits 2; a bug prints one line too
(``OGAD_DEBUG=1`` shows the traceback) and exits 1. Progress goes to the ``ogad`` logger, which
this module shows on stderr (``--quiet``: warnings only, ``-v``: debug too).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import sys
import typing
import warnings
from collections.abc import Callable
from dataclasses import MISSING, Field
from pathlib import Path
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Any

from ogad_core import __version__
from ogad_core._internal import folded, log, one_line, user_code_frame
from ogad_core.errors import OgadError
from ogad_core.options import (
    RUN_DIR_HELP,
    ComputeConfig,
    DashboardOptions,
    DemoOptions,
    EvaluateOptions,
    ExportOptions,
    IssuesOptions,
    MapOptions,
    ReportOptions,
    ScoreOptions,
    option_fields,
)

if TYPE_CHECKING:
    from ogad_core.evaluation.schema import EvaluationReport

EXIT_USAGE = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130

EXAMPLES = {
    "compute": [
        "ogad compute --data mnist5k --noise 0.1 --run-dir runs/mnist",
        "ogad compute --data imagefolder:photos/ --image-size 64 --run-dir runs/photos",
        "ogad compute --data csv:reviews.csv --run-dir runs/reviews --detector l2,loss",
        "ogad compute --data csv:x.csv --model mypkg.nets:make --checkpoint w.pt --run-dir runs/x",
        "ogad compute --data mnist5k --run-dir runs/mnist --engine ray --ray-address HEAD:6379",
    ],
    "score": ["ogad score runs/mnist --detector iforest,l2", "ogad score runs/mnist --per-class"],
    "map": ["ogad map runs/mnist --seed 1"],
    "evaluate": ["ogad evaluate runs/mnist", "ogad evaluate runs/mnist --baselines --retrain"],
    "issues": [
        "ogad issues runs/mnist",
        "ogad issues runs/mnist --issue-type duplicate,outlier,mypkg.issues:Blurry",
    ],
    "export": ["ogad export runs/mnist --out cleaned.csv --only-kept"],
    "report": ["ogad report runs/mnist --out mnist_report.html"],
    "dashboard": ["ogad dashboard runs/mnist --port 8502"],
    "demo": ["ogad demo", "ogad demo --data rotten-tomatoes --no-dashboard"],
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


# ---- parsers generated from the options dataclasses -----------------------------------------


def _scalar(kind: type) -> Callable[[str], Any]:
    """A string -> value converter with a readable error (argparse shows it in one line)."""

    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            what = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None

    convert.__name__ = kind.__name__
    return convert


def _comma_list(kind: type) -> Callable[[str], tuple[Any, ...]]:
    item = _scalar(kind)

    def convert(text: str) -> tuple[Any, ...]:
        items = [v.strip() for v in text.split(",") if v.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        return tuple(item(v) for v in items)

    return convert


METAVARS = {int: "N", float: "X", Path: "PATH", str: "TEXT"}


def _field_kind(hint: Any) -> tuple[str, Callable[[str], Any] | None, str]:
    """('flag' | 'value', converter, metavar) for a field's type hint (optional unwrapped)."""
    args = [a for a in typing.get_args(hint) if a is not NoneType]
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        hint = args[0]
    if hint is bool:
        return "flag", None, ""
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return "value", _comma_list(item), f"{METAVARS[item]},..."
    return "value", _scalar(hint), METAVARS[hint]


def _default_text(f: Field[Any]) -> str:
    default = f.default if f.default_factory is MISSING else f.default_factory()
    if default is MISSING or default is None or default is False or default == ():
        return ""
    if isinstance(default, tuple):
        default = ",".join(str(v) for v in default)
    return f" (default: {default})"


def flag_of(f: Field[Any]) -> str:
    """The command-line flag of an options field (``proj_dim`` -> ``--proj-dim``)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _add_field(parser: argparse.ArgumentParser, f: Field[Any], hint: Any) -> None:
    meta = f.metadata
    kind, convert, metavar = _field_kind(hint)
    convert = convert or str
    text = meta["help"] + _default_text(f)
    if meta.get("positional"):
        parser.add_argument(f.name, type=convert, help=text, metavar=f.name.upper())
        return
    common: dict[str, Any] = {"dest": f.name, "help": text, "default": argparse.SUPPRESS}
    if kind == "flag":
        parser.add_argument(flag_of(f), action="store_true", **common)
        return
    required = f.default is MISSING and f.default_factory is MISSING
    parser.add_argument(
        flag_of(f),
        type=convert,
        required=required,
        choices=meta.get("choices"),
        metavar=meta.get("metavar") or (None if meta.get("choices") else metavar),
        **common,
    )


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one argument per option field of ``cls`` (its help shows the default)."""
    hints = typing.get_type_hints(cls)
    for f in option_fields(cls):
        _add_field(parser, f, hints[f.name])


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="warnings and errors only")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug messages too")


COMMAND_OPTIONS: dict[str, tuple[type, str]] = {
    "compute": (ComputeConfig, "train (or load) a model; compute gradients, scores and the map"),
    "score": (ScoreOptions, "(re)score a run's gradients with outlier detectors"),
    "map": (MapOptions, "2-D UMAP map of the gradient embeddings"),
    "issues": (IssuesOptions, "find label issues, duplicates, outliers, corrupt inputs"),
    "evaluate": (EvaluateOptions, "AUROC, AP, precision@k per detector (needs known noise)"),
    "export": (ExportOptions, "write the cleaned dataset index as CSV"),
    "report": (ReportOptions, "write one self-contained HTML report (charts, tables, samples)"),
    "dashboard": (DashboardOptions, "serve the review dashboard (on 127.0.0.1 unless --host)"),
    "demo": (DemoOptions, "build the sample run (10%% label noise) and serve the dashboard"),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``ogad`` parser: one sub-command per entry of :data:`COMMAND_OPTIONS`."""
    p = _Parser(
        prog="ogad",
        description="Outlier Gradient Analysis: find, review and export "
        "the training samples that hurt a model.",
    )
    p.add_argument("--version", action="version", version=f"ogad {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (cls, summary) in COMMAND_OPTIONS.items():
        epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name])
        c = sub.add_parser(
            name,
            help=summary,
            description=summary.replace("%%", "%"),  # a description is printed raw
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name == "compute":
            c.add_argument("--run-dir", required=True, type=Path, help=RUN_DIR_HELP)
        add_options(c, cls)
        _add_output_flags(c)
    return p


def options_from(args: argparse.Namespace, cls: type) -> Any:
    """The options dataclass ``cls`` from parsed arguments (defaults where a flag is absent)."""
    given = {f.name: getattr(args, f.name) for f in option_fields(cls) if hasattr(args, f.name)}
    return cls(**given)


def _flags_by_param() -> dict[str, str]:
    return {
        f.name: flag_of(f)
        for cls, _ in COMMAND_OPTIONS.values()
        for f in option_fields(cls)
        if not f.metadata.get("positional")
    }


def user_message(err: OgadError) -> str:
    """The error as the CLI shows it: the parameter it starts with, and any parameter it names
    in backticks (`model`), shown as flags."""
    flags = _flags_by_param()
    text = re.sub(r"`(\w+)`", lambda m: flags.get(m.group(1), m.group(0)), str(err))
    flag = flags.get(err.param or "")
    if flag and err.param and text.startswith(err.param):
        return flag + text[len(err.param) :]
    return text


# ---- commands ------------------------------------------------------------------------------


def _cmd_compute(a: argparse.Namespace) -> int:
    from ogad_core.pipeline import compute

    config = options_from(a, ComputeConfig)
    manifest = compute(config, a.run_dir, progress=not a.quiet)
    detectors = ", ".join(manifest.get("detectors", []))
    print(
        f"run complete: {Path(a.run_dir).resolve()} "
        f"({manifest['data']['n_samples']} samples, detectors: {detectors})"
    )
    print(f"next: ogad dashboard {_shell_word(str(a.run_dir))}   # review the flagged samples")
    return 0


def _shell_word(text: str) -> str:
    """``text`` quoted for a POSIX shell where it needs it (a path printed as a command)."""
    import shlex

    return shlex.quote(text)


def _cmd_score(a: argparse.Namespace) -> int:
    from ogad_core.pipeline import score

    o = options_from(a, ScoreOptions)
    table = score(o.run_dir, o.detectors, per_class=o.per_class, seed=o.seed, embedding=o.embedding)
    print(f"wrote {Path(o.run_dir).resolve() / 'scores.parquet'} ({len(table)} rows)")
    return 0


def _cmd_map(a: argparse.Namespace) -> int:
    from ogad_core.pipeline import make_map

    o = options_from(a, MapOptions)
    table = make_map(o.run_dir, seed=o.seed)
    print(f"wrote {Path(o.run_dir).resolve() / 'map.parquet'} ({len(table)} points)")
    return 0


def _cmd_issues(a: argparse.Namespace) -> int:
    from ogad_core.pipeline.issue_step import find_issues

    o = options_from(a, IssuesOptions)
    table = find_issues(o.run_dir, o.issue_types, seed=o.seed, holdout=o.holdout, workers=o.workers)
    counts = table[table["flagged"]].groupby("issue", sort=False)["sample_id"].size()
    found = ", ".join(f"{name} {int(counts.get(name, 0))}" for name in table["issue"].unique())
    print(f"wrote {Path(o.run_dir).resolve() / 'issues.parquet'} (flagged: {found})")
    if o.features_map:
        from ogad_core.pipeline.issue_step import features_map

        n = len(features_map(o.run_dir, seed=o.seed))
        print(f"wrote {Path(o.run_dir).resolve() / 'map_features.parquet'} ({n} points)")
    return 0


def _print_detection(report: EvaluationReport, as_json: bool) -> None:
    import pandas as pd

    table = pd.DataFrame(report.to_json()["detection"]).drop(
        columns=["kind", "seconds", "total_seconds"], errors="ignore"
    )
    if as_json:
        print(json.dumps(table.to_dict(orient="records"), indent=2))
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from ogad_core.run.lock import run_lock

    o = options_from(a, EvaluateOptions)
    with run_lock(o.run_dir, "evaluate"):  # evaluation.json: one writer at a time
        return _evaluate(o)


def _evaluate(o: EvaluateOptions) -> int:
    from ogad_core.evaluation.report import evaluate_run, format_report

    if not (o.retrain or o.baselines):
        # detection metrics only (no training, no re-timing); still written to evaluation.json,
        # keeping the baselines and retraining of an earlier evaluation whose scores are unchanged
        report = evaluate_run(o.run_dir, retrain=False, baselines=False, time_detectors=False)
        _print_detection(report, o.json)
        return 0
    report = evaluate_run(
        o.run_dir,
        retrain=o.retrain,
        baselines=o.baselines,
        trim_percents=list(o.trim),
        seeds=o.seeds,
        detectors=list(o.detectors) if o.detectors else None,
        folds=o.folds,
    )
    print(json.dumps(report.to_json(), indent=2) if o.json else format_report(report))
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from ogad_core.review.export import export_csv

    o = options_from(a, ExportOptions)
    n = export_csv(o.run_dir, o.out, only_kept=o.only_kept, detector=o.detector, raw=o.raw)
    print(f"wrote {o.out} ({n} rows)")
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from ogad_core.reporting.report import write_report

    o = options_from(a, ReportOptions)
    path = write_report(o.run_dir, o.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; opens offline in a browser)")
    return 0


def _serve(run_dir: Path, port: int | None, host: str = "127.0.0.1") -> int:
    from ogad_core.run.rundir import RunDir

    RunDir(run_dir).read_manifest()  # a clear error before starting a server
    try:
        from dashboard.serve import serve
    except ImportError as err:
        raise OgadError(f"the dashboard is not installed ({err})") from None
    return serve(run_dir, port=port, host=host)


def _cmd_dashboard(a: argparse.Namespace) -> int:
    o = options_from(a, DashboardOptions)
    return _serve(o.run_dir, o.port, o.host)


def _cmd_demo(a: argparse.Namespace) -> int:
    from ogad_core.pipeline import compute

    o = options_from(a, DemoOptions)
    run_dir = o.run_dir or Path("runs") / f"demo-{o.data}"
    limit = 4000 if o.data == "rotten-tomatoes" else None
    noise = 20 if o.data == "moons" else 0.1
    config = ComputeConfig(data=o.data, noise=noise, noise_kind="symmetric", seed=0, limit=limit)
    compute(config, run_dir, progress=not a.quiet)
    print(f"demo run ready: {Path(run_dir).resolve()}")
    if o.no_dashboard:
        print(f"serve it with: ogad dashboard {run_dir}")
        return 0
    return _serve(Path(run_dir), o.port)


COMMANDS = {
    "compute": _cmd_compute,
    "score": _cmd_score,
    "map": _cmd_map,
    "issues": _cmd_issues,
    "evaluate": _cmd_evaluate,
    "export": _cmd_export,
    "report": _cmd_report,
    "dashboard": _cmd_dashboard,
    "demo": _cmd_demo,
}


# ---- output and errors ---------------------------------------------------------------------


class _Formatter(logging.Formatter):
    """``ogad: message``; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        return f"ogad: {level}{record.getMessage()}"


def setup_output(quiet: bool, verbose: bool) -> None:
    """Show the ``ogad`` logger on stderr (INFO; ``quiet``: WARNING; ``verbose``: DEBUG) and
    Python warnings as one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    warnings.showwarning = _one_line_warning
    if quiet:
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _one_line_warning(message: Warning | str, *_args: Any, **_kwargs: Any) -> None:
    log.warning(one_line(message))


#: errno values of a full disk (or a file size limit)
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: how libraries that do not raise OSError (torch, pyarrow) word a full disk / no memory
DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "file too large")
MEMORY_TEXT = ("defaultcpuallocator", "can't allocate memory", "out of memory", "bad_alloc")


def disk_full_message(err: BaseException) -> str | None:
    """One line for an error that means the disk is full, else None."""
    full = isinstance(err, OSError) and err.errno in DISK_FULL
    if not (full or any(t in str(err).lower() for t in DISK_FULL_TEXT)):
        return None
    where = f" writing {err.filename}" if isinstance(err, OSError) and err.filename else ""
    return (
        f"no space left on the device{where}; free some space and run the same command "
        "again (finished work is kept and checked)"
    )


def memory_message(err: BaseException) -> str | None:
    """One line for an allocator failure (MemoryError, torch's allocator), else None."""
    if not (isinstance(err, MemoryError) or any(t in str(err).lower() for t in MEMORY_TEXT)):
        return None
    return (
        f"out of memory ({one_line(err, 100)}); try a smaller --batch-size, --image-size or "
        "--proj-dim"
    )


def _known_failure(err: BaseException) -> str | None:
    """The one line for a failure the user can fix that is not an OgadError, else None."""
    path_errors = PermissionError | FileNotFoundError | IsADirectoryError | NotADirectoryError
    if isinstance(err, path_errors):
        return f"{err.strerror}: {err.filename}; check the path and its permissions"
    return disk_full_message(err) or memory_message(err)


def _run(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except OgadError as err:
        log.error(folded(user_message(err)))
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted; run the same command again to resume")
        return EXIT_INTERRUPTED
    except SystemExit as err:  # argparse exits before this: here it comes from the user's code
        where = user_code_frame(err) or "the user's code"
        log.error(
            f"{where} called sys.exit({err.code!r}) during `ogad {args.command}`; a model, "
            "factory, transform or detector must raise an exception or return, never exit"
        )
        return EXIT_USAGE
    except Exception as err:
        message = _known_failure(err) or _user_code_failure(err)
        if message is None:
            raise
        log.error(folded(message))
        return EXIT_USAGE


def _user_code_failure(err: BaseException) -> str | None:
    """One line for an exception raised inside the user's model, factory, transform or
    detector (named by file:line), else None."""
    where = user_code_frame(err)
    if where is None:
        return None
    return (
        f"your code failed at {where}: {type(err).__name__}: {folded(err, 300)}; fix it "
        "and run the same command again (finished steps are kept)"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ogad`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    setup_output(args.quiet, args.verbose)
    if os.environ.get("OGAD_DEBUG"):
        return COMMANDS[args.command](args)
    try:
        return _run(args)
    except Exception as err:  # a bug: one line, traceback on request
        log.error(
            f"internal error: {type(err).__name__}: {folded(one_line(err), 300)} "
            "(set OGAD_DEBUG=1 for the traceback)"
        )
        return EXIT_BUG


if __name__ == "__main__":
    raise SystemExit(main())
