"""The merges into the derived tables, declared once as data.

Every insert merges its batch's aggregates into ``pl_best``, ``pl_summary`` and ``pl_pairs``
(params and tags into ``pl_labels``, the mirrors' state into ``pl_meta``) with a conditional
upsert, ``INSERT .. ON CONFLICT (key) DO UPDATE SET .. WHERE ..``, which both engines evaluate
atomically against the latest committed row. That is what keeps ``best()`` exact with any
number of concurrent writers, on one machine or many.

An :class:`Upsert` names the table, its conflict key, how a stored row and an incoming one
merge, and when the merge happens at all. SQLAlchemy renders it: each engine's store hands
in its dialect's ``insert`` (``sqlite.insert``, ``postgresql.insert``: the constructs that
know ``ON CONFLICT``) and compiles the statement once for its driver. PostgreSQL renders the
same merges a second way, fed from the record inserted in the same statement
(:meth:`Upsert.from_select`). The rules therefore live here only, and no SQL text is ever
parsed or edited to derive another form.

``min``/``max`` of two values are spelled as ``CASE`` (SQLite has no ``LEAST``/``GREATEST``,
PostgreSQL has no two-argument ``min``): the merged columns are never NULL, so it is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import schema as T

#: A dialect's ``insert()`` construct: ``sqlalchemy.dialects.sqlite.insert`` or
#: ``sqlalchemy.dialects.postgresql.insert``.
InsertFactory = Callable[[sa.Table], Any]
#: ``(stored, incoming) -> value``: the stored row's columns and the incoming row's
#: (``excluded``) columns, as SQL expressions.
Columns = Any


@dataclass(frozen=True)
class Upsert:
    """An insert that merges into the row already holding its key."""

    table: sa.Table
    #: The conflict target: the primary key (or a unique index) the rows collide on.
    key: tuple[str, ...]
    #: The columns an update sets, from the stored and the incoming row.
    merge: Callable[[Columns, Columns], Mapping[str, Any]]
    #: When the stored row is updated at all (None: always).
    when: Callable[[Columns, Columns], Any] | None = None
    #: The columns each incoming row carries (default: every column but an autoincrement id).
    carried: tuple[str, ...] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        if self.carried is not None:
            return self.carried
        return tuple(c.name for c in self.table.c if c is not self.table.autoincrement_column)

    def _on_conflict(self, stmt: Any) -> Any:
        stored, incoming = self.table.c, stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=list(self.key),
            set_=dict(self.merge(stored, incoming)),
            where=self.when(stored, incoming) if self.when is not None else None,
        )

    def statement(self, insert: InsertFactory) -> Any:
        """``INSERT .. VALUES (:col, ..) ON CONFLICT ..`` for rows given as parameters."""
        return self._on_conflict(insert(self.table).values({c: sa.bindparam(c) for c in self.columns}))

    def from_select(self, insert: InsertFactory, select: sa.Select[Any]) -> Any:
        """``INSERT .. SELECT .. ON CONFLICT ..``: the rows come from ``select``, whose
        columns are :attr:`columns` in order."""
        return self._on_conflict(insert(self.table).from_select(list(self.columns), select))


def _least(a: Any, b: Any) -> Any:
    return sa.case((a <= b, a), else_=b)


def _greatest(a: Any, b: Any) -> Any:
    return sa.case((a >= b, a), else_=b)


def _best(higher: bool) -> Upsert:
    """A candidate replaces the best when strictly better, or equal and earlier (ts, id):
    exactly what a recomputation from history, in chronological order, would pick."""

    def when(stored: Columns, new: Columns) -> Any:
        better = new.value > stored.value if higher else new.value < stored.value
        earlier = sa.or_(new.ts < stored.ts, sa.and_(new.ts == stored.ts, new.record_id < stored.record_id))
        return sa.or_(better, sa.and_(new.value == stored.value, earlier))

    return Upsert(
        T.best, ("ticker", "metric"),
        merge=lambda stored, new: {c: new[c] for c in ("model_name", "value", "ts", "record_id")},
        when=when,
    )


#: Best per (ticker, metric), for metrics where higher is better, and lower.
BEST_HIGHER = _best(True)
BEST_LOWER = _best(False)


def _newer(stored: Columns, new: Columns) -> Any:
    return sa.or_(new.last_ts > stored.last_ts,
                  sa.and_(new.last_ts == stored.last_ts, new.last_id > stored.last_id))


def _summary_merge(s: Columns, new: Columns) -> dict[str, Any]:
    """Count, mean and M2 merged in Chan et al.'s form (exact for any split of the values),
    min, max and the latest value."""
    n = s.n + new.n
    total = sa.type_coerce(n, sa.Float())  # a float division on both engines
    delta = new.mean - s.mean
    return {
        "n": n,
        "mean": s.mean + delta * new.n / total,
        "m2": s.m2 + new.m2 + delta * delta * s.n * new.n / total,
        "min": _least(s.min, new.min),
        "max": _greatest(s.max, new.max),
        "last_value": sa.case((_newer(s, new), new.last_value), else_=s.last_value),
        "last_id": sa.case((_newer(s, new), new.last_id), else_=s.last_id),
        "last_ts": _greatest(s.last_ts, new.last_ts),
    }


#: Running statistics per (ticker, model, metric).
SUMMARY = Upsert(T.summary, ("ticker", "model_name", "metric"), merge=_summary_merge)

#: Record count and time span per (ticker, model).
PAIRS = Upsert(T.pairs, ("ticker", "model_name"), merge=lambda s, new: {
    "n": s.n + new.n,
    "first_ts": _least(s.first_ts, new.first_ts),
    "last_ts": _greatest(s.last_ts, new.last_ts),
})

#: Each distinct param/tag value and how many records carry it.
LABELS = Upsert(T.labels, ("h",), merge=lambda s, new: {"n": s.n + new.n})

#: A ``pl_meta`` value, replaced.
META = Upsert(T.meta, ("key",), merge=lambda s, new: {"value": new.value})

#: The merges of an insert, in the order they run (one lock order for concurrent writers).
AGGREGATES = {"best_hi": BEST_HIGHER, "best_lo": BEST_LOWER, "summary": SUMMARY, "pairs": PAIRS}

#: Where a merged row takes the id of the record it comes from.
RECORD_ID_COLUMNS = ("record_id", "last_id")
