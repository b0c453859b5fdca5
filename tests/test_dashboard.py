"""The Streamlit dashboard, driven headlessly with ``AppTest`` (no browser), plus unit tests
of its pure helpers (charts, tables, launch).

Every test gets its own ledger directory through ``$PERFLEDGER_URL``, never the repo's
``memory/logs``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from helpers import show_tab, start_page
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.errors import AppTestError

from perfledger import Ledger
from perfledger.dashboard import charts, data, formatting, launch
from perfledger.location import resolve
from perfledger.sample import sample_records

ROOT = Path(__file__).resolve().parents[1]
SRC = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])


@pytest.fixture
def seeded(store: Path) -> Path:
    """The store with 6 tickers × 4 models × 5 evaluations spread over 90 days."""
    with Ledger(store) as led:
        led.log_many(sample_records(evaluations=5, random_state=3, labels=False))
    return store


def records(store: Path) -> int:
    with Ledger(store) as led:
        return int(led.stats()["records"])


def run_app() -> AppTest:
    return start_page()


def raw_table(at: AppTest) -> pd.DataFrame:
    """The raw-data table of the Performance tab."""
    return at.tabs[0].dataframe[-1].value


def keys(at: AppTest) -> set[str]:
    """Keys of every widget on the page."""
    out = set()
    for kind in ("button", "checkbox", "text_input", "number_input"):
        out |= {w.key for w in getattr(at, kind) if w.key}
    return out


# ---------------------------------------------------------------------------- first run, actions


def test_empty_store_shows_first_run_screen(store: Path) -> None:
    at = run_app()
    assert any("No evaluations logged yet" in i.value for i in at.info)
    snippet = " ".join(c.value for c in at.code)
    assert "log_model_performance" in snippet and "Ledger().log" in snippet
    assert not at.tabs and not at.error


def test_sample_data_button_adds_records(store: Path) -> None:
    at = run_app()
    at.sidebar.button(key="add_sample").click().run()
    assert not at.exception
    assert records(store) == 1144  # 6 tickers x 4 models x 45 + a 40- and a 24-config sweep
    assert [t.label for t in at.tabs] == list(
        ["📈 Performance Dashboard", "🏆 Best Models Summary", "📊 Quick Analytics", "📉 Backtests"]
    )
    assert any("Added 1,144" in s.value for s in at.success)


def test_first_run_sample_button(store: Path) -> None:
    at = run_app()
    at.button(key="first_run_sample").click().run()
    assert records(store) == 1144 and len(at.tabs) == 4


def test_actions_are_drawn_only_once_their_expander_is_opened(seeded: Path) -> None:
    """The log form and the clear confirmation are not sent on a first render (issue 23: a
    fifth of its elements); opening the expander (a rerun, as a click) draws them, and the
    opened form logs."""
    at = start_page(actions_open=False)
    form = {"log_model", "log_ticker", "log_sharpe", "log_submit", "confirm_clear", "clear"}
    assert not keys(at) & form
    labels = [e.label for e in at.sidebar.expander]
    assert "📝 Log an evaluation" in labels and "🗑️ Clear all data" in labels
    assert len(at.get("text_input")) == 0 and len(at.get("number_input")) == 2  # the filters' two
    at.session_state["log_open"] = True
    at.run()
    assert {"log_model", "log_ticker", "log_sharpe", "log_submit"} <= keys(at)
    assert not keys(at) & {"confirm_clear", "clear"}
    _fill_form(at, model="Opened", ticker="AAPL", sharpe=1.0)
    assert records(seeded) == 121
    at.session_state["clear_open"] = True
    at.run()
    assert {"confirm_clear", "clear"} <= keys(at)


def test_clear_needs_confirmation(seeded: Path) -> None:
    at = run_app()
    assert at.sidebar.button(key="clear").disabled
    with pytest.raises(AppTestError, match="disabled"):  # no one can click it unconfirmed
        at.sidebar.button(key="clear").click()
    at.run()
    assert records(seeded) == 120
    assert len(at.tabs) == 4
    at.sidebar.checkbox(key="confirm_clear").check().run()
    assert not at.sidebar.button(key="clear").disabled
    at.sidebar.button(key="clear").click().run()
    assert not at.exception
    assert records(seeded) == 0
    assert any("No evaluations logged yet" in i.value for i in at.info)
    assert at.sidebar.checkbox(key="confirm_clear").value is False
    # The page says how to undo it, and it can be undone.
    assert any("perfledger restore" in s.value for s in at.sidebar.success)
    assert any("perfledger restore" in c.value for c in at.sidebar.caption)
    with Ledger(seeded) as led:
        assert led.restore_cleared() == 120
    assert records(seeded) == 120


def _fill_form(at: AppTest, **values: Any) -> AppTest:
    for k in ("model", "ticker"):
        if k in values:
            at.sidebar.text_input(key=f"log_{k}").input(values.pop(k))
    notes = values.pop("notes", None)
    if notes is not None:
        at.sidebar.text_area(key="log_notes").input(notes)
    for k, v in values.items():
        at.sidebar.number_input(key=f"log_{k}").set_value(v)
    return at.sidebar.button(key="log_submit").click().run()


def test_log_form_valid_stores_one_record(store: Path) -> None:
    at = _fill_form(
        run_app(),
        model="LSTM_v1",
        ticker="AAPL",
        sharpe=1.85,
        mse=0.0234,
        win_rate=0.68,
        notes="from the form",
    )
    assert not at.exception and not at.sidebar.error
    with Ledger(store) as led:
        hist = led.history()
    assert len(hist) == 1
    row = hist.iloc[0]
    assert (row.model_name, row.ticker, row.sharpe, row.win_rate, row.notes) == (
        "LSTM_v1",
        "AAPL",
        1.85,
        0.68,
        "from the form",
    )
    assert np.isnan(row.accuracy)
    assert len(at.tabs) == 4  # shown in the same run
    assert at.sidebar.number_input(key="log_sharpe").value is None  # cleared for the next one
    assert at.sidebar.text_input(key="log_model").value == "LSTM_v1"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"model": "LSTM_v1", "ticker": "AAPL", "win_rate": 68.0}, "win_rate"),
        ({"model": "", "ticker": "AAPL", "sharpe": 1.0}, "model_name"),
        ({"model": "LSTM_v1", "ticker": "AAPL", "drawdown": 0.3}, "drawdown"),
    ],
)
def test_log_form_invalid_shows_error_and_stores_nothing(
    store: Path, values: dict[str, Any], field: str
) -> None:
    at = _fill_form(run_app(), **values)
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert errors and field in errors[0], errors
    assert records(store) == 0


def test_read_only_hides_every_write(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFLEDGER_READ_ONLY", "1")
    at = run_app()
    assert len(at.tabs) == 4
    assert not keys(at) & {
        "add_sample",
        "clear",
        "confirm_clear",
        "log_submit",
        "log_model",
        "first_run_sample",
    }
    assert any("Read-only" in c.value for c in at.sidebar.caption)
    Ledger(seeded).clear()
    at = run_app()  # the first-run screen offers no sample button either
    assert "first_run_sample" not in keys(at)


def test_a_ledger_the_user_may_only_read_hides_every_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's ledger (files 0644, directory 0755), shown by an unprivileged process:
    every tab renders from the database, no write is offered, the caption says why, and
    nothing in the directory changes."""
    import streamlit as st
    from unprivileged import as_reader, make_foreign, shared_directory, snapshot

    with shared_directory() as base:
        directory = base / "ledger"
        with Ledger(directory) as led:
            led.log_many(sample_records(evaluations=5, random_state=3, labels=False))
        monkeypatch.setenv("PERFLEDGER_URL", str(directory))
        monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
        owner = run_app()  # as the owner: every write offered (and everything imported)
        assert {"clear", "log_submit", "add_sample"} <= keys(owner)
        data.get_ledger(str(directory)).close()
        make_foreign(directory)
        before = snapshot(directory)

        def reader() -> dict[str, Any]:
            st.cache_resource.clear()  # the owner's writable Ledger must not be reused
            st.cache_data.clear()
            at = start_page(check=False)
            return {
                "exception": [str(e.value) for e in at.exception],
                "keys": keys(at),
                "captions": [c.value for c in at.sidebar.caption],
                "tabs": len(at.tabs),
                "raw": raw_table(at) if len(at.tabs) else None,
                "sample_added": launch.add_sample_if_asked(resolve(str(directory))),
            }

        seen = as_reader(reader)
        assert seen["exception"] == []
        assert seen["tabs"] == 4
        pd.testing.assert_frame_equal(seen["raw"], raw_table(owner))
        assert not seen["keys"] & {"add_sample", "clear", "confirm_clear", "log_submit", "log_model",
                                   "first_run_sample"}
        assert any("this user may not write this ledger" in c for c in seen["captions"])
        assert seen["sample_added"] == 0  # `perfledger dashboard --sample` adds nothing either
        assert snapshot(directory) == before


