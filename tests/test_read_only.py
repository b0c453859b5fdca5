"""A ledger this user may only read: another user's directory (files 0644, directory 0755).

Reads work and equal what the owner reads; every write raises ``ReadOnlyLedgerError`` in one
line (the CLI prints one ``Error:`` line and exits 2); nothing in the directory changes.
Three states of the directory: a writer still has it open (``-wal``/``-shm`` present), a
writer was killed (they are left behind), every writer closed (no ``-wal``/``-shm``). The
readers are real processes of an unprivileged user (see tests/unprivileged.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cli_runner import run_cli
from unprivileged import IS_ROOT, SRC, Reader, as_reader, make_foreign, shared_directory, snapshot
from upgrade_fixtures import copy_v1_sqlite

# Imported here, by the parent: a reader may not be able to read the standard library.
import perfledger.stats.backtest  # noqa: F401 - the reader child (another user) cannot import it itself
from perfledger import Ledger, ReadOnlyLedgerError
from perfledger.location import resolve
from perfledger.store.migrations import current_version
from perfledger.store.sqlite.readonly import ReadOnlyFile
from perfledger.store.sqlite.store import SQLiteStore

WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from perfledger import Ledger
    led = Ledger(sys.argv[1])
    led.register_metric("sortino", True)
    for i in range(40):
        led.log(f"model_{i % 3}", ("AAPL", "MSFT")[i % 2], sharpe=0.1 * i, mse=0.01 + i / 1000,
                win_rate=0.5, metrics={"sortino": i / 7} if i % 4 == 0 else None,
                params={"lr": 0.1} if i % 5 == 0 else None, tags={"run": str(i)})
    print("ready", flush=True)
    if sys.argv[2] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    if sys.argv[2] == "running":
        sys.stdin.read()  # keeps the ledger open until the test closes stdin
    led.close()
    """
)
STATES = ("writer-running", "writer-killed", "closed")


