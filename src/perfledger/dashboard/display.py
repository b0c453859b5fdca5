"""Streamlit display helpers shared by the views: number formats and readable history tables.

Pure formatting lives in :mod:`.formatting`; this module adds what needs Streamlit (column
configurations), so every view formats a metric the same way.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from .formatting import PERCENT_METRICS, metric_label, order_metrics


def formatted(table: pd.DataFrame, metric_of: dict[str, str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``table`` ready to show, with its column formats: rates and returns as "12.3%" (scaled
    here, since Streamlit's percent preset varies its decimals), Sharpe with 2 decimals, MSE 4."""
    out = table.copy()
    config: dict[str, Any] = {}
    for col, m in metric_of.items():
        if col not in out.columns:
            continue
        if m in PERCENT_METRICS:
            out[col] = out[col] * 100.0
            fmt, decimals = "%.1f%%", 1
        else:
            fmt = "%.4f" if m == "mse" else "%.2f" if m == "sharpe" else "%.4g"
            decimals = 4 if m == "mse" else 2 if m == "sharpe" else None
        # A value that shows as zero is shown as 0, never "-0.00" (-0.001 with 2 decimals).
        shown_zero = out[col] == 0 if decimals is None else out[col].round(decimals) == 0
        out[col] = out[col].where(~shown_zero, 0.0)
        config[col] = st.column_config.NumberColumn(col, format=fmt, width=header_width(col))
    return out, config


#: The Notes column's header tooltip: where the whole of a note cut at the column's edge is.
NOTES_HELP = ("A long note is cut at the column's edge: double-click its cell (or select it and "
              "press Enter) to read it whole, widen the column, or download the CSV, which holds "
              "every note exactly.")


def header_width(label: str) -> int:
    """A column's width in pixels that shows its whole header ("Win rate (latest)", not
    "Win ra…") at Streamlit's header font (about 7 px a character, 8 px of padding a side at
    most): wide enough for the label, no wider, so a table fits the page where it can."""
    return max(44, 7 * len(label) + 12)


#: The model column's width in a table meant to fit the page: "Transformer_v1" whole.
MODEL_WIDTH = 130

#: What an empty cell shows: Streamlit's grid writes a missing value as the word "None".
MISSING = "—"


def _as_text(value: Any) -> Any:
    """A cell of a text column as the table shows it: text and missing values as they are,
    anything else (a list, a dict) as its text."""
    if value is None or isinstance(value, str) or (isinstance(value, float) and value != value):
        return value
    return str(value)


def show_table(table: pd.DataFrame, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """``st.dataframe`` of ``table`` with each empty cell shown as :data:`MISSING`, not "None".

    Every number column gets a display format (its own printf format from ``config`` when it
    has one; else integers with thousands separators and other numbers with 4 significant
    digits), applied by the browser while the cells keep their numbers, so sorting stays
    numeric; Streamlit's ``placeholder`` writes the empty cells. Other values (a list, a
    dict) are shown as their text.

    Why not a pandas Styler, which did this before: Streamlit renders a Styler's whole HTML
    model to get its display text, ~0.8 s of server CPU for the raw table's 1,000 rows, 70 %
    of a warm script run on every first render and ticker switch (issue 23), and it sent a
    second copy of every cell as text."""
    config = dict(config or {})
    shown = table
    for col in table.columns:
        kind = table[col].dtype
        if pd.api.types.is_datetime64_any_dtype(kind) or pd.api.types.is_bool_dtype(kind):
            continue  # the column's own format; never missing here
        if pd.api.types.is_numeric_dtype(kind):
            given = config.get(col)
            spec = (given or {}).get("type_config") or {}
            if spec.get("format"):
                continue
            fmt = "localized" if pd.api.types.is_integer_dtype(kind) else "%.4g"
            if given is None:
                config[col] = st.column_config.NumberColumn(col, format=fmt)
            elif spec.get("type", "number") == "number":
                config[col] = {**given, "type_config": {**spec, "type": "number", "format": fmt}}
        elif pd.api.types.is_object_dtype(kind) and not all(_as_text(v) is v for v in table[col]):
            if shown is table:
                shown = table.copy()
            shown[col] = [_as_text(v) for v in table[col]]
    st.dataframe(shown, column_config=config, placeholder=MISSING, **kwargs)


def display_history(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A history frame with readable headers and formats (newest first is up to the caller)."""
    metrics = order_metrics(
        c for c in frame.columns if c not in ("timestamp", "ticker", "model_name", "notes")
    )
    renamed = {"timestamp": "Logged (UTC)", "ticker": "Ticker", "model_name": "Model", "notes": "Notes"}
    renamed.update({m: metric_label(m) for m in metrics})
    out = frame[["timestamp", "ticker", "model_name", *metrics, "notes"]].rename(columns=renamed)
    out["Logged (UTC)"] = out["Logged (UTC)"].dt.tz_convert("UTC").dt.tz_localize(None)
    out, config = formatted(out, {metric_label(m): m for m in metrics})
    config["Logged (UTC)"] = st.column_config.DatetimeColumn("Logged (UTC)", format="YYYY-MM-DD HH:mm")
    # Streamlit's grid has no per-cell tooltip (streamlit/streamlit#7564, open; 1.42-1.67):
    # the header's help says how to read a note whole, by the grid's own cell overlay.
    config["Notes"] = st.column_config.TextColumn("Notes", width="large", help=NOTES_HELP)
    return out, config
