"""Tab 3, 📊 Quick Analytics: totals, top models, recent activity and the trend."""

from __future__ import annotations

from typing import Any

import streamlit as st

from . import charts, data
from .display import display_history, formatted
from .formatting import format_date, metric_label, time_ago, top_models

TREND_WINDOWS = (2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


def render_analytics(
    location: str,
    state: str,
    stats: dict[str, Any],
    filters: data.Filters,
    metric: str,
    dirs: dict[str, bool],
) -> None:
    """Tab 3: totals, top models overall, recent activity and the rolling trend."""
    c = st.columns(4)
    c[0].metric("Records", f"{stats['records']:,}", border=True)
    c[1].metric("Tickers", f"{stats['tickers']:,}", border=True)
    c[2].metric("Models", f"{stats['models']:,}", border=True)
    c[3].metric(
        "Last log",
        time_ago(stats["last_timestamp"]),
        delta=format_date(stats["last_timestamp"]),
        delta_color="off",
        delta_arrow="off",
        border=True,
    )

    left, right = st.columns(2)
    with left:
        st.markdown(f"##### 🥇 Top models by mean {metric_label(metric)}")
        top = top_models(
            data.leaderboard(location, state, None, metric, None), metric, dirs.get(metric, True)
        )
        top, config = formatted(top, {top.columns[-1]: metric})
        st.dataframe(top, hide_index=True, width="stretch", key="top_models", column_config=config)
    with right:
        st.markdown("##### 🕒 Recent activity")
        table, config = display_history(data.recent(location, state, 20))
        st.dataframe(table, hide_index=True, width="stretch", column_config=config, key="recent")

    st.markdown(f"##### Performance trend · {filters.ticker}")
    # A window that smooths: ~1/40 of the longest model's series (from the database's counts).
    board = data.leaderboard(location, state, filters.ticker, metric, filters.days_back)
    longest = int(board["records"].max()) if not board.empty else 0
    suggested = max(5, next((w for w in TREND_WINDOWS if w >= longest / 40), TREND_WINDOWS[-1]))
    window = st.select_slider(
        "Rolling window (evaluations)", TREND_WINDOWS, value=suggested, key="trend_window"
    )
    frame = data.history(location, state, filters)
    st.plotly_chart(charts.trend_figure(frame, metric, window), key="trend", width="stretch")
