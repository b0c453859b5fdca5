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
  and mtime before the transaction's first append) and a file it replaced (emptied by a
  clear, the best-models document rewritten) is put back, while the write lock is still
  held: after its release another writer may append. The error is raised on; an ``OSError``
  on the files as perfledger's error (:mod:`.failures`).
* On a normal exit the best-models document is rewritten if it changed and the files'
  new state is saved in the transaction; then the store is asked to take the appends back
  if its ``COMMIT`` fails (:meth:`~perfledger.store.base.WriteTx.on_abort`), so a failed
  commit leaves the files exactly as a failed body does.
* A process killed anywhere in between leaves the journal written before the first
  append; the next writer takes the appends back from it (:mod:`.undo`).

A ledger without mirror files (a database URL, ``Ledger(dir, mirrors=False)``) gets a
:class:`NullMirrorTransaction` with the same methods, so no writer asks which it has.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..store.base import Inserted, WriteTx
from .failures import FileErrors
from .file_writes import HeldFiles, Parts, parts_crc, write_at
from .layout import PreparedAppend
from .rebuild import (
    EMPTY_JSON,
    JSON_TAIL,
    BestLines,
    write_best,
    write_best_lines,
    write_csv,
    write_empty,
    write_json,
)
from .state import FileState, MirrorState
from .undo import APPENDED, Journal, undo_append

if TYPE_CHECKING:
    from ..records.batch import Batch

log = logging.getLogger("perfledger")

#: The CRC-32 of ``[\n``: the content of a JSON array's first append starts with it.
_OPENED = zlib.crc32(b"[\n")
#: What the append functions return: the JSON's stat after the append and its size before,
#: the CSV's stat after.
_Written = tuple[tuple[os.stat_result, int], os.stat_result]


class Synced(NamedTuple):
    """The files as a transaction finds them once :meth:`MirrorFiles.sync` ran."""

    #: Their state: the committed one, or as repaired in this transaction.
    state: MirrorState
    #: The committed state's text as stored (None in a new database): the journal's base.
    committed: str | None
    #: Each file's ``stat`` now (None when missing): what an append is taken back to.
    stats: Mapping[str, os.stat_result | None]
    #: The database's highest record id.
    last_id: int


class MirrorFiles(Protocol):
    """What a transaction needs of a directory's mirror files
    (:class:`~.seed_files.SeedMirrors`)."""

    paths: Mapping[str, Path]
    journal: Journal
    #: The record files, kept open between transactions (:class:`.file_writes.HeldFiles`).
    held: HeldFiles
    #: ``OSError`` on the files as perfledger's error (:mod:`.failures`).
    errors: FileErrors
    conflicts: dict[str, str]
    #: The best-models document this process committed last, by ticker (or None).
    best_lines: BestLines | None

    def sync(self, tx: WriteTx, *, strict: bool) -> Synced: ...

    def save(self, tx: WriteTx, state: MirrorState) -> None: ...


