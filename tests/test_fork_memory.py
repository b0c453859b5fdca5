"""Reading a ledger leaves a process that can still fork (issue 9, item 3).

The SQLite reader once asked the ADBC driver for one batch of 2^30 rows: the driver reserved
~90 GiB of address space for it, and ``os.fork()`` (the default start method of
``multiprocessing`` before Python 3.14) then failed with ENOMEM on a machine with ordinary
overcommit limits. Reads now come in bounded batches and stay typed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from perfledger import Ledger
from perfledger.store.base import HistoryQuery
from perfledger.store.sqlite import arrow as sqlite_arrow

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux)")


WORKER = Path(__file__).parent / "workers" / "fork_after_reads.py"


@pytest.mark.slow
def test_reads_reserve_little_memory_and_fork_pools_work(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "ledger")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["grown_kib"] < 2 * 1024 * 1024, f"VmSize grew by {out['grown_kib'] / 2**20:.1f} GiB"
    assert out["fork"] == "ok" and out["pool"] == "ok" and out["fallbacks"] == []
    assert out["pooled"] == sorted(f"pool-{k}-{i}" for k in range(4) for i in range(50))
    # A child that read and exited normally left the parent's connections and files working.
    assert out["exiting_child"] == 0 and out["parent_after_child"] == 4_000


def _locks_held(path: Path) -> int:
    """POSIX locks this process holds on ``path``, as the kernel sees them (/proc/locks)."""
    ino, me = os.stat(path).st_ino, str(os.getpid())
    held = 0
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if "POSIX" in f and len(f) > 5 and f[4] == me and f[5].rsplit(":", 1)[-1] == str(ino):
            held += 1
    return held


def test_a_second_ledger_opening_and_closing_never_drops_the_first_ones_locks(tmp_path: Path) -> None:
    """POSIX locks are the process's: closing any descriptor of the database drops them all.
    A second Ledger on the same directory (the dashboard's, the seed module's) used to do it
    twice: opening the file to create it, and closing the ADBC driver's own SQLite connections
    (another copy of SQLite) on close. Without its locks, this process is invisible to the
    next one that closes its last connection, which then deletes the WAL under it."""
    d = tmp_path / "ledger"
    first = Ledger(d)
    first.log("M", "T", sharpe=1.0)
    first.best()
    db = d / "perfledger.db"
    assert _locks_held(db) >= 1
    second = Ledger(d)
    assert _locks_held(db) >= 1
    second.history(ticker="T")  # through ADBC
    second.close()
    assert _locks_held(db) >= 1
    first.log("M", "T", sharpe=2.0)
    assert len(first.history()) == 2 and _locks_held(db) >= 1

    # A script that opens and closes ledgers in a loop beside a long-lived one (the seed
    # module's) keeps its locks and does not pile up descriptors: at most one ADBC
    # connection is kept back per file.
    def descriptors() -> int:
        return sum(1 for fd in Path("/proc/self/fd").iterdir()
                   if os.path.realpath(fd).startswith(str(db)))

    for i in range(12):
        with Ledger(d) as other:
            other.history(ticker="T")
        assert _locks_held(db) >= 1, i
        if i == 1:
            settled = descriptors()
    assert descriptors() <= settled
    first.close()


def test_a_metric_null_in_the_first_batch_stays_float(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_arrow, "BATCH_ROWS", 64)
    led = Ledger(tmp_path / "ledger")
    led.log_many([
        {"model_name": "M", "ticker": "T", "sharpe": None if i < 300 else i / 7, "mse": None,
         "metrics": {"ic": i / 3} if i >= 200 else None,
         "timestamp": f"2024-01-01T00:00:{i // 100:02d}.{i:06d}+00:00"}
        for i in range(400)
    ])
    rows = led._store.history(HistoryQuery())
    schema = rows.records.schema
    assert schema.field("sharpe").type == pa.float64()
    assert schema.field("mse").type == pa.float64()  # NULL throughout
    assert rows.extras is not None and rows.extras.schema.field("value").type == pa.float64()
    frame = led.history()
    assert frame["sharpe"].dtype == "float64" and frame["sharpe"].iloc[-1] == 399 / 7
    assert frame["sharpe"].isna().sum() == 300 and frame["ic"].notna().sum() == 200
    led.close()
