"""The SQLite database file itself: created with the mode ``open()`` gives, another
application's refused before anything touches it, and copied before an upgrade.

These run on the file, before (or beside) the engine: each opens at most a plain
``sqlite3`` connection that writes nothing to the ledger.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ...errors import NotALedgerError
from .. import schema as T


def create_file(path: Path) -> None:
    """Create ``path`` (empty: SQLite reads that as a new database) with the mode ``open()``
    gives, unless it exists; SQLite reports any problem when it opens it.

    ``O_EXCL``: an existing database is never opened here. POSIX locks belong to the process,
    so closing *any* descriptor of the file drops every lock this process's connections hold
    on it; a second ``Ledger`` on an open ledger did exactly that, and a forked child that then
    closed its connections took itself for the last user and deleted the WAL under the parent.
    """
    if path.exists():
        return
    with contextlib.suppress(OSError), _openers_queued(path.parent):
        if path.exists():  # another opener created it meanwhile
            return
        # A database deleted while a process held it open leaves its -wal and -shm behind
        # (that process still uses them). Beside a new file they would be read as its own:
        # the holder's wal-index made every other process fail with "disk I/O error", and
        # once the holder was gone the old write-ahead log would be replayed into the new
        # database. They belong to no file any more: removed, under the openers' lock, before
        # the new file exists. (The holder keeps its open descriptors; SQLite never
        # checkpoints or deletes by name a WAL whose database was unlinked, and the Ledger
        # reopens at its next call.)
        for suffix in ("-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextlib.contextmanager
def _openers_queued(directory: Path) -> Iterator[None]:
    """Processes creating a database in ``directory`` one at a time: an exclusive
    ``flock`` on the directory itself (no file of its own; a BSD lock, which closing other
    descriptors never drops, unlike SQLite's POSIX locks)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)



def refuse_foreign(path: Path, where: str) -> None:
    """Refuse a SQLite file that holds tables but none of perfledger's (someone else's
    database): opening it would create the ledger's tables in it, and even the WAL pragma
    rewrites its header. Read through a plain connection that writes nothing, before any
    engine (``immutable=1`` when there is no ``-wal`` file, which a read-only connection could
    create; else ``mode=ro``, as :mod:`.readonly` does); an empty, new or unreadable file is
    left to the normal open."""
    try:
        if path.stat().st_size == 0:
            return
        wal = path.with_name(path.name + "-wal").exists()
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}", uri=True)
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return
    names = [n for n in names if not n.startswith("sqlite_")]
    if names and not any(n in T.metadata.tables or n.startswith("pl_") for n in names):
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise NotALedgerError(
            f"store {where} is not a perfledger ledger: it holds other tables ({shown}) and none of "
            "perfledger's; give a ledger, a new file or an empty database (nothing was written)"
        )


def backup_copy(path: Path, version: int) -> Path:
    """A consistent copy of a SQLite ledger (the backup API reads one snapshot, WAL
    included), named after the schema version it holds; an existing backup is kept."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    if target.exists():
        return target
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    # The copy gets the mode open() gives (SQLite alone would create it 0644 less the umask).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
    src = sqlite3.connect(path, timeout=120)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    tmp.replace(target)
    return target
