"""Long operations never starve writers (issue 9, item 6).

``copy`` held the source's write lock for the whole copy (a logger in another process waited
as long as the copy ran, and failed past the busy timeout); copying a ledger onto itself
waited 120 s for its own lock; ``history(limit=N)`` read every matching custom metric before
limiting.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from perfledger import Ledger, ValidationError
from perfledger.files.transfer import copy_store
from perfledger.store.base import HistoryQuery
from perfledger.store.writes import SQLWriteTx

# Opens the ledger and says "ready" (start-up on a loaded machine must not count), logs when
# told to, and prints when its log was committed, on the system-wide monotonic clock.
LOGGER = ("import sys, time; from perfledger import Ledger; "
          "led = Ledger(sys.argv[1]); led.stats(); print('ready', flush=True); sys.stdin.readline(); "
          "led.log('Live', 'AAPL', sharpe=1.0, notes='during-copy'); print(time.monotonic(), flush=True)")


@pytest.mark.slow
def test_a_logger_in_another_process_does_not_wait_for_a_copy(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    src = Ledger(tmp_path / "src")
    src.log_many([{"model_name": f"M{i % 3}", "ticker": "AAPL", "sharpe": i / 100, "notes": f"n{i}"}
                  for i in range(2000)])
    dst = Ledger(tmp_path / "dst")
    Ledger(tmp_path / "src").close()  # the logger's open finds nothing to repair
    insert = SQLWriteTx.insert

    def slow_insert(self: SQLWriteTx, batch: object) -> bool:
        time.sleep(0.4)  # a large copy, in miniature: ten chunks, four seconds
        return insert(self, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(SQLWriteTx, "insert", slow_insert)
    result: list[int] = []
    copy_done: list[float] = []

    def copy() -> None:
        result.append(copy_store(src._ensure(), dst._ensure(), dst._mirrors, chunk=200))
        copy_done.append(time.monotonic())

    logger = subprocess.Popen([sys.executable, "-c", LOGGER, str(tmp_path / "src")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert logger.stdout is not None and logger.stdout.readline().strip() == "ready"
    copier = threading.Thread(target=copy)
    copier.start()
    time.sleep(0.5)
    out, err = logger.communicate("go\n", timeout=120)
    proc = subprocess.CompletedProcess(logger.args, logger.returncode, out, err)
    copier.join()
    assert proc.returncode == 0, proc.stderr
    # The copy takes at least four seconds; a logger that had to wait for its lock would commit
    # after it (timing it instead would measure a loaded machine's start-up, not the lock).
    assert float(proc.stdout.strip().splitlines()[-1]) < copy_done[0], "the logger waited for the copy"
    assert result == [2000]
    assert len(dst.history()) == 2000  # the snapshot: the record logged meanwhile is not in it
    assert "during-copy" in set(src.history()["notes"])


def test_copying_a_ledger_onto_itself_is_refused_at_once(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "ledger")
    led.log("M", "AAPL", sharpe=1.0)
    t = time.monotonic()
    with pytest.raises(ValidationError, match="itself"):
        led.copy_to(tmp_path / "ledger")
    with pytest.raises(ValidationError, match="itself"):
        led.copy_to(Ledger(f"sqlite:///{tmp_path / 'ledger' / 'perfledger.db'}"))
    assert time.monotonic() - t < 5
    assert len(led.history()) == 1


@pytest.mark.postgres
def test_copying_a_postgres_ledger_onto_itself_is_refused(pg_ledger: Ledger, pg_server_url: str) -> None:
    pg_ledger.log("M", "AAPL", sharpe=1.0)
    with pytest.raises(ValidationError, match="itself"):
        pg_ledger.copy_to(pg_server_url)


def test_history_limit_reads_only_the_kept_rows_custom_metrics(any_ledger: Ledger) -> None:
    led = any_ledger
    led.log_many([{"model_name": "M", "ticker": f"T{i % 2}", "sharpe": i / 10,
                   "timestamp": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
                   "metrics": {f"c{k}": i + k for k in range(8)}} for i in range(600)])
    rows = led._store.history(HistoryQuery(limit=20))
    assert rows.records.num_rows == 20
    assert rows.extras is not None and rows.extras.num_rows == 20 * 8
    frame = led.history(limit=20)
    assert list(frame["c0"]) == list(range(580, 600)) and list(frame["c7"]) == list(range(587, 607))
    one = led.history(ticker="T1", limit=3)
    assert list(one["c3"]) == [595 + 3, 597 + 3, 599 + 3]
