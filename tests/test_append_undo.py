"""An append to the mirrors whose transaction does not commit is taken back.

A bulk load writes its JSON and CSV while the database inserts the rows; a single log()
appends just before the commit. If the transaction fails (its body, or its COMMIT), the
process cuts the files back; if the process dies, the journal it wrote before its first
append lets the next writer do it, whatever the batch's size. Either way the files hold
exactly what the database holds: no record adopted from an append that never committed,
no torn row read back as a record.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import csv_records, kill_rounds, mirror_records

from perfledger import Ledger
from perfledger.mirrors.seed_files import SeedMirrors
from perfledger.mirrors.undo import JOURNAL, LEGACY_JOURNAL
from perfledger.records.batch import Batch

FILES = ("model_performance.json", "model_performance.csv", "best_models.json")


def _rows(n: int, tag: str) -> list[dict]:
    return [{"model_name": f"M{i % 3}", "ticker": f"T{i % 4}", "sharpe": (i % 97) / 10,
             "mse": (i % 13) / 100, "notes": f"{tag}-{i}"} for i in range(n)]


def _snapshot(d: Path) -> dict[str, tuple[bytes, int, int]]:
    return {n: ((d / n).read_bytes(), (d / n).stat().st_size, (d / n).stat().st_mtime_ns) for n in FILES}


def _assert_in_step(d: Path) -> None:
    """Opened, the ledger's files are an export of its database, each record once."""
    with Ledger(d) as led:
        notes = collections.Counter(led.history()["notes"])
        assert collections.Counter(r["notes"] for r in mirror_records(d)) == notes
        assert collections.Counter(r["notes"] for r in csv_records(d)) == notes
        assert max(notes.values(), default=1) == 1
        export = led.export_seed_files(d.parent / "export")
    for name in FILES:
        assert (d / name).read_bytes() == (export / name).read_bytes(), name
    shutil.rmtree(export)


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
            monkeypatch.setattr(SeedMirrors, "save", fail)
        with pytest.raises(RuntimeError, match="disk on fire"):
            led.log_many(_rows(n, "lost"))
        monkeypatch.undo()
        assert _snapshot(ledger_dir) == before  # bytes, size and mtime
        assert len(led.history()) == 2500
        led.log("M", "T0", sharpe=1.0, notes="after")
    with caplog.at_level("WARNING", logger="perfledger"):
        _assert_in_step(ledger_dir)
    assert "adopted" not in caplog.text


@pytest.mark.parametrize("n", [1, 3000], ids=["single-log", "bulk-load"])
def test_a_failed_commit_leaves_the_files_as_committed(ledger_dir: Path, n: int) -> None:
    """The mirrors' transaction ended normally (files appended, state saved), then the
    database transaction fails: the store's abort hooks, which it runs for a failed COMMIT
    as for this, take the files back before the rollback."""
    import pandas as pd

    from perfledger.records.validation import validate_frame

    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
        before = _snapshot(ledger_dir)
        batch = Batch.from_frame(validate_frame(pd.DataFrame(_rows(n, "lost"))))
        with pytest.raises(RuntimeError, match="the commit failed"), led._writable().writing() as tx:
            with led._mirrors.transaction(tx) as m:
                m.insert(batch)
            assert _snapshot(ledger_dir) != before
            raise RuntimeError("the commit failed")
        assert _snapshot(ledger_dir) == before
        assert len(led.history()) == 2500
    _assert_in_step(ledger_dir)


KILLED_BEFORE_COMMIT = """
import os, signal, sys
sys.path[:0] = {path!r}
from perfledger import Ledger
from perfledger.mirrors.seed_files import SeedMirrors
led = Ledger({directory!r})
if {removed}:  # the journal removed under the open ledger, after its first write
    led.log("M", "T", sharpe=0.5, notes="before the removal")
    os.unlink(os.path.join({directory!r}, ".perfledger-journal"))
def die(self, tx, state):  # both files appended, the commit not reached
    os.kill(os.getpid(), signal.SIGKILL)
SeedMirrors.save = die
rows = [{{"model_name": "M", "ticker": "T", "sharpe": i / 7, "notes": f"lost-{{i}}"}} for i in range({n})]
if {n} == 1:
    led.log(**rows[0])
else:
    led.log_many(rows)
"""


@pytest.mark.parametrize(("n", "removed"), [(1, False), (300, False), (5000, False), (1, True)],
                         ids=["single-log", "small-batch", "bulk-load", "single-log-journal-removed"])
