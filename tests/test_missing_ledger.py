"""A read of a ledger that does not exist leaves nothing on disk.

A mistyped ``--store``, a dashboard pointed at the wrong directory, a script reading before
anything was logged: every read (the library's, the command line's, the seed module's, the
dashboard's) of a directory or SQLite file that does not exist answers as an empty ledger
does and creates nothing, not the directory, not an empty ``perfledger.db``. The first write
creates them. Each test looks at the disk itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import run_cli

from perfledger import Ledger


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _read_everything(led: Ledger) -> None:
    assert led.history().empty and led.records() == [] and led.count() == 0
    assert led.best() == {} and led.best("AAPL") == {}
    assert led.tickers() == [] and led.models() == [] and led.params() == {} and led.tags() == {}
    assert led.leaderboard().empty and led.decay().empty
    stats = led.stats()
    assert stats["records"] == 0 and stats["cleared"] == 0
    led.info()


@pytest.mark.parametrize("where", ["missing", "missing/and/deeper", "empty-directory"])
def test_reads_of_a_missing_ledger_directory_create_nothing(tmp_path: Path, where: str) -> None:
    (tmp_path / "empty-directory").mkdir()
    before = _tree(tmp_path)
    with Ledger(tmp_path / where) as led:
        _read_everything(led)
        assert not led.read_only
    with Ledger(tmp_path / where, mirrors=False) as led:
        _read_everything(led)
    assert _tree(tmp_path) == before
    with Ledger(tmp_path / where) as led:  # the first write creates the directory and the files
        led.log("M", "AAPL", sharpe=1.0)
        assert led.tickers() == ["AAPL"]
    assert (tmp_path / where / "perfledger.db").is_file()
    assert (tmp_path / where / "model_performance.json").is_file()
    with Ledger(tmp_path / where) as led:
        assert len(led.history()) == 1


def test_reads_of_a_missing_sqlite_file_create_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Ledger(url) as led:
        _read_everything(led)
    assert _tree(tmp_path) == []
    with Ledger(url) as led:
        led.log("M", "AAPL", sharpe=1.0)
    assert (tmp_path / "ledger.db").is_file()


def test_a_ledger_created_by_another_process_after_the_open_is_read_and_written(tmp_path: Path) -> None:
    d = tmp_path / "later"
    reader = Ledger(d)
    assert reader.tickers() == [] and not d.exists()
    with Ledger(d) as writer:
        writer.log("M", "AAPL", sharpe=1.0)
    assert reader.tickers() == ["AAPL"]
    reader.log("M", "MSFT", sharpe=2.0)
    assert reader.tickers() == ["AAPL", "MSFT"]
    reader.close()
    with Ledger(d) as again:
        assert len(again.history()) == 2


def test_a_sync_or_copy_from_a_missing_ledger_creates_nothing_there(tmp_path: Path) -> None:
    target = tmp_path / "target"
    with Ledger(tmp_path / "missing") as source:
        assert source.sync(target).new == 0
        assert source.copy_to(tmp_path / "copy") == 0
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", [
    ["history"], ["best"], ["tickers"], ["models"], ["stats"], ["leaderboard"],
    ["history", "--format", "json"], ["best", "--ticker", "AAPL"],
])
def test_the_command_lines_reads_of_a_missing_ledger_create_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    for store in (tmp_path / "nothing-here", f"sqlite:///{tmp_path / 'nothing.db'}"):
        out = run_cli("--store", str(store), *command)
        assert out.returncode == 0, out.stderr
    assert _tree(tmp_path) == []


def test_the_seed_module_reads_create_nothing_but_ensure_log_directory_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memory import model_log

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFLEDGER_URL", raising=False)
    assert model_log.get_model_performance_history().empty
    assert model_log.get_best_models() == {} and model_log.get_available_tickers() == []
    assert _tree(tmp_path) == []
    assert model_log.ensure_log_directory().is_dir()
    model_log.log_model_performance("M", "AAPL", sharpe=1.0)
    assert (tmp_path / "memory" / "logs" / "perfledger.db").is_file()


def test_the_dashboards_open_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from perfledger.dashboard import data

    where = str(tmp_path / "dash")
    monkeypatch.setenv("PERFLEDGER_URL", where)
    data.get_ledger.clear()
    assert data.stats(where)["records"] == 0
    data.access(where)  # what the page asks first: may this run write?
    assert data.get_ledger(where).history().empty
    data.get_ledger.clear()
    assert _tree(tmp_path) == []
