"""One validation rule for a return series on every door (review of issue 22, #1 #2 #7):
log_backtest, from_returns, log_many and a Parquet import refuse bools, text and complex
numbers (WrongTypeError naming returns) and a return below −1 (ValidationError), nothing
stored; a generator or iterator is read once and works again (it was consumed by the keeping
and then read as "0 periods")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perfledger import Ledger, ValidationError, WrongTypeError
from perfledger.files.importer import import_file
from perfledger.returns import from_returns

X = np.random.default_rng(0).normal(0, 0.01, 10)


def test_a_generator_or_iterator_logs_as_the_list_would(ledger: Ledger) -> None:
    want = ledger.log_backtest("L", "AAPL", list(X))
    gen = ledger.log_backtest("G", "AAPL", (v for v in X))
    it = ledger.log_backtest("I", "AAPL", iter(list(X)), keep_returns=False)
    assert gen["sharpe"] == want["sharpe"] == it["sharpe"]
    hist = ledger.history(include_meta=True).set_index("model_name")
    assert ledger.returns(int(hist.loc["G", "record_id"])).tolist() == list(X)
    assert not hist.loc["I", "has_returns"]


NOT_NUMBERS = [
    [True, False, True],
    np.array([True, False, True]),
    np.array(["0.1", "0.2", "0.3"], dtype=object),
    np.array(["0.1", "0.2", "0.3"]),
    ["0.1", "0.2", "0.3"],
    np.array([1 + 1j, 2, 3]),
    [0.1, 2j, 0.3],
]


@pytest.mark.parametrize("bad", NOT_NUMBERS)
def test_not_numbers_are_refused_on_every_door(ledger: Ledger, bad: object) -> None:
    with pytest.raises(WrongTypeError, match="returns"):
        ledger.log_backtest("M", "AAPL", bad)
    with pytest.raises(WrongTypeError, match="returns"):
        from_returns(bad)
    with pytest.raises(ValidationError, match="returns"):
        ledger.log_many([{"model_name": "M", "ticker": "T", "sharpe": 1.0, "returns": bad}])
    assert ledger.history().empty


def test_a_return_below_minus_one_is_refused_on_every_door(ledger: Ledger, tmp_path: Path) -> None:
    bad = [-3.0, 0.1, 0.2]
    row = {"model_name": "M", "ticker": "T", "sharpe": 1.0, "returns": bad}
    for call in (lambda: ledger.log_backtest("M", "T", bad), lambda: ledger.log_many([row])):
        with pytest.raises(ValidationError, match=r"returns\[0\]=-3.0 is below -1"):
            call()
    path = tmp_path / "lt-1.parquet"
    pq.write_table(pa.table({
        "timestamp": ["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"], "ticker": ["T", "T"],
        "model_name": ["Good", "Bad"],
        "returns": pa.array([[0.01, 0.02], bad], pa.list_(pa.float64())),
    }), path)
    report = import_file(ledger, path)
    assert report.imported == 0 and [r.field for r in report.rejected] == ["returns"]
    assert "below -1" in report.rejected[0].message
    assert ledger.history().empty


@pytest.mark.parametrize("series", [[0.01, 1e200, 0.02], [1e155, -0.5, 1e155, 0.0]])
def test_an_overflowing_series_is_one_refusal_without_numpy_warnings(
        ledger: Ledger, series: list[float]) -> None:
    """Returns of 1e200 overflow the moments: refused by name, once, and not preceded by
    numpy's own overflow warnings (five of them before: review of issue 22, finding 6)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValidationError, match=r"not finite numbers|largest number a float holds"):
            ledger.log_backtest("A", "T", series)
        with pytest.raises(ValidationError, match=r"not finite numbers|largest number a float holds"):
            from_returns(series)
    assert len(ledger.history()) == 0