# ---------------------------------------------------------------------------- filters


def test_ticker_filter(seeded: Path) -> None:
    at = run_app()
    assert set(raw_table(at)["Ticker"]) == {"AAPL"}
    at.sidebar.selectbox(key="ticker").select("MSFT").run()
    assert not at.exception
    assert set(raw_table(at)["Ticker"]) == {"MSFT"}
    assert at.tabs[0].subheader[0].value == "MSFT"


def test_models_filter(seeded: Path) -> None:
    at = run_app()
    assert raw_table(at)["Model"].nunique() == 4
    at.sidebar.multiselect(key="models::AAPL").set_value(["LSTM_v1", "XGBoost_v2"]).run()
    assert not at.exception
    assert set(raw_table(at)["Model"]) == {"LSTM_v1", "XGBoost_v2"}
    board = at.tabs[0].dataframe[0].value
    assert set(board["Model"]) == {"LSTM_v1", "XGBoost_v2"}


def test_days_back_and_date_range(seeded: Path) -> None:
    at = run_app()
    assert len(raw_table(at)) == 20
    at.sidebar.select_slider(key="days_back").set_value(30).run()
    assert not at.exception
    recent = raw_table(at)
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    assert 0 < len(recent) < 20 and (recent["Logged (UTC)"] >= cutoff).all()
    at.sidebar.select_slider(key="days_back").set_value(0).run()
    today = datetime.now(UTC).date()
    at.sidebar.date_input(key="date_range").set_value(
        (today - timedelta(days=60), today - timedelta(days=20))
    ).run()
    assert not at.exception
    window = raw_table(at)
    assert 0 < len(window) < 20
    assert window["Logged (UTC)"].min().date() >= today - timedelta(days=60)
    assert window["Logged (UTC)"].max().date() <= today - timedelta(days=20)


