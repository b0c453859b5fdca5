"""The dashboard's monitoring views (issue 13), driven headlessly with ``AppTest``: every view
honours every filter, PSR/DSR with a plain-words note, the rolling mean, "Decaying" markers,
custom metrics, params and tags in the log form; plus the pure helpers behind them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from helpers import show_tab, start_page
from streamlit.testing.v1 import AppTest

from perfledger import Ledger, ValidationError
from perfledger.dashboard import charts, data, forms, insights
from perfledger.sample import sample_records

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(UTC)


def monitored_rows(decaying: str = "Sliding", n: int = 40) -> list[dict]:
    """AAPL and MSFT, three models each, ``n`` daily evaluations; ``decaying`` loses 1.5 of
    Sharpe (5 noise standard deviations) and gains MSE over its last 15 on AAPL."""
    rng = np.random.default_rng(1)
    rows = []
    for ticker in ("AAPL", "MSFT"):
        for model, level in (("Steady", 1.0), (decaying, 1.5), ("Weak", 0.3)):
            for i in range(n):
                drop = ticker == "AAPL" and model == decaying and i >= n - 15
                rows.append({
                    "model_name": model, "ticker": ticker, "timestamp": NOW - timedelta(days=n - i),
                    "sharpe": level - (1.5 if drop else 0.0) + rng.normal(0, 0.3),
                    "mse": 0.02 + (0.01 if drop else 0.0) + abs(rng.normal(0, 0.002)),
                })
    return rows


@pytest.fixture
def monitored(store: Path) -> Path:
    with Ledger(store) as led:
        led.log_many(monitored_rows())
    return store


def run_app() -> AppTest:
    return start_page()


#: Where each table is: its tab, and a column only it has there.
TABLES = {
    "perf_leaderboard": (0, "Rank"),
    "perf_raw": (0, "Logged (UTC)"),
    "perf_decay": (0, "p-value"),
    "best_wide": (1, "Ticker"),
    "top_models": (2, "#"),
    "recent": (2, "Logged (UTC)"),
    "analytics_decay": (2, "p-value"),
}


def frame_by_key(at: AppTest, key: str) -> pd.DataFrame:
    """The table a view shows under widget key ``key`` (AppTest does not expose a table's key,
    so it is found by its tab and a column only it has there). Only the selected tab is drawn:
    another tab is selected first (a rerun, as a click in the browser)."""
    tab, column = TABLES[key]
    if not at.tabs[tab].children:
        show_tab(at, tab)
    for df in at.tabs[tab].dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no table {key!r} in tab {tab}")


def traces(chart: object) -> list[dict]:
    """A rendered Plotly chart's traces, with typed arrays (``{"bdata", "dtype"}``) decoded."""
    out = []
    for trace in json.loads(chart.proto.spec)["data"]:  # type: ignore[attr-defined]
        for k, v in list(trace.items()):
            if isinstance(v, dict) and "bdata" in v:
                trace[k] = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
        out.append(trace)
    return out


def texts(block: object, kind: str) -> list[str]:
    return [e.value for e in getattr(block, kind)]


# ---------------------------------------------------------------------------- every filter


def test_leaderboard_and_comparison_honour_dates_and_thresholds(monitored: Path) -> None:
    at = run_app()
    board = frame_by_key(at, "perf_leaderboard")
    assert board["Records"].sum() == 120
    at.sidebar.number_input(key="min_sharpe").set_value(1.0).run()
    assert not at.exception
    board = frame_by_key(at, "perf_leaderboard").set_index("Model")
    raw = frame_by_key(at, "perf_raw")
    assert board["Records"].sum() == len(raw) < 120
    for model, count in raw.groupby("Model").size().items():
        assert board.loc[model, "Records"] == count
    assert (board["Sharpe (mean)"] >= 1.0).all()
    assert "sharpe ≥ 1" in " ".join(texts(at.tabs[0], "caption"))
    comparison = traces(at.tabs[0].get("plotly_chart")[1])[0]
    assert sorted(comparison["y"]) == sorted(board["Sharpe (mean)"].dropna())
    # A date range: the board counts exactly the rows the raw table shows.
    at.sidebar.number_input(key="min_sharpe").set_value(None)
    today = NOW.date()
    at.sidebar.date_input(key="date_range").set_value((today - timedelta(days=20), today)).run()
    board, raw = frame_by_key(at, "perf_leaderboard"), frame_by_key(at, "perf_raw")
    assert board["Records"].sum() == len(raw) and 0 < len(raw) < 120


