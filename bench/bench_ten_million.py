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
  ``SELECT`` of the same rows and columns from the same database file, into Arrow;
* ``best()``, ``tickers()``, ``leaderboard(ticker)`` and opening the ledger (``Ledger(d)``
  plus ``stats()``, after imports) at 10M against the same calls at 1M;
* ``decay()`` over every pair against a bare read of the rows it tests (each pair's latest
  120 values of the metric: ``ROW_NUMBER()`` over the records);
* peak memory of ``history(ticker)`` (the growth of a child process's peak RSS) against the
  resulting DataFrame's own size;
* the disk footprint (database, write-ahead log, mirrors) against the CSV alone.

The single ``log()`` at 10M (sustained rate, first call after the load) is
``python -m bench.bench_single_log --records 10000000``.
"""

from __future__ import annotations

import argparse
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
MEMORY_CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[3])
from perfledger import Ledger
led = Ledger(sys.argv[1])
led.history(sys.argv[2], limit=10)  # imports, connections, the first small read
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
frame = led.history(sys.argv[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(frame), (after - before) * 1024, int(frame.memory_usage(deep=True).sum()))
"""


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


def peak_memory(directory: Path, ticker: str) -> tuple[int, int, int]:
    """(rows, growth of peak RSS in bytes, DataFrame bytes) of ``history(ticker)`` in a child."""
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(directory), ticker, str(ROOT / "src")],
                         capture_output=True, text=True, check=True)
    rows, grew, frame = out.stdout.split()
    return int(rows), int(grew), int(frame)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--baseline", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=9, help="alternated repeats of each read (medians)")
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

    # history against the bare SELECT of the same rows, alternated.
    one_sql = f"SELECT {HISTORY_COLUMNS} FROM pl_records WHERE ticker = ? AND model_name = ? ORDER BY ts, id"
    all_sql = f"SELECT {HISTORY_COLUMNS} FROM pl_records WHERE ticker = ? ORDER BY ts, id"
    for label, fns, n in [
        (f"`history(ticker, model_name)` at {args.records:,}", {
            "ledger": lambda: big.history(ticker, model),
            "floor": lambda: bare.read(one_sql, (ticker, model))}, len(big.history(ticker, model))),
        (f"`history(ticker)` at {args.records:,}", {
            "ledger": lambda: big.history(ticker),
            "floor": lambda: bare.read(all_sql, (ticker,))}, len(big.history(ticker))),
    ]:
        m = interleaved_medians(fns, args.repeat)
        r = m["ledger"] / m["floor"]
        row(f"{label} ({n:,} rows)",
            f"{m['ledger'] * ms:.1f} ms (bare ADBC `SELECT` {m['floor'] * ms:.1f} ms)",
            f"**{r:.2f}×**", verdict(r, 1.2))
    loads.append(os.getloadavg()[0])

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

    peaks = [peak_memory(big_dir, ticker) for _ in range(3)]
    n_rows, grew, frame_bytes = peaks[0][0], statistics.median(p[1] for p in peaks), peaks[0][2]
    r = grew / frame_bytes
    row(f"peak memory of `history(ticker)` at {args.records:,} ({n_rows:,} rows)",
        f"{grew / 2**20:.1f} MiB (the DataFrame: {frame_bytes / 2**20:.1f} MiB)", f"**{r:.2f}×**",
        verdict(r, 3.0))

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

    big.close()
    base.close()

    print(f"\n`python -m bench.bench_ten_million --records {args.records} --baseline {args.baseline}"
          f"{' --reuse' if args.reuse else ''}` ({TICKERS} tickers × {MODELS} models, mirrors on), "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; medians of {args.repeat} alternated.\n")
    print("| figure | value | ratio | target |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nLoad average (1 min) during the run: {min(loads):.1f}–{max(loads):.1f} "
          f"on {os.cpu_count()} CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
