"""What SQLite's result codes mean for the user, decided once, by code, never by message.

Both ways this package talks to SQLite (the store through SQLAlchemy, :mod:`.store`; the
single-record path on stdlib ``sqlite3``, :mod:`.direct`) classify a driver error here: a
full disk, an I/O error (the file deleted under the process, a failing disk), a damaged
file, a lock held too long, a file this user may not write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from ..errors import Cause, orig
from .space import out_of_space

#: SQLite primary result codes (``sqlite3.Error.sqlite_errorcode & 0xff``) and what they mean.
CAUSES = {
    5: Cause.BUSY,  # SQLITE_BUSY
    6: Cause.BUSY,  # SQLITE_LOCKED
    8: Cause.READ_ONLY,  # SQLITE_READONLY
    10: Cause.IO,  # SQLITE_IOERR
    11: Cause.DAMAGED,  # SQLITE_CORRUPT
    13: Cause.DISK_FULL,  # SQLITE_FULL
    14: Cause.IO,  # SQLITE_CANTOPEN
    26: Cause.DAMAGED,  # SQLITE_NOTADB
}
#: Extended I/O result codes of a write that did not fit: SQLite's unix VFS says
#: ``SQLITE_FULL`` only for ``ENOSPC``; the process's file size limit (``ulimit -f``: the
#: write fails with ``EFBIG``, ``SIGXFSZ`` being ignored, as Python does) or a quota comes
#: back as one of these, which :func:`.space.out_of_space` then tells from a failing disk.
WRITE_IOERRS = frozenset({
    10 | (3 << 8),  # SQLITE_IOERR_WRITE
    10 | (4 << 8),  # SQLITE_IOERR_FSYNC
    10 | (6 << 8),  # SQLITE_IOERR_TRUNCATE
    10 | (19 << 8),  # SQLITE_IOERR_SHMSIZE
})


def sqlite_cause(exc: BaseException, schema_altered: Callable[[], bool], path: Path) -> Cause | None:
    """By SQLite's primary result code. The generic ``SQLITE_ERROR`` (SQL the database
    refuses) means the ledger's tables are missing or altered when ``schema_altered()`` says
    so (a look at the schema, not at the message); otherwise it is a bug, as is an error
    without a code (a misuse of the driver): neither is mapped, except the driver's failure
    to read back a cell (below). A write I/O error on the database file ``path`` is a full
    disk when the size limit or the file system explains it."""
    error = orig(exc)
    code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
    if not isinstance(code, int):
        # The driver's own OperationalError, without SQLite's code, is raised when a row
        # read holds bytes it cannot give back (a text cell that is not UTF-8): perfledger
        # writes only text there, so the file's content is damaged.
        return Cause.DAMAGED if type(error) is sqlite3.OperationalError else None
    if code & 0xFF == 1:
        return Cause.SCHEMA if schema_altered() else None
    if code in WRITE_IOERRS and out_of_space(path):
        return Cause.DISK_FULL
    return CAUSES.get(code & 0xFF, Cause.OTHER)
