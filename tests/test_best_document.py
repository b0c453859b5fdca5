"""best_models.json after a log() that beats a best: only that ticker's entries are read again.

A write that changes a best rewrites the document; before, it read and re-encoded every
ticker x metric (~45 ms at 500 tickers, 100 times a log()). Now the document this process
committed last is kept by ticker, and a write whose committed document and store generation
are still that one reads only the tickers it changed. Whatever happened in between (another
writer, a metric registered, a clear, records stored with ``mirrors=False``), the file must
be byte for byte the document of the database's best entries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perfledger import Ledger
from perfledger.mirrors.layout import best_json
from perfledger.store.sqlite.direct import DirectWriteTx
from perfledger.store.writes import SQLWriteTx


def _document_is_the_database(d: Path) -> None:
    with Ledger(d, mirrors=False) as reader:
        expected = best_json(reader.best())
    text = (d / "best_models.json").read_text(encoding="utf-8")
    assert text == expected
    # and independently: every entry is the max/min of what was logged (checked by the callers)
    json.loads(text)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Which best() reads writers make: None for every ticker's, else the ticker."""
    seen: list[str | None] = []
    # Both write transactions: the full store's and the SQLite single-record path's.
    for cls in (SQLWriteTx, DirectWriteTx):
        original = cls.best

        def spy(self: Any, ticker: str | None = None, original: Any = original) -> dict:
            seen.append(ticker)
            return original(self, ticker)

        monkeypatch.setattr(cls, "best", spy)
    return seen


def test_a_log_that_beats_a_best_reads_only_its_ticker(tmp_path: Path, reads: list[str | None]) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log_many([{"model_name": f"M{i % 3}", "ticker": f"T{i:03d}", "sharpe": 1.0, "mse": 0.5}
                      for i in range(200)])
        led.log("A", "T007", sharpe=2.0)  # the first best change of this process: a full read
        reads.clear()
        for k in range(5):
            led.log("B", "T042", sharpe=3.0 + k, mse=0.1 / (k + 1))
            led.log("C", "T150", sharpe=0.0)  # beats nothing: no rewrite, no read
        assert reads == ["T042"] * 5
    _document_is_the_database(d)
    doc = json.loads((d / "best_models.json").read_text())
    assert len(doc) == 200
    assert doc["T042"]["best_sharpe"]["value"] == 7.0 and doc["T042"]["best_mse"]["value"] == 0.1 / 5
    assert doc["T007"]["best_sharpe"] == {**doc["T007"]["best_sharpe"], "model": "A", "value": 2.0}
    assert doc["T150"]["best_sharpe"]["value"] == 1.0


def test_the_document_follows_every_other_change(tmp_path: Path, reads: list[str | None]) -> None:
    d = tmp_path / "logs"
    led = Ledger(d)
    led.log_many([{"model_name": "M", "ticker": f"T{i}", "sharpe": 1.0} for i in range(10)])
    led.log("A", "T1", sharpe=2.0)

    other = Ledger(d)  # another writer, with a document of its own
    other.log("O", "T2", sharpe=5.0)
    reads.clear()
    led.log("A", "T3", sharpe=6.0)  # the committed document is not the one it wrote: all read
    assert reads == [None]
    _document_is_the_database(d)

    with Ledger(d, mirrors=False) as fast:  # records only the database holds, then appended
        fast.log("F", "T4", sharpe=9.0)
    led.log("A", "T5", sharpe=7.0)
    _document_is_the_database(d)
    assert json.loads((d / "best_models.json").read_text())["T4"]["best_sharpe"]["model"] == "F"

    with Ledger(d, mirrors=False) as fast:  # a metric registered elsewhere: a new column for all
        fast.log("F", "T6", sharpe=0.5, metrics={"alpha": 0.3})
        fast.register_metric("alpha", higher_is_better=True)
    led.log("A", "T6", sharpe=8.0, metrics={"alpha": 0.4})
    doc = json.loads((d / "best_models.json").read_text())
    assert all("best_alpha" in entries for entries in doc.values())
    assert doc["T6"]["best_alpha"]["value"] == 0.4
    _document_is_the_database(d)

    led.clear()
    led.log("A", "T0", sharpe=1.5)
    assert json.loads((d / "best_models.json").read_text()).keys() == {"T0"}
    _document_is_the_database(d)
    led.close()
    other.close()


@pytest.mark.slow
def test_another_process_beating_a_best_is_seen(tmp_path: Path, reads: list[str | None]) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log_many([{"model_name": "M", "ticker": f"T{i}", "sharpe": 1.0} for i in range(10)])
        led.log("A", "T1", sharpe=2.0)
        code = ("import sys; from perfledger import Ledger; "
                "Ledger(sys.argv[1]).log('P', 'T8', sharpe=50.0)")
        subprocess.run([sys.executable, "-c", code, str(d)], check=True, timeout=120)
        reads.clear()
        led.log("A", "T9", sharpe=60.0)  # the committed document is the other process's: all read
        assert reads == [None]
    doc = json.loads((d / "best_models.json").read_text())
    assert doc["T8"]["best_sharpe"]["value"] == 50.0 and doc["T9"]["best_sharpe"]["value"] == 60.0
    assert doc["T1"]["best_sharpe"]["value"] == 2.0
    _document_is_the_database(d)


def test_a_new_ticker_and_a_failed_write_leave_the_right_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log("A", "AAPL", sharpe=1.0)
        led.log("A", "AAPL", sharpe=2.0)
        led.log("A", "ZZZ", sharpe=0.5)  # a new ticker: placed in order
        led.log("A", "MSFT", sharpe=0.7)
        assert list(json.loads((d / "best_models.json").read_text())) == ["AAPL", "MSFT", "ZZZ"]
        _document_is_the_database(d)

        from perfledger.mirrors import transaction

        with monkeypatch.context() as mp:  # the transaction fails after the document was written
            mp.setattr(transaction.MirrorTransaction, "_flush",
                       _failing_after(transaction.MirrorTransaction._flush))
            with pytest.raises(RuntimeError):
                led.log("B", "MSFT", sharpe=9.0)
        assert led.best("MSFT")["best_sharpe"]["value"] == 0.7
        _document_is_the_database(d)
        led.log("C", "AAPL", sharpe=3.0)  # the kept document is still the committed one
        _document_is_the_database(d)
        assert json.loads((d / "best_models.json").read_text())["MSFT"]["best_sharpe"]["value"] == 0.7


def _failing_after(flush):  # type: ignore[no-untyped-def]
    def run(self):  # type: ignore[no-untyped-def]
        flush(self)
        raise RuntimeError("failed after the document was written")

    return run
