"""Do the mirrors' two bulk-load fast paths earn their code? The bulk-load figure with and
without them, against ``pandas.DataFrame.to_csv`` of the same frame, alternated in one run.

* ``fast``: the code as it ships. A batch of 2,000 records or more has its JSON spelled
  column by column in Arrow (:mod:`perfledger.mirrors.columns`) in a background thread,
  which also writes both files while the rows are inserted (the background append).
* ``plain``: neither. The JSON is orjson over the records' dicts and the CSV Arrow's
  writer, both formatted before the write lock is taken, and the files are appended after
  the insert (what a batch below 2,000 records always does).

Each run is ``log_many`` of the whole frame into a fresh directory ledger (mirrors on),
after ``os.sync()``, as ``bench_scale`` measures the bulk-load figure. ``--parts`` times
instead, alone and in one thread, what the fast paths overlap: the insert (``mirrors=False``),
the JSON by orjson over dicts and by Arrow, the CSV.

Run: ``PYTHONPATH=$PWD/src:$PWD python -m bench.bench_mirror_paths [--records N] [--rounds K]
[--parts]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import generate_records


def _plain() -> Callable[[], None]:
    """Switch both fast paths off; returns the function that switches them back on."""
    from perfledger.mirrors import layout

    columnar, thread = layout._COLUMNAR_FROM, layout.PreparedAppend._THREAD_FROM
    layout._COLUMNAR_FROM = layout.PreparedAppend._THREAD_FROM = 1 << 62

    def restore() -> None:
        layout._COLUMNAR_FROM, layout.PreparedAppend._THREAD_FROM = columnar, thread

    return restore


def run(records: int, rounds: int) -> dict[str, Any]:
    from perfledger import Ledger

    evals = max(1, records // 2000)
    df = generate_records(50, 40, evals)
    tmp = Path(tempfile.mkdtemp(prefix="plbench_paths_"))
    times: dict[str, list[float]] = {"to_csv": [], "fast": [], "plain": []}

    def ingest(name: str) -> float:
        shutil.rmtree(tmp / name, ignore_errors=True)
        led = Ledger(tmp / name)
        restore = _plain() if name == "plain" else None
        try:
            t0 = time.perf_counter()
            led.log_many(df)
            return time.perf_counter() - t0
        finally:
            if restore is not None:
                restore()
            led.close()

    def to_csv() -> float:
        t0 = time.perf_counter()
        df.to_csv(tmp / "baseline.csv", index=False)
        return time.perf_counter() - t0

    try:
        for r in range(rounds):
            order = ["to_csv", "fast", "plain"] if r % 2 == 0 else ["to_csv", "plain", "fast"]
            for name in order:
                os.sync()
                times[name].append(to_csv() if name == "to_csv" else ingest(name))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"records": len(df), "rounds": rounds, "median_s": med, "runs_s": times,
            "ratio_fast": med["fast"] / med["to_csv"], "ratio_plain": med["plain"] / med["to_csv"]}


def parts(records: int, rounds: int) -> None:
    """Median seconds of each part of a bulk load with mirrors, alone and in one thread."""
    from perfledger import Ledger
    from perfledger.mirrors import columns, layout
    from perfledger.records.batch import Batch
    from perfledger.records.validation import validate_frame

    df = generate_records(50, 40, max(1, records // 2000))
    batch = Batch.from_frame(validate_frame(df).sort_values(["ticker", "ts_us"], kind="stable"))
    tmp = Path(tempfile.mkdtemp(prefix="plbench_parts_"))

    def insert() -> None:
        shutil.rmtree(tmp / "db", ignore_errors=True)
        with Ledger(tmp / "db", mirrors=False) as led:
            led.log_many(df)

    def json_orjson() -> None:
        columnar, layout._COLUMNAR_FROM = layout._COLUMNAR_FROM, 1 << 62
        try:
            layout.json_body(batch)
        finally:
            layout._COLUMNAR_FROM = columnar

    def json_arrow() -> None:
        batch.arrow = None  # its Arrow columns are built again, as a fresh batch's are
        columns.json_parts(batch)

    fns: dict[str, Callable[[], Any]] = {
        "to_csv": lambda: df.to_csv(tmp / "baseline.csv", index=False),
        "insert (mirrors=False)": insert, "JSON, orjson over dicts": json_orjson,
        "JSON, Arrow": json_arrow, "CSV, Arrow": lambda: layout.csv_parts(batch),
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(df):,} records, median of {rounds} alternated rounds, alone and in one thread:")
    for name, v in times.items():
        print(f"  {name:26s} {statistics.median(v):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", action="store_true", help="time the parts alone instead")
    args = ap.parse_args()
    if args.parts:
        parts(args.records, args.rounds)
        return
    out = run(args.records, args.rounds)
    med = out["median_s"]
    print(f"{out['records']:,} records, median of {out['rounds']} alternated rounds:")
    print(f"  df.to_csv                         {med['to_csv']:.2f} s")
    print(f"  log_many, fast paths (as shipped) {med['fast']:.2f} s  = {out['ratio_fast']:.2f}x to_csv")
    print(f"  log_many, without them            {med['plain']:.2f} s  = {out['ratio_plain']:.2f}x to_csv")


if __name__ == "__main__":
    main()
