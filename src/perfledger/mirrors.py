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

import csv
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .batch import Batch
from .records import SEED_FIELDS
from .store.base import WriteTx

log = logging.getLogger("perfledger")

JSON_NAME = "model_performance.json"
CSV_NAME = "model_performance.csv"
BEST_NAME = "best_models.json"
CSV_COLUMNS = (*SEED_FIELDS, "metrics", "params", "tags")
_META_KEY = "mirrors"
_EMPTY_JSON = b"[]"
_JSON_TAIL = b"\n]"


def record_json(rec: dict[str, Any]) -> str:
    """A seed record as one line of JSON; metrics/params/tags only when present."""
    out = {k: rec[k] for k in SEED_FIELDS}
    for k in ("metrics", "params", "tags"):
        if rec.get(k):
            out[k] = rec[k]
    return json.dumps(out, ensure_ascii=False)


def csv_rows(records: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    # RFC 4180 line endings: with "\r\n" as terminator the writer quotes any field holding
    # "\r" or "\n" (with a bare "\n" terminator a lone "\r" in notes would go unquoted).
    writer = csv.writer(buf, lineterminator="\r\n")
    for rec in records:
        row: list[Any] = ["" if rec[k] is None else rec[k] for k in SEED_FIELDS]
        for k in ("metrics", "params", "tags"):
            v = rec.get(k)
            row.append(json.dumps(v, ensure_ascii=False, sort_keys=True) if v else "")
        writer.writerow(row)
    return buf.getvalue()


def _csv_header() -> bytes:
    return (",".join(CSV_COLUMNS) + "\r\n").encode()


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
        for recs in tx.iter_records():
            body = ",\n".join(record_json(r) for r in recs)
            yield (b"[\n" if first else b",\n") + body.encode()
            first = False
        yield _EMPTY_JSON if first else _JSON_TAIL

    _atomic_write(path, chunks())


def _write_csv(path: Path, tx: WriteTx) -> None:
    def chunks() -> Iterable[bytes]:
        yield _csv_header()
        for recs in tx.iter_records():
            yield csv_rows(recs).encode()

    _atomic_write(path, chunks())


def best_json(best: dict[str, Any]) -> str:
    """The best-models document, one ticker per line: readable, and written by the C JSON
    encoder (an ``indent=`` would force the pure-Python one, ten times slower)."""
    if not best:
        return "{}\n"
    lines = [
        f"  {json.dumps(t, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
        for t, v in best.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _write_best(path: Path, tx: WriteTx) -> None:
    _atomic_write(path, [best_json(tx.best()).encode()])


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

    def append(self, tx: WriteTx, batch: Batch, best_changed: bool) -> None:
        """Append a batch inside its write transaction, after :meth:`sync` ran in it and
        before the batch's records were visible to a rebuild."""
        step = 20_000
        for start in range(0, len(batch), step):
            recs = [batch.seed_dict(i) for i in range(start, min(start + step, len(batch)))]
            self._append_json(recs)
            self._append_csv(recs)
        if best_changed:
            _write_best(self.best_path, tx)
        self._save_state(tx)

    def _append_json(self, recs: list[dict[str, Any]]) -> None:
        body = ",\n".join(record_json(r) for r in recs).encode()
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

    def _append_csv(self, recs: list[dict[str, Any]]) -> None:
        with open(self.csv_path, "ab") as f:
            f.write(csv_rows(recs).encode())

    def reset(self, tx: WriteTx) -> None:
        """After a clear: empty files, rewritten atomically."""
        _atomic_write(self.json_path, [_EMPTY_JSON])
        _atomic_write(self.csv_path, [_csv_header()])
        _write_best(self.best_path, tx)
        self._save_state(tx)

    def write_best(self, tx: WriteTx) -> None:
        _write_best(self.best_path, tx)
        self._save_state(tx)

    def rebuild(self, tx: WriteTx) -> None:
        write_seed_files(self.directory, tx)
        self._save_state(tx)
