"""Dashboard speed on big runs (not a test): map paint, selection, Confirm → next card.

    python -m benchmarks.bench_dashboard [--n 50000[,1000000,...]] [--out FILE.json]
        [--repeats 3] [--no-browser]

For each size ``n``, on a prepared synthetic image run (ogad_core.testing.make_run: 200
distinct 28x28 images reused, three blob clusters as the map, made-up scores) served on
127.0.0.1, it measures:

* library (server) time, in this process: reading the run (``load_run_view``), drawing the map
  in each colouring (``build_map``: all points up to 20,000, else a raster + the top 2,000
  points), the map payload written as JSON (done on every full rerun), a box and a lasso turned
  into sample ids, Confirm → next card (save the decision, the decision columns, the queue
  order and the first page), the queue with every filter on, and the summary counts. Target
  for Confirm → next card: < 300 ms at a million samples;
* the whole page script rerun after a Confirm click (Streamlit ``AppTest``, same process, the
  map included from its cache — the live app reruns only the queue fragment);
* in headless Chromium: page load until the map has drawn (cold: first visit after the server
  started, then warm visits; target < 3 s). "Drawn" is the map component's own mark: the frame
  after its canvas painted the raster (when there is one, once its image decoded) and every
  point it was sent, with that point count and raster flag (window.__ogadMap, the root's
  data-painted / data-points / data-raster). It is split into until the map's heading shows,
  heading → drawn, and of that the component's own work (its code first running → painted,
  from its performance marks). Then: until the first card's Confirm shows, Chromium's CPU
  seconds for that load, Confirm clicked → the next card shows (end to end; target < 300 ms at
  50,000 samples), and a box drawn → the queue shows the selection.

* the Summary page with its charts: page load until its charts on the first screen (1500 x
  1100) have painted (the page holding all four of this run's charts; one further down may be
  drawn when scrolled to), or until the page's Export button shows (a ``--before`` tree without
  charts); target < 2 s at 50,000;
* ``ogad report`` on the same run: seconds, file size (target < 5 MB) and, opened offline in
  Chromium with every request logged, the requests that leave the file (target: none) and the
  charts drawn.

``--before REF`` serves the same run from the project as it was at git commit REF as well
(exported with ``git archive`` into a temporary folder), both servers up at once in this one
process: the review page is timed on one after the other, the Summary page alternating between
them visit by visit (so before and after see the same load); its keys start with ``before:``.

Browser and server share this machine's cores; the load average is recorded with the figures.
Prints a table and writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dashboard.serve import free_port  # noqa: E402
from ogad_core.testing import CHROMIUM, CHROMIUM_ARGS, make_run  # noqa: E402

TARGET_MS = 300.0
PAINT_TARGET_MS = 3000.0
MAP_DRAWN_JS = """([n, raster]) => {
  const m = window.__ogadMap;
  if (!m || !m.root.isConnected || Number(m.root.dataset.painted) < 1) return false;
  return Number(m.root.dataset.points) === n && m.root.dataset.raster === String(raster);
}"""
COLOURINGS = ("score", "label", "pred", "status")
# of a page load: from the map component's code first running until its canvas painted (ms)
MAP_OWN_JS = """() => {
  const [mount] = performance.getEntriesByName('ogad-map:mount');
  const [painted] = performance.getEntriesByName('ogad-map:painted');
  return painted.startTime - mount.startTime;
}"""
# in the page, every animation frame: when the map's heading first shows, and when the map
# component first painted (ms since navigation; its own mark, set the frame after the paint) —
# the difference is loading the component and drawing this map, apart from loading the app
PAINT_MARKS_JS = """(() => {
  window.__ogadMarks = {};
  const tick = () => {
    const m = window.__ogadMarks;
    if (m.heading === undefined && [...document.querySelectorAll('h5')].some(
        h => h.textContent.includes('Gradient map'))) m.heading = performance.now();
    if (window.__ogadMapFirstPaint !== undefined) m.drawn = window.__ogadMapFirstPaint;
    if (m.drawn === undefined) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


def start_server(run: Path, port: int, log: Path, tree: Path = REPO) -> subprocess.Popen:
    """``ogad dashboard RUN`` from the project at ``tree`` (this checkout by default)."""
    code = "import sys; from dashboard.serve import serve; sys.exit(serve(sys.argv[1], port=int(sys.argv[2])))"  # noqa: E501
    env = {**os.environ, "PYTHONPATH": str(tree)}
    with open(log, "wb") as fh:
        server = subprocess.Popen(
            [sys.executable, "-c", code, str(run), str(port)],
            cwd=tree,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.3)
    stop_server(server)
    raise SystemExit(f"dashboard did not start: {log.read_text(errors='replace')[-2000:]}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def first_card_id(page) -> int:
    cls = page.locator("[class*='st-key-card_']").first.get_attribute("class") or ""
    return int(re.search(r"st-key-card_(\d+)", cls)[1])


def chromium_cpu_s() -> float:
    """CPU seconds used so far by the Chromium processes this benchmark started."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _paint(browser, url: str, expect: tuple[int, bool]) -> tuple[object, dict[str, float]]:
    """Open the page; seconds until the map has drawn, until a Confirm shows, Chromium CPU s."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(300_000)
    page.add_init_script(
        f"window.__ogadPoints = {int(expect[0])}; window.__ogadRaster = {str(expect[1]).lower()};"
        + PAINT_MARKS_JS
    )
    cpu = chromium_cpu_s()
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(MAP_DRAWN_JS, arg=list(expect), timeout=300_000)
    drawn = time.perf_counter() - start
    cpu = chromium_cpu_s() - cpu
    page.get_by_role("button", name="Confirm").first.wait_for()
    page.wait_for_function("() => window.__ogadMarks.drawn !== undefined")
    marks = page.evaluate("() => window.__ogadMarks")
    own = page.evaluate(MAP_OWN_JS)
    return page, {
        "own": own / 1000,
        "map": drawn,
        "ready": time.perf_counter() - start,
        "cpu": cpu,
        "plot": (marks["drawn"] - marks["heading"]) / 1000,
        "before_plot": marks["heading"] / 1000,
    }


def _box_select(page) -> float:
    """Seconds from the end of a box drag on the map until the queue shows the selection."""
    page.locator(".ogad-map button[data-mode=box]").first.click()  # scrolls the map into view
    canvas = page.locator(".ogad-map canvas").first
    canvas.scroll_into_view_if_needed()
    area = canvas.bounding_box()
    x, y, w, h = area["x"], area["y"], area["width"], area["height"]
    page.mouse.move(x + w * 0.3, y + h * 0.2)
    page.mouse.down()
    page.mouse.move(x + w * 0.6, y + h * 0.7, steps=6)
    start = time.perf_counter()
    page.mouse.up()
    page.get_by_text("selected on the map").wait_for()
    elapsed = time.perf_counter() - start
    page.get_by_role("button", name="Clear selection").click()
    page.get_by_text("selected on the map").wait_for(state="detached")
    return elapsed


# in the page: the Confirm click's time (capture phase, as the input arrives) and the first
# frame painted after that card left the DOM with another card in place (two animation frames)
CLICK_MARKS_JS = """(sid) => {
  const m = window.__ogadClick = {};
  document.addEventListener('click', () => { m.click = performance.now(); },
                            {capture: true, once: true});
  const done = () => !document.querySelector('.st-key-card_' + sid)
    && document.querySelector("[class*='st-key-card_']");
  const watch = new MutationObserver(() => {
    if (m.gone === undefined && m.click !== undefined && done()) {
      m.gone = performance.now();
      watch.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => { m.painted = performance.now(); }));
    }
  });
  watch.observe(document.body, {childList: true, subtree: true});
}"""
RERUN_DONE_JS = """() => !document.querySelector("[data-stale='true']")
  && !document.querySelector("[data-testid='stStatusWidget']")"""


def _confirm_first_card(page) -> tuple[float, float]:
    """Confirm the first card: seconds until Playwright sees the next card in its place, and
    seconds in the page from the click to the first frame painted with the next card. Waits for
    the rerun to finish before returning (the next click never lands on a page still updating)."""
    sid = first_card_id(page)
    card = page.locator(f".st-key-card_{sid}")
    page.evaluate(CLICK_MARKS_JS, sid)
    start = time.perf_counter()
    card.get_by_role("button", name="Confirm").click()
    card.wait_for(state="detached")
    page.locator("[class*='st-key-card_']").first.wait_for()
    seen = time.perf_counter() - start
    page.wait_for_function("() => window.__ogadClick.painted !== undefined")
    marks = page.evaluate("() => window.__ogadClick")
    page.wait_for_function(RERUN_DONE_JS)
    return seen, (marks["painted"] - marks["click"]) / 1000.0


def browser_timings(url: str, expect: tuple[int, bool], repeats: int) -> dict[str, list[float]]:
    """Seconds: map paint (cold, warm), page ready, Chromium CPU per load, Confirm → next card,
    box select → queue. ``expect``: (points drawn on the map, whether it is a raster)."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {
        k: []
        for k in (
            "map_paint_cold",
            "map_paint_warm",
            "until_map_heading",
            "map_heading_to_drawn",
            "map_mount_to_painted",
            "page_ready_warm",
            "chromium_cpu_per_load",
            "click_to_next_card",
            "click_to_next_card_in_page",
            "box_select_to_queue",
        )
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(repeats + 1):
                page, t = _paint(browser, url, expect)
                out["map_paint_cold" if i == 0 else "map_paint_warm"].append(t["map"])
                out["chromium_cpu_per_load"].append(t["cpu"])
                out["until_map_heading"].append(t["before_plot"])
                out["map_heading_to_drawn"].append(t["plot"])
                out["map_mount_to_painted"].append(t["own"])
                if i > 0:
                    out["page_ready_warm"].append(t["ready"])
                if i < repeats:
                    page.close()
            for _ in range(repeats):
                seen, in_page = _confirm_first_card(page)
                out["click_to_next_card"].append(seen)
                out["click_to_next_card_in_page"].append(in_page)
            for _ in range(repeats):
                out["box_select_to_queue"].append(_box_select(page))
            shots = Path(tempfile.gettempdir()) / "ogad_shots"
            shots.mkdir(exist_ok=True)
            page.screenshot(path=str(shots / f"bench_{expect[0]}_{int(expect[1])}.png"))
        finally:
            browser.close()
    return out


def _timed(out: dict[str, list[float]], name: str, fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    out.setdefault(name, []).append(time.perf_counter() - start)
    return value


def library_timings(run: Path, repeats: int) -> tuple[dict[str, list[float]], dict]:
    """Seconds of the dashboard's library calls at this size, and facts about the map drawn."""
    import numpy as np

    from dashboard.map_view import build_map, read_selection
    from dashboard.run_view import (
        load_run_view,
        page_of,
        queue_rows,
        summary_tables,
        with_decisions,
    )
    from ogad_core.review.store import ReviewStore

    out: dict[str, list[float]] = {}
    view = _timed(out, "load_run_view", load_run_view, run)
    store = ReviewStore(
        run,
        sample_ids=view.table["sample_id"].to_numpy(),
        labels=view.table["label"].to_numpy(),
        label_names=view.label_names,
    )
    detector = view.default_detector
    table = with_decisions(view.table, store.current())
    layers = {}
    for colour in COLOURINGS:
        layers[colour] = _timed(
            out,
            f"map_build_{colour}",
            build_map,
            view,
            color_by=colour,
            detector=detector,
            status=table["status"],
        )
    layer = layers["score"]
    xs, ys = view.table["x"].to_numpy(), view.table["y"].to_numpy()
    cx, cy, rx, ry = xs.mean(), ys.mean(), xs.std(), ys.std()
    box = {"kind": "box", "x": [cx - rx, cx + rx], "y": [cy - ry, cy + ry]}
    angle = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    lasso = {
        "kind": "lasso",
        "x": [float(v) for v in cx + rx * np.cos(angle)],
        "y": [float(v) for v in cy + ry * np.sin(angle)],
    }
    selected = None
    for _ in range(repeats):
        _timed(out, "map_payload_json", json.dumps, layer.payload)
        selected = _timed(out, "select_box_to_ids", read_selection, box, layer).ids
        _timed(out, "select_lasso_to_ids", read_selection, lasso, layer)
    for _ in range(repeats):
        sid = int(queue_rows(view, table, detector=detector).sample_ids[0])
        start = time.perf_counter()
        store.confirm(sid, reviewer="bench")
        table = with_decisions(view.table, store.current())
        page_of(queue_rows(view, table, detector=detector), 0, 12)
        out.setdefault("confirm_to_next_card", []).append(time.perf_counter() - start)
        filters = {"classes": [0, 1], "top_k": len(table) // 2, "min_score": 0.0}
        start = time.perf_counter()
        queue = queue_rows(view, table, detector=detector, selected_ids=selected, **filters)
        page_of(queue, 0, 12)
        out.setdefault("queue_all_filters", []).append(time.perf_counter() - start)
        _timed(out, "summary_counts", summary_tables, view, table)
    facts = {
        "map_raster": layer.raster,
        "map_points": layer.n_points,
        "map_drawn": layer.n_drawn,
        "map_json_mb": round(len(json.dumps(layer.payload)) / 1e6, 2),
        "box_selected": len(selected or []),
    }
    return out, facts


def apptest_timings(run: Path, repeats: int) -> dict[str, list[float]]:
    """Seconds: apptest_click_rerun (the whole page script after a Confirm click)."""
    from streamlit.testing.v1 import AppTest

    from dashboard.testing import card_ids, press_card

    os.environ["OGAD_RUN_DIR"] = str(run)
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600).run()
    out: dict[str, list[float]] = {"apptest_click_rerun": []}
    for _ in range(repeats):
        sid = card_ids(at)[0]
        start = time.perf_counter()
        press_card(at, sid, "confirm")
        out["apptest_click_rerun"].append(time.perf_counter() - start)
        if at.exception:
            raise SystemExit(f"app failed: {at.exception[0].value}")
    return out


# painted: the page holds its n charts (chart elements, .ogad-chart, drawn or not) and every one
# of them on the first screen has drawn (plotly's svg.main-svg in it; three per chart, so charts
# are counted, not svgs). A chart further down may wait to be drawn until scrolled to.
SUMMARY_CHARTS_JS = """(n) => {
  const charts = [...document.querySelectorAll('.ogad-chart')].filter(
    (c) => !c.closest('.st-key-ogad_plotly_preload'));
  if (charts.length < n) return false;
  const onScreen = charts.filter((c) => {
    const box = c.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight && box.height > 0;
  });
  return onScreen.length > 0 && onScreen.every((c) => c.querySelector('.main-svg'));
}"""
SUMMARY_CHARTS = 4  # known noise, no decisions: class health, given x predicted, scores, P@k


def summary_timings(urls: dict[str, tuple[str, bool]], repeats: int) -> dict[str, list[float]]:
    """Seconds from opening the Summary page until its charts painted (a tree with charts),
    else until its Export button shows; ``urls``: {key prefix: (server URL, has charts)}. The
    servers' visits alternate (one of each in turn), so every server is timed under the same
    load; the first visit to each is cold."""
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {
        f"{prefix}summary_paint_{kind}": [] for prefix in urls for kind in ("cold", "warm")
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for i in range(repeats + 1):
                for prefix, (url, charts) in urls.items():
                    seconds = _summary_visit(browser, url, charts)
                    out[f"{prefix}summary_paint_{'cold' if i == 0 else 'warm'}"].append(seconds)
        finally:
            browser.close()
    return out


def _summary_visit(browser, url: str, charts: bool) -> float:
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(300_000)
    start = time.perf_counter()
    page.goto(f"{url}/summary")
    if charts:
        page.wait_for_function(SUMMARY_CHARTS_JS, arg=SUMMARY_CHARTS)
    else:
        page.get_by_role("button", name=re.compile("^Export")).wait_for()
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def report_facts(run: Path, folder: Path) -> dict:
    """``ogad report`` of the run: seconds, bytes, and opened offline in Chromium: requests that
    left the file and charts drawn."""
    from playwright.sync_api import sync_playwright

    from ogad_core.reporting.report import write_report

    start = time.perf_counter()
    out = write_report(run, folder / "report.html")
    seconds = time.perf_counter() - start
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(offline=True).new_page()
            page.on("request", lambda r: requests.append(r.url))
            opened = time.perf_counter()
            page.goto(out.as_uri())
            page.wait_for_function("() => document.body.dataset.charts", timeout=300_000)
            drawn_s = time.perf_counter() - opened
            charts = int(page.evaluate("() => document.body.dataset.charts"))
        finally:
            browser.close()
    outside = [u for u in requests if not u.startswith(("file:", "data:", "blob:"))]
    return {
        "seconds": round(seconds, 2),
        "bytes": out.stat().st_size,
        "charts_drawn": charts,
        "opened_to_charts_s": round(drawn_s, 2),
        "requests_total": len(requests),
        "requests_outside_the_file": outside,
    }


def _clear_reviews(run: Path) -> None:
    for name in ("reviews.sqlite", "reviews.sqlite-wal", "reviews.sqlite-shm"):
        (run / name).unlink(missing_ok=True)


def export_tree(ref: str, folder: Path) -> Path:
    """The project as it was at git commit ``ref``, exported into ``folder`` (no .git)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _served_timings(
    run: Path, tmp: Path, trees: dict[str, Path], expect: tuple[int, bool], repeats: int
) -> dict[str, list[float]]:
    """Browser timings of the run served from each tree ({key prefix: project tree}): the
    review page one server after the other (decisions cleared before each), then the Summary
    page alternating between the servers."""
    servers = {}
    timings: dict[str, list[float]] = {}
    try:
        for prefix, tree in trees.items():
            port = free_port()
            log = tmp / f"server_{tree.name}.log"
            servers[prefix] = (start_server(run, port, log, tree), f"http://127.0.0.1:{port}")
        for prefix, (_, url) in servers.items():
            _clear_reviews(run)
            found = browser_timings(url, expect, repeats)
            timings.update({f"{prefix}{k}": v for k, v in found.items()})
        charted = {
            prefix: (url, (trees[prefix] / "ogad_core" / "reporting" / "charts.py").is_file())
            for prefix, (_, url) in servers.items()
        }
        timings.update(summary_timings(charted, repeats))
        return timings
    finally:
        for server, _ in servers.values():
            stop_server(server)


def measure_size(
    n: int, repeats: int, browser: bool, before: str | None = None
) -> tuple[dict[str, list[float]], dict]:
    """All timings for one run of ``n`` samples (built in a temporary folder); with ``before``
    (a git commit) the browser timings of that version too, keys ``before:...``."""
    with tempfile.TemporaryDirectory(prefix="ogad_bench_") as tmp_name:
        tmp = Path(tmp_name)
        run = make_run(tmp / "run", kind="image", n=n, n_images=200)
        timings, facts = library_timings(run, repeats)
        if browser:
            if not Path(CHROMIUM).exists():
                raise SystemExit(f"{CHROMIUM} missing: apt-get install -y chromium")
            expect = (facts["map_points"], facts["map_raster"])
            trees = {"": REPO}
            if before is not None:
                trees = {"before:": export_tree(before, tmp / "before"), "": REPO}
            timings.update(_served_timings(run, tmp, trees, expect, repeats))
            _clear_reviews(run)
            facts["report"] = report_facts(run, tmp)
        timings.update(apptest_timings(run, repeats))
    return timings, facts


def _rows(n: int, timings: dict[str, list[float]]) -> list[dict]:
    rows = []
    for name, values in timings.items():
        if not values:
            continue
        scale = (
            1.0 if name.endswith("chromium_cpu_per_load") else 1000.0
        )  # CPU seconds stay seconds
        ms = [v * scale for v in values]
        rows.append(
            {
                "n_samples": n,
                "measure": name,
                "n": len(ms),
                "median_ms": statistics.median(ms),
                "min_ms": min(ms),
                "max_ms": max(ms),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", default="50000", help="samples in the run; a comma list for several")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_dashboard.json"
    )
    parser.add_argument("--no-browser", action="store_true", help="server timings only")
    parser.add_argument(
        "--before", default=None, help="also serve the project as it was at this git commit"
    )
    args = parser.parse_args(argv)
    sizes = [int(v) for v in str(args.n).split(",") if v.strip()]

    load_before = os.getloadavg()
    rows: list[dict] = []
    facts: dict[str, dict] = {}
    raw: dict[str, dict] = {}
    for n in sizes:
        timings, facts[str(n)] = measure_size(n, args.repeats, not args.no_browser, args.before)
        raw[str(n)] = timings
        rows.extend(_rows(n, timings))
    load_after = os.getloadavg()

    print(f"ogad dashboard benchmark: {os.cpu_count()} CPUs, load {load_before} → {load_after}")
    print(f"{'samples':>9} {'measure':<34}{'runs':>5}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for r in rows:
        print(
            f"{r['n_samples']:>9,} {r['measure']:<34}{r['n']:>5}{r['median_ms']:>11.0f}"
            f"{r['min_ms']:>9.0f}{r['max_ms']:>9.0f}"
        )
    print("(chromium_cpu_per_load is in CPU seconds, not ms)")
    for n in sizes:
        print(f"{n:,} samples: map {facts[str(n)]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "n_samples": sizes[0] if len(sizes) == 1 else sizes,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_before": load_before,
                "load_average_after": load_after,
                "synthetic": "ogad_core.testing.make_run (image kind, 200 distinct images)",
                "before": args.before,
                "target_ms": TARGET_MS,
                "paint_target_ms": PAINT_TARGET_MS,
                "map": facts,
                "results": rows,
                "raw_s": raw,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
