"""Whether a SQLite write failed for want of space, from the file system, never from a message.

SQLite's unix VFS reports ``SQLITE_FULL`` only when ``write()`` fails with ``ENOSPC``. The
process's file size limit (``RLIMIT_FSIZE``, ``ulimit -f``: ``EFBIG``) and a full quota
(``EDQUOT``) come back as a generic ``SQLITE_IOERR_WRITE`` (or ``_FSYNC``/``_TRUNCATE``),
as a failing disk does, and the driver does not give the ``errno``. So when one of those
codes arrives, the store looks at what would explain it: a database file (or its ``-wal``,
``-journal``) at the size limit, or a file system with no block left for this user. Both
are facts read with ``stat``/``statvfs``/``getrlimit``; anything else stays an I/O error.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

#: A file within this many bytes of the size limit cannot take one more page (SQLite's
#: largest page is 64 KiB).
_PAGE_MAX = 65_536
#: Free space below this is a full file system for a write of a few pages.
_FREE_MIN = 4 * _PAGE_MAX


def out_of_space(database: Path) -> bool:
    """True when a write to ``database`` (or its ``-wal``/``-journal``) that just failed
    with an I/O error is explained by the process's file size limit or a full file system."""
    return _at_size_limit(database) or _file_system_full(database.parent)


def _at_size_limit(database: Path) -> bool:
    soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft == resource.RLIM_INFINITY:
        return False
    for suffix in ("", "-wal", "-journal"):
        try:
            size = os.stat(database.with_name(database.name + suffix)).st_size
        except OSError:
            continue
        if size + _PAGE_MAX > soft:
            return True
    return False


def _file_system_full(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    free = st.f_bavail * st.f_frsize if os.geteuid() != 0 else st.f_bfree * st.f_frsize
    return free < _FREE_MIN
