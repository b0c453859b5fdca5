"""Syncing one ledger's records into another: a research node's ledger into the team store.

Unlike a copy (:mod:`.transfer`: an empty target, one transaction), a sync may run again and
again into a target that already holds records, from this source or from anywhere else:

* **Idempotent.** A record's identity is its content, keyed exactly as ``import`` keys it
  (:func:`.importer.record_key` / :func:`.importer.record_hash`: model, ticker, timestamp,
  every metric, notes, params, tags, custom metrics). Every record a sync stores claims its
  key in ``pl_import_keys`` in the insert's transaction (a unique column), so concurrent
  syncs of the same records, or an import of them, store them once. Records the target
  holds without a key (logged there directly) are found by their content in the target's
  history over the candidates' tickers and time span before the write.
* **Incremental.** Every ledger gets a random id (``pl_meta`` ``ledger_id``), given by the
  first sync that needs it. The target keeps, per source id (and filter), a high-water mark
  (``pl_meta`` ``sync:<digest>``): the source's last record id it covers, that record's
  content key, how many source records it covers, and the target's generation. The next
  sync reads only the records above it. The mark is trusted only when the source still
  holds that record with that content and at least that many records, and the target was
  not cleared since (its generation): a cleared, restored or replaced source (or target)
  falls back to the content check of every record, which is always right, only slower.
  PostgreSQL writers take ids from a sequence and may commit out of id order, so ids a sync
  did not see below its mark (holes) are kept in the mark and read again by every sync
  until they appear or an hour has passed (:data:`HOLE_SECONDS`: a rolled-back
  transaction's ids never appear).
* **Crash-safe.** Records are written a chunk per transaction, and the mark advances in the
  transaction that stores the records it covers: a sync killed at any point leaves whole
  chunks and a mark that describes them; a rerun continues, losing and doubling nothing.
* **Series brought back.** A record the target holds without its kept return series (from a
  seed-shaped JSON/CSV import, or logged with ``keep_returns=False``) gets the source's,
  attached in the chunk's transaction; one holding a different series keeps it, counted in
  the result (:mod:`.attach`).
* **Complete.** Custom metrics, params and tags travel with each record; registered metric
  directions are registered in the target (a direction that contradicts the target's is
  refused before anything is written, naming the metric), so the target's best models are
  kept by its own insert path (the derived tables are maintained by every insert).

It works on stores (and the target's mirror files, and a :class:`LedgerLike` view of the
target for its history), not on Ledgers.
"""

from __future__ import annotations

import gc
import hashlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import PerfLedgerError, ReadOnlyLedgerError, ValidationError, WriteConflictError, partly_stored
from ..mirrors.seed_files import NoMirrors
from ..records.batch import Batch
from ..records.record import CORE_METRICS
from ..records.timestamps import format_ts, parse_timestamp
from ..records.validation import has_nul
from .attach import Attachments, plan_attachments, present_records
from .importer import LedgerLike, batch_keys, record_hash, record_hashes, record_key

if TYPE_CHECKING:
    from ..mirrors.seed_files import Mirrors
    from ..store.base import InitialLoader, ReadTx, Store, WriteTx

#: ``progress(done, total)``: source records read so far, of about ``total``.
SyncProgress = Callable[[int, int], None]

#: From this many source records, a sync into an EMPTY store that can (PostgreSQL) loads them
#: the way a restore does (one transaction; the indexes built after the rows): below it,
#: locking the whole store for the load would not pay.
INITIAL_LOAD_ROWS = 50_000

#: The ``pl_meta`` key of a ledger's own random id.
LEDGER_ID = "ledger_id"


