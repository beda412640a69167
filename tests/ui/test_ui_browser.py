"""`retain ui` in a real browser: Debian's Chromium driven by Playwright against a real
`retain ui` process on loopback. The tests take screenshots of the views: into a temporary
folder, or into docs/images/ (what README shows) with ``RETAIN_UI_SCREENSHOTS=docs/images``, so
that running the suite leaves the working tree as it was.

The browser comes from ``scripts/services/chromium.sh`` (which `scripts/test` runs; it
installs Debian's ``chromium`` package). Without it these tests fail and say so; Playwright
never downloads a browser of its own here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ui_server import serving, start_slow

CHROMIUM = os.environ.get("RETAIN_TEST_CHROMIUM") or "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
_SHOTS = os.environ.get("RETAIN_UI_SCREENSHOTS")
IMAGES = (ROOT / _SHOTS) if _SHOTS else Path(tempfile.mkdtemp(prefix="retain-ui-shots-"))
HOW = "run scripts/services/chromium.sh (as root: it installs Debian's chromium package); scripts/test does"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with serving(tmp_path_factory.mktemp("uibrowser")) as found:
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'", pytrace=False)
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: {HOW}", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, world: dict[str, Any]) -> Iterator[Any]:
    """A page of the app; fails the test on any script error it logged."""
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" and "status of 4" not in message.text else None)
    yield page
    context.close()
    assert errors == []


def open_view(page: Any, world: dict[str, Any], hash: str) -> None:
    page.goto(world["server"].base + hash)


def screenshot(page: Any, name: str, most: int = 860) -> None:
    """The top of the page (at most `most` pixels of it), as IMAGES/NAME: a real picture."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    height = min(most, int(page.evaluate("document.body.scrollHeight")) + 10)
    path = IMAGES / name
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": 1280, "height": height}, full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def column(page: Any, name: str) -> list[str]:
    """The texts of the cells of column `name` of the results table, top to bottom."""
    return list(page.evaluate(
        """(name) => {
            const headers = [...document.querySelectorAll('#results thead th')];
            const at = headers.findIndex((th) => th.dataset.column === name);
            return [...document.querySelectorAll('#results tbody tr')].map((tr) => tr.children[at].textContent);
        }""",
        name,
    ))


def test_overview_lists_every_class_with_counts_by_state(page: Any, world: dict[str, Any]) -> None:
    open_view(page, world, "#/")
    page.wait_for_selector("#classes")
    text = page.inner_text("#classes")
    assert "uiproject:Train" in text and "uiproject:Point" in text and "uiproject:Data" in text
    row = page.locator("#classes tr", has_text="uiproject:Train")
    assert row.locator(".state.finished").inner_text() == "3" and row.locator(".state.failed").inner_text() == "1"
    screenshot(page, "ui-overview.png")


def test_table_lists_pages_filters_and_sorts(page: Any, world: dict[str, Any]) -> None:
    open_view(page, world, "#/")
    page.click("text=uiproject:Point")
    page.wait_for_selector("#results tbody tr")
    assert page.locator("#results tbody tr").count() == 100
    assert page.inner_text("#count") == "1–100 of 150"
    page.click("text=Next ›")
    page.wait_for_function("document.querySelector('#count')?.textContent === '101–150 of 150'")
    assert page.locator("#results tbody tr").count() == 50
    page.fill("#filter", "x<10 group=1")
    page.press("#filter", "Enter")
    page.wait_for_function("document.querySelector('#count')?.textContent === '1–3 of 3'")
    page.click("#results th[data-column='config.x']")
    page.wait_for_function("document.querySelector('#results th[data-column=\"config.x\"]')?.textContent.includes('▲')")
    assert column(page, "config.x") == ["1", "4", "7"]
    page.click("#results th[data-column='config.x']")
    page.wait_for_function("document.querySelector('#results th[data-column=\"config.x\"]')?.textContent.includes('▼')")
    assert column(page, "config.x") == ["7", "4", "1"]
    assert page.input_value("#filter") == "x<10 group=1"  # kept across sorting


def test_a_bad_filter_is_an_error_on_the_page(page: Any, world: dict[str, Any]) -> None:
    open_view(page, world, "#/class/uiproject:Point")
    page.wait_for_selector("#results")
    page.fill("#filter", "nokey<1")
    page.press("#filter", "Enter")
    error = page.wait_for_selector("[role=alert]")
    assert "unknown config key 'nokey'" in error.inner_text()
    assert page.is_visible("#filter")  # the page stays usable


def test_train_table_shows_states_inputs_and_columns(page: Any, world: dict[str, Any]) -> None:
    open_view(page, world, "#/class/uiproject:Train?sort=lr")
    page.wait_for_selector("#results tbody tr")
    assert column(page, "state") == ["finished", "finished", "finished", "failed"]
    assert column(page, "config.data") == [f"Data [{world['data'][:6]}]"] * 3 + [""]
    assert page.get_attribute("#results tbody tr:last-child td:nth-child(3)", "title") == "ValueError: boom"
    screenshot(page, "ui-table.png")
    # Hiding a column is remembered.
    page.click("details.columns summary")
    page.locator("details.columns label", has_text="config.depth").locator("input").uncheck()
    page.wait_for_function("!document.querySelector('#results th[data-column=\"config.depth\"]')")
    page.reload()
    page.wait_for_selector("#results tbody tr")
    assert page.locator("#results th[data-column='config.depth']").count() == 0


