"""``history`` printed from plain rows: the command without pandas, pyarrow or SQLAlchemy.

Why: ``perfledger history`` of 50 rows spent most of its time importing the libraries that
build a DataFrame it then only printed. When the ledger reads the rows itself
(:meth:`perfledger.Ledger.history_rows`: a SQLite ledger directory, the plain filters),
they are printed here as :func:`.output.print_frame` prints the DataFrame, byte for byte
(``tests/test_cli_rows.py`` compares both paths): timestamps as ISO 8601 UTC text with
microseconds in csv/json, missing values empty in csv and ``null`` in json, and a table
without the metric columns no shown row has (custom metrics only when asked, ``--columns``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..records.record import CORE_METRICS
from .app import fail, say
from .options import OutputFormat
from .output import print_rows

if TYPE_CHECKING:
    from ..ledger import Ledger

#: Columns a history table shows even when empty.
_ALWAYS = ("timestamp", "ticker", "model_name", "notes")


@dataclass(frozen=True)
class PlainHistory:
    """History rows as the ledger read them, and how many records matched (without the limit)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    matched: int


def read_history(led: Ledger, filters: dict[str, Any], shown: int | None) -> PlainHistory | None:
    """The rows ``led.history(**filters, limit=shown)`` holds, or None when the ledger reads
    them only as a DataFrame (call inside :func:`.app.library_errors`)."""
    answer = led.history_rows(**filters, limit=shown)
    if answer is None:
        return None
    columns, rows = answer
    matched = led.count(**filters) if shown is not None and len(rows) == shown else len(rows)
    return PlainHistory(columns, rows, matched)


def print_history(answer: PlainHistory, fmt: OutputFormat, wanted: Sequence[str] | None = None) -> None:
    """What ``history`` prints for these rows in ``fmt`` (see the module doc); a table shows
    the columns :func:`table_columns` picks."""
    columns, rows = answer.columns, answer.rows
    if fmt != OutputFormat.table:
        print_rows(columns, [(r[0].isoformat(timespec="microseconds"), *r[1:]) for r in rows], fmt)
        return
    if not rows:
        say("No records match.")
        return
    filled = [c for i, c in enumerate(columns) if any(r[i] is not None for r in rows)]
    names, hidden = table_columns(columns, filled, wanted)
    keep = [columns.index(c) for c in names]
    print_rows(names, [tuple(r[i] for i in keep) for r in rows], fmt, title="History")
    if answer.matched > len(rows):
        say(more_rows(len(rows), answer.matched))
    if hidden:
        say(hidden_columns(hidden))


def table_columns(
    columns: Sequence[str], filled: Sequence[str], wanted: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The columns a history table shows, and the filled custom metric columns it leaves out.

    A terminal is ~100 characters wide: the record's fields and the core metrics that some
    row has fit; every custom metric as well (the sample has eight) makes rich split model
    names and headers mid-word. So custom metrics are shown when asked for: ``wanted`` names
    them (``--columns sortino,calmar``), ``["all"]`` shows every filled column; csv/json
    always carry every column."""
    shown_all = wanted is not None and "all" in wanted
    asked = set(wanted or ())
    unknown = sorted(asked - {"all"} - set(columns))
    if unknown:
        fail(f"--columns {','.join(unknown)} names no column of these records; known: "
             f"{', '.join(c for c in columns if c not in _ALWAYS)}")
    names = [c for c in columns
             if c in _ALWAYS or (c in filled and (shown_all or c in CORE_METRICS or c in asked))]
    hidden = [c for c in columns if c in filled and c not in names]
    return names, hidden


def hidden_columns(hidden: Sequence[str]) -> str:
    """The line under a history table that left custom metric columns out."""
    return (f"{len(hidden)} custom metric column(s) not shown ({', '.join(hidden)}): "
            "--columns all (or --columns NAME,...) shows them; csv/json carry every column.")


def more_rows(shown: int, matched: int) -> str:
    """The line under a history table that shows only the latest rows."""
    return (f"Showing the latest {shown:,} of {matched:,} matching records; "
            "see more with --limit N, all with --all, or every row with --format csv.")


def latest_of(values: Sequence[tuple[float, Any]]) -> tuple[float, str] | None:
    """A ``check``'s latest value and its time as ISO text, from :meth:`Ledger.latest_value`."""
    if not values:
        return None
    value, stamp = values[-1]
    return float(value), stamp.isoformat()
