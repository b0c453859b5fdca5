"""Taking back a mirror append whose transaction did not commit.

Appends are written inside the database's write transaction, before its commit; a bulk
append is written *during* the insert. If the transaction fails, the process cuts the files
back itself (:meth:`perfledger.mirrors.seed_files.SeedMirrors.abandon`). If the process dies, a journal
written before the bulk append started tells the next writer the files' committed sizes, and
it cuts them back: the records were never stored, so they must not be adopted from the
files (nor a row torn in the middle of a write).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .file_writes import atomic_write
from .rebuild import EMPTY_JSON, JSON_TAIL
from .state import Sig, digest_before

log = logging.getLogger("perfledger")

#: The journal's name in the ledger directory.
APPEND_JOURNAL = ".perfledger-append.json"


def cut_back(path: Path, is_json: bool, size: int, times_ns: tuple[int, int] | None = None) -> None:
    """Truncate a mirror to its first ``size`` bytes (the JSON with its closing bracket
    restored) and, given ``(atime, mtime)``, its times: it is the committed file again, byte
    for byte and by ``stat``."""
    with open(path, "r+b") as f:
        f.truncate(size)
        if is_json and size >= len(EMPTY_JSON):
            end = EMPTY_JSON if size == len(EMPTY_JSON) else JSON_TAIL
            f.seek(size - len(end))
            f.write(end)
    if times_ns is not None:
        os.utime(path, ns=times_ns)
    log.info("%s: dropped an append whose transaction did not commit", path.name)


def drop_torn_tail(path: Path, is_json: bool, want: Sig | None, have: Sig | None) -> bool:
    """Drop the tail of an append whose transaction never committed, if that is what
    ``path`` holds: broken structure (the caller checked), same inode as the committed state
    ``want``, not shorter, and its committed bytes unchanged (no journal needed)."""
    if want is None or have is None or have[0] != want[0] or int(have[1]) < int(want[1]):
        return False
    size = int(want[1])
    end = size - (len(JSON_TAIL) if is_json else 0)
    if len(want) > 3 and digest_before(path, end, str(want[3])) != want[3]:
        return False
    log.info("repairing %s: dropping %d uncommitted bytes", path.name, int(have[1]) - size)
    cut_back(path, is_json, size)
    return True


def write_journal(journal: Path, paths: dict[str, Path]) -> None:
    """Record the files' identities, sizes and times before a bulk append touches them."""
    before = {key: os.stat(path) for key, path in paths.items()}
    atomic_write(journal, [json.dumps(
        {k: [st.st_size, st.st_atime_ns, st.st_mtime_ns, st.st_ino] for k, st in before.items()}).encode()])


def recover(journal: Path, state: dict[str, Any], paths: dict[str, Path]) -> None:
    """Act on a journal left by a process that died during a bulk append (the caller holds
    the write lock, so that transaction is over). Where the committed state still has a
    file's size from before the append, the append never committed: the file (same inode,
    now longer) is cut back. Where the state has moved on, the append committed and only
    the journal is stale. A file is only cut back when it is the very file journaled (same
    inode, in the journal and the state) and longer. The journal is removed either way."""
    try:
        before = json.loads(journal.read_bytes())
        for key, path in paths.items():
            size, atime, mtime, inode = (int(v) for v in before[key])
            want = state.get(key)
            if isinstance(want, list) and len(want) > 1 and int(want[1]) == size and want[0] == inode:
                have = os.stat(path)
                if have.st_ino == inode and have.st_size > size:
                    cut_back(path, key == "json", size, (atime, mtime))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring an unreadable append journal %s: %s", journal, exc)
    journal.unlink(missing_ok=True)
