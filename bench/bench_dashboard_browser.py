"""Benchmark: the dashboard as a person sees it, in Debian's Chromium, against a floor page.

    .venv/bin/python -m bench.bench_dashboard_browser [--records 1000000] [--runs 5]

Serves ``pages/Model_Performance_Dashboard.py`` with ``streamlit run`` on a ledger of
``--records`` evaluations (10 tickers × 10 models; built once with ``log_many`` into
``--cache-dir``, default ``~/.cache/perfledger-bench``) and, alternated with it in the same
run, ``bench/floor_page.py``: a bare Streamlit page drawing one Plotly line chart of as many
points as the dashboard's first chart drew before issue 23, with one selectbox that redraws it.
Headless ``/usr/bin/chromium`` (never a downloaded browser) through Playwright measures, from
navigation:

- **first chart**: a Plotly chart (``.js-plotly-plot`` with its ``svg``) visible;
- **first tab**: the script finished, every visible chart of the first view drawn (its ``svg``)
  and every visible table laid out;
- **every tab**: each other tab clicked in turn and drawn (the floor has one view);
- **ticker switch** (warm only): another ticker picked in the sidebar → the chart redrawn
  with it (the floor: its selectbox changed → its chart redrawn).

*Cold*: a freshly started server (its first session pays the page's imports and every cache);
*warm*: a fresh browser context on the server that just served the cold one. Each of
``--runs`` rounds starts one server per page, floor and dashboard in alternating order.
Then the server-side first render: ``AppTest`` of each page in a fresh interpreter (imports
included), alternated, median of ``--runs``. Writes ``bench/results/dashboard_browser.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "pages" / "Model_Performance_Dashboard.py"
FLOOR = ROOT / "bench" / "floor_page.py"
OUT = ROOT / "bench" / "results" / "dashboard_browser.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1280, "height": 1000}
WAIT_MS = int(os.environ.get("BENCH_WAIT_MS", "180000"))
TICKERS, MODELS = 10, 10
#: What the dashboard's first chart drew at a million records before issue 23: 10 models ×
#: 1,200 points (12,000 per chart); fewer when the ticker has fewer records.
FLOOR_POINTS = 12_000
#: Text that only each tab's own content shows (the tab is drawn once it is visible).
TAB_MARKERS = {
    "📈 Performance Dashboard": "Model leaderboard",
    "🏆 Best Models Summary": "Best model per ticker and metric",
    "📊 Quick Analytics": "Performance trend",
}

# True once the script stopped and every visible chart and table is drawn.
SETTLED_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  const visible = e => e.offsetParent !== null;
  const plots = [...document.querySelectorAll('.js-plotly-plot')].filter(visible);
  if (!plots.length || plots.some(p => !p.querySelector('.main-svg'))) return false;
  const tables = [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(visible);
  return tables.every(t => t.getBoundingClientRect().height > 0);
}"""
CHART_WITH_JS = """(name) => [...document.querySelectorAll('.js-plotly-plot')].some(p =>
  p.offsetParent !== null && p.querySelector('.main-svg') && p.layout && p.layout.title &&
  String(p.layout.title.text || '').includes(name))"""


@dataclass
class Page:
    """One page under test and its figures (seconds), by measure."""

    name: str
    script: Path
    env: dict[str, str]
    tabs: tuple[str, ...] = ()
    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, measure: str, seconds: float) -> None:
        self.times.setdefault(measure, []).append(seconds)

    def median(self, measure: str) -> float:
        return statistics.median(self.times[measure])


def cache_ledger(cache: Path, records: int) -> Path:
    """The benchmark ledger, built once per size with ``log_many`` (reused while its
    ``complete`` marker exists)."""
    store = cache / f"dashboard-{records}-{TICKERS}x{MODELS}"
    if (store / ".complete").exists():
        return store
    shutil.rmtree(store, ignore_errors=True)
    store.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT / "src"))
    from bench.bench_dashboard import build_store

    seconds, n = build_store(store, records, TICKERS, MODELS)
    print(f"built {n:,} records in {seconds:.1f} s into {store}", flush=True)
    (store / ".complete").write_text(f"{n}\n", encoding="utf-8")
    return store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(page: Page) -> Iterator[str]:
    """``streamlit run`` of the page on a free localhost port, healthy before it yields."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(page.script),
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"]
    proc = subprocess.Popen(cmd, env=page.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode} serving {page.script}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tab(pg: Any, label: str) -> Any:
    return pg.get_by_role("tab", name=label)


def visit(browser: Any, url: str, page: Page, kind: str, switch_to: str | None) -> None:
    """One navigation in a fresh browser context: record first chart, first tab, every tab,
    and (``switch_to``) the redraw after picking another ticker."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        pg = context.new_page()
        pg.set_default_timeout(WAIT_MS)
        t0 = time.perf_counter()
        pg.goto(url, wait_until="commit")
        pg.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible")
        page.add(f"{kind} first chart", time.perf_counter() - t0)
        pg.wait_for_function(SETTLED_JS, polling=50)
        page.add(f"{kind} first tab", time.perf_counter() - t0)
        if pg.locator("[data-testid='stException']").count():
            raise RuntimeError(f"{page.name} raised: {pg.inner_text('[data-testid=stException]')}")
        for label in page.tabs[1:]:
            _tab(pg, label).click()
            pg.get_by_role("tabpanel").filter(visible=True).get_by_text(TAB_MARKERS[label]).first.wait_for(
                state="visible")
            pg.wait_for_function(SETTLED_JS, polling=50)
        page.add(f"{kind} every tab", time.perf_counter() - t0)
        if switch_to is None:
            return
        if page.tabs:  # back to the first view: the chart the ticker switch redraws
            _tab(pg, page.tabs[0]).click()
            pg.wait_for_function(CHART_WITH_JS, arg="over time", polling=50)
            pg.wait_for_function(SETTLED_JS, polling=50)
        pg.locator("[data-testid='stSelectbox']").filter(has_text="Ticker").first.click()
        option = pg.get_by_role("option", name=switch_to, exact=True)
        option.wait_for(state="visible")
        t1 = time.perf_counter()
        option.click()
        pg.wait_for_function(CHART_WITH_JS, arg=switch_to, polling=50)
        page.add("ticker switch: chart redrawn", time.perf_counter() - t1)
        pg.wait_for_function(SETTLED_JS, polling=50)
        page.add("ticker switch: page settled", time.perf_counter() - t1)
    finally:
        context.close()