def test_detail_shows_config_summary_files_output_and_a_drawn_chart(page: Any, world: dict[str, Any]) -> None:
    id = world["trains"][1]
    open_view(page, world, "#/class/uiproject:Train?sort=lr")
    page.click(f"a[href='#/result/{id}']")
    page.wait_for_selector("#config")
    config = page.inner_text("#config")
    assert "lr\t0.2" in config and f"Data [{world['data'][:6]}]" in config
    assert page.locator("#config tr.default").count() == 2  # depth and fail
    assert "loss" in page.inner_text("#summary") and "accuracy" in page.inner_text("#summary")
    page.wait_for_selector("[data-file='weights.npy'] pre")
    assert "notes of this run" in page.inner_text("[data-file='notes.txt']")
    assert "shape [3,4]  dtype float64" in page.inner_text("[data-file='weights.npy']")
    assert '"layers"' in page.inner_text("[data-file='params.json']")
    page.wait_for_function("document.querySelector(\"[data-file='plot.png'] img\")?.naturalWidth === 24")
    chart = page.wait_for_selector("#charts .chart[data-title='curve.npy'] svg.main-svg")
    assert chart is not None
    assert page.evaluate("document.querySelector(\"#charts .chart[data-title='curve.npy']\").data[0].y.length") == 40
    assert page.locator("#charts .chart[data-title='curve.npy'] .scatterlayer .trace path.js-line").count() == 1
    page.wait_for_selector("#charts .chart[data-title='loss'] svg.main-svg")
    page.wait_for_function("document.querySelector('#output').textContent.includes('training with lr=0.2')")
    assert page.inner_text("#command").startswith("retain uiproject:Train ")
    provenance = page.inner_text("#provenance")
    assert "host" in provenance and "platform" in provenance and "numpy " in provenance
    screenshot(page, "ui-detail.png")
    page.click(f"text=Data [{world['data'][:6]}]")
    page.wait_for_selector("#users")
    assert page.locator("#users a").count() == 3


def test_compare_overlays_two_runs(page: Any, world: dict[str, Any]) -> None:
    open_view(page, world, "#/class/uiproject:Train?sort=lr")
    page.wait_for_selector("#results tbody tr")
    boxes = page.locator("#results tbody input[type=checkbox]")
    boxes.nth(0).check()
    assert page.is_disabled("#compare")
    boxes.nth(2).check()
    page.click("#compare")
    page.wait_for_selector("#differing")
    assert page.locator("#differing tbody tr").count() == 1 and "lr" in page.inner_text("#differing")
    assert "loss" in page.inner_text("#summaries")
    page.wait_for_selector("#charts .chart[data-title='curve.npy'] svg.main-svg")
    traces = page.evaluate("document.querySelector(\"#charts .chart[data-title='curve.npy']\").data.map((t) => t.name)")
    assert sorted(traces) == sorted([world["trains"][0][:6], world["trains"][2][:6]])
    assert page.locator("#charts .chart[data-title='curve.npy'] .scatterlayer .trace path.js-line").count() == 2
    screenshot(page, "ui-compare.png")


def test_sweep_plot_draws_a_scatter_and_parallel_coordinates(page: Any, world: dict[str, Any]) -> None:
    open_view(page, world, "#/sweep/uiproject:Point?x=config.x&y=summary.y&color=config.group")
    page.wait_for_selector("#scatter .main-svg")
    page.wait_for_selector("#parallel .main-svg")
    points = page.evaluate("document.querySelector('#scatter').data[0].x.length")
    assert points == 150
    assert page.locator("#scatter canvas").count() >= 1  # scattergl draws on a canvas
    assert page.locator("#parallel .parcoords").count() == 1 or page.locator("#parallel g.parcoords").count() >= 1
    screenshot(page, "ui-sweep.png", most=620)


def test_a_chart_of_100000_points_draws_without_freezing_the_page(page: Any, world: dict[str, Any]) -> None:
    open_view(page, world, "#/")
    page.wait_for_selector("#classes")
    # Long tasks (the main thread busy over 50 ms) from now on: the page and plotly.js are
    # loaded, what follows is fetching and drawing the chart.
    page.evaluate(
        "window.__long = []; new PerformanceObserver((list) => window.__long.push(...list.getEntries().map((e) => e.duration)))"
        ".observe({type: 'longtask'});"
    )
    page.evaluate(f"location.hash = '#/result/{world['long']}'")
    page.wait_for_selector("#charts .chart[data-title='signal.npy'] .main-svg")
    trace = page.evaluate("(() => { const t = document.querySelector(\"#charts .chart[data-title='signal.npy']\").data[0]; return [t.type, t.y.length]; })()")
    assert trace == ["scatter", 100_000]
    assert page.locator("#charts .chart[data-title='signal.npy'] .scatterlayer path.js-line").count() == 1
    longest = page.evaluate("Math.max(0, ...window.__long)")
    assert longest < 2000, f"the page was frozen for {longest:.0f} ms"
    # Still responsive: a click navigates at once.
    page.click("text=uiproject:Long")
    page.wait_for_selector("#results tbody tr")


def test_live_output_updates_without_reloading(page: Any, world: dict[str, Any]) -> None:
    process = start_slow(world["root"], 10.0)
    try:
        open_view(page, world, "#/live")
        page.evaluate("window.__same_page = true")
        page.wait_for_function("document.querySelector('#live .card pre')?.textContent.includes('tick 2')", timeout=20_000)
        before = page.inner_text("#live .card pre")
        page.wait_for_function(
            "(before) => document.querySelector('#live .card pre').textContent.length > before.length",
            arg=before, timeout=2_500,
        )
        assert page.evaluate("window.__same_page") is True
        assert "running" in page.inner_text("#live .card")
        page.wait_for_selector("#live .card .chart[data-title='progress'] svg.main-svg")
        screenshot(page, "ui-live.png")
    finally:
        process.terminate()
        process.wait(10)
