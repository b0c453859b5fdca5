"""The team store: a PostgreSQL database reached through psycopg 3, large reads through ADBC
when its driver is installed (:mod:`.arrow`).

Server connections are a budget a team shares: ``max_connections`` (100 by default) must
hold every process of every machine. One store holds at most
``$PERFLEDGER_PG_CONNECTIONS`` (default 2) server connections: half (rounded up) in the
SQLAlchemy pool (writes, small reads), the rest for ADBC reads; a thread that needs one
while all are busy waits for one (``pool_timeout``, 30 s). A pooled connection is checked
before use without a round trip (:func:`_gone`: a server that restarted, or that ended the
session, has closed the socket or sent its farewell, so the socket reads as ready), and with
a round trip only after it sat idle for a while (a silently dropped network path);
SQLAlchemy's ``pool_pre_ping`` cost a round trip per ``log()``.

Concurrent openers of an older schema serialise on an advisory lock. A snapshot is
``REPEATABLE READ``, read only. What PostgreSQL's SQLSTATEs mean for the user is decided
here (:meth:`PostgresStore._cause`), by code, never by message: a deadlock or serialisation
failure between writers (the Ledger runs the write again), a role granted ``SELECT`` only, a
full disk, a lost or unreachable server, missing tables.
"""

from __future__ import annotations

import logging
import os
import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ...errors import MissingDependencyError
from ...location import describe_store, driver_install_hint
from .. import schema as T
from ..errors import Cause, orig
from ..migrations import EngineSteps, backfill_labels
from ..sql import SQLStore
from . import arrow, queries
from .writer import PgStatements, PgWriteTx

if TYPE_CHECKING:
    from ...records.labels import Grouping
    from ..base import HistoryQuery, LabelRow, TailQuery
    from ..queries import Source

log = logging.getLogger("perfledger")

_LOCK_KEY = 7426001
#: Environment variable: the most server connections one store (one Ledger) holds.
CONNECTIONS_ENV = "PERFLEDGER_PG_CONNECTIONS"
DEFAULT_CONNECTIONS = 2
#: A pooled connection idle longer than this is pinged (one round trip) before use.
PING_AFTER_IDLE_S = 30.0
#: SQLSTATE classes and codes, and what they mean (a code's own entry wins over its class's).
_CAUSES = {
    "40P01": Cause.CONFLICT,  # deadlock_detected
    "40001": Cause.CONFLICT,  # serialization_failure
    "42501": Cause.READ_ONLY,  # insufficient_privilege
    "25006": Cause.READ_ONLY,  # read_only_sql_transaction (a hot standby)
    "53100": Cause.DISK_FULL,  # disk_full
    "3D000": Cause.NO_DATABASE,  # invalid_catalog_name
    "42P01": Cause.SCHEMA,  # undefined_table
    "42703": Cause.SCHEMA,  # undefined_column
    "XX001": Cause.DAMAGED,  # data_corrupted
    "XX002": Cause.DAMAGED,  # index_corrupted
    "55P03": Cause.BUSY,  # lock_not_available
    "08": Cause.UNREACHABLE,  # connection_exception
    "57P": Cause.UNREACHABLE,  # operator intervention: the server shut down or restarted
    "58": Cause.IO,  # system_error (an I/O error on the server)
}
#: PostgreSQL type OIDs → the Arrow types the ADBC driver reads them as: the row path gives
#: the same schema (an empty answer included, where there is no value to infer a type from).
_ARROW_TYPES: dict[int, Any] = {}


def _arrow_types() -> dict[int, Any]:
    if not _ARROW_TYPES:
        import pyarrow as pa

        _ARROW_TYPES.update({16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(),
                             25: pa.string(), 700: pa.float32(), 701: pa.float64(), 1043: pa.string()})
    return _ARROW_TYPES


def _v2_jsonb(conn: sa.Connection) -> None:
    """params and tags become JSONB (SQLite keeps JSON text)."""
    conn.exec_driver_sql(
        "ALTER TABLE pl_records ALTER COLUMN params TYPE JSONB USING params::jsonb, "
        "ALTER COLUMN tags TYPE JSONB USING tags::jsonb"
    )