@dataclass(slots=True)
class SyncResult:
    """What a sync did. ``new``: records stored in the target; ``already_there``: source
    records (within the filter) the target held already, those covered by the mark
    included; ``directions``: metric directions registered in the target; ``read``: source
    records read by this run (about the new ones when the mark held); ``incremental``:
    whether the mark held; ``series_attached``: return series of records the target held
    without one, attached to them; ``series_differ``: records the target held with a
    different series (the target's kept; :mod:`.attach`); ``initial_load``: whether the
    records were loaded as into an empty store (one transaction, indexes built after the
    rows)."""

    new: int = 0
    already_there: int = 0
    directions: int = 0
    read: int = 0
    incremental: bool = False
    series_attached: int = 0
    series_differ: int = 0
    initial_load: bool = False

    def summary(self) -> str:
        out = f"{self.new:,} new, {self.already_there:,} already there"
        if self.series_attached:
            out += f"; {self.series_attached:,} return series attached to records there without one"
        if self.series_differ:
            out += (f"; {self.series_differ:,} record(s) there with a different return series "
                    "(the target's kept)")
        return out


@dataclass(frozen=True, slots=True)
class SyncFilter:
    """Which source records a sync carries (a filtered pull for offline analysis)."""

    tickers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    since_us: int | None = None

    def canonical(self) -> str:
        return json.dumps([sorted(self.tickers), sorted(self.models), self.since_us])

    @property
    def everything(self) -> bool:
        return not (self.tickers or self.models or self.since_us is not None)

    def select(self, batch: Batch) -> list[int]:
        if self.everything:
            return list(range(len(batch)))
        tickers, models, since = set(self.tickers), set(self.models), self.since_us
        rows = enumerate(zip(batch.ticker, batch.model_name, batch.ts_us, strict=True))
        return [i for i, (t, m, ts) in rows
                if (not tickers or t in tickers) and (not models or m in models)
                and (since is None or ts >= since)]


#: How long ids missing below a mark are looked for again (a PostgreSQL source's writers
#: take ids from a sequence and may commit out of order: a gap may be a transaction still in
#: flight, or one rolled back, whose ids never appear).
HOLE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Mark:
    """A target's high-water mark for one source (and filter)."""

    after: int  #: the source's last record id covered
    key: str  #: that record's content key (its hash), to tell the same source from a replaced one
    seen: int  #: source records within the filter covered
    total: int  #: source records (all) covered
    generation: str  #: the target's generation when written (a clear changes it)
    #: Ids below ``after`` the source did not show yet: ``(first, last, since)`` ranges (since
    #: a Unix time), read again by every sync until they appear or HOLE_SECONDS pass.
    holes: tuple[tuple[int, int, float], ...] = ()

    def dump(self) -> str:
        return json.dumps({"after": self.after, "key": self.key, "seen": self.seen, "total": self.total,
                           "generation": self.generation, "holes": [list(h) for h in self.holes]})

    @classmethod
    def load(cls, text: str | None) -> Mark | None:
        if not text:
            return None
        try:
            d = json.loads(text)
            holes = tuple((int(a), int(b), float(t)) for a, b, t in d.get("holes", ()))
            return cls(int(d["after"]), str(d["key"]), int(d["seen"]), int(d["total"]),
                       str(d["generation"]), holes)
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable mark is no mark: the content check decides


def _gaps(ids: Sequence[int], low: int, high: int, since: float) -> list[tuple[int, int, float]]:
    """The ranges of ``[low, high]`` that ``ids`` (sorted, within it) leave out."""
    out, prev = [], low - 1
    for i in ids:
        if i > prev + 1:
            out.append((prev + 1, i - 1, since))
        prev = i
    if high > prev:
        out.append((prev + 1, high, since))
    return out


def ledger_id(store: Store) -> str | None:
    """The store's random id, given now if it has none; None when it has none and this
    process may not write it (a read-only source: every sync of it checks content)."""
    found = store.get_meta(LEDGER_ID)
    if found or store.read_only_reason is not None or store.absent:
        return found  # (a ledger that does not exist holds nothing to mark, and is not created)
    try:
        with store.writing() as tx:
            found = tx.get_meta(LEDGER_ID)
            if not found:
                found = uuid.uuid4().hex
                tx.set_meta(LEDGER_ID, found)
    except ReadOnlyLedgerError:
        return None  # a role that may only read (PostgreSQL says so at the write)
    return found


