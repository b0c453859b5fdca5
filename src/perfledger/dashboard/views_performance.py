"""Tab 1, 📈 Performance Dashboard: the selected ticker in depth.

Every part shows the records the sidebar selects (ticker, models, days back, date range,
metric thresholds), with two deliberate exceptions said on the page: the decay test ignores
the metric thresholds (filtering on the tested values would hide the drop it looks for), and
PSR/DSR count every model ever tried on the ticker (hiding trials is the luck they correct).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..records.record import CORE_METRICS
from . import charts, data, experiments
from .display import MODEL_WIDTH, display_history, formatted, header_width, show_table
from .formatting import (
    download_filename,
    format_date,
    format_value,
    leaderboard_view,
    md,
    metric_label,
    order_metrics,
)
from .insights import best_from_board, confidence_note, flagged_models, windows_up_to, with_confidence
from .sidebar import DecaySettings
from .views_decay import render_decay_panel

ROLLING_WINDOWS = (2, 3, 5, 10, 20, 50, 100, 200)


def _best_cards(best: dict[str, Any], filtered: bool, metric: str) -> None:
    """The seed's metrics and the chosen one (a backtest's many custom metrics would bury them)."""
    st.markdown("##### Best models " + ("(in the filtered records)" if filtered else "(all time)"))
    shown = set(CORE_METRICS) | {metric}
    metrics = order_metrics(k.removeprefix("best_") for k in best
                            if best[k]["model"] is not None and k.removeprefix("best_") in shown)
    for row_start in range(0, len(metrics), 3):
        row = metrics[row_start : row_start + 3]
        for col, m in zip(st.columns(3), row, strict=False):
            b = best[f"best_{m}"]
            col.metric(
                f"Best {metric_label(m)}",
                format_value(m, b["value"]),
                delta=md(b["model"]),
                delta_color="off",
                delta_arrow="off",
                border=True,
                help=md(b["model"]) + (f", logged {format_date(b['timestamp'])}" if b["timestamp"] else ""),
            )


def render_performance(
    location: str,
    state: str,
    filters: data.Filters,
    metric: str,
    dirs: dict[str, bool],
    decay: DecaySettings | None = None,
) -> None:
    """Tab 1: best-model cards, decaying models, the metric over time (with a rolling mean),
    model comparison, leaderboard with PSR/DSR, raw data."""
    decay = decay or DecaySettings()
    window = filters.window
    # Only the charted metric's column: the raw table reads its own latest rows, after the chart.
    frame = data.series(location, state, filters, metric)
    st.subheader(md(filters.ticker))
    st.caption(f"{len(frame):,} evaluations match · {md(filters.describe())}")

    board = data.leaderboard(location, state, filters.ticker, metric, window)
    if filters.models:
        board = board[board["model_name"].isin(filters.models)]
    narrowed = window.active() or bool(filters.models)
    best = (best_from_board(board, dirs).get(filters.ticker, {}) if narrowed
            else data.best(location, state).get(filters.ticker, {}))
    if frame.empty:
        if best:
            _best_cards(best, narrowed, metric)
        st.info("No evaluations match these filters — widen the date range or relax the thresholds.")
        return

    tested = data.decay(location, state, filters.ticker, filters.models, metric, window,
                        decay.recent, decay.alpha)
    # The cards and the decay panel keep their place above the chart but are filled after it:
    # the chart is what a person waits for, and the browser draws it while they arrive.
    cards, decay_box = st.container(), st.container()

    c1, c2 = st.columns([1, 3])
    rolling = c1.toggle("Rolling mean", key="rolling_mean",
                        help="Each model's mean over its last N evaluations, drawn over the raw values.")
    if rolling:
        stops = windows_up_to(ROLLING_WINDOWS, int(frame.groupby("model_name").size().max()))
        span = c2.select_slider("Rolling window (evaluations)", stops, value=min(10, stops[-1]),
                                key="rolling_window")
    else:
        span = None
    fig, reduced = charts.time_series_figure(
        frame, metric, title=f"{metric_label(metric)} over time · {filters.ticker}",
        rolling=span, flagged=flagged_models(tested),
    )
    st.plotly_chart(fig, key="perf_timeseries", width="stretch")
    if reduced:
        st.caption(
            "Long series are drawn as time-bucket means "
            f"(≤ {charts.MAX_POINTS_PER_TRACE:,} points per model)."
        )
    if best:
        with cards:
            _best_cards(best, narrowed, metric)
    with decay_box:
        render_decay_panel(tested, metric=metric, recent=decay.recent, alpha=decay.alpha,
                           higher=dirs.get(metric), with_ticker=False, key="perf_decay")

    st.markdown("##### 🏅 Model leaderboard")
    ranked_by = metric if metric in dirs else "sharpe"
    st.caption(
        f"Ranked by mean {metric_label(ranked_by)} over the filtered records "
        f"({window_words(filters)}); aggregated by the database. Best Sharpe, PSR and DSR: each "
        f"model's best Sharpe over all its history on {md(filters.ticker)}, judged against every model "
        "tried there."
    )
    conf = data.sharpe_confidence(location, state, filters.ticker)
    full = with_confidence(leaderboard_view(board, ranked_by, order_metrics(set(dirs) | {metric})), conf)
    # The ranking and its confidence in one table that fits a 1280 px window; the other
    # metrics' means below it. Effective trials is the ticker's, the same on every row: the
    # note beside the chart says it.
    full = full.drop(columns="Effective trials", errors="ignore")
    full = full.rename(columns={"MinTRL (years)": "MinTRL (y)"})
    ranked_label = metric_label(ranked_by) + " ("
    others = [c for c in full.columns if c.endswith(" (mean)") and not c.startswith(ranked_label)]
    view = full.drop(columns=others)
    metric_of = {c: m for m in {*dirs, metric} for c in full.columns if c.startswith(metric_label(m) + " (")}
    metric_of["Best Sharpe"] = "sharpe"
    view, config = formatted(view, metric_of)
    for col in ("PSR", "DSR"):
        config[col] = st.column_config.NumberColumn(col, format="%.3f", width=header_width(col))
    config["MinTRL (y)"] = st.column_config.NumberColumn(
        "MinTRL (y)", format="%.2f", width=header_width("MinTRL (y)"),
        help="Minimum track record length, in years: how long a backtest must be for its Sharpe "
             "to be above zero with 95% confidence.")
    config["Model"] = st.column_config.TextColumn("Model", width=MODEL_WIDTH)
    for col in ("Rank", "Records"):
        config[col] = st.column_config.NumberColumn(col, format="%d", width=header_width(col))
    show_table(view, config, hide_index=True, width="stretch", key="perf_leaderboard")
    if others:  # its table is drawn only while it is open (a click reruns the page; issue 23)
        more_box = st.expander(f"Other metrics: mean per model ({len(others)})", key="perf_more_open",
                               on_change="rerun")
    if others and more_box.open:
        with more_box:
            more, more_config = formatted(full[[c for c in ("Rank", "Ticker", "Model") if c in full.columns]
                                               + others], metric_of)
            show_table(more, more_config, hide_index=True, width="stretch", key="perf_leaderboard_more")
    left, right = st.columns([5, 7])
    with left:
        st.plotly_chart(
            charts.comparison_figure(board, metric, dirs.get(metric, True)),
            key="perf_comparison",
            width="stretch",
        )
    with right:
        kind, text = confidence_note(conf, filters.ticker)
        getattr(st, kind)(text)
        st.caption(
            "PSR: the probability that the model's true Sharpe is above zero, given how many "
            "periods its backtest had and how skewed and fat-tailed its returns were. DSR: the "
            "same, against the best Sharpe that luck alone would produce among all the models "
            "tried (Bailey & López de Prado). Both need backtests logged with `log_backtest`."
        )
    experiments.render_comparison(location, state, filters, metric, dirs)

    st.markdown("##### Raw data")
    shown = data.latest(location, state, filters, data.RAW_TABLE_ROWS)
    table, config = display_history(shown)
    show_table(table, config, hide_index=True, width="stretch", height=320, key="perf_raw")
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


def window_words(filters: data.Filters) -> str:
    """The time window and thresholds in a few words, e.g. "last 30 days, sharpe ≥ 1"."""
    return ", ".join(filters.window.parts(labels=False)) or "all time"
