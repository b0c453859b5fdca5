"""Importing evaluation files into a ledger, idempotently.

Imports the seed's ``model_performance.json`` / ``model_performance.csv`` and perfledger's own
exports (CSV, JSON, Parquet), read into rows by :mod:`.rows`. Three promises:

* **Idempotent.** A record's identity is its content (:func:`record_key`, digest
  :func:`record_hash`): timestamp normalised to UTC microseconds, ticker, model_name, the
  six seed metrics, notes, custom metrics, params and tags, floats compared exactly.
  Rows already in the ledger, or repeated within the file, are counted as
  duplicates and not stored again, so importing a file twice (or an export of the ledger
  itself) adds nothing. Naive timestamps (the seed wrote ``datetime.now().isoformat()``)
  are read as UTC. A duplicate's kept return series (a Parquet export carries them) is
  attached to the present record when that has none, after the new rows are stored; one
  with a different series keeps it, counted in the report (:mod:`.attach`).
* **All or nothing by default.** Every row is checked first; a file with any bad row
  stores nothing and the report lists each bad row by location (CSV: the physical line of
  the row, header = line 1; JSON: ``record N``, 1-based; Parquet: ``row N``) and reason.
  With ``skip_invalid=True`` the good rows are stored and the bad ones reported.
* **Exact.** Numbers are parsed from their text form (CSV) or taken as they are (JSON,
  Parquet); nothing is rounded, so an exported float re-imports bit for bit.

How duplicates are found without reading the whole ledger: the ledger's history for the
file's tickers and time span gives every stored field but params and tags. Rows whose other
fields match nothing there are new. Only when some do match (a re-import) are the stored
params and tags read too (the stored records with their ids, filtered in the database) to
settle those rows exactly.
"""

from __future__ import annotations

import collections
import decimal
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import FileReadError, ValidationError
from ..mirrors.seed_files import Adoption
from ..records.batch import Batch
from ..records.record import CORE_METRICS, SEED_FIELDS
from ..records.timestamps import format_ts
from ..records.validation import validate_frame
from .attach import Attachments, plan_attachments, present_records
from .rows import DICT_FIELDS, Progress, read_rows

if TYPE_CHECKING:
    import pandas as pd

    from ..records.kept_returns import KeptReturns
    from ..store.base import WriteTx


class LedgerLike(Protocol):
    """What files in and out need of a :class:`~perfledger.Ledger` (which sits above this
    package and passes itself in)."""

    #: The ledger's directory (None for a database URL): its files are never overwritten.
    directory: Path | None

    def history(self, ticker: Any = None, model_name: Any = None, days_back: Any = None,
                since: Any = None, until: Any = None, **filters: Any) -> pd.DataFrame: ...

    def records(self, ticker: Any = None, model_name: Any = None, days_back: Any = None,
                since: Any = None, until: Any = None, **filters: Any) -> list[dict[str, Any]]: ...

    def log_many(self, records: Any, *, import_keys: Sequence[str] | None = None) -> int: ...

    def _attach_returns(self, kept: Mapping[int, KeptReturns]) -> int: ...

    def _read_returns(self, ids: list[int]) -> Mapping[int, KeptReturns]: ...


@dataclass(frozen=True, slots=True)
class Rejected:
    """One problem of one input row: where it is, which field, and what is wrong."""

    where: str
    field: str
    message: str


@dataclass(slots=True)
class ImportReport:
    """What an import did. ``stored`` is False when bad rows blocked the whole file."""

    #: The file read, or (for another tool's store) its description.
    path: Path | str
    imported: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    stored: bool = True
    #: Rows whose record was already present *with a different* kept return series: the
    #: record is a duplicate by content (the key ignores the series), the ledger's series is
    #: kept and the row's was not imported (said; :mod:`.attach`).
    series_not_imported: int = 0
    #: Rows whose record was already present *without* a series, bringing one: attached to
    #: the present record (:mod:`.attach`).
    series_attached: int = 0

    @property
    def rejected_rows(self) -> int:
        return len({r.where for r in self.rejected})

    def summary(self) -> str:
        verb = "imported" if self.stored else "imported (nothing stored: fix or --skip-invalid)"
        name = self.path.name if isinstance(self.path, Path) else self.path
        attached = (f"; {self.series_attached} return series attached to records already present "
                    "without one" if self.series_attached else "")
        missing = (f"; {self.series_not_imported} return series not imported: record already present "
                   "with a different one (kept)" if self.series_not_imported else "")
        return (
            f"{name}: {self.imported} {verb}, {self.duplicates} duplicate, "
            f"{self.rejected_rows} rejected{attached}{missing}"
        )


# --------------------------------------------------------------------------- identity


