"""Concurrent reviewers: throughput of reviews.sqlite and no decision lost across kill -9.

    python -m benchmarks.bench_reviewers [--writers 8] [--decisions 1500] [--kill-rounds 5]

Phase 1 (throughput): ``writers`` processes each save ``decisions`` decisions (confirm,
reject, relabel, and an undo now and then) on samples they share with the others, through
:class:`ReviewStore` (one ``BEGIN IMMEDIATE`` transaction each). They start together; the
figure is all decisions over the wall time from the start signal to the last writer's end.

Phase 2 (crashes): ``kill_writers`` fresh writers run; after a random 0.3-2 s all of them get
SIGKILL, ``kill_rounds`` times; then they finish undisturbed. Each writer logs the history id
of every decision the store acknowledged (after the commit returned). At the end every
acknowledged id must be in the history with its sample and reviewer, ``PRAGMA
integrity_check`` must say ok, and ``ogad export`` must agree with the decisions in effect.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

N_SAMPLES = 3000
SHARED = 600  # samples every writer draws from (conflicts on purpose)


# ---- one writer ------------------------------------------------------------------------------


def _acked(log: Path) -> tuple[int, list[tuple[int, int, int]]]:
    """(the next step to run, [(step, history id, sample id)]) from a writer's log."""
    rows = []
    if log.is_file():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:  # a half-written last line is ignored
                rows.append(tuple(int(p) for p in parts))
    return (rows[-1][0] + 1 if rows else 0), rows


def _decide(store, name: str, seed: int, step: int, n_classes: int):
    """The decision of ``step`` (seeded): undo, relabel, confirm or reject a shared sample."""
    rng = np.random.default_rng([seed, step])
    sid = int(rng.integers(0, SHARED))
    op = rng.random()
    if op < 0.08:
        return store.undo_last(reviewer=name, session_id=name)
    if op < 0.3:
        label = (store._label_of[sid] + 1 + int(rng.integers(0, n_classes - 1))) % n_classes
        return store.relabel(sid, label, reviewer=name, session_id=name)
    if op < 0.65:
        return store.confirm(sid, reviewer=name, session_id=name)
    return store.reject(sid, reviewer=name, session_id=name)


def _decide_with_retry(store, name: str, seed: int, step: int, n_classes: int, busy: list[int]):
    """:func:`_decide`, retried when the store answers "database is locked" (the busy timeout
    ran out: not acknowledged, so nothing is lost; the dashboard shows it and the reviewer
    clicks again)."""
    from ogad_core.errors import RunDirError

    while True:
        try:
            return _decide(store, name, seed, step, n_classes)
        except RunDirError as err:
            if "locked" not in str(err):
                raise
            busy[0] += 1


def writer(run: Path, name: str, n: int, seed: int, log: Path, go: Path | None) -> None:
    """Save ``n`` decisions as reviewer ``name``; resumes after the last logged step."""
    from ogad_core.review.store import ReviewStore

    store = ReviewStore(run)
    n_classes = len(store.label_names)
    start, _ = _acked(log)
    if go is not None:
        log.with_suffix(".ready").touch()
        while not go.exists():
            time.sleep(0.002)
    busy = [0]  # decisions refused with "database is locked" (then retried, as a reviewer would)
    with open(log, "a", encoding="utf-8") as fh:
        for step in range(start, n):
            entry = _decide_with_retry(store, name, seed, step, n_classes, busy)
            hid, esid = (entry.id, entry.sample_id) if entry is not None else (0, -1)
            fh.write(f"{step} {hid} {esid}\n")
            fh.flush()  # in the kernel: survives the process's kill -9
    log.with_suffix(".end").write_text(f"{time.time()!r} {busy[0]}")


def _spawn(run: Path, name: str, n: int, seed: int, log: Path, go: Path | None):
    args = [sys.executable, "-m", "benchmarks.bench_reviewers", "--writer", str(run), name]
    args += [str(n), str(seed), str(log), str(go) if go else "-"]
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


# ---- the benchmark ---------------------------------------------------------------------------


def _make_run(root: Path) -> Path:
    from ogad_core.testing import make_run

    return make_run(root / "run", kind="tabular", n=N_SAMPLES, with_map=False)


def throughput(run: Path, writers: int, decisions: int, folder: Path) -> dict:
    go = folder / "go"
    procs = [_spawn(run, f"w{k}", decisions, k, folder / f"w{k}.log", go) for k in range(writers)]
    while sum(1 for _ in folder.glob("w*.ready")) < writers:  # every writer imported, opened
        if any(p.poll() for p in procs):
            raise SystemExit("a writer failed to start")
        time.sleep(0.05)
    t0 = time.time()
    go.touch()
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a writer failed: exit codes {codes}")
    ends = [f.read_text().split() for f in folder.glob("w*.end")]
    seconds = max(float(end) for end, _ in ends) - t0
    return {
        "writers": writers,
        "decisions": writers * decisions,
        "seconds": round(seconds, 3),
        "decisions_per_s": round(writers * decisions / seconds, 1),
        "busy_retries": sum(int(busy) for _, busy in ends),
    }


def _lines(log: Path) -> int:
    return log.read_bytes().count(b"\n") if log.is_file() else 0


