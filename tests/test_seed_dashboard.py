"""The seed's origin page imported ``render_model_performance_dashboard()`` and
``render_best_models_summary()`` from ``memory.model_log``: a team's own page that calls them,
as such a page would, keeps working (driven with ``AppTest``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("streamlit")

from streamlit.testing.v1 import AppTest

from perfledger import Ledger
from perfledger.sample import sample_records

ROOT = Path(__file__).resolve().parents[1]

TEAM_PAGE = """
import streamlit as st
from memory.model_log import render_best_models_summary, render_model_performance_dashboard

st.set_page_config(page_title="Our research desk", layout="wide")
st.title("Our research desk")
performance, best = st.tabs(["Performance", "Best models"])
with performance:
    render_model_performance_dashboard()
with best:
    render_best_models_summary()
"""


@pytest.fixture
def seed_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory whose ./memory/logs is the ledger, as in the seed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFLEDGER_URL", raising=False)
    monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
    return tmp_path


def run_page() -> AppTest:
    at = AppTest.from_string(TEAM_PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_team_page_draws_both_tabs_from_memory_logs(seed_dir: Path) -> None:
    with Ledger(seed_dir / "memory" / "logs") as led:
        led.log_many(sample_records(evaluations=20, random_state=4, labels=False))
    at = run_page()
    performance, best = at.tabs
    assert performance.subheader[0].value == "AAPL"
    assert len(performance.get("plotly_chart")) == 2  # the metric over time, the comparison
    assert any("Rank" in df.value.columns for df in performance.dataframe)
    assert any("Decay test" in c.value for c in performance.caption)
    wide = best.dataframe[0].value
    assert sorted(wide["Ticker"]) == sorted(["AAPL", "MSFT", "GOOGL", "BRK.B", "BTC-USD", "^GSPC"])
    assert len(best.get("plotly_chart")) == 1
    # Its filters are in the sidebar, and the summary follows their window.
    at.sidebar.selectbox(key="ticker").select("MSFT").run()
    assert not at.exception and at.tabs[0].subheader[0].value == "MSFT"
    at.sidebar.number_input(key="min_sharpe").set_value(1.5).run()
    assert not at.exception
    assert any("window and thresholds" in c.value for c in at.tabs[1].caption)


def test_an_empty_ledger_is_explained_not_drawn(seed_dir: Path) -> None:
    at = run_page()
    infos = [i.value for i in at.info]
    assert len(infos) == 2 and all("No evaluations logged yet" in i for i in infos)
    assert "./memory/logs" in infos[0]


@pytest.mark.slow
def test_importing_the_seed_module_does_not_import_streamlit() -> None:
    code = ("import sys, memory.model_log as m; m.render_best_models_summary; "
            "print('streamlit' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
