"""A backtest's return series is kept with its record (schema v7), exactly, on both engines:
read back bit for bit, moved by a clear, brought back by a restore, deleted by a purge;
bad series are refused by name with nothing stored."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from perfledger import Ledger, ValidationError


def _daily(seed: int, n: int = 300, start: str = "2015-01-02") -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n, tz="UTC")
    return pd.Series(rng.normal(0.0004, 0.011, n), index=idx)


def _raw(led: Ledger, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(led.url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_a_series_with_dates_comes_back_exactly(any_ledger: Ledger) -> None:
    r = _daily(1)
    r.iloc[3] = 0.1 + 0.2  # a float whose text form would round
    any_ledger.log_backtest("Sweep", "AAPL", r)
    hist = any_ledger.history(ticker="AAPL", include_meta=True)
    assert hist["has_returns"].tolist() == [True]
    back = any_ledger.returns(int(hist["record_id"].iat[0]))
    assert back.dtype == np.float64
    assert back.to_numpy().tobytes() == r.to_numpy(dtype=np.float64).tobytes()  # bit for bit
    assert (back.index == r.index).all() and str(back.index.tz) == "UTC"


def test_the_stored_bytes_are_little_endian_float64_and_int64_microseconds(any_ledger: Ledger) -> None:
    r = pd.Series([0.01, -0.02, 0.5], index=pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-06"]))
    any_ledger.log_backtest("M", "AAPL", r)
    ((n, vals, dates),) = _raw(any_ledger, "SELECT n, vals, dates FROM pl_returns")
    assert n == 3
    assert struct.unpack("<3d", bytes(vals)) == (0.01, -0.02, 0.5)
    epoch, us = pd.Timestamp("1970-01-01"), pd.Timedelta(microseconds=1)
    days = ["2020-01-01", "2020-01-02", "2020-01-06"]
    assert struct.unpack("<3q", bytes(dates)) == tuple((pd.Timestamp(d) - epoch) // us for d in days)


def test_a_list_keeps_its_order_and_no_dates(any_ledger: Ledger) -> None:
    values = [0.01, -0.005, 0.002, 0.0]
    any_ledger.log_backtest("M", "AAPL", values)
    rid = int(any_ledger.history(include_meta=True)["record_id"].iat[0])
    back = any_ledger.returns(rid)
    assert back.tolist() == values and list(back.index) == [0, 1, 2, 3]
    assert _raw(any_ledger, "SELECT dates FROM pl_returns") == [(None,)]


def test_keep_returns_false_keeps_none_and_history_says_so(any_ledger: Ledger) -> None:
    any_ledger.log_backtest("M", "AAPL", _daily(2), keep_returns=False)
    hist = any_ledger.history(include_meta=True)
    assert hist["has_returns"].tolist() == [False]
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_returns") == [(0,)]
    with pytest.raises(ValidationError, match="record_id"):
        any_ledger.returns(int(hist["record_id"].iat[0]))


def _dated(*days: str) -> pd.Series:
    return pd.Series([0.01] * len(days), index=pd.to_datetime(list(days)))


BAD = [
    pytest.param([0.01, float("nan"), 0.02], "not a finite", id="nan"),
    pytest.param([0.01, float("inf")], "not a finite", id="inf"),
    pytest.param([0.01], "at least 2", id="one-period"),
    pytest.param(_dated("2020-01-02", "2020-01-01", "2020-01-03"), "out of order", id="unsorted-dates"),
    pytest.param(_dated("2020-01-01", "2020-01-02", "2020-01-02"), "duplicated", id="duplicated-dates"),
    pytest.param(pd.Series([0.01, 0.02], index=pd.DatetimeIndex(["2020-01-01", None])), "NaT", id="nat"),
]


@pytest.mark.parametrize("bad, message", BAD)
def test_bad_returns_are_refused_by_name_and_nothing_is_stored(any_ledger: Ledger, bad: Any,
                                                               message: str) -> None:
    any_ledger.log_backtest("Before", "AAPL", [0.01, 0.02, -0.01])
    before = any_ledger.records()
    with pytest.raises(ValidationError, match=message) as info:
        any_ledger.log_backtest("Bad", "AAPL", bad)
    assert any(p[1] == "returns" for p in info.value.problems)
    assert "returns" in str(info.value)
    assert any_ledger.records() == before
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_returns") == [(1,)]


def test_keep_returns_must_be_a_bool(ledger: Ledger) -> None:
    for bad in ("no", 0, 1, None, np.int64(0), [False]):
        with pytest.raises(ValidationError, match=r"keep_returns must be True or False, got") as info:
            ledger.log_backtest("M", "AAPL", [0.01, 0.02], keep_returns=bad)  # type: ignore[arg-type]
        assert any(p[1] == "keep_returns" for p in info.value.problems)
        assert isinstance(info.value, TypeError)
    assert ledger.history().empty


def test_numpy_bools_are_bools_for_keep_returns(any_ledger: Ledger) -> None:
    """np.False_ (a flag read from an array) keeps nothing, as False does; np.True_ keeps."""
    any_ledger.log_backtest("No", "AAPL", _daily(3), keep_returns=np.False_)  # type: ignore[arg-type]
    any_ledger.log_backtest("Yes", "AAPL", _daily(4), keep_returns=np.bool_(True))  # type: ignore[arg-type]
    hist = any_ledger.history(include_meta=True)
    assert dict(zip(hist["model_name"], hist["has_returns"], strict=True)) == {"No": False, "Yes": True}
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_returns") == [(1,)]


def test_nanosecond_dates_are_kept_exactly_or_refused(any_ledger: Ledger) -> None:
    """Dates are kept to the microsecond: a nanosecond index of whole microseconds comes back
    as the same instants; a stamp with a nanosecond part (which the conversion would truncate,
    two of them in one microsecond reading as a duplicate) is refused, naming ``returns``,
    with nothing stored."""
    whole = pd.DatetimeIndex(["2024-03-01 14:30:00.000001", "2024-03-01 14:30:00.000002",
                              "2024-03-04 09:00:00"]).as_unit("ns")
    any_ledger.log_backtest("Whole", "AAPL", pd.Series([0.01, -0.02, 0.003], index=whole))
    rid = int(any_ledger.history(include_meta=True)["record_id"].iat[0])
    back = any_ledger.returns(rid)
    assert back.index.as_unit("ns").asi8.tolist() == whole.tz_localize("UTC").asi8.tolist()
    before = any_ledger.records()
    for stamps in (["2024-03-01 14:30:00.000000001", "2024-03-01 14:30:00.000000900", "2024-03-04"],
                   ["2024-03-01 14:30:00", "2024-03-01 14:30:00.000001500", "2024-03-04"]):
        finer = pd.Series([0.01, -0.02, 0.003], index=pd.DatetimeIndex(stamps).as_unit("ns"))
        with pytest.raises(ValidationError, match=r"to the microsecond: .* has a nanosecond part") as info:
            any_ledger.log_backtest("Finer", "AAPL", finer)
        assert any(p[1] == "returns" for p in info.value.problems)
        assert "duplicated" not in str(info.value)
    assert any_ledger.records() == before
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_returns") == [(1,)]


def test_clear_moves_returns_restore_brings_them_back_purge_deletes(any_ledger: Ledger) -> None:
    series = {f"M{i}": _daily(10 + i) for i in range(3)}
    for name, r in series.items():
        any_ledger.log_backtest(name, "AAPL", r)
    any_ledger.log_backtest("NoKeep", "AAPL", _daily(99), keep_returns=False)
    any_ledger.clear()
    assert any_ledger.returns_frame().empty
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_returns") == [(0,)]
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_cleared_returns") == [(3,)]
    assert any_ledger.restore_cleared() == 4
    frame = any_ledger.returns_frame("AAPL")
    assert sorted(frame.attrs["model_name"].values()) == ["M0", "M1", "M2"]
    for rid, model in frame.attrs["model_name"].items():
        assert frame[rid].to_numpy().tobytes() == series[model].to_numpy().tobytes()
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_cleared_returns") == [(0,)]
    any_ledger.clear()
    assert any_ledger.purge_cleared() == 4
    assert _raw(any_ledger, "SELECT COUNT(*) FROM pl_cleared_returns") == [(0,)]
    assert any_ledger.restore_cleared() == 0 and any_ledger.returns_frame().empty


def test_returns_frame_aligns_on_dates_and_follows_the_filters(any_ledger: Ledger) -> None:
    a, b = _daily(1, 10), _daily(2, 10).iloc[3:]
    any_ledger.log_backtest("A", "AAPL", a, tags={"run": "s1"})
    any_ledger.log_backtest("B", "AAPL", b, tags={"run": "s1"})
    any_ledger.log_backtest("C", "MSFT", _daily(3, 10), tags={"run": "s2"})
    frame = any_ledger.returns_frame("AAPL")
    assert list(frame.index) == list(a.index)
    ra, rb = frame.columns
    assert frame[ra].tolist() == a.tolist()
    assert frame[rb].isna().sum() == 3 and frame[rb].dropna().tolist() == b.tolist()
    assert list(any_ledger.returns_frame(tags={"run": "s2"}).attrs["model_name"].values()) == ["C"]
    assert list(any_ledger.returns_frame(model_name="B").attrs["model_name"].values()) == ["B"]


def test_returns_frame_without_dates_aligns_on_order(ledger: Ledger) -> None:
    ledger.log_backtest("A", "AAPL", [0.01, 0.02, 0.03])
    ledger.log_backtest("B", "AAPL", [0.04, 0.05, 0.06])
    frame = ledger.returns_frame()
    assert frame.shape == (3, 2)
    assert frame.iloc[:, 1].tolist() == [0.04, 0.05, 0.06]
    ledger.log_backtest("C", "AAPL", [0.04, 0.05])  # another length: no order to match on
    with pytest.raises(ValidationError, match="different lengths"):
        ledger.returns_frame()


def test_copy_to_carries_the_returns(ledger: Ledger, tmp_path: Any) -> None:
    r = _daily(5)
    ledger.log_backtest("M", "AAPL", r)
    target = Ledger(tmp_path / "copy")
    assert ledger.copy_to(target) == 1
    (rid,) = target.returns_frame().columns
    assert target.returns(rid).to_numpy().tobytes() == r.to_numpy().tobytes()
    target.close()


def test_records_from_history_with_meta_do_not_take_the_meta_for_metrics(ledger: Ledger) -> None:
    ledger.log_backtest("M", "AAPL", [0.01, 0.02, -0.01])
    (rec,) = ledger.records()
    assert "record_id" not in rec["metrics"] and "has_returns" not in rec["metrics"]


# ---------------------------------------------------------------- a "returns" column in log_many


def test_log_many_keeps_a_column_of_series(ledger: Ledger) -> None:
    idx = pd.bdate_range("2024-01-01", periods=5, tz="UTC")
    s = pd.Series([0.01, -0.02, 0.0, 0.03, 0.01], index=idx)
    ledger.log_many(pd.DataFrame({"ticker": "AAPL", "model_name": ["a", "b"], "sharpe": [1.0, 2.0],
                                  "returns": [s, [0.01, 0.02, -0.01]]}))
    hist = ledger.history(include_meta=True)
    assert hist["has_returns"].tolist() == [True, True]
    pd.testing.assert_series_equal(ledger.returns(int(hist["record_id"].iat[0])), s, check_names=False,
                                   check_index_type=False, check_freq=False)
    assert "returns" not in hist.columns  # no custom metric of that name


@pytest.mark.parametrize("values", [[0.12, -0.03], [0.12, None], [1, 2]])
def test_log_many_reads_a_column_of_numbers_named_returns_as_a_custom_metric(ledger: Ledger,
                                                                            values: list) -> None:
    """A user's frame with a scalar total return called "returns": a custom metric, as any
    extra numeric column is, never a return series (nor refused as a bad one)."""
    frame = pd.DataFrame({"ticker": "AAPL", "model_name": ["a", "b"], "returns": values})
    assert ledger.log_many(frame) == 2
    hist = ledger.history(include_meta=True)
    assert hist["has_returns"].tolist() == [False, False]
    expected = [np.nan if v is None else float(v) for v in values]
    np.testing.assert_array_equal(hist["returns"].to_numpy(), expected)
    assert ledger.returns_frame().empty
    # rows given as dicts: the same
    assert ledger.log_many([{"ticker": "MSFT", "model_name": "c", "returns": 0.5}]) == 1
    assert ledger.history(ticker="MSFT")["returns"].tolist() == [0.5]


def test_log_many_refuses_numbers_mixed_with_series_naming_returns(ledger: Ledger) -> None:
    frame = pd.DataFrame({"ticker": "AAPL", "model_name": ["a", "b"], "returns": [[0.01, 0.02, 0.0], 0.12]})
    with pytest.raises(ValidationError, match=r"row 1: returns=0\.12 is a number in a column of return"):
        ledger.log_many(frame)
    assert ledger.count() == 0


def test_importing_a_csv_with_a_returns_column_of_numbers_keeps_it_as_a_metric(ledger: Ledger,
                                                                               tmp_path: Any) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("timestamp,ticker,model_name,sharpe,returns\n"
                    "2024-01-02T00:00:00+00:00,AAPL,a,1.5,0.12\n"
                    "2024-01-03T00:00:00+00:00,AAPL,b,0.5,\n", encoding="utf-8")
    from perfledger.files.importer import import_file

    report = import_file(ledger, path)
    assert report.imported == 2
    hist = ledger.history(include_meta=True)
    assert hist["has_returns"].tolist() == [False, False]
    assert hist["returns"].iat[0] == 0.12 and np.isnan(hist["returns"].iat[1])


def test_returns_of_an_unknown_or_cleared_record_says_so(ledger: Ledger) -> None:
    """Review #9: an unknown or cleared id was told to log with log_backtest."""
    ledger.log_backtest("A", "AAPL", [0.01, 0.02, 0.03])
    ledger.log("B", "AAPL", sharpe=1.0)
    with pytest.raises(ValidationError, match=r"no record 99999 .*highest record_id is 2\)"):
        ledger.returns(99999)
    with pytest.raises(ValidationError, match="logged without one"):
        ledger.returns(2)
    ledger.clear()
    with pytest.raises(ValidationError, match=r"no record 1 .*restore_cleared\(\)"):
        ledger.returns(1)
    ledger.restore_cleared()
    assert ledger.returns(1).tolist() == [0.01, 0.02, 0.03]