def test_metric_thresholds(seeded: Path) -> None:
    at = run_app()
    at.sidebar.number_input(key="min_sharpe").set_value(1.0).run()
    assert not at.exception
    strong = raw_table(at)
    assert 0 < len(strong) < 20 and (strong["Sharpe"] >= 1.0).all()
    at.sidebar.number_input(key="min_sharpe").set_value(None)
    at.sidebar.number_input(key="max_mse").set_value(0.02).run()
    low = raw_table(at)
    assert 0 < len(low) < 20 and (low["MSE"] <= 0.02).all()
    at.sidebar.number_input(key="min_sharpe").set_value(99.0).run()
    assert not at.exception
    assert any("No evaluations match" in i.value for i in at.tabs[0].info)


# ---------------------------------------------------------------------------- tabs


@pytest.mark.parametrize("metric", ["sharpe", "mse", "win_rate"])
def test_every_tab_renders(seeded: Path, metric: str) -> None:
    at = run_app()
    at.sidebar.selectbox(key="metric").select(metric).run()
    assert not at.exception
    perf, best, analytics, _backtests = at.tabs
    # Only the selected tab runs: the hidden ones send nothing until they are picked.
    assert not best.children and not analytics.children
    # leaderboard and raw data; the other metrics' means only once their expander is opened
    assert len(perf.get("plotly_chart")) == 2 and len(perf.dataframe) == 2
    assert "Other metrics: mean per model (5)" in [e.label for e in perf.expander]
    at.session_state["perf_more_open"] = True
    at.run()
    perf = at.tabs[0]
    means = [c for c in perf.dataframe[1].value.columns if "(mean)" in c]
    assert len(perf.dataframe) == 3 and len(means) == 5
    assert [m.label for m in perf.metric][:2] == ["Best Sharpe", "Best MSE"]
    best = show_tab(at, 1)
    assert not at.tabs[0].children and not at.tabs[2].children
    assert len(best.get("plotly_chart")) == 1
    wide = best.dataframe[0].value
    assert list(wide["Ticker"]) == sorted(["AAPL", "MSFT", "GOOGL", "BRK.B", "BTC-USD", "^GSPC"])
    at.tabs[1].selectbox(key="heatmap_scope").select("MSFT").run()
    assert not at.exception and at.tabs[1].get("plotly_chart")
    analytics = show_tab(at, 2)
    assert not at.tabs[0].children and not at.tabs[1].children
    assert len(analytics.get("plotly_chart")) == 1 and len(analytics.dataframe) == 2
    assert [m.value for m in analytics.metric][:3] == ["120", "6", "4"]
    assert len(analytics.dataframe[1].value) == 20  # recent activity
    assert at.tabs[2].select_slider(key="trend_window").value == 5
    at.tabs[2].select_slider(key="trend_window").set_value(2).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="metric").value == metric  # the filters survive a tab switch
    assert len(show_tab(at, 0).get("plotly_chart")) == 2


