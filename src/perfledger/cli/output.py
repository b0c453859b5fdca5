"""Printing answers: a DataFrame as a Rich table, CSV or JSON, and the console they go to.

CSV and JSON carry timestamps as ISO 8601 in UTC with microseconds; JSON writes missing
values as ``null``. Tables show numbers to four significant digits (PSR/DSR as fixed decimals).

Stored text (notes come from teammates and imported files) comes out exact and harmless in
every format: CSV quotes any field with a line break (a bare ``\r`` too, see
:mod:`perfledger.files.csv_text`), so a reader gets the cell back whole; JSON escapes every
character a terminal acts on (:func:`inert_json`), which JSON readers decode back; a table
shows them as escapes (:func:`~perfledger.cli.app.visible`).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..files.csv_text import write_frame_csv, write_rows_csv
from .app import _ACTIVE, visible
from .options import OutputFormat

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal (pipes, tests) rich would wrap at 80 columns; a wide page keeps rows whole.
    return Console(stderr=stderr, width=None if stream.isatty() else 200, highlight=False)


#: The characters a terminal acts on that ``json.dumps`` leaves as they are (it escapes the C0
#: controls itself), each as its ``\\uXXXX`` escape: the same string to a JSON reader.
_JSON_ESCAPES = {cp: f"\\u{cp:04x}" for cp in _ACTIVE if cp >= 0x20}
_JSON_ACTIVE = re.compile("[" + "".join(map(chr, _JSON_ESCAPES)) + "]")


def inert_json(text: str) -> str:
    """JSON text (``ensure_ascii=False``) with DEL, the C1 controls, the bidirectional
    controls and the line separators escaped: inert on a terminal, equal once decoded (they
    only occur inside strings, where an escape means the character)."""
    # The quick answer for most texts: ASCII without DEL (0x7f, the one such character in
    # ASCII; the others are past it) has none of them.
    if (text.isascii() and "\x7f" not in text) or not _JSON_ACTIVE.search(text):
        return text
    return text.translate(_JSON_ESCAPES)


def json_safe(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, ±inf: an undefined statistic, a
    MinTRL no record reaches) as None: JSON has no Infinity or NaN, and jq, JSON.parse, Go
    and serde reject a document that holds them. Every JSON output goes through this (and
    ``allow_nan=False`` after it, so a path that forgets fails loudly instead)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` of ``value``, never ``Infinity`` or ``NaN``, inert on
    a terminal (:func:`inert_json`)."""
    return inert_json(json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False, **kwargs))


def echo_json(value: Any) -> None:
    sys.stdout.write(dumps(value, indent=2) + "\n")


def print_frame(frame: pd.DataFrame, fmt: OutputFormat, title: str | None = None) -> None:
    """A DataFrame as a Rich table, CSV or a JSON array (timestamps ISO 8601 UTC, NaN null)."""
    if fmt == OutputFormat.csv:
        out = frame.copy(deep=False)
        for c in out.columns:
            if str(out[c].dtype).startswith("datetime64"):
                out[c] = iso_text(out[c])
        write_frame_csv(out, sys.stdout)
        return
    if fmt == OutputFormat.json:
        write_json_rows(frame)
        return
    _print_table([str(c) for c in frame.columns], frame.itertuples(index=False), title)


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: OutputFormat,
               title: str | None = None) -> None:
    """Plain rows (text, numbers, None) printed as :func:`print_frame` prints a frame of them,
    without pandas: a command whose answer is a few rows (``best``) starts without importing it."""
    if fmt == OutputFormat.csv:
        write_rows_csv(columns, rows, sys.stdout)
        return
    if fmt == OutputFormat.json:
        sys.stdout.write("[]\n" if not rows else "[\n" + ",\n".join(
            dumps(dict(zip(columns, row, strict=True)))
            for row in rows) + "\n]\n")
        return
    _print_table(list(columns), rows, title)


def _print_table(columns: list[str], rows: Iterable[Sequence[Any]], title: str | None) -> None:
    from rich.table import Table
    from rich.text import Text

    # Every cell, header and title is a Text: stored strings are data, never Rich markup
    # (a note "features [/mnt/x]" would otherwise raise MarkupError, "[red]LSTM" lose its name).
    table = Table(title=Text(visible(title)) if title else None, show_lines=False)
    for c in columns:
        table.add_column(Text(visible(c)), overflow="fold")
    # Probabilities read better as fixed decimals than as 1.265e-05.
    fixed = [c in ("psr", "dsr") for c in columns]
    for row in rows:
        table.add_row(*(
            Text(f"{v:.4f}" if fix and isinstance(v, float) and not math.isnan(v) else _cell(v))
            for v, fix in zip(row, fixed, strict=True)
        ))
    console().print(table)


def iso_text(column: pd.Series) -> Any:
    """Datetimes as ISO 8601 text with microseconds (``+00:00`` when they carry a time zone,
    converted to UTC), formatted by numpy in one pass: per-value ``isoformat()`` took longer
    than writing the CSV itself. Missing times become empty cells."""
    import numpy as np

    aware = getattr(column.dt, "tz", None) is not None
    naive = column.dt.tz_convert("UTC").dt.tz_localize(None) if aware else column
    values = naive.to_numpy(dtype="datetime64[us]")
    text = np.datetime_as_string(values, unit="us").astype(object)
    if aware:
        text = text + "+00:00"
    text[np.isnat(values)] = ""
    return text


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ", timespec="seconds")
    return visible(str(v))  # stored text: inert on a terminal (csv/json keep it exact)


def write_json_rows(frame: pd.DataFrame, chunk: int = 50_000) -> None:
    """A JSON array of the rows, one object per line, written chunk by chunk: timestamps as
    ISO text, missing values as ``null``. Each row is encoded by the C encoder (an indented
    document goes through the pure-Python one, ten times slower on a million rows)."""
    import numpy as np

    out = frame.copy(deep=False)
    for c in out.columns:
        if str(out[c].dtype).startswith("datetime64"):
            out[c] = iso_text(out[c])
    if out.empty:
        sys.stdout.write("[]\n")
        return
    columns = [str(c) for c in out.columns]
    sep = "[\n"
    for start in range(0, len(out), chunk):
        part = out.iloc[start:start + chunk]
        # object dtype: Python floats, ints and bools; NaN, ±inf and NaT become None.
        missing = part.isna()
        for c in part.columns:
            if part[c].dtype.kind == "f":
                missing[c] = ~np.isfinite(part[c].to_numpy())
        rows = part.astype(object).where(~missing, None).to_numpy().tolist()
        sys.stdout.write(sep + inert_json(",\n".join(
            json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False, allow_nan=False)
            for row in rows
        )))
        sep = ",\n"
    sys.stdout.write("\n]\n")
