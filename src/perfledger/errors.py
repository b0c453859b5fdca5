"""Exceptions raised by perfledger: one class per kind of failure.

Every error a user can provoke with bad input is a :class:`ValidationError`, a
``ValueError`` subclass, so code written against the seed API (which raised plain
``ValueError`` or nothing at all) keeps working, while new code can catch exactly ours.
Failures that are not bad input have classes of their own (a missing driver, a store that
failed, a ledger this user may only read, ...), all under :class:`PerfLedgerError`: the
command line turns exactly these into one ``Error:`` line, and anything else is a bug.

Driver errors never escape: the store maps them once, at its boundary
(:mod:`perfledger.store.errors`), into the classes below.
"""

from __future__ import annotations

from typing import TypeVar

#: One problem of a rejected input: ``(row, field, message)``; ``row`` is ``None`` for a
#: single call and the row's index for a batch.
Problem = tuple["int | None", str, str]


class PerfLedgerError(Exception):
    """Base class for every perfledger error.

    ``unstored``: for an error that aborted one write transaction, its message without the
    words that say nothing was stored (set where the error is made: the store boundary, the
    mirror files). An operation of several transactions (a sync, chunk by chunk; an import
    of several files) restates what it did store with :func:`partly_stored`."""

    unstored: str | None = None


class ValidationError(PerfLedgerError, ValueError):
    """Input that would store a wrong record or ask a wrong question: the message names the
    field and the value, and nothing was stored.

    ``problems`` lists ``(row, field, message)`` triples; ``row`` is ``None`` for a single
    :meth:`~perfledger.Ledger.log` call and the row's index for a batch.
    """

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems: list[Problem] = problems or []

    @classmethod
    def of(cls, field: str, message: str) -> ValidationError:
        """The error of one argument: ``message`` (which names ``field`` and its value)."""
        return cls(message, [(None, field, message)])


class WrongTypeError(ValidationError, TypeError):
    """A value of a type the argument never takes (a bool or a string where a number is
    meant, a list where a tag's text is): bad input, so a :class:`ValidationError` naming
    the argument (the command line's exit 2), and a ``TypeError``, as such values always
    raised."""


class FileReadError(ValidationError):
    """A file that does not read as records: not UTF-8, not JSON, a CSV row cut short, a
    value that is not a number. ``path`` is the file; ``where`` the row (``line 7``,
    ``record 3``) or None for the whole file; ``reason`` what is wrong there.

    ``broken`` tells the two kinds apart without reading the message: True when the file's
    structure is broken (what a write interrupted mid-way leaves), False when it is
    well-formed but holds a wrong value."""

    def __init__(self, path: object, reason: str, *, where: str | None = None, broken: bool = False,
                 field: str = "path"):
        self.path, self.reason, self.where, self.broken = path, reason, where, broken
        at = f"{where}: " if where else ""
        super().__init__(f"path={str(path)!r}: {at}{reason}", [(None, field, reason)])


class SchemaVersionError(PerfLedgerError):
    """The store was written by a newer perfledger; we refuse to touch it rather than corrupt it."""


class NotALedgerError(ValidationError):
    """The store given holds another application's tables and none of perfledger's: nothing
    is created or written in it."""

    def __init__(self, message: str):
        super().__init__(message, [(None, "store", "not a ledger")])


class StoreConnectionError(PerfLedgerError, ConnectionError):
    """The database could not be reached. The message names host and database, never a password."""


class StorageError(PerfLedgerError):
    """The database failed a read or a write (a full disk, a damaged file, a missing table).
    The message names the ledger and the cause; a write that raised it stored nothing.
    ``cause`` says which in one word a program can test (``"disk_full"``, ``"io"``,
    ``"damaged"``, ``"schema"``, ``"busy"``, ``"permission"``, ``"conflict"``, ``"other"``)."""

    def __init__(self, message: str, *, cause: str = "other"):
        super().__init__(message)
        self.cause = cause


class WriteConflictError(StorageError):
    """Concurrent writers collided (a PostgreSQL deadlock or serialisation failure): the
    transaction was rolled back and may simply be run again, which the Ledger does."""

    def __init__(self, message: str):
        super().__init__(message, cause="conflict")


class MissingDependencyError(PerfLedgerError, ImportError):
    """An optional part of perfledger is not installed (a database driver, the dashboard);
    the message says what to ``pip install``."""


class MirrorsDisabledError(PerfLedgerError):
    """A call about the seed's mirror files on a ledger that keeps none (a database URL, or
    ``Ledger(dir, mirrors=False)``)."""


class MirrorConflictError(PerfLedgerError):
    """A mirror file (``model_performance.json``/``.csv``) holds something perfledger cannot
    read as records: it is kept untouched, and writes are refused rather than overwrite it.
    The message names the file and what to do."""


class ReadOnlyLedgerError(PerfLedgerError, PermissionError):
    """A write to a ledger this user may only read (its directory or files are not writable
    for this user, or the file system is read-only); raised before anything is touched. Also
    raised on opening such a ledger when it holds no ledger yet, or needs a schema upgrade
    that only a user who may write it can make."""


#: What an error of one failed write transaction says it left.
NOTHING_STORED = "nothing was stored"

E = TypeVar("E", bound=PerfLedgerError)


def aborted_write(error: E, message: str) -> E:
    """``error`` (made with ``message`` plus ``; nothing was stored``) marked as the error of
    one failed write transaction whose message without that claim is ``message``."""
    error.unstored = message
    return error


def partly_stored(error: E, stored: int, operation: str) -> E:
    """``error``, raised by a transaction of an operation of several (``operation``: "sync",
    "import") after ``stored`` records of its earlier transactions were committed, saying so
    instead of "nothing was stored": how many records were stored before the failure, and
    that running the operation again completes it without doubling any (each such operation
    keys records by content: it is idempotent). Same class and attributes as ``error``."""
    base = error.unstored if error.unstored is not None else str(error)
    again = (f"{stored:,} record(s) were stored before the failure; run the {operation} again to complete "
             f"it (it is idempotent: no record is stored twice)")
    restated = error.__class__.__new__(error.__class__)
    restated.__dict__.update(error.__dict__)
    restated.args = (f"{base}; {again}",)
    restated.unstored = None
    return restated
