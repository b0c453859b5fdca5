"""Whole tabs as components another Streamlit page can call: what the seed's own dashboard
page imported from ``memory.model_log`` (``render_model_performance_dashboard()`` and
``render_best_models_summary()``), drawn by the same code as perfledger's page.

Each resolves the ledger like ``Ledger()`` (``$PERFLEDGER_URL``, else ``./memory/logs``),
explains an empty ledger instead of drawing empty charts, and reads the same cached data.
"""

from __future__ import annotations

import streamlit as st

from . import data
from .formatting import md_code
from .sidebar import last_window, render_decay_settings, render_filters
from .views_best import render_best_models
from .views_performance import render_performance


def _ready() -> tuple[str, str] | None:
    location = data.current_location()
    stats = data.stats(location)
    if stats["records"] == 0:
        st.info(f"No evaluations logged yet in {md_code(data.display_location(location))}.")
        return None
    return location, stats["state"]


def model_performance_dashboard() -> None:
    """The 📈 Performance Dashboard tab: its filters in the sidebar, then the selected
    ticker's cards, decay badge, charts, leaderboard (PSR/DSR) and raw data."""
    ready = _ready()
    if ready is None:
        return
    location, state = ready
    dirs = data.directions(location, state)
    with st.sidebar:
        filters, metric = render_filters(location, state)
        board = data.leaderboard(location, state, filters.ticker, metric, filters.window)
        counts = board[f"{metric}_count"] if f"{metric}_count" in board.columns else board["records"]
        decay = render_decay_settings(int(counts.max()) if len(counts) else 0)
    render_performance(location, state, filters, metric, dirs, decay)


def best_models_summary() -> None:
    """The 🏆 Best Models Summary tab: best model per ticker and metric, and the heatmap,
    within the window of the filters if the page drew them (else all time)."""
    ready = _ready()
    if ready is None:
        return
    location, state = ready
    render_best_models(location, state, data.directions(location, state), last_window())
