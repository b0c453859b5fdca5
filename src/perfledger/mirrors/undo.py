"""Taking back a mirror append whose transaction did not commit.

Appends are written inside the database's write transaction, before its commit (a bulk
append during the insert). Records that were never stored must not stay in the files,
where the next open would adopt them (or read a half-written row as one):

* A transaction that fails is taken back by its own process, while it still holds the
  write lock (:class:`~.transaction.MirrorTransaction`): :func:`undo_append`, its own bytes
  only, the committed mtime back when nothing followed them.
* A process killed between an append and its commit cannot. So before each append, the
  files' identities, committed sizes and times, and where the transaction's appends will
  end, go into the **journal** (:data:`JOURNAL`), with a CRC of the committed state the
  transaction started from. The next writer that finds the files out of step (an append
  left them longer) reads it (:func:`recover`): if the committed state is still that one,
  the journaled transaction never committed and its bytes are taken back; otherwise its
  commit moved the state on and the journal is stale.
* Only perfledger's bytes: the seed's own code, in another process and without a lock, may
  have appended a record after them (a CSV row; the JSON list re-dumped with its record
  last). Those bytes, after the journaled end, are kept (:func:`_excise`) and the next
  writer adopts the record; the journal of the release before (no end) cuts back to the
  committed size, as that release did. (Comparing the whole committed state, rather than a
  file's committed size, also covers a transaction that rebuilt a file, a new inode, before
  appending to it.) Every append is journaled, a single ``log()`` as much as a bulk load,
  so both crash alike.

The journal is one small file, created once and then rewritten in place by one ``pwrite``
per transaction that appends (:class:`Journal`: a few microseconds): never removed, since a
stale one is recognised as such. (A create, rename and unlink per ``log()`` would cost
several times that.) A journal left by an earlier release (:data:`LEGACY_JOURNAL`, written
before bulk appends only) is still honoured, then removed.

A file whose append was torn and that no journal covers (an earlier release killed during
a single ``log()``) is repaired by :func:`drop_torn_tail` when its committed bytes are
intact.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from .file_writes import atomic_write
from .rebuild import EMPTY_JSON, JSON_TAIL
from .state import KEEP, FileState, MirrorState, content_crc

log = logging.getLogger("perfledger")

#: The journal's name in the ledger directory.
JOURNAL = ".perfledger-journal"
#: The journal earlier releases wrote before a bulk append, and removed after its commit.
LEGACY_JOURNAL = ".perfledger-append.json"
#: The files an append writes, in the journal's order.
APPENDED = ("json", "csv")

_MAGIC = b"PLJ2"
#: Magic, CRC-32 of the committed state's text, then per appended file its inode, size,
#: atime_ns, mtime_ns and the end of this transaction's appends (the file's size once they
#: are written); a CRC-32 of all that follows it.
_BODY = struct.Struct("<4sI" + "QQqqQ" * len(APPENDED))
#: The journal of the release before ends were recorded (read: its appends are cut back to
#: the committed size, as that release did).
_MAGIC_V1 = b"PLJ1"
_BODY_V1 = struct.Struct("<4sI" + "QQqq" * len(APPENDED))
_CHECK = struct.Struct("<I")
#: A journaled file: (inode, committed size, atime_ns, mtime_ns, end of the appends or None).
Journaled = tuple[int, int, int, int, "int | None"]


def _base(text: str | None) -> int:
    return zlib.crc32((text or "").encode())


class Journal:
    """The journal file of one ledger directory, written before each transaction's first
    append. Kept open between transactions: opening and closing it for every ``log()``
    cost 9 µs here, the ``pwrite`` itself about 1."""

    def __init__(self, path: Path):
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, committed: str | None, stats: Mapping[str, os.stat_result],
              ends: Mapping[str, int]) -> None:
        """Record the files as committed (``stats``), the committed state the transaction
        started from (``committed``: the state's text as stored), and where the
        transaction's appends end (``ends``: each file's size once the append about to be
        written is): the bytes between are perfledger's own, and only those are taken back
        (the seed's code may append after them). Written again before each append."""
        fields: list[int] = []
        for key in APPENDED:
            st = stats[key]
            fields += [st.st_ino, st.st_size, st.st_atime_ns, st.st_mtime_ns, ends[key]]
        body = _BODY.pack(_MAGIC, _base(committed), *fields)
        data = body + _CHECK.pack(zlib.crc32(body))
        f = self._file
        if f is None or os.fstat(f.fileno()).st_nlink == 0:  # never opened, or removed since
            f = self._open()
            if f is None:  # a teammate's journal this user may not write: replace it
                atomic_write(self.path, [data])
                return
        os.pwrite(f.fileno(), data, 0)

    def close(self) -> None:
        """Release the file (the next write opens it again)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> BinaryIO | None:
        self.close()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
        except PermissionError:
            self._file = None
            return None
        self._file = os.fdopen(fd, "wb", buffering=0)
        return self._file


def _read_journal(path: Path) -> tuple[int, dict[str, Journaled]] | None:
    """(committed state's CRC, per file (inode, size, atime_ns, mtime_ns, end)); None when
    there is no journal. Raises ValueError when it does not read. A journal of the release
    before ends were recorded reads with ``end`` None."""
    try:
        with open(path, "rb") as f:
            data = f.read(_BODY.size + _CHECK.size)
    except FileNotFoundError:
        return None
    layout, width = (_BODY, 5) if data[:4] == _MAGIC else (_BODY_V1, 4)
    if len(data) < layout.size + _CHECK.size:
        raise ValueError("too short")
    body = data[: layout.size]
    if _CHECK.unpack(data[layout.size: layout.size + _CHECK.size])[0] != zlib.crc32(body):
        raise ValueError("checksum mismatch")
    magic, base, *fields = layout.unpack(body)
    if magic not in (_MAGIC, _MAGIC_V1):
        raise ValueError("not a perfledger journal")
    files: dict[str, Journaled] = {}
    for i, key in enumerate(APPENDED):
        inode, size, atime, mtime, *end = fields[width * i: width * i + width]
        files[key] = (inode, size, atime, mtime, end[0] if end else None)
    return base, files


def recover(directory: Path, paths: Mapping[str, Path], committed: str | None,
            state: MirrorState | None) -> bool:
    """Take back the appends of a transaction that died before its commit, if the journal
    says there was one (see the module doc). The caller holds the write lock, found the
    files out of step, and passes the committed state as stored (``committed``) and
    parsed. A file is cut back only if it is still the very file journaled (its inode) and
    longer than journaled. True when a file was cut back."""
    cut = False
    legacy = directory / LEGACY_JOURNAL
    if legacy.exists():
        cut = _recover_legacy(legacy, paths, state)
    path = directory / JOURNAL
    try:
        journal = _read_journal(path)
    except (OSError, ValueError) as exc:
        log.warning("ignoring an unreadable append journal %s: %s", path, exc)
        return cut
    if journal is None or journal[0] != _base(committed):
        return cut  # none, or stale: the state moved on, so its transaction committed
    for key, (inode, size, atime, mtime, end) in journal[1].items():
        try:
            st = os.stat(paths[key])
        except FileNotFoundError:
            continue
        if st.st_size <= size or (end is not None and end <= size):
            continue  # nothing appended, or its own process took it back already
        if st.st_ino == inode:
            undo_append(paths[key], key == "json", size, end, (atime, mtime))
            cut = True
        elif _committed_copy(paths[key], key, st, state, size):
            # The directory was copied after the crash (``cp -r``: new inodes, the journal
            # with them): the copy is recognised by its committed content instead.
            undo_append(paths[key], key == "json", size, end)
            cut = True
    return cut


def undo_append(path: Path, is_json: bool, size: int, end: int | None,
                times_ns: tuple[int, int] | None = None) -> None:
    """Take back perfledger's uncommitted append to a mirror: the bytes from the committed
    ``size`` to ``end`` (where its appends ended). Bytes after ``end`` were written by
    someone else after it (the seed's own code appending a record, by another process) and
    are kept: the file becomes the committed one plus those (its times are then left as
    that writer left them). With nothing after ``end`` (or ``end`` unknown: an earlier
    release's journal), the file is cut back to ``size`` and its committed times."""
    if end is None or os.stat(path).st_size <= end:
        cut_back(path, is_json, size, times_ns)
        return
    if not _excise(path, is_json, size, end):
        log.warning("%s: what follows perfledger's uncommitted append is not a record appended "
                    "after it; cutting the file back to its committed size", path.name)
        cut_back(path, is_json, size, times_ns)


def _excise(path: Path, is_json: bool, size: int, end: int) -> bool:
    """Remove the bytes perfledger appended (``size`` to ``end``) and keep those after them.
    The seed's code appends a CSV row after the last one, and rewrites the JSON array with
    its record after the last one (``json.dump(indent=2)``, the mirror's own layout): the
    JSON's appended records sit between the committed records and the closing bracket, so
    what is removed there is ``[start, end - len("\n]"))`` and what is kept starts with the
    seed's ``,\n``. False (nothing changed) when the bytes after ``end`` are not shaped as
    such an append."""
    with open(path, "r+b") as f:
        if is_json:
            start = 1 if size <= len(EMPTY_JSON) else size - len(JSON_TAIL)
            f.seek(end - len(JSON_TAIL))
            rest = f.read()
            if not rest.startswith(b",\n") or not rest.rstrip().endswith(b"]"):
                return False
            if start == 1:  # the committed array was empty: the seed's record is now the first
                rest = rest[1:]
        else:
            start = size
            f.seek(end - 1)
            if f.read(1) != b"\n":
                return False
            rest = f.read()
        f.seek(start)
        f.write(rest)
        f.truncate(start + len(rest))
    log.info("%s: dropped an append whose transaction did not commit (%d bytes), kept %d bytes "
             "written after it", path.name, end - start, len(rest))
    return True


def _committed_copy(path: Path, key: str, st: os.stat_result, state: MirrorState | None, size: int) -> bool:
    """Whether ``path`` (not the journaled inode) starts with the committed file, whose
    size the journal recorded: its first ``size`` bytes have the committed content CRC."""
    want = state.files.get(key) if state is not None else None
    if want is None or want.crc is None or want.size != size:
        return False
    read = content_crc(path, st, KEEP[key], upto=size)
    return read is not None and read[0] == want.crc


def _recover_legacy(journal: Path, paths: Mapping[str, Path], state: MirrorState | None) -> bool:
    """An earlier release's journal, ``{"json": [size, atime_ns, mtime_ns, inode], ...}``:
    where the committed state still has a file's journaled inode and size, the bulk append
    never committed and the file, if longer, is cut back. Removed either way."""
    cut = False
    try:
        before = json.loads(journal.read_bytes())
        for key in APPENDED:
            size, atime, mtime, inode = (int(v) for v in before[key])
            want = state.files[key] if state is not None else None
            if want is not None and want.inode == inode and want.size == size:
                have = os.stat(paths[key])
                if have.st_ino == inode and have.st_size > size:
                    cut_back(paths[key], key == "json", size, (atime, mtime))
                    cut = True
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring an unreadable append journal %s: %s", journal, exc)
    journal.unlink(missing_ok=True)
    return cut


def cut_back(path: Path, is_json: bool, size: int, times_ns: tuple[int, int] | None = None) -> None:
    """Truncate a mirror to its first ``size`` bytes (the JSON with its closing bracket
    restored) and, given ``(atime, mtime)``, its times: it is the committed file again, byte
    for byte and by ``stat``."""
    with open(path, "r+b") as f:
        # Only what changed is written: an append that failed before writing a byte (a
        # file size limit, a full disk) leaves nothing to undo, and a write at its offset
        # would fail the same way.
        if os.fstat(f.fileno()).st_size != size:
            f.truncate(size)
        if is_json and size >= len(EMPTY_JSON):
            end = EMPTY_JSON if size == len(EMPTY_JSON) else JSON_TAIL
            f.seek(size - len(end))
            if f.read(len(end)) != end:
                f.seek(size - len(end))
                f.write(end)
    if times_ns is not None:
        os.utime(path, ns=times_ns)
    log.info("%s: dropped an append whose transaction did not commit", path.name)


def drop_torn_tail(path: Path, key: str, want: FileState | None, st: os.stat_result) -> FileState | None:
    """Drop the tail of an append that never committed and no journal covers, if that is
    what ``path`` holds (its structure is broken: the caller checked): the committed file
    (same inode, not shorter) whose committed content is intact (its CRC, read from the
    file: a rare path). Returns the repaired file's state, else None.

    A state converted from a release that kept no content CRC cannot tell an intact prefix:
    the tail is dropped on the identity alone, as that release did."""
    if want is None or st.st_ino != want.inode or st.st_size < want.size:
        return None
    if want.crc is not None:
        read = content_crc(path, st, KEEP[key], upto=want.size)
        if read is None or read[0] != want.crc:
            return None
    log.info("repairing %s: dropping %d uncommitted bytes", path.name, st.st_size - want.size)
    cut_back(path, key == "json", want.size)
    return FileState.of(os.stat(path), want.crc)
