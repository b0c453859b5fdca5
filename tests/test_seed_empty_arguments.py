"""The seed's functions treat empty arguments as "no filter" (issue 20, item 9).

The origin wrote ``if ticker:``, ``if model_name:``, ``if days_back:``: ``""`` and ``0`` filter
nothing, exactly as ``None``. The ``perfledger`` API itself may keep refusing a blank ticker.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from memory.model_log import (
    get_available_models,
    get_best_models,
    get_model_performance_history,
    log_model_performance,
)
from perfledger import Ledger, ValidationError


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PERFLEDGER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    log_model_performance("LSTM_v1", "AAPL", sharpe=1.5)
    log_model_performance("XGB", "MSFT", sharpe=0.5)
    return tmp_path


def test_empty_filters_are_no_filters() -> None:
    everything = get_model_performance_history()
    assert len(everything) == 2
    for kwargs in ({"ticker": ""}, {"model_name": ""}, {"days_back": 0}, {"days_back": 0.0},
                   {"ticker": "", "model_name": "", "days_back": 0}):
        pd.testing.assert_frame_equal(get_model_performance_history(**kwargs), everything)
    assert get_best_models("") == get_best_models() and set(get_best_models("")) == {"AAPL", "MSFT"}
    assert get_available_models("") == get_available_models() == ["LSTM_v1", "XGB"]


def test_real_filters_still_filter() -> None:
    assert get_model_performance_history(ticker="AAPL")["ticker"].tolist() == ["AAPL"]
    assert get_model_performance_history(model_name="XGB")["model_name"].tolist() == ["XGB"]
    assert get_available_models("MSFT") == ["XGB"]
    with pytest.raises(ValidationError):  # a NaN is not empty: the library's rule names it
        get_model_performance_history(days_back=float("nan"))


def test_the_library_still_refuses_a_blank_ticker(workdir: Path) -> None:
    with Ledger(workdir / "memory" / "logs") as led, pytest.raises(ValidationError, match="ticker"):
        led.history(ticker="")
