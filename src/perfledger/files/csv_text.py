"""CSV text every reader splits back into the exact cells: a field holding a line break of
any kind (``\\n``, ``\\r``, ``\\r\\n``) is quoted, while rows end in a plain ``\\n``.

Python's ``csv`` writer (pandas' ``to_csv`` uses it) quotes a field only for the delimiter,
the quote and the characters of its *line terminator*: with ``"\\n"`` a note holding a bare
``\\r`` is written unquoted, and every reader then splits the row there (a broken file). So
rows are written with :data:`_ROW_END`, whose characters make the writer quote ``\\r`` and
``\\n`` (and NUL), and each row end is then turned into ``\\n``. NUL never occurs in stored
text (every write refuses it), so a field never holds :data:`_ROW_END`; should one ever,
the count of row ends says so and that part is written with every field quoted and ``\n``
row ends instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import pandas as pd

#: What rows end with while they are written: its characters are the ones a field is quoted for.
_ROW_END = "\r\n\x00"
#: Rows formatted at once: a million rows never sit in one string.
CHUNK = 50_000


def write_frame_csv(frame: pd.DataFrame, out: TextIO, chunk: int = CHUNK) -> None:
    """``frame`` (no index) as CSV on ``out``, ``chunk`` rows at a time."""
    for start in range(0, max(len(frame), 1), chunk):
        part = frame.iloc[start : start + chunk]

        def text(end: str, quoting: int, part: pd.DataFrame = part, header: bool = start == 0) -> str:
            return part.to_csv(None, index=False, header=header, lineterminator=end, quoting=quoting)

        out.write(_rows(text, len(part) + (start == 0)))


def write_rows_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    """A header and plain rows (text, numbers; None and NaN as empty cells) as CSV on ``out``,
    without pandas."""
    table = [list(columns), *(["" if v is None or v != v else v for v in row] for row in rows)]

    def text(end: str, quoting: int) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=end, quoting=quoting).writerows(table)
        return buffer.getvalue()

    out.write(_rows(text, len(table)))


def _rows(text: Any, count: int) -> str:
    """``text(row_end, quoting)``'s rows ending in ``\\n``: written with :data:`_ROW_END`, or,
    if a field held it, with every field quoted."""
    written = text(_ROW_END, csv.QUOTE_MINIMAL)
    if written.count(_ROW_END) != count:
        return str(text("\n", csv.QUOTE_ALL))
    return written.replace(_ROW_END, "\n")


def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` (no index) as CSV text, as :func:`write_frame_csv` writes it."""
    buffer = io.StringIO()
    write_frame_csv(frame, buffer)
    return buffer.getvalue()
