"""The seed specification's own test coverage list, against the seed-compatible module.

Runs as the seed documents: ``python -m pytest tests/test_model_performance_logging.py -v``
or ``python tests/test_model_performance_logging.py``. Every test works in its own temporary
directory, where ``memory/logs`` is resolved, exactly as user code would.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # when run as a plain script
    sys.path.insert(0, str(ROOT))

from memory.model_log import (  # noqa: E402
    clear_model_performance_log,
    ensure_log_directory,
    get_available_models,
    get_available_tickers,
    get_best_models,
    get_model_performance_history,
    log_model_performance,
)

SEED_KEYS = ["timestamp", "ticker", "model_name", "sharpe", "mse", "drawdown", "total_return",
             "win_rate", "accuracy", "notes"]


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PERFLEDGER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def log_aapl(**overrides: object) -> dict:
    kwargs = dict(model_name="LSTM_v1", ticker="AAPL", sharpe=1.85, mse=0.0234, drawdown=-0.12,
                  total_return=0.25, win_rate=0.68, accuracy=0.72, notes="LSTM model with 50 epochs")
    kwargs.update(overrides)
    return log_model_performance(**kwargs)


# --- Performance logging functionality ---------------------------------------------------

def test_log_returns_the_seed_record(workdir: Path) -> None:
    before = datetime.now(UTC)
    rec = log_aapl()
    assert list(rec)[:10] == SEED_KEYS
    assert rec["model_name"] == "LSTM_v1" and rec["ticker"] == "AAPL"
    assert rec["sharpe"] == 1.85 and rec["mse"] == 0.0234 and rec["drawdown"] == -0.12
    assert rec["total_return"] == 0.25 and rec["win_rate"] == 0.68 and rec["accuracy"] == 0.72
    assert rec["notes"] == "LSTM model with 50 epochs"
    ts = datetime.fromisoformat(rec["timestamp"])
    assert before - timedelta(seconds=1) <= ts <= datetime.now(UTC) + timedelta(seconds=1)


def test_log_writes_the_seed_files(workdir: Path) -> None:
    log_aapl()
    log_aapl(model_name="XGBoost_v2", ticker="GOOGL", sharpe=2.1)
    logs = workdir / "memory" / "logs"
    records = json.loads((logs / "model_performance.json").read_text())
    assert [r["model_name"] for r in records] == ["LSTM_v1", "XGBoost_v2"]
    assert list(records[0])[:10] == SEED_KEYS
    csv = pd.read_csv(logs / "model_performance.csv")
    assert list(csv.columns[:10]) == SEED_KEYS
    assert csv["sharpe"].tolist() == [1.85, 2.1]
    best = json.loads((logs / "best_models.json").read_text())
    assert best["GOOGL"]["best_sharpe"] == {
        "model": "XGBoost_v2", "value": 2.1, "timestamp": records[1]["timestamp"]
    }


# --- Data retrieval and filtering --------------------------------------------------------

def test_history_filters_by_ticker_model_and_days() -> None:
    now = datetime.now(UTC)
    log_aapl(timestamp=now - timedelta(days=40))
    log_aapl(model_name="XGBoost_v2", timestamp=now - timedelta(days=10))
    log_aapl(ticker="MSFT", timestamp=now - timedelta(days=1))
    assert len(get_model_performance_history()) == 3
    assert get_model_performance_history(ticker="AAPL")["ticker"].unique().tolist() == ["AAPL"]
    assert len(get_model_performance_history(ticker="AAPL")) == 2
    assert len(get_model_performance_history(model_name="XGBoost_v2")) == 1
    assert len(get_model_performance_history(days_back=30)) == 2
    assert len(get_model_performance_history(ticker="AAPL", days_back=30)) == 1
    assert get_model_performance_history(ticker="NOPE").empty


def test_history_is_chronological_with_numeric_columns() -> None:
    now = datetime.now(UTC)
    log_aapl(sharpe=1.0, timestamp=now - timedelta(days=2))
    log_aapl(sharpe=3.0)
    log_aapl(sharpe=2.0, timestamp=now - timedelta(days=1))  # backfilled
    h = get_model_performance_history(ticker="AAPL")
    assert h["sharpe"].tolist() == [1.0, 2.0, 3.0]
    assert h["sharpe"].iloc[-1] == 3.0  # the seed's monitoring example reads the latest this way
    assert pd.api.types.is_datetime64_any_dtype(h["timestamp"])
    for m in ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy"):
        assert pd.api.types.is_float_dtype(h[m]), m


def test_empty_history_still_has_the_seed_columns() -> None:
    h = get_model_performance_history()
    assert h.empty
    assert list(h.columns) == SEED_KEYS


# --- Best models tracking ------------------------------------------------------------------

def test_best_models_per_metric_and_direction() -> None:
    log_aapl(model_name="A", sharpe=1.0, mse=0.03, drawdown=-0.2)
    log_aapl(model_name="B", sharpe=2.0, mse=0.05, drawdown=-0.05)
    log_aapl(model_name="C", sharpe=1.5, mse=0.01, drawdown=-0.3)
    best = get_best_models("AAPL")
    assert best["best_sharpe"]["model"] == "B" and best["best_sharpe"]["value"] == 2.0
    assert best["best_mse"]["model"] == "C" and best["best_mse"]["value"] == 0.01
    assert best["best_drawdown"]["model"] == "B" and best["best_drawdown"]["value"] == -0.05
    assert set(best) == {f"best_{m}" for m in
                         ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")}
    assert get_best_models()["AAPL"] == best
    assert get_best_models("UNKNOWN") == {}


# --- Available tickers and models ------------------------------------------------------

def test_available_tickers_and_models() -> None:
    assert get_available_tickers() == [] and get_available_models() == []
    log_aapl()
    log_aapl(model_name="XGBoost_v2", ticker="GOOGL")
    log_aapl(model_name="Transformer_v1", ticker="BRK.B")
    assert get_available_tickers() == ["AAPL", "BRK.B", "GOOGL"]
    assert get_available_models() == ["LSTM_v1", "Transformer_v1", "XGBoost_v2"]
    assert get_available_models("GOOGL") == ["XGBoost_v2"]
    assert get_available_models("NOPE") == []


# --- Data persistence ----------------------------------------------------------------------

@pytest.mark.slow
def test_data_persists_across_processes(workdir: Path) -> None:
    log_aapl()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from memory.model_log import get_model_performance_history as h, get_best_models as b;"
        "df = h(); print(len(df), df['sharpe'].iloc[0], b('AAPL')['best_sharpe']['model'])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], cwd=workdir,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1.85", "LSTM_v1"]


def test_deleting_and_restoring_the_log_directory(workdir: Path) -> None:
    logs = workdir / "memory" / "logs"
    log_aapl()
    backup = workdir / "backup"
    shutil.copytree(logs, backup)
    shutil.rmtree(logs)
    assert get_model_performance_history().empty  # a fresh, empty ledger — not the deleted file
    log_aapl(model_name="AfterDelete")
    assert get_available_models() == ["AfterDelete"]
    shutil.rmtree(logs)
    shutil.copytree(backup, logs)  # restore the backup taken before
    assert get_available_models() == ["LSTM_v1"]
    log_aapl(model_name="AfterRestore")
    assert get_available_models() == ["AfterRestore", "LSTM_v1"]
    assert [r["model_name"] for r in json.loads((logs / "model_performance.json").read_text())] == [
        "LSTM_v1", "AfterRestore"
    ]


def test_each_working_directory_has_its_own_ledger(workdir: Path, monkeypatch) -> None:
    log_aapl()
    other = workdir / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    assert get_available_tickers() == []
    assert ensure_log_directory() == other / "memory" / "logs"
    assert ensure_log_directory().is_dir()


# --- Optional parameters handling ----------------------------------------------------------

def test_optional_parameters_default_to_none() -> None:
    rec = log_model_performance("Minimal", "AAPL", sharpe=0.5)
    assert rec["mse"] is None and rec["accuracy"] is None and rec["notes"] == ""
    rec2 = log_model_performance("Bare", "AAPL")
    assert all(rec2[m] is None for m in ("sharpe", "mse", "drawdown"))
    best = get_best_models("AAPL")
    assert best["best_sharpe"]["model"] == "Minimal"
    assert best["best_mse"] == {"model": None, "value": None, "timestamp": None}
    h = get_model_performance_history(ticker="AAPL")
    assert h["mse"].isna().all()


# --- Data clearing functionality -----------------------------------------------------------

def test_clear_removes_everything(workdir: Path) -> None:
    log_aapl()
    clear_model_performance_log()
    assert get_model_performance_history().empty
    assert get_available_tickers() == [] and get_best_models() == {}
    logs = workdir / "memory" / "logs"
    assert json.loads((logs / "model_performance.json").read_text()) == []
    assert json.loads((logs / "best_models.json").read_text()) == {}
    log_aapl(model_name="Again")
    assert get_available_models() == ["Again"]


# --- Debug mode ----------------------------------------------------------------------------

def test_debug_logging_shows_what_it_does(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="perfledger"):
        log_aapl()
    assert any("AAPL" in r.getMessage() and r.name == "perfledger" for r in caplog.records)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
