"""Columnar reads on SQLite through ADBC: query results straight into Arrow.

The row path builds a Python object per value; a ticker's 20,000-row history costs ~100 ms
that way and a few ms through ADBC. Connections are pooled per process (opening one costs
more than a small query) and never shared with a forked child.

Column types: the driver infers each column's type from the first batch it reads and
refuses a later batch that disagrees ("Type mismatch"). Results are read in batches of
:attr:`ColumnarReader.BATCH_ROWS` (the driver reserves memory for a whole batch up front: asking for one
batch of 2^30 rows reserved ~90 GiB of address space and made ``os.fork()`` fail). When a
column is NULL throughout the first batch and holds values later, the query is run again
with one batch exactly as large as its result (counted first), so the reservation is the
result's own size. Either way the caller's ``types`` are then applied, so a metric column
is float64 even when every value read is NULL.

On a file this process may only read, each read opens its own connection the way
:class:`~.readonly.ReadOnlyFile` decides (``mode=ro`` or ``immutable=1``), checked when the
read ends, and none is pooled.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from . import shared_locks
from .engine import CACHE_KIB

if TYPE_CHECKING:
    from .readonly import ReadOnlyFile

_PARAM = re.compile(r":(\w+)")


class ColumnarReader:
    """A small pool of ADBC SQLite connections to one database file."""

    #: Rows per batch: a history read is a few batches, and the driver's up-front
    #: reservation for one batch is a few MiB.
    BATCH_ROWS = 65_536

    def __init__(self, path: str, read_only: ReadOnlyFile | None = None, size: int = 4):
        self.path = path
        self._read_only = read_only
        self._size = size
        self._pool: list[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._key = shared_locks.key(path)
        # Close them when the reader goes away or at exit, while the driver can still do it.
        weakref.finalize(self, _close_all, self._key, self._pool, self._pid)

    def read(
        self, sql: str, params: dict[str, Any], types: dict[str, pa.DataType] | None = None
    ) -> pa.Table:
        """Run ``sql`` (``:name`` parameters) and return the whole result as one table, with
        the columns named in ``types`` cast to those types."""
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            names.append(match.group(1))
            return "?"

        qmark = _PARAM.sub(positional, sql)
        args = tuple(params[n] for n in names)
        if self._read_only is not None:
            table = self._read_only_read(qmark, args)
        else:
            con = self._take()
            try:
                table = self._fetch_all(con, qmark, args)
            finally:
                self._give(con)
        return self._typed(table, types) if types else table

    def _fetch_all(self, con: Any, sql: str, args: tuple[Any, ...]) -> pa.Table:
        try:
            return self._fetch(con, sql, args, self.BATCH_ROWS)
        except OSError as exc:
            if "Type mismatch" not in str(exc):
                raise
            # A column NULL throughout the first batch: one batch of the result's size.
            rows = self._fetch(con, f"SELECT COUNT(*) AS n FROM ({sql})", args, 1)
            return self._fetch(con, sql, args, max(int(rows.column(0)[0].as_py()), 1))

    def _read_only_read(self, sql: str, args: tuple[Any, ...]) -> pa.Table:
        """One read on its own read-only connection, checked for a change of an immutable file."""
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        assert self._read_only is not None
        uri, signature = self._read_only.uri()
        con = adbc_sqlite.connect(uri, autocommit=True)
        try:
            table = self._fetch_all(con, sql, args)
        except Exception:
            self._read_only.check(signature)
            raise
        finally:
            with contextlib.suppress(Exception):
                con.close()
        self._read_only.check(signature)
        return table

    @staticmethod
    def _fetch(con: Any, sql: str, args: tuple[Any, ...], batch_rows: int) -> pa.Table:
        cur = con.cursor()
        try:
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(batch_rows)})
            cur.execute(sql, args)
            return cur.fetch_arrow_table()
        finally:
            cur.close()

    @staticmethod
    def _typed(table: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
        """``table`` with each column named in ``types`` cast to its type (an all-NULL column
        comes back from the driver as int64 or null)."""
        for name, dtype in types.items():
            i = table.schema.get_field_index(name)
            if i >= 0 and table.schema.field(i).type != dtype:
                table = table.set_column(i, name, table.column(i).cast(dtype))
        return table

    def _take(self) -> Any:
        with self._lock:
            if self._pid != os.getpid():  # never reuse a parent's connections
                self._pool.clear()
                self._pid = os.getpid()
            if self._pool:
                return self._pool.pop()
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        con = adbc_sqlite.connect(self.path, autocommit=True)
        shared_locks.adbc_opened(self._key)
        cur = con.cursor()
        try:
            # The engine's page cache, not SQLite's 2 MiB default: a filtered history visits
            # scattered pages, and a repeated one should find them here.
            cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        finally:
            cur.close()
        return con

    def _give(self, con: Any) -> None:
        with self._lock:
            if len(self._pool) < self._size and self._pid == os.getpid():
                self._pool.append(con)
                return
        shared_locks.release(self._key, [con])

    def after_fork(self) -> None:
        """Forget the parent's connections without closing them (they are the parent's)."""
        with self._lock:
            self._pool.clear()
            self._pid = os.getpid()

    def close(self) -> None:
        with self._lock:
            _close_all(self._key, self._pool, self._pid)


def _close_all(key: str, connections: list[Any], owner_pid: int) -> None:
    """Close pooled connections, but only in the process that opened them (a forked child
    closing its parent's SQLite handles could checkpoint under the parent's feet), and never
    while this process's engine still has the file open (:mod:`.shared_locks`)."""
    if os.getpid() == owner_pid:
        shared_locks.release(key, list(connections))
    connections.clear()
