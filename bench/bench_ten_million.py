"""Ten million records on the embedded store, against one million and against floors
(issue 23, section 3; on demand, not in ``make bench``).

    python -m bench.bench_ten_million                       # 10M vs 1M (~15-25 min, ~7 GB)
    python -m bench.bench_ten_million --records 2000000 --baseline 200000   # a smoke run

Both ledgers are 500 tickers x 100 models (``bench.common.generate_records``), mirrors on,
built with ``log_many`` into ``--dir`` (kept for ``--reuse``). Figures, each alternated
between its contenders in one run, medians:

* bulk load with mirrors, against pandas ``to_csv`` of the same frame (built here, timed
  once: a 10M load is minutes);
* ``history(ticker, model)`` and ``history(ticker)`` at 10M, against the floor: a bare ADBC
  ``SELECT`` of the same rows and columns from the same database file, into Arrow, and
  against the floor plus its ``to_pandas(use_threads=False)`` (a DataFrame is what history
  gives), wall and process CPU time;
* ``best()``, ``tickers()``, ``leaderboard(ticker)`` and opening the ledger (``Ledger(d)``
  plus ``stats()``, after imports) at 10M against the same calls at 1M;
* ``decay()`` over every pair against a bare read of the rows it tests (each pair's latest
  120 values of the metric: ``ROW_NUMBER()`` over the records);
* peak memory of ``history(ticker)`` against the resulting DataFrame's own size, in a child
  process after a warm-up read (``bench.history_memory``: the RSS high-water mark reset before
  the read, and tracemalloc + Arrow's pool as a lower bound);
* the disk footprint (database, write-ahead log, mirrors) against the CSV alone.

The single ``log()`` at 10M (sustained rate, first call after the load) is
``python -m bench.bench_single_log --records 10000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, generate_records, interleaved_medians

TICKERS, MODELS = 500, 100
HISTORY_COLUMNS = "ts, model_name, sharpe, mse, drawdown, total_return, win_rate, accuracy, notes"
DECAY_FLOOR = (
    "SELECT ticker, model_name, ts, id, sharpe FROM (SELECT ticker, model_name, ts, id, sharpe, "
    "ROW_NUMBER() OVER (PARTITION BY ticker, model_name ORDER BY ts DESC, id DESC) AS k "
    "FROM pl_records WHERE sharpe IS NOT NULL) WHERE k <= 120"
)
def build(directory: Path, records: int, reuse: bool, csv_floor: Path | None,
          chunk: int = 1_000_000) -> dict[str, float]:
    """The ledger of ``records`` evaluations (kept), loaded by ``log_many`` calls of ``chunk``
    rows (one call of 10M rows held more than 16 GB: a shared machine's memory); its load
    time and, with ``csv_floor``, pandas' ``to_csv`` of the same frame (the bulk load's floor)."""
    from perfledger import Ledger

    out: dict[str, float] = {}
    if reuse and (directory / ".complete").exists():
        return out
    shutil.rmtree(directory, ignore_errors=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    frame = generate_records(TICKERS, MODELS, max(1, records // (TICKERS * MODELS)))
    t0 = time.perf_counter()
    with Ledger(directory) as led:
        for start in range(0, len(frame), chunk):
            led.log_many(frame.iloc[start:start + chunk])
            print(f"  {start + chunk:,} loaded, {time.perf_counter() - t0:.0f} s", flush=True)
    out["load"] = time.perf_counter() - t0
    if csv_floor is not None:
        t0 = time.perf_counter()
        frame.to_csv(csv_floor, index=False)
        out["to_csv"] = time.perf_counter() - t0
        out["csv_bytes"] = csv_floor.stat().st_size
    (directory / ".complete").write_text(f"{len(frame)}\n", encoding="utf-8")
    print(f"built {len(frame):,} records into {directory}: {out}", flush=True)
    return out


class Bare:
    """The floor: one ADBC SQLite connection to the ledger's file, the same page cache."""

    def __init__(self, path: Path):
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        from perfledger.store.sqlite.engine import CACHE_KIB

        self.con = adbc_sqlite.connect(str(path), autocommit=True)
        self.read(f"PRAGMA cache_size=-{CACHE_KIB}", ())

    def read(self, sql: str, args: tuple[Any, ...]) -> Any:
        cur = self.con.cursor()
        try:
            cur.execute(sql, args)
            return cur.fetch_arrow_table()
        finally:
            cur.close()


