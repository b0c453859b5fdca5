"""A ledger's reads are never stale after a committed write, whatever this process left open.

A perfledger process runs two copies of SQLite on one file: Python's ``sqlite3`` (the engine)
and the one bundled in the ADBC driver (columnar reads). Whichever copy closes its last
handle while the other still has one open takes itself for the last user and unlinks the
write-ahead log and its shared-memory index; the other copy, and every connection it opens
to that file afterwards, then reads an old snapshot (empty, or without the records committed
since), even through a new ``Ledger``. :mod:`perfledger.store.sqlite.locks` keeps the two in
step; these are the two ways its count of engine connections parted from SQLite's handles:
a ledger never closed and then garbage-collected, and a failed write's exception kept alive
(its cursor kept the engine's SQLite handle open past ``close()``).
"""

from __future__ import annotations

import errno
import gc
import os
from pathlib import Path

import pytest

from perfledger import Ledger
from perfledger.errors import StorageError
from perfledger.mirrors import transaction


def _notes(d: Path) -> list[str]:
    """The notes a fresh ledger reads (history is a columnar read), and the count it keeps."""
    with Ledger(d) as led:
        notes = sorted(led.history()["notes"])
        assert led.stats()["records"] == len(notes)  # the row path agrees
        return notes


def test_a_ledger_collected_unclosed_leaves_later_reads_current(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    writer = Ledger(d)  # never closed: its connections close when it is collected
    writer.log("M", "T", sharpe=1.0, notes="first")
    with Ledger(d) as reader:  # its ADBC connection is parked while the writer's is open
        assert list(reader.history()["notes"]) == ["first"]
    del writer
    gc.collect()
    with Ledger(d) as led:
        led.log("M", "T", sharpe=2.0, notes="second")
        assert sorted(led.history()["notes"]) == ["first", "second"]
    assert _notes(d) == ["first", "second"]


def test_a_failed_writes_exception_kept_alive_leaves_later_reads_current(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log_many([{"model_name": "M", "ticker": "T", "sharpe": i / 10, "notes": f"kept-{i}"}
                      for i in range(20)])
    with pytest.MonkeyPatch.context() as mp:
        def enospc(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        for name in ("write_at", "write_empty", "write_best", "write_json", "write_csv"):
            mp.setattr(transaction, name, enospc)
        with Ledger(d) as led:
            with pytest.raises(StorageError) as info:
                led.log("M", "T", sharpe=9.0, notes="failed")
            assert len(led.history()) == 20
    kept = info.value  # its traceback holds the failed write transaction (and its cursor)
    with Ledger(d) as led:
        led.log_many([{"model_name": "M", "ticker": "T", "sharpe": 9.0, "notes": f"new-{i}"}
                      for i in range(30)])
        assert len(led.history()) == 50
    assert len(_notes(d)) == 50
    assert kept.cause == "disk_full"
