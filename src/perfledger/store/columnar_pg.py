"""Columnar reads on PostgreSQL through ADBC: query results straight into Arrow.

The row path (psycopg through SQLAlchemy) builds a Python object per value: a ticker's
20,000-row history of a million records cost ~120-140 ms that way, against ~20 ms for the
same rows fetched by the ADBC PostgreSQL driver, which reads PostgreSQL's binary format
into Arrow buffers in C++. The driver is optional (the ``postgres`` extra installs it);
without it the store reads through SQLAlchemy, with identical results.

Connecting: the driver gets exactly the libpq parameters psycopg gets for the store's URL
(SQLAlchemy's dialect translates the URL, psycopg's ``make_conninfo`` quotes them as a
``key=value`` string), so passwords, ``?options=``, ``sslmode``, unix-socket hosts
(``?host=/var/run/postgresql``) and ``PGPASSWORD``/``~/.pgpass`` behave as for the engine.
The conninfo holds the password: it is never put into a message.

Connections are pooled per process (opening one costs a round trip for authentication and
one for the driver's type catalogue). A forked child must never close one it inherited:
closing sends PostgreSQL's Terminate message down the socket the parent still uses, and the
parent's session would end. So a child forgets them at fork time and keeps them referenced
forever (even at interpreter exit, when the driver would otherwise close them).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .columnar import ColumnarReader

if TYPE_CHECKING:
    import sqlalchemy as sa

#: ``:name`` parameters, not the ``::`` of a PostgreSQL cast.
_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_READERS: weakref.WeakSet[PgColumnarReader] = weakref.WeakSet()


def available() -> bool:
    """True when the ADBC PostgreSQL driver is installed. Only looked up, not imported: its
    import loads ``pyarrow.dataset`` (~0.3 s), paid by the first columnar read instead."""
    import importlib.util

    try:
        return importlib.util.find_spec("adbc_driver_postgresql") is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def conninfo(engine: sa.Engine) -> str:
    """The libpq ``key=value`` string psycopg connects ``engine`` with (password included:
    for the driver only, never for a message)."""
    from psycopg.conninfo import make_conninfo

    _, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs.pop("context", None)  # psycopg's adapters, not a connection parameter
    return str(make_conninfo("", **{k: v for k, v in kwargs.items() if v is not None}))


class PgColumnarReader:
    """A small pool of ADBC PostgreSQL connections to one database."""

    def __init__(self, engine: sa.Engine, size: int = 4):
        self._conninfo = conninfo(engine)
        self._size = size
        self._pool: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        _READERS.add(self)
        weakref.finalize(self, _close_all, self._pool, self._pid)

    def read(
        self, sql: str, params: dict[str, Any], types: dict[str, pa.DataType] | None = None
    ) -> pa.Table:
        """Run ``sql`` (``:name`` parameters) and return the whole result as one table, with
        the columns named in ``types`` cast to those types."""
        order: list[str] = []

        def positional(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        numbered = _PARAM.sub(positional, sql)
        args = tuple(params[n] for n in order) or None
        con = self._take()
        ok = False
        try:
            cur = con.cursor()
            try:
                cur.execute(numbered, args)
                table = cur.fetch_arrow_table()
            finally:
                cur.close()
            ok = True
        finally:
            if ok:
                self._give(con)
            else:  # the session may be in any state: not reused
                with contextlib.suppress(Exception):
                    con.close()
        # The driver's per-field metadata (PostgreSQL type names) is not part of the answer.
        table = table.cast(pa.schema([f.remove_metadata() for f in table.schema]))
        return ColumnarReader._typed(table, types) if types else table

    def _take(self) -> Any:
        with self._lock:
            if self._pid != os.getpid():  # never use a parent's connections
                self._forget()
            if self._pool:
                return self._pool.pop()
        import adbc_driver_postgresql.dbapi as adbc_pg

        return adbc_pg.connect(self._conninfo, autocommit=True)

    def _give(self, con: Any) -> None:
        with self._lock:
            if len(self._pool) < self._size and self._pid == os.getpid():
                self._pool.append(con)
                return
        with contextlib.suppress(Exception):
            con.close()

    def _forget(self) -> None:
        """In a forked child: the parent's connections are never closed nor freed here."""
        _keep_forever(self._pool)
        self._pool.clear()
        self._pid = os.getpid()

    def after_fork(self) -> None:
        """Forget the parent's connections without closing them (they are the parent's)."""
        if self._pid != os.getpid():
            self._lock = threading.Lock()  # another thread may have held it at the fork
            self._forget()

    def close(self) -> None:
        with self._lock:
            _close_all(self._pool, self._pid)


def _keep_forever(connections: list[Any]) -> None:
    """One reference more than anyone will ever drop: the object (and the libpq connection
    it wraps) is never deallocated, so its finaliser never says Terminate to the server."""
    for con in connections:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(con))


def _close_all(connections: list[Any], owner_pid: int) -> None:
    """Close pooled connections, but only in the process that opened them."""
    if os.getpid() != owner_pid:
        _keep_forever(connections)
        connections.clear()
        return
    for con in connections:
        with contextlib.suppress(Exception):
            con.close()
    connections.clear()


def _after_fork_in_child() -> None:
    for reader in list(_READERS):
        reader.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
