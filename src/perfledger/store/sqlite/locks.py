"""Keeping this process's SQLite file locks while two SQLite libraries share it.

POSIX advisory locks belong to a process, not to a connection or a descriptor: closing *any*
descriptor of a database file drops every lock the process holds on it. SQLite knows this
and, within one copy of the library, keeps a file's descriptors open until none of its
connections holds a lock. But a perfledger process runs two copies: Python's ``sqlite3``
(the engine's connections) and the one bundled in the ADBC driver (the columnar reads). When
the ADBC copy closed its last connection to a ledger, the engine's connections silently lost
their locks, and the next process to close its own connections took itself for the last
user of the database: it checkpointed and deleted the WAL and the shared-memory file under
the live connections (``disk I/O error``, "file is not a database").

So the *last* ADBC connection to a file is never closed while this process has an engine
connection open on it: it is parked here instead, and closed when the engine's last
connection to that file closes (then nothing is left to protect). Any other ADBC connection
closes at once: while one of its kind stays open (an open WAL connection holds a lock), the
ADBC copy of SQLite keeps the closed one's descriptor for reuse instead of closing it. So
at most one connection per file is ever parked, however many ledgers a process opens and
closes. Counts are per process; a forked child starts with none (its inherited connections
are the parent's, never closed by it).

The engine's count must follow SQLite's own handles exactly, or one library deletes the
write-ahead log and the shared-memory index under the other: whichever copy of SQLite
closes its last handle while the other's is open takes itself for the last user,
checkpoints, and unlinks ``-wal`` and ``-shm``. The other copy keeps its mapping of the
unlinked index, and every connection it opens to that file afterwards (in a new ``Ledger``
too) shares that mapping, so its reads stay on an old snapshot: empty, or without the
records committed since. Two ways a connection's handle and its count parted, both now
closed off by :class:`EngineConnection`:

* a connection never closed (its ``Ledger`` not closed, or kept alive by a failed write's
  traceback) and then garbage-collected closes without any pool event: counted open
  forever, so the parked ADBC connection outlived the engine's last handle. Now a
  finaliser on the connection object counts it closed (once, whichever comes first);
* ``close()`` on a connection a cursor still references (a write transaction held by a
  kept exception) leaves SQLite's handle open (``sqlite3_close_v2`` waits for the cursor's
  statement): counted closed while its handle lived on, so the ADBC copy closed "last"
  under it. Now every cursor the connection made is closed first, so ``close()`` closes.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import weakref
from collections import defaultdict
from typing import Any

_lock = threading.Lock()
_engine_connections: defaultdict[str, int] = defaultdict(int)
_adbc_connections: defaultdict[str, int] = defaultdict(int)  # open ones, parked included
_parked: defaultdict[str, list[Any]] = defaultdict(list)


def key(path: str | os.PathLike[str]) -> str:
    """One name per database file, however it was spelled."""
    return os.path.realpath(path)


class EngineConnection(sqlite3.Connection):
    """The engine's ``sqlite3`` connection (its ``factory``): it knows the cursors it made,
    so that closing it closes SQLite's handle, and it is counted closed exactly once, when
    it is closed or when it is collected unclosed (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pl_cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()
        self._pl_counted: weakref.finalize | None = None

    def cursor(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        cur = super().cursor(*args, **kwargs)
        self._pl_cursors.add(cur)
        return cur

    # The shortcuts make their cursor in C, past ``cursor()``: routed through it.
    def execute(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executemany(*args)

    def executescript(self, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        return self.cursor().executescript(*args)


def engine_opened(path: str, connection: EngineConnection) -> None:
    """An engine (``sqlite3``) connection to ``path`` was opened; it is counted closed by
    :func:`engine_closing` or, if it is collected unclosed, when it is collected."""
    with _lock:
        _engine_connections[path] += 1
    finalizer = weakref.finalize(connection, _counted_closed, path, os.getpid())
    finalizer.atexit = False  # at exit, _at_exit closes what is parked
    connection._pl_counted = finalizer


def engine_closing(connection: EngineConnection) -> None:
    """The pool is about to close ``connection``: its cursors are closed first (a cursor
    still holding a statement would keep SQLite's handle open past ``close()``), and it is
    counted closed (which closes the parked ADBC connection when it was the last)."""
    for cur in list(connection._pl_cursors):
        with contextlib.suppress(Exception):
            cur.close()
    if connection._pl_counted is not None:
        connection._pl_counted()


def _counted_closed(path: str, pid: int) -> None:
    if os.getpid() == pid:  # a forked child never counted its parent's connections
        engine_closed(path)


def adbc_opened(path: str) -> None:
    """An ADBC connection to ``path`` was opened."""
    with _lock:
        _adbc_connections[path] += 1


def engine_closed(path: str) -> None:
    """An engine connection to ``path`` was closed: when it was the last, close the ADBC
    connections parked for that file (nothing is left whose locks they could drop)."""
    with _lock:
        _engine_connections[path] = max(0, _engine_connections[path] - 1)
        if _engine_connections[path]:
            return
        parked = _parked.pop(path, [])
        _adbc_connections[path] -= len(parked)
    _close(parked)


def release(path: str, connections: list[Any]) -> None:
    """Close these ADBC connections to ``path``, but park the last one while an engine
    connection to the file is open (closing it would drop that connection's locks)."""
    closing = []
    with _lock:
        for con in connections:
            if _engine_connections[path] and _adbc_connections[path] == 1 and not _exiting:
                _parked[path].append(con)
            else:
                _adbc_connections[path] -= 1
                closing.append(con)
    _close(closing)


def _close(connections: list[Any]) -> None:
    for con in connections:
        with contextlib.suppress(Exception):
            con.close()


_exiting = False


def _at_exit() -> None:
    # The process is ending (its locks with it): close what is parked while the driver can
    # still do it, and from now on close instead of parking.
    global _exiting
    _exiting = True
    with _lock:
        parked = [con for cons in _parked.values() for con in cons]
        _parked.clear()
        _adbc_connections.clear()
    _close(parked)


atexit.register(_at_exit)

#: A forked child's parked connections: its parent's, kept referenced and never closed.
_inherited: list[Any] = []


def _forget() -> None:
    # A forked child holds none of its parent's locks and must not close its connections.
    global _lock, _engine_connections, _adbc_connections, _parked
    _inherited.extend(con for cons in _parked.values() for con in cons)
    _lock = threading.Lock()
    _engine_connections = defaultdict(int)
    _adbc_connections = defaultdict(int)
    _parked = defaultdict(list)


os.register_at_fork(after_in_child=_forget)
