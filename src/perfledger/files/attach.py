"""Return series for records the ledger already holds: what an import and a sync do with them.

A record's identity is its content (:func:`.importer.record_key`), and the content key leaves
the kept return series out: a record logged with ``keep_returns=False``, or imported from a
seed-shaped JSON/CSV file (which never carries series), is *the same record* as the one a
Parquet export or another ledger brings with its series. Such a row is a duplicate, but its
series is not: the issue asks that import and sync bring series back. So, for every incoming
row whose record is already present:

* the present record has **no series**: the row's series is attached to it (to the oldest
  record with that content when the ledger holds several), in the write transaction, and
  only if the record still has none then (a series is never replaced);
* the present record has **the same series** (byte for byte): nothing to do;
* the present record has **a different series**: the ledger's is kept and the row's is
  counted (``series_not_imported`` of an import, ``series_differ`` of a sync). Which run is
  right cannot be told from the records (they agree on every metric), and replacing what a
  ledger holds silently is what neither command ever does; the count says where to look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..records.record import CORE_METRICS
from ..records.timestamps import format_ts, parse_timestamp

if TYPE_CHECKING:  # (not imported: numpy stays out of a process that only logs)
    from ..records.kept_returns import KeptReturns

#: A record's content key (:func:`.importer.record_key`).
Key = tuple[Any, ...]
#: The present records by content key: ``(record id, has a series)``, oldest first.
Present = dict[Key, list[tuple[int, bool]]]


def present_records(led: Any, tickers: Sequence[str], since_us: int, until_us: int,
                    record_key: Callable[..., Key]) -> Present:
    """The ledger's records of ``tickers`` in ``[since_us, until_us]``, by content key
    (``record_key``: :func:`.importer.record_key`, passed in by the importer and the sync,
    which import this module), with their ids and whether each kept a series: one read (ids
    and a flag, not the series)."""
    out: Present = {}
    for r in led.records(list(tickers), since=format_ts(since_us), until=format_ts(until_us),
                         include_meta=True):
        key = record_key(parse_timestamp(r["timestamp"]), r["ticker"], r["model_name"],
                         (r[m] for m in CORE_METRICS), r["notes"], r["metrics"], r["params"], r["tags"])
        out.setdefault(key, []).append((r["record_id"], r["has_returns"]))
    return out


@dataclass(slots=True)
class Attachments:
    """What to do with the series of incoming rows whose records are present: ``kept``
    maps a present record's id to the series to attach; ``same`` rows brought the series
    the record has; ``differ`` rows a different one (the ledger's is kept)."""

    kept: dict[int, KeptReturns] = field(default_factory=dict)
    same: int = 0
    differ: int = 0


def plan_attachments(present: Present, rows: Iterable[tuple[Key, KeptReturns]],
                     read_returns: Callable[[list[int]], Mapping[int, KeptReturns]]) -> Attachments:
    """For each ``(key, series)`` of an incoming row whose record is ``present`` (the first
    row of each key decides), the module's rule. ``read_returns`` reads the present
    records' own series (only those of records that have one, to compare)."""
    first: dict[Key, KeptReturns] = {}
    for key, series in rows:
        if key in present and key not in first:
            first[key] = series
    out = Attachments()
    if not first:
        return out
    theirs = read_returns(sorted({rid for key in first for rid, has in present[key] if has}))
    for key, series in first.items():
        had = [theirs.get(rid) for rid, has in present[key] if has]
        if not had:
            out.kept[present[key][0][0]] = series
        elif any(h is not None and _same(h, series) for h in had):
            out.same += 1
        else:
            out.differ += 1
    return out


def _same(a: KeptReturns, b: KeptReturns) -> bool:
    return a.n == b.n and a.values == b.values and a.dates == b.dates