def _writer(directory: Path, how: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(directory), how], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture(params=STATES)
def foreign(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A ledger directory written by a writer process of its owner, in one of the STATES."""
    state = request.param
    with shared_directory() as base:
        directory = base / "ledger"
        proc = _writer(directory, state.removeprefix("writer-"))
        try:
            if state != "writer-running":
                proc.wait(timeout=60)
            wal = (directory / "perfledger.db-wal").exists()
            assert wal == (state != "closed"), sorted(os.listdir(directory))
            yield directory
        finally:
            if proc.poll() is None:
                proc.communicate(timeout=60)


def read_all(directory: Path) -> dict[str, Any]:
    """Every read a user (or the dashboard) makes."""
    with Ledger(directory) as led:
        return {
            "read_only": led.read_only,
            "history": led.history(),
            "history_meta": led.history(include_meta=True),
            "limited": led.history(limit=5),
            "filtered": led.history(ticker="AAPL", at_least={"sharpe": 1.0}),
            "records": led.records(),
            "best": led.best(),
            "best_aapl": led.best("AAPL"),
            "tickers": led.tickers(),
            "models": led.models(),
            "models_aapl": led.models("AAPL"),
            "leaderboard": led.leaderboard(),
            "leaderboard_mse": led.leaderboard("AAPL", metric="mse"),
            "leaderboard_window": led.leaderboard(days_back=30),
            "directions": led.metric_directions(),
            "stats": led.stats(),
        }


def owner_reads(directory: Path, tmp_path: Path) -> dict[str, Any]:
    """What the owner reads, from a copy (opening the original would change its files)."""
    copy = tmp_path / "owner_copy"
    shutil.copytree(directory, copy)
    return read_all(copy)


def copy_out(directory: Path) -> tuple[int, int]:
    """Exports and copies read a snapshot of the ledger and write elsewhere: (records in the
    exported JSON, records copied into a new ledger), both written into the caller's own
    temporary directory."""
    scratch = Path(tempfile.mkdtemp())
    try:
        with Ledger(directory) as led:
            exported = led.export_seed_files(scratch / "export") / "model_performance.json"
            return len(json.loads(exported.read_text())), led.copy_to(scratch / "copy")
    finally:
        shutil.rmtree(scratch)


def try_writes(directory: Path) -> dict[str, str | None]:
    """Every kind of write; the message each one raised (None: it did not raise)."""
    out: dict[str, str | None] = {}
    with Ledger(directory) as led:
        calls = {
            "log": lambda: led.log("LSTM", "AAPL", sharpe=1.0),
            "log_many": lambda: led.log_many([{"model_name": "LSTM", "ticker": "AAPL", "sharpe": 1.0}]),
            "register_metric": lambda: led.register_metric("calmar", True),
            "clear": led.clear,
            "rebuild_mirrors": led.rebuild_mirrors,
            "log_backtest": lambda: led.log_backtest("LSTM", "AAPL", [0.01, -0.02, 0.03] * 10),
        }
        for name, call in calls.items():
            try:
                call()
                out[name] = None
            except ReadOnlyLedgerError as exc:
                out[name] = str(exc)
    return out


def assert_same_reads(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key, value in want.items():
        if key == "read_only":
            continue
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[key], value, obj=key)
        else:
            assert got[key] == value, key


@pytest.mark.slow
def test_reads_work_writes_refused_nothing_changes(foreign: Path, tmp_path: Path) -> None:
    want = owner_reads(foreign, tmp_path)
    assert want["stats"]["records"] == 40 and not want["read_only"]
    make_foreign(foreign)
    before = snapshot(foreign)

    def reader() -> tuple[dict[str, Any], tuple[int, int], dict[str, str | None]]:
        return read_all(foreign), copy_out(foreign), try_writes(foreign)

    got, copied, refused = as_reader(reader)
    assert got["read_only"] is True
    assert_same_reads(got, want)
    assert copied == (40, 40)
    for name, message in refused.items():
        assert message is not None, f"{name} did not raise ReadOnlyLedgerError"
        assert "\n" not in message and f"{foreign} is read-only for this user" in message, message
    assert snapshot(foreign) == before


@pytest.mark.slow
def test_cli_reads_and_refuses_a_write_in_one_line(foreign: Path, tmp_path: Path) -> None:
    want = owner_reads(foreign, tmp_path)
    commands = {
        "best": ["best", "--format", "json"],
        "tickers": ["tickers"],
        "log": ["log", "--model", "LSTM", "--ticker", "AAPL", "--sharpe", "1.5"],
    }
    # Run each command once by the owner, on the copy: it imports what the reader will need
    # (a reader may not be able to read the interpreter's own directory). The reader runs
    # them in its own process (a fork, as the reading user), in-process there.
    copy = str(tmp_path / "owner_copy")
    for args in commands.values():
        assert run_cli("--store", copy, *args).returncode == 0
    make_foreign(foreign)
    before = snapshot(foreign)

    def reader() -> dict[str, tuple[int, str, str]]:
        ran = {name: run_cli("--store", str(foreign), *args) for name, args in commands.items()}
        return {name: (r.returncode, r.stdout, r.stderr) for name, r in ran.items()}

    ran = as_reader(reader)
    assert ran["best"][0] == 0 and ran["best"][2] == ""
    assert json.loads(ran["best"][1]) == want["best"]
    assert ran["tickers"][0] == 0 and ran["tickers"][1].split() == want["tickers"]
    code, out, err = ran["log"]
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {foreign} is read-only for this user"), err
    assert snapshot(foreign) == before


@pytest.mark.parametrize("state", ["closed", "writer-running"])
def test_a_reader_sees_the_owners_later_writes(state: str) -> None:
    """No stale snapshot: a long-lived reader (the dashboard) sees what the owner logs after it
    opened, whether the owner's process keeps the ledger open or closes it after each write."""
    with shared_directory() as base:
        directory = base / "ledger"
        with Ledger(directory) as owner:
            owner.log("M", "AAPL", sharpe=1.0)
        read_all(directory)  # warm up
        make_foreign(directory)
        opened_r, opened_w = os.pipe()
        go_r, go_w = os.pipe()

        def reader() -> list[int]:
            os.close(go_w)  # the parent's ends: EOF, not a hang, if the parent fails
            os.close(opened_r)
            with Ledger(directory) as led:
                counts = [led.stats()["records"], len(led.history())]
                os.write(opened_w, b"1")
                os.read(go_r, 1)
                return [*counts, led.stats()["records"], len(led.history())]

        child = Reader(reader)
        os.close(opened_w)  # only the child writes it: a child that dies gives EOF, not a hang
        os.close(go_r)
        os.read(opened_r, 1)
        os.close(opened_r)
        if not IS_ROOT:
            directory.chmod(0o755)  # the owner writes
            for path in directory.iterdir():
                path.chmod(0o644)
        owner = Ledger(directory)
        try:
            owner.log("M", "AAPL", sharpe=2.0)
            if state == "closed":
                owner.close()
                assert not (directory / "perfledger.db-wal").exists()
            os.write(go_w, b"1")
        finally:
            os.close(go_w)
            seen = child.result()
            owner.close()
        assert seen == [1, 1, 2, 2]


def test_out_of_step_mirrors_are_reported_not_repaired(tmp_path: Path) -> None:
    with shared_directory() as base:
        directory = base / "ledger"
        with Ledger(directory) as owner:
            for i in range(5):
                owner.log("M", "AAPL", sharpe=float(i))
        want = read_all(directory)
        # The seed's own code appends a record by rewriting the JSON file.
        path = directory / "model_performance.json"
        records = json.loads(path.read_text())
        records.append({**records[-1], "sharpe": 9.0})
        path.write_text(json.dumps(records, indent=2))
        make_foreign(directory)
        before = snapshot(directory)

        got, warnings = as_reader(lambda: read_with_warnings(directory))
        assert_same_reads(got, want)  # from the database: the file's extra record is not shown
        assert len(warnings) == 1 and "mirror files are out of step" in warnings[0], warnings
        assert "may not repair them" in warnings[0] and str(directory) in warnings[0]
        assert snapshot(directory) == before



def read_with_warnings(directory: Path) -> tuple[dict[str, Any], list[str]]:
    """Every read of the ledger (``read_all``), and the warnings perfledger logged meanwhile."""
    seen: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("perfledger").addHandler(handler)
    return read_all(directory), seen

@pytest.mark.parametrize("edited", [False, True], ids=["copy", "edited-copy"])
def test_a_restored_copy_is_in_step_for_a_reader(edited: bool) -> None:
    """A copy of the directory (a restored backup: new inodes) opened by a user who may not
    write: its files are verified by their content, so no out-of-step warning. A same-size
    edit far from the end of the copied JSON is still reported."""
    with shared_directory() as base:
        original = base / "original"
        with Ledger(original) as owner:
            for i in range(60):
                owner.log("M", "AAPL", sharpe=1.2345 if i == 3 else float(i), notes=f"note {i:02d}" * 5)
        want = read_all(original)
        directory = base / "ledger"
        shutil.copytree(original, directory)
        if edited:
            path = directory / "model_performance.json"
            data = path.read_bytes()
            assert data.count(b"1.2345") == 1 and data.index(b"1.2345") < len(data) - 4096
            path.write_bytes(data.replace(b"1.2345", b"1.2346"))
        make_foreign(directory)
        before = snapshot(directory)

        got, warnings = as_reader(lambda: read_with_warnings(directory))
        assert got["read_only"] is True
        assert_same_reads(got, want)
        if edited:
            assert len(warnings) == 1 and "mirror files are out of step" in warnings[0], warnings
        else:
            assert warnings == []
        assert snapshot(directory) == before


def test_a_mirror_the_reader_cannot_read_does_not_stop_reads() -> None:
    """Mirrors written 0600 by an older release: the database still answers."""
    with shared_directory() as base:
        directory = base / "ledger"
        with Ledger(directory) as owner:
            owner.log("M", "AAPL", sharpe=1.0)
        want = read_all(directory)
        make_foreign(directory)
        (directory / "model_performance.json").chmod(0o600 if IS_ROOT else 0o000)
        got = as_reader(lambda: read_all(directory))
        assert_same_reads(got, want)


def test_an_old_schema_needs_a_user_who_may_write(tmp_path: Path) -> None:
    with shared_directory() as base:
        directory = copy_v1_sqlite(base)
        read_all(copy_v1_sqlite(tmp_path))  # warm up (upgrades that copy)
        make_foreign(directory)
        before = snapshot(directory)

        def reader() -> str:
            try:
                Ledger(directory)
            except ReadOnlyLedgerError as exc:
                return str(exc)
            return "opened"

        message = as_reader(reader)
        assert "has schema v1 and needs upgrading" in message and f"v{current_version()}" in message
        assert "by a user who may write it" in message and "\n" not in message
        assert snapshot(directory) == before  # not upgraded, no backup made


def test_a_read_only_directory_without_a_ledger_is_refused_and_left_alone() -> None:
    with shared_directory() as base:
        seed = base / "seed_only"
        seed.mkdir()
        seed.chmod(0o755)
        (seed / "model_performance.json").write_text("[]")
        make_foreign(seed)
        make_foreign(base)
        before = snapshot(seed)

        def reader() -> list[str]:
            out = []
            for where in (seed, base / "missing"):
                try:
                    Ledger(where)
                    out.append("opened")
                except ReadOnlyLedgerError as exc:
                    out.append(str(exc))
            return out

        no_db, missing = as_reader(reader)
        assert no_db.startswith(f"{seed} holds no perfledger database yet, and this user may not create one")
        assert missing.startswith(f"{base / 'missing'} does not exist and this user may not create it")
        assert snapshot(seed) == before and not (base / "missing").exists()


# ---------------------------------------------------------------------------- immutable reads


@pytest.mark.parametrize("changed_at", [1, 2], ids=["row-read", "columnar-read"])
def test_an_immutable_read_that_overlaps_a_checkpoint_is_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changed_at: int
) -> None:
    """Without a -wal file the database is read immutable=1; when the owner changes the file
    during such a read (its checkpoint), the read is run again and sees the new state."""
    directory = tmp_path / "ledger"
    with Ledger(directory) as owner:
        owner.log("M", "AAPL", sharpe=1.0, metrics={"sortino": 1.0})
    store = SQLiteStore(resolve(directory).url, read_only=True)
    calls: list[bool] = []
    original = ReadOnlyFile.uri

    def uri(self: ReadOnlyFile) -> tuple[str, Any]:
        text, signature = original(self)
        calls.append(signature is not None)
        if len(calls) == changed_at:  # the owner logs and closes: a checkpoint writes the file
            with Ledger(directory) as writer:
                writer.log("M", "AAPL", sharpe=2.0, metrics={"sortino": 2.0})
        return text, signature

    monkeypatch.setattr(ReadOnlyFile, "uri", uri)
    from perfledger.store.base import HistoryQuery

    rows = store.history(HistoryQuery())
    assert rows.records.num_rows == 2 and rows.extras is not None and rows.extras.num_rows == 2
    assert calls[0] is True  # immutable
    assert len(calls) > 3  # the read ran again
    with pytest.raises(ReadOnlyLedgerError):
        store.writing().__enter__()
    store.dispose()

