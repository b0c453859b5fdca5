"""A large batch's mirror bytes, formatted column by column in Arrow.

A bulk load formats its JSON and CSV in a background thread while the main thread inserts
the rows into the database. Formatting through Python objects (a million dicts handed to
orjson) holds the GIL for seconds, and the insert, which needs the GIL between rows, waited
for it: a measured 1.6 s ``executemany`` became 5 s. Arrow's compute functions and CSV writer
release the GIL, so here each column is spelled once, vectorised, and the rows are joined
element-wise; only the rare values Arrow cannot spell like orjson (exponents, escapes, nested
custom metrics/params/tags) go through Python.

The bytes are exactly those of :func:`perfledger.mirrors.layout.json_body`'s orjson path and
its CSV twin: a property test holds them together, so one mirror never mixes two spellings.

Kept because the bulk-load target needs it: at a million records this spelling takes 1.5 s
where orjson over dicts takes 1.95 s, and, releasing the GIL, runs beside the insert instead
of after it (with the background append; without both, the load measured 1.36-1.50x
``DataFrame.to_csv`` against a 1.3x target: :mod:`.layout` has the figures and the command).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..records.record import CORE_METRICS, SEED_FIELDS

if TYPE_CHECKING:
    from ..records.batch import Batch

#: Rows per Arrow pass: bounds the intermediate strings (~300 bytes a row) and keeps
#: every offset well inside 32 bits.
_CHUNK = 131_072
#: Text columns have 64-bit offsets: a batch's notes (or one chunk's JSON) may pass 2 GiB.
TEXT = pa.large_string()
#: Where Arrow's float-to-string cast and orjson both write positional digits (the same
#: shortest round-trip digits; Arrow drops a trailing ".0", which is added back).
_POSITIONAL = (1e-5, 1e10)
#: The characters orjson escapes in a string: controls, the quote and the backslash.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'


def seed_columns(batch: Batch) -> dict[str, pa.Array]:
    """The batch's seed fields as Arrow arrays, built once (kept on the batch) and shared by
    both mirrors, whose formatters run one after the other in the one background thread."""
    if batch.arrow is None:
        batch.arrow = _build(batch)
    return batch.arrow


def _build(batch: Batch) -> dict[str, pa.Array]:
    """From the validated frame when the batch has one (no Python object per value), else
    from the batch's lists."""
    frame = batch.frame
    cols: dict[str, pa.Array] = {"timestamp": _timestamps(batch)}
    for name in ("ticker", "model_name"):
        cols[name] = _strings(frame[name] if frame is not None else getattr(batch, name))
    for m in CORE_METRICS:
        if frame is not None:
            cols[m] = pa.array(frame[m].to_numpy(dtype="float64"), pa.float64(), from_pandas=True)
        else:
            cols[m] = pa.array(batch.core[m], pa.float64())
    cols["notes"] = _strings(frame["notes"] if frame is not None else batch.notes)
    return cols


def _strings(values: Any) -> pa.Array:
    arr = pa.array(values, TEXT)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _timestamps(batch: Batch) -> pa.Array:
    """``format_ts`` for the whole column. Arrow casts a microsecond timestamp to
    ``1970-01-01 00:00:00.000000`` (always four-digit years in the ledger's 1900-2200 range,
    always six fractional digits): thirty times faster than its ``strftime``."""
    frame = batch.frame
    us = frame["ts_us"].to_numpy(dtype="int64") if frame is not None else np.asarray(batch.ts_us, "int64")
    text = pc.cast(pa.array(us, pa.timestamp("us")), TEXT)
    return _join(pc.replace_substring(text, " ", "T", max_replacements=1), "+00:00")


def _join(*pieces: Any) -> pa.Array:
    """Concatenate arrays and literals element-wise (literals as 64-bit-offset text too)."""
    args = [pa.scalar(p, TEXT) if isinstance(p, str) else p for p in pieces]
    return pc.binary_join_element_wise(*args, pa.scalar("", TEXT))


def csv_table(batch: Batch) -> pa.Table:
    """The CSV mirror's columns, in its order."""
    extras = {k: _json_or_null(batch, k) for k in ("metrics", "params", "tags")}
    return pa.table({**seed_columns(batch), **extras})


def _json_or_null(batch: Batch, key: str) -> pa.Array:
    values = getattr(batch, key)
    if not any(values):
        return pa.nulls(len(values), TEXT)
    return pa.array(batch.json_or_none(key), TEXT)