def wall_and_cpu_medians(fns: dict[str, Callable[[], Any]], repeat: int
                         ) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and process CPU seconds of each function, timed in alternation. Why CPU
    time too: on a machine at load 20 a read of a millisecond waits for a CPU longer than it
    runs, and its wall time says more about the queue than about the read (each contender
    runs on the calling thread: ADBC's reader, ``to_pandas(use_threads=False)``)."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()})


def peak_memory(directory: Path, ticker: str) -> dict[str, int]:
    """Peak memory of ``history(ticker)`` in a child process (``bench.history_memory``: the
    RSS high-water mark reset before the read, and tracemalloc + Arrow's pool as a lower
    bound), with the rows and the resulting DataFrame's own size."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "bench.history_memory", str(directory), ticker],
                         capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--baseline", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=9, help="alternated repeats of each read (medians)")
    ap.add_argument("--history-repeat", type=int, default=101,
                    help="alternated repeats of each history read (milliseconds each: many are cheap)")
    ap.add_argument("--only-history", action="store_true",
                    help="only the history reads and their peak memory (with --reuse)")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "perfledger-bench"
    ap.add_argument("--dir", type=Path, default=cache / "ten-million")
    ap.add_argument("--reuse", action="store_true", help="reuse ledgers already built (no load figures)")
    ap.add_argument("--chunk", type=int, default=1_000_000, help="rows per log_many call of the load")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from perfledger import Ledger

    big_dir, base_dir = args.dir / f"ledger-{args.records}", args.dir / f"ledger-{args.baseline}"
    csv = args.dir / f"floor-{args.records}.csv"
    loads: list[float] = [os.getloadavg()[0]]
    base_build = build(base_dir, args.baseline, args.reuse, None, args.chunk)
    big_build = build(big_dir, args.records, args.reuse, csv, args.chunk)
    loads.append(os.getloadavg()[0])
    rows: list[str] = []

    def row(label: str, value: str, ratio: str = "", target: str = "") -> None:
        rows.append(f"| {label} | {value} | {ratio} | {target} |")
        print(rows[-1], flush=True)  # as it comes: a 10M run is long

    def verdict(r: float, limit: float) -> str:
        return f"≤ {limit:g}× " + ("PASS" if r <= limit else "OVER")

    if big_build:
        r = big_build["load"] / big_build["to_csv"]
        row(f"bulk load, {args.records:,} records, mirrors on", f"{big_build['load']:.1f} s "
            f"(pandas `to_csv` {big_build['to_csv']:.1f} s)", f"**{r:.2f}×**", verdict(r, 1.0))
    if base_build:
        row(f"bulk load, {args.baseline:,} records, mirrors on", f"{base_build['load']:.1f} s")

    big, base = Ledger(big_dir), Ledger(base_dir)
    bare = Bare(big_dir / "perfledger.db")
    ticker, model = "T123", big.models("T123")[7]
    ms = 1000.0

    def report() -> int:
        big.close()
        base.close()
        print(f"\n`python -m bench.bench_ten_million --records {args.records} --baseline {args.baseline}"
              f"{' --reuse' if args.reuse else ''}{' --only-history' if args.only_history else ''}` "
              f"({TICKERS} tickers × {MODELS} models, mirrors on), "
              f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; medians of {args.repeat} alternated "
              f"({args.history_repeat} for the history reads).\n")
        print("| figure | value | ratio | target |")
        print("|---|---|---|---|")
        print("\n".join(rows))
        print(f"\nLoad average (1 min) during the run: {min(loads):.1f}–{max(loads):.1f} "
              f"on {os.cpu_count()} CPUs.")
        return 0

    # history against the bare SELECT of the same rows, alternated.
    one_sql = f"SELECT {HISTORY_COLUMNS} FROM pl_records WHERE ticker = ? AND model_name = ? ORDER BY ts, id"
    all_sql = f"SELECT {HISTORY_COLUMNS} FROM pl_records WHERE ticker = ? ORDER BY ts, id"
    for label, fns, n in [
        (f"`history(ticker, model_name)` at {args.records:,}", {
            "ledger": lambda: big.history(ticker, model),
            "floor": lambda: bare.read(one_sql, (ticker, model)),
            "floor+pandas": lambda: bare.read(one_sql, (ticker, model)).to_pandas(use_threads=False)},
         len(big.history(ticker, model))),
        (f"`history(ticker)` at {args.records:,}", {
            "ledger": lambda: big.history(ticker),
            "floor": lambda: bare.read(all_sql, (ticker,)),
            "floor+pandas": lambda: bare.read(all_sql, (ticker,)).to_pandas(use_threads=False)},
         len(big.history(ticker))),
    ]:
        m, cpu = wall_and_cpu_medians(fns, args.history_repeat)
        r = m["ledger"] / m["floor"]
        row(f"{label} ({n:,} rows)",
            f"{m['ledger'] * ms:.2f} ms (bare ADBC `SELECT` {m['floor'] * ms:.2f} ms; the same plus "
            f"`to_pandas()`: {m['floor+pandas'] * ms:.2f} ms); CPU time {cpu['ledger'] * ms:.2f} ms "
            f"({cpu['floor'] * ms:.2f} ms; {cpu['floor+pandas'] * ms:.2f} ms)",
            f"**{r:.2f}×** ({m['ledger'] / m['floor+pandas']:.2f}× the floor + `to_pandas()`); CPU time "
            f"{cpu['ledger'] / cpu['floor']:.2f}× ({cpu['ledger'] / cpu['floor+pandas']:.2f}×)",
            verdict(r, 1.2))
    loads.append(os.getloadavg()[0])

    peaks = [peak_memory(big_dir, ticker) for _ in range(3)]
    frame_bytes = peaks[0]["frame_bytes"]
    grew = statistics.median(p["rss_peak"] for p in peaks)
    traced = statistics.median(p["traced_peak"] for p in peaks)
    r = grew / frame_bytes
    row(f"peak memory of `history(ticker)` at {args.records:,} ({peaks[0]['rows']:,} rows; median of 3 "
        "child processes, after a warm-up read)",
        f"{grew / 2**20:.1f} MiB of RSS at the peak (tracemalloc + Arrow pool: {traced / 2**20:.1f} MiB; "
        f"the DataFrame: {frame_bytes / 2**20:.1f} MiB)", f"**{r:.2f}×**", verdict(r, 3.0))

    loads.append(os.getloadavg()[0])
    if args.only_history:
        return report()

    # Calls that must not grow with the ledger: 10M against 1M, alternated.
    def opened(d: Path) -> Callable[[], Any]:
        def run() -> Any:
            with Ledger(d) as led:
                return led.stats()
        return run

    for label, b, s in [
        ("`best()`", lambda: big.best(), lambda: base.best()),
        ("`tickers()`", lambda: big.tickers(), lambda: base.tickers()),
        ("`leaderboard(ticker)`", lambda: big.leaderboard(ticker), lambda: base.leaderboard(ticker)),
        ("opening the ledger (`Ledger(d)` + `stats()`, after imports)", opened(big_dir), opened(base_dir)),
    ]:
        m = interleaved_medians({"big": b, "base": s}, args.repeat)
        r = m["big"] / m["base"]
        row(f"{label}: {args.records:,} vs {args.baseline:,}",
            f"{m['big'] * ms:.1f} ms vs {m['base'] * ms:.1f} ms", f"**{r:.2f}×**", verdict(r, 1.5))
    loads.append(os.getloadavg()[0])

    files = {p.name: p.stat().st_size for p in sorted(big_dir.iterdir())
             if p.is_file() and p.name != ".complete"}
    total = sum(files.values())
    csv_bytes = csv.stat().st_size if csv.exists() else files.get("model_performance.csv", 0)
    row(f"disk footprint at {args.records:,}", ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in files.items())
        + f"; total {total / 2**30:.2f} GiB", f"{total / csv_bytes:.2f}× the CSV alone "
        f"({csv_bytes / 2**30:.2f} GiB)")
    loads.append(os.getloadavg()[0])
    # decay over every pair against a bare read of the rows it tests.
    m = interleaved_medians({"ledger": lambda: big.decay(metric="sharpe"),
                             "floor": lambda: bare.read(DECAY_FLOOR, ())}, max(3, args.repeat // 3))
    r = m["ledger"] / m["floor"]
    row(f"`decay()` over every pair ({TICKERS * MODELS:,}) at {args.records:,}",
        f"{m['ledger']:.2f} s (bare read of each pair's latest 120: {m['floor']:.2f} s)",
        f"**{r:.2f}×**", verdict(r, 2.0))
    loads.append(os.getloadavg()[0])

    return report()


if __name__ == "__main__":
    sys.exit(main())
