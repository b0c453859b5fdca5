"""The real dashboard in a real browser: ``streamlit run pages/Model_Performance_Dashboard.py``
on a free localhost port, driven by headless Chromium through Playwright.

AppTest checks the script's logic; only a browser shows that the Plotly charts and tables
actually draw and that no error box appears. Screenshots of the three tabs go to
``tests/screenshots/`` (git-ignored); with ``PERFLEDGER_UPDATE_SCREENSHOTS=1`` they also
replace the README's ``docs/screenshots/`` (a test run never changes tracked files otherwise).

Without Chromium or Playwright the test skips with the reason, except in CI (``CI=true``),
where a missing browser is a failure: CI must never silently skip it (``make browser-deps``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from perfledger.sample import SAMPLE_MODELS

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "Model_Performance_Dashboard.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = ROOT / "tests" / "screenshots"
DOC_SHOTS = ROOT / "docs" / "screenshots"
TABS = (  # label, screenshot, Plotly charts, tables in the tab (some inside expanders), height
    ("📈 Performance Dashboard", "performance.png", 3, 3, 2000),  # with the param comparison
    ("🏆 Best Models Summary", "best_models.png", 1, 1, 1100),
    ("📊 Quick Analytics", "analytics.png", 1, 3, 2000),
    # equity, underwater, the PBO logits and in- vs out-of-sample (the sample's overfit sweep)
    ("📉 Backtests", "backtests.png", 4, 1, 1720),
)
VIEWPORT = {"width": 1280, "height": 2000}  # tall enough for the leaderboard and the trend

WAIT_MS = 60_000  # first visit loads plotly.js; slow on a busy 2-core machine

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run; `make browser-deps` installs Chromium)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout}s")


def demo_ledger(directory: Path) -> None:
    """``make run``'s own sample ledger (``perfledger.sample``: nightly backtests with PSR and
    DSR, params and tags, a decaying model, an overfit sweep), so the README's screenshots
    show what a new user sees."""
    from perfledger import Ledger
    from perfledger.sample import add_sample_data

    with Ledger(directory) as led:
        add_sample_data(led)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A dashboard server started, as the seed's users start it, from a project directory
    whose ``./memory/logs`` holds the demo ledger (no ``$PERFLEDGER_URL``: the page shows the
    real ledger path, ``./memory/logs``); always terminated."""
    project = tmp_path / "research"
    demo_ledger(project / "memory" / "logs")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PERFLEDGER_URL", None)
    env.pop("PERFLEDGER_READ_ONLY", None)
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(PAGE),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=project, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def browser_available() -> None:
    """Checked before the server starts, so a machine without a browser skips at once."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is not installed")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright (python) is not installed")


def _check_download(page: Page) -> None:
    """The CSV is built on click (a callable) and has every filtered row: 4 models × 45 + 40."""
    page.get_by_role("tab", name=TABS[0][0]).click()
    with page.expect_download(timeout=WAIT_MS) as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert re.fullmatch(r"perfledger_AAPL_\d{8}\.csv", download.suggested_filename)
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("timestamp,ticker,model_name,sharpe") and len(lines) == 1 + 4 * 45 + 40


def _traces(panel: Locator) -> list[str]:
    """Trace names of each Plotly chart drawn in ``panel``, in order."""
    return panel.locator(".js-plotly-plot").evaluate_all(
        "plots => plots.map(p => (p.data || []).map(t => t.name || ''))")


def _check_tab(page: Page, panel: Locator, label: str) -> None:
    """The issue-13 views are drawn, not just present in the script."""
    alerts = " ".join(panel.locator("[data-testid='stAlert']").all_inner_texts())
    if label == TABS[0][0]:
        header = page.locator("[data-testid='stCaptionContainer']", has_text="Ledger:").first
        assert "./memory/logs" in header.inner_text()
        assert "Decaying" in alerts and "p =" in alerts  # the badge, with change and p-value
        # PSR/DSR in plain words; every evaluation with a Sharpe on AAPL is a trial (issue 10):
        # 4 models x 45 nightly backtests + the 40 configurations of the sweep.
        assert "could be luck among 220 trials" in alerts
        names = _traces(panel)[0]
        assert any(n.endswith("⚠ decaying") for n in names), names
    elif label == TABS[2][0]:
        assert "Decaying" in alerts and "AAPL · LSTM_v1" in alerts
        assert any(n.endswith("⚠ decaying") for n in _traces(panel)[0])
    elif label == TABS[3][0]:
        # make run's ledger kept every backtest's returns: each model's latest equity and
        # drawdown curve, and the PBO over all 220 of AAPL's (4 x 45 nightly + the 40-config sweep)
        equity, underwater = _traces(panel)[:2]
        assert set(equity) == set(underwater) == {*SAMPLE_MODELS, "LightGBM_sweep"}
        assert "220 × " in panel.locator("[data-testid='stMetric']").filter(has_text="Trials").inner_text()
        assert "overfit" in alerts.lower() and "12,870 splits" in alerts


def _check_time_axis(panel: Locator, ledger: Path) -> None:
    """The time series is sent as epoch milliseconds (typed arrays, issue 23): Plotly must
    read them as the records' dates, on a date axis spanning AAPL's first to last evaluation
    (misread numbers would show 1970 or a linear axis)."""
    from perfledger import Ledger

    axis = panel.locator(".js-plotly-plot").first.evaluate(
        "p => [p._fullLayout.xaxis.type, ...p._fullLayout.xaxis.range.map(String)]")
    with Ledger(ledger) as led:
        stamps = led.history("AAPL", columns=["sharpe"])["timestamp"]
    first, last = f"{stamps.min():%Y-%m-%d}", f"{stamps.max():%Y-%m-%d}"
    assert axis[0] == "date", axis
    assert axis[1][:10] <= first and last <= axis[2][:10], (axis, first, last)


def _check_rolling_mean(page: Page) -> None:
    """The toggle adds a rolling-mean line per model to the time-series chart."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name=TABS[0][0]).click()
    panel = page.get_by_role("tabpanel").filter(visible=True)
    before = len(_traces(panel)[0])
    panel.get_by_text("Rolling mean", exact=True).click()
    expect(panel.get_by_text("Rolling window (evaluations)")).to_be_visible(timeout=WAIT_MS)
    page.wait_for_function(
        f"() => Array.from(document.querySelectorAll('[role=tabpanel] .js-plotly-plot'))"
        f".some(p => p.data && p.data.length === {2 * before})",
        timeout=WAIT_MS,
    )
    assert page.locator("[data-testid='stException']").count() == 0