def _mark_key(source_id: str, flt: SyncFilter) -> str:
    digest = hashlib.blake2b(f"{source_id}|{flt.canonical()}".encode(), digest_size=16).hexdigest()
    return f"sync:{digest}"


def take(batch: Batch, idx: Sequence[int]) -> Batch:
    """The records of ``batch`` at positions ``idx``, in that order."""
    return Batch(
        ticker=[batch.ticker[i] for i in idx],
        model_name=[batch.model_name[i] for i in idx],
        ts_us=[batch.ts_us[i] for i in idx],
        core={m: [v[i] for i in idx] for m, v in batch.core.items()},
        notes=[batch.notes[i] for i in idx],
        metrics=[batch.metrics[i] for i in idx],
        params=[batch.params[i] for i in idx],
        tags=[batch.tags[i] for i in idx],
        returns=None if batch.returns is None else [batch.returns[i] for i in idx],
    )


def _one_hash(batch: Batch, i: int) -> str:
    return record_hash(batch_keys(take(batch, [i]))[0])


def _record_at(src: ReadTx, rid: int) -> str | None:
    """The content key of the source's record ``rid``, or None when it has none."""
    for ids, batch in src.iter_batches(1, after=rid - 1):
        return _one_hash(batch, 0) if ids[0] == rid else None
    return None


def _check_directions(source: Store, target: Store) -> dict[str, bool]:
    """The source's directions the target lacks; a contradicting one is refused."""
    theirs, ours = source.directions(), target.directions()
    for name, higher in sorted(theirs.items()):
        if name in ours and ours[name] != higher:
            def word(h: bool) -> str:
                return "higher is better" if h else "lower is better"
            raise ValidationError(
                f"metric {name!r}: the source says {word(higher)}, the target says {word(ours[name])}; "
                "nothing was synced (register one direction in both ledgers first)",
                [(None, "metric", name)],
            )
    return {n: h for n, h in theirs.items() if n not in ours}


def _held_unkeyed(target: LedgerLike, batch: Batch, keys: list[tuple[Any, ...]]) -> set[int]:
    """Positions of ``batch`` whose content the target's history holds (records it got
    without a key: logged there directly). One read of the candidates' tickers and span."""
    tickers = sorted(set(batch.ticker))
    lo, hi = min(batch.ts_us), max(batch.ts_us)
    stored = {
        record_key(parse_timestamp(r["timestamp"]), r["ticker"], r["model_name"],
                   (r[m] for m in CORE_METRICS), r["notes"], r["metrics"], r["params"], r["tags"])
        for r in target.records(tickers, since=format_ts(lo), until=format_ts(hi))
    }
    return {i for i, k in enumerate(keys) if k in stored} if stored else set()


def sync_stores(
    source: Store, target: Store, target_ledger: LedgerLike, target_mirrors: Mirrors | None = None, *,
    flt: SyncFilter | None = None, progress: SyncProgress | None = None, chunk: int = 50_000,
    initial_load_from: int = INITIAL_LOAD_ROWS,
) -> SyncResult:
    """Bring ``source``'s records (within ``flt``) into ``target`` (see the module
    docstring); returns what happened.

    A chunk's transaction that fails after earlier chunks committed raises its error saying
    how many records were stored before it, and that a rerun completes the sync (never
    "nothing was stored", which is true of that chunk only)."""
    result = SyncResult()
    try:
        return _sync(source, target, target_ledger, target_mirrors, flt or SyncFilter(), progress, chunk,
                     result, initial_load_from)
    except PerfLedgerError as exc:
        if result.new and exc.unstored is not None:
            raise partly_stored(exc, result.new, "sync") from exc
        raise