def _kill_while_writing(procs: list, logs: list[Path], rng: np.random.Generator) -> int:
    """Wait until every writer has logged a new decision, then SIGKILL them all after a random
    0.1-1.5 s; returns how many were killed while still running."""
    before = [_lines(log) for log in logs]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(
        _lines(log) == n and p.poll() is None for log, n, p in zip(logs, before, procs, strict=True)
    ):
        time.sleep(0.02)
    time.sleep(float(rng.uniform(0.1, 1.5)))
    killed = 0
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
    return killed


def crash_rounds(run: Path, writers: int, decisions: int, rounds: int, folder: Path) -> dict:
    rng = np.random.default_rng(1)
    names = [f"k{k}" for k in range(writers)]
    logs = [folder / f"{n}.log" for n in names]
    kills = 0
    for _ in range(rounds):
        procs = [
            _spawn(run, n, decisions, 100 + k, log, None)
            for k, (n, log) in enumerate(zip(names, logs, strict=True))
        ]
        kills += _kill_while_writing(procs, logs, rng)
    procs = [
        _spawn(run, n, decisions, 100 + k, log, None)
        for k, (n, log) in enumerate(zip(names, logs, strict=True))
    ]
    if any(p.wait() for p in procs):
        raise SystemExit("a writer failed after the kill rounds")
    return {"writers": writers, "rounds": rounds, "kills_while_writing": kills}


def verify(run: Path, folder: Path) -> dict:
    """Every acknowledged decision is in the history; integrity ok; export matches."""
    from ogad_core.review.export import build_export_frame
    from ogad_core.review.store import ReviewStore

    con = sqlite3.connect(run / "reviews.sqlite")
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    history = {
        hid: (sid, who)
        for hid, sid, who in con.execute("SELECT id, sample_id, reviewer FROM history")
    }
    con.close()
    acked = lost = 0
    for log in sorted(folder.glob("*.log")):
        _, rows = _acked(log)
        for _step, hid, sid in rows:
            if hid == 0:
                continue  # an undo with nothing to undo
            acked += 1
            if history.get(hid) != (sid, log.stem):
                lost += 1
    current = ReviewStore(run).current().set_index("sample_id")
    frame = build_export_frame(run).set_index("sample_id")
    mismatched = int(
        (frame.loc[current.index, "decision"] != current["decision"]).sum()
        + (frame.drop(index=current.index)["decision"] != "unreviewed").sum()
    )
    return {
        "acknowledged": acked,
        "lost": lost,
        "integrity": integrity,
        "export_mismatches": mismatched,
        "history_rows": len(history),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--decisions", type=int, default=1500)
    ap.add_argument("--kill-writers", type=int, default=4)
    ap.add_argument("--kill-decisions", type=int, default=1500)
    ap.add_argument("--kill-rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/reviewers.json")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ogad_bench_reviewers_") as tmp:
        folder = Path(tmp)
        run = _make_run(folder)
        result = {
            "benchmark": "reviewers",
            "throughput": throughput(run, a.writers, a.decisions, folder),
            "crashes": crash_rounds(run, a.kill_writers, a.kill_decisions, a.kill_rounds, folder),
        }
        result["check"] = verify(run, folder)
    result.update(
        cpus=os.cpu_count(),
        platform=platform.platform(),
        load_avg=os.getloadavg(),
        samples=N_SAMPLES,
        shared_samples=SHARED,
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    check = result["check"]
    if check["lost"] or check["integrity"] != "ok" or check["export_mismatches"]:
        raise SystemExit("FAILED: decisions lost or the store is inconsistent")
    return result


def docs_section(r: dict | None) -> str:
    """The docs/benchmarks.md section of a result (for benchmarks.run_all)."""
    head = "## Concurrent reviewers (reviews.sqlite)\n"
    if not r:
        return head + "\n_Not measured yet: run `python -m benchmarks.run_all --only reviewers`._\n"
    t, c, k = r["throughput"], r["crashes"], r["check"]
    return (
        head + f"\n`python -m benchmarks.bench_reviewers` — {t['writers']} writer processes x "
        f"{t['decisions'] // t['writers']:,} decisions (confirm / reject / relabel / undo) on "
        f"{r['shared_samples']} shared samples: **{t['decisions_per_s']:,.0f} decisions/s** "
        f"({t['decisions']:,} in {t['seconds']:.1f} s, {r['cpus']} busy CPUs, load "
        f"{r['load_avg'][0]:.1f}; {t.get('busy_retries', 0)} decisions refused with "
        "'database is locked' and clicked again). "
        f"Then {c['rounds']} rounds of kill -9 on {c['writers']} "
        f"writers while they wrote ({c['kills_while_writing']} kills): "
        f"{k['acknowledged']:,} acknowledged decisions, "
        f"**{k['lost']} lost**, integrity_check {k['integrity']}, export mismatches "
        f"{k['export_mismatches']}.\n"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        run_, name_, n_, seed_, log_, go_ = sys.argv[2:8]
        writer(
            Path(run_), name_, int(n_), int(seed_), Path(log_), None if go_ == "-" else Path(go_)
        )
    else:
        main()
