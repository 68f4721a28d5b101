"""Runs the benchmark processes and collects their results into benchmarks/results/all.json.

Each benchmark runs as its own process (``python -m benchmarks.NAME ARGS``) so that its memory
and timings do not leak into the next; a failing one is reported and the others still run.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.registry import ALL_JSON, QUICK, REPO, RESULTS, Bench, discover, fmt

__all__ = ["collect", "machine", "print_table", "read_all", "run_one", "write_all"]


def bench_args(bench: Bench, quick: bool) -> list[str]:
    """The command-line arguments; quick runs write their results and plots under QUICK."""
    if not quick:
        return list(bench.args)
    args = list(bench.quick_args)
    if bench.result and bench.quick_out:
        args += [bench.quick_out[0], str(QUICK / bench.result)]
    for flag, name in zip(bench.quick_plots[::2], bench.quick_plots[1::2], strict=True):
        args += [flag, str(QUICK / name) if name else str(QUICK)]
    return args


@dataclass
class _Outcome:
    """How a benchmark process ended: exit code, wall time, its last output lines."""

    code: int = 0
    seconds: float = 0.0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=15))


def _stream(cmd: list[str], timeout: float | None) -> _Outcome:
    """Run ``cmd`` in its own process group, echoing its output; killed after ``timeout`` s."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    out = _Outcome()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )

    def kill_group() -> None:  # the benchmark and any process it started
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill_group) if timeout else None
    if timer is not None:
        timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            out.tail.append(line.rstrip("\n"))
        out.code = proc.wait()
    except KeyboardInterrupt:
        kill_group()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    out.seconds = time.perf_counter() - t0
    return out


def _fresh_result(bench: Bench, folder: Path, before: dict[Path, float]) -> Path | None:
    """The result file this run wrote (an unknown module: the newest new JSON)."""
    for p in bench.result_files(folder):
        if p.is_file() and p.stat().st_mtime > before.get(p, 0):
            return p
    if bench.result is not None:
        return None
    fresh = [
        p
        for p in folder.glob("*.json")
        if p.name != ALL_JSON.name and p.stat().st_mtime > before.get(p, 0)
    ]
    return max(fresh, key=lambda p: p.stat().st_mtime) if fresh else None


def summarize_file(bench: Bench, path: Path) -> str:
    """The benchmark's one-line summary of its result file (or why there is none)."""
    try:
        return bench.summarize(json.loads(path.read_text(encoding="utf-8")))
    except (KeyError, TypeError, ValueError) as err:
        return f"(cannot summarise {path.name}: {type(err).__name__} {err})"


def _entry(bench: Bench, **fields: Any) -> dict[str, Any]:
    """An all.json entry: the benchmark's name, module and note, and ``fields``."""
    return {"name": bench.name, "module": bench.module, **fields}


def run_one(bench: Bench, *, quick: bool, timeout: float | None) -> dict[str, Any]:
    """Run one benchmark in a child process, echoing its output; returns its all.json entry."""
    args = bench_args(bench, quick)
    folder = QUICK if quick else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", bench.module, *args]
    print(f"\n=== {bench.name}: {' '.join(cmd[1:])}", flush=True)
    before = {p: p.stat().st_mtime for p in folder.glob("*.json")}
    outcome = _stream(cmd, timeout)
    status = "ok"
    if outcome.code != 0:
        status = "timeout" if timeout and outcome.seconds >= timeout else "failed"
    result = _fresh_result(bench, folder, before)
    summary = ""
    if result is not None and status == "ok":
        summary = summarize_file(bench, result)
    elif status != "ok":
        summary = next((t for t in reversed(outcome.tail) if t.strip()), "")[:200]
    return _entry(
        bench,
        args=args,
        quick=quick,
        status=status,
        returncode=outcome.code,
        seconds=round(outcome.seconds, 1),
        result_file=str(result.relative_to(REPO)) if result else None,
        summary=summary,
        note=bench.note,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def machine() -> dict[str, Any]:
    """CPUs, platform, Python, torch and CUDA of this machine, and its load average."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
    except ImportError:
        pass
    return info


def print_table(entries: list[dict[str, Any]]) -> None:
    """The summary table of this invocation's benchmarks."""
    print("\n=== summary")
    w = max([len(e["name"]) for e in entries] + [9])
    print(f"{'benchmark':<{w}}  {'status':<11} {'seconds':>8}  key figures")
    for e in entries:
        print(f"{e['name']:<{w}}  {e['status']:<11} {fmt(e['seconds'], '8.1f'):>8}  {e['summary']}")


def read_all(path: Path = ALL_JSON) -> dict[str, Any] | None:
    """An all.json document (None when missing or unreadable)."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _entries(path: Path) -> dict[str, dict[str, Any]]:
    """The entries of an all.json by benchmark name ({} when missing or unreadable)."""
    try:
        return {e["name"]: e for e in (read_all(path) or {})["benchmarks"]}
    except (KeyError, TypeError):
        return {}


def collect(benches: list[Bench]) -> list[dict[str, Any]]:
    """Entries for results written outside run_all (a benchmark run by hand): the result file's
    summary and time, status ``from file``; only where all.json has nothing newer."""
    known = _entries(ALL_JSON)
    out = []
    for bench in benches:
        path = next((p for p in bench.result_files(RESULTS) if p.is_file()), None)
        if path is None:
            continue
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        if bench.name in known and known[bench.name]["finished"] >= stamp:
            continue
        out.append(
            _entry(
                bench,
                args=None,
                quick=False,
                status="from file",
                returncode=None,
                seconds=None,
                result_file=str(path.relative_to(REPO)),
                summary=summarize_file(bench, path),
                note="run outside run_all; figures from its result file",
                finished=stamp,
            )
        )
    return out


def write_all(entries: list[dict[str, Any]], path: Path = ALL_JSON) -> dict[str, Any]:
    """Merge this invocation's entries over the previous all.json (keyed by name)."""
    old = _entries(path)
    for e in entries:
        old[e["name"]] = e
    order = [b.name for b in discover()]  # benchmarks that no longer exist are dropped
    kept = sorted(
        (e for name, e in old.items() if name in order), key=lambda e: order.index(e["name"])
    )
    doc = {
        "machine": machine(),
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "benchmarks": kept,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc
