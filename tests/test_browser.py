"""The dashboard in a real headless Chromium (Debian's, driven by Playwright from PyPI).

``ogad dashboard`` serves a prepared run on a free port of 127.0.0.1. The map draws (a canvas,
every sample once), a box drawn on it narrows the queue, a card is confirmed by
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

from dashboard import keys, state
from dashboard.chart_component import bundle_path
from dashboard.serve import free_port
from ogad_core.review.export import export_csv
from ogad_core.review.store import CONFIRMED, REJECTED, RELABELED, UNREVIEWED, ReviewStore
from ogad_core.testing import CHROMIUM, CHROMIUM_ARGS, make_run

REPO = Path(__file__).resolve().parent.parent
N_SAMPLES = 60
CARDS = keys.selector(keys.CARD, prefix=True)  # every card on the page
WAIT_MS = 90_000
EXPECT_MS = 30_000
SHOTS_ENV = "OGAD_SHOTS_DIR"  # when set, screenshots are also copied there

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (``.ci/run`` installs it; a test never installs anything)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_MS)  # reruns take seconds on a busy 2-core machine
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


def _download_export(page) -> str:
    """The text of the CSV the Summary page's export button sends (the page is on Summary)."""
    with page.expect_download() as download:
        page.get_by_role("button", name="Export cleaned CSV").click()
    return Path(download.value.path()).read_text(encoding="utf-8")


def _cli_export_equal(run: Path, tmp_path: Path, downloaded: str) -> pd.DataFrame:
    """Assert the dashboard's download is ``ogad export``'s file; that file's rows (all
    columns as text) indexed by sample_id."""
    cli_csv = tmp_path / "cli.csv"
    export_csv(run, cli_csv)
    assert downloaded == cli_csv.read_text(encoding="utf-8")
    table = pd.read_csv(cli_csv, keep_default_na=False, dtype=str)
    return table.set_index(table["sample_id"].astype(int))


def _page_with_cards(browser, size: tuple[int, int], address: str):
    """A new page of ``size`` (width, height) that accepts downloads, opened at ``address``
    and waited on until its cards are drawn."""
    context = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(address)
    page.wait_for_selector(CARDS)
    return page


@contextmanager
def _opened(
    chromium: str, url: str, size: tuple[int, int] = (1500, 1100), permissions: tuple = ()
) -> Iterator:
    """A headless Chromium page (``size``, default 1500 x 1100) at ``url``, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            viewport = {"width": size[0], "height": size[1]}
            context = browser.new_context(viewport=viewport, permissions=list(permissions))
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            yield page
        finally:
            browser.close()


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

            # the map draws every sample as a point on its canvas
            _map_area(page)
            assert page.evaluate("() => window.__ogadMap.n") == N_SAMPLES

            # a box drawn on the map narrows the queue to the selected samples
            area = _map_area(page)
            _tool(page, "box")
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
            card = page.locator(CARDS).first
            expect(card).to_be_visible()
            sid = int(keys.sid_of(card.get_attribute("class") or "", keys.CARD))
            assert sid == top
            _shot(page, tmp_path / "browser_review_before.png")
            card.get_by_role("button", name="Confirm").click()
            expect(page.locator(keys.selector(keys.of(keys.CARD, sid)))).to_have_count(0)
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
            expect(other.locator(CARDS).first).to_be_visible()
            expect(other.locator(keys.selector(keys.of(keys.CARD, sid)))).to_have_count(0)
            other.goto(f"{url}/summary")
            metric = other.get_by_test_id("stMetric").filter(has_text="Confirmed (dropped)")
            expect(metric).to_contain_text("1")
            _shot(other, tmp_path / "browser_summary.png")
            downloaded = _download_export(other)
        finally:
            browser.close()

    row = _cli_export_equal(run, tmp_path, downloaded).loc[sid]
    assert row["decision"] == CONFIRMED and row["keep"] == "false"


# ---- the review session: keyboard, bulk actions, undo after a reload, re-ranking -----------
@pytest.fixture(scope="module")
def served_review_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, run dir) of a served 60-sample image run with gradients (re-ranking, explanations)."""
    yield from _served_run_with_gradients(tmp_path_factory.mktemp("browser_review"), seed=1)


def _served_run_with_gradients(folder: Path, seed: int) -> Iterator[tuple[str, Path]]:
    """(url, run dir) of a served 60-sample image run whose flipped samples' gradients stand
    out on their first column."""
    run = make_run(folder / "run", kind="image", n=N_SAMPLES)
    samples = pd.read_parquet(run / "samples.parquet")
    grads = np.random.default_rng(seed).normal(0, 1, (N_SAMPLES, 8)).astype(np.float32)
    grads[samples["is_flipped"].to_numpy(), 0] += 4.0
    np.save(run / "gradients.npy", grads)
    with _serving(run) as url:
        yield url, run


def _card_ids(page) -> list[int]:
    classes = page.locator(CARDS).evaluate_all("els => els.map(e => e.className)")
    return [keys.sid_of(c, keys.CARD) for c in classes]


def _settle(page) -> None:
    """Wait until no script run is redrawing the page (nothing stale, no running indicator)."""
    page.wait_for_function(
        """() => !document.querySelector("[data-stale='true'], [data-testid='stStatusWidget']")"""
    )
    time.sleep(0.5)


def _focused(page) -> str:
    return page.evaluate("() => document.body.dataset.ogadFocus || ''")


