"""What the dashboard reads (issue 23): never a ticker's whole history to draw a chart.

The Performance tab's chart reads only the charted metric (``Ledger.history(columns=...)``),
the raw table only its latest rows (``limit``), PSR/DSR only the columns they use: a ticker
switch on a million-record ledger waited on the whole 100,000-row history before its chart.
The values shown must still be those of the whole history (checked against the Ledger's own
full reads), and the caches must still follow the ledger's changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

pytest.importorskip("streamlit")

from helpers import show_tab
from streamlit.testing.v1 import AppTest

from perfledger import Ledger
from perfledger.dashboard import data, readahead
from perfledger.sample import sample_records

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "Model_Performance_Dashboard.py")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    loc = tmp_path / "ledger"
    monkeypatch.setenv("PERFLEDGER_URL", str(loc))
    monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
    with Ledger(loc) as led:
        led.log_many(sample_records(evaluations=30, random_state=5, labels=False))
        rng = np.random.default_rng(2)
        for j in range(4):  # backtests: PSR/DSR have their inputs (custom metrics)
            led.log_backtest(f"Cfg{j}", "AAPL", rng.normal(0.001 * j, 0.01, 150))
    return loc


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``Ledger.history`` call's keyword arguments (the page's caches cleared first)."""
    calls: list[dict[str, Any]] = []
    real = Ledger.history

    def spy(self: Ledger, *args: Any, **kwargs: Any) -> pd.DataFrame:
        calls.append({"args": args, **kwargs})
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "history", spy)
    import streamlit as st

    st.cache_data.clear()
    return calls


