"""Schema versions, and the ordered migrations that carry an older ledger to the current one.

A ledger holds years of results, so every release must open every older ledger without
losing anything. The rules:

* A new store gets the current schema (:data:`~.schema.metadata`) and is stamped
  :func:`current_version`. A store stamped older is upgraded by running, in order, every
  :data:`MIGRATIONS` entry above its version, each stamping its own version, all in ONE
  transaction (SQLite and PostgreSQL both roll DDL back): a failed upgrade leaves the store
  exactly as it was. A store stamped newer is refused with both versions named, untouched.
* Before a file-based SQLite ledger is upgraded, a consistent copy of it is kept beside it
  (``perfledger.db.v<old>.bak``), so a user can go back to the release that wrote it.
* Opening a current store only reads its version: no write lock, so read-only ledgers open.
  A store this process may not write (``read_only``) is never created or upgraded: an empty
  or older one is refused with :class:`~perfledger.errors.ReadOnlyLedgerError` saying that a
  user who may write it must open it once.
* Concurrent openers serialise on the write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL
  advisory lock) and re-read the version under it: one upgrades, the others find it done.
* Every migration must leave the schema exactly as a fresh ``create_all`` of the current
  metadata makes it (tested), so old and new ledgers are indistinguishable afterwards.

Why not Alembic: it is built around a script directory, an ``env.py`` and a command run by
an operator; perfledger is an embedded library that must upgrade transparently on open, in
one transaction, under its own lock, on SQLite files users copy around. A handful of small
Python functions in this module does that with nothing to configure (the approach of
sqlite-utils' and Datasette's own migrations).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..errors import ReadOnlyLedgerError, SchemaVersionError, ValidationError
from . import schema as T

log = logging.getLogger("perfledger")

#: The schema of every ledger written before migrations existed (release 0.1.0).
BASELINE_VERSION = 1
_PG_LOCK_KEY = 7426001


@dataclass(frozen=True)
class Migration:
    """One step: from ``version - 1`` to ``version``, run inside the opener's transaction."""

    version: int
    description: str
    upgrade: Callable[[sa.Connection], None]


