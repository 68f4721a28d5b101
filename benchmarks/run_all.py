"""Run every benchmark, print one summary table, write benchmarks/results/all.json.

    python -m benchmarks.run_all                  # everything (long: 2-3 h on 2 busy cores)
    python -m benchmarks.run_all --quick          # smaller sizes; results in results/quick/
    python -m benchmarks.run_all --only quality,synthetic_moons --docs
    python -m benchmarks.run_all --skip dashboard,detectors
    python -m benchmarks.run_all --docs-only      # rewrite docs/benchmarks.md from the results
                                                  # (benchmarks run by hand enter all.json too)

The runner (:mod:`benchmarks.runner`) runs each benchmark as its own process and collects the
results; the docs writer (:mod:`benchmarks.docs_writer`) renders docs/benchmarks.md from them;
:mod:`benchmarks.registry` lists the benchmarks. Benchmark modules found in benchmarks/ that the
registry does not know (``bench_*.py``) run with their default arguments. ``--docs`` regenerates
docs/benchmarks.md (tables and plots) from the JSON results after running; the docs always show
the latest result of each benchmark.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.docs_writer import write_docs
from benchmarks.registry import ALL_JSON, QUICK, REPO, Bench, discover
from benchmarks.runner import collect, print_table, run_one, write_all


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--only", help="comma-separated benchmark names to run")
    ap.add_argument("--skip", help="comma-separated benchmark names to skip")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes (minutes, not hours); results go to results/quick/ and "
        "never into the docs",
    )
    ap.add_argument("--timeout", type=float, help="seconds per benchmark before it is killed")
    ap.add_argument("--docs", action="store_true", help="then rewrite docs/benchmarks.md")
    ap.add_argument(
        "--docs-only",
        action="store_true",
        help="only rewrite docs/benchmarks.md from the existing results",
    )
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return ap


def _chosen(
    ap: argparse.ArgumentParser, benches: list[Bench], a: argparse.Namespace
) -> list[Bench]:
    """The benchmarks --only / --skip leave (an unknown name is a usage error)."""
    names = [b.name for b in benches]
    chosen = benches
    for opt, keep in ((a.only, True), (a.skip, False)):
        if opt:
            asked = [s.strip() for s in opt.split(",") if s.strip()]
            unknown = [s for s in asked if s not in names]
            if unknown:
                ap.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
            chosen = [b for b in chosen if (b.name in asked) == keep]
    return chosen


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    a = ap.parse_args(argv)
    benches = discover()
    if a.list:
        for b in benches:
            print(f"{b.name:20s} python -m {b.module} {' '.join(b.args)}")
        return 0
    if a.docs_only:
        write_all(collect(benches))  # also drops benchmarks that no longer exist
        print(f"wrote {write_docs()}")
        return 0
    entries = [run_one(b, quick=a.quick, timeout=a.timeout) for b in _chosen(ap, benches, a)]
    all_json = QUICK / ALL_JSON.name if a.quick else ALL_JSON
    write_all(entries, all_json)
    print_table(entries)
    print(f"wrote {all_json.relative_to(REPO)}")
    if a.docs:
        print(f"wrote {write_docs()}")
    return 0 if all(e["status"] == "ok" for e in entries) else 1


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    raise SystemExit(main())