def _whole(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls that read every column of every matching record."""
    return [c for c in calls if c.get("columns") is None and not c.get("limit")]


def run_app() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_first_render_and_ticker_switch_read_no_whole_history(store: Path, reads: list) -> None:
    at = run_app()
    assert reads, "the page read no history at all"
    assert _whole(reads) == [], _whole(reads)
    charted = [c for c in reads if c.get("columns") == [at.selectbox(key="metric").value]]
    assert charted, reads
    reads.clear()
    other = next(t for t in at.selectbox(key="ticker").options if t != at.selectbox(key="ticker").value)
    at.selectbox(key="ticker").set_value(other).run()
    assert not at.exception, at.exception
    assert reads and _whole(reads) == [], reads
    reads.clear()
    show_tab(at, 2)  # Quick Analytics: its trend chart reads only the metric too
    assert _whole(reads) == [], reads


def test_what_is_shown_equals_the_whole_history(store: Path) -> None:
    at = run_app()
    ticker = at.selectbox(key="ticker").value
    raw = at.tabs[0].dataframe[-1].value
    with Ledger(store) as led:
        whole = led.history(ticker)
    newest = whole.iloc[::-1].reset_index(drop=True)
    assert len(raw) == len(whole)  # 30 × 4 + fewer than the table's 1,000 rows
    assert raw["Model"].tolist() == newest["model_name"].tolist()
    assert np.allclose(raw["Sharpe"].to_numpy(dtype=float), newest["sharpe"].to_numpy(dtype=float),
                       equal_nan=True)
    assert any(f"{len(whole):,} evaluations match" in c.value for c in at.tabs[0].caption)


def test_series_and_latest_are_slices_of_history(store: Path) -> None:
    with Ledger(store) as led:
        whole = led.history("AAPL")
    loc = str(store)
    state = data.stats(loc)["state"]
    f = data.Filters(ticker="AAPL")
    s = data.series(loc, state, f, "sortino")
    pdt.assert_frame_equal(s, whole[["timestamp", "ticker", "model_name", "sortino"]])
    latest = data.latest(loc, state, f, 9)
    pdt.assert_frame_equal(latest, whole.iloc[::-1].head(9).reset_index(drop=True))


def test_confidence_equals_the_ledger_s(store: Path) -> None:
    """PSR/DSR from the few columns they read = ``Ledger.sharpe_confidence`` (whole history)."""
    loc = str(store)
    got = data.sharpe_confidence(loc, data.stats(loc)["state"], "AAPL")
    with Ledger(store) as led:
        expected = led.sharpe_confidence("AAPL")
    assert np.isfinite(expected["dsr"]).any()
    pdt.assert_frame_equal(got, expected)


def test_caches_follow_a_write(store: Path) -> None:
    """A record logged by another process shows on the next run (the state token keys them)."""
    at = run_app()
    ticker = at.selectbox(key="ticker").value
    before = len(at.tabs[0].dataframe[-1].value)
    with Ledger(store) as led:
        led.log("Fresh", ticker, sharpe=9.0, mse=0.01)
    at.run()
    raw = at.tabs[0].dataframe[-1].value
    assert len(raw) == before + 1 and raw["Model"].iloc[0] == "Fresh"


def test_warmed_tickers_are_read_from_the_caches(store: Path, reads: list) -> None:
    """What a ticker switch reads before its chart is cached by ``warm_tickers`` (run after a
    first render on a server's background thread), with the values a direct read gives."""
    loc = str(store)
    state = data.stats(loc)["state"]
    names = data.tickers(loc, state)
    warmed = readahead.warm_tickers(loc, state, data.Filters(ticker=names[1]), "sharpe", 20, 0.01, limit=3)
    assert warmed == [names[2], names[3], names[4]]  # the next ones in the list first
    reads.clear()
    for t in warmed:
        frame = data.series(loc, state, data.Filters(ticker=t), "sharpe")
        data.leaderboard(loc, state, t, "sharpe", data.Window())
        data.decay(loc, state, t, (), "sharpe", data.Window(), 20, 0.01)
        with Ledger(store) as led:
            pdt.assert_series_equal(frame["sharpe"], led.history(t)["sharpe"])
    assert [c for c in reads if c.get("columns") == ["sharpe"]] == []  # only the checks' own reads
    with Ledger(store) as led:
        led.log("Fresh", warmed[0], sharpe=9.0)
        state = led.stats()["state"]
    assert data.series(loc, state, data.Filters(ticker=warmed[0]), "sharpe")["model_name"].iloc[-1] == "Fresh"


def _prefetchers() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "perfledger-prefetch"]


def test_a_switch_after_the_prefetch_reads_nothing_before_its_chart(
        store: Path, reads: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page warms the next tickers after it is drawn; a switch to one then finds its
    chart's data, leaderboard and decay test cached, and shows the same page as uncached."""
    monkeypatch.setenv(readahead.PREFETCH_ENV, "1")
    at = run_app()
    for t in _prefetchers():
        t.join(60)
    ticker = at.selectbox(key="ticker")
    other = ticker.options[ticker.options.index(ticker.value) + 1]
    reads.clear()
    at.selectbox(key="ticker").set_value(other).run()
    assert not at.exception, at.exception
    metric = at.selectbox(key="metric").value
    charted = [c for c in reads if c.get("columns") == [metric] and "model_name" in c]  # data.series
    assert charted == [], reads
    warm_board = at.tabs[0].dataframe[0].value
    import streamlit as st

    st.cache_data.clear()
    monkeypatch.setenv(readahead.PREFETCH_ENV, "0")
    cold = run_app()
    cold.selectbox(key="ticker").set_value(other).run()
    pdt.assert_frame_equal(cold.tabs[0].dataframe[0].value, warm_board)


def test_no_prefetch_when_turned_off(store: Path) -> None:
    run_app()  # conftest sets $PERFLEDGER_DASHBOARD_PREFETCH=0 for every test
    assert not _prefetchers()


def test_the_read_ahead_waits_while_a_page_is_drawn(store: Path, reads: list) -> None:
    import threading
    import time

    loc = str(store)
    state = data.stats(loc)["state"]
    reads.clear()
    ahead = threading.Thread(target=readahead.warm_tickers, kwargs={"limit": 2},
                             args=(loc, state, data.Filters(ticker="AAPL"), "sharpe", 20, 0.01))
    with readahead.drawing():
        ahead.start()
        time.sleep(1.0)
        assert reads == [] and ahead.is_alive()  # nothing read while the page is drawn
    ahead.join(60)
    assert not ahead.is_alive() and [c for c in reads if c.get("columns") == ["sharpe"]]
