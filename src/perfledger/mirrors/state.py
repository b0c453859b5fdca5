"""One mirror file's committed state, and the checks against it.

A file's state is ``[inode, size, mtime_ns, digest]``: its identity, and a CRC-32 of the
bytes an append never changes (the last :data:`DIGEST_SPAN` before the JSON's closing
``\\n]``). Every ``log()`` probes three files against it, so a probe is one open, one
``fstat`` and one read of at most 4 KiB, and the state after an append is computed from the
bytes written, not read back. A CRC-32 of a file's whole content (kept beside the states)
tells a copy of the committed file from an edited one in one sequential read.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path
from typing import Any

Sig = list[int | str]  # [inode, size, mtime_ns, digest]: one file's committed state
DIGEST_SPAN = 4096
_READ_CHUNK = 1 << 20


def tail_hash(region: bytes) -> str:
    """The digest of a file's last bytes: CRC-32, which catches any change to them but for a
    chance of 2^-32, at a twentieth of blake2b's cost (blake2b of 4 KiB per file was a tenth
    of a whole ``log()``). States committed by earlier releases hold a blake2b digest; see
    :func:`legacy_hash`."""
    return f"crc32:{zlib.crc32(region):08x}"


def legacy_hash(region: bytes) -> str:
    return hashlib.blake2b(region, digest_size=12).hexdigest()


def hash_like(want: str, region: bytes) -> str:
    """``region``'s digest in the same kind as the committed ``want``."""
    return tail_hash(region) if want.startswith("crc32:") else legacy_hash(region)


def digest_before(path: Path, end: int, like: str) -> str:
    """A digest (of the kind of ``like``) of the file's bytes just before ``end``: they
    never change on an append."""
    fd = os.open(path, os.O_RDONLY)
    try:
        start = max(0, end - DIGEST_SPAN)
        return hash_like(like, os.pread(fd, end - start, start))
    finally:
        os.close(fd)


def probe(path: Path, keep: int = 0) -> tuple[Sig | None, bytes]:
    """The file's state (inode, size, mtime and a digest of the bytes before the last
    ``keep``: the bytes an append overwrites, the JSON array's closing ``\\n]``) and those
    digested bytes, from which the state after an append is computed without reading the
    file again."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, b""
    try:
        st = os.fstat(fd)
        end = max(0, st.st_size - keep)
        start = max(0, end - DIGEST_SPAN)
        region = os.pread(fd, end - start, start)
    finally:
        os.close(fd)
    return [st.st_ino, st.st_size, st.st_mtime_ns, tail_hash(region)], region


def content_crc(path: Path, sig: Sig | None, keep: int) -> tuple[int, bytes] | None:
    """The CRC-32 of the file's content (all but its last ``keep`` bytes), read sequentially
    in 1 MiB chunks, and those last bytes; None when the file is no longer the one ``sig``
    probed (its inode, size or mtime changed since), so a CRC is never recorded against
    another file's state."""
    if sig is None:
        return None
    try:
        with open(path, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            if [st.st_ino, st.st_size, st.st_mtime_ns] != list(sig[:3]):
                return None
            left, crc = max(0, st.st_size - keep), 0
            buf = memoryview(bytearray(_READ_CHUNK))
            while left:
                n = f.readinto(buf[: min(left, _READ_CHUNK)])
                if not n:
                    return None  # shrank under us
                crc, left = zlib.crc32(buf[:n], crc), left - n
            return crc, f.read(keep)
    except FileNotFoundError:
        return None


def appended(st: os.stat_result, region: bytes, added: bytes) -> tuple[Sig, bytes]:
    """The state of a file after ``added`` was appended right after ``region`` (the digested
    bytes before the append), from the file's new ``stat``: no read of the file."""
    region = (region + added)[-DIGEST_SPAN:]
    return [st.st_ino, st.st_size, st.st_mtime_ns, tail_hash(region)], region


def same(want: list[int | str] | None, have: tuple[Sig | None, bytes]) -> bool:
    """Is the file as committed? ``have`` is a probe. States written before the digest
    existed have three fields; states written before CRC-32, a blake2b digest."""
    sig, region = have
    if want is None or sig is None:
        return False
    if len(want) > 3 and not str(want[3]).startswith("crc32:"):
        sig = [*sig[:3], legacy_hash(region)]
    return list(sig[: len(want)]) == list(want)


def crcs_of(state: dict[str, Any]) -> dict[str, int]:
    """The content CRCs a state holds (none in a state saved by an earlier release)."""
    content = state.get("content")
    if not isinstance(content, dict):
        return {}
    return {k: int(v[6:], 16) for k, v in content.items()
            if isinstance(v, str) and v.startswith("crc32:") and len(v) == 14}
