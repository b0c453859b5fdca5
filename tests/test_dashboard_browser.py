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

if TYPE_CHECKING:
    from playwright.sync_api import Page

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
TABS = (  # label, screenshot, Plotly charts, tables in the tab
    ("📈 Performance Dashboard", "performance.png", 2, 2),
    ("🏆 Best Models Summary", "best_models.png", 1, 1),
    ("📊 Quick Analytics", "analytics.png", 1, 2),
)

WAIT_MS = 60_000  # first visit loads plotly.js; slow on a busy 2-core machine

pytestmark = pytest.mark.browser


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


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """A dashboard server on a temp ledger with sample data; always terminated."""
    from perfledger import Ledger
    from perfledger.sample import add_sample_data

    store = tmp_path / "ledger"
    with Ledger(store) as led:
        add_sample_data(led)
    port = _free_port()
    env = {
        **os.environ,
        "PERFLEDGER_URL": str(store),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("PERFLEDGER_READ_ONLY", None)
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(PAGE),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
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
    """The CSV is built on click (a callable) and has every filtered row: 4 models × 20."""
    page.get_by_role("tab", name=TABS[0][0]).click()
    with page.expect_download(timeout=WAIT_MS) as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert re.fullmatch(r"perfledger_AAPL_\d{8}\.csv", download.suggested_filename)
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("timestamp,ticker,model_name,sharpe") and len(lines) == 1 + 80


def test_three_tabs_render_charts_and_tables(browser_available: None, server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    update_docs = os.environ.get("PERFLEDGER_UPDATE_SCREENSHOTS") == "1"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(server, wait_until="domcontentloaded")
            expect(page.get_by_role("tab")).to_have_count(3, timeout=WAIT_MS)
            for label, shot, n_charts, n_tables in TABS:
                tab = page.get_by_role("tab", name=label)
                tab.click()
                expect(tab).to_have_attribute("aria-selected", "true", timeout=WAIT_MS)
                panel = page.get_by_role("tabpanel").filter(visible=True)
                expect(panel.locator(".js-plotly-plot .main-svg").first).to_be_visible(timeout=WAIT_MS)
                expect(panel.locator("[data-testid='stDataFrame']").first).to_be_visible(timeout=WAIT_MS)
                expect(panel.locator(".js-plotly-plot")).to_have_count(n_charts, timeout=WAIT_MS)
                assert panel.locator("[data-testid='stDataFrame']").count() >= n_tables
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(800)  # let Plotly finish its transition
                assert page.locator("[data-testid='stException']").count() == 0
                assert "Traceback" not in page.inner_text("body")
                page.screenshot(path=str(SHOTS / shot))
                if update_docs:
                    shutil.copyfile(SHOTS / shot, DOC_SHOTS / shot)
            _check_download(page)
        finally:
            browser.close()