# ---------------------------------------------------------------------------- JSON


def json_parts(batch: Batch) -> list[memoryview]:
    """The inside of the JSON array (records separated by ",\\n"), as orjson's
    ``OPT_INDENT_2`` lays out the seed's ``json.dump(records, indent=2)``: in consecutive
    pieces, views of Arrow's buffers, written as they are (a copy of 300 MB into one
    ``bytes`` cost half a second)."""
    n = len(batch)
    cols = seed_columns(batch)
    extras = _extras(batch)
    parts: list[memoryview] = []
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        pieces: list[Any] = []
        for i, key in enumerate(SEED_FIELDS):
            col = cols[key].slice(lo, hi - lo)
            head = "  {\n" if i == 0 else ",\n"
            if key == "timestamp":  # no character to escape: quoted as is
                pieces += [f'{head}    "{key}": "', col, '"']
            elif key in CORE_METRICS:
                pieces += [f'{head}    "{key}": ', _numbers(col)]
            else:
                pieces += [f'{head}    "{key}": ', _quoted(col)]
        if extras is not None:
            pieces.append(extras.slice(lo, hi - lo))
        pieces.append("\n  },\n")
        parts.append(_values(_join(*pieces)))
    if parts:
        parts[-1] = parts[-1][:-2]  # the last record's ",\n"
    return parts


def _values(arr: pa.Array) -> memoryview:
    """The concatenated bytes of a string array: its value buffer between the first and the
    last offset (a sliced array's buffer may hold more)."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    return memoryview(arr.buffers()[2]).cast("B")[offsets[0]: offsets[-1]]


def _numbers(col: pa.Array) -> pa.Array:
    """Floats as orjson writes them: shortest round-trip digits, ``1.0`` not ``1``, exponents
    outside ~[1e-5, 1e10), ``null`` for a missing value."""
    text = pc.cast(col, TEXT)
    size = pc.abs(col)
    positional = pc.or_(pc.equal(col, 0.0),
                        pc.and_(pc.greater_equal(size, _POSITIONAL[0]), pc.less(size, _POSITIONAL[1])))
    integral = pc.and_(positional, pc.invert(pc.match_substring(text, ".")))
    text = pc.if_else(integral, _join(text, ".0"), text)
    other = pc.and_(pc.is_valid(col), pc.invert(positional)).to_numpy(zero_copy_only=False)
    if other.any():
        where = np.flatnonzero(other)
        values = col.take(pa.array(where)).to_pylist()
        text = pc.replace_with_mask(text, pa.array(other),
                                    pa.array([orjson.dumps(v).decode() for v in values], TEXT))
    return pc.fill_null(text, pa.scalar("null", TEXT))


def _quoted(col: pa.Array) -> pa.Array:
    """Strings as JSON: quoted, with orjson's escapes where a value needs one (rare)."""
    text = _join('"', col, '"')
    escape = pc.match_substring_regex(col, _NEEDS_ESCAPE).to_numpy(zero_copy_only=False)
    if escape.any():
        values = col.take(pa.array(np.flatnonzero(escape))).to_pylist()
        text = pc.replace_with_mask(text, pa.array(escape),
                                    pa.array([orjson.dumps(v).decode() for v in values], TEXT))
    return text


def _extras(batch: Batch) -> pa.Array | None:
    """Per record, its custom metrics, params and tags members (empty when it has none),
    spelled by :func:`extra_members`; None when no record has any."""
    if not any(batch.metrics) and not any(batch.params) and not any(batch.tags):
        return None
    return pa.array(
        [extra_members(m, p, t) for m, p, t in zip(batch.metrics, batch.params, batch.tags, strict=True)],
        TEXT,
    )


def extra_members(metrics: dict[str, Any], params: dict[str, Any], tags: dict[str, Any]) -> str:
    """``,\\n    "metrics": {...}`` and so on for the non-empty ones, indented as members of
    a record inside the seed's array."""
    out = []
    for key, value in (("metrics", metrics), ("params", params), ("tags", tags)):
        if value:
            out.append(f',\n    "{key}": {nested_json(value)}')
    return "".join(out)


def nested_json(value: dict[str, Any]) -> str:
    """A record's dict member at depth 2 of the array, as orjson indents it; the standard
    library where orjson refuses (an integer beyond 64 bits in params)."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n    ")
