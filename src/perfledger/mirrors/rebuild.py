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
from dataclasses import dataclass
from pathlib import Path

from ..store.base import ReadTx
from .file_writes import atomic_write
from .layout import best_document, best_json, best_line, csv_bytes, csv_header, json_body
from .state import FileState

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


@dataclass(frozen=True)
class BestLines:
    """The best-models document a transaction wrote, one line per ticker (in the document's
    order), and what it is the document of: the file's committed state and the store's
    generation (bumped by a clear, a metric registered, a recompute, in any process). A
    later write whose committed best file and generation are these re-reads only the
    tickers it changed instead of every ticker's entries (a log() that beats a best would
    otherwise read and re-encode every ticker x metric, ~45 ms at 500 tickers)."""

    lines: dict[str, bytes]
    state: FileState
    generation: str | None


def write_best_lines(path: Path, tx: ReadTx, known: BestLines | None, tickers: set[str] | None,
                     generation: str | None, committed: FileState | None) -> tuple[int, dict[str, bytes]]:
    """Rewrite the best-models document; its CRC and lines. With ``known`` describing the
    committed file (same state, same generation) and ``tickers`` the only ones changed (all
    already in it), only their entries are read; otherwise every ticker's (as
    :func:`write_best`). The bytes are the same either way."""
    if (known is not None and tickers is not None and committed is not None
            and known.state == committed and known.generation == generation
            and len(tickers) <= _FEW_TICKERS and tickers.issubset(known.lines)):
        lines = dict(known.lines)
        for t in tickers:
            lines[t] = best_line(t, tx.best(t))
    else:
        lines = {t: best_line(t, v) for t, v in tx.best().items()}
    data = best_document(list(lines.values()))
    atomic_write(path, [data])
    return zlib.crc32(data), lines


#: More tickers changed than this: one read of every entry is cheaper than one per ticker.
_FEW_TICKERS = 32
