"""The parts of a filtered read both engines spell alike: which records a query selects.

A history, a count or a leaderboard over filters selects records (alias ``r``) by ticker,
model, time window and metric ranges the same way on SQLite and PostgreSQL; only the params
and tags filters differ (each engine's ``queries`` module adds them). Values are always bound
parameters (``:name``), never spelled into the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records.record import CORE_METRICS
from .base import HistoryQuery


@dataclass
class Source:
    """``FROM`` and ``WHERE`` of the records a query selects (alias ``r``), with parameters."""

    from_: str = "pl_records r"
    where: str = "1=1"
    params: dict[str, Any] = field(default_factory=dict)
    empty: bool = False  # a filter no record can meet

    @staticmethod
    def nothing() -> Source:
        return Source(where="1=0", empty=True)


def name_clauses(alias: str, tickers: tuple[str, ...], models: tuple[str, ...],
                 params: dict[str, Any]) -> list[str]:
    """``alias.ticker IN (...)`` / ``alias.model_name IN (...)`` for the names given, their
    values bound into ``params``."""
    clauses = []
    for name, values in (("ticker", tickers), ("model_name", models)):
        if values:
            keys = []
            for i, v in enumerate(values):
                params[f"{name}{i}"] = v
                keys.append(f":{name}{i}")
            clauses.append(f"{alias}.{name} IN ({', '.join(keys)})")
    return clauses


def window_clauses(alias: str, since_us: int | None, until_us: int | None,
                   params: dict[str, Any]) -> list[str]:
    """``alias.ts`` within the time window, bounds bound into ``params``."""
    clauses = []
    if since_us is not None:
        params["since"] = since_us
        clauses.append(f"{alias}.ts >= :since")
    if until_us is not None:
        params["until"] = until_us
        clauses.append(f"{alias}.ts <= :until")
    return clauses


def plain_clauses(q: HistoryQuery, params: dict[str, Any]) -> list[str]:
    """Ticker, model, time window and metric ranges of the records ``r``."""
    clauses = name_clauses("r", q.tickers, q.models, params)
    clauses += window_clauses("r", q.since_us, q.until_us, params)
    for tag, op, bounds in (("lo", ">=", q.at_least), ("hi", "<=", q.at_most)):
        for i, (metric, value) in enumerate(bounds):
            params[f"{tag}{i}"] = value
            if metric in CORE_METRICS:
                clauses.append(f"r.{metric} {op} :{tag}{i}")
            else:
                params[f"{tag}n{i}"] = metric
                clauses.append(
                    f"EXISTS (SELECT 1 FROM pl_extra e WHERE e.record_id = r.id "
                    f"AND e.name = :{tag}n{i} AND e.value {op} :{tag}{i})"
                )
    return clauses
