"""A mirror file that could not be written, as one of perfledger's errors.

The mirror files are written with plain ``os`` calls inside the database's write
transaction. An ``OSError`` there (a full disk, the process's file size limit, a quota, a
file this user may not write, a failing disk) aborts the transaction as a database error
does: the appends are taken back and nothing is stored. What reaches the user is mapped
here, once (:func:`file_errors` wraps every step of a
:class:`~.transaction.MirrorTransaction`), into the classes of :mod:`perfledger.errors`,
with one line naming the ledger directory, the file and the cause, told apart by
``errno``, never by the text.
"""

from __future__ import annotations

import errno
from pathlib import Path
from types import TracebackType

from ..errors import NOTHING_STORED, PerfLedgerError, ReadOnlyLedgerError, StorageError, aborted_write

#: Out of space: the disk or a quota is full, or the process's file size limit
#: (``ulimit -f``: with ``SIGXFSZ`` ignored, as Python does, the write fails with EFBIG).
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Not this user's to write (a file made read-only under an open ledger, a read-only mount).
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def file_error(directory: Path, exc: OSError) -> PerfLedgerError:
    """The perfledger error an ``OSError`` on a mirror file of ``directory`` becomes."""
    name = Path(exc.filename).name if exc.filename else "a mirror file"
    detail = f"{exc.strerror or type(exc).__name__} writing {name}"
    where = f"ledger directory {str(directory)!r}"
    error: PerfLedgerError
    if exc.errno in DISK_FULL:
        base = f"{where}: disk full ({detail})"
        error = StorageError(f"{base}; {NOTHING_STORED}", cause="disk_full")
    elif exc.errno in NOT_WRITABLE:
        base = f"{where} is read-only for this user ({detail})"
        error = ReadOnlyLedgerError(f"{base}; {NOTHING_STORED}")
    else:
        base = f"{where}: I/O error ({detail})"
        error = StorageError(f"{base}; {NOTHING_STORED}", cause="io")
    return aborted_write(error, base)


class FileErrors:
    """A reusable ``with`` block that raises an ``OSError`` escaping it as its perfledger
    error (the ``OSError`` kept as ``__cause__``). An object rather than a generator: every
    ``log()`` enters a few, and a ``contextmanager`` costs a generator each time."""

    __slots__ = ("directory",)

    def __init__(self, directory: Path):
        self.directory = directory

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(exc, OSError):
            raise file_error(self.directory, exc) from exc


def file_errors(directory: Path) -> FileErrors:
    """Raise an ``OSError`` that escapes the block as its perfledger error (the
    ``OSError`` kept as ``__cause__``)."""
    return FileErrors(directory)
