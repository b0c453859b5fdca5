"""PostgreSQL's one-statement ``log()`` (store/postgres/writer.py).

A single record is one statement (one round trip) instead of seven, and it leaves exactly
the derived tables (best, summary, pairs, labels, custom metrics) and the "best changed"
answers the statement-by-statement path leaves for the same records.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from perfledger import Ledger
from perfledger.store.postgres.writer import PgWriteTx
from perfledger.store.writes import SQLWriteTx

pytestmark = pytest.mark.postgres


def _records() -> list[dict[str, Any]]:
    out = []
    for i in range(60):
        out.append({
            "model_name": f"M{i % 3}", "ticker": ("A", "B", "C")[i % 3 if i < 45 else 0],
            "sharpe": None if i % 10 == 0 else float(i % 7),  # ties on purpose
            "mse": None if i % 4 == 0 else 0.1 * (i % 5), "drawdown": -0.01 * (i % 3),
            "metrics": {"ic": float(i % 6), "free": i * 0.5} if i % 5 == 0 else None,
            "params": {"lr": i % 3} if i % 2 else None, "tags": {"run": "n"} if i % 9 == 0 else None,
            "notes": f"r{i}", "timestamp": f"2024-01-01T00:00:{i // 4:02d}+00:00",  # equal ts too
        })
    return out


def _state(led: Ledger) -> dict[str, Any]:
    """The derived tables, with record ids replaced by the records' notes."""
    engine = led._store.engine
    with engine.connect() as conn:
        def q(sql: str) -> list[tuple[Any, ...]]:
            return sorted(tuple(r) for r in conn.execute(sa.text(sql)))
        return {
            "best": q("SELECT b.ticker, b.metric, b.model_name, b.value, b.ts, r.notes FROM pl_best b "
                      "JOIN pl_records r ON r.id = b.record_id"),
            "summary": q("SELECT s.ticker, s.model_name, s.metric, s.n, round(s.mean::numeric, 9), "
                         "round(s.m2::numeric, 9), s.min, s.max, s.last_value, s.last_ts, r.notes "
                         "FROM pl_summary s JOIN pl_records r ON r.id = s.last_id"),
            "pairs": q("SELECT ticker, model_name, n, first_ts, last_ts FROM pl_pairs"),
            "labels": q("SELECT kind, key, value, n FROM pl_labels"),
            "extra": q("SELECT r.notes, e.name, e.value FROM pl_extra e "
                       "JOIN pl_records r ON r.id = e.record_id"),
        }


def _log_all(led: Ledger, changed: list[bool], one_statement: bool,
             monkeypatch: pytest.MonkeyPatch) -> None:
    """Log the records through the one-statement insert, or through the shared
    statement-by-statement one (what a batch of several records takes)."""
    insert = PgWriteTx.insert if one_statement else SQLWriteTx.insert

    def spy(self: PgWriteTx, batch: Any) -> Any:
        out = insert(self, batch)
        changed.append(out.best_changed)
        return out

    monkeypatch.setattr(PgWriteTx, "insert", spy)
    for r in _records():
        led.log(**r)
    monkeypatch.undo()


def test_one_statement_leaves_what_the_statement_by_statement_path_leaves(
    pg_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_ledger.register_metric("ic", higher_is_better=False)
    fast: list[bool] = []
    _log_all(pg_ledger, fast, True, monkeypatch)
    want = _state(pg_ledger)
    best = pg_ledger.best()
    pg_ledger.clear()
    slow: list[bool] = []
    _log_all(pg_ledger, slow, False, monkeypatch)
    assert _state(pg_ledger) == want
    assert pg_ledger.best() == best
    assert fast == slow and any(fast) and not all(fast)
    assert best["A"]["best_ic"]["value"] == 0.0  # lower is better, from the custom metric


def _round_trips(led: Ledger, call: Any) -> list[list[str]]:
    """What ``call`` sends the server, one list per round trip (the client's protocol
    messages up to the server's ReadyForQuery), read from libpq's own trace of every
    connection the ledger's engine hands out meanwhile."""
    import tempfile

    from psycopg import pq

    traced: list[Any] = []

    def trace(dbapi_conn: Any, *_: Any) -> None:
        dbapi_conn.pgconn.trace(out.fileno())
        dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        traced.append(dbapi_conn.pgconn)

    with tempfile.TemporaryFile("w+") as out:
        sa.event.listen(led._store.engine, "checkout", trace)
        try:
            call()
        finally:
            sa.event.remove(led._store.engine, "checkout", trace)
            for pgconn in traced:
                pgconn.untrace()
        out.seek(0)
        trips: list[list[str]] = [[]]
        for line in out.read().splitlines():
            fields = line.split("\t")
            if len(fields) < 3 or fields[0] not in ("F", "B"):
                continue  # a line of a statement's text (it may span lines)
            side, _size, message, *rest = [*fields, ""]
            if side == "F" and message not in ("Sync", "Describe"):
                trips[-1].append(f"{message} {rest[0].strip()[:40]}".strip())
            elif side == "B" and message == "ReadyForQuery":
                trips.append([])
    return [t for t in trips if t]


def test_a_log_is_one_statement(pg_ledger: Ledger) -> None:
    """One round trip: the one statement that stores the record and merges its aggregates,
    committing itself (no BEGIN, no COMMIT: issue 21), prepared on the server once, then only
    bound and executed. A record with params or custom metrics: a transaction around it."""
    def log(sharpe: float) -> None:
        pg_ledger.log("M", "T", sharpe=sharpe, mse=0.1, drawdown=-0.1, notes="x")

    log(1.0)  # first use: connections, directions, schema checks; the statement prepared
    first = _round_trips(pg_ledger, lambda: log(1.5))
    assert not any(m.startswith("Parse") for trip in first for m in trip), first  # prepared once
    trips = _round_trips(pg_ledger, lambda: log(2.0))
    assert len(trips) == 1, trips
    assert [m.split()[0] for m in trips[0]] == ["Bind", "Execute"], trips  # prepared: no Parse
    # A record with params and custom metrics: plus the directions read and the labels' upsert.
    trips = _round_trips(pg_ledger, lambda: pg_ledger.log("M", "T", sharpe=2.0, params={"lr": 1},
                                                          metrics={"ic": 1.0}))
    assert len(trips) in (5, 6), trips  # (6: this shape of parameters prepared on first use)
    assert trips[0] == ["Query \"BEGIN\""] and trips[-1] == ["Query \"COMMIT\""], trips
    assert len(pg_ledger.history(ticker="T")) == 4
