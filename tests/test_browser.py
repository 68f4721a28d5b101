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
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.serve import free_port
from ogad_core.review.export import export_csv
from ogad_core.review.store import CONFIRMED, REJECTED, UNREVIEWED, ReviewStore
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


@contextmanager
def _serving(run: Path) -> Iterator[str]:
    """The url of ``ogad dashboard RUN`` on a free port of 127.0.0.1 (stopped on exit)."""
    port = free_port()
    log = run.parent / f"server_{run.name}.log"
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
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the serve() process and its streamlit child
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="module")
def served_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, run dir) of a dashboard serving a fresh 60-sample image run on 127.0.0.1."""
    run = make_run(tmp_path_factory.mktemp("browser") / "run", kind="image", n=N_SAMPLES)
    with _serving(run) as url:
        yield url, run


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
            target = page.get_by_role("spinbutton", name="Queue length").input_value()
            assert 0 < int(target) < N_SAMPLES  # the review target: the estimated noisy ones
            expect(page.get_by_text(f"Review queue · {target} to review")).to_be_visible()

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


# ---- the review session: keyboard, bulk actions, undo after a reload, re-ranking -----------
@pytest.fixture(scope="module")
def served_review_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, run dir) of a served 60-sample image run with gradients (re-ranking, explanations)."""
    run = make_run(tmp_path_factory.mktemp("browser_review") / "run", kind="image", n=N_SAMPLES)
    samples = pd.read_parquet(run / "samples.parquet")
    grads = np.random.default_rng(1).normal(0, 1, (N_SAMPLES, 8)).astype(np.float32)
    grads[samples["is_flipped"].to_numpy(), 0] += 4.0
    np.save(run / "gradients.npy", grads)
    with _serving(run) as url:
        yield url, run


def _card_ids(page) -> list[int]:
    classes = page.locator("[class*='st-key-card_']").evaluate_all(
        "els => els.map(e => e.className)"
    )
    return [int(re.search(r"st-key-card_(\d+)", c)[1]) for c in classes]


def _focused(page) -> str:
    return page.evaluate("() => document.body.dataset.ogadFocus || ''")


def test_keyboard_bulk_undo_after_reload_and_rerank(
    chromium: str, served_review_run: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, run = served_review_run
    store = ReviewStore(run)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1500, "height": 1100}).new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{url}/?reviewer=keys")
            page.wait_for_selector("[class*='st-key-card_']")  # the first run can be slow
            first, second = _card_ids(page)[:2]
            assert _wait_for(lambda: _focused(page) == str(first))  # the first card has focus

            # J moves the focus without a rerun, C confirms the focused card, U undoes it
            page.locator("body").press("j")
            assert _wait_for(lambda: _focused(page) == str(second))
            _shot(page, tmp_path / "browser_keys_focus.png")
            page.keyboard.press("c")
            expect(page.locator(f".st-key-card_{second}")).to_have_count(0)
            assert _wait_for(lambda: store.get(second) == CONFIRMED)
            assert store.history().iloc[-1]["reviewer"] == "keys"
            assert _wait_for(lambda: _focused(page) == str(_card_ids(page)[1]))  # next in place
            page.keyboard.press("u")
            assert _wait_for(lambda: store.get(second) == UNREVIEWED)
            expect(page.locator(f".st-key-card_{second}")).to_have_count(1)

            # a key typed into a text field is text, not a decision
            search = page.get_by_role("textbox", name="Search")
            n_cards = len(_card_ids(page))
            search.fill("c")
            search.press("Escape")  # leaves the field; the search applies
            time.sleep(1.0)
            assert store.current().empty
            search.fill("")
            search.press("Enter")

            # bulk: confirm every card of the page at once …
            expect(page.locator("[class*='st-key-card_']")).to_have_count(n_cards)
            on_page = _card_ids(page)
            page.get_by_role("button", name="Bulk").click()
            page.get_by_role("button", name=f"Confirm all {len(on_page)}").click()
            assert _wait_for(lambda: len(store.current()) == len(on_page))
            assert store.current()["decision"].eq(CONFIRMED).all()
            _shot(page, tmp_path / "browser_bulk.png")

            # … and after a reload (a new session, the name kept in the address) one Undo
            # takes the whole bulk action back
            page.reload()
            page.wait_for_selector("[class*='st-key-card_']")
            undo = page.locator(".st-key-undo_last button").first
            expect(undo).to_be_enabled(timeout=WAIT_MS)  # the new session can undo
            undo.click()
            assert _wait_for(lambda: store.current().empty)
            expect(page.locator(f".st-key-card_{on_page[0]}")).to_have_count(1)

            # re-ranking: after two bad and two fine decisions the queue is re-ordered;
            # switching it off brings the detector's order back
            samples = pd.read_parquet(run / "samples.parquet")
            flipped = samples.loc[samples["is_flipped"], "sample_id"].tolist()
            clean = samples.loc[~samples["is_flipped"], "sample_id"].tolist()
            store.decide_many(flipped[:2], CONFIRMED, reviewer="keys")
            store.decide_many(clean[:2], REJECTED, reviewer="keys")
            page.reload()
            page.wait_for_selector("[class*='st-key-card_']")
            expect(page.get_by_text("re-ranked from the decisions")).to_be_visible()
            reranked = _card_ids(page)
            _shot(page, tmp_path / "browser_reranked.png")
            page.get_by_text("Re-rank from my decisions").click()
            expect(page.get_by_text("re-ranked from the decisions")).to_have_count(0)
            decided = set(flipped[:2] + clean[:2])
            scores = pd.read_parquet(run / "scores.parquet").sort_values("iforest_rank")
            static = [int(s) for s in scores["sample_id"] if s not in decided]
            assert _wait_for(lambda: _card_ids(page) == static[: len(_card_ids(page))])
            assert _card_ids(page) != reranked or reranked == static[: len(reranked)]
        finally:
            browser.close()
