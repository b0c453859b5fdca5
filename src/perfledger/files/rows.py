"""Reading evaluation files into rows: the seed's ``model_performance.json`` / ``.csv`` and
perfledger's own exports (CSV, JSON, JSON lines, Parquet).

Each row comes back normalised (numbers parsed from their text exactly, dict cells decoded)
with its location in the file (CSV: the physical line, header = line 1; JSON: ``record N``;
Parquet: ``row N``) and any parsing problem, so the importer can report bad rows precisely
and a whole-file problem (not UTF-8, not an array, unreadable) is one
:class:`~perfledger.errors.FileReadError`, ``broken`` when the file's structure is (what an
interrupted write leaves: not JSON, not UTF-8, not a readable Parquet file).
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import FileReadError, ValidationError
from ..records.numbers import MagnitudeError, shown, to_real
from ..records.record import CORE_METRICS, SEED_FIELDS
from ..records.validation import magnitude_words

#: ``progress(stage, done, total)``: called as rows are read and stages complete.
Progress = Callable[[str, int, int], None]

KNOWN_FIELDS = (*SEED_FIELDS, "metrics", "params", "tags", "returns", "returns_dates")
DICT_FIELDS = ("metrics", "params", "tags")
FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(
            f"path={str(path)!r}: unknown file type {path.suffix!r}; expected one of "
            f"{', '.join(sorted(FORMATS))}",
            [(None, "path", "unknown type")],
        )
    return fmt


#: How a problem message asks for a missing value instead of a NaN.
_MISSING_HINT = " (leave the cell empty, or null, for a value that is missing)"


class JsonLiteral(Decimal):
    """A JSON number or constant a float64 cannot hold as written (``NaN``, ``Infinity``,
    ``1e400``, ``1e-400``), kept exactly, with its text, until the row's check names it:
    :func:`json.load` would make them ``nan``, ``inf`` and ``0.0``, and the file's own spelling
    would be lost (``1e-400`` silently 0). Its ``repr`` is the file's text."""

    text: str

    def __new__(cls, text: str) -> JsonLiteral:
        self = super().__new__(cls, text)
        self.text = text
        return self

    def __repr__(self) -> str:
        return self.text


def _json_float(text: str) -> Any:
    f = float(text)
    if math.isinf(f) or (f == 0 and any(c in "123456789" for c in text.lower().split("e")[0])):
        return JsonLiteral(text)
    return f


def _json_constant(nan_missing: bool) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        return math.nan if nan_missing and text == "NaN" else JsonLiteral(text)

    return read


#: A JSON number a float64 may not hold as written has a three-digit exponent (``1e400``,
#: ``1e-400``), or 200 zeros after its point. Only text holding one is parsed with
#: :func:`_json_float` (a Python call per number: four times the C parser's time); NaN and
#: Infinity always meet the hook of constants, which costs nothing where there are none.
#: (A 300-digit integer is read as an int, whose size :func:`to_real` names.) Two patterns,
#: each searched on its own, scan the text in half the time the parse takes.
_MAY_NOT_FIT = (re.compile(r"[eE][+-]?\d{3}"), re.compile(r"\.0{200}"))


def _json_hooks(nan_missing: bool, text: str = "") -> dict[str, Any]:
    hooks: dict[str, Any] = {"parse_constant": _json_constant(nan_missing)}
    if any(pattern.search(text) is not None for pattern in _MAY_NOT_FIT):
        hooks["parse_float"] = _json_float
    return hooks


def _number(name: str, value: Any, nan_missing: bool) -> tuple[float | None, str | None]:
    """A metric cell as a float, None when missing, or a problem message naming the field and
    the value as the file spells it: read by :func:`perfledger.records.numbers.to_real`, the
    one coercion of every number a user gives.

    Missing is an empty cell (CSV) or null (JSON, Parquet). A NaN, in any spelling (``nan``
    in a CSV cell, ``NaN`` in JSON, a Parquet NaN), is refused as ``log()`` refuses one: it is
    a value that is not a number, and taking it for "not measured" would change the record
    silently. ``nan_missing`` keeps the older reading for the seed's own files, which the
    ledger adopts (the seed's ``json.dump`` wrote ``NaN`` for a value its CSV holds as an
    empty cell)."""
    if type(value) is float:
        if math.isfinite(value):
            return value, None
        if value != value:
            return (None, None) if nan_missing else (None, f"{name}=nan is not a number{_MISSING_HINT}")
        return None, f"{name}={value!r} is not a finite number"
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    try:
        f = to_real(name, value, text=True, finite=False)
    except MagnitudeError as exc:  # 1e-400 gets the metric's range, as 1e-200 does
        return None, magnitude_words(name, exc.text, too_large=exc.too_large)
    except ValidationError as exc:
        return None, str(exc)
    if f != f:
        return (None, None) if nan_missing else (None, f"{name}={_as_written(value)} is not a number"
                                                       f"{_MISSING_HINT}")
    if not math.isfinite(f):
        return None, f"{name}={_as_written(value)} is not a finite number"
    return f, None


