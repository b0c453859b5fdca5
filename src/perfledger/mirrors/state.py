"""The mirror files' committed state: one versioned record, written to the database in the
same transaction as the records the files show.

:class:`MirrorState` holds, per file, its size, the CRC-32 of its content, its inode and
its mtime (:class:`FileState`), and ``upto``, the highest record id the files hold. Why
each field is there:

* ``inode``, ``size``, ``mtime_ns``: the file's identity. A file whose identity is the
  committed one is in step, and telling so costs one ``stat`` and no read: every write
  asks (:meth:`FileState.is_file`). Only a change that keeps the inode, the size and the
  mtime (a same-size edit made within one tick of the file system's clock, or one whose
  mtime was put back on purpose) passes unseen: neither perfledger nor the seed's code
  makes one (an append grows a file; a rewrite of the seed's adds a record, or replaces the
  file).
* ``crc``: the CRC-32 of the file's content, the JSON without its closing ``\\n]`` (the
  bytes an append overwrites). A restored copy of the directory (``cp -r``, ``rsync``,
  ``tar``) has new inodes and mtimes; its files are the committed ones when their size and
  content CRC are (one sequential read, after which their new identity is recorded). Each
  append extends it from the bytes it wrote, so it is never read back. It also tells a torn
  tail, left by a process killed mid-append, from an edit of the committed bytes.
* ``upto``: records a ``Ledger(dir, mirrors=False)`` stored beyond it are appended to the
  files at the next write of a ledger that keeps them.

Stored as JSON under the ``pl_meta`` key ``"mirrors"``, with ``"v": 2``. Each file's
identity is written as the ``[inode, size, mtime_ns]`` list every earlier release reads
(release 59663d5 wrote exactly that), so an earlier release running beside this one finds
the files in step rather than adopting and rewriting them; the CRCs are a separate
``"crc"`` member it ignores. :func:`parse_state` reads that and every earlier shape.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

#: The ``pl_meta`` key of the state.
STATE_KEY = "mirrors"
#: The three files, by the keys the state uses.
KEYS = ("json", "csv", "best")
VERSION = 2
#: Per file, the bytes at its end an append overwrites (the JSON array's closing ``\n]``):
#: its content, whose CRC-32 the state keeps, is everything before them.
KEEP = {"json": 2, "csv": 0, "best": 0}
_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class FileState:
    """One file as committed. ``crc`` is None only in a state converted from one saved by
    an earlier release that kept no content CRC."""

    size: int
    crc: int | None
    inode: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result, crc: int | None) -> FileState:
        return cls(st.st_size, crc, st.st_ino, st.st_mtime_ns)

    def is_file(self, st: os.stat_result | None) -> bool:
        """Is the file ``st`` describes the committed one, by its identity (no read)?"""
        return (st is not None and st.st_ino == self.inode and st.st_size == self.size
                and st.st_mtime_ns == self.mtime_ns)


@dataclass(frozen=True, slots=True)
class MirrorState:
    """The three files as committed (a file never written is None) and the highest record
    id they hold."""

    files: Mapping[str, FileState | None] = field(default_factory=lambda: dict.fromkeys(KEYS))
    upto: int = 0
    version: int = VERSION

    def in_step(self, stats: Mapping[str, os.stat_result | None]) -> bool:
        """Whether every file is the committed one by its identity (see :func:`stat_files`)."""
        for key in KEYS:
            want = self.files[key]
            if want is None or not want.is_file(stats[key]):
                return False
        return True

    def with_file(self, key: str, file: FileState | None) -> MirrorState:
        return replace(self, files={**self.files, key: file})

    def dumps(self) -> str:
        """The JSON stored in ``pl_meta`` (see the module doc for its layout): what
        ``json.dumps(..., separators=(",", ":"))`` writes, spelled directly (every ``log()``
        saves one; the encoder took a fifth of the mirrors' share of it)."""
        files, crcs = [], []
        for key in KEYS:
            f = self.files[key]
            files.append(f'"{key}":null' if f is None else f'"{key}":[{f.inode},{f.size},{f.mtime_ns}]')
            if f is not None and f.crc is not None:
                crcs.append(f'"{key}":{f.crc}')
        return f'{{"v":{self.version},{",".join(files)},"crc":{{{",".join(crcs)}}},"upto":{self.upto}}}'


def parse_state(text: str | None, last_id: int) -> MirrorState | None:
    """The state stored as ``text``, whichever release saved it; None when there is none
    (a new database). ``last_id`` (the database's highest record id) stands for ``upto``
    in a state saved before it existed: those releases mirrored every record they stored.

    The shapes, oldest first (each file's entry is null when the file was missing):

    1. ``{"json": [inode, size, mtime_ns], "csv": [...], "best": [...]}`` (release 59663d5).
    2. A fourth element, a blake2b digest of the file's last 4 KiB (before the JSON's
       ``\\n]``), in hex; then the same as ``"crc32:<8 hex digits>"``. Dropped: the
       identity says whether a file is in step, the content CRC whether a copy is.
    3. ``"content": {"json": "crc32:<8 hex>", ...}``: the content CRCs, and ``"upto"``.
    4. Version 2 (``"v": 2``): the three ``[inode, size, mtime_ns]`` lists, ``"crc":
       {"json": <int>, ...}`` and ``"upto"``.

    A state that does not parse, or saved by a later version, yields every file unknown:
    nothing in it is trusted, the files are read and adopted as out of step, none lost."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("v", 1) not in (1, VERSION):
        return MirrorState(upto=last_id)
    if doc.get("v") == VERSION:
        crcs = {k: v for k, v in (doc.get("crc") or {}).items() if isinstance(v, int)}
    else:
        crcs = {k: int(v[6:], 16) for k, v in (doc.get("content") or {}).items()
                if isinstance(v, str) and v.startswith("crc32:") and len(v) == 14}
    files: dict[str, FileState | None] = {}
    for key in KEYS:
        entry = doc.get(key)
        if isinstance(entry, list) and len(entry) >= 3 and all(isinstance(v, int) for v in entry[:3]):
            inode, size, mtime_ns = entry[:3]
            files[key] = FileState(size, crcs.get(key), inode, mtime_ns)
        else:
            files[key] = None
    upto = doc.get("upto")
    return MirrorState(files, upto if isinstance(upto, int) else last_id)


def stat_files(paths: Mapping[str, Path]) -> dict[str, os.stat_result | None]:
    """Each file's ``stat`` (None when it is missing): the only I/O an in-step write makes
    to tell so."""
    out: dict[str, os.stat_result | None] = {}
    for key, path in paths.items():
        try:
            out[key] = os.stat(path)
        except FileNotFoundError:
            out[key] = None
    return out


def content_crc(
    path: Path, st: os.stat_result, keep: int, upto: int | None = None
) -> tuple[int, bytes] | None:
    """The CRC-32 of the file's content (its first ``upto`` bytes less ``keep``; by default
    all but its last ``keep``), read sequentially in 1 MiB chunks, and the ``keep`` bytes
    after it; None when the file is no longer the one ``st`` describes (its inode, size or
    mtime changed since), so a CRC is never recorded against another file's identity."""
    try:
        with open(path, "rb", buffering=0) as f:
            now = os.fstat(f.fileno())
            if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
                return None
            end = st.st_size if upto is None else min(upto, st.st_size)
            left, crc = max(0, end - keep), 0
            buf = memoryview(bytearray(min(_READ_CHUNK, max(left, 1))))
            while left:
                n = f.readinto(buf[: min(left, len(buf))])
                if not n:
                    return None  # shrank under us
                crc, left = zlib.crc32(buf[:n], crc), left - n
            return crc, f.read(keep)
    except FileNotFoundError:
        return None