def _sync(source: Store, target: Store, target_ledger: LedgerLike, target_mirrors: Mirrors | None,
          flt: SyncFilter, progress: SyncProgress | None, chunk: int, result: SyncResult,
          initial_load_from: int = INITIAL_LOAD_ROWS) -> SyncResult:
    """:func:`sync_stores`' work, filling ``result`` as chunks commit."""
    if source.identity() == target.identity():
        raise ValidationError(
            "the target is the source ledger itself; sync with another ledger",
            [(None, "target", "same as source")],
        )
    if target.read_only_reason is not None:
        raise ReadOnlyLedgerError(target.read_only_reason)
    missing = _check_directions(source, target)
    mirrors = target_mirrors if target_mirrors is not None else NoMirrors()
    source_id = ledger_id(source)
    mark_key = _mark_key(source_id, flt) if source_id else None
    mark_text = target.get_meta(mark_key) if mark_key else None
    mark = Mark.load(mark_text)
    source_total = source.stats()["records"]
    target_empty = target.stats()["records"] == 0
    with source.snapshot() as src, _cycles_uncollected(), ExitStack() as stack:
        last = src.last_id()
        after, key, seen, total = 0, "", 0, 0
        holes: list[tuple[int, int, float]] = []
        stale: Mark | None = None
        if mark is not None and _mark_holds(mark, src, target, source_total):
            after, key, seen, total = mark.after, mark.key, mark.seen, mark.total
            holes = list(mark.holes)
            result.incremental = True
        else:
            stale = mark  # describes another source or target state: this run replaces it
        result.already_there = seen
        if progress is not None:
            progress(0, max(last - after, 0))
        # Registered before any record (even when every record is already there).
        if missing:
            _write(target, mirrors, lambda tx, m: _register(tx, m, missing))
            result.directions = len(missing)
        now = time.time()
        # Into an empty store, a large sync loads everything in one transaction, the way a
        # restore loads (:meth:`~..store.base.WriteTx.initial_load`); None: the normal path.
        wanted = (target_empty and not result.incremental and source_total >= initial_load_from
                  and isinstance(mirrors, NoMirrors))
        load = stack.enter_context(_loading(target, wanted))
        loaded: set[str] = set()
        load_new = 0

        def keyed(chunk_: tuple[list[int], Batch]) -> tuple[Batch, list[Any], list[str]]:
            """A chunk's records within the filter, their content keys and digests (client
            work only: it runs ahead, in :func:`_ahead`'s thread, while the target writes)."""
            batch = chunk_[1]
            pick = flt.select(batch)
            sub = take(batch, pick) if len(pick) < len(batch) else batch
            keys = batch_keys(sub)
            return sub, keys, record_hashes(keys)

        def carry(ids: list[int], batch: Batch, pending: list[tuple[int, int, float]],
                  ready: tuple[Batch, list[Any], list[str]] | None = None) -> None:
            """One chunk into the target, in one transaction with the mark that covers it."""
            nonlocal seen, total, load_new
            result.read += len(ids)
            sub, keys, hashes = ready or keyed((ids, batch))
            _refuse_nul(sub, result.new)
            todo = _first_of_each(hashes)
            if load is not None:  # one transaction: committed (with the mark) after the last chunk
                todo = [i for i in todo if hashes[i] not in loaded]
                claimed = [hashes[i] for i in todo]
                loaded.update(claimed)
                load[1].add(take(sub, todo) if len(todo) < len(sub) else sub, claimed)
                seen, total = seen + len(sub), total + len(ids)
                load_new += len(todo)
                result.already_there += len(sub) - len(todo)
                return
            if todo and not target_empty:
                known = target.known_keys([hashes[i] for i in todo])
                todo = [i for i in todo if hashes[i] not in known]
                if todo:
                    held = _held_unkeyed(target_ledger, take(sub, todo), [keys[i] for i in todo])
                    todo = [i for j, i in enumerate(todo) if j not in held]
            plan = None if target_empty else _attachments(target, target_ledger, sub, keys, todo)
            seen, total = seen + len(sub), total + len(ids)
            new_mark = Mark(after, key, seen, total, "", tuple(pending)) if mark_key else None
            attached = [0]

            def body(tx: WriteTx, m: Any) -> int:
                # the series first: the mark below records the generation they change
                attached[0] = len(tx.attach_returns(plan.kept)) if plan is not None and plan.kept else 0
                return _store(tx, m, sub, todo, hashes, mark_key, new_mark, stale)

            stored = _write(target, mirrors, body)
            result.new += stored
            result.already_there += len(sub) - stored
            result.series_attached += attached[0]
            result.series_differ += plan.differ if plan is not None else 0

        # Ids a PostgreSQL source had not shown below the mark: those committed since first.
        kept: list[tuple[int, int, float]] = []
        for n, (lo, hi, since) in enumerate(list(holes)):
            rest = holes[n + 1:]
            found: list[int] = []
            for ids, batch in src.iter_batches(chunk, after=lo - 1, until=hi):
                found += ids
                carry(ids, batch, [*kept, *_gaps(found, lo, hi, since), *rest])
            kept += [h for h in _gaps(found, lo, hi, since) if now - h[2] < HOLE_SECONDS]
        holes, base = kept, after
        chunks = src.iter_batches(chunk, after=after)
        # Reading and keying ahead in a thread pays while this thread waits on the server (the
        # normal path's claims and index updates); an initial load's own work is client CPU
        # (its COPY rows), which the two threads would fight over for the GIL: measured, at
        # 200,000 records the load took 1.24x as long with the thread (bench_initial_load).
        prepared = (_ahead(chunks, keyed) if load is None
                    else ((item, keyed(item)) for item in chunks))
        for (ids, batch), ready in prepared:
            holes += _gaps(ids, after + 1, ids[-1], now)
            after, key = ids[-1], _one_hash(batch, len(batch) - 1)
            carry(ids, batch, holes, ready)
            if progress is not None:
                progress(after - base, max(last - base, 0))
        if load is not None:
            tx, loader = load
            loader.finish()
            if mark_key:
                gen = tx.get_meta("generation") or "0"
                tx.set_meta(mark_key, Mark(after, key, seen, total, gen, tuple(holes)).dump())
            stack.close()  # the commit
            result.new += load_new
            result.initial_load = True
        if mark_key and result.incremental and mark is not None and tuple(holes) != mark.holes:
            # Holes that appeared or expired with nothing else to write: the mark still says so.
            final = Mark(after, key, seen, total, "", tuple(holes))
            _write(target, mirrors, lambda tx, m: _store(tx, m, Batch.from_records([]), [], [], mark_key,
                                                         final, stale))
    return result


