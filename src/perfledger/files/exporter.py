"""Exporting ledger records to CSV, JSON or Parquet files that re-import as duplicates.

Every export carries the full record (custom metrics, params and tags included) with
timestamps in UTC to the microsecond, so ``perfledger import`` of an export adds nothing:
the round trip is exact. Formats:

* ``csv``: the seed's columns, then ``metrics``, ``params``, ``tags`` as JSON objects (the
  same layout as the ``model_performance.csv`` mirror).
* ``json``: a JSON array of seed records, ``metrics``/``params``/``tags`` when non-empty
  (the layout of ``model_performance.json``).
* ``parquet``: ``timestamp`` as ``timestamp[us, UTC]``, metrics as float64, notes as text,
  ``metrics``/``params``/``tags`` as JSON text, and a backtest's kept return series
  (schema v7) as ``returns`` (``list<double>``, null for a record without) with its dates as
  ``returns_dates`` (``list<timestamp[us, UTC]>``, null when it has none): an import brings
  them back exactly. The CSV and JSON layouts are the seed's mirrors', without returns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..location import DB_NAME
from ..mirrors.layout import CSV_COLUMNS, csv_bytes, json_body
from ..mirrors.rebuild import BEST_NAME, CSV_NAME, JSON_NAME
from ..mirrors.undo import JOURNAL
from ..records.batch import Batch
from ..records.record import CORE_METRICS
from ..records.timestamps import parse_timestamp

if TYPE_CHECKING:
    from .importer import LedgerLike

EXPORT_FORMATS = ("csv", "json", "parquet")


def export_records(
    led: LedgerLike,
    fmt: str,
    output: str | os.PathLike[str],
    *,
    ticker: str | None = None,
    model_name: str | None = None,
    days_back: float | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> int:
    """Write the (filtered) records to ``output`` in ``fmt``; returns how many. The filters
    are :meth:`~perfledger.Ledger.records`'."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(
            f"format={fmt!r} is not one of {', '.join(EXPORT_FORMATS)}", [(None, "format", "unknown")]
        )
    path = Path(output).expanduser()
    refuse_ledger_file(led, path, "output")
    records = led.records(ticker, model_name, days_back, params=params, tags=tags,
                          **({"include_returns": True} if fmt == "parquet" else {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with open(path, "wb") as f:
            f.write((",".join(CSV_COLUMNS) + "\r\n").encode())
            if records:
                f.write(csv_bytes(Batch.from_seed_dicts(records)))
    elif fmt == "json":
        body = b"[\n" + json_body(Batch.from_seed_dicts(records)) + b"\n]\n" if records else b"[]\n"
        path.write_bytes(body)
    else:
        _write_parquet(records, path)
    return len(records)


def _write_parquet(records: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def js(v: Any) -> str | None:
        return json.dumps(v, ensure_ascii=False, sort_keys=True) if v else None

    columns: dict[str, Any] = {
        "timestamp": pa.array([parse_timestamp(r["timestamp"]) for r in records], pa.int64()).cast(
            pa.timestamp("us", tz="UTC")
        ),
        "ticker": pa.array([r["ticker"] for r in records], pa.string()),
        "model_name": pa.array([r["model_name"] for r in records], pa.string()),
    }
    for m in CORE_METRICS:
        columns[m] = pa.array([r[m] for r in records], pa.float64())
    columns["notes"] = pa.array([r["notes"] for r in records], pa.string())
    for k in ("metrics", "params", "tags"):
        columns[k] = pa.array([js(r.get(k)) for r in records], pa.string())
    series = [r.get("returns") for r in records]
    if any(s is not None for s in series):
        import pandas as pd

        columns["returns"] = pa.array([None if s is None else s.to_numpy() for s in series],
                                      pa.list_(pa.float64()))
        stamp = pa.timestamp("us", tz="UTC")
        columns["returns_dates"] = pa.array(
            [s.index.as_unit("us").asi8 if s is not None and isinstance(s.index, pd.DatetimeIndex)
             else None for s in series], pa.list_(pa.int64())).cast(pa.list_(stamp))
    pq.write_table(pa.table(columns), path)


#: The files a ledger directory holds: an export never writes over one of them.
LEDGER_FILES = frozenset({DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", JSON_NAME, CSV_NAME, BEST_NAME,
                          JOURNAL})


def refuse_ledger_file(led: LedgerLike, path: Path, fieldname: str) -> None:
    """A ``ValidationError`` naming ``fieldname`` when ``path`` is one of the ledger's own
    files (an export over ``model_performance.json`` would leave a mirror the ledger then
    refuses to write beside)."""
    if led.directory is None:
        return
    target = path.resolve()
    if target.parent == led.directory.resolve() and target.name in LEDGER_FILES:
        raise ValidationError(
            f"{fieldname}={str(path)!r} is one of the ledger's own files; write the export elsewhere "
            "(rebuild_mirrors() rewrites the mirrors)", [(None, fieldname, "a ledger file")],
        )
