"""The mirror files' part of one database write transaction, as one object.

Every writer (a ``log()``, a bulk load, an import, a copy into a directory ledger, a clear,
a registration, a rebuild) does the same with the files, in the same order, so it is
written once here::

    with store.writing() as tx, mirrors.transaction(tx) as m:
        m.insert(batch, prepared)        # the rows, then their bytes appended to the files

On entry the files are brought in step with the committed database, under the write lock
(:meth:`~.seed_files.SeedMirrors.sync`: repairs, adoption of records only a file holds,
records a ``mirrors=False`` ledger stored appended). Inside, the writer inserts and the
files follow. On leaving, either way, the files end as the database does:

* If the block raises, the appends are taken back at once (each file cut back to its size
  and mtime before the transaction's first append), while the write lock is still held:
  after its release another writer may append. The error is raised on.
* On a normal exit the best-models document is rewritten if it changed (once, however many
  batches the transaction inserted); then the store is asked to take the appends back if
  its ``COMMIT`` fails (:meth:`~perfledger.store.base.WriteTx.on_abort`), so a failed
  commit leaves the files exactly as a failed body does.

A ledger without mirror files (a database URL, ``Ledger(dir, mirrors=False)``) gets a
:class:`NullMirrorTransaction` with the same methods, so no writer asks which it has.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from ..store.base import Inserted, WriteTx
from .layout import PreparedAppend

if TYPE_CHECKING:
    from ..records.batch import Batch


class MirrorFiles(Protocol):
    """What a transaction needs of a directory's mirror files
    (:class:`~.seed_files.SeedMirrors`)."""

    def sync(self, tx: WriteTx, *, strict: bool = True) -> bool: ...

    def begin_append(self, prepared: PreparedAppend) -> None: ...

    def append(self, tx: WriteTx, prepared: PreparedAppend, inserted: Inserted) -> None: ...

    def abandon(self) -> None: ...

    def committed(self) -> None: ...

    def write_best(self, tx: WriteTx) -> None: ...

    def reset(self, tx: WriteTx) -> None: ...

    def rebuild(self, tx: WriteTx) -> None: ...


class MirrorTransaction:
    """The files' side of one write transaction (see the module doc). Use it as a context
    manager inside ``store.writing()``; one per transaction."""

    def __init__(self, files: MirrorFiles, tx: WriteTx, *, strict: bool = True):
        self._files, self._tx, self._strict = files, tx, strict
        self._best = False  # the best-models document to rewrite before the commit

    def __enter__(self) -> MirrorTransaction:
        try:
            self._files.sync(self._tx, strict=self._strict)
        except BaseException:
            self._files.abandon()  # records it appended for a mirrors=False ledger
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._files.abandon()
            return
        try:
            if self._best:
                self._files.write_best(self._tx)
        except BaseException:
            self._files.abandon()
            raise
        self._tx.on_abort(self._files.abandon)
        self._tx.on_commit(self._files.committed)

    def insert(self, batch: Batch, prepared: PreparedAppend | None = None) -> Inserted:
        """Insert ``batch`` and append its records to the files (formatted beforehand in
        ``prepared``, else now). A large batch is written to the files in the background
        while the database inserts it."""
        if prepared is None:
            prepared = PreparedAppend(batch)
        self._files.begin_append(prepared)
        inserted = self._tx.insert(batch)
        self._files.append(self._tx, prepared, Inserted(inserted.ids, best_changed=False))
        self._best |= inserted.best_changed
        return inserted

    def write_best(self) -> None:
        """The best-models document changed (a metric registered): rewrite it before the
        commit."""
        self._best = True

    def reset(self) -> None:
        """After the database was cleared: empty files."""
        self._files.reset(self._tx)
        self._best = False

    def rebuild(self) -> None:
        """Rewrite the three files from the database (a file that did not read as records
        too: the caller asked for exactly that)."""
        self._files.rebuild(self._tx)
        self._best = False


class NullMirrorTransaction:
    """:class:`MirrorTransaction`'s counterpart for a ledger without mirror files: the
    same methods, and only the database is written."""

    def __init__(self, tx: WriteTx):
        self._tx = tx

    def __enter__(self) -> NullMirrorTransaction:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def insert(self, batch: Batch, prepared: PreparedAppend | None = None) -> Inserted:
        return self._tx.insert(batch)

    def write_best(self) -> None:
        return None

    def reset(self) -> None:
        return None

    def rebuild(self) -> None:
        return None