def test_a_process_killed_between_its_append_and_its_commit_is_taken_back(
    ledger_dir: Path, n: int, removed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """One crash behaviour at every batch size: the process is SIGKILLed with its records
    appended to both files and its transaction not committed; the next open cuts the files
    back from the journal (bytes, size and mtime as committed) and adopts nothing. A journal
    removed under an open ledger is written again by its next write."""
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
        led.log("M", "T0", sharpe=1.0, notes="single")
    before = _snapshot(ledger_dir)
    code = KILLED_BEFORE_COMMIT.format(path=sys.path, directory=str(ledger_dir), n=n, removed=removed)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    for name in FILES[:2]:
        assert (ledger_dir / name).stat().st_size > before[name][1], name
    with caplog.at_level(logging.INFO, logger="perfledger"):
        Ledger(ledger_dir).close()
    if not removed:
        # The appended files as committed, bytes, size and mtime; best_models.json, which
        # the dead transaction may have rewritten, is rewritten from the database.
        assert _snapshot(ledger_dir) == {**before, FILES[2]: _snapshot(ledger_dir)[FILES[2]]}
        assert (ledger_dir / FILES[2]).read_bytes() == before[FILES[2]][0]
    assert "dropped an append whose transaction did not commit" in caplog.text
    assert "adopted" not in caplog.text
    _assert_in_step(ledger_dir)
    with Ledger(ledger_dir) as led:
        notes = list(led.history()["notes"])
    assert len(notes) == 2501 + removed and not [n for n in notes if n.startswith("lost-")]


@pytest.mark.slow
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


@pytest.mark.slow
def test_sigkill_during_single_logs_adopts_nothing(
    ledger_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A child logs one record at a time and is killed at random moments, again and again:
    every acknowledged record is stored once, the files match the database, and no record
    is ever adopted from them (an append killed before its commit is cut back)."""
    Ledger(ledger_dir).close()
    acknowledged: set[str] = set()
    for k in range(4):
        acknowledged |= kill_rounds(ledger_dir, 3, 7 + k, [], max_wait=0.3, tag=f"k{k}r")
        with caplog.at_level(logging.INFO, logger="perfledger"):
            Ledger(ledger_dir).close()
    assert "adopted" not in caplog.text
    _assert_in_step(ledger_dir)
    with Ledger(ledger_dir) as led:
        assert acknowledged <= set(led.history()["notes"])


def test_a_stale_journal_never_costs_a_record(ledger_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The journal stays after each commit. When the files are next out of step for
    another reason (the seed's code appended to the CSV), the repair reads it, finds the
    state moved on (its transaction committed) and cuts nothing: the seed's rows are adopted."""
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
        led.log("M", "T0", sharpe=1.0, notes="single")
    assert (ledger_dir / JOURNAL).exists()
    with open(ledger_dir / "model_performance.csv", "a", newline="") as f:
        f.write('2024-02-01T00:00:00,T9,Seed,2.0,,,,,,"by the seed",,,\r\n')
    with caplog.at_level(logging.INFO, logger="perfledger"), Ledger(ledger_dir) as led:
        assert len(led.history()) == 2502 and "by the seed" in set(led.history()["notes"])
    assert "dropped an append" not in caplog.text
    _assert_in_step(ledger_dir)


def test_a_journal_that_does_not_read_is_ignored(ledger_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
    (ledger_dir / JOURNAL).write_bytes(b"\x00{not a journal")
    (ledger_dir / "model_performance.json").unlink()  # out of step: the repair reads the journal
    with caplog.at_level("WARNING", logger="perfledger"), Ledger(ledger_dir) as led:
        assert len(led.history()) == 2500
    assert "unreadable append journal" in caplog.text
    _assert_in_step(ledger_dir)
    with Ledger(ledger_dir) as led:
        led.log("M", "T0", sharpe=1.0, notes="after")  # the next append rewrites it
    _assert_in_step(ledger_dir)


@pytest.mark.parametrize("journal", ["uncommitted", "stale", "garbage"])
def test_a_journal_an_earlier_release_left_is_honoured(
    ledger_dir: Path, caplog: pytest.LogCaptureFixture, journal: str
) -> None:
    """An earlier release journaled only bulk appends, in ``.perfledger-append.json``
    (``{"json": [size, atime_ns, mtime_ns, inode], "csv": ...}``), removed after the commit.
    Left by a bulk load killed before its commit, it cuts the files back; left after its
    append committed, or unreadable, it costs nothing. It is removed either way."""
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(2500, "kept"))
    before = _snapshot(ledger_dir)
    stats = {k: os.stat(ledger_dir / name) for k, name in (("json", FILES[0]), ("csv", FILES[1]))}
    legacy = {k: [st.st_size, st.st_atime_ns, st.st_mtime_ns, st.st_ino] for k, st in stats.items()}
    if journal == "stale":  # its append committed: the next write's
        with Ledger(ledger_dir) as led:
            led.log_many(_rows(2500, "also-kept"))
        with open(ledger_dir / "model_performance.csv", "a", newline="") as f:  # out of step
            f.write('2024-02-01T00:00:00,T9,Seed,2.0,,,,,,"by the seed",,,\r\n')
    else:  # what an earlier release killed mid bulk load left: appended, never committed
        with open(ledger_dir / FILES[0], "r+b") as f:
            f.seek(-2, os.SEEK_END)
            f.write(b',\n  {"timestamp": "2024-01-01T00:00:00", "ticker": "X", "model_name": "never"}\n]')
        with open(ledger_dir / FILES[1], "ab") as f:
            f.write(b'"2024-01-01T00:00:00","X","never",,,,,,,"",,,\r\n')
    (ledger_dir / LEGACY_JOURNAL).write_text("\x00{not json" if journal == "garbage" else json.dumps(legacy))
    with caplog.at_level("INFO", logger="perfledger"), Ledger(ledger_dir) as led:
        notes = set(led.history()["notes"])
    assert not (ledger_dir / LEGACY_JOURNAL).exists()
    assert ("unreadable append journal" in caplog.text) == (journal == "garbage")
    if journal == "uncommitted":
        assert _snapshot(ledger_dir) == before and "never" not in set(led.history()["model_name"])
    elif journal == "stale":
        assert len(notes) == 5001 and "by the seed" in notes
    _assert_in_step(ledger_dir)


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 300], ids=["single-log", "small-batch"])
def test_a_copy_taken_after_a_crash_adopts_nothing_uncommitted(
    ledger_dir: Path, tmp_path: Path, n: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A process SIGKILLed between its append and its commit, then the directory copied
    (``cp -r``: new inodes) before any other write: the copy's files are cut back too (the
    journal names the originals' inodes, so the copy is recognised by its committed content
    instead), and the copy adopts none of the records that were never stored."""
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(200, "kept"))
    code = KILLED_BEFORE_COMMIT.format(path=sys.path, directory=str(ledger_dir), n=n, removed=False)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(ledger_dir), str(copy)], check=True)
    with caplog.at_level(logging.INFO, logger="perfledger"):
        Ledger(copy).close()
    assert "adopted" not in caplog.text
    _assert_in_step(copy)
    with Ledger(copy) as led:
        notes = list(led.history()["notes"])
    assert len(notes) == 200 and not [x for x in notes if x.startswith("lost-")]


# ---------------------------------------------------------------- the seed's code appends after us

#: The seed's own way of logging (``memory/model_log.py`` before perfledger), by another
#: process that takes no lock: the JSON list loaded, the record added, the whole list dumped
#: with ``json.dump(indent=2)``; one CSV row appended.
SEED_APPEND = """
import csv, json, sys
directory, note = sys.argv[1], sys.argv[2]
record = {"timestamp": "2024-05-01T00:00:00", "ticker": "SEED", "model_name": "SeedModel",
          "sharpe": 0.75, "mse": None, "drawdown": None, "total_return": None, "win_rate": None,
          "accuracy": None, "notes": note}
