"""Layout of the Model Performance Dashboard: sidebar (filters, actions), then three tabs.

Writes (sample data, clear, the log form) run as widget *callbacks*: Streamlit runs those
before the script, so the same run already reads the changed ledger, and the confirmation
checkbox can be reset after a clear. ``$PERFLEDGER_READ_ONLY=1``, or a ledger this user may
only read, removes every write.
"""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from .. import PerfLedgerError, ValidationError
from ..record import CORE_METRICS
from ..sample import add_sample_data
from . import charts, data, experiments
from .formatting import (
    PERCENT_METRICS,
    best_summary,
    download_filename,
    format_date,
    format_value,
    leaderboard_view,
    metric_label,
    model_metric_means,
    order_metrics,
    time_ago,
    top_models,
)

TABS = ("📈 Performance Dashboard", "🏆 Best Models Summary", "📊 Quick Analytics")
DAYS_BACK_OPTIONS = (0, 1, 7, 14, 30, 60, 90, 180, 365)
ALL_TICKERS = "All tickers"
TREND_WINDOWS = (2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
FIRST_RUN_SNIPPET = """from memory.model_log import log_model_performance   # the seed's API

log_model_performance(model_name="LSTM_v1", ticker="AAPL", sharpe=1.85, mse=0.0234,
                      drawdown=-0.12, total_return=0.25, win_rate=0.68, accuracy=0.72,
                      notes="LSTM model with 50 epochs")

# or, with the library directly:
from perfledger import Ledger
Ledger().log("XGBoost_v2", "AAPL", sharpe=2.1, mse=0.0189, win_rate=0.75)
"""


# ---------------------------------------------------------------------- small helpers


def _flash(kind: str, message: str) -> None:
    """Queue a message for this run (callbacks run before the page is drawn)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def _show_flash() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        getattr(st, kind)(message)


def _formatted(table: pd.DataFrame, metric_of: dict[str, str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``table`` ready to show, with its column formats: rates and returns as "12.3%" (scaled
    here, since Streamlit's percent preset varies its decimals), Sharpe with 2 decimals, MSE 4."""
    out = table.copy()
    config: dict[str, Any] = {}
    for col, m in metric_of.items():
        if col not in out.columns:
            continue
        if m in PERCENT_METRICS:
            out[col] = out[col] * 100.0
            fmt = "%.1f%%"
        else:
            fmt = "%.4f" if m == "mse" else "%.2f" if m == "sharpe" else "%.4g"
        config[col] = st.column_config.NumberColumn(col, format=fmt)
    return out, config


def _display_history(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A history frame with readable headers and formats (newest first is up to the caller)."""
    metrics = order_metrics(
        c for c in frame.columns if c not in ("timestamp", "ticker", "model_name", "notes")
    )
    renamed = {"timestamp": "Logged (UTC)", "ticker": "Ticker", "model_name": "Model", "notes": "Notes"}
    renamed.update({m: metric_label(m) for m in metrics})
    out = frame[["timestamp", "ticker", "model_name", *metrics, "notes"]].rename(columns=renamed)
    out["Logged (UTC)"] = out["Logged (UTC)"].dt.tz_convert("UTC").dt.tz_localize(None)
    out, config = _formatted(out, {metric_label(m): m for m in metrics})
    config["Logged (UTC)"] = st.column_config.DatetimeColumn("Logged (UTC)", format="YYYY-MM-DD HH:mm")
    return out, config


def _keep_valid(key: str, options: list[Any], default: Any) -> None:
    """Drop a remembered widget value that is no longer an option (e.g. after a clear)."""
    if key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = default


# ---------------------------------------------------------------------- actions (writes)


def _on_add_sample(location: str) -> None:
    n = add_sample_data(data.get_ledger(location), random_state=secrets.randbelow(1_000_000))
    _flash("success", f"Added {n:,} sample evaluations.")


def _on_clear(location: str) -> None:
    if not st.session_state.get("confirm_clear"):
        _flash("warning", "Tick the confirmation box first — nothing was deleted.")
        return
    data.get_ledger(location).clear()
    st.session_state["confirm_clear"] = False
    _flash("success", "All records were deleted.")


def _on_log(location: str) -> None:
    ss = st.session_state
    values = {m: ss.get(f"log_{m}") for m in CORE_METRICS}
    try:
        rec = data.get_ledger(location).log(
            (ss.get("log_model") or "").strip(),
            (ss.get("log_ticker") or "").strip(),
            notes=ss.get("log_notes") or "",
            **values,
        )
    except (ValidationError, TypeError) as exc:
        ss["log_error"] = str(exc)
        return
    ss["log_error"] = None
    for m in CORE_METRICS:  # ready for the next evaluation; model and ticker stay
        ss[f"log_{m}"] = None
    ss["log_notes"] = ""
    _flash("success", f"Logged {rec['model_name']} on {rec['ticker']}.")


def render_actions(location: str, records: int) -> None:
    """Sidebar writes: sample data, the log form, and a confirmed clear."""
    st.header("Actions")
    _show_flash()
    st.button(
        "➕ Add sample data",
        key="add_sample",
        on_click=_on_add_sample,
        args=(location,),
        help="Adds 20 plausible evaluations for each of 6 tickers × 4 models.",
        width="stretch",
    )
    with st.expander("📝 Log an evaluation", expanded=bool(st.session_state.get("log_error"))):
        with st.form("log_form", clear_on_submit=False, border=False):
            st.text_input("Model name", key="log_model", placeholder="LSTM_v1")
            st.text_input("Ticker", key="log_ticker", placeholder="AAPL")
            c1, c2 = st.columns(2)
            c1.number_input("Sharpe", key="log_sharpe", value=None, step=0.1, format="%.3f")
            c2.number_input("MSE", key="log_mse", value=None, step=0.001, format="%.4f")
            c1.number_input("Drawdown (≤ 0)", key="log_drawdown", value=None, step=0.01, format="%.3f")
            c2.number_input("Total return", key="log_total_return", value=None, step=0.01, format="%.3f")
            c1.number_input("Win rate (0–1)", key="log_win_rate", value=None, step=0.01, format="%.3f")
            c2.number_input("Accuracy (0–1)", key="log_accuracy", value=None, step=0.01, format="%.3f")
            st.text_area("Notes", key="log_notes", height=68)
            st.form_submit_button(
                "Log evaluation",
                key="log_submit",
                on_click=_on_log,
                args=(location,),
                type="primary",
                width="stretch",
            )
        if st.session_state.get("log_error"):
            st.error(f"Not logged: {st.session_state['log_error']}")
    with st.expander("🗑️ Clear all data"):
        st.checkbox(f"I understand this permanently deletes all {records:,} records", key="confirm_clear")
        st.button(
            "Clear all data",
            key="clear",
            on_click=_on_clear,
            args=(location,),
            type="primary",
            disabled=not st.session_state.get("confirm_clear"),
            width="stretch",
        )


# ---------------------------------------------------------------------- filters


def render_filters(location: str, state: str) -> tuple[data.Filters, str]:
    """Sidebar filters; returns them and the metric the charts show."""
    st.header("Filters")
    tickers = data.tickers(location, state)
    _keep_valid("ticker", tickers, tickers[0])
    ticker = st.selectbox("Ticker", tickers, key="ticker")
    models = data.models(location, state, ticker)
    mkey = f"models::{ticker}"
    if mkey in st.session_state:
        st.session_state[mkey] = [m for m in st.session_state[mkey] if m in models]
    chosen = st.multiselect("Models", models, key=mkey, placeholder="All models")
    dirs = data.directions(location, state)
    metrics = order_metrics(dirs)
    _keep_valid("metric", metrics, "sharpe" if "sharpe" in metrics else metrics[0])
    metric = st.selectbox(
        "Metric",
        metrics,
        key="metric",
        format_func=metric_label,
        help="Shown by the charts and used to rank the leaderboards.",
    )
    days_back = st.select_slider(
        "Days back",
        DAYS_BACK_OPTIONS,
        key="days_back",
        value=0,
        format_func=lambda d: "All time" if d == 0 else f"{d} d",
    )
    picked = st.date_input(
        "Date range",
        value=(),
        key="date_range",
        format="YYYY-MM-DD",
        help="Optional: pick a start and an end date (UTC, inclusive).",
    )
    dates = (
        list(picked) if isinstance(picked, list | tuple) else ([picked] if isinstance(picked, date) else [])
    )
    start = dates[0] if dates else None
    end = dates[1] if len(dates) > 1 else None
    c1, c2 = st.columns(2)
    min_sharpe = c1.number_input("Min Sharpe", key="min_sharpe", value=None, step=0.1, format="%.2f")
    max_mse = c2.number_input("Max MSE", key="max_mse", value=None, min_value=0.0, step=0.005, format="%.4f")
    params, tags = experiments.render_filters(location, state, ticker)
    filters = data.Filters(
        ticker=ticker,
        models=tuple(chosen),
        days_back=float(days_back) if days_back else None,
        start=start,
        end=end,
        at_least=(("sharpe", float(min_sharpe)),) if min_sharpe is not None else (),
        at_most=(("mse", float(max_mse)),) if max_mse is not None else (),
        params=params,
        tags=tags,
    )
    return filters, metric


# ---------------------------------------------------------------------- tabs


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

    board = data.leaderboard(location, state, filters.ticker, metric, filters.days_back, filters.params,
                             filters.tags)
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
        view, config = _formatted(view, metric_of)
        st.dataframe(view, hide_index=True, width="stretch", column_config=config, key="perf_leaderboard")
    experiments.render_comparison(location, state, filters, metric, dirs)

    st.markdown("##### Raw data")
    shown = frame.iloc[::-1].head(data.RAW_TABLE_ROWS)
    table, config = _display_history(shown)
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


def render_best_models(location: str, state: str, dirs: dict[str, bool]) -> None:
    """Tab 2: the best model per ticker per metric, and a models × metrics heatmap."""
    st.subheader("Best model per ticker and metric")
    wide, long = best_summary(data.best(location, state))
    st.dataframe(wide, hide_index=True, width="stretch", key="best_wide")
    with st.expander("Details: values and dates"):
        st.dataframe(long, hide_index=True, width="stretch", key="best_long")

    st.subheader("Metrics comparison")
    scope_col, _ = st.columns([1, 2])
    scope = scope_col.selectbox("Scope", [ALL_TICKERS, *data.tickers(location, state)], key="heatmap_scope")
    board = data.leaderboard(location, state, None if scope == ALL_TICKERS else scope, "sharpe", None)
    table = model_metric_means(board, dirs)
    st.plotly_chart(
        charts.heatmap_figure(table, dirs, title=f"Mean of each metric per model · {scope}"),
        key="best_heatmap",
        width="stretch",
    )
    st.caption(
        "Colour: each metric scaled from its worst model (red) to its best (green) in its own "
        "direction (↑ higher is better, ↓ lower is better, e.g. MSE). Cells show the raw means."
    )


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
        top, config = _formatted(top, {top.columns[-1]: metric})
        st.dataframe(top, hide_index=True, width="stretch", key="top_models", column_config=config)
    with right:
        st.markdown("##### 🕒 Recent activity")
        table, config = _display_history(data.recent(location, state, 20))
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


def render_first_run(location: str, readonly: bool) -> None:
    """An empty ledger: explain how to log instead of showing empty charts."""
    st.info(f"👋 No evaluations logged yet in `{data.display_location(location)}`.")
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
            on_click=_on_add_sample,
            args=(location,),
        )


def main() -> None:
    """Draw the whole page (Streamlit reruns this top to bottom on every interaction)."""
    st.set_page_config(page_title="Model Performance Dashboard", page_icon="📈", layout="wide")
    location = data.current_location()
    try:
        reason = data.read_only_reason(location)
        stats = data.stats(location)
    except PerfLedgerError as exc:  # e.g. a read-only directory that holds no ledger yet
        st.error(f"{exc}")
        st.stop()
    readonly = reason is not None
    state = stats["state"]

    st.title("📈 Model Performance Dashboard")
    st.caption(f"Ledger: `{data.display_location(location)}`" + (" · 🔒 read-only" if readonly else ""))

    with st.sidebar:
        filters_box = st.container()
        if not readonly:
            render_actions(location, stats["records"])
        else:
            st.caption(reason)

    if stats["records"] == 0:
        render_first_run(location, readonly)
        return

    with filters_box:
        filters, metric = render_filters(location, state)
    dirs = data.directions(location, state)
    perf, best, analytics = st.tabs(list(TABS))
    with perf:
        render_performance(location, state, filters, metric, dirs)
    with best:
        render_best_models(location, state, dirs)
    with analytics:
        render_analytics(location, state, stats, filters, metric, dirs)