def test_keyboard_bulk_undo_after_reload_and_rerank(
    chromium: str, served_review_run: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, run = served_review_run
    store = ReviewStore(run)
    with _opened(chromium, f"{url}/?reviewer=keys") as page:
        page.wait_for_selector(CARDS)  # the first run can be slow
        _settle(page)
        first, second = _card_ids(page)[:2]
        assert _wait_for(lambda: _focused(page) == str(first)), (  # the first card has focus
            _focused(page),
            _card_ids(page)[:3],
            first,
        )

        # J moves the focus without a rerun, C confirms the focused card, U undoes it
        page.locator("body").press("j")
        assert _wait_for(lambda: _focused(page) == str(second))
        _shot(page, tmp_path / "browser_keys_focus.png")
        page.keyboard.press("c")
        expect(page.locator(keys.selector(keys.of(keys.CARD, second)))).to_have_count(0)
        assert _wait_for(lambda: store.get(second) == CONFIRMED)
        assert store.history().iloc[-1]["reviewer"] == "keys"
        assert _wait_for(lambda: _focused(page) == str(_card_ids(page)[1]))  # next in place
        page.keyboard.press("u")
        assert _wait_for(lambda: store.get(second) == UNREVIEWED)
        expect(page.locator(keys.selector(keys.of(keys.CARD, second)))).to_have_count(1)

        # L relabels the focused card to the class its Relabel menu shows (the key opens
        # the menu and presses its Relabel button); U takes it back. The menu starts on the
        # suggestion, which may be the card's own label: J moves on to a card offering another
        _settle(page)
        for _ in range(len(_card_ids(page))):
            sid = int(_focused(page))
            shown = page.locator(
                keys.selector(keys.of(keys.RELABEL_MENU, sid)) + " button"
            ).first.inner_text()
            own = store.label_names[store._label_of[sid]]
            if shown.splitlines()[0] != f"Relabel → {own}":
                break
            page.keyboard.press("j")
            assert _wait_for(lambda sid=sid: _focused(page) != str(sid))
        page.keyboard.press("l")
        assert _wait_for(lambda: store.get(sid) == RELABELED)
        new_label = int(store.current().set_index("sample_id").loc[sid, "new_label"])
        assert shown.splitlines()[0] == f"Relabel → {store.label_names[new_label]}"
        page.keyboard.press("u")
        assert _wait_for(lambda: store.get(sid) == UNREVIEWED)

        # keys typed faster than the page redraws wait their turn: each lands on the card that
        # has the focus by then (the next one in place); none is lost or doubled
        _settle(page)
        ids = _card_ids(page)
        at = ids.index(int(_focused(page)))
        for key in "ccr":
            page.keyboard.press(key)
        want = dict(zip(ids[at : at + 3], [CONFIRMED, CONFIRMED, REJECTED], strict=True))
        assert _wait_for(lambda: len(store.current()) == 3)
        assert {int(r.sample_id): r.decision for r in store.current().itertuples()} == want
        for key in "uuu":
            page.keyboard.press(key)
        assert _wait_for(lambda: store.current().empty)

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
        expect(page.locator(CARDS)).to_have_count(n_cards)
        on_page = _card_ids(page)
        page.get_by_role("button", name="Bulk").click()
        page.get_by_role("button", name=f"Confirm all {len(on_page)}").click()
        assert _wait_for(lambda: len(store.current()) == len(on_page))
        assert store.current()["decision"].eq(CONFIRMED).all()
        _shot(page, tmp_path / "browser_bulk.png")

        # … and after a reload (a new session, the name kept in the address) one Undo
        # takes the whole bulk action back
        page.reload()
        page.wait_for_selector(CARDS)
        undo = page.locator(keys.selector(keys.UNDO) + " button").first
        expect(undo).to_be_enabled(timeout=WAIT_MS)  # the new session can undo
        undo.click()
        assert _wait_for(lambda: store.current().empty)
        expect(page.locator(keys.selector(keys.of(keys.CARD, on_page[0])))).to_have_count(1)

        # re-ranking: after two bad and two fine decisions the queue is re-ordered;
        # switching it off brings the detector's order back
        samples = pd.read_parquet(run / "samples.parquet")
        flipped = samples.loc[samples["is_flipped"], "sample_id"].tolist()
        clean = samples.loc[~samples["is_flipped"], "sample_id"].tolist()
        store.decide_many(flipped[:2], CONFIRMED, reviewer="keys")
        store.decide_many(clean[:2], REJECTED, reviewer="keys")
        page.reload()
        page.wait_for_selector(CARDS)
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


def test_relabel_after_the_cards_moved_up_writes_the_class_shown(
    chromium: str, served_review_run: tuple[str, Path]
) -> None:
    """A Confirm moves every card up a place; the Relabel menu of a moved card, never opened
    before, still offers and writes the class its button names (it once wrote the first)."""

    from playwright.sync_api import expect

    url, run = served_review_run
    store = ReviewStore(run)
    with _opened(chromium, f"{url}/?reviewer=mover") as page:
        page.wait_for_selector(CARDS)
        _settle(page)
        first, moved = _card_ids(page)[:2]
        page.locator(keys.selector(keys.of(keys.CARD, first))).get_by_role(
            "button", name="Confirm"
        ).click()
        assert _wait_for(lambda: _card_ids(page)[:1] == [moved])
        _settle(page)
        card = page.locator(keys.selector(keys.of(keys.CARD, moved)))
        menu = card.get_by_role("button", name=re.compile("^Relabel → "))
        shown = menu.inner_text().splitlines()[0].removeprefix("Relabel → ").strip()
        menu.click()
        own = store.label_names[store._label_of[moved]]
        if shown == own:  # the suggestion agrees with the label: pick another class
            shown = next(n for n in store.label_names if n != own)
            card.get_by_role("combobox").select_option(label=shown)
        card.get_by_role("button", name="Relabel", exact=True).click()
        assert _wait_for(lambda: store.get(moved) == RELABELED)
        row = store.current().set_index("sample_id").loc[moved]
        assert store.label_names[int(row["new_label"])] == shown

        # another class picked in the menu: the button names it and the Relabel writes it
        _settle(page)
        nxt = _card_ids(page)[0]
        card = page.locator(keys.selector(keys.of(keys.CARD, nxt)))
        menu = card.get_by_role("button", name=re.compile("^Relabel → "))
        default = menu.inner_text().removeprefix("Relabel → ").strip()
        menu.click()
        given = store._label_of[nxt]
        other = next(n for i, n in enumerate(store.label_names) if i != given and n != default)
        card.get_by_role("combobox").select_option(label=other)
        expect(card.get_by_role("button", name=f"Relabel → {other}")).to_be_visible()
        card.get_by_role("button", name="Relabel", exact=True).click()
        assert _wait_for(lambda: store.get(nxt) == RELABELED)
        row = store.current().set_index("sample_id").loc[nxt]
        assert store.label_names[int(row["new_label"])] == other

        # two cards decided faster than the page redraws: both decisions are kept
        _settle(page)
        one, two = _card_ids(page)[:2]
        page.evaluate(  # both clicks in one go, as a fast reviewer's might land
            "([a, b]) => { document.querySelector(a).click(); document.querySelector(b).click(); }",
            [
                keys.selector(keys.of(keys.CONFIRM, one)) + " button",
                keys.selector(keys.of(keys.REJECT, two)) + " button",
            ],
        )
        assert _wait_for(lambda: (store.get(one), store.get(two)) == (CONFIRMED, REJECTED))


# ---- the map: box and lasso selection in every colouring, click to open a card ----------------
COLOURINGS = {  # colour-by option → the legend title the map shows
    "Detector score": re.compile(r"^\w+ score$"),
    "Given label": re.compile(r"^given label$"),
    "Predicted label": re.compile(r"^predicted label$"),
    "Review status": re.compile(r"^review status$"),
}
_MAP_READY_JS = (  # the map component has painted (after a remount: the new one)
    "() => { const m = window.__ogadMap; return !!m && m.root.isConnected"
    " && Number(m.root.dataset.painted) > 0; }"
)


def _map_area(page) -> dict:
    """The page box of the map's canvas (waits for the map to be painted)."""
    page.wait_for_function(_MAP_READY_JS)
    deadline = time.monotonic() + 60
    while True:  # a rerun (new colouring, cleared selection) may draw the map anew: wait for it
        canvas = page.locator(".ogad-map canvas").first
        canvas.scroll_into_view_if_needed()
        area = canvas.bounding_box()
        if area is not None and area["width"] > 100:
            return area
        if time.monotonic() > deadline:
            pytest.fail("the map's canvas never became visible")
        time.sleep(0.3)


def _to_data(page, pixels: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Page pixel positions on the canvas → map coordinates (the component's own transform)."""
    page.wait_for_function(_MAP_READY_JS)
    found = page.evaluate("ps => ps.map(([x, y]) => window.__ogadMap.fromClient(x, y))", pixels)
    return [tuple(p) for p in found]


def _legend_title(page) -> str:
    return page.locator(".ogad-map .legend .title").first.inner_text()


def _queue_count(page) -> int:
    heading = page.get_by_text(re.compile(r"Review queue · [\d,]+ to review"))
    return int(re.search(r"· ([\d,]+) to", heading.inner_text())[1].replace(",", ""))


def _choose_colouring(page, option: str, legend_title: re.Pattern) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_test_id("stSelectbox").filter(has_text="Colour by")
    for _attempt in range(12):  # a rerun in flight closes the menu again: open it until it stays
        box.scroll_into_view_if_needed()
        box.locator("input").click(force=True)  # the control itself: the sidebar is long
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        pytest.fail(f"the Colour by menu never offered {option!r}")
    assert _wait_for(lambda: bool(legend_title.match(_painted_title(page))), WAIT_MS / 1000)


def _painted_title(page) -> str:
    """The legend title of the map as last painted ('' while none is)."""
    return page.evaluate(
        "() => { const m = window.__ogadMap; return m && m.root.isConnected"
        " ? m.root.dataset.title || '' : ''; }"
    )


def _drag(page, pixels: list[tuple[float, float]]) -> None:
    page.mouse.move(*pixels[0])
    page.mouse.down()
    for x, y in pixels[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def _selected_count(page) -> int:
    from playwright.sync_api import expect

    caption = page.get_by_text("selected on the map")
    expect(caption).to_be_visible()
    return int(re.match(r"([\d,]+) samples", caption.inner_text())[1].replace(",", ""))


def _clear(page, n_total: int, *, in_map: bool) -> None:
    """Clear the map selection (the map's own Clear, or the button under it): the queue goes back
    to its default length, the review target."""
    from playwright.sync_api import expect

    if in_map:
        page.get_by_role("button", name="Clear map selection").click()
    else:
        page.get_by_role("button", name="Clear selection").click()
    expect(page.get_by_text("selected on the map")).to_have_count(0)
    target = page.get_by_role("spinbutton", name="Queue length").input_value()
    assert 0 < int(target) <= n_total
    expect(page.get_by_text(f"Review queue · {int(target):,} to review")).to_be_visible()


def _expected_in_box(coords: pd.DataFrame, corners, slack: float) -> tuple[int, int]:
    """(points surely inside, points possibly inside) a box given by two map corners."""
    (xa, ya), (xb, yb) = corners
    x0, x1, y0, y1 = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
    counts = []
    for pad in (-slack, slack):
        inside = coords["x"].between(x0 - pad, x1 + pad) & coords["y"].between(y0 - pad, y1 + pad)
        counts.append(int(inside.sum()))
    return counts[0], counts[1]


def _expected_in_lasso(coords: pd.DataFrame, vertices, slack: float) -> tuple[int, int]:
    """(points surely inside, points possibly inside) a closed polygon in map coordinates."""
    from matplotlib.path import Path as PolygonPath  # an independent point-in-polygon

    polygon = PolygonPath(vertices)
    points = coords[["x", "y"]].to_numpy()
    # contains_points(radius=r) grows or shrinks the polygon depending on its orientation
    counts = sorted(int(polygon.contains_points(points, radius=r).sum()) for r in (-slack, slack))
    return counts[0], counts[1]


def _box_and_lasso(page, coords: pd.DataFrame, n_total: int) -> None:
    """A box then a lasso over the map: each selects exactly the samples inside it."""
    _tool(page, "box")
    area = _map_area(page)
    w, h, x, y = area["width"], area["height"], area["x"], area["y"]
    one_px = abs(_to_data(page, [(x, y)])[0][0] - _to_data(page, [(x + 1.5, y)])[0][0])
    box = [(x + w * 0.15, y + h * 0.1), (x + w * 0.6, y + h * 0.65)]
    corners = _to_data(page, box)  # before the drag: the selection reruns the page
    _drag(page, [box[0], (box[1][0], box[0][1]), box[1]])
    low, high = _expected_in_box(coords, corners, one_px)
    n_selected = _selected_count(page)
    assert 0 < n_selected < n_total and low <= n_selected <= high
    assert _wait_for(lambda: _queue_count(page) == n_selected)  # the queue follows
    assert _wait_for(lambda: _map_dataset(page).get("selection") == "box")  # drawn on the map
    _clear(page, n_total, in_map=False)

    _tool(page, "lasso")
    area = _map_area(page)  # the map is drawn anew after the selection is cleared
    w, h, x, y = area["width"], area["height"], area["x"], area["y"]
    ring = [
        (x + w * (0.5 + 0.3 * np.cos(a)), y + h * (0.5 + 0.45 * np.sin(a)))
        for a in np.linspace(0, 2 * np.pi, 14)[:-1]
    ]
    vertices = _to_data(page, ring)
    _drag(page, [*ring, ring[0]])
    low, high = _expected_in_lasso(coords, vertices, one_px)
    n_selected = _selected_count(page)
    assert 0 < n_selected < n_total and low <= n_selected <= high
    assert _wait_for(lambda: _queue_count(page) == n_selected)  # the queue follows
    _clear(page, n_total, in_map=True)
    _tool(page, "pan")


def _map_dataset(page) -> dict:
    return page.evaluate(
        "() => { const m = window.__ogadMap; return m && m.root.isConnected"
        " ? {...m.root.dataset} : {}; }"
    )


def _tool(page, mode: str) -> None:
    """Pick a tool (pan, box, lasso) in the map's own tool bar."""
    button = page.locator(f".ogad-map button[data-mode={mode}]").first
    button.click()
    assert button.get_attribute("aria-pressed") == "true"


def _top_point(page) -> tuple[int, float, float]:
    """(sample id, page x, page y) of the point drawn last (the best-ranked sample)."""
    page.wait_for_function(_MAP_READY_JS)
    sid, px, py = page.evaluate(
        "() => { const m = window.__ogadMap; const p = m.point(m.n - 1);"
        " return [p.sid, ...m.toClient(p.x, p.y)]; }"
    )
    return int(sid), px, py


def _assert_equal_scale_and_legend(page) -> None:
    """One map unit is as many pixels on x as on y; the legend shows entries or a colour bar."""
    (ax, ay), (bx, by) = page.evaluate(
        "() => [window.__ogadMap.toClient(0, 0), window.__ogadMap.toClient(1, 1)]"
    )
    assert bx - ax == pytest.approx(ay - by, rel=1e-9) and bx > ax
    legend = page.locator(".ogad-map .legend")
    assert legend.locator(".item .sw").count() + legend.locator(".scale").count() > 0


@pytest.fixture(scope="module")
def map_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A dashboard serving its own 60-sample run (map tests make no decisions)."""
    run = make_run(tmp_path_factory.mktemp("map") / "run", kind="image", n=N_SAMPLES)
    with _serving(run) as url:
        yield url, run


def test_map_selects_and_opens_cards_in_every_colouring(
    chromium: str, map_run: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, run = map_run
    coords = pd.read_parquet(run / "map.parquet")
    with _opened(chromium, url) as page:
        for option, legend_title in COLOURINGS.items():
            _choose_colouring(page, option, legend_title)
            assert legend_title.match(_legend_title(page))
            _assert_equal_scale_and_legend(page)
            _box_and_lasso(page, coords, N_SAMPLES)
            _shot(page, tmp_path / f"browser_map_{option.lower().replace(' ', '_')}.png")

        # hovering the best-ranked point shows its id, labels and score
        sid, px, py = _top_point(page)
        page.mouse.move(px, py)
        tip = page.locator(".ogad-map .tip")
        expect(tip).to_be_visible()
        expect(tip).to_contain_text(f"#{sid}")
        expect(tip).to_contain_text("predicted:")
        # clicking it opens its card
        page.mouse.click(px, py)
        expect(page.get_by_text(f"#{sid} picked on the map")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator(keys.selector(keys.of(keys.CARD, sid)))).to_be_visible()
        assert _wait_for(lambda: _queue_count(page) == 1)
        _shot(page, tmp_path / "browser_map_click.png")


N_RASTER = 25_000  # above map_view.FULL_POINTS_MAX: a density image plus the top-ranked points


@pytest.fixture(scope="module")
def raster_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    run = make_run(tmp_path_factory.mktemp("raster") / "run", kind="image", n=N_RASTER, n_images=30)
    with _serving(run) as url:
        yield url, run


@pytest.mark.slow
def test_raster_map_selects_every_sample_in_a_box_or_lasso(
    chromium: str, raster_run: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from dashboard.map_view import OVERLAY_POINTS

    url, run = raster_run
    coords = pd.read_parquet(run / "map.parquet")
    with _opened(chromium, url) as page:
        _map_area(page)
        drawn = _map_dataset(page)
        # the top-ranked points over one image of every sample
        assert drawn["raster"] == "true" and int(drawn["points"]) == OVERLAY_POINTS
        expect(page.get_by_text(f"All {N_RASTER:,} samples drawn")).to_be_visible()
        for option in ("Given label", "Review status"):
            _choose_colouring(page, option, COLOURINGS[option])
            _assert_equal_scale_and_legend(page)
            _box_and_lasso(page, coords, N_RASTER)  # far more ids than points drawn
        _shot(page, tmp_path / "browser_map_raster.png")

        # zoomed in, the server sends a sharper image of the view; a double-click resets
        area = _map_area(page)
        middle = (area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
        page.mouse.move(*middle)
        for _ in range(4):
            page.mouse.wheel(0, -300)
        assert _wait_for(lambda: _map_dataset(page).get("detail") == "1", WAIT_MS / 1000)
        _shot(page, tmp_path / "browser_map_raster_zoomed.png")
        page.mouse.dblclick(*middle)
        assert _wait_for(lambda: _map_dataset(page).get("detail") == "", WAIT_MS / 1000)
        expect(page.get_by_text("picked on the map")).to_have_count(0)  # no click


# ---- the map picks what is drawn on top (issue 20) --------------------------------------------
N_BURIED = 10  # outlined top-ranked points, each drawn over a low-ranked point 3 px away


@pytest.fixture(scope="module")
def buried_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict]]:
    """(url, run, {top-ranked id: the low-ranked id drawn under it}): the ten best-ranked samples
    of the default detector stand on a row, each with a low-ranked sample 0.3 map units (about
    3 px, inside the outlined disc) to its right; the other samples lie far below."""
    from dashboard.review_aids import default_detector
    from ogad_core.run.rundir import RunDir

    run = make_run(tmp_path_factory.mktemp("buried") / "run", kind="image", n=N_SAMPLES)
    detector = default_detector(RunDir(run).detectors())  # the one the page opens with
    order = pd.read_parquet(run / "scores.parquet").sort_values(f"{detector}_rank")
    ids = order["sample_id"].astype(int).tolist()
    top, low = ids[:N_BURIED], ids[-N_BURIED:]
    coords = pd.read_parquet(run / "map.parquet").set_index("sample_id")
    rng = np.random.default_rng(0)
    coords["x"] = rng.uniform(0, 40, len(coords))
    coords["y"] = rng.uniform(0, 15, len(coords))
    for i, (t, u) in enumerate(zip(top, low, strict=True)):
        coords.loc[t, ["x", "y"]] = (4.0 * i, 35.0)
        coords.loc[u, ["x", "y"]] = (4.0 * i + 0.3, 35.0)
    coords.reset_index().to_parquet(run / "map.parquet", index=False)
    with _serving(run) as url:
        yield url, run, dict(zip(top, low, strict=True))


def test_the_map_picks_and_names_the_point_drawn_on_top(
    chromium: str, buried_run: tuple[str, Path, dict], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, _run, buried = buried_run
    with _opened(chromium, url) as page:
        _map_area(page)
        drawn = page.evaluate(
            "() => { const m = window.__ogadMap; const out = {};"
            " for (let i = 0; i < m.n; i++) out[m.sid[i]] = [i, ...m.toClient(m.x[i], m.y[i])];"
            " return {points: out, n: m.n, top: m.data.n_top, r: m.data.radius}; }"
        )
        points = {int(k): v for k, v in drawn["points"].items()}
        first_outlined = drawn["n"] - drawn["top"]
        tip = page.locator(".ogad-map .tip")
        for top, low in buried.items():
            assert points[top][0] >= first_outlined > points[low][0]  # outlined, drawn later
            _, lx, ly = points[low]
            gap = abs(points[top][1] - lx)
            assert 1.0 < gap < drawn["r"] + 1.5, gap  # the low point's centre is under the disc
            page.mouse.move(lx, ly)
            expect(tip).to_be_visible()
            expect(tip.locator("b")).to_have_text(f"#{top}")  # the point seen there
            page.mouse.move(points[top][1], points[top][2])
            expect(tip.locator("b")).to_have_text(f"#{top}")
        best = next(iter(buried))
        _, lx, ly = points[buried[best]]
        page.mouse.click(lx, ly)  # a click opens the card of the point hovered
        expect(page.get_by_text(f"#{best} picked on the map")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator(keys.selector(keys.of(keys.CARD, best)))).to_be_visible()
        _shot(page, tmp_path / "browser_map_pick_on_top.png")


# ---- a newcomer's path (issue 20): the reviewer's name on every page -----------------------------
@pytest.fixture(scope="module")
def newcomer_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, run dir) of a served 60-sample image run with gradients, for the issue-20 checks."""
    yield from _served_run_with_gradients(tmp_path_factory.mktemp("newcomer"), seed=2)


def _reviewer_box(page):
    return page.get_by_test_id("stSidebar").get_by_role("textbox", name="Reviewer")


def test_the_reviewer_stays_in_the_address_on_every_page_and_after_a_reload(
    chromium: str, newcomer_run: tuple[str, Path]
) -> None:
    from playwright.sync_api import expect

    url, run = newcomer_run
    with _opened(chromium, f"{url}/?reviewer=newbie") as page:
        page.wait_for_selector(CARDS)
        for link, heading in (("Summary & export", "Summary ·"), ("Run", "Run ·")):
            page.get_by_test_id("stSidebarNav").get_by_text(link, exact=True).click()
            expect(page.get_by_text(heading).first).to_be_visible()
            assert _wait_for(lambda: "reviewer=newbie" in page.url), page.url
            # pages without decisions name the reviewer as text (no text box code to load)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Reviewer: newbie")).to_be_visible()
            expect(_reviewer_box(page)).to_have_count(0)
        page.get_by_test_id("stSidebarNav").get_by_text("Review", exact=True).click()
        page.wait_for_selector(CARDS)
        assert _wait_for(lambda: "reviewer=newbie" in page.url), page.url
        _settle(page)
        sid = _card_ids(page)[0]
        page.locator(keys.selector(keys.of(keys.CONFIRM, sid)) + " button").click()
        assert _wait_for(lambda: ReviewStore(run).get(sid) == CONFIRMED)
        page.reload()  # the name, and with it Undo, survive a reload
        page.wait_for_selector(CARDS)
        expect(_reviewer_box(page)).to_have_value("newbie")
        expect(page.locator(keys.selector(keys.UNDO) + " button").first).to_be_enabled()
        assert ReviewStore(run).history()["reviewer"].tolist()[-1] == "newbie"


def test_undo_outline_copy_path_and_bulk_for_a_newcomer(
    chromium: str, newcomer_run: tuple[str, Path]
) -> None:
    from playwright.sync_api import expect

    url, run = newcomer_run
    store = ReviewStore(run)
    grants = ("clipboard-read", "clipboard-write")
    with _opened(chromium, f"{url}/?reviewer=undo", permissions=grants) as page:
        page.wait_for_selector(CARDS)
        _settle(page)
        before = len(store.current())  # the module's run may hold other tests' decisions
        first = _card_ids(page)[0]
        assert _wait_for(lambda: _focused(page) == str(first))
        page.keyboard.press("c")
        assert _wait_for(lambda: store.get(first) == CONFIRMED)
        assert _wait_for(lambda: _focused(page) not in ("", str(first)))
        page.keyboard.press("u")  # the card comes back, and so does the outline
        assert _wait_for(lambda: store.get(first) == UNREVIEWED)
        assert _wait_for(lambda: _focused(page) == str(first)), _focused(page)
        expect(page.locator(".ogad-flash").first).not_to_contain_text("U undoes it")
        page.keyboard.press("c")  # the next key acts on the restored card
        assert _wait_for(lambda: store.get(first) == CONFIRMED)
        _settle(page)
        page.keyboard.press("u")
        assert _wait_for(lambda: store.get(first) == UNREVIEWED, 60)

        # the file name, and a control that copies the file's path
        _settle(page)
        sid = _card_ids(page)[0]
        ref = str(pd.read_parquet(run / "samples.parquet").set_index("sample_id").loc[sid, "ref"])
        card = page.locator(keys.selector(keys.of(keys.CARD, sid))).first
        expect(card.locator(".ogad-fname")).to_have_text(Path(ref).name)
        card.locator(".ogad-copy").click()
        expect(card.locator(".ogad-copy")).to_have_text("copied ✓")
        clipboard = page.evaluate("() => navigator.clipboard.readText()")
        assert Path(clipboard) == (run / ref).resolve()

        # Bulk names the cards it acts on and closes after the action
        page_ids = _card_ids(page)
        page.get_by_role("button", name="Bulk").click()
        named = page.get_by_text(re.compile(rf"{len(page_ids)} unreviewed samples: #"))
        expect(named).to_be_visible()
        assert [int(i) for i in re.findall(r"#(\d+)", named.inner_text())] == page_ids
        page.get_by_role("button", name=f"Confirm all {len(page_ids)}").click()
        assert _wait_for(lambda: len(store.current()) == before + len(page_ids))
        _settle(page)
        expect(page.get_by_role("button", name=re.compile(r"^Confirm all"))).to_have_count(0)
        page.keyboard.press("u")
        assert _wait_for(lambda: len(store.current()) == before)


# ---- the report (issue 20): one file, offline, every chart drawn --------------------------------
def test_the_report_opens_offline_and_draws_every_chart(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from ogad_core.reporting.report import figures, load_summary, write_report
    from ogad_core.testing import write_evaluation

    run = make_run(tmp_path / "run", kind="image", n=N_SAMPLES)
    write_evaluation(run, retrain=True)
    ReviewStore(run).confirm(
        int(pd.read_parquet(run / "samples.parquet")["sample_id"][0]), reviewer="r"
    )
    out = write_report(run, tmp_path / "report.html")
    n_charts = len(figures(load_summary(run)))
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            page.wait_for_function("() => document.body.dataset.charts", timeout=WAIT_MS)
            drawn = int(page.evaluate("() => document.body.dataset.charts"))
            svgs = page.locator(".ogad-chart .main-svg").count()
            _shot(page, tmp_path / "report_1280x800.png")
        finally:
            browser.close()
    assert drawn == n_charts >= 6 and svgs >= n_charts  # every chart drawn by plotly.js
    outside = [u for u in requests if not u.startswith(("file:", "data:", "blob:"))]
    assert outside == [], outside  # nothing fetched


# ---- layout (issue 20): a laptop sees cards on load, focus mode fits ----------------------------
def _in_view(page, selector: str) -> bool:
    """Whether the element's box lies inside the viewport, without scrolling."""
    return page.evaluate(
        "(sel) => { const el = document.querySelector(sel); if (!el) return false;"
        " const r = el.getBoundingClientRect(); return r.height > 0 && r.top >= 0"
        " && r.bottom <= window.innerHeight && r.right <= window.innerWidth; }",
        selector,
    )


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_layout_shows_cards_on_load_and_focus_mode_fits(
    chromium: str, newcomer_run: tuple[str, Path], tmp_path: Path, size: tuple[int, int]
) -> None:
    url, _run = newcomer_run
    name = f"{size[0]}x{size[1]}"
    with _opened(chromium, f"{url}/?reviewer=layout", size=size) as page:
        page.wait_for_selector(CARDS)
        _map_area(page)  # the map is drawn too
        page.evaluate("() => window.scrollTo(0, 0)")
        _settle(page)
        page.screenshot(path=str(tmp_path / f"layout_grid_{name}.png"))
        _copy_shot(tmp_path / f"layout_grid_{name}.png")
        ids = _card_ids(page)
        tops = page.evaluate(
            "(sels) => sels.map(s => document.querySelector(s).getBoundingClientRect().top)",
            [keys.selector(keys.of(keys.CARD, i)) for i in ids],
        )
        first_row = [i for i, top in zip(ids, tops, strict=True) if abs(top - tops[0]) < 2]
        assert len(first_row) >= 2
        for sid in first_row:  # the whole first row, with its buttons, without scrolling
            assert _in_view(page, keys.selector(keys.of(keys.CARD, sid))), (
                f"card #{sid} is below the fold"
            )
            assert _in_view(page, keys.selector(keys.of(keys.CONFIRM, sid)) + " button")
        page.get_by_test_id("stSidebar").get_by_text("Focus mode").click()
        page.wait_for_selector(keys.selector(keys.FOCUS_NEXT))
        _settle(page)
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(tmp_path / f"layout_focus_{name}.png"))
        _copy_shot(tmp_path / f"layout_focus_{name}.png")
        for step in range(2):  # a card without its image, then one with it (the large one)
            if step:
                page.locator(keys.selector(keys.FOCUS_NEXT) + " button").first.click()
                _settle(page)
                page.evaluate("() => window.scrollTo(0, 0)")

            def shown_ids() -> set[int]:
                return {
                    keys.sid_of(c, keys.CONFIRM)
                    for c in page.locator(keys.selector(keys.CONFIRM, prefix=True)).evaluate_all(
                        "els => els.map(e => e.className)"
                    )
                }

            assert _wait_for(lambda: len(shown_ids()) == 1)  # the old card has left
            (sid,) = shown_ids()
            assert _in_view(page, keys.selector(keys.of(keys.CONFIRM, sid)) + " button"), (
                "focus: Confirm below fold"
            )
            assert _in_view(page, keys.selector(keys.of(keys.REJECT, sid)) + " button")
            assert _in_view(page, keys.selector(keys.of(keys.RELABEL_MENU, sid)) + " button")
        page.screenshot(path=str(tmp_path / f"layout_focus_image_{name}.png"))
        _copy_shot(tmp_path / f"layout_focus_image_{name}.png")
        page.get_by_test_id("stSidebar").get_by_text("Focus mode").click()  # back to the grid


def _copy_shot(path: Path) -> None:
    target = os.environ.get(SHOTS_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


# ---- the Summary's charts (issue 20): drawn from the plotly wheel, a click filters the queue -----
def test_summary_charts_draw_locally_and_a_click_opens_the_queue(
    chromium: str, newcomer_run: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, run = newcomer_run
    samples = pd.read_parquet(run / "samples.parquet")
    requests: list[str] = []
    with _opened(chromium, f"{url}/summary?reviewer=charts", size=(1280, 800)) as page:
        page.on("request", lambda r: requests.append(r.url))
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3"
        )
        _settle(page)
        loaded = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
        _shot(page, tmp_path / "summary_charts_1280x800.png")
        with page.expect_download(timeout=WAIT_MS) as download:  # the report, built on click
            page.get_by_role("button", name="Download report (HTML)").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.name.endswith("_report.html")
        report = saved.read_text(encoding="utf-8")
        assert "<h1>ogad report · run</h1>" in report and 'class="ogad-figure"' in report
        grid = page.locator(".js-plotly-plot").filter(has_text="Given x predicted")
        cell = grid.locator(".scatterlayer .point").nth(1)  # given circle, predicted square
        cell.scroll_into_view_if_needed()
        cell.click(force=True)
        expect(page.get_by_text("Showing every sample given")).to_be_visible(timeout=WAIT_MS)
        want = samples[(samples["label_name"] == "circle") & (samples["pred"] == 1)]
        expect(page.get_by_text(f"Review queue · {len(want)} in the queue")).to_be_visible()
        assert "reviewer=charts" in page.url
        page.get_by_role("button", name="Back to the queue").click()
        expect(page.get_by_text("Showing every sample given")).to_have_count(0)
    outside = [u for u in requests if not u.startswith((url, "data:", f"blob:{url}"))]
    assert outside == [], outside  # plotly.js and everything else from the dashboard itself
    # the partial bundle (1.2 MB) from the dashboard's own route, not Streamlit's full plotly.js
    assert any(u == f"{url}{bundle_path()}" for u in loaded), loaded
    assert not any("PlotlyChart" in u for u in loaded), loaded


# ---- the Summary paints fast (issue 20): no data-grid code, charts below the fold drawn later ---
CHART_BOXES_JS = """() => [...document.querySelectorAll('.ogad-chart')]
  .filter((c) => !c.closest('.st-key-ogad_plotly_preload'))
  .map((c) => ({top: c.getBoundingClientRect().top, drawn: !!c.querySelector('.main-svg')}))"""


def test_summary_tables_sort_and_charts_below_the_fold_wait_until_scrolled_to(
    chromium: str, newcomer_run: tuple[str, Path]
) -> None:
    from playwright.sync_api import expect

    url, run = newcomer_run
    with _opened(chromium, f"{url}/summary", size=(1280, 800)) as page:
        page.wait_for_function("() => document.querySelector('.ogad-chart .main-svg')")
        _settle(page)
        charts = page.evaluate(CHART_BOXES_JS)
        below = [c for c in charts if c["top"] > 800]
        assert below and not any(c["drawn"] for c in below), charts  # not drawn off screen
        assert all(c["drawn"] for c in charts if c["top"] < 700), charts
        page.mouse.move(700, 500)
        for _ in range(8):  # scrolled to, each is drawn
            page.mouse.wheel(0, 600)
            time.sleep(0.3)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.ogad-chart')].filter((c) => "
            "!c.closest('.st-key-ogad_plotly_preload')).every((c) => c.querySelector('.main-svg'))"
        )
        # the tables are plain HTML (the data grid's code is never loaded); a header sorts
        loaded = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)")
        assert not any("/DataFrame." in u for u in loaded), loaded
        health = page.locator(".ogad-table").filter(has_text="est. noise")
        header = health.locator("th", has_text="count")
        header.scroll_into_view_if_needed()

        def column(name: str) -> list[str]:
            cells = health.locator("tbody tr").evaluate_all(
                "(rows, i) => rows.map((r) => r.children[i].textContent)",
                ["class", "count"].index(name),
            )
            return list(cells)

        samples = pd.read_parquet(run / "samples.parquet")
        counts = samples["label_name"].value_counts()
        header.click()
        expect(header).to_have_attribute("aria-sort", "ascending")
        assert [counts[c] for c in column("class")] == sorted(counts), column("class")
        header.click()
        expect(header).to_have_attribute("aria-sort", "descending")
        assert [int(c.replace(",", "")) for c in column("count")] == sorted(counts, reverse=True)
        header.focus()
        page.keyboard.press("Enter")  # from the keyboard too
        expect(header).to_have_attribute("aria-sort", "ascending")


def test_a_fresh_summary_visit_asks_for_its_code_with_the_page(
    chromium: str, newcomer_run: tuple[str, Path]
) -> None:
    """The served HTML of /summary names every element chunk the page then loads (fetched while
    Streamlit's own code is parsed, not after the first script run), the browser asks the
    server's root for its health at once (no failed probe at /summary/_stcore/health and its
    100 ms back-off), and plotly.js comes once, uncompressed, from the dashboard itself."""
    from playwright.sync_api import sync_playwright

    url, _ = newcomer_run
    with urllib.request.urlopen(f"{url}/summary", timeout=30) as resp:
        html = resp.read().decode("utf-8")
    named = set(re.findall(r"static/js/([\w.$-]+\.js)", html))
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(WAIT_MS)
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{url}/summary")
            page.wait_for_function("() => document.querySelector('.ogad-chart .main-svg')")
            _settle(page)
            plotly = page.evaluate(
                "(src) => performance.getEntriesByType('resource').filter((e) => "
                "e.name.endsWith(src)).map((e) => [e.encodedBodySize, e.decodedBodySize])",
                bundle_path(),
            )
        finally:
            browser.close()
    chunks = {u.rsplit("/", 1)[1] for u in requests if "/static/js/" in u}
    assert chunks and chunks <= named, sorted(chunks - named)
    assert not [u for u in requests if "/summary/_stcore/" in u], requests
    assert len(plotly) == 1 and plotly[0][0] == plotly[0][1] > 1_000_000, plotly


# ---- the queue goes on past a low review target (issue 20), in the live app's fragment reruns ----
def test_the_queue_goes_on_past_the_target_while_decisions_confirm(
    chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import expect

    from ogad_core.scoring.target import KEEP_GOING_BLOCK

    run = make_run(tmp_path_factory.mktemp("goes_on") / "run", kind="image", n=120, noise_rate=0.3)
    store = ReviewStore(run)
    with _serving(run) as url, _opened(chromium, f"{url}/?reviewer=goes") as page:
        page.wait_for_selector(CARDS)
        target = int(page.get_by_role("spinbutton", name="Queue length").input_value())
        for _ in range(target):  # every card of the queue confirmed, one by one
            _settle(page)
            sid = _card_ids(page)[0]
            page.locator(keys.selector(keys.of(keys.CONFIRM, sid)) + " button").first.click()
            assert _wait_for(lambda sid=sid: store.get(sid) == CONFIRMED)
        assert len(store.current()) == target
        # a decision reruns only the queue's fragment: the cards past the estimate show there
        expect(page.get_by_text(f"Review queue · {KEEP_GOING_BLOCK} to review")).to_be_visible()
        expect(page.get_by_text(f"past the estimate ({target})")).to_have_count(1)
        assert len(_card_ids(page)) > 0
        # the sidebar's Queue length box (outside the fragment) shows the longer queue too
        box = page.get_by_role("spinbutton", name="Queue length")
        expect(box).to_have_value(str(target + KEEP_GOING_BLOCK))


# ---- issue types: the duplicate-set card and the export ------------------------------------
DUP_CONFLICT = (10, 11)  # one set whose labels differ
DUP_SAME = (20, 21, 22)  # one set of three


def _write_issues(run: Path) -> None:
    """issues.parquet for a prepared run: label issues from the scores, two duplicate sets,
    one outlier (the contract's columns and the card's explanation)."""
    samples = pd.read_parquet(run / "samples.parquet")
    scores = pd.read_parquet(run / "scores.parquet")
    n = len(samples)
    labels = samples["label"].to_numpy().copy()
    labels[DUP_CONFLICT[1]] = (labels[DUP_CONFLICT[0]] + 1) % 3
    labels[list(DUP_SAME)] = labels[DUP_SAME[0]]
    samples["label"] = labels
    samples["label_name"] = [["circle", "square", "cross"][i] for i in labels]
    samples.to_parquet(run / "samples.parquet", index=False)
    parts = []
    ids = samples["sample_id"].to_numpy()
    for issue, score in (
        ("label", scores["iforest_score"].to_numpy()),
        ("duplicate", np.zeros(n)),
        ("outlier", np.zeros(n)),
    ):
        score = score.astype(float).copy()
        set_id = pd.array([pd.NA] * n, dtype="Int64")
        if issue == "duplicate":
            score[list(DUP_CONFLICT)] = 1.5
            score[list(DUP_SAME)] = 1.0
            set_id[list(DUP_CONFLICT)] = DUP_CONFLICT[0]
            set_id[list(DUP_SAME)] = DUP_SAME[0]
            flagged = score >= 0.5
        elif issue == "outlier":
            score[30] = 9.0
            flagged = score >= 2.5
        else:
            flagged = np.zeros(n, dtype=bool)
            flagged[np.argsort(-score)[:8]] = True
        rank = np.empty(n, dtype=np.int64)
        rank[np.lexsort((ids, -score))] = np.arange(1, n + 1)
        parts.append(
            pd.DataFrame(
                {
                    "sample_id": ids,
                    "issue": issue,
                    "score": score,
                    "rank": rank,
                    "flagged": flagged,
                    "set_id": set_id,
                    "explanation": np.where(flagged, f"{issue} reason", ""),
                }
            )
        )
    pd.concat(parts, ignore_index=True).to_parquet(run / "issues.parquet", index=False)


@pytest.fixture(scope="module")
def served_issue_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    run = make_run(tmp_path_factory.mktemp("browser_issues") / "run", kind="image", n=N_SAMPLES)
    _write_issues(run)
    with _serving(run) as url:
        yield url, run


def test_all_shows_a_duplicate_set_as_one_card_with_its_actions_and_export(
    chromium: str, tmp_path: Path
) -> None:
    """In All a duplicate set is one card (members side by side, Keep #id, Keep all, a
    Relabel menu that picks the member; no Confirm / Reject); its actions land in the store
    and the export as on the Duplicates page."""
    from playwright.sync_api import expect, sync_playwright

    from dashboard.issue_view import load_issue_view

    run = make_run(tmp_path / "run", kind="image", n=N_SAMPLES)
    _write_issues(run)
    queue = list(load_issue_view(run).flagged_ids("all"))
    assert DUP_CONFLICT[1] not in queue and DUP_SAME[1] not in queue  # one card per set
    store = ReviewStore(run)
    with _serving(run) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for width, height in ((1920, 1080), (1280, 800)):  # the last one is used below
                page = _page_with_cards(browser, (width, height), f"{url}/?reviewer=sets&issue=all")
                conflict = page.locator(keys.selector(keys.of(keys.CARD, DUP_CONFLICT[0])))
                expect(conflict).to_contain_text("labels differ")
                for sid in DUP_CONFLICT:
                    expect(conflict).to_contain_text(f"#{sid} · given")
                expect(conflict.locator("img")).to_have_count(len(DUP_CONFLICT))
                expect(conflict.locator(keys.selector(keys.CONFIRM, prefix=True))).to_have_count(0)
                expect(conflict).to_contain_text("Relabel a member…")
                conflict.scroll_into_view_if_needed()
                _settle(page)
                _shot(page, tmp_path / f"browser_all_sets_{width}.png")
                if width != 1280:
                    page.context.close()

            kept = page.locator(keys.selector(keys.of(keys.KEEP_MEMBER, DUP_CONFLICT[1])))
            kept.get_by_role("button").click()
            assert _wait_for(lambda: store.get(DUP_CONFLICT[0]) == CONFIRMED)
            assert store.get(DUP_CONFLICT[1]) == REJECTED
            expect(page.locator(keys.selector(keys.of(keys.CARD, DUP_CONFLICT[0])))).to_have_count(
                0
            )

            three = page.locator(keys.selector(keys.of(keys.CARD, DUP_SAME[0])))
            three.scroll_into_view_if_needed()
            three.locator(keys.selector(keys.of(keys.RELABEL_MENU, DUP_SAME[0]))).locator(
                "button[data-act=menu]"
            ).click()
            three.locator("select.ogad-member-pick").select_option(str(DUP_SAME[1]))
            three.locator("select[data-choice-key]").select_option(label="cross")
            _shot(page, tmp_path / "browser_all_sets_relabel_1280.png")
            three.locator(keys.selector(keys.of(keys.RELABEL, DUP_SAME[0]))).get_by_role(
                "button"
            ).click()
            assert _wait_for(lambda: store.get(DUP_SAME[1]) == RELABELED)
            three = page.locator(keys.selector(keys.of(keys.CARD, DUP_SAME[0])))
            expect(three).to_contain_text(f"#{DUP_SAME[1]} · given")
            three.locator(keys.selector(keys.of(keys.KEEP_ALL, DUP_SAME[0]))).get_by_role(
                "button"
            ).click()
            assert _wait_for(lambda: store.get(DUP_SAME[0]) == REJECTED)
            assert store.get(DUP_SAME[2]) == REJECTED and store.get(DUP_SAME[1]) == RELABELED
            _settle(page)
            _shot(page, tmp_path / "browser_all_sets_done_1280.png")

            page.goto(f"{url}/summary?reviewer=sets")
            expect(page.get_by_text("Class health", exact=True)).to_be_visible()
            downloaded = _download_export(page)
        finally:
            browser.close()

    table = _cli_export_equal(run, tmp_path, downloaded)
    assert table.loc[list(DUP_CONFLICT), "keep"].tolist() == ["false", "true"]
    assert table.loc[DUP_SAME[1], "final_label"] == "cross"
    assert table.loc[[DUP_SAME[0], DUP_SAME[2]], "decision"].tolist() == [REJECTED] * 2


def test_duplicate_set_card_actions_and_export(
    chromium: str, served_issue_run: tuple[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, run = served_issue_run
    store = ReviewStore(run)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for width, height in ((1920, 1080), (1280, 800)):  # the last one is used below
                page = _page_with_cards(browser, (width, height), f"{url}/?reviewer=dups")
                # the selector counts each issue type; a duplicate set is one card
                expect(page.get_by_text("Duplicates 2 sets")).to_be_visible()
                expect(page.get_by_text("Outliers 1")).to_be_visible()
                page.get_by_text("Duplicates 2 sets").click()
                first = page.locator(keys.selector(keys.of(keys.DUPSET, DUP_CONFLICT[0])))
                expect(first).to_be_visible()
                expect(first).to_contain_text("labels differ")
                for sid in DUP_CONFLICT:
                    expect(first).to_contain_text(f"#{sid} · given")
                expect(first.locator("img")).to_have_count(len(DUP_CONFLICT))
                second = page.locator(keys.selector(keys.of(keys.DUPSET, DUP_SAME[0])))
                expect(second.locator("img")).to_have_count(len(DUP_SAME))
                first.scroll_into_view_if_needed()
                _settle(page)
                _shot(page, tmp_path / f"browser_duplicates_{width}.png")
                if width != 1280:
                    page.context.close()

            # Keep one: the chosen member is kept, the others dropped; the set leaves the queue
            first.get_by_role("button", name="Keep one").click()
            conflict_set = keys.selector(keys.of(keys.DUPSET, DUP_CONFLICT[0]))
            expect(page.locator(conflict_set)).to_have_count(0)
            assert _wait_for(lambda: store.get(DUP_CONFLICT[1]) == CONFIRMED)
            assert store.get(DUP_CONFLICT[0]) == REJECTED
            assert store.history().iloc[-1]["reviewer"] == "dups"

            # per-member relabel, then Keep all keeps the others (the relabel stays)
            member = DUP_SAME[1]
            page.mouse.move(1, 1)  # no button's help tooltip over the next set's card
            second = page.locator(keys.selector(keys.of(keys.DUPSET, DUP_SAME[0])))
            second.locator(keys.selector(f"{state.RELABEL_PREFIX}{member}")).click()
            page.get_by_role("option", name="cross").click()
            _settle(page)
            page.mouse.move(1, 1)
            relabel = keys.selector(keys.of(keys.DUP_RELABEL, member))
            second.locator(relabel).get_by_role("button").click()
            assert _wait_for(lambda: store.get(member) == RELABELED)
            page.locator(keys.selector(keys.of(keys.DUPSET, DUP_SAME[0]))).get_by_role(
                "button", name="Keep all"
            ).click()
            assert _wait_for(lambda: store.get(DUP_SAME[0]) == REJECTED)
            assert store.get(DUP_SAME[2]) == REJECTED and store.get(member) == RELABELED
            expect(page.get_by_text("No open duplicate sets.")).to_be_visible()

            # the export carries the decisions and the issues column
            page.goto(f"{url}/summary?reviewer=dups")
            expect(page.get_by_text("Class health", exact=True)).to_be_visible()
            downloaded = _download_export(page)
        finally:
            browser.close()

    table = _cli_export_equal(run, tmp_path, downloaded)
    assert table.loc[DUP_CONFLICT[1], "decision"] == CONFIRMED
    assert table.loc[DUP_CONFLICT[1], "keep"] == "false"
    assert table.loc[member, "final_label"] == "cross"
    for sid in (*DUP_CONFLICT, *DUP_SAME):
        assert "duplicate" in table.loc[sid, "issues"].split(";")
    assert table.loc[30, "issues"].split(";") == ["outlier"]


LEAKS = (40, 41)  # two training copies of one held-out file


def _write_leakage(run: Path, held_out: str) -> None:
    """issues.parquet as :func:`_write_issues` writes it, plus the leakage type: ``LEAKS``
    copy the held-out file ``held_out`` (the leakage type's words)."""
    _write_issues(run)
    table = pd.read_parquet(run / "issues.parquet")
    ids = table.loc[table["issue"] == "label", "sample_id"].to_numpy()
    flagged = np.isin(ids, LEAKS)
    reason = f"exact copy of held-out {held_out} (as are 1 other training samples): the held-out "
    leak = pd.DataFrame(
        {
            "sample_id": ids,
            "issue": "leakage",
            "score": flagged.astype(float),
            "rank": np.argsort(np.argsort(~flagged, kind="stable")) + 1,
            "flagged": flagged,
            "set_id": pd.array(np.where(flagged, LEAKS[0], pd.NA), dtype="Int64"),
            "explanation": np.where(flagged, reason + "score is inflated", ""),
        }
    )
    pd.concat([table, leak], ignore_index=True).to_parquet(run / "issues.parquet", index=False)
    from PIL import Image

    from ogad_core.run.rundir import RunDir

    thumbnail = RunDir(run).thumbnail_path(held_out)  # the issue pass writes it
    thumbnail.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16), 200, dtype=np.uint8)).save(thumbnail)


def test_a_leakage_card_shows_the_held_out_file_whole_and_drops_the_training_copy(
    chromium: str, tmp_path: Path
) -> None:
    """At 1280 x 800 a leakage card's reason is drawn whole (more than two lines, nothing cut:
    the held-out file's name is what its reviewer checks), the held-out image (its thumbnail)
    beside the sample; the card reads Drop / Keep without
    the model's guess; Drop confirms (keep = false in the downloaded export, which is `ogad
    export`'s), Keep rejects."""
    from playwright.sync_api import expect, sync_playwright

    run = make_run(tmp_path / "run", kind="image", n=N_SAMPLES)
    held_out = "/data/scans/held_out_split/class_square/scan_2024_batch7_00042.png"
    _write_leakage(run, held_out)
    store = ReviewStore(run)
    with _serving(run) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = _page_with_cards(browser, (1280, 800), f"{url}/?reviewer=leaks&issue=leakage")
            card = page.locator(keys.selector(keys.of(keys.CARD, LEAKS[0])))
            reason = card.locator(".ogad-whole")
            expect(reason).to_contain_text(held_out)
            drawn = reason.evaluate(
                "e => ({scroll: e.scrollHeight, client: e.clientHeight, "
                "line: parseFloat(getComputedStyle(e).lineHeight)})"
            )
            assert drawn["scroll"] <= drawn["client"] + 1, drawn  # nothing cut off
            assert drawn["client"] > 2.5 * drawn["line"], drawn  # longer than the old clamp
            expect(card.get_by_role("button", name="Drop")).to_be_visible()
            expect(card.get_by_role("button", name="Keep")).to_be_visible()
            expect(card.get_by_role("button", name="Confirm")).to_have_count(0)
            expect(card.locator(".ogad-labels")).to_contain_text("prediction not shown")
            copy = card.locator(".ogad-held-out")  # the held-out image beside the sample
            expect(copy.locator("img")).to_be_visible()
            expect(copy).to_contain_text("its held-out copy")
            expect(copy).to_have_attribute("title", held_out)
            card.scroll_into_view_if_needed()
            _settle(page)
            _shot(page, tmp_path / "browser_leakage_1280.png")
            card.get_by_role("button", name="Drop").click()
            assert _wait_for(lambda: store.get(LEAKS[0]) == CONFIRMED)
            other = page.locator(keys.selector(keys.of(keys.CARD, LEAKS[1])))
            other.get_by_role("button", name="Keep").click()
            assert _wait_for(lambda: store.get(LEAKS[1]) == REJECTED)
            page.goto(f"{url}/summary?reviewer=leaks")
            expect(page.get_by_text("Class health", exact=True)).to_be_visible()
            downloaded = _download_export(page)
        finally:
            browser.close()

    table = _cli_export_equal(run, tmp_path, downloaded)
    assert table.loc[list(LEAKS), "keep"].tolist() == ["false", "true"]
    assert table.loc[list(LEAKS), "decision"].tolist() == [CONFIRMED, REJECTED]
    for sid in LEAKS:
        assert "leakage" in table.loc[sid, "issues"].split(";")


def test_a_reload_stays_in_the_issue_queue_whose_rank_the_cards_and_map_show(
    chromium: str, served_issue_run: tuple[str, Path]
) -> None:
    """In the Outliers queue the address names it (``issue=outlier``), so a reload stays there;
    its card shows the outlier type's rank and score, and the map outlines the queue's first."""
    from playwright.sync_api import expect

    url, _ = served_issue_run
    with _opened(chromium, f"{url}/?reviewer=stays", size=(1280, 800)) as page:
        page.wait_for_selector(CARDS)
        _settle(page)
        assert "issue=" not in page.url  # Label issues, the default, is not in the address
        page.get_by_test_id("stButtonGroup").get_by_text(re.compile(r"^Outliers 1")).click()
        expect(page.get_by_text("ordered by the outlier issue type's rank")).to_be_visible()
        assert _wait_for(lambda: "issue=outlier" in page.url, timeout_s=60), page.url
        page.reload()
        page.wait_for_selector(CARDS)
        _settle(page)
        assert "issue=outlier" in page.url and "reviewer=stays" in page.url
        expect(page.get_by_text("ordered by the outlier issue type's rank")).to_be_visible()
        assert _card_ids(page) == [30]
        head = page.locator(".ogad-head").first
        expect(head).to_contain_text("#30 · rank 1 · score 9.000")
        expect(page.get_by_text("outlined: the queue's first 1")).to_be_visible()


@pytest.fixture(scope="module")
def reranked_label_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(url, run dir) of a served run with gradients and issues.parquet (the Label issues queue
    in the label type's order) and two confirmed and two rejected samples: re-ranking learns."""
    run = make_run(tmp_path_factory.mktemp("browser_head") / "run", kind="image", n=N_SAMPLES)
    samples = pd.read_parquet(run / "samples.parquet")
    grads = np.random.default_rng(2).normal(0, 1, (N_SAMPLES, 8)).astype(np.float32)
    grads[samples["is_flipped"].to_numpy(), 0] += 4.0
    np.save(run / "gradients.npy", grads)
    _write_issues(run)
    store = ReviewStore(run)
    flipped = samples.loc[samples["is_flipped"], "sample_id"].tolist()
    clean = samples.loc[~samples["is_flipped"], "sample_id"].tolist()
    store.decide_many(flipped[:2], CONFIRMED, reviewer="head")
    store.decide_many(clean[:2], REJECTED, reviewer="head")
    with _serving(run) as url:
        yield url, run


def test_the_queue_header_keeps_bulk_and_undo_on_its_row_when_re_ranked(
    chromium: str, reranked_label_run: tuple[str, Path], tmp_path: Path
) -> None:
    """At 1280 x 800, beside the map, the Label issues queue's order line with re-ranking on
    (its longest) wraps inside its own box: Bulk and Undo stay on the title's row, right of it,
    instead of a row of their own that pushed the cards down."""
    from playwright.sync_api import expect

    url, _ = reranked_label_run
    with _opened(chromium, f"{url}/?reviewer=head", size=(1280, 800)) as page:
        page.wait_for_selector(CARDS)
        _settle(page)
        expect(page.get_by_text("ordered by the label issue type's rank")).to_be_visible()
        page.get_by_test_id("stSidebar").get_by_text("Re-rank from my decisions").click()
        expect(page.get_by_text("re-ranked from the decisions")).to_be_visible()
        _settle(page)
        page.mouse.move(1, 1)
        _shot(page, tmp_path / "browser_reranked_head_1280.png")
        boxes = page.evaluate(
            "(sels) => sels.map(s => { const r = document.querySelector(s)"
            ".getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })",
            [
                ".ogad-title",
                ".ogad-sub",
                keys.selector(keys.UNDO),
                keys.selector(keys.BULK_MENU, prefix=True),
            ],
        )
        title, sub, undo, bulk = boxes
        for button in (undo, bulk):
            assert button[0] >= sub[2] - 1 and button[0] >= title[2] - 1  # right of the text
            assert button[1] < sub[3] and button[3] > title[1]  # on the text's rows
