"""Whole mirror files written from the database: a rebuild (a mirror deleted, or records
adopted that the other file lacks), a clear, an export in the seed's layout.

Each file is written atomically from the store's records in id order, in batches: the same
bytes as the appends that would have built it (the formatting is shared, :mod:`.layout`).
Each writer returns the CRC-32 of the content it wrote (for the JSON, all but its closing
``\\n]``; see :mod:`.state`), so a rebuilt file's state is recorded without reading it back.
"""

from __future__ import annotations

import zlib
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
    """Write the three seed files from the database (an export)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / JSON_NAME, tx)
    write_csv(directory / CSV_NAME, tx)
    write_best(directory / BEST_NAME, tx)


def write_json(path: Path, tx: ReadTx) -> int:
    crc = 0

    def chunks() -> Iterable[bytes]:
        nonlocal crc
        first = True
        for _ids, batch in tx.iter_batches():
            piece = (b"[\n" if first else b",\n") + json_body(batch)
            crc = zlib.crc32(piece, crc)
            yield piece
            first = False
        yield EMPTY_JSON if first else JSON_TAIL  # not content: an append overwrites it

    atomic_write(path, chunks())
    return crc


def write_csv(path: Path, tx: ReadTx) -> int:
    crc = 0

    def chunks() -> Iterable[bytes]:
        nonlocal crc
        crc = zlib.crc32(csv_header())
        yield csv_header()
        for _ids, batch in tx.iter_batches():
            piece = csv_bytes(batch)
            crc = zlib.crc32(piece, crc)
            yield piece

    atomic_write(path, chunks())
    return crc


def write_empty(json_path: Path, csv_path: Path) -> tuple[int, int]:
    """The two record files without records (after a clear); their content CRCs."""
    atomic_write(json_path, [EMPTY_JSON])
    atomic_write(csv_path, [csv_header()])
    return 0, zlib.crc32(csv_header())


def write_best(path: Path, tx: ReadTx) -> int:
    data = best_json(tx.best()).encode()
    atomic_write(path, [data])
    return zlib.crc32(data)
