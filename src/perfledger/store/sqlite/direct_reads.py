"""History, count and a pair's latest metric value as plain rows, on stdlib ``sqlite3``.

Why: ``perfledger history`` of 50 rows and ``perfledger check`` spent most of their time
importing pandas, pyarrow and SQLAlchemy to build a DataFrame the command then printed or
read one value from. On the single-record path (:mod:`.direct`) these reads run the same
SQL as the full store's (the clauses of :mod:`..queries`, the order and limit of
:meth:`..sql.SQLStore._history`) and give the rows as tuples, in the columns and order
:func:`perfledger.frames.history_frame` gives: ``timestamp`` (UTC ``datetime``),
``ticker``, ``model_name``, the core metrics, ``notes``, then each custom metric the rows
hold, sorted by name. Missing values are None.

Only the plain filters (tickers, models, time window, metric ranges): a params/tags filter
or the meta columns go through the full store (:func:`answers` says which).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from ...records.record import CORE_METRICS
from ..base import HistoryQuery
from ..queries import plain_clauses

#: The history columns before the custom metrics (those of :func:`~perfledger.frames.history_frame`).
COLUMNS = ("timestamp", "ticker", "model_name", *CORE_METRICS, "notes")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def answers(query: HistoryQuery) -> bool:
    """Whether these reads answer ``query`` (no params/tags filter, no meta columns)."""
    return not (query.params or query.tags or query.include_meta)


def utc(ts_us: int) -> datetime:
    """A stored timestamp (UTC microseconds) as an aware ``datetime``."""
    return _EPOCH + timedelta(microseconds=ts_us)


def _where(query: HistoryQuery) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    return " AND ".join(plain_clauses(query, params)) or "1=1", params


def history_rows(cur: sqlite3.Cursor, query: HistoryQuery) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows of ``history(query)``, oldest first (a limit keeps the latest)."""
    where, params = _where(query)
    limit = f" LIMIT {int(query.limit)}" if query.limit else ""
    order = "ORDER BY r.ts DESC, r.id DESC" if query.limit else "ORDER BY r.ts, r.id"
    metrics = ", ".join("r." + m for m in CORE_METRICS)
    found = cur.execute(f"SELECT r.id, r.ts, r.ticker, r.model_name, {metrics}, r.notes "
                        f"FROM pl_records r WHERE {where} {order}{limit}", params).fetchall()
    if query.limit:
        found.reverse()
    extra: dict[int, dict[str, float]] = {}
    if found:
        for rid, name, value in cur.execute(
                f"SELECT e.record_id, e.name, e.value FROM pl_extra e WHERE e.record_id IN "
                f"(SELECT r.id FROM pl_records r WHERE {where} {order}{limit})", params):
            if value is not None:
                extra.setdefault(rid, {})[name] = float(value)
    names = sorted({n for values in extra.values() for n in values})
    rows = []
    for rid, ts, ticker, model, *rest in found:
        *core, notes = rest
        custom = extra.get(rid, {})
        rows.append((utc(ts), ticker, model, *[None if v is None else float(v) for v in core], notes,
                     *[custom.get(n) for n in names]))
    return [*COLUMNS, *names], rows


def count(cur: sqlite3.Cursor, query: HistoryQuery) -> int:
    """How many records ``history(query)`` gives without its limit."""
    where, params = _where(query)
    return int(cur.execute(f"SELECT COUNT(*) FROM pl_records r WHERE {where}", params).fetchone()[0])


def latest(cur: sqlite3.Cursor, query: HistoryQuery, metric: str) -> tuple[float, datetime] | None:
    """The latest value of ``metric`` (core or custom) among the records ``query`` selects,
    with its timestamp: the last non-missing one of ``history(query)[metric]``; None when
    there is none."""
    where, params = _where(query)
    if metric in CORE_METRICS:
        sql = (f"SELECT r.{metric}, r.ts FROM pl_records r WHERE {where} AND r.{metric} IS NOT NULL "
               "ORDER BY r.ts DESC, r.id DESC LIMIT 1")
    else:
        params["latest_metric"] = metric
        sql = (f"SELECT e.value, r.ts FROM pl_records r JOIN pl_extra e ON e.record_id = r.id "
               f"AND e.name = :latest_metric WHERE {where} AND e.value IS NOT NULL "
               "ORDER BY r.ts DESC, r.id DESC LIMIT 1")
    row = cur.execute(sql, params).fetchone()
    return None if row is None else (float(row[0]), utc(row[1]))
