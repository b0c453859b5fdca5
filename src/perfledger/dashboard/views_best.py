"""Tab 2, 🏆 Best Models Summary: every ticker at once, within the sidebar's window and
thresholds (all time and every record when none is set)."""

from __future__ import annotations

import streamlit as st

from . import charts, data
from .formatting import best_summary, model_metric_means
from .insights import best_from_board

ALL_TICKERS = "All tickers"


def render_best_models(
    location: str, state: str, dirs: dict[str, bool], window: data.Window | None = None
) -> None:
    """Tab 2: the best model per ticker per metric, and a models × metrics heatmap."""
    window = window or data.Window()
    st.subheader("Best model per ticker and metric")
    if window.active():
        best = best_from_board(data.leaderboard(location, state, None, "sharpe", window), dirs)
        st.caption("Within the sidebar's window and thresholds (dates are shown for all-time bests only).")
    else:
        best = data.best(location, state)
    wide, long = best_summary(best)
    st.dataframe(wide, hide_index=True, width="stretch", key="best_wide")
    with st.expander("Details: values and dates"):
        st.dataframe(long, hide_index=True, width="stretch", key="best_long")

    st.subheader("Metrics comparison")
    scope_col, _ = st.columns([1, 2])
    scope = scope_col.selectbox("Scope", [ALL_TICKERS, *data.tickers(location, state)], key="heatmap_scope")
    board = data.leaderboard(location, state, None if scope == ALL_TICKERS else scope, "sharpe", window)
    table = model_metric_means(board, dirs)
    st.plotly_chart(
        charts.heatmap_figure(table, dirs, title=f"Mean of each metric per model · {scope}"),
        key="best_heatmap",
        width="stretch",
    )
    st.caption(
        "Colour: each model against the metric's median over the models shown (the middle "
        "colour), green better and red worse in the metric's own direction (↑ higher is better, "
        "↓ lower is better, e.g. MSE), by how far it is from the median relative to the farthest "
        "model, or to 10% of the median when all are that close. Cells show the raw means"
        + (" of the records within the sidebar's window and thresholds." if window.active() else ".")
    )
