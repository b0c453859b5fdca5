"""``Ledger.history(columns=[...])``: only the asked-for metrics are read (issue 23).

The dashboard's chart and its ticker switch read one metric of 100,000 rows instead of every
column; the values must be exactly those of the whole history, on both engines, with every
filter, with ``limit``, with custom metrics (asked for or not, stored or never stored), and
a bad name must fail naming the argument and the value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from perfledger import Ledger, ValidationError


def _fill(led: Ledger) -> None:
    led.log_many([
        {"model_name": f"M{i % 3}", "ticker": ("T1", "T2")[i % 2],
         "timestamp": f"2026-01-{1 + i % 28:02d}T00:00:{i % 60:02d}+00:00",
         "sharpe": None if i % 7 == 0 else i / 10, "mse": 0.01 * (i % 5), "notes": f"n{i}",
         "metrics": {"ic": i / 3, "turnover": i * 2.0} if i % 4 == 0 else None,
         "params": {"depth": i % 3}}
        for i in range(60)
    ])


@pytest.mark.parametrize("kwargs", [
    {},
    {"ticker": "T1"},
    {"ticker": "T2", "model_name": ["M0", "M2"]},
    {"ticker": "T1", "at_least": {"sharpe": 1.0}},
    {"ticker": "T1", "at_least": {"ic": 2.0}},
    {"ticker": "T2", "params": {"depth": 1}},
    {"ticker": "T1", "limit": 7},
])
@pytest.mark.parametrize("columns", [["sharpe"], ["mse", "notes"], ["ic"], ["sharpe", "turnover", "ic"],
                                     ["never_logged"], []])
def test_columns_are_the_whole_history_s(any_ledger: Ledger, kwargs: dict, columns: list[str]) -> None:
    _fill(any_ledger)
    whole = any_ledger.history(**kwargs)
    some = any_ledger.history(**kwargs, columns=columns)
    keys = ["timestamp", "ticker", "model_name"]
    assert list(some.columns[:3]) == keys
    assert set(some.columns) == set(keys) | set(columns)
    for name in columns:
        if name in whole.columns:
            pdt.assert_series_equal(some[name], whole[name], check_names=True)
        else:  # a custom metric never stored: NaN throughout, as history() gives a missing value
            assert some[name].dtype == np.float64 and some[name].isna().all()
    pdt.assert_frame_equal(some[keys], whole[keys])


def test_columns_none_is_every_column(any_ledger: Ledger) -> None:
    _fill(any_ledger)
    pdt.assert_frame_equal(any_ledger.history("T1", columns=None), any_ledger.history("T1"))


def test_columns_of_an_empty_answer_and_an_absent_ledger(tmp_path) -> None:
    led = Ledger(tmp_path / "nothing-here")
    frame = led.history("T1", columns=["sharpe"])
    assert frame.empty and list(frame.columns) == ["timestamp", "ticker", "model_name", "sharpe"]
    _fill(led)
    frame = led.history("NOPE", columns=["mse"])
    assert frame.empty and "mse" in frame.columns and "sharpe" not in frame.columns


@pytest.mark.parametrize(("columns", "error"), [
    ("sharpe", TypeError),  # a bare string is not a list of names
    ({"sharpe": 1}, TypeError),
    (["sharpe", "bad name"], ValidationError),
    (["model_name"], ValidationError),  # reserved: always there, never a metric
    ([3], TypeError),
])
def test_bad_columns_fail_naming_the_argument(ledger_dir, columns, error) -> None:
    led = Ledger(ledger_dir)
    _fill(led)
    with pytest.raises(error, match="columns") as info:
        led.history("T1", columns=columns)
    if error is ValidationError:
        assert repr(columns[-1]) in str(info.value)


def test_columns_read_fewer_values(ledger_dir) -> None:
    """The point of it: the frame holds only what was asked for (here 4 columns of 10)."""
    led = Ledger(ledger_dir)
    _fill(led)
    some = led.history("T1", columns=["sharpe"])
    assert isinstance(some, pd.DataFrame) and some.shape[1] == 4 < led.history("T1").shape[1]