with open(directory + "/model_performance.json") as f:
    records = json.load(f)
records.append(record)
with open(directory + "/model_performance.json", "w") as f:
    json.dump(records, f, indent=2)
with open(directory + "/model_performance.csv", newline="") as f:
    header = next(csv.reader(f))
with open(directory + "/model_performance.csv", "a", newline="") as f:
    row = {k: "" if v is None else v for k, v in record.items()}
    csv.DictWriter(f, fieldnames=header, restval="").writerow(row)
"""

#: perfledger appends and stops before its commit (the journal written, both files
#: appended), says so, and waits to be killed.
HELD_BEFORE_COMMIT = """
import sys, time
sys.path[:0] = {path!r}
from perfledger import Ledger
from perfledger.mirrors.seed_files import SeedMirrors
def hold(self, tx, state):
    print("appended", flush=True)
    time.sleep(600)
SeedMirrors.save = hold
led = Ledger({directory!r})
rows = [{{"model_name": "M", "ticker": "T", "sharpe": i / 7, "notes": f"uncommitted-{{i}}"}}
        for i in range({n})]
led.log(**rows[0]) if {n} == 1 else led.log_many(rows)
"""


def _seed_append(d: Path, note: str) -> None:
    out = subprocess.run([sys.executable, "-c", SEED_APPEND, str(d), note], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("n", [1, 300], ids=["single-log", "batch"])
@pytest.mark.parametrize("committed", ["records", "empty"])
def test_a_seed_record_appended_after_an_uncommitted_append_survives_its_kill(
    ledger_dir: Path, n: int, committed: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Real processes: perfledger appends (journal, both files) and is SIGKILLed before its
    commit; meanwhile the seed's own code, in another process, appended a record after it
    (JSON rewritten, a CSV row appended). The next open takes back perfledger's bytes only:
    the seed's record is adopted, once, in the database and both files; no uncommitted
    record appears anywhere."""
    with Ledger(ledger_dir) as led:
        if committed == "records":
            led.log_many(_rows(40, "kept"))
        else:
            led.log("M", "T0", sharpe=1.0, notes="kept-0")
            led.clear()
    kept = [f"kept-{i}" for i in range(40)] if committed == "records" else []
    code = HELD_BEFORE_COMMIT.format(path=sys.path, directory=str(ledger_dir), n=n)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "appended", proc.stderr
        _seed_append(ledger_dir, "by the seed")
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -9
    with caplog.at_level(logging.INFO, logger="perfledger"), Ledger(ledger_dir) as led:
        notes = collections.Counter(led.history()["notes"])
    assert notes == collections.Counter([*kept, "by the seed"])
    assert "dropped an append whose transaction did not commit" in caplog.text
    _assert_in_step(ledger_dir)


