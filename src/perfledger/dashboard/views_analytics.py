"""Tab 3, 📊 Quick Analytics: totals, top models, recent activity, decaying models across
every ticker, and the trend of the selected ticker."""

from __future__ import annotations

from typing import Any

import streamlit as st

from . import charts, data
from .display import display_history, formatted, show_table
from .formatting import format_date, md, metric_label, time_ago, top_models
from .insights import flagged_models, windows_up_to
from .sidebar import DecaySettings
from .views_decay import render_decay_panel

TREND_WINDOWS = (2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)



def render_analytics(
    location: str,
    state: str,
    stats: dict[str, Any],
    filters: data.Filters,
    metric: str,
    dirs: dict[str, bool],
    decay: DecaySettings | None = None,
) -> None:
    """Tab 3: totals, top models overall, recent activity, decaying models and the trend.
    Everything but the totals shows the records within the sidebar's window and thresholds
    (the ticker and model choice apply to the trend; the other parts span every ticker)."""
    decay = decay or DecaySettings()
    window = filters.window
    whole = data.leaderboard(location, state, None, "sharpe", window)
    c = st.columns(4)
    in_view = int(whole["records"].sum()) if not whole.empty else 0
    c[0].metric("Records", f"{stats['records']:,}", border=True,
                delta=f"{in_view:,} match the filters" if window.active() else None, delta_color="off",
                delta_arrow="off")
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
        top = top_models(whole, metric, dirs.get(metric, True))
        top, config = formatted(top, {top.columns[-1]: metric})
        show_table(top, config, hide_index=True, width="stretch", key="top_models")
    with right:
        st.markdown("##### 🕒 Recent activity")
        table, config = display_history(data.recent(location, state, window, 20))
        show_table(table, config, hide_index=True, width="stretch", key="recent")
    if window.active():
        st.caption("Top models and recent activity: the records within the sidebar's window and thresholds.")

    st.markdown(f"##### ⚠️ Decaying models · all tickers, by {metric_label(metric)}")
    everywhere = data.decay(location, state, None, (), metric, window, decay.recent, decay.alpha)
    render_decay_panel(everywhere, metric=metric, recent=decay.recent, alpha=decay.alpha,
                       higher=dirs.get(metric), with_ticker=True, key="analytics_decay")

    st.markdown(f"##### Performance trend · {md(filters.ticker)}")
    # A window that smooths: ~1/40 of the longest model's series (from the database's counts).
    board = data.leaderboard(location, state, filters.ticker, metric, window)
    longest = int(board["records"].max()) if not board.empty else 0
    stops = windows_up_to(TREND_WINDOWS, longest)
    suggested = max(5, next((w for w in stops if w >= longest / 40), stops[-1]))
    span = st.select_slider(
        "Rolling window (evaluations)", stops, value=min(suggested, stops[-1]), key="trend_window"
    )
    frame = data.series(location, state, filters, metric)
    ticker_rows = everywhere[everywhere["ticker"] == filters.ticker] if not everywhere.empty else everywhere
    if filters.models and not ticker_rows.empty:
        ticker_rows = ticker_rows[ticker_rows["model_name"].isin(filters.models)]
    st.plotly_chart(charts.trend_figure(frame, metric, span, flagged=flagged_models(ticker_rows)),
                    key="trend", width="stretch")