@contextmanager
def _loading(target: Store, wanted: bool) -> Iterator[tuple[WriteTx, InitialLoader] | None]:
    """An initial load open in a write transaction of ``target`` (committed when the caller's
    block ends without an error, rolled back whole otherwise), or None: not ``wanted``, the
    target's engine has no such path, or the target was no longer empty once locked (that
    transaction, which changed nothing, then ends before this yields: its locks go)."""
    started = False
    if wanted:
        try:
            with target.writing() as tx:
                loader = tx.initial_load()
                if loader is not None:
                    started = True
                    yield tx, loader
                    return
        except WriteConflictError:
            if started:
                raise
            # A deadlock while taking the load's lock (another writer held one table and
            # wanted the next): the normal path, which retries its own conflicts.
    yield None


T_ = TypeVar("T_")
R_ = TypeVar("R_")


def _ahead(items: Iterator[T_], fn: Callable[[T_], R_]) -> Iterator[tuple[T_, R_]]:
    """``(item, fn(item))`` for each of ``items``, in order, the next one read and prepared
    in a background thread while the caller handles this one. A sync's client work (reading
    the source, keying each record) then overlaps the target's (claiming keys, inserting):
    the thread holds the GIL only while it computes, and the caller mostly waits on the
    server. One item ahead at most; an error of the thread is raised here, in order; when
    the caller stops early (an error, a kill of the loop), the thread stops after its
    current item and is joined before this returns."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                box.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put("item", (item, fn(item))):
                    return
            put("end", None)
        except BaseException as exc:  # handed to the caller, raised there
            put("error", exc)

    thread = threading.Thread(target=work, name="perfledger-sync-read", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


@contextmanager
def _cycles_uncollected() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the sync's duration. A chunk is tens
    of thousands of rows, keys and digests, none in a reference cycle (reference counting
    frees them), yet each allocation burst sets off collections that walk every object
    alive: measured, reading a 100,000-record source took half as long without them. The
    collector is process-wide: it is enabled again (if it was) when the sync ends or fails."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _mark_holds(mark: Mark, src: ReadTx, target: Store, source_total: int) -> bool:
    """Whether the target still holds what ``mark`` says and the source is still the one
    it describes."""
    if (target.get_meta("generation") or "0") != mark.generation:
        return False  # the target was cleared (or a direction changed) since
    if source_total < mark.total:
        return False  # records below the mark are gone: cleared or restored
    return _record_at(src, mark.after) == mark.key


def _refuse_nul(batch: Batch, synced: int) -> None:
    """Raise ValidationError naming the first record of ``batch`` whose text holds a NUL
    (PostgreSQL text cannot hold it; storing it altered would not be the same record)."""
    for name in ("notes", "params", "tags"):
        for i, value in enumerate(getattr(batch, name)):
            if value and has_nul(value):
                raise ValidationError(
                    f"record ({batch.ticker[i]}, {batch.model_name[i]}, {format_ts(batch.ts_us[i])}): "
                    f"{name} contains a NUL character, which perfledger no longer accepts; "
                    f"{synced} records were synced before it, none from it on",
                    [(i, name, "contains a NUL character")],
                )


def _attachments(target: Store, target_ledger: LedgerLike, sub: Batch, keys: list[Any],
                 todo: list[int]) -> Attachments | None:
    """What to do with the series of the chunk's records the target holds already (every
    one but ``todo``, the new ones): :mod:`.attach`'s rule. One read of the target's
    records over their tickers and span, only when such a record brings a series."""
    if sub.returns is None:
        return None
    new = set(todo)
    held = [i for i, r in enumerate(sub.returns) if r is not None and i not in new]
    if not held:
        return None
    stamps = [sub.ts_us[i] for i in held]
    present = present_records(target_ledger, sorted({sub.ticker[i] for i in held}), min(stamps), max(stamps),
                              record_key)
    return plan_attachments(present, ((keys[i], sub.returns[i]) for i in held), target.returns)


def _first_of_each(hashes: list[str]) -> list[int]:
    seen: set[str] = set()
    out = []
    for i, h in enumerate(hashes):
        if h not in seen:
            seen.add(h)
            out.append(i)
    return out


def _register(tx: WriteTx, m: Any, missing: dict[str, bool]) -> int:
    changed = False
    for name, higher in sorted(missing.items()):
        changed |= tx.register_metric(name, higher)
    if changed:
        m.write_best()
    return 0


def _store(tx: WriteTx, m: Any, sub: Batch, todo: list[int], hashes: list[str],
           mark_key: str | None, mark: Mark | None, stale: Mark | None) -> int:
    """One chunk's transaction: claim the keys, insert the records that won them, and move
    the mark over the chunk."""
    stored = 0
    if todo:
        # Claimed in one order by every sync, so two syncs never wait on each other in a cycle.
        won = tx.claim_keys(sorted(hashes[i] for i in todo))
        keep = [i for i in todo if hashes[i] in won]
        if keep:
            m.insert(take(sub, keep) if len(keep) < len(sub) else sub)
            stored = len(keep)
    if mark_key is not None and mark is not None:
        current = Mark.load(tx.get_meta(mark_key))
        # A concurrent sync of the same source may have gone further: never move it back
        # (unless the mark there is the one this run found no longer true).
        if current is None or current.after <= mark.after or current == stale:
            gen = tx.get_meta("generation") or "0"
            tx.set_meta(mark_key, Mark(mark.after, mark.key, mark.seen, mark.total, gen, mark.holes).dump())
    return stored


def _write(target: Store, mirrors: Mirrors, body: Callable[[WriteTx, Any], int]) -> int:
    """Run ``body`` in one write transaction of the target (with its mirrors), again when
    concurrent writers collided (nothing of it was stored)."""
    for attempt in range(10):
        try:
            with target.writing() as tx, mirrors.transaction(tx) as m:
                return body(tx, m)
        except WriteConflictError:
            if attempt == 9:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")
