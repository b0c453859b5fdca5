"""Writing the mirror files: whole files atomically, appends from bytes in pieces.

A bulk load's mirror bytes come as :data:`Parts`, views of Arrow's buffers, so a million
records are written and digested without ever being copied into one ``bytes`` (a copy of
300 MB costs half a second of page faults and memory traffic).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import weakref
import zlib
from collections.abc import Iterable
from pathlib import Path

#: Bytes in consecutive pieces: written with ``pwritev``, digested piece by piece.
Parts = tuple["bytes | memoryview", ...]
_IOV_MAX = 1024  # the pieces one pwritev takes (Linux's IOV_MAX)


def parts_crc(parts: Parts, crc: int = 0) -> int:
    """CRC-32 of the pieces' concatenation, continuing ``crc``."""
    for p in parts:
        crc = zlib.crc32(p, crc)
    return crc


def parts_tail(parts: Parts, n: int) -> bytes:
    """The last ``n`` bytes of the pieces' concatenation."""
    if parts and len(parts[-1]) >= n:  # one piece holds them (a bulk append's last chunk)
        return bytes(parts[-1][-n:])
    if all(isinstance(p, bytes) for p in parts):  # a single log(): a few hundred bytes
        return b"".join(parts)[-n:]
    out: list[bytes] = []
    for p in reversed(parts):
        if n <= 0:
            break
        piece = bytes(p[-n:]) if len(p) > n else bytes(p)
        out.append(piece)
        n -= len(piece)
    return b"".join(reversed(out))


def write_at(fd: int, parts: Parts, offset: int) -> None:
    """Write the pieces at ``offset`` in as few ``pwritev`` calls as the kernel allows; a
    short write resumes where it stopped. A single log()'s few hundred bytes are joined and
    written with one ``pwrite`` (a third of the cost of building the views)."""
    if all(isinstance(p, bytes) for p in parts):
        data = b"".join(parts)
        written = os.pwrite(fd, data, offset)
        while written < len(data):
            written += os.pwrite(fd, data[written:], offset + written)
        return
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        done = os.pwritev(fd, views[:_IOV_MAX], offset)
        offset += done
        while views and done >= len(views[0]):
            done -= len(views[0])
            views.pop(0)
        if done:
            views[0] = views[0][done:]


def atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write a whole file so that readers see the old or the new one, never a mix. The file
    gets the mode ``open()`` would give it (0666 less the umask), not a temporary file's 0600."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        exc.filename = str(path)  # the file meant, not its temporary name
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class HeldFiles:
    """Files kept open between write transactions, one descriptor per key.

    Why: every ``log()`` appends to the two record files; opening and closing both each
    time cost four system calls and a path walk each, where the append itself is one
    ``pwrite``. A descriptor is used only while it is still the file at its path: the
    caller passes the ``stat`` of the path it made under the write lock in the same
    transaction (a file replaced since, by a rebuild, another tool's rename or a restored
    copy, has another inode, and is opened afresh). An open descriptor keeps its inode
    alive, so an equal (device, inode) is the same file, never a reused number."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[int, int, int]] = {}  # key -> (fd, st_dev, st_ino)
        self._finalizer = weakref.finalize(self, _close_all, self._held)

    def fd(self, key: str, path: Path, flags: int, st: os.stat_result | None) -> int:
        """A descriptor of the file at ``path``, which ``st`` (None: unknown) describes."""
        held = self._held.get(key)
        if held is not None:
            if st is not None and held[1] == st.st_dev and held[2] == st.st_ino:
                return held[0]
            del self._held[key]
            os.close(held[0])
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            exc.filename = exc.filename or str(path)
            raise
        now = os.fstat(fd)
        self._held[key] = (fd, now.st_dev, now.st_ino)
        return fd

    def close(self) -> None:
        """Close every descriptor (the next use opens the file again)."""
        _close_all(self._held)


def _close_all(held: dict[str, tuple[int, int, int]]) -> None:
    for fd, _, _ in held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    held.clear()
