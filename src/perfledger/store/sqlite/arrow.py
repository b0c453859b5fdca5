"""SQLite's columnar reads: the ADBC SQLite driver behind :class:`~..columnar.ArrowPool`.

Column types: the driver infers each column's type from the first batch it reads and fails
when a later batch disagrees (a metric NULL throughout the first batch, values later).
Results are read in batches of :data:`BATCH_ROWS` (the driver reserves memory for a whole
batch up front: one batch of 2^30 rows reserved ~90 GiB of address space and made
``os.fork()`` fail). A read that fails is run once more as ONE batch exactly as large as its
result (counted first), so every value takes part in the inference and the reservation is
the result's own size; if that fails too, the store's row path answers (or raises the
driver's error, which the store maps). No error text is looked at.

On a file this process may only read, each read opens its own connection the way
:class:`~.readonly.ReadOnlyFile` decides (``mode=ro`` or ``immutable=1``), checked when the
read ends, and none is pooled. Closing a pooled connection goes through :mod:`.locks`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import sqlite

from ..columnar import ArrowPool, close_quietly
from . import locks
from .engine import CACHE_KIB

if TYPE_CHECKING:
    import pyarrow as pa

    from .readonly import ReadOnlyFile

#: Rows per batch: a history read is a few batches, and the driver's up-front reservation
#: for one batch is a few MiB.
BATCH_ROWS = 65_536
_OPTION = "adbc.sqlite.query.batch_rows"


class SQLiteArrow(ArrowPool):
    """ADBC SQLite connections to one database file."""

    def __init__(self, path: str, read_only: ReadOnlyFile | None = None):
        self.path = path
        self._read_only = read_only
        self._key = locks.key(path)
        release = close_quietly if read_only is not None else functools.partial(locks.release, self._key)
        super().__init__(sqlite.dialect(paramstyle="qmark"), release)

    def _connect(self) -> Any:
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        con = adbc_sqlite.connect(self.path, autocommit=True)
        locks.adbc_opened(self._key)
        cur = con.cursor()
        try:
            # The engine's page cache, not SQLite's 2 MiB default: a filtered history visits
            # scattered pages, and a repeated one should find them here.
            cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        finally:
            cur.close()
        return con

    def _fetch(self, con: Any, sql: str, args: tuple[Any, ...]) -> pa.Table:
        try:
            return _batches(con, sql, args, BATCH_ROWS)
        except Exception:
            # A column whose first batch held no value to infer its type from: once more, as
            # one batch of the result's size.
            rows = _batches(con, f"SELECT COUNT(*) AS n FROM ({sql})", args, 1)
            return _batches(con, sql, args, max(int(rows.column(0)[0].as_py()), 1))

    def _read(self, sql: str, args: tuple[Any, ...]) -> pa.Table:
        if self._read_only is None:
            return super()._read(sql, args)
        return self._read_only_read(sql, args)

    def _read_only_read(self, sql: str, args: tuple[Any, ...]) -> pa.Table:
        """One read on its own read-only connection, checked for a change of an immutable file."""
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        from ..columnar import ColumnarReadFailed

        assert self._read_only is not None
        uri, signature = self._read_only.uri()
        con = adbc_sqlite.connect(uri, autocommit=True)
        try:
            table = self._fetch(con, sql, args)
        except Exception as exc:
            self._read_only.check(signature)
            raise ColumnarReadFailed(type(exc).__name__) from exc
        finally:
            close_quietly([con])
        self._read_only.check(signature)
        return table


def _batches(con: Any, sql: str, args: tuple[Any, ...], batch_rows: int) -> pa.Table:
    cur = con.cursor()
    try:
        cur.adbc_statement.set_options(**{_OPTION: str(batch_rows)})
        cur.execute(sql, args)
        return cur.fetch_arrow_table()
    finally:
        cur.close()
