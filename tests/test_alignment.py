"""One rule matches kept return series period by period (records/alignment.py), and
returns_frame, overfitting (PBO), effective_trials (the DSR's N_eff) and the dashboard all
apply it: series that cannot be matched (dated mixed with undated, undated of different
lengths, different periods_per_year) are refused with one line naming ``returns``, never
answered with a number computed on misaligned periods (review of issue 22, #3 #4 #12 #17)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfledger import Ledger, ValidationError


def _dated(seed: int, start: str, n: int = 400) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(0, 0.01, n), index=pd.bdate_range(start, periods=n))


def _refused(led: Ledger, ticker: str, match: str) -> None:
    for call in (lambda: led.returns_frame(ticker=ticker), lambda: led.overfitting(ticker)):
        with pytest.raises(ValidationError, match=match) as err:
            call()
        assert "returns" in str(err.value) and "\n" not in str(err.value)
    assert led.effective_trials(ticker) is None


def test_one_undated_series_is_refused_not_aligned_by_position(ledger: Ledger) -> None:
    ledger.log_backtest("A", "T", _dated(1, "2020-01-01"))
    ledger.log_backtest("B", "T", _dated(2, "2021-01-01"))
    assert ledger.overfitting("T").n_periods == 128  # the dates both have
    ledger.log_backtest("C", "T", np.random.default_rng(3).normal(0, 0.01, 400))
    _refused(ledger, "T", "without dates.*with dates")
    # Leaving the undated one out by a filter works again, on the dates.
    assert ledger.overfitting("T", model_name=["A", "B"]).n_periods == 128


def test_undated_series_of_different_lengths_are_refused_everywhere(ledger: Ledger) -> None:
    rng = np.random.default_rng(0)
    ledger.log_backtest("A", "T", rng.normal(0, 0.01, 400))
    ledger.log_backtest("B", "T", rng.normal(0, 0.01, 300))
    _refused(ledger, "T", "different lengths .300, 400")
    ledger.log_backtest("C", "U", rng.normal(0, 0.01, 300))
    ledger.log_backtest("D", "U", rng.normal(0, 0.01, 300))
    assert ledger.overfitting("U", partitions=4).n_periods == 300  # one length: by position


def test_different_frequencies_are_refused_everywhere(ledger: Ledger) -> None:
    rng = np.random.default_rng(0)
    d = pd.bdate_range("2010-01-01", "2019-12-31")
    me = pd.DatetimeIndex(sorted(set(d.to_series().groupby(d.to_period("M")).max())))
    for j in range(3):
        daily = pd.Series(rng.normal(0, 0.01, len(d)), index=d)
        ledger.log_backtest(f"D{j}", "X", daily, periods_per_year=252)
    for j in range(3):
        monthly = pd.Series(rng.normal(0.005, 0.04, len(me)), index=me)
        ledger.log_backtest(f"M{j}", "X", monthly, periods_per_year=12)
    _refused(ledger, "X", "different frequencies.*12 for record.*252 for record")
    o = ledger.overfitting("X", model_name=["D0", "D1", "D2"])
    assert o.n_periods + o.n_dropped == len(d)


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Europe/Berlin", "Europe/London", "Pacific/Auckland"])
def test_a_series_stamped_at_its_zones_midnight_is_kept_as_its_dates(ledger: Ledger, zone: str) -> None:
    """East of UTC a local midnight is the previous UTC date, and across a daylight-saving
    change it moves by an hour: kept as instants, a Tokyo daily series paired day D with a
    naive one's day D-1 (found by the review: PBO 0.66 and 2 effective trials for two copies
    of one series), and a London one turned "intraday" after the March change. Kept as its
    calendar dates, it lines up with the same series dated naively, day for day."""
    days = pd.bdate_range("2021-01-04", periods=300)
    values = np.random.default_rng(7).normal(0, 0.01, 300)
    ledger.log_backtest("LOCAL", "T", pd.Series(values, index=days.tz_localize(zone)))
    ledger.log_backtest("NAIVE", "T", pd.Series(values, index=days))
    frame = ledger.returns_frame(ticker="T")
    assert frame.shape == (300, 2)
    assert list(frame.index) == list(days.tz_localize("UTC"))
    assert frame.iloc[:, 0].tolist() == frame.iloc[:, 1].tolist() == values.tolist()
    local = ledger.history(ticker="T", model_name="LOCAL", include_meta=True)
    kept = ledger.returns(int(local["record_id"].iat[0]))
    assert list(kept.index) == list(days.tz_localize("UTC"))
    with pytest.raises(ValidationError, match=r"indistinguishable|identical"):
        ledger.overfitting("T", partitions=4)


def test_a_zone_aware_series_not_at_midnight_keeps_its_instants(ledger: Ledger) -> None:
    stamps = (pd.bdate_range("2021-01-04", periods=50) + pd.Timedelta(hours=9)).tz_localize("Asia/Tokyo")
    ledger.log_backtest("A", "T", pd.Series(np.random.default_rng(1).normal(0, 0.01, 50), index=stamps))
    kept = ledger.returns(int(ledger.history(ticker="T", include_meta=True)["record_id"].iat[0]))
    assert list(kept.index) == list(stamps.tz_convert("UTC"))


def test_daily_series_stamped_at_different_times_of_day_align_on_the_date(ledger: Ledger) -> None:
    days = pd.bdate_range("2021-01-04", periods=500)
    close = (days + pd.Timedelta(hours=16)).tz_localize("America/New_York")
    a = pd.Series(np.random.default_rng(1).normal(0, 0.01, 500), index=close)
    b = pd.Series(np.random.default_rng(2).normal(0, 0.01, 500), index=days)
    ledger.log_backtest("A", "T", a)
    ledger.log_backtest("B", "T", b)
    frame = ledger.returns_frame(ticker="T")
    assert frame.shape == (500, 2)
    assert list(frame.index) == list(days.tz_localize("UTC"))  # the UTC date, midnight
    assert frame.iloc[:, 0].tolist() == a.tolist() and frame.iloc[:, 1].tolist() == b.tolist()
    o = ledger.overfitting("T")
    assert o.n_periods + o.n_dropped == 500
    assert ledger.effective_trials("T") is not None


def test_intraday_series_align_on_the_instant(ledger: Ledger) -> None:
    idx = pd.date_range("2021-01-04", periods=48, freq="h", tz="UTC")
    ledger.log_backtest("A", "T", pd.Series(np.full(48, 0.001) + np.arange(48) * 1e-5, index=idx))
    ledger.log_backtest("B", "T", pd.Series(np.full(24, 0.002) + np.arange(24) * 1e-5, index=idx[::2]))
    frame = ledger.returns_frame(ticker="T")
    assert frame.shape == (48, 2) and frame.iloc[:, 1].notna().sum() == 24
    assert list(frame.index) == list(idx)


def test_series_sharing_no_date_say_so(ledger: Ledger) -> None:
    ledger.log_backtest("A", "T", _dated(1, "2020-01-01", 50))
    ledger.log_backtest("B", "T", _dated(2, "2022-01-01", 50))
    with pytest.raises(ValidationError, match=r"share no date.*2020-01-01 to .*2022-01-03 to"):
        ledger.overfitting("T")
