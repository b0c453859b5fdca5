"""Log 20,000 records, query them the way a research script and the dashboard do, then fork.

    python fork_after_reads.py LEDGER_DIR_OR_URL

Prints one JSON line: how much VmSize grew during the reads (KiB), whether ``os.fork()``
worked, and how many of the records a fork-context ``Pool(4)`` logged (4 x 50) are stored.
Run as its own process: the memory a query leaves reserved is a property of a process.
A forked child that reads and then exits normally (interpreter shutdown, finalisers and
all) must leave the parent's pooled connections working: the last read is the parent's,
and ``fallbacks`` counts the columnar reads that failed and were answered by the row path.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sys
from pathlib import Path

from perfledger import Ledger
from perfledger.location import is_url


def vm_size_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1])
    raise RuntimeError("no VmSize")


def pool_log(args: tuple[str, int]) -> int:
    location, k = args
    led = Ledger(location)
    for i in range(50):
        led.log(f"M{k}", "POOL", sharpe=0.1 * i, notes=f"pool-{k}-{i}")
    led.close()
    return 50


def main() -> None:
    from perfledger.dashboard import data

    fallbacks: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "using the row path" in record.getMessage():
                fallbacks.append(record.getMessage())

    logging.getLogger("perfledger").addHandler(Count(logging.DEBUG))
    logging.getLogger("perfledger").setLevel(logging.DEBUG)
    location = sys.argv[1] if is_url(sys.argv[1]) else str(Path(sys.argv[1]).resolve())
    led = Ledger(location)
    # A research script's day: it logs its evaluations, then asks the ledger about them.
    led.log_many([{"model_name": f"M{i % 7}", "ticker": f"T{i % 5}", "sharpe": i / 1e4, "mse": 0.1}
                  for i in range(20_000)])
    before = vm_size_kib()
    grown = 0
    state = led.stats()["state"]
    reads = [
        led.history, lambda: led.history(ticker="T1"), led.best, led.leaderboard,
        lambda: led.leaderboard("T1", days_back=100_000),
        lambda: data.history(location, state, data.Filters("T2")),
        lambda: data.recent(location, state),
        lambda: data.leaderboard(location, state, "T2", "sharpe", data.Window()),
        lambda: data.best(location, state),
    ]
    kept = []  # a script keeps what it asked for (the frames hold the driver's buffers)
    for read in reads * 2:
        kept.append(read())
        grown = max(grown, vm_size_kib() - before)
    out: dict[str, object] = {"grown_kib": grown}
    try:
        pid = os.fork()
    except OSError as exc:
        out["fork"] = str(exc)
    else:
        if pid == 0:
            os._exit(0)
        out["fork"] = "ok" if os.waitpid(pid, 0)[1] == 0 else "child failed"
    # A child that reads with the inherited ledger and then exits normally (interpreter
    # shutdown, finalisers and all) must leave the parent's connections and files working.
    pid = os.fork()
    out["exiting_child"] = 0
    if pid == 0:  # reads with the inherited ledger, then a normal exit (no os._exit)
        ok = len(led.history(ticker="T1")) == 4_000 and len(data.recent(location, state)) > 0
        sys.exit(0 if ok else 3)
    if pid > 0:
        out["exiting_child"] = os.waitpid(pid, 0)[1]
    out["parent_after_child"] = len(led.history(ticker="T1"))
    try:
        with multiprocessing.get_context("fork").Pool(4) as pool:
            pool.map(pool_log, [(location, k) for k in range(4)])
    except OSError as exc:
        out["pool"] = str(exc)
    else:
        out["pool"] = "ok"
    out["pooled"] = sorted(led.history(ticker="POOL")["notes"].tolist())
    out["fallbacks"] = fallbacks[:3]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
