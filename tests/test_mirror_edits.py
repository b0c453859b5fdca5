"""The mirror files never hold records the database does not, and never change what a
record is.

* A clear is a whole-ledger operation: a ledger opened with ``mirrors=False`` empties the
  files at once too (seed scripts read them), in the clear's transaction, so a clear that
  fails leaves both as they were.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from helpers import csv_records, mirror_records

from perfledger import Ledger
from perfledger.errors import StorageError
from perfledger.mirrors import transaction


def _logged(d: Path, n: int = 5) -> None:
    with Ledger(d) as led:
        for i in range(n):
            led.log("M", "AAPL", sharpe=i / 10, notes=f"r{i}")


@pytest.mark.parametrize("deferred", [False, True], ids=["in-step", "with-deferred-records"])
def test_a_clear_without_mirrors_empties_them_at_once(tmp_path: Path, deferred: bool) -> None:
    d = tmp_path / "logs"
    _logged(d)
    with Ledger(d, mirrors=False) as fast:
        if deferred:  # records the files do not hold yet
            fast.log("M", "AAPL", sharpe=2.0, notes="fast")
        fast.clear()
        # At once, before any other ledger opens: what seed scripts read is empty.
        assert mirror_records(d) == []
        assert csv_records(d) == []
        assert json.loads((d / "best_models.json").read_text()) == {}
        assert fast.history().empty
    with Ledger(d) as led:
        assert led.history().empty
        assert led.best() == {}
    assert mirror_records(d) == []


def test_a_clear_without_mirrors_that_fails_keeps_records_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "logs"
    _logged(d)
    before = {n: (d / n).read_bytes() for n in ("model_performance.json", "model_performance.csv")}

    def enospc(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(transaction, "write_best", enospc)  # the files emptied, then the disk fills
    with Ledger(d, mirrors=False) as fast:
        with pytest.raises(StorageError):
            fast.clear()
        assert len(fast.history()) == 5
    assert {n: (d / n).read_bytes() for n in before} == before
    monkeypatch.undo()
    with Ledger(d) as led:
        assert sorted(led.history()["notes"]) == [f"r{i}" for i in range(5)]
    assert sorted(r["notes"] for r in mirror_records(d)) == [f"r{i}" for i in range(5)]