def _v2_jsonb(conn: sa.Connection) -> None:
    """params and tags become JSONB on PostgreSQL (SQLite keeps JSON text)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "ALTER TABLE pl_records ALTER COLUMN params TYPE JSONB USING params::jsonb, "
            "ALTER COLUMN tags TYPE JSONB USING tags::jsonb"
        )


def _v3_import_keys(conn: sa.Connection) -> None:
    """The table whose primary key makes concurrent imports of the same rows store them once.
    Records imported before it existed are still found by content (the importer compares
    with history), so it starts empty."""
    T.import_keys.create(conn)


def _v4_labels(conn: sa.Connection) -> None:
    """params and tags become searchable: ``pl_labels`` (and ``pl_record_labels`` on
    SQLite, GIN indexes on PostgreSQL), filled from every record already stored by the same
    code that fills them on insert."""
    from .writes import SQLWriteTx, Statements

    sqlite = conn.dialect.name == "sqlite"
    for table in T.tables_for(conn.dialect.name):
        if table.name in (T.labels.name, T.record_labels.name):
            table.create(conn)
    if not sqlite:
        for index in T.records.indexes:
            if index._ddl_if is not None and index._ddl_if.dialect == "postgresql":
                index.create(conn)
    tx = SQLWriteTx(conn, Statements(conn.dialect.name))
    select = sa.text(
        "SELECT id, CAST(params AS TEXT), CAST(tags AS TEXT) FROM pl_records WHERE id > :last "
        "AND (params IS NOT NULL OR tags IS NOT NULL) ORDER BY id LIMIT :n"
    )
    last = 0
    while rows := conn.execute(select, {"last": last, "n": _BACKFILL_CHUNK}).fetchall():
        tx.add_labels([r[0] for r in rows], [json.loads(r[1]) if r[1] else {} for r in rows],
                      [json.loads(r[2]) if r[2] else {} for r in rows])
        last = rows[-1][0]


_BACKFILL_CHUNK = 20_000

def _v5_pair_index(conn: sa.Connection) -> None:
    """The (model_name, ts) index becomes (model_name, ticker, ts, id): the latest values of
    each (ticker, model) pair are then an index range read (``Ledger.decay``), and a model's
    history still finds its rows. Replaced rather than added, so a bulk load builds no more
    indexes than before."""
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_pl_records_model_ts")
    conn.exec_driver_sql(
        "CREATE INDEX ix_pl_records_model_ticker_ts ON pl_records (model_name, ticker, ts, id)"
    )


#: Every migration, in order; a new one is appended with the next version number.
MIGRATIONS: list[Migration] = [
    Migration(2, "params and tags as JSONB on PostgreSQL", _v2_jsonb),
    Migration(3, "pl_import_keys: imported records' content keys, unique", _v3_import_keys),
    Migration(4, "params and tags searchable (pl_labels; pl_record_labels on SQLite, GIN indexes "
                 "on PostgreSQL), filled from the records already stored", _v4_labels),
    Migration(5, "index (model_name, ticker, ts, id) for the latest values per pair", _v5_pair_index),
]


def current_version() -> int:
    """The schema version this release writes."""
    return MIGRATIONS[-1].version if MIGRATIONS else BASELINE_VERSION


def refuse_foreign_sqlite(path: Path, where: str) -> None:
    """Refuse a SQLite file that holds tables but none of perfledger's (someone else's
    database): opening it would create the ledger's tables in it, and even the WAL pragma
    rewrites its header. Read through a plain connection that writes nothing, before any
    engine (``immutable=1`` when there is no ``-wal`` file, which a read-only connection could
    create; else ``mode=ro``, as :mod:`.readonly` does); an empty, new or unreadable file is
    left to the normal open."""
    try:
        if path.stat().st_size == 0:
            return
        wal = path.with_name(path.name + "-wal").exists()
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}", uri=True)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return
    names = [n for n in names if not n.startswith("sqlite_")]
    if names and not any(n in T.metadata.tables or n.startswith("pl_") for n in names):
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise ValidationError(
            f"store {where} is not a perfledger ledger: it holds other tables ({shown}) and none of "
            "perfledger's; give a ledger, a new file or an empty database (nothing was written)",
            [(None, "store", "not a ledger")],
        )


def read_version(conn: sa.Connection) -> int | None:
    """The stored schema version, or None for a database without a ledger."""
    if not sa.inspect(conn).has_table(T.meta.name):
        return None
    row = conn.execute(sa.select(T.meta.c.value).where(T.meta.c.key == "schema_version")).scalar()
    return int(row) if row is not None else BASELINE_VERSION


def _set_version(conn: sa.Connection, version: int) -> None:
    conn.execute(sa.delete(T.meta).where(T.meta.c.key == "schema_version"))
    conn.execute(sa.insert(T.meta).values(key="schema_version", value=str(version)))


def _refuse_newer(version: int, where: str) -> None:
    target = current_version()
    if version > target:
        raise SchemaVersionError(
            f"{where} was written by a newer perfledger (schema v{version}; this one understands "
            f"up to v{target}). Upgrade perfledger; the store was not touched."
        )


def _refuse_read_only(version: int | None, where: str) -> None:
    """A store this process may not write, that is not at the current version."""
    if version is None:
        raise ReadOnlyLedgerError(
            f"{where} holds no perfledger ledger yet and is read-only for this user; a user who "
            "may write it creates it with the first write"
        )
    _refuse_newer(version, where)
    raise ReadOnlyLedgerError(
        f"{where} has schema v{version} and needs upgrading to v{current_version()} by a user "
        "who may write it (opening it once with this perfledger, e.g. `perfledger tickers`, "
        "upgrades it); this user may only read it, so it was not touched"
    )


def backup_sqlite(path: str, version: int) -> Path:
    """A consistent copy of a SQLite ledger (the backup API reads one snapshot, WAL
    included), named after the version it holds; an existing backup is kept."""
    target = Path(path).with_name(f"{Path(path).name}.v{version}.bak")
    if target.exists():
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    # The copy gets the mode open() gives (SQLite alone would create it 0644 less the umask).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
    src = sqlite3.connect(path, timeout=120)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    tmp.replace(target)
    return target


def ensure_schema(engine: sa.Engine, where: str, *, read_only: bool = False) -> None:
    """Create, check or upgrade the schema of the store behind ``engine`` (see module doc)."""
    with engine.connect() as conn:
        version = read_version(conn)
        conn.rollback()
    target = current_version()
    if version == target:
        return
    if read_only:
        _refuse_read_only(version, where)
    if version is not None:
        _refuse_newer(version, where)
        database = engine.url.database
        if engine.url.get_backend_name() == "sqlite" and database and database != ":memory:":
            kept = backup_sqlite(database, version)
            log.info("upgrading %s from schema v%d to v%d; a copy is kept at %s", where, version,
                     target, kept)
    with engine.connect() as conn, conn.execution_options(pl_write=True).begin():
        if engine.url.get_backend_name() == "postgresql":
            # Concurrent openers would otherwise race on CREATE TABLE / ALTER TABLE.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        version = read_version(conn)  # again, under the lock: another opener may have done it
        if version is None:
            T.create_all(conn)
            _set_version(conn, target)
            log.info("created perfledger schema v%d in %s", target, where)
            return
        _refuse_newer(version, where)
        for step in MIGRATIONS:
            if step.version > version:
                log.info("migrating %s to schema v%d: %s", where, step.version, step.description)
                step.upgrade(conn)
                _set_version(conn, step.version)
