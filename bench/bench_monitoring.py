"""Benchmark: monitoring at a million records (issue 13): ``Ledger.decay`` over 2,000
(ticker, model) pairs, and the leaderboard with the dashboard's filters.

    PYTHONPATH=src python -m bench.bench_monitoring [--quick]

Data: ``bench.common.generate_records(50, 40, 500)`` (the scale benchmark's million records:
2,000 stable pairs of 500 evaluations over two years), in an embedded ledger without mirrors.
Each figure is the median of repeated calls on a warm ledger (a monitor or a dashboard keeps
its connections). Writes ``bench/results/monitoring.md`` (a snippet for the report) and
``bench/results/monitoring.json``, and prints the snippet.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import RESULTS_DIR, figure, generate_records, median_time, write_results

DECAY_BUDGET_S = 1.5


def run(quick: bool) -> tuple[list[dict], str]:
    from perfledger import Ledger

    shape = (20, 20, 100) if quick else (50, 40, 500)
    reps = 3 if quick else 5
    frame = generate_records(*shape)
    n, pairs = len(frame), shape[0] * shape[1]
    label = f"{n:,}"
    g = "monitoring"
    figs = []
    with tempfile.TemporaryDirectory(prefix="plbench_monitor_") as tmp:
        led = Ledger(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        t0 = time.perf_counter()
        led.log_many(frame)
        build_s = time.perf_counter() - t0
        led.decay()  # warm: connections, the exact null distribution's cache

        decay_s = median_time(led.decay, repeat=reps)
        cpu = []
        for _ in range(reps):
            c0 = time.process_time()
            out = led.decay()
            cpu.append(time.process_time() - c0)
        flagged = int(out["decayed"].sum())
        figs.append(figure(
            f"decay() of Sharpe, all {pairs:,} pairs, on {label} records", decay_s, "s",
            target=f"<= {DECAY_BUDGET_S} s", ok=decay_s <= DECAY_BUDGET_S, group=g,
            note=f"{len(out):,} pairs tested (20 latest vs {int(out['baseline_n'].max())} before); "
                 f"{flagged} flagged at alpha 0.01 "
                 f"({flagged / max(len(out), 1):.1%}; every pair is stable: the false-alarm rate); "
                 f"CPU time {statistics.median(cpu):.3f} s (wall time also counts other people's load)",
        ))
        ticker = str(frame["ticker"].iloc[0])
        one = median_time(lambda: led.decay(ticker), repeat=reps)
        figs.append(figure(f"decay(ticker) ({shape[1]} pairs)", one * 1000, "ms", group=g,
                           note="information"))
        mse_s = median_time(lambda: led.decay(metric="mse"), repeat=reps)
        figs.append(figure(f"decay(metric='mse'), all {pairs:,} pairs", mse_s, "s", group=g,
                           note="information"))

        end = datetime(2026, 11, 1, tzinfo=UTC)
        for name, kw in (
            (f"leaderboard(ticker), sharpe >= 1 ({ticker})", {"ticker": ticker, "at_least": {"sharpe": 1.0}}),
            ("leaderboard(ticker), last 90 days", {"ticker": ticker, "since": end - timedelta(days=90)}),
            ("leaderboard() all tickers, last 90 days", {"since": end - timedelta(days=90)}),
            ("leaderboard() all tickers, sharpe >= 1", {"at_least": {"sharpe": 1.0}}),
        ):
            t = median_time(lambda kw=kw: led.leaderboard(**kw), repeat=max(3, reps // 2))
            figs.append(figure(f"{name} on {label} records", t * 1000, "ms", group=g,
                               note="information: aggregated over the matching records in the database"))
        led.close()

    rows = ["| figure | measured | target | status | notes |", "|---|---|---|---|---|"]
    for f in figs:
        value = f"{f['value']:.3f} {f['unit']}" if f["unit"] == "s" else f"{f['value']:,.0f} {f['unit']}"
        status = f"**{f['status']}**" if f["status"] else "info"
        rows.append(f"| {f['name']} | {value} | {f['target'] or ''} | {status} | {f['note']} |")
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    snippet = "\n".join([
        f"`PYTHONPATH=src python -m bench.bench_monitoring{' --quick' if quick else ''}` on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load} at the end (ledger of {label} records "
        f"built with `log_many` in {build_s:.1f} s).",
        "",
        *rows,
        "",
    ])
    return figs, snippet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40,000 records")
    args = parser.parse_args(argv)
    figs, snippet = run(args.quick)
    write_results("monitoring", {"figures": figs})
    (RESULTS_DIR / "monitoring.md").write_text(snippet, encoding="utf-8")
    print(snippet)
    return 0 if all(f["status"] != "FAIL" for f in figs) else 1


if __name__ == "__main__":
    sys.exit(main())
