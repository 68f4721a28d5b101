"""Review speed in the browser (not a test): a key press → the next card has the focus.

    python -m benchmarks.bench_review_keys [--n 50000] [--repeats 8] [--out FILE.json]

On a prepared image run of ``--n`` samples with (N, 64) gradient embeddings, served on
127.0.0.1 and driven by headless Chromium: press ``C`` on the focused card and time until that
card is gone and another card has the focus (end to end: key → callback → decision saved →
fragment rerun → browser update). Measured with re-ranking off (the detector's order) and on
(after 2 + 2 decisions the queue is re-ordered by the decision model on every press), with the
map shown. Prints a table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.bench_dashboard import start_server, stop_server  # noqa: E402
from dashboard.serve import free_port  # noqa: E402
from ogad_core.review.store import CONFIRMED, REJECTED, ReviewStore  # noqa: E402
from ogad_core.scoring.evidence import ensure_evidence  # noqa: E402
from ogad_core.testing import CHROMIUM, CHROMIUM_ARGS, make_run  # noqa: E402

TARGET_MS = 300.0
FOCUSED_JS = "() => document.body.dataset.ogadFocus || ''"


def prepare_run(root: Path, n: int) -> Path:
    """An image run of ``n`` samples with gradients whose flipped rows stand apart, and the
    review evidence (neighbours, suggestions, re-rank features) written."""
    run = make_run(root / "run", kind="image", n=n, n_images=200)
    flipped = pd.read_parquet(run / "samples.parquet")["is_flipped"].to_numpy()
    grads = np.random.default_rng(0).normal(0, 1, (n, 64)).astype(np.float32)
    grads[flipped, :4] += 3.0
    np.save(run / "gradients.npy", grads)
    ensure_evidence(run)  # as `ogad compute` leaves it: no background build during the presses
    return run


def wait_idle(page) -> None:
    """Until the app has finished its run (no "Running" status) and a moment more."""
    page.wait_for_timeout(1000)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached")
    page.wait_for_timeout(1000)


def press_and_wait(page) -> float:
    """Seconds from pressing C on the focused card until another card has the focus (a focus
    that is momentarily on no card, while the page redraws, does not count)."""
    page.wait_for_function(f"() => ({FOCUSED_JS})() !== ''")
    before = page.evaluate(FOCUSED_JS)
    start = time.perf_counter()
    page.keyboard.press("c")
    page.locator(f".st-key-card_{before}").wait_for(state="detached")
    page.wait_for_function(f"() => !['', '{before}'].includes(({FOCUSED_JS})())")
    return time.perf_counter() - start


def key_timings(url: str, repeats: int, rerank: bool) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(300_000)
            page.goto(f"{url}/?reviewer=bench")
            page.wait_for_function("() => !!document.body.dataset.ogadFocus")
            wait_idle(page)
            if not rerank:
                page.get_by_text("Re-rank from my decisions").click()
                wait_idle(page)
            press_and_wait(page)  # the first press pays one-off costs
            return [press_and_wait(page) for _ in range(repeats)]
        finally:
            browser.close()


MEASURES = {
    "key_C_to_next_card_rerank_off": "C on the focused card until another card has the focus "
    "(detector order)",
    "key_C_to_next_card_rerank_on": "the same with re-ranking on (the queue re-ordered by the "
    "decision model on every press)",
}


def summary(result: dict) -> str:
    """One line for the benchmarks summary table."""
    parts = [
        f"{r['measure'].removeprefix('key_C_to_next_card_')} {r['median_ms']:.0f} ms"
        for r in result.get("results", [])
    ]
    return f"{result.get('n_samples', 0):,} samples: " + ", ".join(parts)


def docs_section(result: dict | None) -> str:
    """The docs/benchmarks.md section for this benchmark's JSON (``result``)."""
    head = "## Review keys: a key press to the next card\n"
    if not result:
        return head + "\nNo result yet: run `python -m benchmarks.bench_review_keys`.\n"
    load = result.get("load_average") or []
    lines = [
        head,
        f"`python -m benchmarks.bench_review_keys` — an image run of {result['n_samples']:,} "
        "samples with (N, 64) gradients served on 127.0.0.1, headless Chromium on the same "
        f"{result.get('cpus', '?')} CPUs (load average {', '.join(f'{x:.1f}' for x in load)} "
        f"at the end); goal {result.get('target_ms', TARGET_MS):.0f} ms.\n",
        "| measure | what | runs | median ms | min ms | max ms |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in result.get("results", []):
        lines.append(
            f"| {r['measure']} | {MEASURES.get(r['measure'], '')} | {r['n']} | "
            f"{r['median_ms']:,.0f} | {r['min_ms']:,.0f} | {r['max_ms']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "review_keys.json"
    )
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ogad_bench_keys_") as tmp:
        run = prepare_run(Path(tmp), args.n)
        samples = pd.read_parquet(run / "samples.parquet")
        store = ReviewStore(run)
        flipped = samples.loc[samples["is_flipped"], "sample_id"].tolist()
        clean = samples.loc[~samples["is_flipped"], "sample_id"].tolist()
        store.decide_many(flipped[-2:], CONFIRMED, reviewer="seed")
        store.decide_many(clean[-2:], REJECTED, reviewer="seed")  # the re-ranker is learning
        port = free_port()
        server = start_server(run, port, Path(tmp) / "server.log")
        try:
            for rerank in (False, True):
                seconds = key_timings(f"http://127.0.0.1:{port}", args.repeats, rerank)
                ms = [s * 1000 for s in seconds]
                rows.append(
                    {
                        "measure": f"key_C_to_next_card_rerank_{'on' if rerank else 'off'}",
                        "n": len(ms),
                        "median_ms": statistics.median(ms),
                        "min_ms": min(ms),
                        "max_ms": max(ms),
                    }
                )
        finally:
            stop_server(server)
    print(f"ogad review keys: {args.n:,} samples, {os.cpu_count()} CPUs")
    for r in rows:
        print(f"{r['measure']:<36}{r['n']:>4}{r['median_ms']:>10.0f} ms (min {r['min_ms']:.0f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "n_samples": args.n,
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "target_ms": TARGET_MS,
        "results": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