@pytest.mark.slow
def test_new_record_from_another_process_appears_on_rerun(seeded: Path) -> None:
    at = run_app()
    assert "NEWT" not in at.sidebar.selectbox(key="ticker").options
    code = f"from perfledger import Ledger; Ledger({str(seeded)!r}).log('Fresh_v1', 'NEWT', sharpe=3.0)"
    subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC}
    )
    at.run()
    assert "NEWT" in at.sidebar.selectbox(key="ticker").options
    assert show_tab(at, 2).metric[0].value == "121"


def test_raw_table_is_bounded(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "RAW_TABLE_ROWS", 7)
    at = run_app()
    assert len(raw_table(at)) == 7
    assert any("latest 7 of 20" in c.value for c in at.tabs[0].caption)


def test_csv_export_has_the_full_filtered_set(seeded: Path) -> None:
    with Ledger(seeded) as led:
        window = data.Window(at_least=(("sharpe", 0.5),))
        body = data.csv_export(led, data.Filters(ticker="BRK.B", window=window))
        expected = led.history("BRK.B", at_least={"sharpe": 0.5})
    lines = body.decode().splitlines()
    assert lines[0].startswith("timestamp,ticker,model_name,sharpe")
    assert len(lines) == len(expected) + 1


def test_csv_export_keeps_a_note_with_a_bare_carriage_return_in_its_cell(tmp_path: Path) -> None:
    """A note with a bare ``\r`` is quoted: Python's csv reader gives it back whole (pandas'
    to_csv left it bare, and every reader split the row there)."""
    import csv
    import io

    notes = ["a\rb", "c\r\nd", "plain"]
    with Ledger(tmp_path / "l") as led:
        for note in notes:
            led.log("M", "T", sharpe=1.0, notes=note)
        body = data.csv_export(led, data.Filters(ticker="T"))
    assert [r["notes"] for r in csv.DictReader(io.StringIO(body.decode(), newline=""))] == notes


# ---------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("ticker", "expected"),
    [
        ("AAPL", "AAPL"),
        ("^GSPC", "GSPC"),
        ("BRK.B", "BRK.B"),
        ("../../etc", "etc"),
        ("BTC-USD", "BTC-USD"),
        ("a/b\\c d", "a_b_c_d"),
        ("...", "data"),
        ("", "data"),
        ("..\\..\\x", "x"),
    ],
)
def test_download_filename_is_safe(ticker: str, expected: str) -> None:
    assert formatting.safe_filename_part(ticker) == expected
    name = formatting.download_filename(ticker, datetime(2026, 1, 2))
    assert name == f"perfledger_{expected}_20260102.csv"
    assert "/" not in name and "\\" not in name and ".." not in name


def test_downsample_bounds_points_and_keeps_the_level() -> None:
    x = np.arange(100_000, dtype=np.int64) * 1_000_000_000
    y = np.sin(np.arange(100_000) / 5000) + 2.0
    dx, dy = charts.downsample(x, y, 2_000)
    assert len(dx) <= 2_000 and len(dx) == len(dy)
    assert dx.dtype == np.int64 and np.all(np.diff(dx) > 0)
    assert abs(dy.mean() - y.mean()) < 0.01
    sx, _ = charts.downsample(x[:50], y[:50], 2_000)
    assert len(sx) == 50  # short series untouched


