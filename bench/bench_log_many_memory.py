"""Peak memory of one ``log_many`` of a large frame, chunked inside or not (issue 23).

    python -m bench.bench_log_many_memory --evals 40            # 2M rows: 500 x 100 x 40
    python -m bench.bench_log_many_memory --evals 40 --chunk 1000000000   # one insert

Each figure is a fresh child process: it builds the frame (``bench.common.generate_records``),
notes its peak RSS, runs ``Ledger(fresh dir).log_many(frame)`` with ``Ledger.log_many_chunk``
set to ``--chunk``, and reports how much the peak RSS grew during the call and how long it took.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from bench.common import ROOT

CHILD = """
import resource, sys, tempfile, time
from bench.common import generate_records
from perfledger import Ledger
chunk, evals, where = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
frame = generate_records(500, 100, evals)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory(dir=where) as d:
    led = Ledger(d)
    led.log_many_chunk = chunk
    t0 = time.perf_counter()
    led.log_many(frame)
    took = time.perf_counter() - t0
    led.close()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(frame), (after - before) * 1024, took)
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evals", type=int, default=40, help="evaluations per (ticker, model) pair")
    ap.add_argument("--chunk", type=int, action="append",
                    help="Ledger.log_many_chunk of a run (repeatable; default: 250000 and one insert)")
    ap.add_argument("--dir", default=os.environ.get("BENCH_TMP"))
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    print(f"load average at the start: {os.getloadavg()}")
    for chunk in args.chunk or [250_000, 10**9]:
        out = subprocess.run([sys.executable, "-c", CHILD, str(chunk), str(args.evals), args.dir or "/tmp"],
                             capture_output=True, text=True, check=True, env=env, cwd=ROOT).stdout.split()
        rows, grew, took = int(out[0]), int(out[1]), float(out[2])
        print(f"| log_many of {rows:,} rows, chunk {chunk:,} | peak RSS grew {grew / 2**20:,.0f} MiB | "
              f"{took:.1f} s |", flush=True)
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
