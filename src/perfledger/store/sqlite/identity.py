"""Which database file a store is, for both SQLite paths (no SQLAlchemy: the short path
imports this).

Two ledgers are the same store when they are the same file (device and inode), whatever
path or symlink named it: a sync or copy onto itself is refused by this. A file not created
yet (a ledger only read so far) is named by its resolved path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def file_identity(path: Path) -> tuple[Any, ...]:
    """``("sqlite", device, inode)`` of the file at ``path``, or ``("sqlite", resolved
    path)`` while it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ("sqlite", str(path.resolve()))
    return ("sqlite", st.st_dev, st.st_ino)
