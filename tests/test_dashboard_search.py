"""The dashboard's params and tags: sidebar filters and the param-value comparison, driven
headlessly with AppTest, plus the comparison figure itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from helpers import start_page
from streamlit.testing.v1 import AppTest

from perfledger import Ledger
from perfledger.dashboard import charts, data
from perfledger.sample import sample_records

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sample evaluations with a max_depth/lr sweep and a run tag (every 4th one nightly)."""
    loc = tmp_path / "ledger"
    monkeypatch.setenv("PERFLEDGER_URL", str(loc))
    monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
    rows = sample_records(evaluations=12, random_state=5)
    for i, r in enumerate(rows):
        r["params"] = {"max_depth": (3, 6, 9)[i % 3], "lr": 0.05 if i % 2 else 0.1, "layers": [64, 32],
                       "sched": {"kind": "cosine"}}
        r["tags"] = {"run": "nightly" if i % 4 == 0 else "adhoc"}
    with Ledger(loc) as led:
        led.log_many(rows)
    return loc


def run_app() -> AppTest:
    return start_page()


def raw_table(at: AppTest) -> pd.DataFrame:
    return at.tabs[0].dataframe[-1].value


def test_tag_and_param_filters_narrow_every_view(swept: Path) -> None:
    at = run_app()
    assert len(raw_table(at)) == 48
    at.sidebar.selectbox(key="tag_name").select("run").run()
    at.sidebar.selectbox(key="tag_value::run").select("nightly").run()
    assert not at.exception
    with Ledger(swept) as led:
        nightly = led.history(ticker="AAPL", tags={"run": "nightly"})
        both = led.history(ticker="AAPL", tags={"run": "nightly"}, params={"max_depth": 6})
        board = led.leaderboard("AAPL", tags={"run": "nightly"})
    assert len(raw_table(at)) == len(nightly) == 12
    assert any("run = 'nightly'" in c.value for c in at.tabs[0].caption)
    assert at.tabs[0].dataframe[0].value["Records"].sum() == board["records"].sum()
    at.sidebar.selectbox(key="param_name").select("max_depth").run()
    at.sidebar.selectbox(key="param_value::max_depth").select(6).run()
    assert not at.exception
    assert len(raw_table(at)) == len(both) > 0
    # Objects are listed by params() but cannot be filter values: not offered.
    at.sidebar.selectbox(key="param_name").select("sched").run()
    assert not at.exception and at.sidebar.selectbox(key="param_value_none").disabled
    assert len(raw_table(at)) == len(nightly)


def test_the_performance_tab_compares_a_params_values(swept: Path) -> None:
    at = run_app()
    perf = at.tabs[0]
    assert len(perf.get("plotly_chart")) == 3
    assert perf.selectbox(key="compare_param").value == "lr"  # the first with several values
    perf.selectbox(key="compare_param").select("max_depth").run()
    assert not at.exception
    with Ledger(swept) as led:
        frame = data.param_values.__wrapped__(str(swept), "x", data.Filters(ticker="AAPL"), "max_depth")
        assert len(frame) == len(led.history(ticker="AAPL"))
    assert sorted(set(frame["value"])) == [3, 6, 9]
    perf.selectbox(key="compare_param").select("layers").run()
    assert not at.exception


def test_no_params_no_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loc = tmp_path / "plain"
    monkeypatch.setenv("PERFLEDGER_URL", str(loc))
    with Ledger(loc) as led:
        led.log_many(sample_records(evaluations=3, labels=False))
    at = run_app()
    assert len(at.tabs[0].get("plotly_chart")) == 2
    assert any("No params or tags" in c.value for c in at.sidebar.caption)


def _frame(values: list[object], n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    vals = [values[i % len(values)] for i in range(n)]
    keys = [repr(v) for v in vals]
    return pd.DataFrame({"value": vals, "value_key": keys, "sharpe": rng.normal(1, 0.3, n)})


def test_comparison_figure_orders_values_and_counts_them() -> None:
    fig = charts.param_comparison_figure(_frame([9, 3, 6], 30), "max_depth", "sharpe", True)
    assert [t.name for t in fig.data] == ["3<br>n=10", "6<br>n=10", "9<br>n=10"]
    assert all(len(t.y) == 10 for t in fig.data)  # few points: every evaluation drawn


def test_comparison_figure_sends_no_points_for_large_groups() -> None:
    frame = _frame(["a", "b"], 50_000)
    fig = charts.param_comparison_figure(frame, "opt", "sharpe", True, max_points=1_000)
    assert len(fig.data) == 2 and all(t.y is None for t in fig.data)
    a = frame.loc[frame["value"] == "a", "sharpe"]
    assert fig.data[0].median[0] == pytest.approx(a.median())
    empty = charts.param_comparison_figure(frame.iloc[:0], "opt", "sharpe", True)
    assert len(empty.data) == 0
