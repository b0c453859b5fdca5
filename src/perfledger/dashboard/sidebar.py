"""The sidebar: filters (what every view shows) and actions (writes).

Writes (sample data, clear, the log form) run as widget *callbacks*: Streamlit runs those
before the script, so the same run already reads the changed ledger, and the confirmation
checkbox can be reset after a clear. ``$PERFLEDGER_READ_ONLY=1`` removes every write.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st

from .. import ValidationError
from ..records.record import CORE_METRICS
from ..sample import add_sample_data
from . import data, experiments
from .formatting import metric_label, order_metrics
from .forms import field_key, parse_metrics, parse_params, parse_tags
from .insights import DECAY_ALPHAS, DECAY_WINDOWS, board_metrics, default_decay_window

#: The "Days back" slider's stops, narrowest first; 0 is "All time", after the widest.
DAYS_BACK_OPTIONS = (1, 7, 14, 30, 60, 90, 180, 365, 0)
_LAST_WINDOW = "perfledger_last_window"
#: Session-state keys of the two action expanders (``True``: open, its contents drawn).
LOG_OPEN_KEY = "log_open"
CLEAR_OPEN_KEY = "clear_open"


# ---------------------------------------------------------------------- small helpers


def _flash(kind: str, message: str) -> None:
    """Queue a message for this run (callbacks run before the page is drawn)."""
    st.session_state.setdefault("_flash", []).append((kind, message))


def show_flash() -> None:
    for kind, message in st.session_state.pop("_flash", []):
        getattr(st, kind)(message)


def _keep_valid(key: str, options: list[Any], default: Any) -> None:
    """Drop a remembered widget value that is no longer an option (e.g. after a clear)."""
    if key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = default


# ---------------------------------------------------------------------- actions (writes)


def on_add_sample(location: str) -> None:
    n = add_sample_data(data.get_ledger(location), random_state=secrets.randbelow(1_000_000))
    _flash("success", f"Added {n:,} sample evaluations.")


def _on_clear(location: str) -> None:
    if not st.session_state.get("confirm_clear"):
        _flash("warning", "Tick the confirmation box first — nothing was cleared.")
        return
    data.get_ledger(location).clear()
    st.session_state["confirm_clear"] = False
    _flash("success", "All records were cleared. They are kept until purged: `perfledger restore` "
                      "brings them back.")


def _on_log(location: str) -> None:
    """Log the form's evaluation; every field's bad input is kept beside that field
    (``log_errors``: widget key → message) and nothing is logged."""
    ss = st.session_state
    values = {m: ss.get(f"log_{m}") for m in CORE_METRICS}
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, parse in (("metrics", parse_metrics), ("params", parse_params), ("tags", parse_tags)):
        try:
            parsed[name] = parse(ss.get(f"log_{name}")) or None
        except ValidationError as exc:
            errors[f"log_{name}"] = str(exc)
    rec = None
    if not errors:
        try:
            rec = data.get_ledger(location).log(
                (ss.get("log_model") or "").strip(),
                (ss.get("log_ticker") or "").strip(),
                notes=ss.get("log_notes") or "",
                **parsed,
                **values,
            )
        except (ValidationError, TypeError) as exc:
            problems = getattr(exc, "problems", None) or [(None, "", str(exc))]
            for _row, field, _msg in problems:
                errors.setdefault(field_key(field) if field else "", str(exc))
    ss["log_errors"] = errors
    ss["log_error"] = "; ".join(dict.fromkeys(errors.values())) or None
    if rec is None:
        return
    for m in CORE_METRICS:  # ready for the next evaluation; model, ticker, params and tags stay
        ss[f"log_{m}"] = None
    ss["log_notes"] = ""
    ss["log_metrics"] = ""
    _flash("success", f"Logged {rec['model_name']} on {rec['ticker']}.")


def _beside(container: Any, key: str) -> None:
    """The message about the field ``key``, right under it, when the last log refused it."""
    message = (st.session_state.get("log_errors") or {}).get(key)
    if message:
        container.error(message, icon="⚠️")


def render_actions(location: str, records: int) -> None:
    """Sidebar writes: sample data, the log form, and a confirmed clear."""
    st.header("Actions")
    show_flash()
    st.button(
        "➕ Add sample data",
        key="add_sample",
        on_click=on_add_sample,
        args=(location,),
        help="Adds 20 plausible evaluations for each of 6 tickers × 4 models.",
        width="stretch",
    )
    # Each expander's contents are drawn only while it is open (a click reruns the page): the
    # form's 14 inputs and the clear confirmation were a fifth of every run's elements, drawn
    # by the browser on every first render and every ticker switch (issue 23).
    log_box = st.expander("📝 Log an evaluation", expanded=bool(st.session_state.get("log_error")),
                          key=LOG_OPEN_KEY, on_change="rerun")
    if log_box.open:
        _log_form(location, log_box)
    clear_box = st.expander("🗑️ Clear all data", key=CLEAR_OPEN_KEY, on_change="rerun")
    if clear_box.open:
        with clear_box:
            _clear_form(location, records)


def _log_form(location: str, box: Any) -> None:
    """The log form, in the open expander ``box``."""
    with box:
        with st.form("log_form", clear_on_submit=False, border=False):
            st.text_input("Model name", key="log_model", placeholder="LSTM_v1")
            _beside(st, "log_model")
            st.text_input("Ticker", key="log_ticker", placeholder="AAPL")
            _beside(st, "log_ticker")
            c1, c2 = st.columns(2)
            c1.number_input("Sharpe", key="log_sharpe", value=None, step=0.1, format="%.3f")
            _beside(c1, "log_sharpe")
            c2.number_input("MSE", key="log_mse", value=None, step=0.001, format="%.4f")
            _beside(c2, "log_mse")
            c1.number_input("Drawdown (≤ 0)", key="log_drawdown", value=None, step=0.01, format="%.3f")
            _beside(c1, "log_drawdown")
            c2.number_input("Total return", key="log_total_return", value=None, step=0.01, format="%.3f")
            _beside(c2, "log_total_return")
            c1.number_input("Win rate (0–1)", key="log_win_rate", value=None, step=0.01, format="%.3f")
            _beside(c1, "log_win_rate")
            c2.number_input("Accuracy (0–1)", key="log_accuracy", value=None, step=0.01, format="%.3f")
            _beside(c2, "log_accuracy")
            st.text_input(
                "Custom metrics", key="log_metrics", placeholder="sortino=2.4, latency_ms=35",
                help="name=value pairs, separated by commas. Give a new metric a direction (which way "
                "is better) after logging it, by picking it in the Metric filter.",
            )
            _beside(st, "log_metrics")
            st.text_input(
                "Params", key="log_params", placeholder="epochs=50, layers=[64, 32]",
                help="key=value pairs; values are read as JSON when they are JSON, else as text.",
            )
            _beside(st, "log_params")
            st.text_input("Tags", key="log_tags", placeholder="run=nightly", help="key=value pairs (text).")
            _beside(st, "log_tags")
            st.text_area("Notes", key="log_notes", height=68)
            _beside(st, "log_notes")
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


def _clear_form(location: str, records: int) -> None:
    """The confirmed clear, in its open expander."""
    st.checkbox(f"I understand this clears all {records:,} records", key="confirm_clear")
    st.caption("Cleared records are kept until purged: `perfledger restore` (or "
               "`Ledger.restore_cleared()`) brings them back; `perfledger purge` deletes them "
               "for good.")
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
    metrics = order_metrics(set(dirs) | set(board_metrics(data.leaderboard(location, state, None, "sharpe"))))
    _keep_valid("metric", metrics, "sharpe" if "sharpe" in metrics else metrics[0])
    metric = st.selectbox(
        "Metric",
        metrics,
        key="metric",
        format_func=lambda m: metric_label(m) + ("" if m in dirs else " (no direction yet)"),
        help="Shown by the charts and used to rank the leaderboards. Custom metrics are listed too.",
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
    filters = data.Filters(ticker=ticker, models=tuple(chosen), window=data.Window(
        days_back=float(days_back) if days_back else None,
        start=start,
        end=end,
        at_least=(("sharpe", float(min_sharpe)),) if min_sharpe is not None else (),
        at_most=(("mse", float(max_mse)),) if max_mse is not None else (),
        params=params,
        tags=tags,
    ))
    st.session_state[_LAST_WINDOW] = filters.window
    return filters, metric


def last_window() -> data.Window:
    """The window of the filters drawn last on this page (none: all time), for a component
    drawn without its own filters (``components.best_models_summary``)."""
    return st.session_state.get(_LAST_WINDOW) or data.Window()


# ---------------------------------------------------------------------- monitoring settings


@dataclass(frozen=True)
class DecaySettings:
    """The decay test's settings, shared by every view that marks decaying models."""

    recent: int = 20
    alpha: float = 0.01


