"""A full disk (or a file size limit) means nothing was stored, and says so.

Every write (``log``, ``log_many``, ``import``, ``register_metric``, ``clear``, ``copy``)
that fails for want of space raises :class:`StorageError` (``cause == "disk_full"``) naming
the ledger and the cause, whether the database or a mirror file ran out of space, in the
body or at the COMMIT; the files are as committed (appends cut back, replaced files put
back), the next open adopts nothing, and a retry stores the record exactly once.

Proven on a real 1 MB tmpfs (root; CI runs these), with a real ``RLIMIT_FSIZE`` in a
subprocess (the command line under ``ulimit -f``), and with mirror writes that fail in
process, on every machine.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import csv_records, mirror_records

from perfledger import Ledger
from perfledger.errors import StorageError
from perfledger.files.importer import import_file
from perfledger.mirrors import transaction
from perfledger.store.errors import Cause

FILES = ("model_performance.json", "model_performance.csv", "best_models.json")
NOTE = "n" * 300


def _snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {n: ((d / n).read_bytes(), (d / n).stat().st_mtime_ns) for n in FILES}


def _in_step_once(d: Path, expected: collections.Counter[str]) -> None:
    """A fresh open holds exactly ``expected`` notes, as do both mirrors."""
    with Ledger(d) as led:
        assert collections.Counter(led.history()["notes"]) == expected
    assert collections.Counter(r["notes"] for r in mirror_records(d)) == expected
    assert collections.Counter(r["notes"] for r in csv_records(d)) == expected


# ---------------------------------------------------------------- a mirror file that fails


OPERATIONS = ("log", "log_many", "import", "register_metric", "clear", "copy")


def _run(op: str, led: Ledger, tmp: Path) -> None:
    if op == "log":
        led.log("M", "T", sharpe=9.0, notes="retried")
    elif op == "log_many":
        led.log_many([{"model_name": "M", "ticker": "T", "sharpe": 9.0, "notes": f"retried-{i}"}
                      for i in range(50)])
    elif op == "import":
        src = tmp / "in.csv"
        if not src.exists():
            src.write_text("timestamp,model_name,ticker,sharpe,notes\n"
                           + "".join(f"2024-01-01T00:00:{i:02d},M,T,9.0,retried-{i}\n" for i in range(30)))
        import_file(led, src)
    elif op == "register_metric":
        led.register_metric("alpha", True)
    elif op == "clear":
        led.clear()
    elif op == "copy":
        led.copy_to(tmp / "target")


@pytest.mark.parametrize("op", OPERATIONS)
def test_a_mirror_file_out_of_space_is_a_storage_error_and_stores_nothing(
    tmp_path: Path, op: str
) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log_many([{"model_name": "M", "ticker": "T", "sharpe": i / 10, "metrics": {"alpha": i / 20},
                       "notes": f"kept-{i}"} for i in range(20)])
    before = _snapshot(d)
    kept = collections.Counter(f"kept-{i}" for i in range(20))
    with pytest.MonkeyPatch.context() as mp:
        def enospc(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        for name in ("write_at", "write_empty", "write_best", "write_best_lines", "write_json", "write_csv"):
            mp.setattr(transaction, name, enospc)
        with Ledger(d) as led:
            best = led.best()
            with pytest.raises(StorageError) as info:
                _run(op, led, tmp_path)
            assert info.value.cause == "disk_full"
            message = str(info.value)
            assert "disk full" in message and "nothing was stored" in message
            assert str(tmp_path) in message
            assert collections.Counter(led.history()["notes"]) == kept
            assert led.best() == best
            # (Not kept alive beyond this point: a failed write's traceback kept by the caller
            # makes later columnar reads of the same file stale, a defect of the store's read
            # path reported separately.)
            del info
        assert _snapshot(d) == before  # bytes and mtime: nothing appended, nothing replaced
        if op == "copy":
            with Ledger(tmp_path / "target") as target:
                assert len(target.history()) == 0
    _in_step_once(d, kept)
    # The retry, with space again: stored exactly once.
    with Ledger(d) as led:
        _run(op, led, tmp_path)
        notes = collections.Counter(led.history()["notes"])
        if op == "register_metric":
            assert led.metric_directions()["alpha"] is True
            assert led.best("T")["best_alpha"]["value"] == pytest.approx(19 / 20)
    expected = {"log": kept + collections.Counter(["retried"]),
                "log_many": kept + collections.Counter(f"retried-{i}" for i in range(50)),
                "import": kept + collections.Counter(f"retried-{i}" for i in range(30)),
                "register_metric": kept, "clear": collections.Counter(), "copy": kept}[op]
    assert notes == expected
    _in_step_once(d, expected)
    if op == "copy":
        _in_step_once(tmp_path / "target", kept)


# ---------------------------------------------------------------- a failed COMMIT


@pytest.mark.parametrize("what", ["clear", "register_metric"])
def test_a_failed_commit_puts_back_the_files_it_replaced(tmp_path: Path, what: str) -> None:
    """A clear empties the record files and a registration rewrites best_models.json before
    the COMMIT; if the COMMIT fails, the committed files are put back (same bytes, same
    mtime): a failed clear never leaves empty mirrors beside a database that kept its records."""
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log_many([{"model_name": "M", "ticker": "T", "sharpe": i / 10, "metrics": {"alpha": i / 20},
                       "notes": f"kept-{i}"} for i in range(20)])
        before = _snapshot(d)
        with pytest.raises(RuntimeError, match="the commit failed"), led._writable().writing() as tx:
            with led._mirrors.transaction(tx) as m:
                if what == "clear":
                    tx.clear()
                    m.reset()
                else:
                    tx.register_metric("alpha", True)
                    m.write_best()
            assert _snapshot(d) != before
            raise RuntimeError("the commit failed")  # what a COMMIT on a full disk does
        assert _snapshot(d) == before
        assert len(led.history()) == 20
    _in_step_once(d, collections.Counter(f"kept-{i}" for i in range(20)))
    assert not list(d.glob(".*.committed"))


# ---------------------------------------------------------------- a real file size limit

LIMITED = """
import json, resource, sys
sys.path[:0] = {path!r}
from perfledger import Ledger
from perfledger.errors import StorageError
from perfledger.files.importer import import_file
limit = {limit}
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
acked, errors = [], []
with Ledger({directory!r}) as led:
    for i in range(40):
        try:
            led.log("M", "T", sharpe=i / 10, notes=f"try-{{i}}-" + "n" * 300)
            acked.append(f"try-{{i}}-" + "n" * 300)
        except StorageError as exc:
            errors.append([exc.cause, str(exc)])