FRESH_RENDER = """
import sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
assert not at.exception, at.exception
print(time.perf_counter() - t0)
"""


def fresh_render(page: Page) -> float:
    """Seconds from a fresh interpreter's first statement to ``AppTest`` having run the page
    once (imports of Streamlit, the page and its libraries included; interpreter start-up not)."""
    out = subprocess.run([sys.executable, "-c", FRESH_RENDER, str(page.script)], env=page.env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def alternate(pages: list[Page], runs: int, step: Callable[[Page], None]) -> None:
    """``step`` for each page, ``runs`` rounds, the order flipped every round."""
    for i in range(runs):
        for page in pages if i % 2 == 0 else pages[::-1]:
            step(page)


def ratio_rows(dash: Page, floor: Page, pairs: list[tuple[str, str, str, float | None]]) -> list[str]:
    rows = []
    for label, dm, fm, target in pairs:
        d, f = dash.median(dm), floor.median(fm)
        verdict = "" if target is None else (" PASS" if d / f <= target else " OVER")
        spread = f"{min(dash.times[dm]):.2f}–{max(dash.times[dm]):.2f}"
        rows.append(f"| {label} | {d:.2f} ({spread}) | {f:.2f} | **{d / f:.2f}×** | "
                    + (f"≤ {target:g}×{verdict}" if target else "—") + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="rounds (>= 5 for reported figures)")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "perfledger-bench"
    parser.add_argument("--cache-dir", type=Path, default=cache)
    parser.add_argument("--skip-server-side", action="store_true", help="browser figures only")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    store = cache_ledger(args.cache_dir, args.records)
    base = {k: v for k, v in os.environ.items() if k not in ("PERFLEDGER_URL", "PERFLEDGER_READ_ONLY")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), base.get("PYTHONPATH", "")])
    base["STREAMLIT_LOGGER_LEVEL"] = "error"
    points = min(FLOOR_POINTS, args.records // TICKERS)
    dash = Page("dashboard", DASHBOARD, {**base, "PERFLEDGER_URL": str(store)}, tuple(TAB_MARKERS))
    floor = Page("floor", FLOOR, {**base, "FLOOR_POINTS": str(points)})
    loads: list[float] = []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            def browse(page: Page) -> None:
                with server(page) as url:
                    visit(browser, url, page, "cold", None)
                    visit(browser, url, page, "warm", "TICK03" if page is dash else "SERIES03")
                loads.append(os.getloadavg()[0])
                print(f"{page.name}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in page.times.items()),
                      flush=True)

            alternate([floor, dash], args.runs, browse)
        finally:
            browser.close()

    if not args.skip_server_side:
        def render(page: Page) -> None:
            page.add("fresh-process render", fresh_render(page))
            loads.append(os.getloadavg()[0])

        alternate([floor, dash], args.runs, render)

    pairs: list[tuple[str, str, str, float | None]] = [
        ("cold: navigation → first chart", "cold first chart", "cold first chart", 1.5),
        ("cold: navigation → first tab drawn", "cold first tab", "cold first tab", 2.0),
        ("cold: navigation → every tab drawn", "cold every tab", "cold every tab", None),
        ("warm: navigation → first chart", "warm first chart", "warm first chart", 1.5),
        ("warm: navigation → first tab drawn", "warm first tab", "warm first tab", 2.0),
        ("warm: navigation → every tab drawn", "warm every tab", "warm every tab", None),
        ("warm: ticker switch → chart redrawn", "ticker switch: chart redrawn",
         "ticker switch: chart redrawn", 1.5),
        ("warm: ticker switch → page settled", "ticker switch: page settled",
         "ticker switch: page settled", None),
    ]
    if not args.skip_server_side:
        pairs.append(("server side: first render in a fresh process (AppTest, imports included)",
                      "fresh-process render", "fresh-process render", 1.5))
    cpus = os.cpu_count()
    snippet = "\n".join([
        f"### In the browser, {args.records:,} records ({TICKERS} tickers × {MODELS} models)",
        "",
        f"`.venv/bin/python -m bench.bench_dashboard_browser --records {args.records} --runs {args.runs}` "
        f"on {platform.system()} {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}, "
        f"headless Debian Chromium, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Floor: `bench/floor_page.py`, "
        f"one Plotly line chart of {points:,} points and one selectbox. Medians of {args.runs} "
        "(dashboard range in brackets), seconds; floor and dashboard alternated in the same run.",
        "",
        "| measure | dashboard | floor | ratio | target |",
        "|---|---:|---:|---:|---|",
        *ratio_rows(dash, floor, pairs),
        "",
        f"Host load (1-min average) during the run: {min(loads):.1f}–{max(loads):.1f} on {cpus} CPUs "
        f"(above {cpus}, other work was competing).",
        "",
    ])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(snippet, encoding="utf-8")
    print(snippet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