def _on_register(location: str, metric: str, higher: bool) -> None:
    data.get_ledger(location).register_metric(metric, higher)
    _flash("success", f"{metric_label(metric)}: {'higher' if higher else 'lower'} is better.")


def render_direction_prompt(location: str, metric: str, readonly: bool) -> None:
    """A custom metric without a direction can be charted but not ranked or tested for decay:
    say so, and (unless read-only) offer to record which way is better."""
    st.caption(f"**{metric_label(metric)}** has no direction yet: it is charted, but rankings fall back "
               "to Sharpe and the decay test skips it.")
    if readonly:
        return
    c1, c2 = st.columns(2)
    c1.button("↑ Higher is better", key="register_higher", on_click=_on_register,
              args=(location, metric, True), width="stretch")
    c2.button("↓ Lower is better", key="register_lower", on_click=_on_register,
              args=(location, metric, False), width="stretch")


def render_decay_settings(longest: int) -> DecaySettings:
    """How many of the latest evaluations the decay test looks at, and its false-alarm rate.
    The default fits the data: 20 when a model has the 30 evaluations that needs."""
    with st.expander("🔬 Decay test", expanded=False):
        recent = st.select_slider(
            "Latest evaluations tested", DECAY_WINDOWS, value=default_decay_window(longest),
            key="decay_recent",
            help="Each model's latest N evaluations against up to 100 before them; a model needs N + 10.",
        )
        alpha = st.select_slider(
            "False-alarm rate (α)", DECAY_ALPHAS, value=0.01, key="decay_alpha",
            format_func=lambda a: f"{a:g}",
            help="A model whose metric did not change is flagged with this probability.",
        )
    return DecaySettings(int(recent), float(alpha))
