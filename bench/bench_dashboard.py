"""Benchmark: first render of the dashboard on a 100,000-record ledger.

    PYTHONPATH=src python bench/bench_dashboard.py [--records 100000] [--runs 5]

Builds the ledger in a temp directory (10 tickers × 10 models, evaluations spread over a
year), then renders the page with Streamlit's ``AppTest`` (the whole script: every tab,
every query, every figure) with all Streamlit caches cleared before each run, so each run is
a *first* render. The first run of the process also pays the imports (Streamlit, Plotly) and
is reported apart as "cold". The baseline is ``Ledger.history()`` of the whole store in the
same run: the dashboard should cost about as much as reading the data once, not more.
Writes a markdown snippet to ``bench/results/dashboard.md`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "pages" / "Model_Performance_Dashboard.py"
OUT = ROOT / "bench" / "results" / "dashboard.md"
BUDGET_S = 5.0


def build_store(directory: Path, records: int, n_tickers: int, n_models: int) -> tuple[float, int]:
    """A ledger of ``records`` evaluations over ``n_tickers`` × ``n_models``; returns
    (seconds, records stored)."""
    from perfledger import Ledger
    from perfledger.sample import sample_records

    tickers = tuple(f"TICK{i:02d}" for i in range(n_tickers))
    models = tuple(f"Model_{i:02d}" for i in range(n_models))
    per_pair = max(1, records // (len(tickers) * len(models)))
    t0 = time.perf_counter()
    with Ledger(directory) as led:
        n = led.log_many(sample_records(tickers, models, evaluations=per_pair, random_state=11, days=365))
    return time.perf_counter() - t0, n


def max_points_per_trace(at: object) -> int:
    """The largest number of points any trace of any rendered Plotly chart carries."""
    most = 0
    for chart in at.get("plotly_chart"):  # type: ignore[attr-defined]
        spec = json.loads(chart.proto.spec)
        for trace in spec.get("data", []):
            for axis in ("x", "z"):
                values = trace.get(axis)
                if isinstance(values, list):
                    most = max(most, len(values))
    return most


def render_once() -> tuple[float, object]:
    """One first render: caches cleared, then the whole page script."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)
    st.cache_data.clear()
    st.cache_resource.clear()
    t0 = time.perf_counter()
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.run(timeout=120)
    elapsed = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception[0].message}")
    return elapsed, at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="warm first renders after the cold one")
    parser.add_argument("--tickers", type=int, default=10)
    parser.add_argument("--models", type=int, default=10)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # no "no runtime" chatter
    with tempfile.TemporaryDirectory(prefix="perfledger-bench-") as tmp:
        store = Path(tmp) / "ledger"
        build_s, n = build_store(store, args.records, args.tickers, args.models)
        os.environ["PERFLEDGER_URL"] = str(store)
        os.environ.pop("PERFLEDGER_READ_ONLY", None)

        from perfledger import Ledger

        with Ledger(store) as led:
            led.history(limit=1)  # open the connection outside the timing
            base = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                led.history()
                base.append(time.perf_counter() - t0)
        baseline = statistics.median(base)

        cold, at = render_once()
        warm = [render_once()[0] for _ in range(args.runs)]
        med = statistics.median(warm)
        points = max_points_per_trace(at)
        raw_rows = len(at.tabs[0].dataframe[-1].value)  # type: ignore[attr-defined]

    verdict = "within" if max(cold, med) <= BUDGET_S else "OVER"
    snippet = "\n".join(
        [
            f"### Dashboard first render, {n:,} records ({args.tickers} tickers × {args.models} models)",
            "",
            f"`PYTHONPATH=src python bench/bench_dashboard.py --records {args.records} --runs {args.runs} "
            f"--tickers {args.tickers} --models {args.models}` "
            f"on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()} (ledger built with `log_many` in {build_s:.1f} s).",
            "",
            "| measure | seconds | × baseline |",
            "|---|---:|---:|",
            f"| baseline: `Ledger.history()` of all {n:,} records (median of {args.runs}) "
            f"| {baseline:.3f} | 1.0 |",
            f"| first render, warm process, caches cleared (median of {args.runs}) "
            f"| {med:.3f} | {med / baseline:.1f} |",
            f"| first render, cold process (includes importing Streamlit and Plotly) "
            f"| {cold:.3f} | {cold / baseline:.1f} |",
            "",
            f"Budget {BUDGET_S:.0f} s: {verdict}. Largest chart trace: {points:,} points "
            f"(cap 2,000); raw table: {raw_rows:,} rows (the CSV download has the full filtered set).",
            "",
        ]
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(snippet, encoding="utf-8")
    print(snippet)
    return 0 if verdict == "within" else 1


if __name__ == "__main__":
    sys.exit(main())