print(json.dumps({{"acked": acked, "errors": errors}}))
"""


def _checkpointed(d: Path) -> None:
    """The write-ahead log emptied into the database file, so the next writes go to a
    short -wal file (a file size limit then hits the mirror first)."""
    import sqlite3

    con = sqlite3.connect(d / "perfledger.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


@pytest.mark.slow
def test_a_file_size_limit_is_disk_full_and_a_retry_stores_once(tmp_path: Path) -> None:
    """A real ``RLIMIT_FSIZE`` (``ulimit -f``): the JSON mirror may not grow; every log()
    fails with EFBIG on its append (SIGXFSZ ignored, as Python does) and says "disk full";
    nothing it tried is stored, adopted at the next open, or left in a file."""
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log_many([{"model_name": "M", "ticker": "T", "sharpe": 0.1, "notes": f"kept-{i}-" + "k" * 900}
                      for i in range(300)])
    _checkpointed(d)
    limit = (d / "model_performance.json").stat().st_size
    assert (d / "model_performance.csv").stat().st_size < limit
    code = LIMITED.format(path=sys.path, directory=str(d), limit=limit)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["acked"] == []
    assert len(result["errors"]) == 40
    assert all(cause == "disk_full" and "disk full" in msg and str(d) in msg
               for cause, msg in result["errors"])
    kept = collections.Counter(f"kept-{i}-" + "k" * 900 for i in range(300))
    _in_step_once(d, kept)
    with Ledger(d) as led:  # the retry
        led.log("M", "T", sharpe=0.0, notes="try-0-" + "n" * 300)
    _in_step_once(d, kept + collections.Counter(["try-0-" + "n" * 300]))


@pytest.mark.slow
def test_the_command_line_under_a_file_size_limit_prints_one_error_line(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log_many([{"model_name": "M", "ticker": "T", "sharpe": 0.1, "notes": f"kept-{i}-" + "k" * 900}
                      for i in range(300)])
    _checkpointed(d)
    limit = (d / "model_performance.json").stat().st_size
    cli = Path(sys.executable).with_name("perfledger")
    args = [str(cli), "--store", str(d), "log", "--model", "M", "--ticker", "T", "--sharpe", "1.5",
            "--notes", "n" * 300]
    out = subprocess.run(["bash", "-c", f'ulimit -f {limit // 1024}; exec "$@"', "bash", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode not in (0, -25, 153), (out.returncode, out.stderr)  # 153: killed by SIGXFSZ
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "disk full" in lines[0], out.stderr
    assert "Errno" not in out.stderr and "Traceback" not in out.stderr
    _in_step_once(d, collections.Counter(f"kept-{i}-" + "k" * 900 for i in range(300)))


# ---------------------------------------------------------------- a real full disk


def _root_or_ci() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root: the tmpfs test must run there")
        pytest.skip("mounting a tmpfs needs root")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    _root_or_ci()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _grow(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=16m", str(mnt)], check=True)


@pytest.mark.slow
def test_a_full_disk_stores_nothing_and_a_retry_stores_once(tiny_disk: Path) -> None:
    """The issue's case: log() with 300-byte notes on a 1 MB tmpfs until it fills. Every
    failure is a StorageError saying "disk full" (the database's SQLITE_FULL, at COMMIT
    too, or a mirror's ENOSPC); history, a new process and both mirrors hold exactly the
    acknowledged records; after space is freed, a retry of each failed record stores it
    once."""
    d = tiny_disk / "logs"
    acked: list[str] = []
    failed: list[str] = []
    with Ledger(d) as led:
        for i in range(400):
            note = f"{i}-" + NOTE
            try:
                led.log("M", "T", sharpe=i / 100, notes=note)
                acked.append(note)
            except StorageError as exc:
                assert exc.cause == "disk_full", exc
                assert "disk full" in str(exc) and str(d) in str(exc)
                failed.append(note)
                if len(failed) >= 5:
                    break
        assert failed, "the disk never filled"
        assert collections.Counter(led.history()["notes"]) == collections.Counter(acked)
        for op in (lambda: led.log_many([{"model_name": "M", "ticker": "T", "notes": f"b{i}" + NOTE * 3}
                                          for i in range(200)]),):
            with pytest.raises(StorageError) as info:
                op()
            assert info.value.cause == "disk_full"
    _in_step_once(d, collections.Counter(acked))
    _grow(tiny_disk)
    with Ledger(d) as led:
        for note in failed:
            led.log("M", "T", sharpe=0.0, notes=note)
    _in_step_once(d, collections.Counter(acked + failed))


# ---------------------------------------------------------------- SQLite's own files at the size limit

LIMITED_DATABASE = """
import json, resource, sys
sys.path[:0] = {path!r}
from perfledger import Ledger
from perfledger.errors import StorageError
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
acked, errors = [], []
with Ledger({url!r}) as led:
    for i in range(400):
        note = f"big-{{i}}-" + "b" * 4000
        try:
            led.log("M", "T", sharpe=i / 10, notes=note)
            acked.append(note)
        except StorageError as exc:
            errors.append([exc.cause, str(exc)])
            if len(errors) >= 3:
                break
print(json.dumps({{"acked": acked, "errors": errors}}))
"""


@pytest.mark.slow
def test_a_file_size_limit_inside_the_database_is_disk_full(tmp_path: Path) -> None:
    """A real ``RLIMIT_FSIZE`` hit by SQLite's own files (a database URL: no mirrors). SQLite
    reports the failed write as ``SQLITE_IOERR_WRITE``, not ``SQLITE_FULL``; the store tells
    it by its code and the size limit: "disk full", ``cause == "disk_full"``, never "I/O
    error". What was acknowledged is stored, nothing else, and a retry stores once."""
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    with Ledger(url) as led:
        led.log("M", "T", sharpe=0.0, notes="first")
    limit = db.stat().st_size + 256 * 1024
    code = LIMITED_DATABASE.format(path=sys.path, url=url, limit=limit)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["errors"], "the size limit was never reached"
    for cause, msg in result["errors"]:
        assert cause == "disk_full" and ": disk full (" in msg and Cause.IO.value not in msg, msg
    with Ledger(url) as led:
        notes = collections.Counter(led.history()["notes"])
        assert notes == collections.Counter(["first", *result["acked"]])
        led.log("M", "T", sharpe=0.0, notes="retried")
        assert len(led.history()) == len(result["acked"]) + 2


# ---------------------------------------------------------------- several transactions: what was stored


def _enospc_after(mp: pytest.MonkeyPatch, calls: int) -> None:
    """Mirror appends fail with ENOSPC from the ``calls + 1``-th (each append writes both files)."""
    real = transaction.write_at
    count = {"n": 0}

    def write_at(*args: object, **kwargs: object) -> object:
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    mp.setattr(transaction, "write_at", write_at)


def test_a_sync_that_fills_the_disk_part_way_says_what_it_stored(tmp_path: Path) -> None:
    """A sync commits a chunk per transaction: when a later chunk fails on a full disk, the
    earlier chunks are stored. The error says how many records were, and that a rerun
    completes the sync without doubling any, never "nothing was stored"; the rerun does."""
    from perfledger.files.sync import sync_stores

    source = Ledger(tmp_path / "source")
    source.log_many([{"model_name": "M", "ticker": "T", "sharpe": i / 10, "notes": f"r{i}",
                      "timestamp": f"2024-01-01T00:00:{i:02d}Z"} for i in range(50)])
    target = Ledger(tmp_path / "target")
    target.log("Own", "T", sharpe=1.0, timestamp="2023-01-01T00:00:00Z")
    with pytest.MonkeyPatch.context() as mp:
        _enospc_after(mp, 2 * 2)  # two chunks' appends (JSON and CSV each), then a full disk
        with pytest.raises(StorageError) as info:
            sync_stores(source._ensure(), target._writable(), target, target._mirrors, chunk=10)
    error = info.value
    assert error.cause == "disk_full"
    message = str(error)
    assert "nothing was stored" not in message
    assert "disk full" in message and "20 record(s) were stored before the failure" in message
    assert "run the sync again" in message and "idempotent" in message
    assert len(target.history()) == 21
    result = source.sync(target)
    assert result.new == 30
    assert collections.Counter(target.history()["notes"]) == collections.Counter(
        [f"r{i}" for i in range(50)] + [""])
    _in_step_once(tmp_path / "target", collections.Counter([f"r{i}" for i in range(50)] + [""]))


def test_a_sync_whose_first_chunk_fails_says_nothing_was_stored(tmp_path: Path) -> None:
    from perfledger.files.sync import sync_stores

    source = Ledger(tmp_path / "source")
    source.log_many([{"model_name": "M", "ticker": "T", "sharpe": i / 10, "notes": f"r{i}"}
                     for i in range(30)])
    target = Ledger(tmp_path / "target")
    with pytest.MonkeyPatch.context() as mp:
        _enospc_after(mp, 0)
        with pytest.raises(StorageError) as info:
            sync_stores(source._ensure(), target._writable(), target, target._mirrors, chunk=10)
    assert "nothing was stored" in str(info.value) and "before the failure" not in str(info.value)
    assert target.history().empty


def test_an_import_of_several_files_that_fills_the_disk_says_what_the_earlier_files_stored(
    tmp_path: Path,
) -> None:
    """``perfledger import a.csv b.csv``: each file is its own transaction. When the second
    fails on a full disk, the first file's records are stored, and the error line says so."""
    from cli_runner import run_cli

    files = []
    for name, n in (("a", 12), ("b", 7)):
        f = tmp_path / f"{name}.csv"
        f.write_text("timestamp,model_name,ticker,sharpe,notes\n"
                     + "".join(f"2024-01-01T00:00:{i:02d},M,T,{i},{name}{i}\n" for i in range(n)))
        files.append(str(f))
    store = tmp_path / "ledger"
    Ledger(store).close()
    with pytest.MonkeyPatch.context() as mp:
        _enospc_after(mp, 2)  # the first file's append, then a full disk
        out = run_cli("--store", str(store), "import", *files)
    assert out.returncode != 0
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("Error:") and "disk full" in line, out.stderr
    assert "nothing was stored" not in line
    assert "12 record(s) were stored before the failure" in line and "run the import again" in line
    ok = run_cli("--store", str(store), "import", *files)
    assert ok.returncode == 0, ok.stderr
    with Ledger(store) as led:
        assert len(led.history()) == 19
