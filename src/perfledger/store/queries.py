"""The SQL of filtered reads: one WHERE for every filter, grouped leaderboards, label listings.

Params/tags filters mean the same on both engines (:mod:`perfledger.records.labels`: equal JSON
values) but run differently:

* **PostgreSQL** tests the JSONB columns, ``r.params @> '{"max_depth": 6}'``, served by their
  GIN indexes (``jsonb_path_ops``). An array value is also compared whole (containment alone
  would let ``[64, 32]`` match a stored ``[64, 32, 16]``).
* **SQLite** looks each filter up as a label (``pl_labels``: its id and record count) and
  finds its records in ``pl_record_labels``, indexed both ways. The query starts from the
  smallest set: the rarest label (a ``CROSS JOIN`` fixes SQLite's join order) when it holds
  fewer records than the ticker/model/time filter would select, else the usual index, with
  each label probed by primary key. A label no record carries answers "nothing" at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..records.labels import canonical, digest
from ..records.record import CORE_METRICS
from .base import Grouping, HistoryQuery, LabelRow

if TYPE_CHECKING:
    import pyarrow as pa

#: A grouped leaderboard names its labels in an IN list up to this many values, else joins them.
_IN_LIST_MAX = 64
#: Runs a read query into an Arrow table (columnar through ADBC on SQLite).
Reader = Callable[[str, dict[str, Any]], "pa.Table"]


@dataclass
class Source:
    """``FROM`` and ``WHERE`` of the records a query selects (alias ``r``), with parameters."""

    from_: str = "pl_records r"
    where: str = "1=1"
    params: dict[str, Any] = field(default_factory=dict)
    empty: bool = False  # a filter no record can meet


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


def _plain_clauses(q: HistoryQuery, params: dict[str, Any]) -> list[str]:
    """Ticker, model, time window and metric ranges."""
    clauses = name_clauses("r", q.tickers, q.models, params)
    if q.since_us is not None:
        params["since"] = q.since_us
        clauses.append("r.ts >= :since")
    if q.until_us is not None:
        params["until"] = q.until_us
        clauses.append("r.ts <= :until")
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


def source(conn: sa.Connection, q: HistoryQuery) -> Source:
    """Where the records ``q`` selects come from, on ``conn``'s engine."""
    params: dict[str, Any] = {}
    clauses = _plain_clauses(q, params)
    from_ = "pl_records r"
    if q.params or q.tags:
        if conn.dialect.name == "postgresql":
            clauses += _jsonb_clauses(q, params)
        else:
            found = _sqlite_labels(conn, q, params)
            if found is None:
                return Source(where="1=0", empty=True)
            from_, label_clauses = found
            clauses += label_clauses
    return Source(from_, " AND ".join(clauses) or "1=1", params)


def _jsonb_clauses(q: HistoryQuery, params: dict[str, Any]) -> list[str]:
    clauses = []
    for col, pairs in (("params", q.params), ("tags", q.tags)):
        if not pairs:
            continue
        params[f"{col}_c"] = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"
        clauses.append(f"r.{col} @> CAST(:{col}_c AS JSONB)")
        for i, (k, v) in enumerate(pairs):
            if v.startswith("["):  # containment is not equality for arrays
                params[f"{col}_k{i}"], params[f"{col}_v{i}"] = k, v
                clauses.append(f"r.{col} -> :{col}_k{i} = CAST(:{col}_v{i} AS JSONB)")
    return clauses


def _sqlite_labels(
    conn: sa.Connection, q: HistoryQuery, params: dict[str, Any]
) -> tuple[str, list[str]] | None:
    """The label part of a SQLite query (FROM and clauses), or None when a label is absent."""
    wanted = [digest(("p", k, v)) for k, v in q.params] + [digest(("t", k, v)) for k, v in q.tags]
    marks = ", ".join(f":h{i}" for i in range(len(wanted)))
    rows = conn.execute(sa.text(f"SELECT h, id, n FROM pl_labels WHERE h IN ({marks})"),
                        {f"h{i}": h for i, h in enumerate(wanted)}).fetchall()
    found = {h: (lid, n) for h, lid, n in rows}
    if len(found) < len(set(wanted)) or any(n <= 0 for _, n in found.values()):
        return None
    ordered = sorted(set(found.values()), key=lambda x: x[1])  # rarest first
    rarest_id, rarest_n = ordered[0]
    clauses = []
    from_, rid = "pl_records r", "r.id"
    probes = ordered
    if rarest_n < _other_estimate(conn, q, params, rarest_n):
        params["lab_d"] = rarest_id
        from_ = "pl_record_labels d CROSS JOIN pl_records r"
        clauses += ["d.label_id = :lab_d", "r.id = d.record_id"]
        # Probing by d.record_id, the other labels are checked before a record is read.
        probes, rid = ordered[1:], "d.record_id"
    for i, (lid, _n) in enumerate(probes):
        params[f"lab{i}"] = lid
        clauses.append(f"EXISTS (SELECT 1 FROM pl_record_labels x{i} WHERE x{i}.record_id = {rid} "
                       f"AND x{i}.label_id = :lab{i})")
    return from_, clauses


