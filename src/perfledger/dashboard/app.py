"""Layout of the Model Performance Dashboard: sidebar (filters, actions), then four tabs.

Each part lives in its own module: :mod:`.sidebar` (filters and the actions that write),
:mod:`.views_performance`, :mod:`.views_best`, :mod:`.views_analytics` and
:mod:`.views_backtests` (one per tab).
This module only puts them on the page, and explains an empty ledger. Only the selected
tab is drawn: switching tabs reruns the page, so nobody waits for views they do not look at.
Writes run as widget callbacks, and exist on the page only when :mod:`.access` allows them:
never with ``$PERFLEDGER_READ_ONLY=1`` or a ledger this user may only read, and, served
beyond loopback, only with the operator's ``--allow-writes`` or for named signed-in users.
The sidebar says which mode the page is in and why.
"""

from __future__ import annotations

import streamlit as st

from .. import PerfLedgerError
from . import data, readahead
from .access import sign_in_gate
from .formatting import md, md_code
from .sidebar import (
    on_add_sample,
    render_actions,
    render_decay_settings,
    render_direction_prompt,
    render_filters,
)
from .views_analytics import render_analytics
from .views_backtests import render_backtests
from .views_best import render_best_models
from .views_performance import render_performance

ACCESS_HELP = (
    "Served on 127.0.0.1 the page offers writes; served on any other address it is read-only "
    "unless started with --allow-writes, or writes are allowed for the users named in "
    "allow_writes_for (docs/deployment.md)."
)
TABS = ("📈 Performance Dashboard", "🏆 Best Models Summary", "📊 Quick Analytics", "📉 Backtests")
#: Session-state key of the selected tab (``st.session_state[TAB_KEY] = TABS[1]`` selects one).
TAB_KEY = "view"
FIRST_RUN_SNIPPET = """from memory.model_log import log_model_performance   # the seed's API

log_model_performance(model_name="LSTM_v1", ticker="AAPL", sharpe=1.85, mse=0.0234,
                      drawdown=-0.12, total_return=0.25, win_rate=0.68, accuracy=0.72,
                      notes="LSTM model with 50 epochs")

# or, with the library directly:
from perfledger import Ledger
Ledger().log("XGBoost_v2", "AAPL", sharpe=2.1, mse=0.0189, win_rate=0.75)
"""


def render_first_run(location: str, readonly: bool) -> None:
    """An empty ledger: explain how to log instead of showing empty charts."""
    st.info(f"👋 No evaluations logged yet in {md_code(data.display_location(location))}.")
    st.markdown("Log an evaluation from your training code and it appears here on the next refresh:")
    st.code(FIRST_RUN_SNIPPET, language="python")
    st.markdown(
        "Set `PERFLEDGER_URL` to point the dashboard at another ledger "
        "(a directory, `sqlite:///file.db` or a PostgreSQL URL)."
    )
    if not readonly:
        st.button(
            "➕ Add sample data to explore",
            key="first_run_sample",
            type="primary",
            on_click=on_add_sample,
            args=(location,),
        )


def main() -> None:
    """Draw the whole page (Streamlit reruns this top to bottom on every interaction); the
    dashboard's read-ahead waits while any page is being drawn."""
    with readahead.drawing():
        _draw()


def _draw() -> None:
    st.set_page_config(page_title="Model Performance Dashboard", page_icon="📈", layout="wide")
    sign_in_gate()
    location = data.current_location()
    try:
        mode = data.access(location)
        stats = data.stats(location)
    except PerfLedgerError as exc:  # e.g. a read-only directory that holds no ledger yet
        st.error(md(exc))
        st.stop()
    readonly = not mode.writable
    state = stats["state"]

    st.title("📈 Model Performance Dashboard")
    where = md_code(data.display_location(location))
    st.caption(f"Ledger: {where}" + (" · 🔒 read-only" if readonly else ""))

    with st.sidebar:
        filters_box = st.container()
        actions_box = st.container()  # filled last: the charts reach the browser first

    def actions() -> None:
        with actions_box:
            st.caption(md(mode.reason), help=ACCESS_HELP)
            if not readonly:
                render_actions(location, stats["records"])

    if stats["records"] == 0:
        actions()
        render_first_run(location, readonly)
        return

    dirs = data.directions(location, state)
    with filters_box:
        filters, metric = render_filters(location, state)
        if metric not in dirs:
            render_direction_prompt(location, metric, readonly)
        board = data.leaderboard(location, state, filters.ticker, metric, filters.window)
        counts = board[f"{metric}_count"] if f"{metric}_count" in board.columns else board["records"]
        decay = render_decay_settings(int(counts.max()) if len(counts) else 0)
    # Only the selected tab runs (a tab switch reruns the script): the hidden tabs' queries,
    # figures and tables cost the first chart ~40% of the script run and most of the browser's
    # drawing (issue 23; docs/benchmarks.md).
    perf, best, analytics, backtests = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun")
    if perf.open:
        with perf:
            render_performance(location, state, filters, metric, dirs, decay)
    elif best.open:
        with best:
            render_best_models(location, state, dirs, filters.window)
    elif analytics.open:
        with analytics:
            render_analytics(location, state, stats, filters, metric, dirs, decay)
    elif backtests.open:
        with backtests:
            render_backtests(location, state, filters)
    actions()
    if perf.open:  # the page is drawn: warm what a switch to another ticker would read
        readahead.prefetch(location, state, filters, metric, decay.recent, decay.alpha)
