"""Taking back a mirror append whose transaction did not commit.

Appends are written inside the database's write transaction, before its commit (a bulk
append during the insert). Records that were never stored must not stay in the files,
where the next open would adopt them (or read a half-written row as one):

* A transaction that fails is taken back by its own process, while it still holds the
  write lock (:class:`~.transaction.MirrorTransaction`): :func:`cut_back` to the committed
  size, with the committed mtime.
* A process killed between an append and its commit cannot. So before a transaction's
  first append, the files' identities, sizes and times go into the **journal**
  (:data:`JOURNAL`), with a CRC of the committed state the transaction started from. The
  next writer that finds the files out of step (an append left them longer) reads it
  (:func:`recover`): if the committed state is still that one, the journaled transaction
  never committed and each file it appended to is cut back; otherwise its commit moved the
  state on and the journal is stale. (Comparing the whole committed state, rather than a
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

_MAGIC = b"PLJ1"
#: Magic, CRC-32 of the committed state's text, then per appended file its inode, size,
#: atime_ns and mtime_ns; a CRC-32 of all that follows it.
_BODY = struct.Struct("<4sI" + "QQqq" * len(APPENDED))
_CHECK = struct.Struct("<I")


def _base(text: str | None) -> int:
    return zlib.crc32((text or "").encode())


class Journal:
    """The journal file of one ledger directory, written before each transaction's first
    append. Kept open between transactions: opening and closing it for every ``log()``
    cost 9 µs here, the ``pwrite`` itself about 1."""

    def __init__(self, path: Path):
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, committed: str | None, stats: Mapping[str, os.stat_result]) -> None:
        """Record the files as they are (``stats``) and the committed state the
        transaction started from (``committed``: the state's text as stored)."""
        fields: list[int] = []
        for key in APPENDED:
            st = stats[key]
            fields += [st.st_ino, st.st_size, st.st_atime_ns, st.st_mtime_ns]
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


def _read_journal(path: Path) -> tuple[int, dict[str, tuple[int, int, int, int]]] | None:
    """(committed state's CRC, per file (inode, size, atime_ns, mtime_ns)); None when
    there is no journal. Raises ValueError when it does not read."""
    try:
        with open(path, "rb") as f:
            data = f.read(_BODY.size + _CHECK.size)
    except FileNotFoundError:
        return None
    if len(data) < _BODY.size + _CHECK.size:
        raise ValueError("too short")
    body = data[: _BODY.size]
    if _CHECK.unpack(data[_BODY.size:])[0] != zlib.crc32(body):
        raise ValueError("checksum mismatch")
    magic, base, *fields = _BODY.unpack(body)
    if magic != _MAGIC:
        raise ValueError("not a perfledger journal")
    files = {key: tuple(fields[4 * i: 4 * i + 4]) for i, key in enumerate(APPENDED)}
    return base, files  # type: ignore[return-value]


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
    for key, (inode, size, atime, mtime) in journal[1].items():
        try:
            st = os.stat(paths[key])
        except FileNotFoundError:
            continue
        if st.st_size <= size:
            continue
        if st.st_ino == inode:
            cut_back(paths[key], key == "json", size, (atime, mtime))
            cut = True
        elif _committed_copy(paths[key], key, st, state, size):
            # The directory was copied after the crash (``cp -r``: new inodes, the journal
            # with them): the copy is recognised by its committed content instead.
            cut_back(paths[key], key == "json", size)
            cut = True
    return cut


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