def _other_estimate(conn: sa.Connection, q: HistoryQuery, params: dict[str, Any], cap: int) -> float:
    """How many records the ticker/model filter (exact, from ``pl_pairs``) or the time window
    (counted up to ``cap``) would make the query visit; infinite without either."""
    if q.tickers or q.models:
        clauses = [c.replace("r.", "") for c in _plain_clauses(
            HistoryQuery(tickers=q.tickers, models=q.models), {})]
        return float(conn.execute(
            sa.text(f"SELECT COALESCE(SUM(n), 0) FROM pl_pairs WHERE {' AND '.join(clauses)}"),
            params).scalar() or 0)
    if q.since_us is not None or q.until_us is not None:
        window = " AND ".join(c for c in ("r.ts >= :since" if q.since_us is not None else "",
                                          "r.ts <= :until" if q.until_us is not None else "") if c)
        return float(conn.execute(
            sa.text(f"SELECT COUNT(*) FROM (SELECT 1 FROM pl_records r WHERE {window} LIMIT :cap)"),
            {**params, "cap": cap}).scalar() or 0)
    return math.inf


# --------------------------------------------------------------------------- leaderboards


def grouped_stats(
    conn: sa.Connection, src: Source, by: Grouping, *, ticker: str | None, read: Reader, has_extras: bool
) -> tuple[list[Any], list[Any]]:
    """Leaderboard statistics per (ticker, group, metric) over the records of ``src``:
    groups are models, or canonical param/tag values (records without the key left out).

    PostgreSQL aggregates in SQL. On SQLite the database selects the rows (filters, group
    of each record) and Arrow aggregates them, in C++, from the columnar result: SQLite's
    window functions made the same statistics 5-8x slower (measured at a million records).
    ``ticker``: the one ticker the query selects, if it selects one."""
    params = dict(src.params)
    join, extra_where, values = "", "", None
    if by is None:
        grp = "r.model_name"
    elif conn.dialect.name == "postgresql":
        col = "params" if by[0] == "p" else "tags"
        params["gkey"] = by[1]
        grp = f"r.{col} -> :gkey"
        extra_where = f" AND (r.{col} -> :gkey) IS NOT NULL"
    else:
        values = dict(conn.execute(
            sa.text("SELECT id, value FROM pl_labels WHERE kind = :gk AND key = :gkey AND n > 0"),
            {"gk": by[0], "gkey": by[1]}).fetchall())
        if not values:
            return [], []
        grp = "gr.label_id"  # ids read above, mapped to their values below
        if len(values) <= _IN_LIST_MAX:
            # "+": one seek to the record's few labels, then a filter (not a seek per value).
            join = (" JOIN pl_record_labels gr ON gr.record_id = r.id AND +gr.label_id IN "
                    f"({', '.join(str(int(i)) for i in values)})")
        else:
            params.update(gk=by[0], gkey=by[1])
            grp, values = "gl.value", None
            join = (" JOIN pl_record_labels gr ON gr.record_id = r.id JOIN pl_labels gl ON "
                    "gl.id = gr.label_id AND gl.kind = :gk AND gl.key = :gkey")
    if conn.dialect.name == "postgresql":
        long, pairs = _sql_stats(conn, src, grp, join, extra_where, params, by is not None)
    else:
        long, pairs = _arrow_stats(src, grp, join, params, ticker, read, has_extras)
    if values is not None:
        for row in (*long, *pairs):
            row[1] = values[row[1]]
    elif by is not None and conn.dialect.name == "postgresql":
        for row in (*long, *pairs):
            row[1] = canonical(json.loads(row[1]))
    return long, pairs


