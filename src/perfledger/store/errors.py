"""Driver errors become perfledger errors here, once, at the store boundary.

A store talks to several drivers (SQLAlchemy over ``sqlite3`` or psycopg, the raw DB-API
cursor of the SQLite write path, the ADBC drivers of columnar reads). Whatever one of them
raises while the store works, the :class:`~perfledger.Ledger`, the command line and the
dashboard see one of perfledger's classes (:mod:`perfledger.errors`) with one line naming the
ledger and the cause: a full disk, a damaged file, a role that may only read, a lost server.

Each engine's store knows its driver's codes (SQLite's result codes, PostgreSQL's SQLSTATEs)
and says which :class:`Cause` an error is (its ``_cause`` hook); errors are told apart by
class and code, never by their text. This module turns the cause into the exception.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import (
    NOTHING_STORED,
    PerfLedgerError,
    ReadOnlyLedgerError,
    StorageError,
    StoreConnectionError,
    WriteConflictError,
    aborted_write,
)
from ..location import hide_passwords_in

if TYPE_CHECKING:
    from collections.abc import Callable


class Cause(enum.Enum):
    """What a driver error means for the user, with the words that say it."""

    DISK_FULL = "disk full"
    IO = "I/O error (the database file may have been deleted or its disk failed)"
    DAMAGED = "the database file is damaged or is not a database"
    SCHEMA = "the ledger's tables are missing or altered"
    BUSY = "another process held the database locked for too long"
    POOL = ("every server connection this ledger may hold stayed busy for too long "
            "(PERFLEDGER_PG_CONNECTIONS sets how many)")
    READ_ONLY = "read-only"
    CONFLICT = "a concurrent write collided with this one"
    UNREACHABLE = "the database server cannot be reached"
    #: The server answered, but the database the URL names is not on it (SQLSTATE 3D000,
    #: invalid_catalog_name; at connection time the driver gives no SQLSTATE, and the store
    #: asks the server's catalogue instead: see the PostgreSQL store's ``_cause``).
    NO_DATABASE = "the database does not exist"
    OTHER = "database error"


def driver_message(exc: BaseException) -> str:
    """The first line of a driver's message, any password in it hidden."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return hide_passwords_in(lines[0].strip()) if lines else type(orig).__name__


def perfledger_error(cause: Cause, where: str, exc: BaseException, *, write: bool,
                     opening: bool = False, who: str = "this user", missing: str = "") -> PerfLedgerError:
    """The exception a driver error of ``cause`` becomes, for the store described as
    ``where`` (``write``: it aborted a write; ``opening``: the store could not be opened;
    ``who``: whose rights a read-only store names; ``missing``: what to say of a database
    that does not exist, with the command that creates it)."""
    detail = driver_message(exc)
    stored = f"; {NOTHING_STORED}" if write else ""
    if cause is Cause.NO_DATABASE:
        verb = "cannot open" if opening or not write else "cannot write to"
        return StoreConnectionError(f"{verb} {where}: {missing or cause.value}{stored}")
    if opening and cause not in (Cause.READ_ONLY, Cause.CONFLICT):
        return StoreConnectionError(f"cannot open {where}: {cause.value} ({detail})")
    if cause is Cause.READ_ONLY and not write:
        return StorageError(f"{where}: {who} may not read the ledger's tables ({detail})", cause="permission")
    if cause is Cause.READ_ONLY:
        return ReadOnlyLedgerError(f"{where} is read-only for {who} ({detail}); nothing was changed")
    base = f"{where}: {cause.value} ({detail})"
    error: PerfLedgerError
    if cause is Cause.CONFLICT:
        error = WriteConflictError(f"{base}{stored}")
    elif cause is Cause.UNREACHABLE:
        error = StoreConnectionError(f"{base}{stored}")
    else:
        error = StorageError(f"{base}{stored}", cause=cause.name.lower())
    return aborted_write(error, base) if write else error


@contextmanager
def boundary(classify: Callable[[BaseException], Cause | None], where: str, *, write: bool,
             opening: bool = False, who: str = "this user", missing: str = "") -> Iterator[None]:
    """Raise a driver error that escapes the block as its perfledger error (the driver's
    exception kept as ``__cause__``); anything else passes through untouched."""
    try:
        yield
    except PerfLedgerError:
        raise
    except Exception as exc:
        cause = classify(exc)
        if cause is None:
            raise
        raise perfledger_error(cause, where, exc, write=write, opening=opening, who=who,
                               missing=missing) from exc


def orig(exc: BaseException) -> Any:
    """The DB-API exception behind a SQLAlchemy error (or the exception itself)."""
    return getattr(exc, "orig", None) or exc
