"""Schema versions, and the ordered migrations that carry an older ledger to the current one.

A ledger holds years of results, so every release must open every older ledger without
losing anything. The rules:

* A new store gets the current schema (:data:`~.schema.metadata`) and is stamped
  :func:`current_version`. A store stamped older is upgraded by running, in order, every
  :data:`MIGRATIONS` entry above its version, each stamping its own version, all in ONE
  transaction (SQLite and PostgreSQL both roll DDL back): a failed upgrade leaves the store
  exactly as it was. A store stamped newer is refused with both versions named, untouched.
* Before a store is upgraded, its engine may keep a copy (a file-based SQLite ledger keeps a
  consistent one beside it, ``perfledger.db.v<old>.bak``), so a user can go back to the
  release that wrote it.
* Opening a current store only reads its version: no write lock, so read-only ledgers open.
  A store this process may not write (``read_only``) is never created or upgraded: an empty
  or older one is refused with :class:`~perfledger.errors.ReadOnlyLedgerError` saying that a
  user who may write it must open it once.
* Concurrent openers serialise on the write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL
  advisory lock: the engine's :attr:`EngineSteps.lock`) and re-read the version under it: one
  upgrades, the others find it done.
* A step has a part every engine runs (:data:`MIGRATIONS`) and may have a part of one
  engine's own (its store's :class:`EngineSteps`), so this module never asks which engine it
  runs on.
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import NotALedgerError, ReadOnlyLedgerError, SchemaVersionError, StorageError
from . import schema as T
from .survey import Survey, refuse_damaged, refuse_foreign, survey

if TYPE_CHECKING:
    from .writes import SQLWriteTx

log = logging.getLogger("perfledger")

#: The schema of every ledger written before migrations existed (release 0.1.0).
BASELINE_VERSION = 1


@dataclass(frozen=True)
class Migration:
    """One step: from ``version - 1`` to ``version``, run inside the opener's transaction
    (``upgrade``: the part every engine runs, if any; an engine's own part follows it)."""

    version: int
    description: str
    upgrade: Callable[[sa.Connection], None] | None


@dataclass(frozen=True)
class EngineSteps:
    """What one engine adds to the migrations: its own part of some steps (by version), the
    lock concurrent openers serialise on, and a copy kept before an upgrade."""

    steps: Mapping[int, Callable[[sa.Connection], None]] = field(default_factory=dict)
    #: Run first in the upgrading transaction (it already holds SQLite's write lock).
    lock: Callable[[sa.Connection], None] | None = None
    #: Called with the old version before the upgrade starts; returns where a copy is kept.
    backup: Callable[[int], Path | None] | None = None


def _v3_import_keys(conn: sa.Connection) -> None:
    """The table whose primary key makes concurrent imports of the same rows store them once.
    Records imported before it existed are still found by content (the importer compares
    with history), so it starts empty."""
    T.import_keys.create(conn)


def _v4_labels(conn: sa.Connection) -> None:
    """params and tags become searchable: ``pl_labels`` (the engine adds its own index of
    them and fills them from every record already stored, :func:`backfill_labels`)."""
    T.labels.create(conn)


def backfill_labels(conn: sa.Connection, writer: SQLWriteTx) -> None:
    """Count (and index, as ``writer``'s engine does on insert) the params and tags of every
    record already stored: the same code that does it on insert."""
    select = sa.text(
        "SELECT id, CAST(params AS TEXT), CAST(tags AS TEXT) FROM pl_records WHERE id > :last "
        "AND (params IS NOT NULL OR tags IS NOT NULL) ORDER BY id LIMIT :n"
    )
    last = 0
    while rows := conn.execute(select, {"last": last, "n": _BACKFILL_CHUNK}).fetchall():
        writer.add_labels([r[0] for r in rows], [json.loads(r[1]) if r[1] else {} for r in rows],
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


def _v6_cleared(conn: sa.Connection) -> None:
    """A clear can be undone: the records it takes out are kept in ``pl_cleared_records`` (and
    their custom metrics in ``pl_cleared_extra``), one ``pl_cleared`` row per clear saying
    when and how many, until ``purge`` deletes them.

    Why tables of their own rather than a ``cleared_at`` marker on each record: with a
    marker, every read of the ledger (history, best, tickers, the leaderboard, decay, the
    labels, the derived tables' merges) would have to filter it out, each index would carry
    the cleared rows, and the hot paths (``history()``, ``best()``, benchmarked) would pay a
    filter per row for records nobody can see. Moved out, the live tables hold exactly what
    they held before v6: every read runs the same SQL over the same rows, as fast as before,
    and only ``restore``/``purge``/``stats`` ever look at the kept ones. A clear costs one
    copy of the rows (clears are rare); a restore inserts them again through the ordinary
    insert path, so the best, summary, pair and label tables and the mirrors are updated by
    the code that keeps them for every log."""
    for table in T.CLEARED_TABLES:
        table.create(conn)


def _v7_returns(conn: sa.Connection) -> None:
    """A backtest's per-period returns are kept: ``pl_returns`` (one row per record that kept
    a series: its values and dates as bytes) and ``pl_cleared_returns`` (those of cleared
    records, until purged). Records logged before v7 have none: both start empty."""
    for table in T.RETURNS_TABLES:
        table.create(conn)


#: Every migration, in order; a new one is appended with the next version number.
MIGRATIONS: list[Migration] = [
    Migration(2, "params and tags as JSONB on PostgreSQL", None),
    Migration(3, "pl_import_keys: imported records' content keys, unique", _v3_import_keys),
    Migration(4, "params and tags searchable (pl_labels; pl_record_labels on SQLite, GIN indexes "
                 "on PostgreSQL), filled from the records already stored", _v4_labels),
    Migration(5, "index (model_name, ticker, ts, id) for the latest values per pair", _v5_pair_index),
    Migration(6, "cleared records kept until purged (pl_cleared, pl_cleared_records, pl_cleared_extra)",
              _v6_cleared),
    Migration(7, "backtests' return series kept (pl_returns, pl_cleared_returns)", _v7_returns),
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


def set_version(conn: sa.Connection, version: int) -> None:
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


def ensure_schema(engine: sa.Engine, where: str, tables: Sequence[sa.Table], engine_steps: EngineSteps,
                  *, read_only: bool = False, check: bool = True, create: bool = True) -> bool:
    """Create, check or upgrade the schema of the store behind ``engine`` (see module doc):
    a new store gets ``tables`` (only with ``create``: opening never creates, the first
    write does), an older one every step above its version. A database that holds another
    application's tables, or a ledger whose schema is incomplete, is refused untouched
    (:mod:`.survey`; without ``check``, as a repair does before it completes it). Returns
    whether the store holds a ledger now."""
    with engine.connect() as conn:
        version = read_version(conn)
        found = survey(conn)
        conn.rollback()
    target = current_version()
    if check:
        try:
            _check(found, version, tables, where, engine.url)
        except (StorageError, NotALedgerError):
            # The version and the catalogue were read one after the other, without the lock:
            # another opener creating or upgrading the schema in between makes a whole ledger
            # look damaged (8 first syncs at once into an empty database: one was refused).
            # Look again where that cannot happen before refusing.
            version, found = _look_again(engine, engine_steps, read_only)
            _check(found, version, tables, where, engine.url)
    if version == target:
        return True
    if version is None and not create:
        return False
    if read_only:
        _refuse_read_only(version, where)
    if version is not None:
        _refuse_newer(version, where)
        kept = engine_steps.backup(version) if engine_steps.backup is not None else None
        if kept is not None:
            log.info("upgrading %s from schema v%d to v%d; a copy is kept at %s", where, version,
                     target, kept)
    with engine.connect() as conn, conn.execution_options(pl_write=True).begin():
        if engine_steps.lock is not None:
            engine_steps.lock(conn)
        version = read_version(conn)  # again, under the lock: another opener may have done it
        if version is None:
            _check(survey(conn), None, tables, where, engine.url)
            T.metadata.create_all(conn, tables=list(tables))
            set_version(conn, target)
            log.info("created perfledger schema v%d in %s", target, where)
            return True
        _refuse_newer(version, where)
        for step in MIGRATIONS:
            if step.version > version:
                log.info("migrating %s to schema v%d: %s", where, step.version, step.description)
                if step.upgrade is not None:
                    step.upgrade(conn)
                own = engine_steps.steps.get(step.version)
                if own is not None:
                    own(conn)
                set_version(conn, step.version)
        # An older ledger that lost a table upgrades into an incomplete one: refused, rolled back.
        if check:
            _check(survey(conn), current_version(), tables, where, engine.url)
    return True


def _look_again(engine: sa.Engine, engine_steps: EngineSteps, read_only: bool) -> tuple[int | None, Survey]:
    """The version and the catalogue read together: under the openers' lock (a writer), or
    (a user who may only read) once more after any schema change in flight has committed."""
    if read_only or engine_steps.lock is None:
        time.sleep(0.2)
        with engine.connect() as conn:
            version, found = read_version(conn), survey(conn)
            conn.rollback()
        return version, found
    with engine.connect() as conn, conn.execution_options(pl_write=True).begin():
        engine_steps.lock(conn)
        return read_version(conn), survey(conn)


def _check(found: Survey, version: int | None, tables: Sequence[sa.Table], where: str,
           url: sa.URL | None = None) -> None:
    """Refuse another application's database, and a ledger at this release's version whose
    schema is incomplete (an older one is checked after its upgrade)."""
    if version is None:
        refuse_foreign(found, where)
        if found.columns:  # perfledger tables without a version: the meta (and maybe the records) gone
            refuse_damaged(found, tables, where, versioned=False, url=url)
    elif version == current_version():
        refuse_damaged(found, tables, where, versioned=True, url=url)