def _f(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if f != f else f + 0.0  # NaN is "missing"; -0.0 and 0.0 are one value


def _canon(d: Mapping[str, Any] | None) -> str:
    return json.dumps(_exact(d), sort_keys=True, ensure_ascii=False, separators=(",", ":")) if d else ""


def _exact(value: Any) -> Any:
    """``value`` with every float of 1e16 or more (all whole) as the integer its JSON text
    stands for (``1e23`` is 10**23, not the binary float's own integer): JSON spells
    such a float with an exponent (``1e+23``), but both stores keep the number JSONB keeps
    (``100000000000000000000000``) and give it back as an int, so without this a record
    read back from PostgreSQL had another identity than the one that was sent (a sync back
    doubled it). Smaller floats read back as the same float, spelled alike."""
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 1e16:  # whole, spelled with an exponent
            return int(decimal.Decimal(repr(value)))  # the integer the JSON text stands for
        return value
    if isinstance(value, Mapping):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


Key = tuple[Any, ...]


def record_key(
    ts_us: int, ticker: str, model: str, core: Iterable[Any], notes: str | None,
    metrics: Mapping[str, Any] | None, params: Mapping[str, Any] | None, tags: Mapping[str, Any] | None,
    *, full: bool = True,
) -> Key:
    """A record's identity: its canonical content as a tuple (exact floats, NaN = missing,
    -0.0 = 0.0, dicts as sorted JSON). ``full=False`` leaves out params and tags, the part
    the ledger's history can be compared against cheaply. Tuples compare exactly and hash
    fast; :func:`record_hash` gives a stable digest of the same content.

    Line endings are not content: a file converted to CRLF (``unix2dos``, git's
    ``autocrlf``, ``sed 's/$/\\r/'``), or written with them (Python's ``csv`` module, Excel),
    holds the same records, so carriage returns before a line break in a note are left out
    of its identity (``a\\r\\r\\nb``, ``a\\r\\nb`` and ``a\\nb`` are one note). The note is
    stored exactly as given."""
    metric_items = tuple(sorted((k, v) for k, v in ((k, _f(v)) for k, v in (metrics or {}).items())
                                if v is not None))
    body = (int(ts_us), ticker, model, tuple(_f(v) for v in core), _lines(notes), metric_items)
    return (*body, _canon(params), _canon(tags)) if full else body


_CR_LF = re.compile("\r+\n")


def _lines(notes: str | None) -> str:
    """A note with its line breaks as ``\\n`` (see :func:`record_key`)."""
    if not notes:
        return ""
    return _CR_LF.sub("\n", notes) if "\r" in notes else notes


def record_hash(key: Key) -> str:
    """A stable hex digest of a :func:`record_key` (same content, same digest, any process)."""
    return hashlib.blake2b(repr(key).encode("utf-8"), digest_size=16).hexdigest()


def _frame_keys(clean: pd.DataFrame, *, full: bool) -> list[Key]:
    core = [clean[m].tolist() for m in CORE_METRICS]
    cols = zip(
        clean["ts_us"].tolist(), clean["ticker"].tolist(), clean["model_name"].tolist(),
        zip(*core, strict=True), clean["notes"].tolist(), clean["metrics"].tolist(),
        clean["params"].tolist(), clean["tags"].tolist(), strict=True,
    )
    return [record_key(ts, t, m, s, n, me, p, tg, full=full) for ts, t, m, s, n, me, p, tg in cols]


def _history_keys(led: LedgerLike, tickers: list[str], since_us: int, until_us: int) -> set[Key]:
    """Content keys (without params/tags) of stored records in the tickers and time span."""
    hist = led.history(ticker=tickers, since=format_ts(since_us), until=format_ts(until_us))
    if hist.empty:
        return set()
    ts = hist["timestamp"].dt.as_unit("us").astype("int64").tolist()
    custom = [c for c in hist.columns if c not in SEED_FIELDS]
    core = zip(*(hist[m].tolist() for m in CORE_METRICS), strict=True)
    extra = zip(*(hist[c].tolist() for c in custom), strict=True) if custom else iter(lambda: (), None)
    out = set()
    for t, tick, mod, s, notes, ex in zip(
        ts, hist["ticker"].tolist(), hist["model_name"].tolist(), core, hist["notes"].tolist(), extra,
        strict=False,
    ):
        metrics = {c: v for c, v in zip(custom, ex, strict=True) if not math.isnan(v)}
        out.add(record_key(t, tick, mod, s, notes, metrics, None, None, full=False))
    return out


# --------------------------------------------------------------------------- import


def import_file(
    led: LedgerLike, path: str | Path, *, skip_invalid: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Import one file (see the module docstring); returns what happened.

    Raises :class:`ValidationError` only for a file that cannot be read as records at all
    (unknown type, not JSON, not an array); bad *rows* are reported, not raised.
    """
    path = Path(path)
    rows, where, pre = read_rows(path, progress)
    report = ImportReport(path=path)
    import_rows(led, rows, where, pre, report, skip_invalid=skip_invalid, progress=progress)
    return report


def import_rows(
    led: LedgerLike, rows: list[dict[str, Any]], where: list[str], pre: Mapping[int, list[tuple[str, str]]],
    report: ImportReport, *, skip_invalid: bool = False, progress: Progress | None = None,
) -> None:
    """Import rows read from any source (a file, another tool's database): ``where[i]``
    names row i for people, ``pre`` holds problems found while reading (row -> (field,
    message)). Checks, deduplicates by content key and stores as the module docstring says,
    filling ``report``."""
    import numpy as np
    import pandas as pd

    if not rows:
        return
    if progress is not None:
        progress("checking", 0, 0)
    frame = pd.DataFrame(rows, index=range(len(rows)))
    for col in DICT_FIELDS:
        if col in frame.columns:
            frame[col] = [v if isinstance(v, dict) else None for v in frame[col].tolist()]
    problems = {pos: list(p) for pos, p in pre.items()}
    try:
        clean: pd.DataFrame | None = validate_frame(frame)
    except ValidationError as exc:
        if any(r is None for r, _f, _m in exc.problems):
            raise  # a whole-file problem (a column that cannot exist), not a row problem
        for pos, fld, msg in exc.problems:
            problems.setdefault(int(pos), []).append((fld, msg))
        clean = None
    for pos in sorted(problems):
        for fld, msg in problems[pos]:
            report.rejected.append(Rejected(where[pos], fld, msg))
    if problems and not skip_invalid:
        report.stored = False
        return
    if clean is None or problems:
        good = [p for p in range(len(rows)) if p not in problems]
        if not good:
            return
        clean = validate_frame(frame.loc[good])

    if progress is not None:
        progress("comparing", 0, 0)
    full = _frame_keys(clean, full=True)
    seen: set[Key] = set()
    first = np.zeros(len(clean), dtype=bool)
    for i, k in enumerate(full):
        if k not in seen:
            seen.add(k)
            first[i] = True
    candidates = np.flatnonzero(first)
    ts = clean["ts_us"].to_numpy()
    tickers = sorted(set(clean["ticker"].tolist()))
    since, until = int(ts.min()), int(ts.max())
    stored_vis = _history_keys(led, tickers, since, until)
    new = first.copy()
    plan: Attachments | None = None
    if stored_vis:
        vis = _frame_keys(clean.iloc[candidates], full=False)
        maybe = [int(c) for c, k in zip(candidates, vis, strict=True) if k in stored_vis]
        if maybe:
            # the stored records by whole content, with their ids and whether each kept a
            # series (one read): a row found there is a duplicate, its series maybe not
            present = present_records(led, tickers, since, until, record_key)
            series = clean["returns"].tolist() if "returns" in clean.columns else None
            for c in maybe:
                if full[c] in present:
                    new[c] = False
            if series is not None:
                plan = plan_attachments(present, ((full[c], series[c]) for c in maybe
                                                  if not new[c] and series[c] is not None), led._read_returns)
                report.series_not_imported = plan.differ
    report.duplicates = int(len(clean) - new.sum())
    keep = clean.iloc[np.flatnonzero(new)]
    if len(keep):
        if progress is not None:
            progress("storing", 0, 0)
        out = pd.DataFrame({
            "timestamp": [format_ts(t) for t in keep["ts_us"].tolist()],
            "ticker": keep["ticker"].tolist(),
            "model_name": keep["model_name"].tolist(),
            **{m: keep[m].to_numpy(dtype=float) for m in CORE_METRICS},
            "notes": keep["notes"].tolist(),
            "metrics": keep["metrics"].tolist(),
            "params": keep["params"].tolist(),
            "tags": keep["tags"].tolist(),
        })
        if "returns" in keep.columns:  # backtests' kept return series (a Parquet export's)
            out["returns"] = keep["returns"].tolist()
        keys = [record_hash(full[i]) for i in np.flatnonzero(new)]
        # The keys are claimed in the insert's transaction (a unique column): concurrent
        # imports of the same rows store them once.
        report.imported = led.log_many(out, import_keys=keys)
        report.duplicates += len(keep) - report.imported
    if plan is not None and plan.kept:  # after the new records: a refused file attaches nothing
        report.series_attached = led._attach_returns(plan.kept)


# --------------------------------------------------------------------------- adoption


def batch_keys(batch: Batch) -> list[Key]:
    """The :func:`record_key` of every record of a stored batch: the same tuples, built a
    column at a time with the common cases inline (a sync keys every record it reads; one
    call of :func:`record_key` per record cost about twice as much)."""
    core = zip(*([None if v is None or (f := float(v)) != f else f + 0.0 for v in batch.core[m]]
                 for m in CORE_METRICS), strict=True)
    notes = ["" if not n else n if "\r" not in n else _lines(n) for n in batch.notes]
    metrics = [() if not me else record_key(0, "", "", (), "", me, None, None, full=False)[5]
               for me in batch.metrics]
    params = ["" if not p else _canon(p) for p in batch.params]
    tags = ["" if not t else _canon(t) for t in batch.tags]
    return [
        (int(ts), t, m, c, n, me, p, tg)
        for ts, t, m, c, n, me, p, tg in zip(
            batch.ts_us, batch.ticker, batch.model_name, core, notes, metrics, params, tags, strict=True,
        )
    ]


def record_hashes(keys: Sequence[Key]) -> list[str]:
    """:func:`record_hash` of each key (the same digests, without a call per key)."""
    b2 = hashlib.blake2b
    return [b2(repr(k).encode("utf-8"), digest_size=16).hexdigest() for k in keys]


def adopt_file(tx: WriteTx, path: Path, held: int | None = None) -> Adoption:
    """Store, inside ``tx``, every record of ``path`` (the seed's JSON or CSV, or one of our
    mirrors) that the database does not hold yet; returns how many, and how many of the
    records the file held at the last commit were changed in it.

    ``held``: the highest record id the file held at the last commit (None: the database
    is new, and every record of the file is a candidate). The file's first records are
    then the committed ones, in id order; only the records after them, appended since (by
    the seed's own code), are candidates for adoption. A committed record changed in the
    file (a value edited, a field added, a record removed) is not a new record: the
    database is the truth, and the count of such records is returned for the caller to
    report (it rewrites the file from the database).

    Used when a ledger directory holds files the database does not account for (the seed's
    own files before perfledger, a deleted database, the seed's code rewriting a mirror).
    The file must read cleanly as a whole: else :class:`FileReadError` names the first bad
    row (``where``), ``broken`` when the file's structure is (invalid JSON, a CSV row cut
    short: what an interrupted append leaves) rather than a value, and nothing is stored.
    """
    # A NaN in the seed's own files is the value its CSV holds as an empty cell: missing.
    rows, where, problems = read_rows(path, nan_missing=True)  # unreadable: FileReadError
    if not rows:
        return Adoption(0, 0 if held is None else _edited(_committed(tx, held), []))
    import pandas as pd

    frame = pd.DataFrame(rows, index=range(len(rows)))
    for col in DICT_FIELDS:
        if col in frame.columns:
            frame[col] = [v if isinstance(v, dict) else None for v in frame[col].tolist()]
    try:
        clean = validate_frame(frame)
    except ValidationError as exc:
        for pos, fld, msg in exc.problems:
            problems.setdefault(-1 if pos is None else int(pos), []).append((fld, msg))
    if problems:
        pos = min(problems)
        fld, msg = problems[pos][0]
        # A "row" problem is the file's structure (a CSV row cut short, an array item that is
        # not an object); any other, a well-formed record with a wrong value.
        raise FileReadError(path, msg, where=where[pos] if pos >= 0 else None, broken=fld == "row",
                            field=fld)
    file_keys = _frame_keys(clean, full=True)
    stored: set[Key] = set()
    for _ids, batch in tx.iter_batches():
        stored.update(batch_keys(batch))
    # The file's first records are the ones it held at the last commit: only those after
    # them were appended since.
    committed = [] if held is None else _committed(tx, held)
    start, edited = len(committed), _edited(committed, file_keys)
    keep = []
    for i in range(start, len(file_keys)):
        key = file_keys[i]
        if key not in stored:
            stored.add(key)
            keep.append(i)
    if not keep:
        return Adoption(0, edited)
    new = clean.iloc[keep].sort_values(["ticker", "ts_us"], kind="stable")
    tx.insert(Batch.from_frame(new))
    return Adoption(len(new), edited)


def _committed(tx: WriteTx, held: int) -> list[Key]:
    """The keys of the records with ids up to ``held`` (what the file held), in id order."""
    out: list[Key] = []
    for ids, batch in tx.iter_batches():
        if ids and ids[0] > held:
            break
        out.extend(k for i, k in zip(ids, batch_keys(batch), strict=True) if i <= held)
    return out


def _edited(committed: list[Key], file_keys: list[Key]) -> int:
    """How many of the records the file held at the last commit (``committed``) are not
    among its first records any more: changed or removed in the file."""
    head = collections.Counter(file_keys[: len(committed)])
    return sum((collections.Counter(committed) - head).values())
