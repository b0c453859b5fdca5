"""Run test code as a user who may only read a ledger.

Root ignores file permissions, so a test run as root (containers) forks a child that drops to
``nobody`` (uid/gid 65534) after the parent has imported everything the child will use (the
interpreter and its standard library may live where ``nobody`` cannot read, e.g. a pyenv
under ``/root``). Run as an ordinary user, the child keeps the user and the test makes the
ledger read-only with ``chmod`` (files 0444, directory 0555), which is what ``os.access``
and SQLite see for another user's 0644/0755 files. Off CI, a machine where neither works
skips with the reason; with ``CI=true`` that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import stat
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

NOBODY = 65534
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SRC = str(Path(__file__).resolve().parents[1] / "src")


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the read-only tests must run)")
    pytest.skip(reason)


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """A directory under the system temp dir that other users may enter and read (0755;
    pytest's own ``tmp_path`` is 0700), removed afterwards."""
    if not hasattr(os, "fork"):
        skip_or_fail("needs os.fork to run a reader as another user")
    base = Path(tempfile.mkdtemp(prefix="perfledger-ro-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for path in [base, *base.rglob("*")]:  # undo make_foreign, so it can be removed
            owner_bits = stat.S_IRWXU if path.is_dir() else stat.S_IRUSR | stat.S_IWUSR
            with contextlib.suppress(OSError):
                path.chmod(path.stat().st_mode | owner_bits)
        shutil.rmtree(base, ignore_errors=True)


def make_foreign(directory: Path) -> None:
    """Make ``directory`` look like another user's ledger (0644 files, 0755 directory) to the
    reader. As root nothing is needed: the files are root's and the reader is ``nobody``."""
    if IS_ROOT:
        return
    for path in directory.iterdir():
        path.chmod(0o555 if path.is_dir() else 0o444)
    directory.chmod(0o555)


def snapshot(directory: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every file's mode, size, mtime and bytes: what "nothing changed" compares."""
    out = {}
    for path in sorted(directory.iterdir()):
        st = path.stat()
        out[path.name] = (st.st_mode, st.st_size, st.st_mtime_ns, path.read_bytes())
    return out


class Reader:
    """A forked child running ``fn`` as the reading user; :meth:`result` returns its value."""

    def __init__(self, fn: Callable[[], Any]):
        read_end, write_end = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into pytest
            os.close(read_end)
            try:
                payload: tuple[Any, ...]
                try:
                    if IS_ROOT:
                        os.setgroups([])
                        os.setgid(NOBODY)
                        os.setuid(NOBODY)
                except OSError as exc:
                    payload = ("cannot", f"cannot switch to uid {NOBODY}: {exc}")
                else:
                    try:
                        payload = ("ok", fn())
                    except BaseException as exc:  # reported to the parent, with its traceback
                        payload = ("raised", repr(exc), traceback.format_exc())
                data = pickle.dumps(payload)
                with os.fdopen(write_end, "wb") as f:
                    f.write(data)
            finally:
                os._exit(0)
        os.close(write_end)
        self._read_end = read_end

    def result(self) -> Any:
        with os.fdopen(self._read_end, "rb") as f:
            data = f.read()
        os.waitpid(self.pid, 0)
        assert data, "the reader process died without reporting"
        kind, *rest = pickle.loads(data)
        if kind == "cannot":
            skip_or_fail(rest[0])
        if kind == "raised":
            raise AssertionError(f"the reader raised {rest[0]}:\n{rest[1]}")
        return rest[0]


def as_reader(fn: Callable[[], Any]) -> Any:
    """``fn()`` run as the reading user; its value (pickled back)."""
    return Reader(fn).result()
