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
* The committed state of each file (inode, size, mtime) is written to the database in the
  same transaction. A process killed between the file write and the commit leaves bytes
  past the committed size: the next open or write truncates them. Anything else that does
  not match (a file deleted, replaced or edited by hand) is rebuilt from the database.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .batch import Batch
from .mirror_format import best_json, csv_bytes, csv_header, json_body
from .store.base import WriteTx

log = logging.getLogger("perfledger")

JSON_NAME = "model_performance.json"
CSV_NAME = "model_performance.csv"
BEST_NAME = "best_models.json"
_META_KEY = "mirrors"
_EMPTY_JSON = b"[]"
_JSON_TAIL = b"\n]"


def _sig(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write a whole file so that readers see the old or the new one, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_seed_files(directory: Path, tx: WriteTx) -> None:
    """Write the three seed files from the database (used by rebuilds and exports)."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / JSON_NAME, tx)
    _write_csv(directory / CSV_NAME, tx)
    _write_best(directory / BEST_NAME, tx)


def _write_json(path: Path, tx: WriteTx) -> None:
    def chunks() -> Iterable[bytes]:
        first = True
        for batch in tx.iter_batches():
            yield (b"[\n" if first else b",\n") + json_body(batch)
            first = False
        yield _EMPTY_JSON if first else _JSON_TAIL

    _atomic_write(path, chunks())


def _write_csv(path: Path, tx: WriteTx) -> None:
    def chunks() -> Iterable[bytes]:
        yield csv_header()
        for batch in tx.iter_batches():
            yield csv_bytes(batch)

    _atomic_write(path, chunks())


def _write_best(path: Path, tx: WriteTx) -> None:
    _atomic_write(path, [best_json(tx.best()).encode()])


class PreparedAppend:
    """A batch's mirror bytes, formatted outside the write lock.

    Small batches (a single ``log()``) are formatted inline before the lock is taken, so
    writers hold it only for the database work and two file writes. A large batch is
    formatted in background threads (the CSV by Arrow's writer, which releases the GIL; the
    JSON by orjson) while the caller inserts it into the database; :meth:`wait` joins them.
    """

    _THREAD_FROM = 2_000

    def __init__(self, batch: Batch):
        if len(batch) < self._THREAD_FROM:
            self._json: Future[bytes] | bytes = json_body(batch)
            self._csv: Future[bytes] | bytes = csv_bytes(batch)
            return
        pool = _formatters()
        self._csv = pool.submit(csv_bytes, batch)
        self._json = pool.submit(json_body, batch)

    def wait(self) -> tuple[bytes, bytes]:
        """The (json, csv) bytes, once formatted (a formatter's exception is raised here)."""
        def done(v: Future[bytes] | bytes) -> bytes:
            return v.result() if isinstance(v, Future) else v

        return done(self._json), done(self._csv)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:
    # A forked child inherits the executor but not its threads: it must start its own.
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _formatters() -> ThreadPoolExecutor:
    """Two threads for formatting large batches, started on first need."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="perfledger-mirror")
        return _POOL


class SeedMirrors:
    """The mirror files of one ledger directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.json_path = directory / JSON_NAME
        self.csv_path = directory / CSV_NAME
        self.best_path = directory / BEST_NAME

    # ------------------------------------------------------------------ state

    def _load_state(self, tx: WriteTx) -> dict[str, list[int]]:
        raw = tx.get_meta(_META_KEY)
        return json.loads(raw) if raw else {}

    def _save_state(self, tx: WriteTx) -> None:
        state = {
            "json": _sig(self.json_path),
            "csv": _sig(self.csv_path),
            "best": _sig(self.best_path),
        }
        tx.set_meta(_META_KEY, json.dumps(state))

    def sync(self, tx: WriteTx) -> bool:
        """Bring the files back in step with the committed database; True if anything was
        repaired. Cheap when nothing is wrong: three ``stat`` calls and one meta read."""
        state = self._load_state(tx)
        repaired = False
        for key, path, tail in (("json", self.json_path, True), ("csv", self.csv_path, False)):
            want, have = state.get(key), _sig(path)
            if want is not None and have == want:
                continue
            if want is not None and have is not None and have[0] == want[0] and have[1] > want[1]:
                # Bytes past the committed size: an append whose transaction never committed.
                log.info("repairing %s: dropping %d uncommitted bytes", path.name, have[1] - want[1])
                with open(path, "r+b") as f:
                    f.truncate(want[1])
                    if tail:
                        end = _EMPTY_JSON if want[1] == len(_EMPTY_JSON) else _JSON_TAIL
                        f.seek(want[1] - len(end))
                        f.write(end)
            else:
                log.info("rebuilding %s from the database", path.name)
                (_write_json if tail else _write_csv)(path, tx)
            repaired = True
        if state.get("best") is None or _sig(self.best_path) != state["best"]:
            _write_best(self.best_path, tx)
            repaired = True
        if repaired:
            self._save_state(tx)
        return repaired

    # ------------------------------------------------------------------ writes

    def append(self, tx: WriteTx, prepared: PreparedAppend, best_changed: bool) -> None:
        """Append a batch inside its write transaction, after :meth:`sync` ran in it (a
        rebuild must not already hold the batch)."""
        json_body, csv_rows = prepared.wait()
        self._append_json(json_body)
        self._append_csv(csv_rows)
        if best_changed:
            _write_best(self.best_path, tx)
        self._save_state(tx)

    def _append_json(self, body: bytes) -> None:
        fd = os.open(self.json_path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if size <= len(_EMPTY_JSON):
                data, offset = b"\n" + body + _JSON_TAIL, 1
            else:
                data, offset = b",\n" + body + _JSON_TAIL, size - len(_JSON_TAIL)
            # One write call replaces the closing bracket and adds the records.
            written = os.pwrite(fd, data, offset)
            while written < len(data):
                written += os.pwrite(fd, data[written:], offset + written)
        finally:
            os.close(fd)

    def _append_csv(self, rows: bytes) -> None:
        with open(self.csv_path, "ab") as f:
            f.write(rows)

    def reset(self, tx: WriteTx) -> None:
        """After a clear: empty files, rewritten atomically."""
        _atomic_write(self.json_path, [_EMPTY_JSON])
        _atomic_write(self.csv_path, [csv_header()])
        _write_best(self.best_path, tx)
        self._save_state(tx)

    def write_best(self, tx: WriteTx) -> None:
        _write_best(self.best_path, tx)
        self._save_state(tx)

    def rebuild(self, tx: WriteTx) -> None:
        write_seed_files(self.directory, tx)
        self._save_state(tx)
