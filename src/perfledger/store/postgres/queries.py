"""PostgreSQL's SQL of filtered reads: params/tags filters, grouped leaderboards, label
listings, each pair's latest values.

**Params/tags filters** test the JSONB columns, ``r.params @> '{"max_depth": 6}'``, served by
their GIN indexes (``jsonb_path_ops``). An array value is also compared whole (containment
alone would let ``[64, 32]`` match a stored ``[64, 32, 16]``).

**Grouped leaderboards** aggregate in SQL, one pass over the selected records per table (the
core metrics wide, the custom ones long): COUNT, AVG, MIN, MAX, VAR_POP x n (M2) and the
latest non-null value.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...records.labels import LabelKind, canonical
from ...records.record import CORE_METRICS
from ..base import HistoryQuery, LabelRow, TailQuery
from ..queries import Source

if TYPE_CHECKING:
    from ...records.labels import Grouping


def label_clauses(q: HistoryQuery, params: dict[str, Any]) -> list[str]:
    """The clauses of ``q``'s params/tags filters, their values bound into ``params``."""
    clauses = []
    for kind, pairs in ((LabelKind.PARAM, q.params), (LabelKind.TAG, q.tags)):
        if not pairs:
            continue
        col = kind.column
        params[f"{col}_c"] = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"
        clauses.append(f"r.{col} @> CAST(:{col}_c AS JSONB)")
        for i, (k, v) in enumerate(pairs):
            if v.startswith("["):  # containment is not equality for arrays
                params[f"{col}_k{i}"], params[f"{col}_v{i}"] = k, v
                clauses.append(f"r.{col} -> :{col}_k{i} = CAST(:{col}_v{i} AS JSONB)")
    return clauses


def grouped_stats(conn: sa.Connection, src: Source, by: Grouping) -> tuple[list[Any], list[Any]]:
    """Leaderboard statistics per (ticker, group, metric) over the records of ``src``: groups
    are models, or canonical param/tag values (records without the key left out)."""
    params = dict(src.params)
    extra_where = ""
    if by is None:
        grp, out = "r.model_name", "grp"
    else:
        col = by[0].column
        params["gkey"] = by[1]
        grp, out = f"r.{col} -> :gkey", "CAST(grp AS TEXT)"
        extra_where = f" AND (r.{col} -> :gkey) IS NOT NULL"
    metrics = ", ".join(f"r.{m}" for m in CORE_METRICS)
    base = (f"SELECT r.id, r.ts, r.ticker, {grp} AS grp, {metrics} FROM {src.from_} "
            f"WHERE {src.where}{extra_where}")

    def stats(v: str) -> str:
        return (f"COUNT({v}), AVG({v}), VAR_POP({v}) * COUNT({v}), MIN({v}), MAX({v}), "
                f"(ARRAY_AGG({v} ORDER BY ts DESC, id DESC) FILTER (WHERE {v} IS NOT NULL))[1]")

    wide = conn.execute(sa.text(
        f"WITH b AS MATERIALIZED ({base}) SELECT ticker, {out}, COUNT(*), "
        f"{', '.join(stats(m) for m in CORE_METRICS)} FROM b GROUP BY ticker, grp"), params).fetchall()
    long: list[list[Any]] = []
    pairs: list[list[Any]] = []
    for row in wide:
        pairs.append([row[0], row[1], row[2]])
        for i, m in enumerate(CORE_METRICS):
            n, mean, m2, mn, mx, last = row[3 + 6 * i: 9 + 6 * i]
            if n:
                long.append([row[0], row[1], m, n, mean, m2, mn, mx, last])
    extras = conn.execute(sa.text(
        f"WITH b AS MATERIALIZED ({base}), v AS (SELECT b.ticker, b.grp, b.ts, b.id, e.name, e.value "
        f"FROM b JOIN pl_extra e ON e.record_id = b.id) SELECT ticker, {out}, name, {stats('value')} "
        "FROM v GROUP BY ticker, grp, name"), params).fetchall()
    long += [list(r) for r in extras]
    if by is not None:
        for row in (*long, *pairs):
            row[1] = canonical(json.loads(row[1]))
    return long, pairs


def label_rows(conn: sa.Connection, ticker: str | None) -> list[LabelRow]:
    """Distinct param/tag values with record counts, of every record or of one ticker's."""
    if ticker is None:
        rows = conn.execute(sa.text("SELECT kind, key, value, n FROM pl_labels WHERE n > 0"))
        return [(k, key, v, int(n)) for k, key, v, n in rows]
    merged: dict[tuple[str, str, str], int] = {}
    for kind in LabelKind:
        rows = conn.execute(sa.text(
            f"SELECT j.key, CAST(j.value AS TEXT), COUNT(*) FROM pl_records r CROSS JOIN LATERAL "
            f"jsonb_each(r.{kind.column}) j WHERE r.ticker = :t GROUP BY j.key, j.value"), {"t": ticker})
        for key, text, n in rows:
            label = (str(kind), key, canonical(json.loads(text)))
            merged[label] = merged.get(label, 0) + int(n)
    return [(*label, n) for label, n in merged.items()]


def tails_sql(query: TailQuery, where: str, inner: str, params: dict[str, Any]) -> str:
    """Each pair's newest values of one metric, read off the (model_name, ticker, ts, id)
    index newest first and stopped after ``keep``: a ``LATERAL`` join per pair (``inner``:
    its conditions on ``q``; ``where``: the pairs' on ``s``)."""
    if query.custom:
        source = "pl_records q JOIN pl_extra qe ON qe.record_id = q.id AND qe.name = :metric"
        value = "qe.value"
    else:
        source, value = "pl_records q", f"q.{query.metric}"
    limit = " LIMIT :keep" if "keep" in params else ""
    newest = f"WHERE {inner} ORDER BY q.ts DESC, q.id DESC{limit}"
    return ("SELECT s.ticker, s.model_name, t.ts, t.id, t.value FROM pl_summary s CROSS JOIN "
            f"LATERAL (SELECT q.ts, q.id, {value} AS value FROM {source} {newest}) t WHERE {where}")