def _as_written(value: Any) -> str:
    """A cell's value as the file spells it: a CSV cell's text quoted, a JSON literal bare."""
    return value.text if isinstance(value, JsonLiteral) else shown(value)


def _literal_problem(name: str, value: Any) -> str | None:
    """The first value in a params/tags cell (from JSON) that a float64 cannot hold as
    written, named by its path (``params['a']``), or None."""
    if isinstance(value, JsonLiteral):
        f = float(value)
        what = ("is not a finite number" if not math.isfinite(f) and not value.is_finite()
                else "is too large in magnitude for a number" if math.isinf(f)
                else "is too small in magnitude for a number (a float64 would turn it into 0)")
        return f"{name}={value.text} {what}"
    if isinstance(value, Mapping):
        items: Iterable[tuple[str, Any]] = ((f"{name}[{k!r}]", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{name}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for path, v in items:
        if (msg := _literal_problem(path, v)) is not None:
            return msg
    return None


def _dict_cell(name: str, value: Any, nan_missing: bool) -> tuple[dict[str, Any] | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, str):
        try:
            value = json.loads(value, **_json_hooks(nan_missing, value))
        except (ValueError, RecursionError) as exc:
            return None, f"{name}={value!r} is not valid JSON: {exc}"
    if not isinstance(value, Mapping):
        return None, f"{name}={value!r} is not a JSON object"
    if name != "metrics":  # a custom metric's value is named by the metric check itself
        try:
            msg = _literal_problem(name, value)
        except RecursionError:
            msg = None  # the params check names a value nested too deeply
        if msg is not None:
            return None, msg
    return dict(value), None


def _scalar(value: Any) -> bool:
    """A cell holding one value (a number, or a CSV's text), not a series."""
    return isinstance(value, str | bytes | numbers.Number)


def _returns_cell(values: Any, dates: Any) -> tuple[Any, str | None]:
    """A row's return series as it will be kept, or the problem with it."""
    import pandas as pd

    from ..records.kept_returns import keep_returns

    try:
        if dates is not None:
            index = pd.DatetimeIndex(pd.to_datetime(list(dates), utc=True))
            if len(index) != len(values):
                return None, f"returns has {len(values)} values but {len(index)} dates"
            return keep_returns(pd.Series(list(values), index=index, dtype=float)), None
        return keep_returns(values), None
    except (ValidationError, TypeError, ValueError) as exc:
        return None, str(exc)


def _normalise(raw: Mapping[str, Any], nan_missing: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One input row as the keys ``log_many`` takes; unknown keys become custom metrics."""
    row: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    ts = raw.get("timestamp")
    if ts is None or (isinstance(ts, str) and not ts.strip()):
        problems.append(("timestamp", "timestamp is missing (an import never invents one)"))
    else:
        row["timestamp"] = ts
    for key in ("ticker", "model_name"):
        v = raw.get(key)
        row[key] = "" if v is None else v
    for m in CORE_METRICS:
        v, msg = _number(m, raw.get(m), nan_missing)
        row[m] = v
        if msg:
            problems.append((m, msg))
    notes = raw.get("notes")
    row["notes"] = "" if notes is None else notes
    for key in DICT_FIELDS:
        d, msg = _dict_cell(key, raw.get(key), nan_missing)
        if msg:
            problems.append((key, msg))
        row[key] = d
    # A backtest's return series (a Parquet export's list columns), dates alongside; a
    # single number (a CSV's cell, say) under "returns" is a custom metric (below), as in
    # log_many: never read as a series.
    series = raw.get("returns") is not None and not _scalar(raw.get("returns"))
    if series:
        kept, msg = _returns_cell(raw.get("returns"), raw.get("returns_dates"))
        if msg:
            problems.append(("returns", msg))
        row["returns"] = kept
    # Unknown keys are custom metrics; a blank or "Unnamed: 0" header is a pandas index column.
    extra = {k: v for k, v in raw.items()
             if (k not in KNOWN_FIELDS or (k == "returns" and not series))
             and k and not str(k).startswith("Unnamed: ")}
    if extra:
        metrics = dict(row["metrics"] or {})
        for k, v in extra.items():
            f, msg = _number(str(k), v, nan_missing)
            if msg:
                problems.append((str(k), msg))
            elif f is not None and str(k) in metrics:  # which of the two is meant? refused
                problems.append((str(k), f"metric {str(k)!r} is given twice, as a column ({f!r}) and "
                                         f"in metrics ({metrics[str(k)]!r}); give it once"))
            elif f is not None:
                metrics[str(k)] = f
        row["metrics"] = metrics or None
    return row, problems


#: The longest field a CSV may hold: a note of any length is stored (the csv module's
#: default, 131072 characters, refused the mirror of a longer one).
_FIELD_LIMIT = 2**31 - 1


def _csv_rows(path: Path) -> Iterable[tuple[str, dict[str, Any] | str]]:
    """(location, row dict or problem) per data row; location is the physical start line.
    A field may be as long as a note is (the csv module's default limit, 131072
    characters, refused the mirror of a longer one)."""
    previous = csv.field_size_limit(_FIELD_LIMIT)
    try:
        yield from _csv_cells(path)
    finally:
        csv.field_size_limit(previous)


def _ends_in_a_line_break(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return True
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")


def _csv_cells(path: Path) -> Iterable[tuple[str, dict[str, str] | str]]:
    """The rows of a CSV by its header. A row of exactly the seed's columns below a longer
    header that starts with them (a row the seed's own code appended to a mirror, which has
    perfledger's metrics/params/tags columns after the seed's) is a record without those;
    except as the file's last row without a line break after it, which is what an append
    interrupted right after its notes leaves (a torn tail, not a record)."""
    complete = _ends_in_a_line_break(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        # csv.DictReader-style zipping keeps the last of two equal names: one value silently lost.
        if dup := list(dict.fromkeys(h for i, h in enumerate(header) if h and h in header[:i])):
            raise FileReadError(
                path, f"the header (line 1) names column(s) {', '.join(map(repr, dup))} more than "
                "once; give each column once (nothing was imported)", field="header",
            )
        seed_shaped = len(header) > len(SEED_FIELDS) and tuple(header[: len(SEED_FIELDS)]) == SEED_FIELDS

        def numbered() -> Iterator[tuple[int, list[str]]]:
            prev = reader.line_num
            for cells in reader:
                yield prev + 1, cells
                prev = reader.line_num

        rows = numbered()
        item = next(rows, None)
        while item is not None:
            line, cells = item
            item = next(rows, None)  # one row ahead: is this one the file's last?
            if not cells or all(not c for c in cells):
                continue
            if seed_shaped and len(cells) == len(SEED_FIELDS) and (item is not None or complete):
                cells = cells + [""] * (len(header) - len(cells))
            if len(cells) != len(header):
                yield f"line {line}", f"has {len(cells)} fields but the header has {len(header)}"
                continue
            yield f"line {line}", dict(zip(header, cells, strict=True))


def _json_rows(path: Path, lines: bool, nan_missing: bool) -> Iterable[tuple[str, dict[str, Any] | str]]:
    with open(path, encoding="utf-8") as f:
        if lines:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line, **_json_hooks(nan_missing, line))
                except (ValueError, RecursionError) as exc:
                    yield f"line {n}", f"not valid JSON: {exc}"
                    continue
                yield f"line {n}", obj if isinstance(obj, dict) else "not a JSON object"
            return
        try:
            text = f.read()
            data = json.loads(text, **_json_hooks(nan_missing, text))
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested too deeply
            raise FileReadError(path, f"not valid JSON: {exc}", broken=True) from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list):
        raise FileReadError(path, f"expected a JSON array of records, got {type(data).__name__}")
    for n, item in enumerate(data, 1):
        yield f"record {n}", item if isinstance(item, dict) else "not a JSON object"


def _parquet_rows(path: Path) -> Iterable[tuple[str, dict[str, Any] | str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for n, item in enumerate(table.to_pylist(), 1):
        yield f"row {n}", item


def read_rows(
    path: str | Path, progress: Progress | None = None, *, nan_missing: bool = False
) -> tuple[list[dict[str, Any]], list[str], dict[int, list[tuple[str, str]]]]:
    """Rows of a file (normalised), their locations, and per-position parsing problems.

    ``nan_missing``: a NaN in a metric cell is a missing value (the seed's own files, which
    the ledger adopts: see :func:`_number`) instead of a problem (an import)."""
    path = Path(path)
    fmt = detect_format(path)
    if not path.is_file():
        raise FileReadError(path, "no such file")
    source = {
        "csv": lambda: _csv_rows(path),
        "json": lambda: _json_rows(path, lines=False, nan_missing=nan_missing),
        "jsonl": lambda: _json_rows(path, lines=True, nan_missing=nan_missing),
        "parquet": lambda: _parquet_rows(path),
    }[fmt]()
    rows: list[dict[str, Any]] = []
    where: list[str] = []
    problems: dict[int, list[tuple[str, str]]] = {}
    try:
        items = list(source)
    except ValidationError:
        raise
    except UnicodeDecodeError as exc:
        raise FileReadError(path, f"not UTF-8 text (byte {exc.start}: {exc.reason})", broken=True) from None
    except (OSError, ValueError) as exc:  # e.g. a truncated or foreign Parquet file
        raise FileReadError(path, f"could not be read as {fmt}: {exc}", broken=True) from None
    for where_i, item in items:
        pos = len(rows)
        where.append(where_i)
        if isinstance(item, str):
            rows.append({"ticker": "?", "model_name": "?"})  # placeholder; the row is rejected
            problems[pos] = [("row", item)]
        else:
            row, probs = _normalise(item, nan_missing)
            rows.append(row)
            if probs:
                problems[pos] = probs
        if progress is not None and pos % 10_000 == 0:
            progress("reading", pos, 0)
    return rows, where, problems
