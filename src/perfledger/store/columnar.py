"""Columnar reads: query results straight into Arrow, through a small pool of ADBC connections.

The row path (a DB-API cursor through SQLAlchemy) builds a Python object per value: a
ticker's 20,000-row history of a million records cost ~100-140 ms that way, against a few
ms through the ADBC drivers, which read the database's own format into Arrow buffers in C.
So large reads go through :class:`ArrowPool`; each engine's store gives it the hooks that
differ (how to connect, how to fetch, how to let a connection go), and answers through its
row path when the driver is missing or a columnar read fails (:class:`ColumnarReadFailed`):
the row path either answers or raises the driver error the store maps to a perfledger error.

Queries are written with ``:name`` parameters once; SQLAlchemy's compiler turns them into the
driver's positional form (``?`` for SQLite, ``$1`` for PostgreSQL) and gives their order: no
SQL text is ever rewritten by hand.

Connections are pooled per process (opening one costs more than a small query). A forked
child never closes one it inherited: closing would end the parent's PostgreSQL session, or
let SQLite checkpoint and delete the WAL under the parent. At fork the child forgets them,
and keeps them referenced forever so that no finaliser closes them either.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    import pyarrow as pa  # imported by the reads themselves: a write needs no Arrow

log = logging.getLogger("perfledger")
_POOLS: weakref.WeakSet[ArrowPool] = weakref.WeakSet()


def close_quietly(connections: list[Any]) -> None:
    """Close connections, ignoring a driver's complaint (the connection is gone either way)."""
    for con in connections:
        with contextlib.suppress(Exception):
            con.close()


class ColumnarReadFailed(Exception):
    """The columnar driver could not answer a read; its error is the ``__cause__``. The store
    answers through its row path instead."""


class ArrowPool(ABC):
    """A small pool of ADBC connections to one database, and reads through them."""

    def __init__(self, dialect: sa.Dialect, release: Callable[[list[Any]], None] = close_quietly,
                 size: int = 4, limit: int | None = None):
        """``release`` closes connections this process opened and no longer pools (it must
        not reference the pool: it also runs when the pool is collected). ``limit``: the
        most connections open at once (a server's connections are a shared budget); a read
        that needs one more waits for one to be given back."""
        self._dialect = dialect
        self._release = release
        self._size = size
        self._limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit else None
        self._pool: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._compile = functools.lru_cache(maxsize=256)(_positional_for(dialect))
        _POOLS.add(self)
        weakref.finalize(self, _close_owned, release, self._pool, self._pid)

    # ------------------------------------------------------------------ engine hooks

    @abstractmethod
    def _connect(self) -> Any:
        """A new ADBC connection (autocommit)."""

    def _fetch(self, con: Any, sql: str, args: tuple[Any, ...]) -> pa.Table:
        """The whole result of one query on ``con``."""
        cur = con.cursor()
        try:
            cur.execute(sql, args or None)
            return cur.fetch_arrow_table()
        finally:
            cur.close()

    # ------------------------------------------------------------------ reads

    def read(self, sql: str, params: dict[str, Any], types: dict[str, pa.DataType] | None = None) -> pa.Table:
        """Run ``sql`` (``:name`` parameters) and return the whole result as one table, the
        columns named in ``types`` cast to those types (an all-NULL column comes back from a
        driver as int64 or null). Raises :class:`ColumnarReadFailed` when the driver fails."""
        text, names = self._compile(sql)
        args = tuple(params[n] for n in names)
        table = self._read(text, args)
        # The driver's per-field metadata (e.g. PostgreSQL type names) is not part of the answer.
        if any(f.metadata for f in table.schema):
            import pyarrow as pa

            table = table.cast(pa.schema([f.remove_metadata() for f in table.schema]))
        return typed(table, types) if types else table

    def _read(self, sql: str, args: tuple[Any, ...]) -> pa.Table:
        slots = self._slots
        if slots is None:
            return self._read_on_a_connection(sql, args)
        with slots:
            return self._read_on_a_connection(sql, args)

    def _read_on_a_connection(self, sql: str, args: tuple[Any, ...]) -> pa.Table:
        try:
            con = self._take()
        except ImportError:
            raise
        except Exception as exc:  # could not connect: the row path will say why, or answer
            raise ColumnarReadFailed(type(exc).__name__) from exc
        try:
            table = self._fetch(con, sql, args)
        except Exception as exc:
            self._release([con])  # the session may be in any state: not reused
            raise ColumnarReadFailed(type(exc).__name__) from exc
        self._give(con)
        return table

    # ------------------------------------------------------------------ the pool

    def _take(self) -> Any:
        with self._lock:
            if self._pid != os.getpid():
                self._forget()
            if self._pool:
                return self._pool.pop()
        return self._connect()

    def _give(self, con: Any) -> None:
        with self._lock:
            if len(self._pool) < self._size and self._pid == os.getpid():
                self._pool.append(con)
                return
        self._release([con])

    def _forget(self) -> None:
        """In a forked child: the parent's connections, never closed nor freed here."""
        _keep_forever(self._pool)
        self._pool.clear()
        self._pid = os.getpid()

    def after_fork(self) -> None:
        """Forget the parent's connections without closing them (they are the parent's)."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()  # another thread may have held it at the fork
            if self._limit:
                self._slots = threading.BoundedSemaphore(self._limit)
            self._forget()

    def close(self) -> None:
        with self._lock:
            _close_owned(self._release, self._pool, self._pid)


def _positional_for(dialect: sa.Dialect) -> Callable[[str], tuple[str, tuple[str, ...]]]:
    def positional(sql: str) -> tuple[str, tuple[str, ...]]:
        """``sql`` with its ``:name`` parameters in the driver's positional form, and their
        names in the order the driver takes them."""
        compiled = sa.text(sql).compile(dialect=dialect)
        return compiled.string, tuple(compiled.positiontup or ())

    return positional


def typed(table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    """``table`` with each column named in ``types`` cast to its type."""
    for name, dtype in types.items():
        i = table.schema.get_field_index(name)
        if i >= 0 and table.schema.field(i).type != dtype:
            table = table.set_column(i, name, table.column(i).cast(dtype))
    return table


def _keep_forever(connections: list[Any]) -> None:
    """One reference more than anyone will ever drop: the object (and the database handle it
    wraps) is never deallocated, so no finaliser closes it under the parent process."""
    for con in connections:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(con))


def _close_owned(release: Callable[[list[Any]], None], connections: list[Any], owner_pid: int) -> None:
    """Close pooled connections, but only in the process that opened them."""
    if os.getpid() != owner_pid:
        _keep_forever(connections)
    else:
        release(list(connections))
    connections.clear()


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
