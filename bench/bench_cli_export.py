"""``perfledger history --format csv`` against pandas writing the same frame, in one run.

The target (issue 10, item 5): a million rows as CSV through the command line within about
twice what ``DataFrame.to_csv`` of the same history frame takes. Both write to a file on the
same disk; the command line's time is the whole process (start-up, the read, formatting and
writing), measured as a real ``python -m perfledger`` subprocess. A ``history`` table (the
default format) is timed too: it shows the latest 50 rows and counts the rest in the
database, so it must stay fast however big the ledger is.

    python -m bench.bench_cli_export --records 1000000     # the lead's run
    python -m bench.bench_cli_export --records 20000       # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, generate_records, median_time


def _cli(store: Path, out: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("PERFLEDGER_URL", None)
    with open(out, "wb") as f:
        subprocess.run([sys.executable, "-m", "perfledger", "--store", str(store), "history", *args],
                       stdout=f, env=env, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000, help="ledger size (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    args = ap.parse_args()

    from perfledger import Ledger

    n_models = 10
    n_evals = max(1, args.records // (10 * n_models))
    with tempfile.TemporaryDirectory(prefix="bench_cli_export_") as tmp_dir:
        tmp = Path(tmp_dir)
        store = tmp / "ledger"
        with Ledger(store) as led:
            led.log_many(generate_records(10, n_models, n_evals))
            frame = led.history()
        rows = len(frame)
        pandas_csv, cli_csv, cli_table = tmp / "pandas.csv", tmp / "cli.csv", tmp / "table.txt"

        t_pandas = median_time(lambda: frame.to_csv(pandas_csv, index=False), args.repeat)
        t_cli = median_time(lambda: _cli(store, cli_csv, "--format", "csv"), args.repeat)
        t_table = median_time(lambda: _cli(store, cli_table), args.repeat)

        with open(cli_csv, encoding="utf-8") as f:
            lines = sum(1 for _ in f) - 1
        assert lines == rows, (lines, rows)
        print(f"rows: {rows:,}")
        print(f"pandas DataFrame.to_csv:               {t_pandas:8.3f} s")
        print(f"perfledger history --format csv:       {t_cli:8.3f} s  (whole process)")
        print(f"perfledger history (table, latest 50): {t_table:8.3f} s")
        print(f"ratio cli / pandas: {t_cli / t_pandas:.2f}  (target <= 2)")


if __name__ == "__main__":
    main()
