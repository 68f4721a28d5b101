"""The dashboard in a real headless Chromium (Debian's, driven by Playwright from PyPI).

``ogad dashboard`` serves a prepared run on a free port of 127.0.0.1. The map draws (WebGL
scattergl, every sample once), a box drawn on it narrows the queue, a card is confirmed by
clicking, a second browser context sees the decision, and its downloaded CSV equals
``ogad export``'s.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from dashboard.serve import free_port
from ogad_core.review.export import export_csv
from ogad_core.review.store import CONFIRMED, ReviewStore
from tests.run_fixture import CHROMIUM, CHROMIUM_ARGS, make_run

REPO = Path(__file__).resolve().parent.parent
N_SAMPLES = 60
WAIT_MS = 90_000
SHOTS_ENV = "OGAD_SHOTS_DIR"  # when set, screenshots are also copied there

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing (about 35 s)."""
    if not Path(CHROMIUM).exists() and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "chromium"]
        if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            subprocess.run(cmd, env=env, capture_output=True, timeout=900)
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing and `apt-get install -y chromium` did not provide it")
    return CHROMIUM


@pytest.fixture(scope="module")
def served_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, run dir) of a dashboard serving a fresh 60-sample image run on 127.0.0.1."""
    run = make_run(tmp_path_factory.mktemp("browser") / "run", kind="image", n=N_SAMPLES)
    port = free_port()
    log = run.parent / "server.log"
    command = [sys.executable, "-m", "ogad_core.cli", "dashboard", str(run), "--port", str(port)]
    with open(log, "wb") as log_fh:  # `ogad dashboard DIR --port N` → dashboard.serve.serve
        server = subprocess.Popen(
            command, cwd=REPO, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dashboard did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)
        yield url, run
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the serve() process and its streamlit child
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _shot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get(SHOTS_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def _wait_for(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_review_in_a_real_browser(
    chromium: str, served_run: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, run = served_run
    scores = pd.read_parquet(run / "scores.parquet")
    top = int(scores.sort_values("iforest_rank")["sample_id"].iloc[0])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            first = browser.new_context(viewport={"width": 1500, "height": 1100})
            page = first.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(url)

            # the map draws: WebGL traces holding every sample once
            page.wait_for_function(
                "() => { const gd = document.querySelector('.js-plotly-plot');"
                " return gd && gd.data && gd.data.length > 0 && gd._fullLayout; }",
                timeout=WAIT_MS,
            )
            traces = page.evaluate(  # plotly's full data: decoded, with the point count
                "() => document.querySelector('.js-plotly-plot')._fullData"
                ".map(t => [t.type, t._length])"
            )
            assert {t[0] for t in traces} == {"scattergl"}
            assert sum(t[1] for t in traces) == N_SAMPLES
            assert page.locator(".js-plotly-plot canvas").count() > 0

            # a box drawn on the map narrows the queue to the selected samples
            area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
            assert area is not None
            page.mouse.move(area["x"] + 3, area["y"] + 3)
            page.mouse.down()
            page.mouse.move(
                area["x"] + area["width"] * 0.6, area["y"] + area["height"] * 0.6, steps=8
            )
            page.mouse.up()
            caption = page.get_by_text("selected on the map")
            expect(caption).to_be_visible()
            n_selected = int(re.match(r"([\d,]+) samples", caption.inner_text())[1])
            assert 0 < n_selected < N_SAMPLES
            expect(page.get_by_text(f"Review queue · {n_selected} to review")).to_be_visible()
            page.get_by_role("button", name="Clear selection").click()
            expect(page.get_by_text(f"Review queue · {N_SAMPLES} to review")).to_be_visible()

            # the first card is the top-ranked sample; confirm it by clicking
            reviewer = page.get_by_role("textbox", name="Reviewer")
            reviewer.fill("browser-bot")
            reviewer.press("Enter")
            card = page.locator("[class*='st-key-card_']").first
            expect(card).to_be_visible()
            sid = int(re.search(r"st-key-card_(\d+)", card.get_attribute("class") or "")[1])
            assert sid == top
            _shot(page, tmp_path / "browser_review_before.png")
            card.get_by_role("button", name="Confirm").click()
            expect(page.locator(f".st-key-card_{sid}")).to_have_count(0)
            store = ReviewStore(run)
            assert _wait_for(lambda: store.get(sid) == CONFIRMED)
            assert store.history().iloc[-1]["reviewer"] == "browser-bot"
            _shot(page, tmp_path / "browser_review_after.png")

            # a second browser session sees the decision and exports it
            second = browser.new_context(
                viewport={"width": 1500, "height": 1100}, accept_downloads=True
            )
            other = second.new_page()
            other.set_default_timeout(WAIT_MS)
            other.goto(url)
            expect(other.locator("[class*='st-key-card_']").first).to_be_visible()
            expect(other.locator(f".st-key-card_{sid}")).to_have_count(0)
            other.goto(f"{url}/summary")
            metric = other.get_by_test_id("stMetric").filter(has_text="Confirmed (dropped)")
            expect(metric).to_contain_text("1")
            _shot(other, tmp_path / "browser_summary.png")
            with other.expect_download() as download:
                other.get_by_role("button", name="Export cleaned CSV").click()
            downloaded = Path(download.value.path()).read_text(encoding="utf-8")
        finally:
            browser.close()

    cli_csv = tmp_path / "cli.csv"
    export_csv(run, cli_csv)
    assert downloaded == cli_csv.read_text(encoding="utf-8")
    row = pd.read_csv(cli_csv).set_index("sample_id").loc[sid]
    assert row["decision"] == CONFIRMED and not row["keep"]
