"""The dashboard's rough edges a newcomer saw (issue 24, item 3), driven with ``AppTest``:
"All time" after the widest days-back stop, rolling-window sliders bounded by the data, a
decay panel that says how to widen its window, no "-0.00", slanted model names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from helpers import show_tab

from perfledger import Ledger
from perfledger.dashboard import charts
from perfledger.dashboard.display import NOTES_HELP, formatted
from perfledger.sample import sample_records
from tests.test_dashboard_monitoring import monitored_rows, run_app, texts


def test_days_back_puts_all_time_after_the_widest(store: Path) -> None:
    with Ledger(store) as led:
        led.log_many(monitored_rows())
    slider = run_app().sidebar.select_slider(key="days_back")
    assert slider.options[-1] == "All time" and slider.options[-2] == "365 d"
    assert slider.options[0] == "1 d" and slider.value == 0  # all time by default


def test_rolling_windows_are_bounded_by_the_evaluations(store: Path) -> None:
    with Ledger(store) as led:
        led.log_many(sample_records(evaluations=20, random_state=7, labels=False))
    at = run_app()
    at.toggle(key="rolling_mean").set_value(True).run()
    perf = at.select_slider(key="rolling_window")
    assert [int(o) for o in perf.options] == [2, 3, 5, 10, 20]
    trend = show_tab(at, 2).select_slider(key="trend_window")
    assert max(int(o) for o in trend.options) == 20 and min(int(o) for o in trend.options) == 2


def test_decay_panel_says_to_widen_the_window(store: Path) -> None:
    with Ledger(store) as led:
        led.log_many(monitored_rows())  # 40 daily evaluations per model
    at = run_app()
    at.sidebar.select_slider(key="days_back").set_value(14).run()
    assert not at.exception
    hints = texts(at.tabs[0], "info")
    assert any("widen **Days back**" in h and "30 evaluations" in h for h in hints), hints


def test_values_that_show_as_zero_never_show_minus_zero() -> None:
    import pandas as pd

    table = pd.DataFrame({"Sharpe (latest)": [-0.001, -0.0, -0.02, 1.234],
                          "Win rate": [-0.0001, 0.5, 0.6, 0.7], "MSE": [-0.0, 0.1, 0.2, 0.3]})
    out, _ = formatted(table, {"Sharpe (latest)": "sharpe", "Win rate": "win_rate", "MSE": "mse"})
    assert [f"{v:.2f}" for v in out["Sharpe (latest)"]] == ["0.00", "0.00", "-0.02", "1.23"]
    assert [f"{v:.1f}%" for v in out["Win rate"]] == ["0.0%", "50.0%", "60.0%", "70.0%"]
    assert f"{out['MSE'][0]:.4f}" == "0.0000"


def test_comparison_names_are_slanted_with_room() -> None:
    import pandas as pd

    board = pd.DataFrame({"ticker": ["AAPL"] * 3, "model_name": ["A_long_model_name"] * 3,
                          "sharpe_mean": [1.0, 2.0, 3.0], "sharpe_std": [0.1] * 3, "records": [5] * 3})
    spec = json.loads(charts.comparison_figure(board, "sharpe", True).to_json())
    assert spec["layout"]["xaxis"]["tickangle"] == -30 and spec["layout"]["xaxis"]["automargin"]


@pytest.mark.slow
def test_make_runs_log_prints_the_url_once_and_no_cache_warnings(tmp_path: Path) -> None:
    """``make run`` (``python -m perfledger.dashboard --sample``), a real Streamlit serving a
    real page to a real browser session (so the page's script and its caches run): its log
    names the address once (the launcher's line, with the ledger: not Streamlit's "Uvicorn
    server started on ..." too), and the page's runs log no "No runtime found" lines."""
    import subprocess
    import sys
    import time

    from test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, _free_port, _unavailable

    from tests.cli_runner import process_env

    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("playwright (python) is not installed")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is not installed")
    port = _free_port()
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perfledger.dashboard", "--sample", "--store", str(tmp_path / "l"),
             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=process_env(),
            stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while "Local URL" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.3)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    page = browser.new_page()
                    page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                    tables = page.locator("[data-testid='stDataFrame']")
                    expect(tables.filter(visible=True).first).to_be_visible(timeout=WAIT_MS)
                    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT_MS)
                    assert page.locator("[data-testid='stException']").count() == 0
                finally:
                    browser.close()
            time.sleep(1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = log.read_text()
    assert text.count(f"127.0.0.1:{port}") == 1 and text.count(f"http://127.0.0.1:{port}") == 1, text
    assert "No runtime found" not in text and "MemoryCacheStorageManager" not in text, text
    assert "Uvicorn" not in text, text
    assert "added 1144 sample evaluations" in text


def test_heatmap_colours_small_differences_as_small() -> None:
    """54.0% against 56.0% is not worst against best: within 10% of the median they stay near
    the middle colour; the colorbar says what the colours mean."""
    import pandas as pd

    table = pd.DataFrame({"win_rate": [0.54, 0.56], "sharpe": [0.5, 2.5]}, index=["A", "B"])
    dirs = {"win_rate": True, "sharpe": True}
    score = charts.goodness(table, dirs)
    # independent: median 0.55, spread max(0.01, 0.1 * 0.55) = 0.055
    assert score["win_rate"].tolist() == pytest.approx([0.5 - 0.5 * 0.01 / 0.055, 0.5 + 0.5 * 0.01 / 0.055])
    assert score["sharpe"].tolist() == pytest.approx([0.0, 1.0])  # a real difference: full scale
    bar = charts.heatmap_figure(table, dirs, title="t").data[0].colorbar
    assert list(bar.ticktext) == ["worse", "median", "better"] and "median" in bar.title.text


def test_tables_give_every_metric_header_room(store: Path) -> None:
    """No "Win ra…": each formatted metric column is at least as wide as its header needs,
    and notes get a wide column that says where the whole note is."""
    with Ledger(store) as led:
        led.log_many(monitored_rows())
        led.log("Steady", "AAPL", sharpe=1.0, win_rate=0.55, notes="a long note " * 20)
    at = run_app()
    configs = [json.loads(df.proto.columns) for df in at.tabs[0].dataframe]
    checked = 0
    for config in configs:
        for name, col in config.items():
            label = col.get("label") or name
            if col.get("type_config", {}).get("type") == "number":
                assert isinstance(col.get("width"), int) and col["width"] >= 7 * len(label), (label, col)
                checked += 1
    assert checked >= 6
    notes = [c["Notes"] for c in configs if "Notes" in c]
    assert notes and all(n["width"] == "large" and n["help"] == NOTES_HELP for n in notes)
    assert "double-click" in NOTES_HELP and "CSV" in NOTES_HELP
    # The grid gets each note whole (its overlay shows what the column cuts), never shortened.
    shown = [df.value for df in at.tabs[0].dataframe if "Notes" in df.value.columns]
    assert any("a long note " * 20 in set(frame["Notes"]) for frame in shown)


def _missing_shown_as(df: Any) -> str:
    """What the browser writes in an empty cell of this table (Streamlit's placeholder)."""
    return str(df.proto.placeholder)


def _format(df: Any, column: str) -> str | None:
    """The display format the browser applies to a column's numbers."""
    return (json.loads(df.proto.columns).get(column, {}).get("type_config") or {}).get("format")


def test_empty_cells_show_a_dash_and_the_leaderboard_fits_1280_px(store: Path) -> None:
    """Review 24 #10, #1: a model without an MSE shows "—", never "None"; the leaderboard's
    columns fit the main area of a 1280 px window (about 818 px beside the sidebar), the
    other metrics' means in their own table; the best-models table never says "None · —"."""
    rows = monitored_rows()
    for r in rows:
        if r["model_name"] == "Weak":
            del r["mse"]
    with Ledger(store) as led:
        led.log_many(rows)
        led.log("Steady", "AAPL", sharpe=1.0, win_rate=0.55, drawdown=-0.1, accuracy=0.6,
                total_return=0.1, notes="n")
    at = run_app()
    at.session_state["perf_more_open"] = True  # the other metrics' table is drawn once opened
    at.run()
    tables = {tuple(df.value.columns): df for df in at.tabs[0].dataframe}
    board = next(df for cols, df in tables.items() if "Rank" in cols and "Sharpe (mean)" in cols)
    config = json.loads(board.proto.columns)
    widths = [config[c].get("width") for c in board.value.columns]
    assert all(isinstance(w, int) for w in widths), config
    assert sum(widths) <= 818, config
    assert set(board.value.columns) >= {"Rank", "Model", "Records", "Sharpe (mean)", "Sharpe (latest)"}
    assert "MSE (mean)" not in board.value.columns
    more = next(df for cols, df in tables.items() if "MSE (mean)" in cols and "Sharpe (mean)" not in cols)
    weak = list(more.value["Model"]).index("Weak")
    assert pd.isna(more.value["MSE (mean)"].iloc[weak]) and _missing_shown_as(more) == "—"
    raw = next(df for cols, df in tables.items() if "Logged (UTC)" in cols)
    assert raw.value["Accuracy"].isna().any() and _missing_shown_as(raw) == "—"
    # Each of these tables writes an empty cell as "—", and every number column has a display
    # format (the cells keep their numbers, so sorting stays numeric): Sharpe with 2 decimals.
    for df in (board, more, raw):
        assert _missing_shown_as(df) == "—"
        numbers = [c for c in df.value.columns if pd.api.types.is_numeric_dtype(df.value[c])
                   and not pd.api.types.is_bool_dtype(df.value[c])]
        assert all(_format(df, c) for c in numbers), (list(df.value.columns), df.proto.columns)
    assert _format(raw, "Sharpe") == "%.2f" and pd.api.types.is_float_dtype(raw.value["Sharpe"])


def test_the_heatmap_caption_says_the_median_scale(store: Path) -> None:
    """Review 24 #11: the caption under the heatmap says what its colours mean now (around
    each metric's median), not "from its worst model (red) to its best (green)"."""
    with Ledger(store) as led:
        led.log_many(monitored_rows())
    at = run_app()
    best = show_tab(at, 1)
    captions = " ".join(c.value for c in best.caption)
    assert "median" in captions and "worst model" not in captions
