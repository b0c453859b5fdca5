"""SQLite's SQL of filtered reads: params/tags filters, grouped leaderboards, label listings,
each pair's latest values.

**Params/tags filters** look each filter up as a label (``pl_labels``: its id and record
count) and find its records in ``pl_record_labels``, indexed both ways. The query starts
from the smallest set: the rarest label (a ``CROSS JOIN`` fixes SQLite's join order) when it
holds fewer records than the ticker/model/time filter would select, else the usual index,
with each label probed by primary key. A label no record carries answers "nothing" at once.

**Grouped leaderboards**: the database selects the rows (filters, group of each record) and
Arrow aggregates them, in C++, from the columnar result: SQLite's window functions made the
same statistics 5-8x slower (measured at a million records).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...records.labels import LabelKind, digest
from ...records.record import CORE_METRICS
from ..base import HistoryQuery, LabelRow, TailQuery
from ..queries import Source, name_clauses, window_clauses

if TYPE_CHECKING:
    import pyarrow as pa

    from ...records.labels import Grouping

#: A grouped leaderboard names its labels in an IN list up to this many values, else joins them.
_IN_LIST_MAX = 64
#: Runs a read query into an Arrow table (columnar through ADBC).
Reader = Callable[[str, dict[str, Any]], "pa.Table"]


def label_clauses(conn: sa.Connection, q: HistoryQuery,
                  params: dict[str, Any]) -> tuple[str, list[str]] | None:
    """The FROM and the clauses of ``q``'s params/tags filters, or None when a label is absent."""
    wanted = ([digest((LabelKind.PARAM, k, v)) for k, v in q.params]
              + [digest((LabelKind.TAG, k, v)) for k, v in q.tags])
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
    if rarest_n < _other_estimate(conn, q, rarest_n):
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


def _other_estimate(conn: sa.Connection, q: HistoryQuery, cap: int) -> float:
    """How many records the ticker/model filter (exact, from ``pl_pairs``) or the time window
    (counted up to ``cap``) would make the query visit; infinite without either."""
    params: dict[str, Any] = {}
    if q.tickers or q.models:
        where = " AND ".join(name_clauses("p", q.tickers, q.models, params))
        return float(conn.execute(
            sa.text(f"SELECT COALESCE(SUM(p.n), 0) FROM pl_pairs p WHERE {where}"), params).scalar() or 0)
    if q.since_us is not None or q.until_us is not None:
        where = " AND ".join(window_clauses("r", q.since_us, q.until_us, params))
        return float(conn.execute(
            sa.text(f"SELECT COUNT(*) FROM (SELECT 1 FROM pl_records r WHERE {where} LIMIT :cap)"),
            {**params, "cap": cap}).scalar() or 0)
    return math.inf


def grouped_stats(
    conn: sa.Connection, src: Source, by: Grouping, *, ticker: str | None, read: Reader, has_extras: bool
) -> tuple[list[Any], list[Any]]:
    """Leaderboard statistics per (ticker, group, metric) over the records of ``src``: groups
    are models, or canonical param/tag values (records without the key left out).
    ``ticker``: the one ticker the query selects, if it selects one."""
    params = dict(src.params)
    join, values = "", None
    if by is None:
        grp = "r.model_name"
    else:
        values = dict(conn.execute(
            sa.text("SELECT id, value FROM pl_labels WHERE kind = :gk AND key = :gkey AND n > 0"),
            {"gk": str(by[0]), "gkey": by[1]}).fetchall())
        if not values:
            return [], []
        grp = "gr.label_id"  # ids read above, mapped to their values below
        if len(values) <= _IN_LIST_MAX:
            # "+": one seek to the record's few labels, then a filter (not a seek per value).
            join = (" JOIN pl_record_labels gr ON gr.record_id = r.id AND +gr.label_id IN "
                    f"({', '.join(str(int(i)) for i in values)})")
        else:
            params.update(gk=str(by[0]), gkey=by[1])
            grp, values = "gl.value", None
            join = (" JOIN pl_record_labels gr ON gr.record_id = r.id JOIN pl_labels gl ON "
                    "gl.id = gr.label_id AND gl.kind = :gk AND gl.key = :gkey")
    long, pairs = _arrow_stats(src, grp, join, params, ticker, read, has_extras)
    if values is not None:
        for row in (*long, *pairs):
            row[1] = values[row[1]]
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


def label_rows(conn: sa.Connection, ticker: str | None) -> list[LabelRow]:
    """Distinct param/tag values with record counts, of every record or of one ticker's."""
    if ticker is None:
        rows = conn.execute(sa.text("SELECT kind, key, value, n FROM pl_labels WHERE n > 0"))
    else:
        rows = conn.execute(sa.text(
            "SELECT l.kind, l.key, l.value, c.n FROM (SELECT rl.label_id, COUNT(*) AS n FROM pl_records r "
            "JOIN pl_record_labels rl ON rl.record_id = r.id WHERE r.ticker = :t GROUP BY rl.label_id) c "
            "JOIN pl_labels l ON l.id = c.label_id"), {"t": ticker})
    return [(k, key, v, int(n)) for k, key, v, n in rows]


def tails_sql(query: TailQuery, where: str, inner: str, params: dict[str, Any]) -> str:
    """Each pair's newest values of one metric, read off the (model_name, ticker, ts, id)
    index newest first and stopped after ``keep``: a correlated ``IN`` subquery with
    ``LIMIT`` per pair (``inner``: its conditions on ``q``; ``where``: the pairs' on ``s``)."""
    if query.custom:
        source = "pl_records q JOIN pl_extra qe ON qe.record_id = q.id AND qe.name = :metric"
        value, extra_join = "e.value", " JOIN pl_extra e ON e.record_id = r.id AND e.name = :metric"
    else:
        source, value, extra_join = "pl_records q", f"r.{query.metric}", ""
    limit = " LIMIT :keep" if "keep" in params else ""
    newest = f"WHERE {inner} ORDER BY q.ts DESC, q.id DESC{limit}"
    return (f"SELECT s.ticker, s.model_name, r.ts, r.id, {value} AS value FROM pl_summary s "
            f"JOIN pl_records r ON r.id IN (SELECT q.id FROM {source} {newest}){extra_join} WHERE {where}")