def test_best_summary_heatmap_top_models_and_recent_honour_the_window(monitored: Path) -> None:
    at = run_app()
    at.sidebar.number_input(key="max_mse").set_value(0.021).run()
    assert not at.exception
    with Ledger(monitored) as led:
        allowed = led.history(at_most={"mse": 0.021})
    best = frame_by_key(at, "best_wide").set_index("Ticker")
    top_aapl = allowed[allowed.ticker == "AAPL"].sort_values("sharpe").iloc[-1]
    assert best.loc["AAPL", "Sharpe"] == f"{top_aapl.model_name} · {top_aapl.sharpe:.2f}"
    heat = json.loads(at.tabs[1].get("plotly_chart")[0].proto.spec)["data"][0]
    assert "MSE" in heat["x"][1]
    top = frame_by_key(at, "top_models")
    means = allowed.groupby(["ticker", "model_name"])["sharpe"].mean().sort_values(ascending=False)
    assert top.iloc[0]["Sharpe (mean)"] == pytest.approx(means.iloc[0])
    recent = frame_by_key(at, "recent")
    assert (recent["MSE"] <= 0.021).all()
    assert any("match the filters" in (m.proto.delta or "") for m in at.tabs[2].metric)


# ---------------------------------------------------------------------------- decay markers


def test_decaying_models_are_marked_on_performance_and_analytics(monitored: Path) -> None:
    at = run_app()
    warnings = texts(at.tabs[0], "warning")
    assert any("Decaying" in w and "Sliding" in w and "p =" in w for w in warnings), warnings
    perf = frame_by_key(at, "perf_decay")
    assert perf.set_index("Model").loc["Sliding", "Decaying"]
    assert perf["Decaying"].sum() == 1 and perf.iloc[0]["Model"] == "Sliding"
    legend = [t["name"] for t in json.loads(at.tabs[0].get("plotly_chart")[0].proto.spec)["data"]]
    assert "Sliding" + charts.DECAYING in legend and "Steady" in legend
    overall = frame_by_key(at, "analytics_decay")
    assert overall.iloc[0][["Ticker", "Model"]].tolist() == ["AAPL", "Sliding"]
    assert overall["Decaying"].sum() == 1 and len(overall) == 6
    assert any("AAPL · Sliding" in w for w in texts(at.tabs[2], "warning"))
    trend = [t["name"] for t in json.loads(at.tabs[2].get("plotly_chart")[0].proto.spec)["data"]]
    assert "Sliding" + charts.DECAYING in trend
    # Another ticker: nothing decays there.
    show_tab(at, 0)
    at.sidebar.selectbox(key="ticker").select("MSFT").run()
    assert not texts(at.tabs[0], "warning") or not any("Decaying" in w for w in texts(at.tabs[0], "warning"))
    assert any("No model is decaying" in s for s in texts(at.tabs[0], "success"))
    # MSE rises for Sliding on AAPL: flagged in its own direction.
    at.sidebar.selectbox(key="ticker").select("AAPL")
    at.sidebar.selectbox(key="metric").select("mse").run()
    assert frame_by_key(at, "perf_decay").set_index("Model").loc["Sliding", "Decaying"]


def test_decay_settings_and_filters_reach_the_test(monitored: Path) -> None:
    at = run_app()
    assert at.sidebar.select_slider(key="decay_recent").value == 20
    at.sidebar.select_slider(key="decay_recent").set_value(10).run()
    table = frame_by_key(at, "perf_decay")
    assert set(table["Evaluations"]) == {"10 vs 30"}
    # Metric thresholds do not reach the test: they would hide the very drop it looks for.
    at.sidebar.number_input(key="min_sharpe").set_value(1.2).run()
    assert frame_by_key(at, "perf_decay").set_index("Model").loc["Sliding", "Decaying"]
    assert set(frame_by_key(at, "perf_decay")["Evaluations"]) == {"10 vs 30"}
    at.sidebar.number_input(key="min_sharpe").set_value(None)
    at.sidebar.multiselect(key="models::AAPL").set_value(["Steady"]).run()
    assert frame_by_key(at, "perf_decay")["Model"].tolist() == ["Steady"]
    # A date window too short for the test: said so, no table.
    at.sidebar.select_slider(key="days_back").set_value(14).run()
    assert not at.exception
    assert any("0 models had" in c for c in texts(at.tabs[0], "caption"))


def test_sample_sized_ledgers_get_a_window_that_fits(store: Path) -> None:
    with Ledger(store) as led:
        led.log_many(sample_records(evaluations=20, random_state=7))
    at = run_app()
    assert at.sidebar.select_slider(key="decay_recent").value == 10  # 20 evaluations: 10 vs 10
    assert len(frame_by_key(at, "analytics_decay")) == 24


# ---------------------------------------------------------------------------- PSR / DSR


