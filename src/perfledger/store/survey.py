"""What a database holds when a store opens it: nothing, another application's tables, a whole
ledger, or a damaged one; and what ``repair`` may make whole again.

Opening never runs on a damaged schema: a ledger whose tables or columns are missing, or
whose derived tables survive without the records they were derived from (``pl_records`` or
``pl_meta`` dropped), is refused with one line naming what is missing
(:class:`~perfledger.errors.StorageError`, ``cause="schema"``). Recreating the missing
tables at open would make ``best()`` report records that no longer exist, and an empty
``pl_records`` beside surviving derived tables would pass for a ledger. The line says what
to do: ``perfledger repair`` when the records are there (every derived table is recomputed
from them), the mirrors or a backup when they are not.

A database holding tables but none of perfledger's is another application's: it is refused
(:class:`~perfledger.errors.NotALedgerError`) and nothing is created in it, on every engine.

The survey is a look at the catalogue (table and column names, through SQLAlchemy's
inspector: one query per engine for all columns on PostgreSQL), never at an error's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from ..errors import NotALedgerError, StorageError
from ..location import restore_advice

#: The tables whose rows are recorded facts (not recomputable from other tables). The others
#: are derived from ``pl_records`` (and ``pl_extra``, ``pl_metric_defs``) and ``repair``
#: recomputes them.
SOURCE_TABLES = ("pl_records", "pl_extra", "pl_metric_defs", "pl_meta")
#: What ``repair`` recomputes from the records.
DERIVED_TABLES = ("pl_best", "pl_summary", "pl_pairs", "pl_labels", "pl_record_labels")


@dataclass
class Survey:
    """The ledger tables a database holds (their columns), and its other tables."""

    columns: dict[str, set[str]] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.columns and not self.others

    def missing(self, tables: Sequence[sa.Table]) -> list[str]:
        """What of ``tables`` is absent: ``pl_x`` for a table, ``pl_x.col`` for a column."""
        out = []
        for table in tables:
            have = self.columns.get(table.name)
            if have is None:
                out.append(table.name)
            else:
                out.extend(f"{table.name}.{c.name}" for c in table.c if c.name not in have)
        return out


def survey(conn: sa.Connection) -> Survey:
    """The tables in the database's default schema, perfledger's (``pl_*``) with their columns."""
    insp = sa.inspect(conn)
    names = insp.get_table_names()
    ours = [n for n in names if n.startswith("pl_")]
    found = Survey(others=[n for n in names if not n.startswith("pl_") and not n.startswith("sqlite_")])
    if ours:
        multi = insp.get_multi_columns(filter_names=ours)
        for (_schema, name), cols in multi.items():
            found.columns[name] = {c["name"] for c in cols}
    return found


def refuse_foreign(found: Survey, where: str) -> None:
    """Refuse a database holding other tables and none of perfledger's."""
    if found.others and not found.columns:
        names = sorted(found.others)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise NotALedgerError(
            f"store {where} is not a perfledger ledger: it holds other tables ({shown}) and none of "
            "perfledger's; give a ledger, a new database or an empty one (nothing was written)"
        )


def refuse_damaged(found: Survey, tables: Sequence[sa.Table], where: str, *, versioned: bool,
                   url: sa.URL | None = None) -> None:
    """Refuse a ledger whose schema is incomplete: ``tables`` are those its version has
    (``versioned``: ``pl_meta`` holds a version; without it, any ``pl_*`` table left is a
    ledger that lost its records or its meta). ``url``: the store's, for the advice."""
    missing = found.missing(tables)
    if versioned and not missing:
        return
    if not versioned:
        missing = [t for t in ("pl_records", "pl_meta") if t not in found.columns] or missing
    raise StorageError(damaged_message(where, missing, found, url), cause="schema")


def unrecoverable(missing: Sequence[str], found: Survey) -> list[str]:
    """What of ``missing`` no repair can bring back: the records table, or a column of a
    table of recorded facts (its values are nowhere else in the database)."""
    if "pl_records" not in found.columns:
        return ["pl_records"]
    return [m for m in missing if "." in m and m.split(".")[0] in SOURCE_TABLES]


def damaged_message(where: str, missing: Sequence[str], found: Survey, url: sa.URL | None = None) -> str:
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    lost = unrecoverable(missing, found)
    if lost == ["pl_records"]:
        advice = ("the records table itself is gone, so nothing can be recomputed and `perfledger "
                  f"repair` cannot help: {restore_advice(url)}")
    elif lost:
        advice = (f"{', '.join(lost)} held recorded values that no other table keeps, so "
                  f"`perfledger repair` cannot bring them back: {restore_advice(url)}")
    else:
        advice = ("run `perfledger repair` to recreate what is missing and recompute every derived "
                  "table from the records")
    return f"{where}: the ledger's schema is damaged, missing {shown}; nothing was changed; {advice}"
