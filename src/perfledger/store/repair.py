"""Making a damaged ledger's schema whole again (``perfledger repair``, ``Ledger.repair``).

What can be repaired: missing tables and columns of the tables derived from the records
(best, summary, pairs, labels, SQLite's record labels), a missing ``pl_meta`` (stamped with
this release's version when every recorded table has this release's columns), and missing
tables that hold no record (custom metric directions, import keys, cleared records: they are
recreated empty, and the repair says so). After the schema, the store recomputes every
derived table from the records (``SQLWriteTx.recompute``).

What cannot: a ledger whose ``pl_records`` table is gone, or a table of recorded facts
(``pl_records``, ``pl_extra``, ``pl_metric_defs``) that lost a column: the values are nowhere
else in the database, and recreating them empty would pass for a ledger that never held
them. The repair refuses with the damaged-schema line,
whose advice (:func:`~perfledger.location.restore_advice`)
never points back at ``repair``: the engine's backups and the exact ``import`` of the mirror
file (or an export) into a new ledger.

What was repaired is returned, one line each, for the caller to report once (the command
line prints it; :meth:`perfledger.Ledger.repair` logs it at INFO).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from ..errors import StorageError
from ..location import restore_advice
from . import schema as T
from .migrations import EngineSteps, current_version, set_version
from .survey import DERIVED_TABLES, damaged_message, survey, unrecoverable

#: Tables that hold no record and may be recreated empty (what they held is lost).
_RECREATED_EMPTY = ("pl_metric_defs", "pl_import_keys", "pl_cleared", "pl_cleared_records",
                    "pl_cleared_extra", "pl_extra", "pl_returns",
                    "pl_cleared_returns")


def repair_schema(engine: sa.Engine, where: str, tables: Sequence[sa.Table], steps: EngineSteps,
                  *, before_upgrade: bool) -> list[str]:
    """One transaction under the schema lock: refuse a ledger without its records; before an
    upgrade (``before_upgrade``), give a ledger without ``pl_meta`` one; after it, recreate
    what is missing. Returns what was done, one line each."""
    done: list[str] = []
    with engine.connect() as conn, conn.execution_options(pl_write=True).begin():
        if steps.lock is not None:
            steps.lock(conn)
        found = survey(conn)
        # The records table, or a column of it, gone: refused before anything (the other
        # recorded tables are checked after the upgrade, which may add their columns).
        if unrecoverable(found.missing([T.records]), found):
            raise StorageError(damaged_message(where, found.missing(tables), found, engine.url)
                               .replace("; nothing was changed", "; nothing was repaired"), cause="schema")
        if before_upgrade:
            if "pl_meta" not in found.columns:
                recorded = [t for t in tables if t.name in ("pl_records", "pl_extra")]
                if found.missing(recorded):
                    raise StorageError(
                        f"{where}: pl_meta (the schema version) is gone and the records' tables are not "
                        "this release's; the release that wrote it cannot be told, so nothing was "
                        f"repaired: {restore_advice(engine.url)}", cause="schema")
                T.meta.create(conn)
                set_version(conn, current_version())
                done.append(f"recreated pl_meta (schema v{current_version()})")
            return done
        for table in tables:
            have = found.columns.get(table.name)
            if have is not None and not {c.name for c in table.c} <= have:
                if table.name not in DERIVED_TABLES:
                    gone = sorted({c.name for c in table.c} - have)
                    raise StorageError(
                        f"{where}: {table.name} lost its column(s) {', '.join(gone)}; its values cannot "
                        f"be recomputed, so nothing was repaired: {restore_advice(engine.url)}",
                        cause="schema")
                table.drop(conn)
                have = None
                done.append(f"rebuilt {table.name} (it had lost columns)")
            if have is None:
                table.create(conn)
                if table.name in DERIVED_TABLES:
                    done.append(f"recreated {table.name}")
                elif table.name in _RECREATED_EMPTY:
                    done.append(f"recreated {table.name} EMPTY (what it held is lost)")
    return done
