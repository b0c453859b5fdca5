"""Ledger semantics on both backends: best, history filters, leaderboard, registry."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from helpers import DIRECTIONS, normalise_best, recompute_best

from perfledger import Ledger, ValidationError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_best_directions_and_ties(any_ledger: Ledger) -> None:
    led = any_ledger
    led.log("First", "AAPL", sharpe=2.0, mse=0.02, drawdown=-0.1, timestamp=T0)
    led.log("SameLater", "AAPL", sharpe=2.0, mse=0.02, drawdown=-0.1, timestamp=T0 + timedelta(1))
    best = led.best("AAPL")
    assert best["best_sharpe"]["model"] == "First"  # a tie keeps the earlier record
    # A backfilled evaluation that is earlier in time wins the tie too: best() always
    # equals a recomputation from chronological history.
    led.log("Backfill", "AAPL", sharpe=2.0, timestamp=T0 - timedelta(1))
    assert led.best("AAPL")["best_sharpe"]["model"] == "Backfill"
    led.log("Worse", "AAPL", mse=0.5, drawdown=-0.9)
    assert led.best("AAPL")["best_mse"]["model"] == "First"
    assert led.best("AAPL")["best_drawdown"]["value"] == -0.1
    assert normalise_best(led.best()) == normalise_best(recompute_best(led.history(), DIRECTIONS))


def test_unknown_ticker_and_never_logged_metric(any_ledger: Ledger) -> None:
    assert any_ledger.best("NOPE") == {}
    assert any_ledger.best() == {}
    any_ledger.log("M", "T", sharpe=1.0)
    assert any_ledger.best("T")["best_accuracy"] == {"model": None, "value": None, "timestamp": None}


def test_custom_metrics_registered_before_and_after_logging(any_ledger: Ledger) -> None:
    led = any_ledger
    led.log("A", "T", metrics={"sortino": 1.0, "turnover": 5.0})
    led.log("B", "T", metrics={"sortino": 3.0, "turnover": 2.0})
    assert "best_sortino" not in led.best("T")  # no direction known yet
    led.register_metric("sortino", higher_is_better=True)  # applied to existing history
    led.register_metric("turnover", higher_is_better=False)
    best = led.best("T")
    assert best["best_sortino"]["model"] == "B" and best["best_turnover"]["model"] == "B"
    led.log("C", "T", metrics={"sortino": 4.0})
    assert led.best("T")["best_sortino"]["model"] == "C"
    led.register_metric("sortino", higher_is_better=False)  # re-directed: recomputed
    assert led.best("T")["best_sortino"]["model"] == "A"
    led.log("D", "U", sharpe=1.0)
    assert led.best("U")["best_sortino"] == {"model": None, "value": None, "timestamp": None}
    h = led.history(ticker="T")
    assert h["sortino"].tolist() == [1.0, 3.0, 4.0]
    assert math.isnan(h["turnover"].iloc[2])
    dirs = {**DIRECTIONS, "sortino": False, "turnover": False}
    assert normalise_best(led.best()) == normalise_best(recompute_best(led.history(), dirs))
    with pytest.raises(ValidationError, match="reserved"):
        led.register_metric("sharpe", True)
    with pytest.raises(TypeError, match="higher_is_better"):
        led.register_metric("x", "yes")


def test_history_filters_run_in_the_database(any_ledger: Ledger) -> None:
    led = any_ledger
    for i in range(10):
        led.log(f"M{i % 2}", "AAPL" if i < 6 else "MSFT", sharpe=i / 4, mse=0.01 * i,
                metrics={"sortino": float(i)}, timestamp=T0 + timedelta(days=i))
    h = led.history(at_least={"sharpe": 1.0}, at_most={"mse": 0.07})
    assert h["sharpe"].tolist() == [1.0, 1.25, 1.5, 1.75]
    assert led.history(at_least={"sortino": 8}).shape[0] == 2
    assert led.history(at_most={"sortino": 1}, ticker="AAPL")["sortino"].tolist() == [0.0, 1.0]
    assert led.history(ticker=["AAPL", "MSFT"], model_name="M1").shape[0] == 5
    assert led.history(since=T0 + timedelta(days=8)).shape[0] == 2
    assert led.history(until="2024-01-02T00:00:00+00:00").shape[0] == 2
    latest = led.history(limit=3)
    assert latest["sharpe"].tolist() == [1.75, 2.0, 2.25]  # the latest 3, still oldest first


def test_days_back_is_exact(any_ledger: Ledger) -> None:
    now = datetime.now(UTC)
    any_ledger.log("In", "T", timestamp=now - timedelta(days=7) + timedelta(minutes=5))
    any_ledger.log("Out", "T", timestamp=now - timedelta(days=7) - timedelta(minutes=5))
    assert any_ledger.history(days_back=7)["model_name"].tolist() == ["In"]
    assert any_ledger.history(days_back=0.5).empty


def test_leaderboard_matches_pandas_on_history(any_ledger: Ledger) -> None:
    rng = np.random.default_rng(3)
    rows = [
        {"model_name": f"M{j}", "ticker": t, "sharpe": float(rng.normal(j, 1)),
         "mse": float(abs(rng.normal(0.02, 0.01))), "timestamp": T0 + timedelta(hours=i)}
        for i in range(60) for j in range(3) for t in ("AAPL", "MSFT")
    ]
    any_ledger.log_many(rows[:200])
    for r in rows[200:210]:  # single logs merge into the same summaries
        any_ledger.log(**r)
    any_ledger.log_many(rows[210:])
    lb = any_ledger.leaderboard("AAPL")
    h = any_ledger.history(ticker="AAPL")
    g = h.groupby("model_name")["sharpe"]
    for _, row in lb.iterrows():
        m = row["model_name"]
        assert row["sharpe_count"] == g.count()[m]
        assert row["sharpe_mean"] == pytest.approx(g.mean()[m], rel=1e-9)
        assert row["sharpe_std"] == pytest.approx(g.std()[m], rel=1e-9)
        assert row["sharpe_min"] == g.min()[m] and row["sharpe_max"] == g.max()[m]
        assert row["sharpe_latest"] == h[h.model_name == m]["sharpe"].iloc[-1]
    assert lb["model_name"].tolist() == ["M2", "M1", "M0"] and lb["rank"].tolist() == [1, 2, 3]
    by_mse = any_ledger.leaderboard("AAPL", metric="mse")
    assert by_mse["mse_mean"].is_monotonic_increasing  # lower is better
    everything = any_ledger.leaderboard()
    assert len(everything) == 6 and set(everything["ticker"]) == {"AAPL", "MSFT"}
    recent = any_ledger.leaderboard("AAPL", days_back=10_000)
    pd.testing.assert_series_equal(recent["sharpe_mean"], lb["sharpe_mean"], rtol=1e-9)
    assert any_ledger.leaderboard("AAPL", days_back=1).empty
    with pytest.raises(ValidationError, match="metric='nope'"):
        any_ledger.leaderboard(metric="nope")


def test_leaderboard_honours_every_history_filter(any_ledger: Ledger) -> None:
    """Date range and metric bounds (custom metrics too) aggregate exactly the records
    history() returns for the same filters."""
    rng = np.random.default_rng(4)
    rows = [
        {"model_name": f"M{j}", "ticker": t, "sharpe": float(rng.normal(j, 1)),
         "mse": float(abs(rng.normal(0.02, 0.01))), "timestamp": T0 + timedelta(hours=i),
         "sortino": float(rng.normal(1, 0.5))}
        for i in range(80) for j in range(3) for t in ("AAPL", "MSFT")
    ]
    any_ledger.log_many(rows)
    any_ledger.register_metric("sortino", higher_is_better=True)
    cases = [
        {"since": T0 + timedelta(hours=20), "until": T0 + timedelta(hours=60)},
        {"at_least": {"sharpe": 0.5}},
        {"at_most": {"mse": 0.02}, "at_least": {"sortino": 1.0}},
        {"since": T0 + timedelta(hours=40), "at_least": {"sharpe": 1.0}, "at_most": {"mse": 0.03}},
    ]
    for kw in cases:
        for ticker in ("AAPL", None):
            board = any_ledger.leaderboard(ticker, **kw)
            h = any_ledger.history(ticker=ticker, **kw)
            assert board["records"].sum() == len(h), kw
            for metric in ("sharpe", "mse", "sortino"):
                g = h.groupby(["ticker", "model_name"])[metric]
                got = board.set_index(["ticker", "model_name"])
                for key, count in g.count().items():
                    assert got.loc[key, f"{metric}_count"] == count
                    assert got.loc[key, f"{metric}_mean"] == pytest.approx(g.mean()[key], rel=1e-9)
                    assert got.loc[key, f"{metric}_std"] == pytest.approx(g.std()[key], rel=1e-9)
                    assert got.loc[key, f"{metric}_max"] == g.max()[key]
                    latest = h[(h.ticker == key[0]) & (h.model_name == key[1])][metric].dropna().iloc[-1]
                    assert got.loc[key, f"{metric}_latest"] == latest
    assert any_ledger.leaderboard("AAPL", at_least={"sharpe": 99}).empty
    with pytest.raises(ValidationError, match="at_least"):
        any_ledger.leaderboard("AAPL", at_least={"sharpe": "x"})


def test_stats_state_token_changes_with_every_write(any_ledger: Ledger) -> None:
    s0 = any_ledger.stats()
    any_ledger.log("M", "T", sharpe=1.0)
    s1 = any_ledger.stats()
    assert s1["records"] == 1 and s1["tickers"] == 1 and s1["state"] != s0["state"]
    any_ledger.clear()
    any_ledger.log("M", "T", sharpe=1.0)
    s2 = any_ledger.stats()
    assert s2["state"] not in (s0["state"], s1["state"])
    # Registering a direction changes what best() and the rankings say: a new state too.
    any_ledger.register_metric("latency", higher_is_better=False)
    s3 = any_ledger.stats()
    assert s3["state"] != s2["state"]
    any_ledger.register_metric("latency", higher_is_better=False)  # no change, same state
    assert any_ledger.stats()["state"] == s3["state"]


def test_log_many_accepts_frames_with_custom_metric_columns(any_ledger: Ledger) -> None:
    frame = pd.DataFrame({
        "model_name": ["A", "B"], "ticker": ["T", "T"], "sharpe": [1.0, np.nan],
        "sortino": [np.nan, 2.0], "timestamp": ["2024-01-01T00:00:00", "2024-01-02T00:00:00"],
    })
    assert any_ledger.log_many(frame) == 2
    h = any_ledger.history()
    assert h["sortino"].isna().tolist() == [True, False]
    assert math.isnan(h["sharpe"].iloc[1])
    assert any_ledger.log_many([]) == 0
