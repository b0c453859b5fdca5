"""The command line's start: each ``perfledger`` command as a fresh process, against
``sqlite-utils insert`` of one row, alternated in one run (issue 23, section 2).

Every round runs each command once, in the same order, so a busy spell of this shared
machine hits them all alike; figures are medians over the rounds and ratios against the
baseline's median in the same run. ``sqlite-utils`` runs with pandas and numpy hidden, as in
its own install (it needs neither, but imports them when they are there, as they are in
perfledger's environment). The library is timed the same way: a fresh process running
``import perfledger; Ledger(d).log(...)`` against ``import sqlite3`` and one INSERT into a
WAL database. This checkout's ``src`` is byte-compiled first, as an install leaves a package.

    python -m bench.bench_cli --rounds 15          # the lead's run (writes nothing; prints markdown)
    python -m bench.bench_cli --rounds 3           # a smoke run

Needs ``sqlite-utils`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, generate_records

_SQLITE_UTILS = (
    "import sys; sys.modules['pandas'] = sys.modules['numpy'] = None; "
    "sys.argv[0] = 'sqlite-utils'; from sqlite_utils.cli import cli; cli()"
)
_SQLITE3_INSERT = (
    "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1]); "
    "c.execute('PRAGMA synchronous=NORMAL'); "
    "c.execute('INSERT INTO r (ticker, model_name, ts, sharpe) VALUES (?, ?, ?, ?)', "
    "('AAPL', 'LSTM_v1', time.time_ns() // 1000, 1.5)); c.commit()"
)
_LEDGER_LOG = (
    "import sys, perfledger; perfledger.Ledger(sys.argv[1]).log('LSTM_v1', 'AAPL', sharpe=1.5)"
)


def _run(argv: list[str], stdin: bytes | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15, help="alternated rounds (medians over them)")
    ap.add_argument("--records", type=int, default=10_000, help="records in the ledger the commands read")
    args = ap.parse_args()

    from perfledger import Ledger

    # Byte-compiled, as an install leaves it (pip compiles site-packages; an environment with
    # PYTHONDONTWRITEBYTECODE would otherwise recompile this checkout's src in every process).
    compileall.compile_dir(ROOT / "src", quiet=1)
    py = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    os.environ.pop("PERFLEDGER_URL", None)
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp_dir:
        tmp = Path(tmp_dir)
        store, lib_store = tmp / "ledger", tmp / "lib-ledger"
        n_evals = max(50, args.records // 100)
        with Ledger(store) as led:  # 10 tickers x 10 models: one pair holds >= 50 records
            led.log_many(generate_records(10, 10, n_evals))
            ticker, model = "T000", led.models("T000")[0]
        with Ledger(lib_store) as led:
            led.log("LSTM_v1", "AAPL", sharpe=1.0)
        su_db, sq_db = tmp / "su.db", tmp / "sqlite3.db"
        subprocess.run([py, "-c", _SQLITE_UTILS, "insert", str(su_db), "t", "-"],
                       input=b'{"ticker": "AAPL", "model_name": "LSTM_v1", "sharpe": 1.0}', check=True)
        import sqlite3

        con = sqlite3.connect(sq_db)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, ticker TEXT, model_name TEXT, ts INTEGER, "
                    "sharpe REAL)")
        con.execute("CREATE INDEX r_tmt ON r (ticker, model_name, ts)")
        con.commit()
        con.close()

        pl = [py, "-m", "perfledger", "--store", str(store)]
        cases: dict[str, tuple[list[str], bytes | None]] = {
            "sqlite-utils insert (1 row)": (
                [py, "-c", _SQLITE_UTILS, "insert", str(su_db), "t", "-"],
                b'{"ticker": "AAPL", "model_name": "LSTM_v1", "sharpe": 1.5}'),
            "perfledger log": ([*pl, "log", "--model", "LSTM_v1", "--ticker", "AAPL", "--sharpe", "1.5"],
                               None),
            "perfledger best": ([*pl, "best"], None),
            "perfledger tickers": ([*pl, "tickers"], None),
            "perfledger check": ([*pl, "check", "--ticker", ticker, "--model", model, "--metric", "sharpe",
                                  "--min", "-100"], None),
            "perfledger history (50 rows)": ([*pl, "history", "--ticker", ticker, "--model", model], None),
            "perfledger --help": ([py, "-m", "perfledger", "--help"], None),
            "perfledger --version": ([py, "-m", "perfledger", "--version"], None),
            "python: import sqlite3 + one INSERT": ([py, "-c", _SQLITE3_INSERT, str(sq_db)], None),
            "python: import perfledger; Ledger(d).log()": ([py, "-c", _LEDGER_LOG, str(lib_store)], None),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (argv, stdin) in cases.items():
                times[name].append(_run(argv, stdin))

    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = med["sqlite-utils insert (1 row)"]
    targets = {"perfledger log": 1.0, "perfledger best": 1.5, "perfledger tickers": 1.5,
               "perfledger check": 1.5, "perfledger history (50 rows)": 2.0}
    print(f"`python -m bench.bench_cli --rounds {args.rounds} --records {args.records}` "
          f"({len(cases)} processes per round, alternated; medians of {args.rounds})\n")
    print("| process | median s | min–max s | × sqlite-utils insert | target |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        if name.startswith("python:"):
            continue
        goal = f"≤ {targets[name]:.1f}×" if name in targets else ""
        spread = f"{min(ts):.3f}–{max(ts):.3f}"
        print(f"| {name} | {med[name]:.3f} | {spread} | {med[name] / base:.2f}× | {goal} |")
    lib, floor = med["python: import perfledger; Ledger(d).log()"], med["python: import sqlite3 + one INSERT"]
    print("\n| fresh process | median s | × import sqlite3 + one INSERT |")
    print("|---|---|---|")
    print(f"| import sqlite3 + one INSERT (WAL, synchronous=NORMAL) | {floor:.3f} | 1.00× |")
    print(f"| import perfledger; Ledger(d).log(...) | {lib:.3f} | {lib / floor:.2f}× |")


if __name__ == "__main__":
    main()
