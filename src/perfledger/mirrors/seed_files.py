"""The seed's three files of one ledger directory, and how they are brought back in step
with the database.

``model_performance.json`` (a JSON array of seed records), ``model_performance.csv`` (seed
columns first) and ``best_models.json`` (the seed's best-models shape) are what existing
scripts read. The database is the truth; these files follow it, inside each write
transaction (:mod:`.transaction`), at a cost proportional to the new records.

Every write transaction starts with :meth:`SeedMirrors.sync`, under the write lock. When
each file's identity is the committed one (:mod:`.state`: three ``stat`` calls, no read),
that is all. Otherwise nothing in a file is thrown away unread:

* A longer file left by a transaction that died before its commit is cut back from the
  journal (:mod:`.undo`): records never stored are not adopted.
* A copy of the committed file (a restored backup: ``cp -r``, ``copytree``, ``rsync``,
  ``tar``; new inode or mtime, the committed size and content CRC, one sequential read) has
  its new identity recorded; nothing is adopted or rewritten.
* A file that reads as records (the seed's own files in a directory perfledger opens for
  the first time or after its database was deleted; the seed's ``model_log.py`` rewriting
  the JSON or appending to the CSV beside perfledger) is *adopted*: every record it holds
  that the database lacks is stored (``adopt``, the importer's reader, deduplicated by
  content), then the file is rewritten from the database, and so is the other record file
  when records were stored (it lacks them). Before the first adoption into a new database,
  the originals are copied to ``<name>.seed-backup``.
* A file that does not read, but whose committed bytes are intact and which only grew: an
  append torn by a process that no journal covers (an earlier release's). The tail is
  dropped.
* Anything else that does not read is kept untouched and reported; writes raise
  :class:`~perfledger.errors.MirrorConflictError` naming it until it is fixed or moved away.
* A deleted file is rebuilt from the database; ``best_models.json`` holds nothing of its
  own and is rewritten from the database whenever it is not the committed one.

Every file is created with the process's normal, umask-derived mode (as ``open()`` does).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import FileReadError, MirrorConflictError, PerfLedgerError
from ..store.base import Store, WriteTx
from .failures import FileErrors
from .file_writes import HeldFiles
from .layout import PreparedAppend
from .rebuild import (
    BEST_NAME,
    CSV_NAME,
    EMPTY_JSON,
    JSON_NAME,
    JSON_TAIL,
    BestLines,
    write_best,
    write_csv,
    write_json,
)
from .state import KEEP, KEYS, STATE_KEY, FileState, MirrorState, content_crc, parse_state, stat_files
from .transaction import MirrorTransaction, NullMirrorTransaction, Synced
from .undo import JOURNAL, Journal, drop_torn_tail, recover

if TYPE_CHECKING:
    from ..records.batch import Batch

class Adoption(NamedTuple):
    """What adopting a file did: records stored, and committed records found changed."""

    #: Records appended to the file since the last commit (by the seed's code), now stored.
    stored: int
    #: Records the file held at the last commit that it no longer holds as they were
    #: (edited, removed): not new records; the file is rewritten from the database.
    edited: int


#: ``adopt(tx, path, held) -> Adoption``; ``held``: the highest record id the file held at
#: the last commit (None in a new database: every record is a candidate). Raises a
#: PerfLedgerError when the file does not read (:class:`~perfledger.errors.FileReadError`,
#: ``broken`` for a broken structure).
Adopter = Callable[[WriteTx, Path, "int | None"], Adoption]

log = logging.getLogger("perfledger")

BACKUP_SUFFIX = ".seed-backup"
#: The suffix of a mirror kept after records the ledger had committed were edited in it.
EDITED_SUFFIX = ".edited"
_WRITERS = {"json": write_json, "csv": write_csv}


class SeedMirrors:
    """The mirror files of one ledger directory."""

    enabled = True

    def __init__(self, directory: Path, adopt: Adopter | None = None):
        self.directory = directory
        self.paths: dict[str, Path] = {"json": directory / JSON_NAME, "csv": directory / CSV_NAME,
                                       "best": directory / BEST_NAME}
        self.journal = Journal(directory / JOURNAL)
        self.held = HeldFiles()
        self.errors = FileErrors(directory)
        self._adopt = adopt
        #: Files kept untouched because they do not read as records (name -> reason).
        self.conflicts: dict[str, str] = {}
        #: The state text this process saved last, and the state it holds: a writer that
        #: finds its own text committed needs not parse it again.
        self._saved: tuple[str, MirrorState] | None = None
        #: Whether this instance already read the content CRCs a state lacked (see
        #: :meth:`_backfill`): at most once, however often an earlier release drops them.
        self._backfilled = False
        #: The best-models document this process committed last (see :class:`.rebuild.BestLines`).
        self.best_lines: BestLines | None = None

    # ------------------------------------------------------------------ the writers' face

    def prepare(self, batch: Batch) -> PreparedAppend:
        """The batch's bytes, formatted before the write lock is taken (a large batch in
        the background)."""
        return PreparedAppend(batch)

    def transaction(self, tx: WriteTx, *, strict: bool = True) -> MirrorTransaction:
        """The files' side of ``tx`` (:mod:`.transaction`). ``strict``: a file that does
        not read raises :class:`MirrorConflictError` (a write would have to overwrite it)
        instead of being reported."""
        return MirrorTransaction(self, tx, strict=strict)

    def in_step(self, store: Store, *, verify: bool = False) -> bool:
        """True when the files match the committed state (reads only: no lock, no write).

        With ``verify``, a file whose identity changed but whose content is verified to be
        the committed one (one read of it) counts as in step: a user who may not write
        cannot record a restored copy's new identity, and must not be told it is out of
        step. A writer needs no such read here: :meth:`sync` makes it under the lock, and
        records the new identity, so the next open is cheap again.

        Records stored beyond the last one the files hold (by a ``mirrors=False`` ledger)
        put them out of step: the next write appends them.

        A ledger that holds nothing and never recorded a state, beside no file at all (a new
        directory), is in step: opening it must create nothing; its first write writes them."""
        text, last_id = store.get_meta(STATE_KEY), store.last_id()
        state = parse_state(text, last_id)
        stats = stat_files(self.paths)
        if text is None and last_id == 0 and all(st is None for st in stats.values()):
            return True
        if state is None or last_id > state.upto:
            return False
        return all(self._same(k, state.files[k], stats[k], read=verify) for k in KEYS)

    def close(self) -> None:
        """Release the files this instance keeps open (a write opens them again)."""
        self.journal.close()
        self.held.close()

    # ------------------------------------------------------------------ the transaction's face

    def save(self, tx: WriteTx, state: MirrorState) -> None:
        """Record the files' state in the transaction."""
        text = state.dumps()
        tx.set_meta(STATE_KEY, text)
        self._saved = (text, state)  # if this transaction rolls back, the text read next differs

    def sync(self, tx: WriteTx, *, strict: bool) -> Synced:
        """Bring the files back in step with the committed database (see the module doc).
        Cheap when nothing is wrong: one meta read, one ``max(id)`` and three ``stat``.

        A file that must be kept untouched raises :class:`MirrorConflictError` when
        ``strict``; otherwise it is reported (a log line and a warning) and left as it is."""
        text, last_id = tx.get_meta(STATE_KEY), tx.last_id()
        saved = self._saved
        state = saved[1] if saved is not None and saved[0] == text else parse_state(text, last_id)
        stats = stat_files(self.paths)
        if state is not None and state.in_step(stats):
            if not self._backfilled and any(state.files[k].crc is None for k in KEYS):  # type: ignore[union-attr]
                state = self._backfill(state, stats)
            return Synced(state, text, stats, last_id)
        return self._repair(tx, text, state, stats, last_id, strict)

    # ------------------------------------------------------------------ repairs

    def _same(self, key: str, want: FileState | None, st: os.stat_result | None, *, read: bool) -> bool:
        """Is the file the committed one: by its identity, or (``read``) by its size and
        the CRC of its content (a copy of it)? For the JSON also by its last two bytes,
        which the CRC leaves out: it must end as perfledger ends it."""
        if want is None or st is None:
            return False
        if want.is_file(st):
            return True
        if not read or want.crc is None or st.st_size != want.size:
            return False
        got = content_crc(self.paths[key], st, KEEP[key])
        if got is None or got[0] != want.crc:
            return False
        return key != "json" or got[1] == (EMPTY_JSON if want.size == len(EMPTY_JSON) else JSON_TAIL)

    def _backfill(self, state: MirrorState, stats: Mapping[str, os.stat_result | None]) -> MirrorState:
        """Give in-step files the content CRCs a state lacks (saved by a release before
        them, or by one running beside this one, which drops them when it saves): one
        sequential read of each, once per instance, under the write lock. The append that
        follows extends and commits them, so a copy of the directory taken after this
        release's first write opens without being adopted."""
        self._backfilled = True
        for key in KEYS:
            want, st = state.files[key], stats[key]
            if want is not None and want.crc is None and st is not None:
                got = content_crc(self.paths[key], st, KEEP[key])
                if got is not None:
                    state = state.with_file(key, FileState.of(st, got[0]))
        return state

    def _repair(self, tx: WriteTx, text: str | None, state: MirrorState | None,
                stats: dict[str, os.stat_result | None], last_id: int, strict: bool) -> Synced:
        """The files are not all the committed ones: each is taken back from the journal,
        recognised as a copy, adopted and rewritten, rebuilt, repaired or reported, in that
        order (the module doc says when), and the state they end in saved."""
        self.conflicts.clear()
        if recover(self.directory, self.paths, text, state):
            stats = stat_files(self.paths)
            if state is not None and state.in_step(stats):
                return Synced(state, text, stats, last_id)  # cut back: the committed files again
        fresh = state is None  # a new database: whatever files are here predate it
        if fresh:
            self._backup()
        files: dict[str, FileState | None] = dict(state.files) if state is not None else dict.fromkeys(KEYS)
        upto = state.upto if state is not None else last_id
        adopted: dict[str, int] = {}
        rebuild: list[str] = []
        for key in ("json", "csv"):
            want, st, path = files[key], stats[key], self.paths[key]
            if want is not None and want.is_file(st):
                continue
            if st is not None and self._same(key, want, st, read=True):
                # A copy of the committed file (a restored backup): only its identity is new.
                log.info("%s is the committed file under a new inode or mtime", path.name)
                files[key] = FileState.of(st, want.crc)  # type: ignore[union-attr]
                continue
            if st is None:
                if want is not None:
                    log.info("rebuilding %s from the database (it was deleted)", path.name)
                rebuild.append(key)
                continue
            try:
                held = None if fresh or want is None else upto  # None: the file held no committed record
                adoption = (self._adopt(tx, path, held) if self._adopt is not None
                            else Adoption(0, 0))
            except PerfLedgerError as exc:
                if getattr(exc, "broken", False):
                    repaired = drop_torn_tail(path, key, want, st)
                    if repaired is not None:
                        files[key] = repaired
                        continue
                self.conflicts[path.name] = _reason(exc)
                continue
            adopted[path.name] = adoption.stored
            if adoption.edited:
                self._keep_edited(path, adoption.edited)
            rebuild.append(key)
        readable = [k for k in ("json", "csv") if self.paths[k].name not in self.conflicts]
        if any(adopted.values()) or (rebuild and upto < last_id):
            # The database holds records a file kept lacks (adopted from the other file, or
            # stored without the mirrors): rewrite it too, so both hold every record.
            rebuild = readable
        for key in rebuild:
            crc = _WRITERS[key](self.paths[key], tx)
            files[key] = FileState.of(os.stat(self.paths[key]), crc)
        if rebuild:
            upto = last_id = tx.last_id()
        crc = write_best(self.paths["best"], tx)
        files["best"] = FileState.of(os.stat(self.paths["best"]), crc)
        repaired_state = MirrorState(files, upto)
        self.save(tx, repaired_state)
        if any(adopted.values()):
            kept = f"; the originals are kept as *{BACKUP_SUFFIX}" if fresh else ""
            log.warning("adopted into %s: %s%s", self.directory, ", ".join(
                f"{n} records from {name}" for name, n in adopted.items()), kept)
        self._report(strict)
        return Synced(repaired_state, text, stat_files(self.paths), last_id)

    def _report(self, strict: bool) -> None:
        if not self.conflicts:
            return
        name, reason = next(iter(self.conflicts.items()))
        message = (
            f"{self.directory / name} does not read as records: {reason}. It was left "
            "untouched and perfledger will not overwrite it. Fix it, or move it away to have "
            "it rebuilt from the database."
        )
        if strict:
            raise MirrorConflictError(message + " Nothing was stored.")
        log.warning("%s", message)
        warnings.warn(message, RuntimeWarning, stacklevel=6)  # Ledger.__init__

    def _keep_edited(self, path: Path, edited: int) -> None:
        """A file in which records the ledger had committed were changed (edited by hand or
        by another tool): the database is the truth, so they are not adopted; the edited
        file is kept beside the mirror (``<name>.edited``, ``.edited-2``, ...) before the
        mirror is rewritten from the database, and the user is told once (a log line and a
        ``RuntimeWarning``)."""
        target = path.with_name(path.name + EDITED_SUFFIX)
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}{EDITED_SUFFIX}-{n}")
        shutil.copy2(path, target)
        message = (
            f"{path}: {edited} record(s) the ledger had stored were changed in the file (edited "
            f"or removed by another tool); the database is the truth, so they were not taken as "
            f"new records: the edited file is kept as {target.name} and {path.name} is rewritten "
            "from the database (records appended after them are adopted as usual)"
        )
        log.warning("%s", message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)

    def _backup(self) -> None:
        """Copies of the files a new database found here (the seed's, or mirrors whose
        database was deleted), made once: ``<name>.seed-backup``."""
        for path in self.paths.values():
            target = path.with_name(path.name + BACKUP_SUFFIX)
            if path.exists() and path.stat().st_size and not target.exists():
                shutil.copy2(path, target)


def _reason(exc: PerfLedgerError) -> str:
    """What is wrong with a file, without its path (the report names it)."""
    if isinstance(exc, FileReadError):
        return f"{exc.where}: {exc.reason}" if exc.where else exc.reason
    return str(exc)


class NoMirrors:
    """The mirror files of a ledger that keeps none: the same methods as
    :class:`SeedMirrors`, doing nothing, so writers are written once.

    ``deferred``: a directory ledger opened with ``mirrors=False`` (a fast bulk load). The
    records it stores reach the files at the next write of a ledger that keeps them (the
    state's ``upto`` says which the files hold); until then they are missing from the
    files, which are otherwise left as they are. (A URL ledger has no files at all.)"""

    enabled = False
    paths: Mapping[str, Path] = {}

    def __init__(self, *, deferred: bool = False):
        self.deferred = deferred

    def prepare(self, batch: Batch) -> None:
        return None

    def transaction(self, tx: WriteTx, *, strict: bool = True) -> NullMirrorTransaction:
        return NullMirrorTransaction(tx)

    def in_step(self, store: Store, *, verify: bool = False) -> bool:
        return True

    def close(self) -> None:
        return None


#: What a ledger keeps of its mirror files.
Mirrors = SeedMirrors | NoMirrors
