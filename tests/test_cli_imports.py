"""Which heavy libraries each command imports: a command line that starts like a small tool.

Each command runs in a fresh interpreter (what a user's shell starts), on a real ledger, and
the test reads ``sys.modules`` after it: ``--help`` and ``--version`` import none of pandas,
pyarrow, SQLAlchemy, ADBC, numpy or pydantic (which Typer would import to coerce options:
:mod:`perfledger.cli.coercion`), and neither do ``log``, ``best``, ``tickers``, ``check``
and ``history`` (plain filters, every format) on a SQLite ledger directory (stdlib
``sqlite3``, :mod:`perfledger.store.sqlite.direct`, :mod:`perfledger.store.sqlite.direct_reads`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pandas", "pyarrow", "pyarrow.dataset", "sqlalchemy", "adbc_driver_manager", "numpy", "pydantic")

_RUN = (
    "import json, sys, runpy\n"
    "sys.argv = ['perfledger', *json.loads(sys.argv[1])]\n"
    "try:\n"
    "    runpy.run_module('perfledger', run_name='__main__')\n"
    "except SystemExit as e:\n"
    "    code = e.code\n"
    f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
    "print('\\nRESULT', json.dumps([code, heavy]))\n"
)


def heavy_imports(*args: str) -> tuple[int, list[str], str]:
    """Run ``perfledger ARGS`` in a fresh interpreter: its exit code, the heavy modules it
    imported, and what it printed."""
    out = subprocess.run([sys.executable, "-c", _RUN, json.dumps(list(args))], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PERFLEDGER_URL": "/nonexistent/x"})
    printed, _, result = out.stdout.rpartition("\nRESULT ")
    assert result, out.stderr
    code, heavy = json.loads(result)
    return code or 0, heavy, printed


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from perfledger import Ledger

    d = tmp_path_factory.mktemp("cli-imports") / "logs"
    with Ledger(d) as led:
        led.log("LSTM_v1", "AAPL", sharpe=1.5, mse=0.02, params={"epochs": 5}, tags={"run": "a"})
        led.log("GRU", "MSFT", sharpe=0.5)
    return d


@pytest.mark.slow
@pytest.mark.parametrize("args", [("--help",), ("--version",), ("log", "--help")])
def test_help_and_version_import_no_heavy_library(args: tuple[str, ...]) -> None:
    code, heavy, printed = heavy_imports(*args)
    assert code == 0 and printed.strip()
    assert heavy == []


@pytest.mark.slow
def test_log_imports_no_heavy_library(ledger_dir: Path) -> None:
    code, heavy, printed = heavy_imports("--store", str(ledger_dir), "log", "--model", "XGB",
                                         "--ticker", "AAPL", "--sharpe", "2.5", "--param", "depth=6")
    assert code == 0, printed
    assert heavy == []
    from perfledger import Ledger

    with Ledger(ledger_dir) as led:  # it was stored, and it is the new best
        assert led.best("AAPL")["best_sharpe"]["model"] == "XGB"
        assert (ledger_dir / "best_models.json").read_text().count('"XGB"') == 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_best_imports_no_heavy_library(ledger_dir: Path, fmt: str) -> None:
    code, heavy, printed = heavy_imports("--store", str(ledger_dir), "best", "--format", fmt)
    assert code == 0, printed
    assert heavy == []
    assert "LSTM_v1" in printed or "XGB" in printed


@pytest.mark.slow
def test_tickers_imports_no_heavy_library(ledger_dir: Path) -> None:
    code, heavy, printed = heavy_imports("--store", str(ledger_dir), "tickers")
    assert code == 0
    assert printed.split() == ["AAPL", "MSFT"]
    assert heavy == []


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "sharpe", "--min", "1"),
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "sharpe", "--min", "9", "--days", "30"),
    ("--ticker", "MSFT", "--model", "GRU", "--metric", "custom_never_logged", "--max", "1"),
])
def test_check_imports_no_heavy_library(ledger_dir: Path, args: tuple[str, ...]) -> None:
    code, heavy, printed = heavy_imports("--store", str(ledger_dir), "check", *args)
    assert code in (0, 1), printed
    assert heavy == []


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize("args", [(), ("--ticker", "AAPL", "--model", "LSTM_v1"),
                                  ("--ticker", "AAPL", "--days", "30", "--min", "sharpe=0", "--limit", "5")])
def test_history_imports_no_heavy_library(ledger_dir: Path, fmt: str, args: tuple[str, ...]) -> None:
    code, heavy, printed = heavy_imports("--store", str(ledger_dir), "history", *args, "--format", fmt)
    assert code == 0, printed
    assert heavy == []
    assert "LSTM_v1" in printed