def _check_note_overlay(page: Page, note: str) -> None:
    """The grid has no per-cell tooltip (streamlit#7564); a note cut at the Notes column's edge
    is read whole in the grid's own overlay, as the column's help says: in Recent activity,
    the latest row's last cell (Ctrl+Right), Enter, and the overlay holds the whole note."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name=TABS[2][0]).click()
    panel = page.get_by_role("tabpanel").filter(visible=True)
    recent = panel.locator("[data-testid='stDataFrame']").nth(1)  # after the top models
    expect(recent).to_be_visible(timeout=WAIT_MS)
    box = recent.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 40, box["y"] + 50)  # the first row (the latest), first column
    page.keyboard.press("Control+ArrowRight")
    page.keyboard.press("Enter")
    overlay = page.locator("textarea").filter(has_text=note)
    expect(overlay).to_have_count(1, timeout=WAIT_MS)
    assert overlay.input_value() == note
    page.keyboard.press("Escape")


def test_every_tab_renders_charts_and_tables(browser_available: None, server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    update_docs = os.environ.get("PERFLEDGER_UPDATE_SCREENSHOTS") == "1"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(30_000)
            page.goto(server, wait_until="domcontentloaded")
            expect(page.get_by_role("tab")).to_have_count(len(TABS), timeout=WAIT_MS)
            for label, shot, n_charts, n_tables, height in TABS:
                tab = page.get_by_role("tab", name=label)
                tab.click()
                expect(tab).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
                panel = page.get_by_role("tabpanel").filter(visible=True)
                expect(panel.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=WAIT_MS)
                expect(panel.locator("[data-testid='stDataFrame']").filter(visible=True).first).to_be_visible(
                    timeout=WAIT_MS)
                expect(panel.locator(".js-plotly-plot")).to_have_count(n_charts, timeout=WAIT_MS)
                assert panel.locator("[data-testid='stDataFrame']").count() >= n_tables
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(800)  # let Plotly finish its transition
                assert page.locator("[data-testid='stException']").count() == 0
                assert "Traceback" not in page.inner_text("body")
                _check_tab(page, panel, label)
                if label == TABS[0][0]:
                    _check_time_axis(panel, tmp_path / "research" / "memory" / "logs")
                clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
                page.screenshot(path=str(SHOTS / shot), clip=clip)
                if update_docs:
                    shutil.copyfile(SHOTS / shot, DOC_SHOTS / shot)
            _check_download(page)
            _check_rolling_mean(page)
            from perfledger import Ledger

            with Ledger(tmp_path / "research" / "memory" / "logs") as led:
                _check_note_overlay(page, str(led.history(limit=1)["notes"].iloc[-1]))
        finally:
            browser.close()


def _start(project: Path, address: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    for var in ("PERFLEDGER_URL", "PERFLEDGER_READ_ONLY", "PERFLEDGER_ALLOW_WRITES",
                "PERFLEDGER_ALLOW_WRITES_FOR"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(PAGE), "--server.address", address,
           "--server.port", str(port), "--server.headless", "true",
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, env=env, cwd=project, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    _wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc, port


def _no_write_action(page: Page, why: str) -> None:
    """The page drew (every tab, a chart), says it is read-only and why, and has no write."""
    from playwright.sync_api import expect

    expect(page.get_by_role("tab")).to_have_count(len(TABS), timeout=WAIT_MS)
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar.get_by_text("Read-only: served")).to_be_visible(timeout=WAIT_MS)
    assert why in sidebar.inner_text()
    for name in ("Add sample data", "Log evaluation", "Clear all data", "Higher is better"):
        assert page.get_by_role("button", name=name).count() == 0, name
    assert page.get_by_text("Clear all data").count() == 0
    assert page.get_by_text("Log an evaluation").count() == 0
    assert page.get_by_label("Model name").count() == 0
    labels = " | ".join(page.locator("button, [role=button]").all_inner_texts()).lower()
    assert not any(word in labels for word in ("sample", "log ", "clear", "better", "delete")), labels
    assert page.locator("[data-testid='stException']").count() == 0


def test_served_beyond_loopback_the_page_has_no_write_action(browser_available: None, tmp_path: Path) -> None:
    """``streamlit run ... --server.address 0.0.0.0`` (reached here through 127.0.0.1) and a
    loopback server reached through a reverse proxy (``X-Forwarded-For``): in Chromium, no
    button, form or expander that writes exists, and the sidebar says why. A loopback page
    without a proxy, in the same browser, does offer them (the check can see them)."""
    from playwright.sync_api import expect, sync_playwright
    from test_dashboard_access import listening

    from perfledger import Ledger
    from perfledger.sample import sample_records

    project = tmp_path / "team"
    with Ledger(project / "memory" / "logs") as led:
        led.log_many(sample_records(evaluations=3, random_state=2))
    shared, shared_port = _start(project, "0.0.0.0", tmp_path / "shared.log")
    local, local_port = _start(project, "127.0.0.1", tmp_path / "local.log")
    try:
        assert listening(shared_port) == {"0.0.0.0"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                                        timeout=60_000)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(30_000)
                page.goto(f"http://127.0.0.1:{shared_port}", wait_until="domcontentloaded")
                _no_write_action(page, "served on 0.0.0.0, beyond this machine")

                proxied = browser.new_context(viewport=VIEWPORT,
                                              extra_http_headers={"X-Forwarded-For": "203.0.113.7"})
                page = proxied.new_page()
                page.goto(f"http://127.0.0.1:{local_port}", wait_until="domcontentloaded")
                _no_write_action(page, "served through a reverse proxy")

                page = browser.new_page(viewport=VIEWPORT)
                page.goto(f"http://127.0.0.1:{local_port}", wait_until="domcontentloaded")
                expect(page.get_by_role("tab")).to_have_count(len(TABS), timeout=WAIT_MS)
                expect(page.get_by_role("button", name="Add sample data")).to_be_visible(timeout=WAIT_MS)
                assert page.get_by_text("Clear all data").count() >= 1
            finally:
                browser.close()
    finally:
        for proc in (shared, local):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
