"""The bytes of the seed's files: records as JSON and CSV, and the best-models document.

Formatting is apart from the files themselves (:mod:`.seed_files`) because exports write
the same layouts: a mirror, an export and a rebuild of the same records are byte-identical.
:class:`PreparedAppend` formats a batch's bytes before (or while) it is stored, so a
writer holds the write lock only for the database and the two file writes.

A bulk load has two fast paths, a pair: its JSON is spelled by Arrow (:mod:`.columns`,
which releases the GIL), and both files are formatted and written in a background thread
while the rows are inserted (:attr:`PreparedAppend.background`). They are kept because the
bulk-load target needs them: ``log_many`` of a million records with mirrors within 1.3x the
time ``DataFrame.to_csv`` takes to write them (a later issue asks 1.0x at ten million).
Measured with ``python -m bench.bench_mirror_paths`` (1M records, 5 rounds alternating
``to_csv``, the code as it ships and the code without both paths; a shared 2-core machine
whose other tenants kept it busy), two runs, medians: ``to_csv`` 10.6 / 8.8 s; with them
15.7 / 11.6 s (1.48x / 1.32x); without them 15.9 / 11.9 s (1.50x / 1.36x). Round by round
they took 0.83-1.01x the time of the load without them (median 0.92x); 9.9 against 11.6 s
in the quietest round. The parts, alone and in one thread (``--parts``, 3 rounds):
``to_csv`` 7.8 s, the insert (``mirrors=False``) 7.9 s, the JSON 1.95 s by orjson over
the records' dicts and 1.5 s by Arrow, the CSV 0.7 s. Without the fast paths that
formatting (2.6 s, a third of ``to_csv``) follows an insert that alone takes as long as
``to_csv``, so the load cannot come within 1.3x; with them it runs beside the insert on the
other core, which this machine seldom had free. At ten million records a 1.0x target leaves
no room for formatting after the insert at all.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import orjson

from ..records.batch import Batch
from ..records.record import CORE_METRICS, SEED_FIELDS
from .file_writes import Parts

CSV_COLUMNS = (*SEED_FIELDS, "metrics", "params", "tags")


def json_body(batch: Batch) -> bytes:
    """The batch's records as the inside of a JSON array, laid out exactly like the seed's
    ``json.dump(records, f, indent=2)``: the seed's keys in the seed's order, then
    metrics/params/tags when present; floats in their shortest round-trip form, text as UTF-8.

    A few records (every single ``log()``) are one orjson call over their dicts; a large
    batch is spelled column by column in Arrow (:mod:`.columns`), without holding the
    GIL the concurrent database insert needs. A property test holds the two byte-identical."""
    if len(batch) >= _COLUMNAR_FROM:
        return _json_columnar(batch)
    if len(batch) == 1:  # a single log(): its one dict, spelled directly
        core = batch.core
        one = {"timestamp": batch.timestamps()[0], "ticker": batch.ticker[0],
               "model_name": batch.model_name[0]}
        for m in CORE_METRICS:
            one[m] = core[m][0]
        one["notes"] = batch.notes[0]
        for k, v in (("metrics", batch.metrics[0]), ("params", batch.params[0]), ("tags", batch.tags[0])):
            if v:
                one[k] = v
        records = [one]
    else:
        cols = [batch.timestamps(), batch.ticker, batch.model_name,
                *(batch.core[m] for m in CORE_METRICS), batch.notes]
        records = [dict(zip(SEED_FIELDS, row, strict=True)) for row in zip(*cols, strict=True)]
        for k in ("metrics", "params", "tags"):
            values = getattr(batch, k)
            for rec, v in zip(records, values, strict=True):
                if v:
                    rec[k] = v
    try:
        doc = orjson.dumps(records, option=orjson.OPT_INDENT_2)
    except TypeError:  # e.g. an integer beyond 64 bits in params: only the columns cope
        return _json_columnar(batch)
    return doc[2:-2]  # drop "[\n" and "\n]"


def _json_columnar(batch: Batch) -> bytes:
    return b"".join(_json_parts(batch))


def json_parts(batch: Batch) -> Parts:
    """:func:`json_body` in pieces (see :data:`Parts`)."""
    return _json_parts(batch) if len(batch) >= _COLUMNAR_FROM else (json_body(batch),)


def _json_parts(batch: Batch) -> Parts:
    from . import columns as mirror_columns  # pyarrow: imported on first need, not with the package

    return tuple(mirror_columns.json_parts(batch))


def csv_bytes(batch: Batch) -> bytes:
    return b"".join(csv_parts(batch))


def csv_parts(batch: Batch) -> Parts:
    """The batch as CSV rows (no header): RFC 4180, every text field quoted (so commas,
    quotes, CR/LF and unicode in notes round-trip), numbers in their shortest round-trip form.

    Large batches go through Arrow's C++ writer, which releases the GIL; a few rows (every
    single ``log()``) through :func:`_csv_small`, which writes byte-for-byte the same text
    without Arrow's per-call set-up (a property test holds the two together)."""
    return (_csv_small(batch),) if len(batch) < _ARROW_FROM else (_csv_arrow(batch),)


def _csv_arrow(batch: Batch) -> memoryview:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from . import columns as mirror_columns

    table = mirror_columns.csv_table(batch)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(
        table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed", eol="\r\n")
    )
    return memoryview(sink.getvalue()).cast("B")  # Arrow's buffer, not a copy


