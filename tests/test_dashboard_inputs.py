"""The dashboard's log form explains every field's bad input beside it, and very large or
tiny values are readable everywhere on the page (issue 20, item 8)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import start_page
from streamlit.testing.v1 import AppTest

from perfledger import Ledger
from perfledger.dashboard.charts import comparison_figure, time_series_figure
from perfledger.dashboard.formatting import format_value, plotly_tickformat

ROOT = Path(__file__).resolve().parents[1]


def _run() -> AppTest:
    return start_page()


def _count(store: Path) -> int:
    with Ledger(store) as led:
        return int(led.stats()["records"])


def _error_after(at: AppTest, key: str) -> str | None:
    """The error element that directly follows the widget ``key`` in the sidebar, if any."""
    flat: list[Any] = []

    def walk(node: Any) -> None:
        flat.append(node)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.sidebar)
    for i, node in enumerate(flat):
        if getattr(node, "key", None) == key:
            following = [n for n in flat[i + 1:i + 3] if getattr(n, "type", "") == "alert" or
                         type(n).__name__ == "Error"]
            return following[0].value if following else None
    raise AssertionError(f"no widget {key}")


@pytest.mark.parametrize(("field", "text", "named"), [
    ("log_params", "a=" + "[" * 1000 + "]" * 1000, "params"),
    ("log_params", "a=" + "[" * 100_000, "params"),
    ("log_metrics", "x=abc", "metrics"),
    ("log_metrics", "x=1e400", "metrics"),
    ("log_metrics", "x=nan", "metrics"),
    ("log_metrics", "novalue", "metrics"),
    ("log_tags", "novalue", "tags"),
])
def test_a_bad_field_is_explained_beside_it(store: Path, field: str, text: str, named: str) -> None:
    at = _run()
    at.sidebar.text_input(key="log_model").input("M")
    at.sidebar.text_input(key="log_ticker").input("T")
    at.sidebar.text_input(key=field).input(text)
    at = at.sidebar.button(key="log_submit").click().run()
    assert not at.exception, at.exception
    message = _error_after(at, field)
    assert message and named in message, (message, [e.value for e in at.sidebar.error])
    assert _count(store) == 0
    assert at.sidebar.button(key="log_submit")  # the form is still there


def test_a_bad_metric_is_explained_beside_its_input(store: Path) -> None:
    at = _run()
    at.sidebar.text_input(key="log_model").input("M")
    at.sidebar.text_input(key="log_ticker").input("T")
    at.sidebar.number_input(key="log_win_rate").set_value(68.0)
    at = at.sidebar.button(key="log_submit").click().run()
    message = _error_after(at, "log_win_rate")
    assert message and "win_rate" in message
    assert _error_after(at, "log_sharpe") is None
    assert _count(store) == 0


# ------------------------------------------------------------------ large and tiny values


@pytest.mark.parametrize(("metric", "value", "expected"), [
    ("sharpe", 1e100, "1e+100"), ("sharpe", -1e100, "-1e+100"), ("sharpe", 1e-100, "1e-100"),
    ("sharpe", 1.2345, "1.23"), ("mse", 1e-100, "1e-100"), ("mse", 0.0234, "0.0234"),
    ("total_return", 1e99, "1e+101%"), ("total_return", 0.25, "25.0%"), ("sortino", 1e50, "1e+50"),
    ("sharpe", 0.0, "0.00"),
])
def test_format_value_is_readable_at_every_magnitude(metric: str, value: float, expected: str) -> None:
    assert format_value(metric, value) == expected


def test_charts_switch_to_scientific_notation_for_extreme_values() -> None:
    when = pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True)
    frame = pd.DataFrame({"timestamp": when, "model_name": ["M", "M"], "sharpe": [1e100, 2e99]})
    fig, _ = time_series_figure(frame, "sharpe")
    assert fig.layout.yaxis.tickformat == ".3~e"
    assert all(".3~e" in t.hovertemplate for t in fig.data)
    normal = frame.assign(sharpe=[1.0, 2.0])
    assert time_series_figure(normal, "sharpe")[0].layout.yaxis.tickformat == ".2f"
    board = pd.DataFrame({"ticker": ["T"], "model_name": ["M"], "records": [2], "sharpe_mean": [1e-100],
                          "sharpe_std": [0.0]})
    assert ".3~e" in comparison_figure(board, "sharpe", True).data[0].hovertemplate
    assert plotly_tickformat("win_rate", np.array([0.5, 0.6])) == ".1%"


def test_the_page_never_prints_a_hundred_digit_number(store: Path) -> None:
    with Ledger(store) as led:
        for i in range(3):
            led.log("Big", "AAPL", sharpe=1e100, mse=1e-100, total_return=1e99, metrics={"x": 1e100})
            led.log("Small", "AAPL", sharpe=1e-100 * (i + 1), mse=1e100, total_return=-0.5)
    at = _run()
    texts: list[str] = []
    for kind in ("markdown", "metric", "caption", "info", "warning", "success", "error"):
        for el in at.get(kind):
            texts.append(str(getattr(el, "value", "")) + str(getattr(el, "label", "")))
    for table in at.dataframe:
        texts.extend(str(v) for v in table.value.astype(str).to_numpy().ravel())
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        texts.extend(str(t.get("hovertemplate", "")) for t in spec["data"])
        texts.extend(str(t.get("text", "")) for t in spec["data"])
    long_runs = [t for t in texts if re.search(r"\d{25}", t)]
    assert not long_runs, long_runs[:3]
