"""Whether this process may write a ledger, decided from the file system when it opens.

A ledger directory shared by its owner (files 0644, directory 0755), a read-only mount, or
a backup copied without write permission can be read by everyone else but written by no
one else. Writing a SQLite ledger needs the directory (SQLite creates ``-wal``/``-shm``
there; mirrors are replaced by rename), the database and, when they exist, its ``-wal`` and
``-shm`` files and the mirror files. When any of them is not writable for this process's
*effective* user (``os.access`` with effective ids; ``EROFS`` counts too, even for root),
the ledger opens read-only: reads work, and every write raises
:class:`~perfledger.errors.ReadOnlyLedgerError` before touching anything.

PostgreSQL ledgers are not checked here: their permissions live in the server.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ...errors import ReadOnlyLedgerError
from ...location import existing_ancestor


def writable(path: Path) -> bool:
    """True when this process (its effective user and groups) may write ``path``."""
    if os.access in os.supports_effective_ids:
        return os.access(path, os.W_OK, effective_ids=True)
    return os.access(path, os.W_OK)


def write_blocker(database: Path, others: Iterable[Path] = ()) -> Path | None:
    """The first file (or the directory) that stops this process writing the SQLite ledger
    at ``database``, or None when it may write all of them. Files that do not exist yet
    only need the directory."""
    wal, shm = (database.with_name(database.name + suffix) for suffix in ("-wal", "-shm"))
    directory = existing_ancestor(database.parent)  # a ledger directory not created yet: its parent
    for path in (directory, database, wal, shm, *others):
        if (path == directory or path.exists()) and not writable(path):
            return path
    return None


def read_only_reason(where: str, database: Path, others: Iterable[Path] = ()) -> str | None:
    """For the SQLite ledger whose database file is ``database`` (described as ``where``;
    ``others``: files its writes also touch, the mirrors): None when this process may write
    it, else the one line its writes raise. A ledger this process may not write that has no
    database yet raises :class:`ReadOnlyLedgerError` (there is nothing to read, and nothing
    may be created)."""
    blocker = write_blocker(database, others)
    if blocker is None:
        return None
    if not database.exists():
        raise ReadOnlyLedgerError(
            f"{where} holds no perfledger database yet, and this user may not create one "
            f"({blocker} is not writable); a user who may write it creates it with the first write"
        )
    return (
        f"{where} is read-only for this user ({blocker} is not writable): it can be read, but "
        "logging, importing, registering metrics and clearing need a user who may write the "
        "ledger directory and its files. Nothing was changed."
    )