def test_psr_and_dsr_on_the_selected_tickers_leaderboard(store: Path) -> None:
    rng = np.random.default_rng(2)
    with Ledger(store) as led:
        for model in ("A", "B", "C", "D"):
            led.log_backtest(model, "AAPL", rng.normal(0.0011, 0.012, 126))
        led.log("Plain", "MSFT", sharpe=1.0)
        conf = led.sharpe_confidence("AAPL").set_index("model_name")
    at = run_app()
    board = frame_by_key(at, "perf_leaderboard").set_index("Model")
    cols = list(board.columns)
    assert cols.index("PSR") == cols.index("Sharpe (latest)") + 2  # next to the ranking, not off-screen
    for model in "ABCD":
        assert board.loc[model, "DSR"] == pytest.approx(conf.loc[model, "dsr"])
        assert board.loc[model, "PSR"] == pytest.approx(conf.loc[model, "psr"])
    top = conf.iloc[0]
    notes = texts(at.tabs[0], "warning") + texts(at.tabs[0], "success")
    assert any(f"among {len(conf)} trials" in n or "unlikely to be luck" in n for n in notes), notes
    if top["dsr"] < insights.DSR_CONFIDENT:
        assert any("could be luck among 4 trials" in n for n in texts(at.tabs[0], "warning"))
    at.sidebar.selectbox(key="ticker").select("MSFT").run()
    assert "PSR" not in frame_by_key(at, "perf_leaderboard").columns
    assert any("need backtests" in i for i in texts(at.tabs[0], "info"))


def test_confidence_note_in_plain_words() -> None:
    conf = pd.DataFrame({"model_name": ["M1", "M2"], "sharpe": [2.0, 1.5], "psr": [0.93, 0.8],
                         "dsr": [0.62, 0.4], "n_trials": [2, 2]})
    kind, text = insights.confidence_note(conf, "AAPL")
    assert kind == "warning" and "could be luck among 2 trials" in text and "0.62" in text
    kind, text = insights.confidence_note(conf.assign(dsr=[0.99, 0.5]), "AAPL")
    assert kind == "success" and "unlikely to be luck" in text
    kind, _ = insights.confidence_note(conf.assign(psr=np.nan, dsr=np.nan), "AAPL")
    assert kind == "info"


# ---------------------------------------------------------------------------- trends


def test_rolling_mean_toggle_adds_a_line_per_model(monitored: Path) -> None:
    at = run_app()
    before = traces(at.tabs[0].get("plotly_chart")[0])
    at.tabs[0].toggle(key="rolling_mean").set_value(True).run()
    assert not at.exception
    after = traces(at.tabs[0].get("plotly_chart")[0])
    assert len(after) == 2 * len(before) == 6
    rolled = next(t for t in after if t["name"] == "Steady · rolling mean")
    raw = next(t for t in after if t["name"] == "Steady")
    assert rolled["line"]["color"] == raw["line"]["color"]
    at.tabs[0].select_slider(key="rolling_window").set_value(5).run()
    frame = pd.DataFrame(monitored_rows())
    steady = frame[(frame.ticker == "AAPL") & (frame.model_name == "Steady")]["sharpe"]
    chart = traces(at.tabs[0].get("plotly_chart")[0])
    rolled = next(t for t in chart if t["name"] == "Steady · rolling mean")
    np.testing.assert_allclose(rolled["y"], steady.rolling(5, min_periods=1).mean(), rtol=1e-9)


def test_time_series_figure_rolling_and_flags_are_pure() -> None:
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2025-01-01", periods=30, freq="D", tz="UTC").repeat(2),
        "model_name": ["A", "B"] * 30,
        "sharpe": np.arange(60, dtype=float),
    })
    fig, _ = charts.time_series_figure(frame, "sharpe", rolling=3, flagged={"B"})
    names = [t.name for t in fig.data]
    assert names == ["A", "A · rolling mean", "B ⚠ decaying", "B ⚠ decaying · rolling mean"]
    assert fig.data[2].line.dash == "dash" and fig.data[0].line.dash == "solid"
    assert list(fig.data[1].y[:3]) == [0.0, 1.0, 2.0]  # 0, (0+2)/2, (0+2+4)/3
    trend = charts.trend_figure(frame, "sharpe", 3, flagged={"A"})
    assert [t.name for t in trend.data] == ["A ⚠ decaying", "B"]


# ---------------------------------------------------------------------------- custom metrics, form


def _fill(at: AppTest, **values: str) -> AppTest:
    for key, value in values.items():
        widget = at.sidebar.text_area(key=f"log_{key}") if key == "notes" else at.sidebar.text_input(
            key=f"log_{key}")
        widget.input(value)
    return at.sidebar.button(key="log_submit").click().run()