_ARROW_FROM = 256
#: From this many records (those formatted in the background, beside the insert) the JSON is
#: spelled by columns, which must not hold the GIL the insert needs (the module doc has the
#: figures). Below, orjson over the dicts is as fast or faster (measured: 300 records 1.9 vs
#: 2.9 ms; 2,000 the same).
_COLUMNAR_FROM = 2_000


def _json_text(value: dict[str, Any]) -> str | None:
    """A metrics/params/tags dict as its CSV column holds it (:meth:`.Batch.json_or_none`)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None


def _quote(value: str | None) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def format_number(x: float | None) -> str:
    """A float as Arrow's CSV writer spells it: the shortest round-trip digits, plain
    notation from 1e-6 up to 1e10 (no trailing ``.0``), else ``1.5e+10`` / ``1e-7``."""
    if x is None:
        return ""
    if 1e-4 <= abs(x) < 1e10:
        # Where Python's repr is positional too, it has the same shortest digits: only its
        # trailing ".0" differs. Most metrics live here, at a fifth of the general path's cost.
        r = repr(x)
        return r[:-2] if r.endswith(".0") else r
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    sign, digit_tuple, exp = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + int(exp)  # value = 0.<digits> x 10**n
    head = "-" if sign else ""
    if -6 <= n - 1 < 10:
        if n >= k:
            return head + digits + "0" * (n - k)
        if n > 0:
            return head + digits[:n] + "." + digits[n:]
        return head + "0." + "0" * (-n) + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{head}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def _csv_small(batch: Batch) -> bytes:
    if len(batch) == 1:  # a single log(): its one row, spelled directly
        core = batch.core
        return ",".join((
            _quote(batch.timestamps()[0]), _quote(batch.ticker[0]), _quote(batch.model_name[0]),
            *[format_number(core[m][0]) for m in CORE_METRICS], _quote(batch.notes[0]),
            *[_quote(_json_text(v)) for v in (batch.metrics[0], batch.params[0], batch.tags[0])],
        )).encode() + b"\r\n"
    cols = [batch.timestamps(), batch.ticker, batch.model_name]
    metrics = [batch.core[m] for m in CORE_METRICS]
    tail = [batch.notes, batch.json_or_none("metrics"), batch.json_or_none("params"),
            batch.json_or_none("tags")]
    lines = []
    for i in range(len(batch)):
        fields = [_quote(c[i]) for c in cols]
        fields += [format_number(c[i]) for c in metrics]
        fields += [_quote(c[i]) for c in tail]
        lines.append(",".join(fields) + "\r\n")
    return "".join(lines).encode()


def csv_header() -> bytes:
    return (",".join(CSV_COLUMNS) + "\r\n").encode()


def best_json(best: dict[str, Any]) -> str:
    """The best-models document, one ticker per line: readable, and written by the C JSON
    encoder (an ``indent=`` would force the pure-Python one, ten times slower)."""
    return best_document([best_line(t, v) for t, v in best.items()]).decode()


def best_line(ticker: str, entries: dict[str, Any]) -> bytes:
    """One ticker's line of the best-models document (without its separator)."""
    return f"  {json.dumps(ticker, ensure_ascii=False)}: {json.dumps(entries, ensure_ascii=False)}".encode()


def best_document(lines: Sequence[bytes]) -> bytes:
    """The best-models document of its tickers' lines, in order."""
    return b"{}\n" if not lines else b"{\n" + b",\n".join(lines) + b"\n}\n"


class PreparedAppend:
    """A batch's mirror bytes, formatted outside the write lock.

    Small batches (a single ``log()``) are formatted inline before the lock is taken, so
    writers hold it only for the database work and two file writes. A large batch is
    formatted in a background thread, column by column in Arrow (which releases the GIL the
    insert needs between rows), while the caller inserts it into the database; the same
    thread then writes it to the files (:meth:`then`); :meth:`wait` joins it. Why, with the
    measured figures: the module doc.
    """

    _THREAD_FROM = 2_000

    def __init__(self, batch: Batch):
        self.batch = batch
        #: Formatted (and :meth:`then` run) in the background thread.
        self.background = len(batch) >= self._THREAD_FROM
        self._then: Future[Any] | None = None
        if not self.background:
            self._json: Future[Parts] | Parts = json_parts(batch)
            self._csv: Future[Parts] | Parts = csv_parts(batch)
            return
        pool = _formatters()
        self._csv = pool.submit(csv_parts, batch)
        self._json = pool.submit(json_parts, batch)

    def wait(self) -> tuple[Parts, Parts]:
        """The (json, csv) pieces, once formatted (a formatter's exception is raised here)."""
        def done(v: Future[Parts] | Parts) -> Parts:
            return v.result() if isinstance(v, Future) else v

        return done(self._json), done(self._csv)

    def then(self, fn: Callable[[Parts, Parts], Any]) -> None:
        """Run ``fn(json, csv)`` in the background thread once the bytes are formatted."""
        self._then = _formatters().submit(lambda: fn(*self.wait()))

    def followed(self, *, wait_quietly: bool = False) -> Any:
        """What :meth:`then`'s function returned (None if none was given), once it ran; its
        exception is raised here, unless ``wait_quietly`` (an undo only needs it finished)."""
        if self._then is None:
            return None
        if wait_quietly:
            concurrent.futures.wait([self._then])
            return None
        return self._then.result()


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _forget_pool() -> None:
    # A forked child inherits the executor but not its threads: it must start its own.
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _formatters() -> ThreadPoolExecutor:
    """The one thread that formats (and writes) large batches, started on first need: the
    JSON and the CSV of a batch are formatted one after the other in it, while the caller's
    thread inserts the rows."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perfledger-mirror")
        return _POOL
