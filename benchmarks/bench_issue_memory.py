"""Peak resident memory of an image run's issue pass, per issue type.

    nice -n 10 python -m benchmarks.bench_issue_memory --rows 250000 [--tmp-dir DIR]

The context of ``bench_issues --scale N --images`` (bench_evidence's synthetic gradients, each
row also a deformed mnist5k digit with its properties, signatures and registration images),
then the default issue types fitted in the pass's order: before each type the kernel's
peak-RSS mark is reset (``/proc/self/clear_refs``, Linux), so each type's peak is its own, not
the setup's (``bench_issues --scale``'s ``max_rss_gb`` gives the whole pass's peak beside the
process's). Prints the resident memory before the pass and each type's peak and CPU seconds
(JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def resident_gb() -> tuple[float, float]:
    """The process's resident memory now and its peak since the last reset, GB (Linux)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(  # type: ignore[return-value]
        round(int(status[key].split()[0]) / 2**20, 2) for key in ("VmRSS", "VmHWM")
    )


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current resident memory."""
    Path("/proc/self/clear_refs").write_text("5")


def image_context(n: int, tmp: Path) -> Any:
    """The issue context of ``bench_issues --scale n --images``."""
    from benchmarks.bench_evidence import synthetic_run
    from benchmarks.bench_issues import _digit_context, _planted_digits, scale_context

    grads, samples = synthetic_run(n, tmp)
    x, _, _ = _planted_digits(n, tmp)
    return scale_context(grads, samples, _digit_context(x, tmp))


def measure(n: int, tmp: Path) -> dict[str, Any]:
    """Resident memory before the pass, each type's peak (GB) and CPU seconds (the types in
    the pass's order, each after the searches no later type reads were released)."""
    from ogad_core.issues.registry import resolve_issue_types
    from ogad_core.issues.table import fit_in_turn
    from ogad_core.options import DEFAULT_ISSUE_TYPES

    context = image_context(n, tmp)
    before = resident_gb()[0]
    load = os.getloadavg()[0]
    peak_gb, cpu_s = {}, {}
    reset_peak()
    cpu = time.process_time()
    for est in fit_in_turn(context, resolve_issue_types(DEFAULT_ISSUE_TYPES)):
        cpu_s[est.name] = round(time.process_time() - cpu, 1)
        peak_gb[est.name] = resident_gb()[1]
        reset_peak()
        cpu = time.process_time()
    return {
        "rows": n,
        "resident_before_pass_gb": before,
        "peak_gb": peak_gb,
        "pass_peak_gb": max(peak_gb.values()),
        "cpu_s": cpu_s,
        "load_start": load,
        "load_end": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--tmp-dir", type=Path, default=None)
    a = p.parse_args(argv)
    tmp = a.tmp_dir or Path(tempfile.mkdtemp(prefix="ogad_issue_memory_"))
    tmp.mkdir(parents=True, exist_ok=True)
    print(json.dumps(measure(a.rows, tmp), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
