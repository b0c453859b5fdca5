"""Whole mirror files written from the database: a rebuild (a mirror deleted, or records
adopted that the other file lacks), a copy of the ledger, an export in the seed's layout.

Each file is written atomically from the store's records in id order, in batches: the same
bytes as the appends that would have built it (the formatting is shared, :mod:`.mirror_format`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..store.base import ReadTx
from .file_writes import atomic_write
from .layout import best_json, csv_bytes, csv_header, json_body

JSON_NAME = "model_performance.json"
CSV_NAME = "model_performance.csv"
BEST_NAME = "best_models.json"
EMPTY_JSON = b"[]"
JSON_TAIL = b"\n]"


def write_seed_files(directory: Path, tx: ReadTx) -> None:
    """Write the three seed files from the database (used by rebuilds and exports)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / JSON_NAME, tx)
    write_csv(directory / CSV_NAME, tx)
    write_best(directory / BEST_NAME, tx)


def write_json(path: Path, tx: ReadTx) -> None:
    def chunks() -> Iterable[bytes]:
        first = True
        for _ids, batch in tx.iter_batches():
            yield (b"[\n" if first else b",\n") + json_body(batch)
            first = False
        yield EMPTY_JSON if first else JSON_TAIL

    atomic_write(path, chunks())


def write_csv(path: Path, tx: ReadTx) -> None:
    def chunks() -> Iterable[bytes]:
        yield csv_header()
        for _ids, batch in tx.iter_batches():
            yield csv_bytes(batch)

    atomic_write(path, chunks())


def write_best(path: Path, tx: ReadTx) -> bytes:
    data = best_json(tx.best()).encode()
    atomic_write(path, [data])
    return data