@pytest.mark.parametrize("n", [1, 300], ids=["single-log", "batch"])
def test_a_seed_record_appended_before_a_failed_commit_survives_the_take_back(
    ledger_dir: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """The same in the process whose COMMIT fails: the take-back removes its own bytes and
    keeps the seed's record appended after them (by another process, meanwhile)."""
    with Ledger(ledger_dir) as led:
        led.log_many(_rows(40, "kept"))
    real_save = SeedMirrors.save

    def seed_then_fail(self: SeedMirrors, tx: object, state: object) -> None:
        real_save(self, tx, state)  # type: ignore[arg-type]
        _seed_append(ledger_dir, "by the seed")
        raise RuntimeError("the commit failed")

    monkeypatch.setattr(SeedMirrors, "save", seed_then_fail)
    with Ledger(ledger_dir) as led, pytest.raises(RuntimeError, match="the commit failed"):
        rows = [{"model_name": "M", "ticker": "T", "sharpe": i / 7, "notes": f"uncommitted-{i}"}
                for i in range(n)]
        led.log(**rows[0]) if n == 1 else led.log_many(rows)
    monkeypatch.setattr(SeedMirrors, "save", real_save)
    assert "uncommitted-0" not in (ledger_dir / "model_performance.json").read_text()
    assert "uncommitted-0" not in (ledger_dir / "model_performance.csv").read_text()
    with Ledger(ledger_dir) as led:
        notes = collections.Counter(led.history()["notes"])
    assert notes == collections.Counter([*(f"kept-{i}" for i in range(40)), "by the seed"])
    _assert_in_step(ledger_dir)


def test_a_journal_without_ends_from_the_release_before_is_honoured(ledger_dir: Path) -> None:
    """The release before recorded no end of the appends (``PLJ1``): a process of it killed
    before its commit is still taken back, to the committed size, as it would have been."""
    import struct
    import zlib

    with Ledger(ledger_dir) as led:
        led.log_many(_rows(40, "kept"))
    before = _snapshot(ledger_dir)
    code = KILLED_BEFORE_COMMIT.format(path=sys.path, directory=str(ledger_dir), n=1, removed=False)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    data = (ledger_dir / JOURNAL).read_bytes()
    new = struct.Struct("<4sI" + "QQqqQ" * 2)
    magic, base, *fields = new.unpack(data[: new.size])
    assert magic == b"PLJ2"
    old_fields = fields[0:4] + fields[5:9]  # without the two ends
    body = struct.Struct("<4sI" + "QQqq" * 2).pack(b"PLJ1", base, *old_fields)
    (ledger_dir / JOURNAL).write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    Ledger(ledger_dir).close()
    assert {k: v for k, v in _snapshot(ledger_dir).items() if k != FILES[2]} == {
        k: v for k, v in before.items() if k != FILES[2]}
    _assert_in_step(ledger_dir)