class MirrorTransaction:
    """The files' side of one write transaction (see the module doc). Use it as a context
    manager inside ``store.writing()``; one per transaction."""

    def __init__(self, files: MirrorFiles, tx: WriteTx, *, strict: bool = True):
        self._files, self._tx, self._strict = files, tx, strict
        self._synced: Synced | None = None
        #: The files' state as this transaction leaves them so far.
        self._state = MirrorState()
        #: The files appended to (by key): taken back if the transaction fails.
        self._appended: set[str] = set()
        #: Where this transaction's appends end in each file (what a take-back removes).
        self._ends: dict[str, int] = {}
        #: A bulk append being written in the background, which a take-back must wait for.
        self._pending: PreparedAppend | None = None
        self._best = False   # the best-models document to rewrite before the commit
        #: The tickers whose best entries changed (None: any may have; every one is read).
        self._best_tickers: set[str] | None = set()
        #: The document this transaction wrote, known to the files once it commits.
        self._written_best: BestLines | None = None
        #: Committed files this transaction replaced (a rewrite, an emptying), kept under
        #: another name (by key) while the transaction may still be taken back.
        self._kept: dict[str, Path] = {}
        self._dirty = False  # a state to save before the commit

    # ------------------------------------------------------------------ the block

    def __enter__(self) -> MirrorTransaction:
        with self._mapped():
            synced = self._synced = self._files.sync(self._tx, strict=self._strict)
        self._state = synced.state
        if synced.last_id > synced.state.upto and not self._files.conflicts:
            try:
                with self._mapped():
                    self._catch_up(synced.state.upto)
            except BaseException:
                self._take_back()
                raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self._take_back()
            return
        try:
            with self._mapped():
                self._flush()
        except BaseException:
            self._take_back()
            raise
        self._tx.on_abort(self._take_back)
        self._tx.on_commit(self._finish)

    # ------------------------------------------------------------------ what writers do

    def insert(self, batch: Batch, prepared: PreparedAppend | None = None) -> Inserted:
        """Insert ``batch`` and append its records to the files (formatted beforehand in
        ``prepared``, else now). A large batch is written to the files in the background
        while the database inserts it."""
        if prepared is None:
            prepared = PreparedAppend(batch)
        with self._mapped():
            self._start(prepared)
        inserted = self._tx.insert(batch)
        with self._mapped():
            self._append(prepared, inserted.ids, inserted.best_changed)
        return inserted

    def write_best(self) -> None:
        """The best-models document changed (a metric registered): rewrite it before the
        commit."""
        self._best, self._best_tickers = True, None

    def reset(self) -> None:
        """After the database was cleared: empty files."""
        paths = self._files.paths
        self._files.held.close()  # replaced: the next append opens the new files
        with self._mapped():
            self._keep("json", "csv")
            json_crc, csv_crc = write_empty(paths["json"], paths["csv"])
        self._appended.clear()  # replaced: nothing of theirs to take back
        self._state = MirrorState({"json": FileState.of(os.stat(paths["json"]), json_crc),
                                   "csv": FileState.of(os.stat(paths["csv"]), csv_crc),
                                   "best": self._state.files["best"]}, self._tx.last_id())
        self._best = self._dirty = True
        self._best_tickers = None

    def rebuild(self) -> None:
        """Rewrite the three files from the database (a file that did not read as records
        too: the caller asked for exactly that)."""
        self._files.conflicts.clear()
        paths = self._files.paths
        self._files.held.close()  # replaced: the next append opens the new files
        with self._mapped():
            self._keep("json", "csv", "best")
            crcs = {"json": write_json(paths["json"], self._tx), "csv": write_csv(paths["csv"], self._tx),
                    "best": write_best(paths["best"], self._tx)}
        self._appended.clear()
        self._state = MirrorState({k: FileState.of(os.stat(p), crcs[k]) for k, p in paths.items()},
                                  self._tx.last_id())
        self._best, self._dirty = False, True

    def _mapped(self) -> AbstractContextManager[None]:
        """An ``OSError`` on the files as perfledger's error (:mod:`.failures`)."""
        return self._files.errors

    # ------------------------------------------------------------------ appends

    def _catch_up(self, upto: int) -> None:
        """Append the records the database holds beyond ``upto`` (the last one the files
        hold): records a ``Ledger(dir, mirrors=False)`` stored reach the files at the next
        write of a ledger that keeps them."""
        n = 0
        for ids, batch in self._tx.iter_batches(after=upto):
            prepared = PreparedAppend(batch)
            self._start(prepared)
            self._append(prepared, ids, best_changed=True)
            n += len(batch)
        log.info("mirrored %d records stored without the mirrors into %s",
                 n, self._files.paths["json"].parent)

    def _start(self, prepared: PreparedAppend) -> None:
        """A large batch: journal, then write it to the files in the formatting thread
        while the caller inserts it (the 400 MB of a million records are written during
        the insert instead of after it)."""
        if prepared.background:
            self._pending = prepared
            prepared.then(self._write)

    def _append(self, prepared: PreparedAppend, ids: list[int], best_changed: bool) -> None:
        """Complete an append (write it now unless :meth:`_start` did) and derive the files'
        new state from the bytes written: their CRCs extended, their identities from the
        ``fstat`` after the write. Nothing is read back."""
        json_body, csv_rows = prepared.wait()
        written: _Written | None = prepared.followed()
        if written is None:
            written = self._write(json_body, csv_rows)
        (json_st, json_before), csv_st = written
        was = self._state.files
        was_json, was_csv = was["json"], was["csv"]
        if json_before <= len(EMPTY_JSON):
            json_crc: int | None = parts_crc(json_body, _OPENED)
        elif was_json is not None and was_json.crc is not None:
            json_crc = parts_crc(json_body, zlib.crc32(b",\n", was_json.crc))
        else:
            json_crc = None
        csv_crc = None if was_csv is None or was_csv.crc is None else parts_crc(csv_rows, was_csv.crc)
        files = {"json": FileState.of(json_st, json_crc), "csv": FileState.of(csv_st, csv_crc),
                 "best": was["best"]}
        self._state = MirrorState(files, max(ids) if ids else self._state.upto)
        if best_changed:
            self._best = True
            if self._best_tickers is not None:
                self._best_tickers.update(prepared.batch.ticker)
        self._dirty = True

    def _journal(self, ends: Mapping[str, int]) -> None:
        """Before each append: the files as committed, and where this transaction's appends
        will end once this one is written, for the next writer should this process die
        before the commit (:mod:`.undo`): it takes back exactly those bytes."""
        assert self._synced is not None
        stats = self._synced.stats
        self._files.journal.write(self._synced.committed, {k: stats[k] for k in APPENDED},  # type: ignore[misc]
                                  ends)
        self._ends = dict(ends)

    def _write(self, json_body: Parts, csv_rows: Parts) -> _Written:
        """Journal, then append the bytes to both files (in the calling or the formatting
        thread)."""
        json_path, csv_path = self._files.paths["json"], self._files.paths["csv"]
        assert self._synced is not None
        stats, held = self._synced.stats, self._files.held
        json_fd = held.fd("json", json_path, os.O_RDWR, stats["json"])
        csv_fd = held.fd("csv", csv_path, os.O_WRONLY, stats["csv"])
        json_size, csv_size = os.fstat(json_fd).st_size, os.fstat(csv_fd).st_size
        if json_size <= len(EMPTY_JSON):
            json_data, json_at = (b"\n", *json_body, JSON_TAIL), 1
        else:
            json_data, json_at = (b",\n", *json_body, JSON_TAIL), json_size - len(JSON_TAIL)
        self._journal({"json": json_at + _length(json_data), "csv": csv_size + _length(csv_rows)})
        self._appended.add("json")
        _write_to(json_fd, json_path, json_data, json_at)
        self._appended.add("csv")
        _write_to(csv_fd, csv_path, csv_rows, csv_size)
        return (os.fstat(json_fd), json_size), os.fstat(csv_fd)

    # ------------------------------------------------------------------ the end

    def _flush(self) -> None:
        """Before the commit: the best-models document if it changed, then the state."""
        if self._best:
            path = self._files.paths["best"]
            self._keep("best")
            assert self._synced is not None
            generation = self._tx.get_meta("generation")
            crc, lines = write_best_lines(path, self._tx, self._files.best_lines, self._best_tickers,
                                          generation, self._synced.state.files["best"])
            written = FileState.of(os.stat(path), crc)
            self._state = self._state.with_file("best", written)
            self._written_best = BestLines(lines, written, generation)
            self._best, self._dirty = False, True
        if self._dirty:
            self._files.save(self._tx, self._state)
            self._dirty = False

    def _keep(self, *keys: str) -> None:
        """Before a file is replaced: a second name for the committed one (a hard link,
        no copy), which a take-back puts back, same inode, bytes and mtime; removed at the
        commit. (A process killed meanwhile leaves it; the next keep replaces it, and the
        next writer rebuilds a file that is not the committed one from the database.)"""
        for key in keys:
            path = self._files.paths[key]
            if key in self._kept or not path.exists():
                continue
            kept = path.with_name(f".{path.name}.committed")
            try:
                kept.unlink(missing_ok=True)
                os.link(path, kept)
            except OSError as exc:  # a file system without hard links: the next writer rebuilds
                log.debug("cannot keep %s for a take-back: %s", path.name, exc)
                continue
            self._kept[key] = kept

    def _drop_kept(self, restore: bool) -> None:
        """The transaction ended: put the kept files back (``restore``) or remove them."""
        kept, self._kept = self._kept, {}
        for key, path in kept.items():
            try:
                if restore:
                    os.replace(path, self._files.paths[key])
                else:
                    path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not %s %s: %s", "restore" if restore else "remove", path.name, exc)

    def _take_back(self) -> None:
        """The transaction failed: wait for a background append, then take back exactly the
        bytes this transaction appended to each file (:func:`.undo.undo_append`): the file
        is its committed self again (bytes, size and mtime), plus anything another process
        appended after those bytes meanwhile (the seed's own code). A file replaced
        meanwhile (by a rebuild) is not touched. A take-back that fails is logged (the
        caller's error is the one to raise); the journal covers it."""
        if self._pending is not None:
            self._pending.followed(wait_quietly=True)
            self._pending = None
        if self._synced is None:
            return
        undone = True
        for key in sorted(self._appended):
            before = self._synced.stats[key]
            path = self._files.paths[key]
            try:
                st = os.stat(path)
                if before is not None and st.st_ino == before.st_ino and st.st_size >= before.st_size:
                    # Only this transaction's bytes: a record the seed's code appended after
                    # them meanwhile (another process, no lock) stays.
                    undo_append(path, key == "json", before.st_size, self._ends.get(key),
                                (before.st_atime_ns, before.st_mtime_ns))
            except OSError as exc:
                log.warning("could not take back the append to %s: %s", path.name, exc)
                undone = False
        if self._ends and undone:
            # Taken back: the journal no longer claims those bytes (what follows the committed
            # size now is someone else's, which the next writer adopts).
            stats = self._synced.stats
            try:
                self._journal({k: stats[k].st_size for k in APPENDED})  # type: ignore[union-attr]
            except OSError as exc:
                log.warning("could not update the append journal: %s", exc)
        self._appended.clear()
        self._drop_kept(restore=True)

    def _finish(self) -> None:
        """The transaction committed: nothing to take back any more."""
        if self._written_best is not None:
            self._files.best_lines = self._written_best
        self._appended.clear()
        self._pending = None
        self._drop_kept(restore=False)


def _write_to(fd: int, path: Path, parts: Parts, offset: int) -> None:
    try:
        write_at(fd, parts, offset)
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise


def _length(parts: Parts) -> int:
    if all(type(p) is bytes for p in parts):  # a single log()'s few pieces
        return sum(map(len, parts))
    return sum(memoryview(p).nbytes for p in parts)


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
