"""Where the dashboard's time goes: each part of one script run, what it sends, its imports.

    .venv/bin/python -m bench.profile_dashboard [--records 1000000]

On the browser benchmark's cached ledger (``bench/bench_dashboard_browser.py`` builds it),
renders ``pages/Model_Performance_Dashboard.py`` with ``AppTest`` twice (caches cold, then
warm) with each top-level part of the page wrapped in a ``time.perf_counter`` timer (by
patching the page's own functions: the page carries no instrumentation), then reports the
elements the run sent (by kind), each Plotly figure's JSON size and points, each table's
Arrow size, and the slowest imports of a fresh interpreter that imports the page
(``python -X importtime``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "Model_Performance_Dashboard.py"
TIMED = {  # module → functions timed where the page calls them
    "perfledger.dashboard.app": ("render_filters", "render_decay_settings", "render_performance",
                                 "render_best_models", "render_analytics", "render_actions"),
    "perfledger.dashboard.views_performance": ("render_decay_panel",),
    "perfledger.dashboard.charts": ("time_series_figure", "comparison_figure", "heatmap_figure",
                                    "trend_figure"),
    "perfledger.dashboard.data": ("stats", "history", "series", "latest", "leaderboard", "decay",
                                  "sharpe_confidence", "best", "tickers", "models", "directions", "labels",
                                  "recent"),
}


INSTRUMENTED: list[dict[str, float]] = []


def instrument(totals: dict[str, float]) -> None:
    """Wrap every function in ``TIMED`` so each call adds its seconds to ``totals``."""
    import importlib

    for module_name, names in TIMED.items():
        module = importlib.import_module(module_name)
        for name in names:
            fn = getattr(module, name)
            label = f"{module_name.split('.')[-1]}.{name}"

            def timed(*a: Any, __fn: Callable[..., Any] = fn, __key: str = label, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return __fn(*a, **k)
                finally:
                    totals[__key] += time.perf_counter() - t0

            setattr(module, name, timed)
            for other in ("perfledger.dashboard.app", "perfledger.dashboard.views_performance",
                          "perfledger.dashboard.views_best", "perfledger.dashboard.views_analytics",
                          "perfledger.dashboard.sidebar"):
                mod = importlib.import_module(other)
                if getattr(mod, name, None) is fn:
                    setattr(mod, name, timed)


def run(label: str, at: Any = None, ticker: str | None = None) -> Any:
    """One script run with every part timed: a new ``AppTest`` (``at`` None) or a rerun of
    ``at`` after picking ``ticker`` in the sidebar (a ticker switch)."""
    from streamlit.testing.v1 import AppTest

    totals: dict[str, float] = collections.defaultdict(float)
    if at is None:
        instrument(totals)
        INSTRUMENTED.append(totals)
    else:
        totals = INSTRUMENTED[-1]
        totals.clear()
    t0 = time.perf_counter()
    if at is None:
        at = AppTest.from_file(str(PAGE), default_timeout=600)
        at.run()
    else:
        at.selectbox(key="ticker").set_value(ticker).run()
    total = time.perf_counter() - t0
    assert not at.exception, at.exception
    print(f"\n## script run, {label}: {total:.2f} s (AppTest, whole page)")
    for key, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {key:40s} {seconds:7.3f} s")
    return at


def sent(at: Any) -> None:
    kinds: collections.Counter[str] = collections.Counter()
    for node in at._tree:  # every element and block the run sent
        kinds[getattr(node, "type", type(node).__name__)] += 1
    print("\n## elements sent: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        points = sum(len(t.get("x") or t.get("z") or []) for t in spec.get("data", []))
        print(f"  plotly {chart.proto.id[-24:]:24s} {len(chart.proto.spec) / 1024:8.1f} KiB JSON, "
              f"{len(spec.get('data', []))} traces, {points:,} points")
    for df in at.get("arrow_data_frame"):
        print(f"  table  {len(df.proto.data) / 1024:8.1f} KiB Arrow, {len(df.value):,} rows")


def imports() -> None:
    code = "import sys; sys.argv=['x']; import perfledger.dashboard.app, plotly.graph_objects"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, check=True)
    rows = []
    for line in out.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    top = [r for r in rows if not r[1].startswith("   ")]  # top-level imports (cumulative)
    print("\n## fresh interpreter: cumulative import time of the page's top-level imports")
    for us, name in sorted(top, reverse=True)[:12]:
        print(f"  {us / 1e6:6.3f} s  {name.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from bench.bench_dashboard_browser import cache_ledger

    store = cache_ledger(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "perfledger-bench",
                         args.records)
    os.environ["PERFLEDGER_URL"] = str(store)
    os.environ.pop("PERFLEDGER_READ_ONLY", None)
    imports()
    run("caches cold")
    at = run("caches warm")
    sent(at)
    run("ticker switch (TICK03, its caches cold)", at, "TICK03")
    print(f"\nload average: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
