"""Exceptions raised by perfledger.

Every error a user can provoke with bad input is a :class:`ValidationError`, a
``ValueError`` subclass, so code written against the seed API (which raised plain
``ValueError`` or nothing at all) keeps working, while new code can catch exactly ours.
"""

from __future__ import annotations


class PerfLedgerError(Exception):
    """Base class for every perfledger error."""


class ValidationError(PerfLedgerError, ValueError):
    """Input that would store a wrong record: the message names the field and the value.

    ``problems`` lists ``(row, field, message)`` triples; ``row`` is ``None`` for a single
    :meth:`~perfledger.Ledger.log` call and the row's index for a batch.
    """

    def __init__(self, message: str, problems: list[tuple[int | None, str, str]] | None = None):
        super().__init__(message)
        self.problems: list[tuple[int | None, str, str]] = problems or []


class SchemaVersionError(PerfLedgerError):
    """The store was written by a newer perfledger; we refuse to touch it rather than corrupt it."""


class StoreConnectionError(PerfLedgerError, ConnectionError):
    """The database could not be reached. The message names host and database, never a password."""


class MirrorConflictError(PerfLedgerError):
    """A mirror file (``model_performance.json``/``.csv``) holds something perfledger cannot
    read as records: it is kept untouched, and writes are refused rather than overwrite it.
    The message names the file and what to do."""


class ReadOnlyLedgerError(PerfLedgerError, PermissionError):
    """A write to a ledger this user may only read (its directory or files are not writable
    for this user, or the file system is read-only); raised before anything is touched. Also
    raised on opening such a ledger when it holds no ledger yet, or needs a schema upgrade
    that only a user who may write it can make."""