def _arrow_stats(
    src: Source, grp: str, join: str, params: dict[str, Any], one: str | None, read: Reader,
    has_extras: bool,
) -> tuple[list[list[Any]], list[list[Any]]]:
    import pyarrow.compute as pc

    ticker = "" if one is not None else "r.ticker, "  # one ticker: not fetched row by row
    metrics = ", ".join(f"r.{m}" for m in CORE_METRICS)
    base = f"SELECT r.id, r.ts, {ticker}{grp} AS grp, {metrics} FROM {src.from_}{join} WHERE {src.where}"
    tables = [(read(base, params), list(CORE_METRICS))]
    if has_extras:
        extra = read(f"SELECT b.id, b.ts, {'b.ticker, ' if ticker else ''}b.grp, e.name, e.value "
                     f"FROM ({base}) b JOIN pl_extra e ON e.record_id = b.id", params)
        tables.append((extra, ["value"]))
    var = pc.VarianceOptions(ddof=0)
    long: list[list[Any]] = []
    pairs: list[list[Any]] = []
    for i, (table, cols) in enumerate(tables):
        if not table.num_rows:
            continue
        keys = (["ticker"] if ticker else []) + ["grp"] + (["name"] if i else [])
        aggs = [(c, how, *((var,) if how == "variance" else ())) for c in cols
                for how in ("count", "mean", "variance", "min", "max", "last")]
        ordered = table.sort_by([("ts", "ascending"), ("id", "ascending")])
        out = ordered.group_by(keys, use_threads=False).aggregate([*aggs, ("id", "count")]).to_pylist()
        for row in out:
            t = row["ticker"] if ticker else one
            if i == 0:
                pairs.append([t, row["grp"], row["id_count"]])
            for c in cols:
                n = row[f"{c}_count"]
                if n:
                    long.append([t, row["grp"], row["name"] if i else c, n, row[f"{c}_mean"],
                                 row[f"{c}_variance"] * n, row[f"{c}_min"], row[f"{c}_max"],
                                 row[f"{c}_last"]])
    return long, pairs


def _sql_stats(
    conn: sa.Connection, src: Source, grp: str, join: str, extra_where: str, params: dict[str, Any],
    as_text: bool,
) -> tuple[list[list[Any]], list[list[Any]]]:
    """PostgreSQL: one pass over the selected records per table (the core metrics wide, the
    custom ones long): COUNT, AVG, MIN, MAX, VAR_POP x n (M2) and the latest non-null value."""
    out = "CAST(grp AS TEXT)" if as_text else "grp"
    metrics = ", ".join(f"r.{m}" for m in CORE_METRICS)
    base = (f"SELECT r.id, r.ts, r.ticker, {grp} AS grp, {metrics} FROM {src.from_}{join} "
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
    return long, pairs


# --------------------------------------------------------------------------- listings


def label_rows(conn: sa.Connection, ticker: str | None) -> list[LabelRow]:
    """Distinct param/tag values with record counts, of every record or of one ticker's."""
    if ticker is None:
        rows = conn.execute(sa.text("SELECT kind, key, value, n FROM pl_labels WHERE n > 0"))
        return [(k, key, v, int(n)) for k, key, v, n in rows]
    if conn.dialect.name != "postgresql":
        rows = conn.execute(sa.text(
            "SELECT l.kind, l.key, l.value, c.n FROM (SELECT rl.label_id, COUNT(*) AS n FROM pl_records r "
            "JOIN pl_record_labels rl ON rl.record_id = r.id WHERE r.ticker = :t GROUP BY rl.label_id) c "
            "JOIN pl_labels l ON l.id = c.label_id"), {"t": ticker})
        return [(k, key, v, int(n)) for k, key, v, n in rows]
    merged: dict[tuple[str, str, str], int] = {}
    for kind, col in (("p", "params"), ("t", "tags")):
        rows = conn.execute(sa.text(
            f"SELECT j.key, CAST(j.value AS TEXT), COUNT(*) FROM pl_records r CROSS JOIN LATERAL "
            f"jsonb_each(r.{col}) j WHERE r.ticker = :t GROUP BY j.key, j.value"), {"t": ticker})
        for key, text, n in rows:
            label = (kind, key, canonical(json.loads(text)))
            merged[label] = merged.get(label, 0) + int(n)
    return [(*label, n) for label, n in merged.items()]
