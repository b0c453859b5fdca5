"""The dashboard's 📉 Backtests tab (issue 22): equity and underwater curves of the selected
models' latest backtests with kept returns, the Overfitting panel (PBO, logits, IS vs OOS),
MinTRL and effective trials beside PSR/DSR; the filters apply; with no kept returns one line
says how to get them. Numbers are the Ledger's; the curves are checked against a cumulative
product computed here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from helpers import show_tab, start_page
from streamlit.testing.v1 import AppTest

from perfledger import Ledger

ROOT = Path(__file__).resolve().parents[1]
TAB = 3
IDX = pd.bdate_range("2018-01-01", periods=320, tz="UTC")


def _traces(chart: object) -> list[dict]:
    out = []
    for trace in json.loads(chart.proto.spec)["data"]:  # type: ignore[attr-defined]
        for k, v in list(trace.items()):
            if isinstance(v, dict) and "bdata" in v:
                trace[k] = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
        out.append(trace)
    return out


def _app() -> AppTest:
    return start_page()


def _sweep(store: Path) -> dict[str, pd.Series]:
    rng = np.random.default_rng(4)
    latest: dict[str, pd.Series] = {}
    with Ledger(store) as led:
        for j in range(6):
            for run in ("old", "new"):
                r = pd.Series(rng.normal(0.0003, 0.01, len(IDX)), index=IDX)
                led.log_backtest(f"Cfg{j}", "AAPL", r, tags={"run": run})
                latest[f"Cfg{j}"] = r
        led.log("Plain", "MSFT", sharpe=1.0)
    return latest


def test_curves_overfitting_and_track_records(store: Path) -> None:
    latest = _sweep(store)
    at = _app()
    tab = show_tab(at, TAB)
    charts = tab.get("plotly_chart")
    assert len(charts) == 4  # equity, underwater, logits, IS vs OOS
    equity = {t["name"]: t for t in _traces(charts[0])}
    assert set(equity) == set(latest)
    want = np.cumprod(1 + latest["Cfg2"].to_numpy()) - 1
    assert np.allclose(equity["Cfg2"]["y"], want)  # 320 points: under the budget, not downsampled
    under = {t["name"]: t for t in _traces(charts[1])}
    wealth = np.cumprod(1 + latest["Cfg2"].to_numpy())
    peak = np.maximum.accumulate(np.maximum(wealth, 1))
    assert np.allclose(under["Cfg2"]["y"], np.minimum(wealth / peak - 1, 0))
    with Ledger(store) as led:
        pbo = led.overfitting("AAPL")
        conf = led.sharpe_confidence("AAPL").set_index("model_name")
    assert any(m.label == "PBO" and m.value == f"{pbo.pbo:.1%}" for m in tab.metric)
    assert np.allclose(_traces(charts[2])[0]["x"], pbo.logits)
    scatter = json.loads(charts[3].proto.spec)["layout"]["title"]["text"]
    assert f"of {pbo.n_splits:,} splits drawn" in scatter
    table = tab.dataframe[0].value.set_index("Model")
    for model in latest:
        assert table.loc[model, "MinTRL (years)"] == pytest.approx(conf.loc[model, "min_trl_years"])
        assert table.loc[model, "Effective trials"] == pytest.approx(conf.loc[model, "n_effective"])
        assert table.loc[model, "DSR"] == pytest.approx(conf.loc[model, "dsr"])


def test_the_filters_apply(store: Path) -> None:
    _sweep(store)
    at = _app()
    show_tab(at, TAB)
    at.sidebar.multiselect(key="models::AAPL").set_value(["Cfg0", "Cfg1", "Cfg2"]).run()
    assert not at.exception, at.exception
    tab = at.tabs[TAB]
    charts = tab.get("plotly_chart")
    assert {t["name"] for t in _traces(charts[0])} == {"Cfg0", "Cfg1", "Cfg2"}
    with Ledger(store) as led:
        pbo = led.overfitting("AAPL", model_name=["Cfg0", "Cfg1", "Cfg2"])
    assert pbo.n_trials == 6
    assert any(m.label == "Trials × periods" and m.value.startswith("6 ×") for m in tab.metric)
    assert set(tab.dataframe[0].value["Model"]) == {"Cfg0", "Cfg1", "Cfg2"}


def test_without_kept_returns_one_line_says_how_to_get_them(store: Path) -> None:
    with Ledger(store) as led:
        led.log_backtest("NoKeep", "AAPL", np.random.default_rng(1).normal(0, 0.01, 100), keep_returns=False)
    at = _app()
    tab = show_tab(at, TAB)
    assert not tab.get("plotly_chart")
    assert any("log_backtest" in i.value and "returns=" in i.value for i in tab.info)


def test_too_few_trials_say_how_many_are_needed(store: Path) -> None:
    with Ledger(store) as led:
        r = pd.Series(np.random.default_rng(2).normal(0, 0.01, 50), index=IDX[:50])
        led.log_backtest("Only", "AAPL", r)
    at = _app()
    tab = show_tab(at, TAB)
    assert len(tab.get("plotly_chart")) == 2  # the curves still show
    assert any("at least 2 evaluations" in i.value for i in tab.info)


def test_series_that_cannot_be_matched_show_the_reason_not_a_number(store: Path) -> None:
    with Ledger(store) as led:
        rng = np.random.default_rng(3)
        led.log_backtest("A", "AAPL", pd.Series(rng.normal(0, 0.01, 320), index=IDX))
        led.log_backtest("B", "AAPL", pd.Series(rng.normal(0, 0.01, 320), index=IDX))
        led.log_backtest("C", "AAPL", rng.normal(0, 0.01, 320))  # kept without dates
    at = _app()
    tab = show_tab(at, TAB)
    assert not tab.get("plotly_chart") and not [m for m in tab.metric if m.label == "PBO"]
    assert any("without dates" in w.value for w in tab.warning)


def test_long_curves_keep_the_drawdown_and_the_end(store: Path) -> None:
    """The review's crash (#10): 20,000 hourly periods, a −35 % bar recovered in two. Bucket
    means drew it as −5 % and never back at 0; the drawn extremes and end must be the stored
    drawdown and total return."""
    rng = np.random.default_rng(1)
    n = 20_000
    x = rng.normal(1e-4, 1e-3, n)
    x[12000], x[12001], x[12002] = -0.35, 0.25, 0.2
    r = pd.Series(x, index=pd.date_range("2015-01-01", periods=n, freq="h"))
    with Ledger(store) as led:
        rec = led.log_backtest("Crash", "AAPL", r, periods_per_year=1764)
    at = _app()
    tab = show_tab(at, TAB)
    charts = tab.get("plotly_chart")
    (equity,) = _traces(charts[0])
    (under,) = _traces(charts[1])
    assert len(equity["y"]) <= 1_000 and len(under["y"]) <= 1_000
    assert min(under["y"]) == pytest.approx(rec["drawdown"], abs=1e-12)
    wealth = np.cumprod(1 + x)
    assert equity["y"][-1] == pytest.approx(wealth[-1] - 1, rel=1e-12)
    assert max(equity["y"]) == pytest.approx(wealth.max() - 1, rel=1e-12)
    peak = np.maximum.accumulate(np.maximum(wealth, 1))
    assert max(under["y"]) == pytest.approx(float((wealth / peak - 1).max()), abs=1e-15)
    assert str(under["x"][0]).startswith("2015-01-01")  # a date of the series, not a bucket's mean


def test_envelope_keeps_the_series_own_extremes_and_end() -> None:
    from perfledger.dashboard.charts import envelope

    rng = np.random.default_rng(5)
    for n in (1_001, 5_000, 123_457):
        y = np.cumsum(rng.normal(0, 1, n))
        x = np.arange(n, dtype=np.int64) * 10
        dx, dy = envelope(x, y, 1_000)
        assert len(dx) <= 1_000 and np.all(np.diff(dx) > 0)
        assert dy.min() == y.min() and dy.max() == y.max() and dy[-1] == y[-1] and dy[0] == y[0]
        assert np.array_equal(dy, y[dx // 10])  # points of the series, not means


def test_a_metric_threshold_is_said_to_select_the_pbo_trials(store: Path) -> None:
    """Review #15: a Min Sharpe filter keeps the sweep's full-sample winners, the selection
    CSCV audits; the panel says so."""
    _sweep(store)
    at = _app()
    tab = show_tab(at, TAB)
    assert not any("threshold" in w.value for w in tab.warning)
    at.sidebar.number_input(key="min_sharpe").set_value(-5.0).run()
    assert not at.exception, at.exception
    tab = at.tabs[TAB]
    assert any(m.label == "PBO" for m in tab.metric)
    assert any("threshold (sharpe ≥ -5)" in w.value and "survivors" in w.value for w in tab.warning)
