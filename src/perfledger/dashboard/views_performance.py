"""Tab 1, 📈 Performance Dashboard: the selected ticker in depth."""

from __future__ import annotations

import streamlit as st

from . import charts, data
from .display import display_history, formatted
from .formatting import (
    download_filename,
    format_date,
    format_value,
    leaderboard_view,
    metric_label,
    order_metrics,
)


def render_performance(
    location: str, state: str, filters: data.Filters, metric: str, dirs: dict[str, bool]
) -> None:
    """Tab 1: best-model cards, the metric over time, model comparison, leaderboard, raw data."""
    frame = data.history(location, state, filters)
    st.subheader(f"{filters.ticker}")
    st.caption(f"{len(frame):,} evaluations match · {filters.describe()}")

    best = data.best(location, state).get(filters.ticker, {})
    if best:
        st.markdown("##### Best models (all time)")
        metrics = order_metrics(k.removeprefix("best_") for k in best)
        for row_start in range(0, len(metrics), 3):
            row = metrics[row_start : row_start + 3]
            for col, m in zip(st.columns(3), row, strict=False):
                b = best[f"best_{m}"]
                col.metric(
                    f"Best {metric_label(m)}",
                    format_value(m, b["value"]),
                    delta=b["model"],
                    delta_color="off",
                    delta_arrow="off",
                    border=True,
                    help=f"{b['model']}, logged {format_date(b['timestamp'])}",
                )
    if frame.empty:
        st.info("No evaluations match these filters — widen the date range or relax the thresholds.")
        return

    fig, reduced = charts.time_series_figure(
        frame, metric, title=f"{metric_label(metric)} over time · {filters.ticker}"
    )
    st.plotly_chart(fig, key="perf_timeseries", width="stretch")
    if reduced:
        st.caption(
            "Long series are drawn as time-bucket means "
            f"(≤ {charts.MAX_POINTS_PER_TRACE:,} points per model)."
        )

    board = data.leaderboard(location, state, filters.ticker, metric, filters.days_back)
    if filters.models:
        board = board[board["model_name"].isin(filters.models)]
    left, right = st.columns([5, 7])
    with left:
        st.plotly_chart(
            charts.comparison_figure(board, metric, dirs.get(metric, True)),
            key="perf_comparison",
            width="stretch",
        )
    with right:
        st.markdown("##### 🏅 Model leaderboard")
        st.caption(
            f"Ranked by mean {metric_label(metric)}"
            f"{f' over the last {filters.days_back:g} days' if filters.days_back else ' (all time)'}; "
            "aggregated by the database"
            + (
                " (the date range and thresholds apply to the charts and raw data only)."
                if filters.start or filters.end or filters.at_least or filters.at_most
                else "."
            )
        )
        view = leaderboard_view(board, metric, dirs)
        metric_of = {c: m for m in dirs for c in view.columns if c.startswith(metric_label(m) + " (")}
        view, config = formatted(view, metric_of)
        st.dataframe(view, hide_index=True, width="stretch", column_config=config, key="perf_leaderboard")

    st.markdown("##### Raw data")
    shown = frame.iloc[::-1].head(data.RAW_TABLE_ROWS)
    table, config = display_history(shown)
    st.dataframe(table, hide_index=True, width="stretch", height=320, column_config=config, key="perf_raw")
    note = (
        f"Showing the latest {len(shown):,} of {len(frame):,} evaluations; the CSV has all of them."
        if len(frame) > len(shown)
        else f"{len(frame):,} evaluations, newest first."
    )
    c1, c2 = st.columns([3, 1])
    c1.caption(note)
    led = data.get_ledger(location)
    c2.download_button(
        "⬇️ Download CSV",
        data=lambda: data.csv_export(led, filters),
        file_name=download_filename(filters.ticker),
        mime="text/csv",
        on_click="ignore",
        key="download_csv",
        width="stretch",
    )