def test_time_series_figure_respects_point_budget() -> None:
    n = 30_000
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2025-01-01", periods=n, freq="min", tz="UTC"),
            "model_name": np.where(np.arange(n) % 3 == 0, "A", np.where(np.arange(n) % 3 == 1, "B", "C")),
            "sharpe": np.random.default_rng(1).normal(1, 0.3, n),
        }
    )
    fig, reduced = charts.time_series_figure(frame, "sharpe")
    assert reduced and len(fig.data) == 3
    assert all(len(t.x) <= charts.MAX_POINTS_PER_TRACE for t in fig.data)
    assert sum(len(t.x) for t in fig.data) <= charts.MAX_POINTS_PER_CHART
    small, reduced_small = charts.time_series_figure(frame.head(30), "sharpe")
    assert not reduced_small and sum(len(t.x) for t in small.data) == 30
    assert charts.points_budget(100) == charts.MAX_POINTS_PER_CHART // 100


def test_time_series_sends_epoch_milliseconds_on_a_date_axis() -> None:
    """x goes out as float epoch milliseconds (binary in the figure's JSON, issue 23) on a
    date axis: each point's value is its record's time, checked against pandas' own."""
    import plotly.io as pio

    stamps = pd.to_datetime(["2024-03-01T09:30:00.123Z", "2024-03-02T10:00:00Z", "2024-03-05T16:45:30.5Z"],
                            format="ISO8601")
    frame = pd.DataFrame({"timestamp": stamps, "model_name": "A", "sharpe": [1.0, 1.5, 0.5]})
    fig, _ = charts.time_series_figure(frame, "sharpe")
    assert fig.layout.xaxis.type == "date"
    expected = [ts.timestamp() * 1000 for ts in stamps]
    assert np.allclose(np.asarray(fig.data[0].x), expected, rtol=0, atol=1e-3)
    sent = json.loads(pio.to_json(fig, validate=False))["data"][0]["x"]
    assert isinstance(sent, dict) and sent["dtype"] == "f8"  # base64 binary, not one string a point


def test_heatmap_scores_low_mse_as_good() -> None:
    table = pd.DataFrame({"sharpe": [2.0, 1.0, 0.5], "mse": [0.01, 0.02, 0.05]}, index=["good", "mid", "bad"])
    dirs = {"sharpe": True, "mse": False}
    score = charts.goodness(table, dirs)
    # diverging around each column's median (0.5), scaled by the farthest value's distance
    assert score.loc["good"].tolist() == pytest.approx([1.0, 0.5 + 0.5 * 0.01 / 0.03])
    assert score.loc["mid"].tolist() == [0.5, 0.5]
    assert score.loc["bad"].tolist() == pytest.approx([0.25, 0.0])
    fig = charts.heatmap_figure(table, dirs, title="t")
    z = np.asarray(fig.data[0].z)
    assert z[0, 1] > 0.5 > z[2, 1]  # MSE column: 0.01 is better, 0.05 worse
    assert fig.data[0].text[0][1] == "0.0100"
    flat = charts.goodness(pd.DataFrame({"mse": [0.1, 0.1]}), dirs)
    assert flat["mse"].tolist() == [0.5, 0.5]


def test_tables_format_and_summaries() -> None:
    assert formatting.format_value("win_rate", 0.68) == "68.0%"
    assert formatting.format_value("sharpe", 1.849) == "1.85"
    assert formatting.format_value("mse", float("nan")) == "—"
    wide, long = formatting.best_summary(
        {"AAPL": {"best_sharpe": {"model": "M", "value": 1.5, "timestamp": "2026-01-01T00:00:00Z"}}}
    )
    assert wide.to_dict("records") == [{"Ticker": "AAPL", "Sharpe": "M · 1.50"}]
    assert long.iloc[0]["Logged"] == "2026-01-01 00:00 UTC"
    board = pd.DataFrame(
        {
            "ticker": ["A", "B"],
            "model_name": ["M", "M"],
            "records": [1, 3],
            "sharpe_mean": [1.0, 2.0],
            "sharpe_count": [1, 3],
        }
    )
    means = formatting.model_metric_means(board, ["sharpe"])
    assert means.loc["M", "sharpe"] == pytest.approx(1.75)  # weighted by counts


# ---------------------------------------------------------------------------- launch


class _FakeProc:
    """Streamlit in miniature: listens on the address and port of its command line (so the
    launcher finds it serving) until it is waited for, then "exits" with 3."""

    calls: ClassVar[list[tuple[list[str], dict[str, str]]]] = []

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.calls.append((cmd, env))
        option = dict(zip(cmd[5::2], cmd[6::2], strict=True))
        self.server = socket.create_server((option["--server.address"], int(option["--server.port"])))

    def wait(self, timeout: float | None = None) -> int:
        self.server.close()
        return 3

    def poll(self) -> int | None:
        return None

    def terminate(self) -> None:
        self.server.close()


