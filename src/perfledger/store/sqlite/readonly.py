"""Reading a SQLite ledger this process may not write (see :mod:`.access`).

A WAL database normally cannot even be read without write access: every connection maps
the ``-shm`` index, and creates it (and ``-wal``) when missing. Which SQLite open mode works
depends on what is in the directory, so it is decided for every connection, right before it
opens (read-only stores keep no connection pool):

* ``-wal`` present (a writer has the ledger open, or was killed): ``mode=ro``. SQLite reads
  the log through a read-only ``-shm`` and takes its usual locks, so a reader sees every
  committed transaction and never a torn one, while the owner keeps writing.
* no ``-wal`` (every writer closed cleanly, the log was checkpointed into the database):
  ``mode=ro`` fails ("attempt to write a readonly database": it would create ``-shm``), so
  the file is opened ``immutable=1``: no locks, no ``-shm``, nothing created. The trade-off:
  SQLite then assumes nobody changes the file. A writer that starts meanwhile writes its log
  first and only changes the database file when it checkpoints, which a read could overlap.
  So the file's identity, size, mtime and ctime are taken before the connection opens and
  compared when its transaction ends: if they changed, the read raises
  :class:`ChangedDuringRead` and the store runs it again (by then ``-wal`` exists, or the
  file is stable again). A connection is used for one transaction only, so no read sees a
  stale file either.

The columnar reader (:mod:`.arrow`) opens its connections through :meth:`ReadOnlyFile.uri`
the same way.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import quote

from ..base import ReadAgain

Signature = tuple[int, int, int, int, int]


class ChangedDuringRead(ReadAgain):
    """An ``immutable=1`` read overlapped a change of the database file (a writer's
    checkpoint); the store runs the read again."""


class _Connection(sqlite3.Connection):
    """A connection that remembers the file it opened immutable (None for ``mode=ro``)."""

    pl_signature: Signature | None = None


class ReadOnlyFile:
    """One SQLite database file opened for reading only."""

    def __init__(self, path: str, timeout_s: float):
        self.path = path
        self.timeout_s = timeout_s

    def signature(self) -> Signature:
        st = os.stat(self.path)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def uri(self) -> tuple[str, Signature | None]:
        """The URI to open now, and the file's signature when that is ``immutable=1``."""
        base = "file:" + quote(self.path)
        if os.path.exists(self.path + "-wal"):
            return base + "?mode=ro", None
        signature = self.signature()
        return base + "?immutable=1", signature

    def connect(self) -> sqlite3.Connection:
        """A new read-only DB-API connection (the engine's ``creator``)."""
        uri, signature = self.uri()
        con = sqlite3.connect(
            uri, uri=True, timeout=self.timeout_s, check_same_thread=False, factory=_Connection
        )
        con.pl_signature = signature
        return con

    def check(self, signature: Signature | None) -> None:
        """Raise :class:`ChangedDuringRead` when a read opened as ``signature`` may have
        seen the file change under it."""
        if signature is None:
            return
        try:
            now: Signature | None = self.signature()
        except FileNotFoundError:
            now = None
        if now != signature:
            raise ChangedDuringRead(
                f"{self.path} changed while it was being read (its owner is writing it); try again"
            )

    def check_connection(self, dbapi_connection: Any) -> None:
        self.check(getattr(dbapi_connection, "pl_signature", None))
