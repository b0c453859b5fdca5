"""SQLite's write transaction: the shared insert, spoken straight to ``sqlite3``.

Every statement runs on the driver's cursor (``sqlite3`` binds ``:name`` and ``?``
parameters itself): SQLAlchemy's per-statement bookkeeping would cost more than the
statements of a single ``log()`` do. A single record takes the id the database gives it
(``max(id) + 1``, as an allocation would): one statement less on the path of every log().
A bulk load at least as large as the table drops the records' b-tree indexes and builds each
afterwards with one sort. Records are linked to their params/tags labels in
``pl_record_labels``, which is what makes ``history(tags=...)`` an index lookup here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from .. import schema as T
from ..writes import SQLWriteTx, Statements

_IN_CHUNK = 500


class SQLiteWriteTx(SQLWriteTx):
    """A write transaction on the store's held write connection, inside ``BEGIN IMMEDIATE``."""

    CLEARED = (*SQLWriteTx.CLEARED, T.record_labels)
    DERIVED = (*SQLWriteTx.DERIVED, T.record_labels)

    def __init__(self, conn: sa.Connection, statements: Statements):
        super().__init__(conn, statements)
        self._cursor = conn.connection.dbapi_connection.cursor()

    def _execute(self, sql: str, rows: Sequence[Any] | Mapping[str, Any]) -> int:
        if isinstance(rows, list):
            self._cursor.executemany(sql, rows)
        else:
            self._cursor.execute(sql, rows)
        return self._cursor.rowcount

    def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        return self._cursor.execute(sql, params).fetchall()

    def _allocate_ids(self, n: int) -> list[int]:
        if n == 1:
            return [None]  # type: ignore[list-item]  # the database's, read back on insert
        # The write lock is ours (BEGIN IMMEDIATE): max(id) is ours to extend.
        start = self.last_id()
        return list(range(start + 1, start + 1 + n))

    def _insert_records(self, rows: list[tuple[Any, ...]], *, rebuild: bool) -> list[int] | None:
        sql = self._st.insert_records
        if len(rows) == 1:
            self._cursor.execute(sql, rows[0])
            return [self._cursor.lastrowid]  # type: ignore[list-item]
        with self._indexes_rebuilt(T.RECORD_INDEXES, rebuild):
            self._cursor.executemany(sql, rows)
        return None

    def _link_labels(self, ids: Sequence[int], per_record: list[tuple[Any, ...]],
                     hashes: dict[Any, str], *, rebuild: bool) -> None:
        id_of: dict[str, int] = {}
        keys = sorted(set(hashes.values()))
        for i in range(0, len(keys), _IN_CHUNK):
            part = keys[i: i + _IN_CHUNK]
            marks = ", ".join("?" * len(part))
            id_of.update(self._cursor.execute(
                f"SELECT h, id FROM pl_labels WHERE h IN ({marks})", part).fetchall())
        link_rows: list[tuple[int, int]] = []
        label_ids: dict[int, list[int]] = {}  # records sharing a labels tuple share its ids
        for rid, labels in zip(ids, per_record, strict=True):
            if labels:
                lids = label_ids.get(id(labels))
                if lids is None:
                    lids = label_ids[id(labels)] = [id_of[hashes[lb]] for lb in labels]
                link_rows += [(rid, lid) for lid in lids]
        with self._indexes_rebuilt(T.RECORD_LABEL_INDEXES, rebuild):
            self._cursor.executemany(self._st.insert_links, link_rows)

    @contextmanager
    def _indexes_rebuilt(self, indexes: Sequence[sa.Index], rebuild: bool) -> Iterator[None]:
        """With ``rebuild``, drop ``indexes`` for the block and build each again after it
        (one sort each). A failure rolls the drop back with the rest of the transaction."""
        for index in indexes if rebuild else ():
            self._cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
        yield
        for index in indexes if rebuild else ():
            index.create(self.conn)
