"""``history`` printed from plain rows: the command without pandas, pyarrow or SQLAlchemy.

Why: ``perfledger history`` of 50 rows spent most of its time importing the libraries that
build a DataFrame it then only printed. When the ledger reads the rows itself
(:meth:`perfledger.Ledger.history_rows`: a SQLite ledger directory, the plain filters),
they are printed here as :func:`.output.print_frame` prints the DataFrame, byte for byte
(``tests/test_cli_rows.py`` compares both paths): timestamps as ISO 8601 UTC text with
microseconds in csv/json, missing values empty in csv and ``null`` in json, and a table
without the metric columns no shown row has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .app import say
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


def print_history(answer: PlainHistory, fmt: OutputFormat) -> None:
    """What ``history`` prints for these rows in ``fmt`` (see the module doc)."""
    columns, rows = answer.columns, answer.rows
    if fmt != OutputFormat.table:
        print_rows(columns, [(r[0].isoformat(timespec="microseconds"), *r[1:]) for r in rows], fmt)
        return
    if not rows:
        say("No records match.")
        return
    keep = [i for i, c in enumerate(columns) if c in _ALWAYS or any(r[i] is not None for r in rows)]
    print_rows([columns[i] for i in keep], [tuple(r[i] for i in keep) for r in rows], fmt, title="History")
    if answer.matched > len(rows):
        say(more_rows(len(rows), answer.matched))


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