def _v4_jsonb_indexes(conn: sa.Connection) -> None:
    """GIN indexes on the JSONB columns (what params/tags filters use), and the label
    counts of every record already stored."""
    for index in T.JSONB_INDEXES:
        index.create(conn)
    backfill_labels(conn, PgWriteTx(conn, PgStatements(conn.dialect)))


def connection_budget() -> tuple[int, int]:
    """(SQLAlchemy pool size, ADBC connections) from ``$PERFLEDGER_PG_CONNECTIONS``: half of
    the budget, rounded up, for the pool, the rest for columnar reads (none with a budget of
    1: every read then goes through the pool)."""
    from ...errors import ValidationError

    raw = os.environ.get(CONNECTIONS_ENV, "").strip()
    try:
        total = int(raw) if raw else DEFAULT_CONNECTIONS
    except ValueError:
        total = 0
    if total < 1:
        raise ValidationError(f"{CONNECTIONS_ENV}={raw!r} must be a whole number >= 1 (the most server "
                              "connections one Ledger holds)", [(None, CONNECTIONS_ENV, raw)])
    return total - total // 2, total // 2


def _gone(dbapi_connection: Any) -> bool:
    """True when an idle connection is certainly dead, without a round trip: closed by the
    driver, or its socket readable (an idle session receives nothing; a server that ends it
    sends a FATAL message and closes)."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    try:
        return bool(select.select([dbapi_connection.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _install_liveness_check(engine: sa.Engine) -> None:
    """Replace SQLAlchemy's ``pool_pre_ping`` (a round trip per checkout) with :func:`_gone`,
    plus a real ping after :data:`PING_AFTER_IDLE_S` idle. A connection found dead is
    discarded and the pool hands out another (``DisconnectionError``)."""

    @sa.event.listens_for(engine, "checkin")
    def _idle_since(dbapi_connection: Any, record: Any) -> None:
        record.info["pl_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle = time.monotonic() - record.info.get("pl_idle_since", time.monotonic())
        if _gone(dbapi_connection):
            raise sa.exc.DisconnectionError("the server closed this connection")
        if idle > PING_AFTER_IDLE_S:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise sa.exc.DisconnectionError(f"ping failed: {type(exc).__name__}") from exc


#: The databases every PostgreSQL server has, asked whether another one exists.
_MAINTENANCE_DATABASES = ("postgres", "template1")
#: How long the question may wait for the server (it is asked after a failed connection).
_PROBE_TIMEOUT_S = 5


def database_missing(url: sa.URL) -> bool:
    """Whether the server of ``url`` answers and has no database of ``url``'s name: asked in
    its catalogue (``pg_database``) through a maintenance database, with the same role. False
    when that cannot be told (the server is not reached, the role may not connect there)."""
    if not url.database:
        return False
    for name in _MAINTENANCE_DATABASES:
        if name == url.database:
            continue
        engine = sa.create_engine(url.set(database=name), poolclass=sa.pool.NullPool,
                                  connect_args={"connect_timeout": _PROBE_TIMEOUT_S})
        try:
            with engine.connect() as conn:
                found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                     {"name": url.database}).first()
            return found is None
        except Exception:  # not reached, or not allowed there: cannot tell
            continue
        finally:
            engine.dispose()
    return False


def missing_database_words(url: sa.URL) -> str:
    """What an error of ``url``'s database not existing says: where, and the command that
    creates it (PostgreSQL's ``createdb``)."""
    host, port = url.host or "localhost", url.port or 5432
    user = f" -U {url.username}" if url.username else ""
    return (f"database {url.database!r} does not exist on {host}:{port}; create it with "
            f"`createdb -h {host} -p {port}{user} {url.database}` (or name a database that exists "
            "in the URL)")


def _lock(conn: sa.Connection) -> None:
    # Concurrent openers would otherwise race on CREATE TABLE / ALTER TABLE.
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")


class PostgresStore(SQLStore):
    """A ledger in a PostgreSQL database."""

    STEPS = EngineSteps(steps={2: _v2_jsonb, 4: _v4_jsonb_indexes}, lock=_lock)

    def __init__(self, url: sa.URL, *, repair: bool = False):
        pooled, columnar = connection_budget()
        try:
            engine = sa.create_engine(url, pool_size=pooled, max_overflow=0)
        except ImportError as exc:  # the driver is an extra
            raise MissingDependencyError(
                f"{describe_store(url)} needs the PostgreSQL driver ({exc.name or exc} is not "
                f"installed): {driver_install_hint(url, exc.name)}"
            ) from None
        _install_liveness_check(engine)
        self.who = f"role {url.username or '(default)'!r}"
        self.missing_database = missing_database_words(url)
        self._statements = PgStatements(engine.dialect)
        try:
            reader = arrow.PostgresArrow(engine, columnar) if columnar and arrow.available() else None
            super().__init__(url, engine, reader, repair=repair)
        except BaseException:
            engine.dispose()
            raise

    # ------------------------------------------------------------------ hooks

    def _cause(self, exc: BaseException) -> Cause | None:
        if isinstance(exc, sa.exc.TimeoutError):  # the pool's wait for a connection ran out
            return Cause.POOL
        dbapi = self.engine.dialect.loaded_dbapi  # psycopg (or whichever driver the URL names)
        error = orig(exc)
        if not isinstance(error, dbapi.Error):
            return None
        code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if not code:  # the driver raises connection failures without a SQLSTATE
            if not isinstance(error, dbapi.OperationalError):
                return Cause.OTHER
            # The server may be there and the database not: libpq reports the server's 3D000
            # as text only, so the server's catalogue is asked (never the message's words).
            return Cause.NO_DATABASE if database_missing(self.url) else Cause.UNREACHABLE
        for key in (code, code[:3], code[:2]):
            if key in _CAUSES:
                return _CAUSES[key]
        # SQL the server refuses (a syntax error, a wrong parameter): a bug, not mapped.
        return None if isinstance(error, dbapi.ProgrammingError) else Cause.OTHER

    @contextmanager
    def _transaction(self, single: bool = False) -> Iterator[PgWriteTx]:
        with self.engine.connect() as conn:
            writer = conn.execution_options(pl_write=True)
            trans = writer.begin()
            tx = PgWriteTx(writer, self._statements, single)
            try:
                yield tx
                trans.commit()
            except BaseException:
                tx.aborted()
                if trans.is_active:
                    trans.rollback()
                raise
            tx.committed()

    def _snapshot_connection(self, conn: sa.Connection) -> sa.Connection:
        return conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)

    def _label_source(self, conn: sa.Connection, query: HistoryQuery, params: dict[str, Any]
                      ) -> tuple[str, list[str]] | None:
        return "pl_records r", queries.label_clauses(query, params)

    def _grouped_stats(self, conn: sa.Connection, src: Source, by: Grouping, ticker: str | None
                       ) -> tuple[list[Any], list[Any]]:
        return queries.grouped_stats(conn, src, by)

    def _label_rows(self, conn: sa.Connection, ticker: str | None) -> list[LabelRow]:
        return queries.label_rows(conn, ticker)

    def _tails_sql(self, query: TailQuery, where: str, inner: str, params: dict[str, Any]) -> str:
        return queries.tails_sql(query, where, inner, params)

    def _row_types(self, result: sa.CursorResult[Any]) -> dict[str, Any]:
        types = _arrow_types()
        oids = [getattr(d, "type_code", None) for d in result.cursor.description or ()]
        return {n: types[o] for n, o in zip(result.keys(), oids, strict=False) if o in types}

    def identity(self) -> tuple[Any, ...]:
        row = self._read(lambda c: c.execute(sa.text(
            "SELECT current_database(), CAST(pg_postmaster_start_time() AS TEXT), inet_server_port()"
        )).one())
        return ("postgresql", *row)