def _a_free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_launch_adds_sample_data_and_runs_streamlit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _FakeProc.calls = []
    monkeypatch.setattr(subprocess, "Popen", _FakeProc)
    monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
    loc = tmp_path / "led"
    port = _a_free_port()
    assert launch.launch(str(loc), port=port, sample=True) == 3
    assert records(loc) == 1144
    cmd, env = _FakeProc.calls[0]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]).is_file()
    opts = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert opts == {
        "--server.address": "127.0.0.1",
        "--server.port": str(port),
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
        "--logger.hideWelcomeMessage": "true",
        "--logger.level": "warning",
    }
    assert env["PERFLEDGER_URL"] == str(loc.resolve())
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().out
    empty = tmp_path / "empty"
    launch.launch(str(empty), address="0.0.0.0")  # not asked: no sample data
    assert records(empty) == 0
    url = tmp_path / "url.db"
    launch.launch(f"sqlite:///{url}", sample=True)  # never on a URL store
    assert Ledger(f"sqlite:///{url}").stats()["records"] == 0
    monkeypatch.setenv("PERFLEDGER_READ_ONLY", "1")
    launch.launch(str(tmp_path / "ro"), sample=True)  # never in read-only mode
    assert not (tmp_path / "ro").exists()
    assert (
        dict(zip(_FakeProc.calls[1][0][5::2], _FakeProc.calls[1][0][6::2], strict=True))["--server.address"]
        == "0.0.0.0"
    )


def test_module_cli_parses_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from perfledger.dashboard import __main__ as cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "launch", lambda *a, **k: seen.update(args=a, kwargs=k) or 0)
    assert cli.main(["--store", "x", "--port", "9000", "--address", "0.0.0.0"]) == 0
    assert seen == {"args": ("x",), "kwargs": {"address": "0.0.0.0", "port": 9000, "sample": False,
                                               "allow_writes": False}}
    assert cli.main(["--store", "x", "--sample"]) == 0
    assert seen["kwargs"]["sample"] is True
    assert cli.main(["--address", "0.0.0.0", "--allow-writes"]) == 0
    assert seen["kwargs"]["allow_writes"] is True


def test_allow_writes_reaches_the_page_and_the_operator_is_told_the_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``perfledger dashboard --address 0.0.0.0 [--allow-writes]``: the flag travels to the page
    as $PERFLEDGER_ALLOW_WRITES (what dashboard/access.py reads) and the launcher prints the mode."""
    from typer.testing import CliRunner

    from perfledger.cli import app

    _FakeProc.calls = []
    monkeypatch.setattr(subprocess, "Popen", _FakeProc)
    monkeypatch.delenv("PERFLEDGER_ALLOW_WRITES", raising=False)
    store = str(tmp_path / "led")
    launch.launch(store, address="0.0.0.0", port=_a_free_port())
    assert "PERFLEDGER_ALLOW_WRITES" not in _FakeProc.calls[-1][1]
    assert "Read-only: served beyond this machine (--allow-writes to offer writes)" in capsys.readouterr().out
    result = CliRunner().invoke(app, ["--store", store, "dashboard", "--address", "0.0.0.0", "--port",
                                      str(_a_free_port()), "--allow-writes"])
    assert _FakeProc.calls[-1][1]["PERFLEDGER_ALLOW_WRITES"] == "1"
    assert "Writes enabled for anyone who can open the page" in result.output
    launch.launch(store, port=_a_free_port())  # loopback: nothing to say
    out = capsys.readouterr().out
    assert "Local URL" in out and "Read-only" not in out and "Writes enabled" not in out


@pytest.mark.slow
@pytest.mark.parametrize("case", ["busy", "invalid"])
def test_the_launcher_fails_without_writing_when_streamlit_cannot_start(tmp_path: Path, case: str) -> None:
    import socket
    import sys

    store = tmp_path / "memory" / "logs"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1] if case == "busy" else 70000
        proc = subprocess.run(
            [sys.executable, "-m", "perfledger.dashboard", "--store", str(store), "--port", str(port),
             "--sample"],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode != 0
    assert "port" in proc.stderr and "nothing" in proc.stderr
    assert not (tmp_path / "memory").exists()
