"""One test per validation rule: a rejected call names the field and the value, and changes
nothing already stored."""

from __future__ import annotations

import json
import math
from datetime import datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from perfledger import Ledger, ValidationError


def snapshot(led: Ledger) -> tuple:
    d = led.directory
    files = tuple((d / n).read_bytes() for n in
                  ("model_performance.json", "model_performance.csv", "best_models.json"))
    return (led.stats()["records"], json.dumps(led.best(), sort_keys=True), files)


@pytest.fixture
def seeded(ledger: Ledger) -> Ledger:
    ledger.log("Base", "AAPL", sharpe=1.0, mse=0.01, win_rate=0.5, notes="kept")
    return ledger


@pytest.mark.parametrize(
    ("kwargs", "exc", "fragments"),
    [
        ({"sharpe": float("nan")}, ValidationError, ["sharpe", "nan"]),
        ({"sharpe": float("inf")}, ValidationError, ["sharpe", "inf"]),
        ({"mse": -float("inf")}, ValidationError, ["mse", "inf"]),
        ({"sharpe": True}, TypeError, ["sharpe", "bool", "True"]),
        ({"accuracy": np.bool_(True)}, TypeError, ["accuracy"]),
        ({"sharpe": "1.5"}, TypeError, ["sharpe", "str", "'1.5'"]),
        ({"sharpe": [1.5]}, TypeError, ["sharpe", "list"]),
        ({"win_rate": 68}, ValidationError, ["win_rate=68", "0.68"]),
        ({"accuracy": 72.5}, ValidationError, ["accuracy=72.5", "0.725"]),
        ({"accuracy": -0.1}, ValidationError, ["accuracy=-0.1", "[0, 1]"]),
        ({"mse": -0.01}, ValidationError, ["mse=-0.01", ">= 0"]),
        ({"drawdown": 0.2}, ValidationError, ["drawdown=0.2", "-0.2"]),
        ({"metrics": {"sortino": float("nan")}}, ValidationError, ["sortino", "nan"]),
        ({"metrics": {"bad name": 1.0}}, ValidationError, ["'bad name'"]),
        ({"metrics": {"sharpe": 1.0}}, ValidationError, ["'sharpe'", "reserved"]),
        ({"metrics": {"x": "1"}}, TypeError, ["x", "str"]),
        ({"params": {"lr": float("nan")}}, ValidationError, ["params['lr']"]),
        ({"params": {"f": object()}}, ValidationError, ["params['f']"]),
        ({"tags": {"env": 3}}, TypeError, ["tags['env']", "int"]),
        ({"notes": 5}, TypeError, ["notes", "int"]),
        ({"notes": "bad \ud800 surrogate"}, ValidationError, ["notes"]),
        ({"timestamp": "yesterday"}, ValidationError, ["timestamp", "'yesterday'"]),
        ({"timestamp": 1700000000}, TypeError, ["timestamp", "int"]),
        ({"timestamp": "1492-10-12T00:00:00"}, ValidationError, ["timestamp", "range"]),
    ],
)
def test_bad_metric_values_are_rejected_and_change_nothing(
    seeded: Ledger, kwargs: dict, exc: type, fragments: list[str]
) -> None:
    before = snapshot(seeded)
    with pytest.raises(exc) as info:
        seeded.log("M", "AAPL", **kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
    assert snapshot(seeded) == before


def test_validation_error_is_a_value_error() -> None:
    assert issubclass(ValidationError, ValueError)


@pytest.mark.parametrize(
    ("field", "value", "exc", "fragment"),
    [
        ("ticker", "", ValidationError, "blank"),
        ("ticker", "   ", ValidationError, "blank"),
        ("ticker", "AA\nPL", ValidationError, "control"),
        ("ticker", "AA\x00PL", ValidationError, "control"),
        ("ticker", " AAPL", ValidationError, "'AAPL'"),
        ("ticker", None, TypeError, "NoneType"),
        ("ticker", 42, TypeError, "int"),
        ("model_name", "", ValidationError, "blank"),
        ("model_name", "x" * 201, ValidationError, "201"),
        ("model_name", b"LSTM", TypeError, "bytes"),
    ],
)
def test_bad_labels_are_rejected(seeded: Ledger, field: str, value, exc, fragment: str) -> None:
    before = snapshot(seeded)
    args = {"model_name": "M", "ticker": "AAPL", field: value}
    with pytest.raises(exc) as info:
        seeded.log(args["model_name"], args["ticker"], sharpe=1.0)
    assert field in str(info.value) and fragment in str(info.value)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("ticker", ["BRK.B", "BTC-USD", "^GSPC", "EURUSD=X", "7203.T",
                                    "../../etc/passwd", "a/b\\c", "日経225"])
def test_real_tickers_pass_verbatim_and_never_become_paths(ledger: Ledger, ticker: str) -> None:
    ledger.log("M", ticker, sharpe=1.0)
    assert ledger.tickers() == [ticker]
    assert ledger.history(ticker=ticker)["ticker"].tolist() == [ticker]
    assert ledger.best(ticker)["best_sharpe"]["model"] == "M"
    # The ledger directory holds exactly its database, the three seed files and the journal
    # of their appends.
    names = {p.name for p in ledger.directory.iterdir()}
    assert names <= {"perfledger.db", "perfledger.db-wal", "perfledger.db-shm",
                     "model_performance.json", "model_performance.csv", "best_models.json",
                     ".perfledger-journal"}
    assert not (ledger.directory.parent / "etc").exists()


def test_numbers_of_any_real_type_are_accepted(ledger: Ledger) -> None:
    rec = ledger.log("M", "T", sharpe=np.float32(1.5), mse=Decimal("0.25"), drawdown=-1,
                     win_rate=np.int64(1), accuracy=0)
    assert rec["sharpe"] == 1.5 and rec["mse"] == 0.25 and rec["drawdown"] == -1.0
    assert isinstance(rec["win_rate"], float)


def test_boundaries_are_inclusive(ledger: Ledger) -> None:
    ledger.log("M", "T", win_rate=0.0, accuracy=1.0, mse=0.0, drawdown=0.0)
    assert ledger.stats()["records"] == 1


def test_notes_are_stored_exactly_even_a_megabyte(ledger: Ledger) -> None:
    notes = ('comma, "quote"\nnewline\r\nunicode é 漢字 🚀\ttab \x01 ctrl ' * 20_000)[:1_000_000]
    ledger.log("M", "T", sharpe=1.0, notes=notes)
    assert ledger.history()["notes"].iloc[0] == notes
    from helpers import csv_records, mirror_records

    assert mirror_records(ledger.directory)[0]["notes"] == notes
    assert csv_records(ledger.directory)[0]["notes"] == notes


def test_timestamps_are_utc_and_naive_means_utc(ledger: Ledger) -> None:
    ledger.log("M", "T", timestamp=datetime(2024, 1, 15, 10, 30))
    ledger.log("M", "T", timestamp="2024-01-15T12:30:00+02:00")
    ledger.log("M", "T", timestamp=pd.Timestamp("2024-01-15 10:30:00.123456", tz="UTC"))
    h = ledger.history()
    assert str(h["timestamp"].dt.tz) == "UTC"
    assert h["timestamp"].astype("int64").tolist()[0] == h["timestamp"].astype("int64").tolist()[1]
    assert ledger.history()["timestamp"].iloc[-1].microsecond == 123456
    assert ledger.best("T")["best_sharpe"]["model"] is None


def test_history_arguments_are_checked(ledger: Ledger) -> None:
    with pytest.raises(ValidationError, match="days_back=-1"):
        ledger.history(days_back=-1)
    with pytest.raises(TypeError, match="days_back"):
        ledger.history(days_back="7")
    with pytest.raises(ValidationError, match="since"):
        ledger.history(since="not a date")
    with pytest.raises(ValidationError, match="at_least"):
        ledger.history(at_least={"sharpe": math.nan})


def test_batch_errors_list_every_bad_row_and_store_nothing(seeded: Ledger) -> None:
    before = snapshot(seeded)
    rows = [
        {"model_name": "A", "ticker": "T", "sharpe": 1.0},
        {"model_name": "A", "ticker": "T", "win_rate": 68},
        {"model_name": "", "ticker": "T"},
        {"model_name": "A", "ticker": "T", "drawdown": 0.3, "mse": -1},
        {"model_name": "A", "ticker": "T", "sharpe": "abc"},
    ]
    with pytest.raises(ValidationError) as info:
        seeded.log_many(rows)
    problems = {(row, field) for row, field, _ in info.value.problems}
    assert problems == {(1, "win_rate"), (2, "model_name"), (3, "drawdown"), (3, "mse"), (4, "sharpe")}
    msg = str(info.value)
    assert "row 1" in msg and "0.68" in msg and "nothing was stored" in msg
    assert snapshot(seeded) == before


def test_batch_infinity_in_a_float_column_is_rejected(seeded: Ledger) -> None:
    frame = pd.DataFrame({"model_name": ["A", "B"], "ticker": ["T", "T"],
                          "sharpe": [1.0, np.inf]}, index=[10, 11])
    with pytest.raises(ValidationError) as info:
        seeded.log_many(frame)
    assert [(r, f) for r, f, _ in info.value.problems] == [(11, "sharpe")]