def test_log_form_accepts_custom_metrics_params_and_tags(store: Path) -> None:
    at = _fill(run_app(), model="LSTM_v1", ticker="AAPL", metrics="sortino=2.4, latency_ms=35",
               params='epochs=50, layers=[64, 32], optimizer=adam', tags="run=nightly")
    assert not at.exception and not at.sidebar.error
    with Ledger(store) as led:
        rec = led.records()[0]
    assert rec["metrics"] == {"sortino": 2.4, "latency_ms": 35.0}
    assert rec["params"] == {"epochs": 50, "layers": [64, 32], "optimizer": "adam"}
    assert rec["tags"] == {"run": "nightly"}
    assert at.sidebar.text_input(key="log_metrics").value == ""  # ready for the next one
    assert at.sidebar.text_input(key="log_params").value.startswith("epochs")


@pytest.mark.parametrize(("field", "text", "named"), [
    ("metrics", "sortino=abc", "sortino"),
    ("metrics", "just text", "metrics"),
    ("tags", "=x", "tags"),
    ("metrics", "bad name!=1", "bad name"),
])
def test_log_form_refuses_bad_custom_fields(store: Path, field: str, text: str, named: str) -> None:
    at = _fill(run_app(), model="M", ticker="AAPL", **{field: text})
    errors = texts(at.sidebar, "error")
    assert errors and named in errors[0], errors
    with Ledger(store) as led:
        assert led.stats()["records"] == 0


def test_custom_metrics_in_the_picker_and_charts(store: Path) -> None:
    with Ledger(store) as led:
        rows = monitored_rows()
        for i, r in enumerate(rows):
            r["latency"] = 30.0 + (i % 7)
        led.log_many(rows)
    at = run_app()
    options = at.sidebar.selectbox(key="metric").options
    assert "Latency (no direction yet)" in options
    at.sidebar.selectbox(key="metric").select("latency").run()
    assert not at.exception
    spec = json.loads(at.tabs[0].get("plotly_chart")[0].proto.spec)
    assert "Latency" in spec["layout"]["title"]["text"] and len(spec["data"]) == 3
    assert any("no direction yet" in c for c in texts(at.sidebar, "caption"))
    at.sidebar.button(key="register_lower").click().run()
    assert not at.exception
    with Ledger(store) as led:
        assert led.metric_directions()["latency"] is False
    assert "Latency" in at.sidebar.selectbox(key="metric").options
    assert "Latency (mean)" in frame_by_key(at, "perf_leaderboard").columns
    assert len(frame_by_key(at, "perf_decay")) == 3


def test_read_only_offers_no_direction_buttons(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(store) as led:
        led.log("M", "AAPL", sharpe=1.0, metrics={"latency": 3.0})
    monkeypatch.setenv("PERFLEDGER_READ_ONLY", "1")
    at = run_app()
    at.sidebar.selectbox(key="metric").select("latency").run()
    assert not at.exception
    assert "register_lower" not in {b.key for b in at.sidebar.button}


def test_form_parsers() -> None:
    assert forms.parse_metrics("a=1, b=2.5\nc=-3") == {"a": 1.0, "b": 2.5, "c": -3.0}
    assert forms.parse_metrics("") == {} and forms.parse_metrics(None) == {}
    with pytest.raises(ValidationError, match="inf"):
        forms.parse_metrics("a=inf")
    assert forms.parse_params('x=[1, 2], y={"k": "a,b"}, z=text, n=null') == {
        "x": [1, 2], "y": {"k": "a,b"}, "z": "text", "n": None}
    assert forms.parse_tags("run = nightly; owner=me") == {"run": "nightly", "owner": "me"}


# ---------------------------------------------------------------------------- pure helpers


def test_best_from_board_follows_each_direction() -> None:
    board = pd.DataFrame({
        "ticker": ["T", "T"], "model_name": ["A", "B"], "records": [3, 3],
        "sharpe_count": [3, 3], "sharpe_max": [1.0, 2.0], "sharpe_min": [0.0, 0.5],
        "mse_count": [3, 3], "mse_max": [0.05, 0.03], "mse_min": [0.01, 0.02],
        "odd_count": [3, 3], "odd_max": [9.0, 1.0], "odd_min": [1.0, 0.0],
    })
    best = insights.best_from_board(board, {"sharpe": True, "mse": False})
    assert best["T"]["best_sharpe"]["model"] == "B" and best["T"]["best_sharpe"]["value"] == 2.0
    assert best["T"]["best_mse"] == {"model": "A", "value": 0.01, "timestamp": None}
    assert "best_odd" not in best["T"]  # no direction, no "best"


@pytest.mark.parametrize(("longest", "expected"), [(0, 5), (14, 5), (15, 5), (20, 10), (29, 10), (30, 20),
                                                     (500, 20)])
def test_default_decay_window(longest: int, expected: int) -> None:
    assert insights.default_decay_window(longest) == expected


def test_display_location_is_relative_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert data.display_location(str(tmp_path / "memory" / "logs")) == "./memory/logs"
    assert data.display_location("/elsewhere/ledger") == "/elsewhere/ledger"
    assert "secret" not in data.display_location("postgresql://u:secret@h/db")
