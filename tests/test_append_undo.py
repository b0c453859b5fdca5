"""An append to the mirrors whose transaction does not commit is taken back.

A bulk load writes its JSON and CSV while the database inserts the rows; a single log()
appends just before the commit. If the transaction fails, the process cuts the files back;
if the process dies, the journal it wrote first lets the next writer do it. Either way the
files hold exactly what the database holds: no record adopted from an append that never
committed, no torn row read back as a record.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import csv_records, kill_rounds, mirror_records

from perfledger import Ledger
from perfledger.mirrors.seed_files import SeedMirrors
from perfledger.mirrors.undo import APPEND_JOURNAL, write_journal
from perfledger.records.batch import Batch

FILES = ("model_performance.json", "model_performance.csv", "best_models.json")


def _rows(n: int, tag: str) -> list[dict]:
    return [{"model_name": f"M{i % 3}", "ticker": f"T{i % 4}", "sharpe": (i % 97) / 10,
             "mse": (i % 13) / 100, "notes": f"{tag}-{i}"} for i in range(n)]


def _snapshot(d: Path) -> dict[str, tuple[bytes, int, int]]:
    return {n: ((d / n).read_bytes(), (d / n).stat().st_size, (d / n).stat().st_mtime_ns) for n in FILES}


def _assert_in_step(d: Path) -> None:
    with Ledger(d) as led:
        notes = collections.Counter(led.history()["notes"])
        assert collections.Counter(r["notes"] for r in mirror_records(d)) == notes
        assert collections.Counter(r["notes"] for r in csv_records(d)) == notes
        assert max(notes.values(), default=1) == 1
    assert not (d / APPEND_JOURNAL).exists()


@pytest.mark.parametrize(("n", "where"), [(1, "after-append"), (3000, "after-append"), (3000, "in-insert")],
                         ids=["single-log", "bulk-load", "bulk-load-written-meanwhile"])
def test_a_failed_transaction_leaves_the_files_as_committed(
    ledger_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, n: int, where: str
) -> None:
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
        before = _snapshot(ledger_dir)

        def fail(*args: object, **kwargs: object) -> None:
            time.sleep(0.3)  # in the insert, a bulk append is being written meanwhile
            raise RuntimeError("disk on fire")

        if where == "in-insert":
            monkeypatch.setattr(Batch, "aggregates", fail)
        else:  # both files appended, the state not yet saved, the commit not reached
            monkeypatch.setattr(SeedMirrors, "_save_state", fail)
        with pytest.raises(RuntimeError, match="disk on fire"):
            led.log_many(_rows(n, "lost"))
        monkeypatch.undo()
        assert _snapshot(ledger_dir) == before  # bytes, size and mtime
        assert len(led.history()) == 2500
        led.log("M", "T0", sharpe=1.0, notes="after")
    with caplog.at_level("WARNING", logger="perfledger"):
        _assert_in_step(ledger_dir)
    assert "adopted" not in caplog.text


def test_a_process_dead_during_a_bulk_append_is_taken_back(ledger_dir: Path) -> None:
    """The child's bulk append is on disk, its transaction never commits (the process ends
    in the middle of the insert): the next open cuts the files back from the journal."""
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
    before = _snapshot(ledger_dir)
    code = f"""
import os, sys, time
sys.path[:0] = {sys.path!r}
from perfledger import Ledger
from perfledger.records.batch import Batch
def die(self, directions, ids):
    time.sleep(1.0)  # the background append has written both files by now
    os._exit(9)
Batch.aggregates = die
led = Ledger({str(ledger_dir)!r})
led.log_many([{{"model_name": "M", "ticker": "T", "sharpe": i / 7, "notes": f"lost-{{i}}"}}
              for i in range(5000)])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert (ledger_dir / APPEND_JOURNAL).exists()
    assert (ledger_dir / "model_performance.csv").stat().st_size > before["model_performance.csv"][1]
    _assert_in_step(ledger_dir)
    assert _snapshot(ledger_dir) == before


@pytest.mark.slow
def test_sigkill_during_bulk_loads_keeps_each_batch_whole(ledger_dir: Path) -> None:
    """A child bulk-loads 3,000-record batches (written while they are inserted) and is
    killed at random moments. Each batch is stored whole or not at all, every acknowledged
    one is there, and the files match the database exactly."""
    Ledger(ledger_dir).close()
    bulk = ["--batch-every", "3000", "--batch-size", "3000"]
    acknowledged = kill_rounds(ledger_dir, 6, 99, bulk, max_wait=0.5)
    _assert_in_step(ledger_dir)
    with Ledger(ledger_dir) as led:
        notes = set(led.history()["notes"])
    batches = collections.Counter((n.rsplit("-", 1)[0], int(n.rsplit("-", 1)[1]) // 3000) for n in notes)
    assert set(batches.values()) == {3000}, "a batch was stored in part"
    assert acknowledged <= notes


@pytest.mark.parametrize("journal", ["stale", "garbage"])
def test_a_left_journal_never_costs_a_committed_record(
    ledger_dir: Path, caplog: pytest.LogCaptureFixture, journal: str
) -> None:
    """A journal left after its append committed (killed between the commit and the
    unlink), or one that does not read, changes nothing; the next write removes it."""
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
        if journal == "stale":  # the files' state before the next append, which then commits
            write_journal(ledger_dir / APPEND_JOURNAL, {"json": ledger_dir / FILES[0],
                                                        "csv": ledger_dir / FILES[1]})
            saved = (ledger_dir / APPEND_JOURNAL).read_bytes()
        led.log_many(_rows(2500, "also-kept"))
    (ledger_dir / APPEND_JOURNAL).write_bytes(saved if journal == "stale" else b"\x00{not json")
    with caplog.at_level("WARNING", logger="perfledger"):
        _assert_in_step(ledger_dir)
    with Ledger(ledger_dir) as led:
        assert len(led.history()) == 5000
    assert ("unreadable append journal" in caplog.text) == (journal == "garbage")
