"""The seed's three files, kept as faithful mirrors of the database.

``model_performance.json`` (a JSON array of seed records), ``model_performance.csv`` (seed
columns first) and ``best_models.json`` (the seed's best-models shape) are what existing
scripts read. The database is the truth; these files follow it.

How they stay correct without the seed's rewrite-everything-per-log:

* Appends happen *inside* the database write transaction, so writers (threads or
  processes) append one at a time, in commit order.
* The JSON array is extended in place: one ``pwrite`` replaces the closing ``\\n]`` with
  ``,\\n{record}\\n]``. The CSV gets its rows appended. Cost is O(size of the new records).
* ``best_models.json`` is small (tickers x metrics) and rewritten only when a best entry
  changed, through a temporary file and an atomic rename.
* The committed state of each file (inode, size, mtime and a digest of its last 4 KiB) is
  written to the database in the same transaction, with a CRC-32 of each file's content
  (the JSON's bytes before its closing ``\\n]``, the whole CSV, the whole best-models
  document) that every append extends from the bytes it wrote.

A copy of the directory (a restored backup: ``cp -r``, ``copytree``, ``rsync``, ``tar``) has
new inodes and often new mtimes, but the same content: a file whose size and digest are the
committed ones and whose content CRC, computed in one sequential read, is the committed one
is the committed file. Its new identity is recorded and nothing is adopted or rewritten. (A
state saved by a release before the content CRC has none: such a copy is adopted, as then.)

When a file does not match its committed state, nothing in it is thrown away unread:

* A file that reads as records (the seed's own files in a directory perfledger opens for
  the first time or after its database was deleted; the seed's ``model_log.py`` rewriting
  a mirror beside perfledger) is *adopted*: every record it holds that the database lacks
  is stored (``adopt``, the importer's reader, deduplicated by content), then the mirror is
  rewritten from the database, and so is the other record mirror when records were stored
  (it lacks them). Before the first adoption into a new database, the originals are copied
  to ``<name>.seed-backup``.
* A file that does not read, but whose committed bytes are intact and which only grew: a
  process was killed between appending and committing. The uncommitted tail is dropped.
* Anything else that does not read is kept untouched and reported; writes raise
  :class:`~perfledger.errors.MirrorConflictError` naming it until it is fixed or moved away.
* A deleted mirror is rebuilt from the database; ``best_models.json`` holds nothing of its
  own and is always rewritten from the database.
* Records the database holds beyond the last id the files hold (the state's ``upto``),
  stored by a ``Ledger(dir, mirrors=False)``, are appended to the files at the next sync.

Every file is created with the process's normal, umask-derived mode (as ``open()`` does).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FileReadError, MirrorConflictError, PerfLedgerError
from ..store.base import Inserted, Store, WriteTx
from .file_writes import Parts, atomic_write, parts_crc, parts_tail, write_at
from .layout import PreparedAppend, csv_header
from .rebuild import (
    BEST_NAME,
    CSV_NAME,
    EMPTY_JSON,
    JSON_NAME,
    JSON_TAIL,
    write_best,
    write_csv,
    write_json,
    write_seed_files,
)
from .state import (
    DIGEST_SPAN,
    Sig,
    appended,
    content_crc,
    crcs_of,
    probe,
    same,
)
from .transaction import MirrorTransaction, NullMirrorTransaction
from .undo import APPEND_JOURNAL, cut_back, drop_torn_tail, recover, write_journal

if TYPE_CHECKING:
    from ..records.batch import Batch

#: The files' stats after an append (the JSON's with its size before).
_Appended = tuple[tuple[os.stat_result, int], os.stat_result]
#: ``adopt(tx, path) -> records stored``; raises a PerfLedgerError when the file does not read
#: (:class:`~perfledger.errors.FileReadError`, ``broken`` for a broken structure).
Adopter = Callable[[WriteTx, Path], int]

log = logging.getLogger("perfledger")

STATE_KEY = "mirrors"  # pl_meta key of the files' committed state
BACKUP_SUFFIX = ".seed-backup"


#: The bytes an append overwrites at each file's end (the JSON array's closing "\n]"): a
#: file's content, whose CRC-32 the state keeps, is everything before them.
_KEEP = {"json": len(JSON_TAIL), "csv": 0, "best": 0}
#: State key: the highest record id the files hold (absent in states saved by earlier releases).
_UPTO = "upto"


def _reason(exc: PerfLedgerError) -> str:
    """What is wrong with a file, without its path (the report names it)."""
    if isinstance(exc, FileReadError):
        return f"{exc.where}: {exc.reason}" if exc.where else exc.reason
    return str(exc)


class SeedMirrors:
    """The mirror files of one ledger directory."""

    enabled = True

    def __init__(self, directory: Path, adopt: Adopter | None = None):
        self.directory = directory
        self.json_path = directory / JSON_NAME
        self.csv_path = directory / CSV_NAME
        self.best_path = directory / BEST_NAME
        self._adopt = adopt
        #: Files kept untouched because they do not read as records (name -> reason).
        self.conflicts: dict[str, str] = {}
        #: The last probe of each file (its state and digested bytes), taken by ``sync``
        #: under the write lock; ``append`` derives the files' new state from it.
        self._seen: dict[str, tuple[Sig | None, bytes]] = {}
        #: The content CRC-32 of the files ``_seen`` describes, where known (a state saved
        #: by an earlier release has none); ``append`` extends them.
        self._crcs: dict[str, int] = {}
        self._paths = {"json": self.json_path, "csv": self.csv_path, "best": self.best_path}
        self.paths: Mapping[str, Path] = self._paths
        #: Whether this instance already read the content CRCs a state lacked (see
        #: :meth:`_backfill_crcs`): at most once, however often an older release drops them.
        self._crcs_backfilled = False
        #: The state text last saved or read, and its parsed form (shared, never mutated).
        self._state_text: str | None = None
        self._state: dict[str, Any] = {}
        #: Each file's stat before the current transaction's first append to it: what
        #: :meth:`abandon` restores if that transaction fails.
        self._undo: dict[str, os.stat_result] = {}
        #: Written before a bulk append starts and removed when its transaction ends: a
        #: process killed in between leaves it, and the next writer cuts the files back.
        self.journal_path = directory / APPEND_JOURNAL
        self._journaled = False
        self._journal_check = True  # the first write looks for one, even with files in step
        self._pending: PreparedAppend | None = None  # a bulk append being written

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

    # ------------------------------------------------------------------ state

    def _load_state(self, tx: WriteTx) -> dict[str, Any]:
        raw = tx.get_meta(STATE_KEY)
        if not raw:
            return {}
        if raw != self._state_text:  # usually the text this process saved last: parsed already
            self._state_text, self._state = raw, json.loads(raw)
        return self._state

    def _current(self) -> dict[str, tuple[Sig | None, bytes]]:
        """Probe the three files (their state and digested bytes)."""
        return {"json": probe(self.json_path, len(JSON_TAIL)), "csv": probe(self.csv_path),
                "best": probe(self.best_path)}

    def _save_state(
        self, tx: WriteTx, previous: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None, written: dict[str, int] | None = None,
        upto: int | None = None,
    ) -> None:
        """Record the files' state in the transaction: ``state`` when the caller knows it
        (an append computes it, and the content CRCs in ``_crcs``), else probed from the
        files. A probed file's content CRC is the one in ``written`` (the caller just wrote
        the file, under the write lock), or carried over when it is still the file ``_crcs``
        describes (the same probe), else read from it (one sequential read: after a
        rebuild, a reset, a repair).

        ``upto``: the highest record id the files hold (an append's last id), else every
        record the database holds (a probe follows a rebuild, a reset or a sync)."""
        if state is None:
            seen, crcs = self._seen, self._crcs
            self._seen = self._current()
            state = {k: v[0] for k, v in self._seen.items()}
            self._crcs = {}
            for key, (sig, _) in self._seen.items():
                if sig is None or self._paths[key].name in self.conflicts:
                    continue
                crc = (written or {}).get(key)
                if crc is None and seen.get(key, (None, b""))[0] == sig:
                    crc = crcs.get(key)
                if crc is None:
                    read = content_crc(self._paths[key], sig, _KEEP[key])
                    crc = read[0] if read is not None else None
                if crc is not None:
                    self._crcs[key] = crc
        content: dict[str, str] = {k: f"crc32:{crc:08x}" for k, crc in self._crcs.items()}
        for key, path in (("json", self.json_path), ("csv", self.csv_path)):
            if path.name in self.conflicts:  # never vouch for a file we could not read
                state[key] = (previous or {}).get(key)
                kept = crcs_of(previous or {}).get(key)
                content.pop(key, None)
                if kept is not None:
                    content[key] = f"crc32:{kept:08x}"
        if content:  # a separate key: earlier releases read only "json", "csv" and "best"
            state["content"] = content
        state[_UPTO] = upto if upto is not None else tx.last_id()
        text = json.dumps(state)
        tx.set_meta(STATE_KEY, text)
        # Never mutated from here on; if this transaction rolls back, the text read next
        # differs and is parsed.
        self._state_text, self._state = text, state

    def _verified(self, key: str, want: Sig | None, have: tuple[Sig | None, bytes],
                  crc: int | None) -> bool:
        """Is a file whose identity (inode, mtime) is not the committed one the committed
        file all the same, e.g. in a restored copy of the directory? It is when its size and
        digest are the committed ones, its content CRC, read from the whole file, is the
        committed ``crc`` (a same-size edit anywhere changes it but for a chance of 2^-32),
        and the JSON ends as perfledger ends it (the CRC leaves out its closing ``\\n]``)."""
        sig = have[0]
        if crc is None or want is None or sig is None or len(want) < 4:
            return False
        if not same([sig[0], want[1], sig[2], *want[3:]], have):
            return False
        read = content_crc(self._paths[key], sig, _KEEP[key])
        if read is None or read[0] != crc:
            return False
        return key != "json" or read[1] == (EMPTY_JSON if int(sig[1]) == len(EMPTY_JSON) else JSON_TAIL)

    def in_step(self, store: Store, *, verify: bool = False) -> bool:
        """True when the files match the state ``store`` committed (a read: no lock, no write).

        With ``verify``, a file whose identity changed but whose content is verified to be
        the committed one (:meth:`_verified`, one read of it) counts as in step: a user who
        may not write cannot record a restored copy's new identity, and must not be told it
        is out of step. A writer need not verify here: :meth:`sync` does, under the lock,
        and records the new identity, so the next open is cheap again.

        ``best_models.json`` is verified the same way, by the CRC of its whole content: it
        holds nothing of its own (a writer rewrites it from the database whenever its
        identity changed), but it is what seed scripts read, so "in step" must mean "what a
        writer would write"; it is small (tickers x metrics), so reading it all is cheap,
        and a digest of its last 4 KiB alone would miss an edit further up."""
        if not verify and self.journal_path.exists():
            return False  # a bulk append died before its commit: sync takes it back
        state_text, last_id = store.get_meta(STATE_KEY), store.last_id()
        state = json.loads(state_text) if state_text else {}
        upto = state.get(_UPTO)
        if last_id is not None and isinstance(upto, int) and last_id > upto:
            return False  # records stored without the mirrors: sync appends them
        have = self._current()
        crcs = crcs_of(state) if verify else {}
        return all(same(state.get(k), have[k]) or self._verified(k, state.get(k), have[k], crcs.get(k))
                   for k in ("json", "csv", "best"))

    def _backfill_crcs(self, have: dict[str, tuple[Sig | None, bytes]]) -> None:
        """Give in-step files the content CRCs their state lacks (saved by a release before
        them, or by one running beside this one, which drops them when it saves): one
        sequential read of each, once per instance, under the write lock. The append that
        follows extends and commits them, so a copy of the directory taken after this
        release's first write opens without being adopted."""
        self._crcs_backfilled = True
        for key, (sig, _) in have.items():
            if key not in self._crcs and sig is not None:
                read = content_crc(self._paths[key], sig, _KEEP[key])
                if read is not None:
                    self._crcs[key] = read[0]

    def _catch_up(self, tx: WriteTx, upto: int) -> bool:
        """Append the records the database holds beyond ``upto`` (the last one the files
        hold), and rewrite the best-models document: records a ``Ledger(dir, mirrors=False)``
        stored are mirrored at the next write instead of never. True if there were any. One
        indexed ``max(id)`` when there are none. (A state saved by an earlier release has no
        ``upto``; this release's next append records one.)"""
        if tx.last_id() <= upto:
            return False
        batches = tx.iter_batches(after=upto)
        item = next(batches, None)
        n = 0
        while item is not None:
            following = next(batches, None)
            ids, batch = item
            self.append(tx, PreparedAppend(batch), Inserted(ids, best_changed=following is None))
            n += len(batch)
            item = following
        log.info("mirrored %d records stored without the mirrors into %s", n, self.directory)
        return True

    def sync(self, tx: WriteTx, *, strict: bool = True) -> bool:
        """Bring the files back in step with the committed database (see the module doc);
        True if anything was repaired or adopted. Cheap when nothing is wrong: three
        probes (each an open, an ``fstat`` and one read of at most 4 KiB) and one meta read.

        A file that must be kept untouched raises :class:`MirrorConflictError` when
        ``strict`` (a write would have to overwrite it); otherwise it is reported (a log
        line and a warning) and left as it is.
        """
        self._undo, self._pending = {}, None  # nothing earlier (or a parent's) is ours to undo
        state = self._load_state(tx)
        have = self._seen = self._current()  # under the write lock: append derives from it
        in_step = all(same(state.get(k), have[k]) for k in ("json", "csv", "best"))
        # A journal a dead process left matters only if the files are out of step (longer); a
        # stale one is cleared by this instance's first write. Not a stat on every log().
        if (self._journal_check or not in_step) and self.journal_path.exists():
            recover(self.journal_path, state, {"json": self.json_path, "csv": self.csv_path})
            have = self._seen = self._current()
            in_step = all(same(state.get(k), have[k]) for k in ("json", "csv", "best"))
        self._journal_check = False
        crcs = self._crcs = crcs_of(state)
        if in_step:
            if len(crcs) < len(self._paths) and not self._crcs_backfilled:
                self._backfill_crcs(have)
            upto = state.get(_UPTO)
            return isinstance(upto, int) and self._catch_up(tx, upto)
        self._crcs = {k: crc for k, crc in crcs.items() if same(state.get(k), have[k])}
        self.conflicts.clear()
        fresh = not state  # a new database: whatever files are here predate it
        if fresh:
            self._backup()
        adopted: dict[str, int] = {}
        rebuild: list[tuple[Path, Callable[[Path, WriteTx], None]]] = []
        for key, path, writer in (("json", self.json_path, write_json), ("csv", self.csv_path, write_csv)):
            want = state.get(key)
            if same(want, have[key]):
                continue
            if self._verified(key, want, have[key], crcs.get(key)):
                # A copy of the committed file (a restored backup): only its identity is new.
                log.info("%s is the committed file under a new inode or mtime", path.name)
                self._crcs[key] = crcs[key]
                continue
            if have[key][0] is None:
                if want is not None:
                    log.info("rebuilding %s from the database (it was deleted)", path.name)
                rebuild.append((path, writer))
                continue
            try:
                adopted[path.name] = self._adopt(tx, path) if self._adopt is not None else 0
            except PerfLedgerError as exc:
                if getattr(exc, "broken", False) and drop_torn_tail(path, key == "json", want, have[key][0]):
                    continue
                self.conflicts[path.name] = _reason(exc)
                continue
            rebuild.append((path, writer))
        if any(adopted.values()):
            # The database now holds records only one file had: the other, though in step
            # with the previous commit, must be rewritten to show them too.
            for path, writer in ((self.json_path, write_json), (self.csv_path, write_csv)):
                if path.name not in self.conflicts and all(p != path for p, _ in rebuild):
                    rebuild.append((path, writer))
        for path, writer in rebuild:
            writer(path, tx)
        write_best(self.best_path, tx)
        self._save_state(tx, state)
        if any(adopted.values()):
            kept = f"; the originals are kept as *{BACKUP_SUFFIX}" if fresh else ""
            log.warning("adopted into %s: %s%s", self.directory, ", ".join(
                f"{n} records from {name}" for name, n in adopted.items()), kept)
        self._report(strict)
        return True

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
        warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _backup(self) -> None:
        """Copies of the files a new database found here (the seed's, or mirrors whose
        database was deleted), made once: ``<name>.seed-backup``."""
        for path in (self.json_path, self.csv_path, self.best_path):
            target = path.with_name(path.name + BACKUP_SUFFIX)
            if path.exists() and path.stat().st_size and not target.exists():
                shutil.copy2(path, target)

    # ------------------------------------------------------------------ writes

    def begin_append(self, prepared: PreparedAppend) -> None:
        """Start appending a large batch to both files now, in the formatting thread, while
        the database inserts it: the 400 MB a million records take are written during the
        insert instead of after it. Call inside the write transaction, after :meth:`sync`;
        :meth:`append` completes it; if the transaction fails, :meth:`abandon` undoes it.

        The files' sizes are journaled first: if this process dies before the commit, the
        next writer cuts the files back (:mod:`.mirror_undo`), adopting nothing."""
        if prepared.background:
            write_journal(self.journal_path, {"json": self.json_path, "csv": self.csv_path})
            self._journaled, self._pending = True, prepared
            prepared.then(self._append_files)

    def _append_files(self, json_body: Parts, csv_rows: Parts) -> _Appended:
        return self._append_json(json_body), self._append_csv(csv_rows)

    def append(self, tx: WriteTx, prepared: PreparedAppend, inserted: Inserted) -> None:
        """Append a batch inside its write transaction, after :meth:`sync` ran in it (a
        rebuild must not already hold the batch), or complete :meth:`begin_append`'s."""
        json_body, csv_rows = prepared.wait()
        done: _Appended | None = prepared.followed()
        json_st, csv_st = done if done is not None else self._append_files(json_body, csv_rows)
        upto = max(inserted.ids) if inserted.ids else None
        best_changed = inserted.best_changed
        seen, crcs = self._seen, self._crcs
        if seen and json_st[1] > len(EMPTY_JSON) and all(v[0] is not None for v in seen.values()):
            # The usual case: the new state follows from sync's probe and the bytes written
            # (about 60 µs less per log() than reading the three files again), the content
            # CRCs from the committed ones and the same bytes.
            added = (b",\n", *json_body)
            self._seen = {
                "json": appended(json_st[0], seen["json"][1], parts_tail(added, DIGEST_SPAN)),
                "csv": appended(csv_st, seen["csv"][1], parts_tail(csv_rows, DIGEST_SPAN)),
                "best": seen["best"],
            }
            self._crcs = {}
            if "json" in crcs:
                self._crcs["json"] = parts_crc(added, crcs["json"])
            if "csv" in crcs:
                self._crcs["csv"] = parts_crc(csv_rows, crcs["csv"])
            if best_changed:
                data = write_best(self.best_path, tx)
                self._seen["best"] = appended(os.stat(self.best_path), b"", data)
                self._crcs["best"] = zlib.crc32(data)
            elif "best" in crcs:
                self._crcs["best"] = crcs["best"]
            self._save_state(tx, state={k: v[0] for k, v in self._seen.items()}, upto=upto)
            return
        # The first append into an empty "[]": the state is probed, but the content CRCs
        # still follow from the bytes written (a bulk load into a new ledger reads nothing back).
        written: dict[str, int] = {}
        if "json" in crcs and json_st[1] == len(EMPTY_JSON):
            written["json"] = parts_crc(json_body, zlib.crc32(b"[\n"))
        if "csv" in crcs:
            written["csv"] = parts_crc(csv_rows, crcs["csv"])
        if best_changed:
            written["best"] = zlib.crc32(write_best(self.best_path, tx))
        self._save_state(tx, written=written, upto=upto)

    def _append_json(self, body: Parts) -> tuple[os.stat_result, int]:
        """Append ``body``'s records; returns the file's new stat and its size before."""
        fd = os.open(self.json_path, os.O_RDWR)
        try:
            before = os.fstat(fd)
            self._undo.setdefault("json", before)
            size = before.st_size
            if size <= len(EMPTY_JSON):
                data, offset = (b"\n", *body, JSON_TAIL), 1
            else:
                data, offset = (b",\n", *body, JSON_TAIL), size - len(JSON_TAIL)
            # One write call replaces the closing bracket and adds the records.
            write_at(fd, data, offset)
            return os.fstat(fd), size
        finally:
            os.close(fd)

    def _append_csv(self, rows: Parts) -> os.stat_result:
        fd = os.open(self.csv_path, os.O_WRONLY)
        try:
            before = os.fstat(fd)
            self._undo.setdefault("csv", before)
            write_at(fd, rows, before.st_size)
            return os.fstat(fd)
        finally:
            os.close(fd)

    def committed(self) -> None:
        """The transaction that appended has committed: nothing to undo any more."""
        self._undo, self._pending = {}, None
        if self._journaled:
            self.journal_path.unlink(missing_ok=True)
            self._journaled = False

    def abandon(self) -> None:
        """The write transaction failed after (or while) appending: wait for a background
        append, then cut each file back to its committed bytes, size and mtime."""
        if self._pending is not None:
            self._pending.followed(wait_quietly=True)
        undo, self._undo, self._pending = self._undo, {}, None
        for key, st in undo.items():
            try:
                cut_back(self._paths[key], key == "json", st.st_size, (st.st_atime_ns, st.st_mtime_ns))
            except OSError as exc:  # the caller's error is the one to raise; the journal stays
                log.warning("could not take back the append to %s: %s", self._paths[key].name, exc)
                return
        if self._journaled:
            self.journal_path.unlink(missing_ok=True)
            self._journaled = False
        self._seen, self._crcs = {}, {}

    def reset(self, tx: WriteTx) -> None:
        """After a clear: empty files, rewritten atomically."""
        atomic_write(self.json_path, [EMPTY_JSON])
        atomic_write(self.csv_path, [csv_header()])
        write_best(self.best_path, tx)
        self._save_state(tx)

    def write_best(self, tx: WriteTx) -> None:
        write_best(self.best_path, tx)
        self._save_state(tx)

    def rebuild(self, tx: WriteTx) -> None:
        """Rewrite the three files from the database (a file we could not read, too: the
        caller asked for exactly that)."""
        self.conflicts.clear()
        write_seed_files(self.directory, tx)
        self._save_state(tx)


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


#: What a ledger keeps of its mirror files.
Mirrors = SeedMirrors | NoMirrors
