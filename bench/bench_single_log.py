"""A single ``log()`` on a big directory ledger (mirrors on), against its physical floor,
alternated in one run (issue 23, section 3).

* The first ``log()`` after a bulk load of ``--records`` (same process, same ``Ledger``) and
  the first after opening the ledger in a fresh ``Ledger``, against a sustained call.
* Sustained ``log()`` (one record, a best not beaten) and a ``log()`` that beats a best
  (``best_models.json`` rewritten; 500 tickers), against the floor: stdlib ``sqlite3`` (WAL,
  ``synchronous=NORMAL``) on a table of as many rows with the ledger's three record indexes,
  each log its own transaction of one INSERT, one best-row upsert and one line appended
  to a file. Windows of each alternate; rates are medians over the windows.

    python -m bench.bench_single_log --records 1000000          # the lead's run (~3 min)
    python -m bench.bench_single_log --records 10000000         # 10M (~30 min, ~6 GB of disk)
    python -m bench.bench_single_log --records 100000           # a smoke run
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import generate_records

_FLOOR_SCHEMA = (
    "CREATE TABLE r (id INTEGER PRIMARY KEY, ticker TEXT NOT NULL, model_name TEXT NOT NULL, "
    "ts INTEGER NOT NULL, sharpe REAL, mse REAL, notes TEXT NOT NULL)",
    "CREATE TABLE best (ticker TEXT, metric TEXT, model_name TEXT, value REAL, ts INTEGER, "
    "PRIMARY KEY (ticker, metric))",
)
_FLOOR_INDEXES = (
    "CREATE INDEX r_ticker_ts ON r (ticker, ts, id)",
    "CREATE INDEX r_model_ticker_ts ON r (model_name, ticker, ts, id)",
    "CREATE INDEX r_ts ON r (ts)",
)
_INSERT = "INSERT INTO r (ticker, model_name, ts, sharpe, mse, notes) VALUES (?, ?, ?, ?, ?, ?)"
_UPSERT = ("INSERT INTO best VALUES (?, 'sharpe', ?, ?, ?) ON CONFLICT (ticker, metric) DO UPDATE SET "
           "model_name = excluded.model_name, value = excluded.value, ts = excluded.ts "
           "WHERE excluded.value > best.value")


class Floor:
    """What durability itself costs: one transaction per record."""

    def __init__(self, directory: Path, frame: object):
        directory.mkdir()
        self.con = sqlite3.connect(directory / "floor.db", isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        for sql in _FLOOR_SCHEMA:
            self.con.execute(sql)
        f = frame  # type: ignore[assignment]
        self.con.execute("BEGIN")
        self.con.executemany(
            _INSERT,
            zip(f["ticker"].tolist(), f["model_name"].tolist(),  # type: ignore[index]
                (f["timestamp"].astype("int64") // 1000).tolist(), f["sharpe"].tolist(),  # type: ignore[index]
                f["mse"].tolist(), f["notes"].tolist(), strict=True))  # type: ignore[index]
        for sql in _FLOOR_INDEXES:
            self.con.execute(sql)
        self.con.execute("COMMIT")
        self.mirror = open(directory / "mirror.csv", "ab")  # noqa: SIM115

    def log(self, i: int) -> None:
        ts = time.time_ns() // 1000
        self.con.execute("BEGIN IMMEDIATE")
        self.con.execute(_INSERT, (f"T{i % 500:03d}", "M_new", ts, 0.1, 0.5, "x"))
        self.con.execute(_UPSERT, (f"T{i % 500:03d}", "M_new", 0.1, ts))
        self.mirror.write(f"{ts},T{i % 500:03d},M_new,0.1,0.5,,,,,x\r\n".encode())
        self.mirror.flush()
        self.con.execute("COMMIT")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--windows", type=int, default=10, help="alternated windows of each (medians)")
    ap.add_argument("--per-window", type=int, default=300, help="calls per window")
    args = ap.parse_args()

    from perfledger import Ledger

    frame = generate_records(500, 100, max(1, args.records // 50_000))
    with tempfile.TemporaryDirectory(prefix="bench_single_log_", dir=os.environ.get("BENCH_TMP")) as tmp_dir:
        tmp = Path(tmp_dir)
        t0 = time.perf_counter()
        led = Ledger(tmp / "ledger")
        led.log_many(frame)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        led.log("M_new", "T000", sharpe=0.1, mse=0.5, notes="x")
        first_after_load = time.perf_counter() - t0
        led.close()
        t0 = time.perf_counter()
        led = Ledger(tmp / "ledger")
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        led.log("M_new", "T001", sharpe=0.1, mse=0.5, notes="x")
        first_after_open = time.perf_counter() - t0

        floor = Floor(tmp / "floor", frame)
        del frame
        plain: list[float] = []
        beats: list[float] = []
        floors: list[float] = []
        n = args.per_window
        top = 1000.0
        for w in range(args.windows):
            t0 = time.perf_counter()
            for i in range(n):
                led.log("M_new", f"T{i % 500:03d}", sharpe=0.1, mse=0.5, notes="x")
            plain.append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for i in range(n):
                floor.log(i)
            floors.append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for i in range(n // 10):  # every one beats its ticker's best Sharpe
                top += 1
                led.log("M_top", f"T{(w * n + i) % 500:03d}", sharpe=top, notes="x")
            beats.append((n // 10) / (time.perf_counter() - t0))
        led.close()

    rate, best_rate, floor_rate = (statistics.median(x) for x in (plain, beats, floors))
    per_call = 1 / rate
    print(f"`python -m bench.bench_single_log --records {args.records} --windows {args.windows} "
          f"--per-window {args.per_window}` (500 tickers x 100 models, mirrors on)\n")
    print("| figure | value | ratio |")
    print("|---|---|---|")
    print(f"| bulk load (`log_many`, mirrors on) | {load_s:.1f} s | |")
    print(f"| first `log()` after the bulk load | {first_after_load * 1e3:.2f} ms | "
          f"{first_after_load / per_call:.1f}× a sustained call (target ≤ 20×) |")
    print(f"| opening the ledger (after imports) | {open_s * 1e3:.1f} ms | |")
    print(f"| first `log()` after opening | {first_after_open * 1e3:.2f} ms | "
          f"{first_after_open / per_call:.1f}× a sustained call |")
    print(f"| sustained `log()` (no best beaten) | {rate:,.0f}/s ({per_call * 1e3:.3f} ms) | "
          f"{rate / floor_rate:.2f}× the floor (target ≥ 0.33×) |")
    print(f"| `log()` that beats a best (best_models.json rewritten) | {best_rate:,.0f}/s "
          f"({1e3 / best_rate:.2f} ms) | {best_rate / floor_rate:.2f}× the floor |")
    print(f"| floor: sqlite3 WAL NORMAL, INSERT + best upsert + a line appended, per transaction | "
          f"{floor_rate:,.0f}/s | 1.00× |")


if __name__ == "__main__":
    main()
