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

import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..errors import SchemaVersionError
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


def _v7_pair_index(conn: sa.Connection) -> None:
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
    # Numbered 7 on its branch; versions 3-6 belong to work merged in parallel.
    Migration(7, "index (model_name, ticker, ts, id) for the latest values per pair", _v7_pair_index),
]


def current_version() -> int:
    """The schema version this release writes."""
    return MIGRATIONS[-1].version if MIGRATIONS else BASELINE_VERSION


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


def backup_sqlite(path: str, version: int) -> Path:
    """A consistent copy of a SQLite ledger (the backup API reads one snapshot, WAL
    included), named after the version it holds; an existing backup is kept."""
    target = Path(path).with_name(f"{Path(path).name}.v{version}.bak")
    if target.exists():
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
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


def ensure_schema(engine: sa.Engine, where: str) -> None:
    """Create, check or upgrade the schema of the store behind ``engine`` (see module doc)."""
    with engine.connect() as conn:
        version = read_version(conn)
        conn.rollback()
    target = current_version()
    if version == target:
        return
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
            T.metadata.create_all(conn)
            _set_version(conn, target)
            log.info("created perfledger schema v%d in %s", target, where)
            return
        _refuse_newer(version, where)
        for step in MIGRATIONS:
            if step.version > version:
                log.info("migrating %s to schema v%d: %s", where, step.version, step.description)
                step.upgrade(conn)
                _set_version(conn, step.version)
