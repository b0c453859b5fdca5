"""The :class:`Ledger`: the one object users (and the seed module, CLI and dashboard) talk to.

It validates, hands batches to the store, keeps the seed's mirror files in step, and
notices when its directory was deleted or restored under it (users' tests ``rmtree`` and
``copytree`` ``memory/logs`` between calls), so it never writes into a deleted file.

A ledger this process may not write (another user's directory, a read-only mount) opens
read-only (:attr:`Ledger.read_only`): every read works and writes nothing, not even the
mirrors' repair; every write raises :class:`ReadOnlyLedgerError` before touching anything.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    MirrorsDisabledError,
    ReadOnlyLedgerError,
    ValidationError,
    WriteConflictError,
    WrongTypeError,
)
from .files.importer import adopt_file
from .frames import STATS, history_frame, leaderboard_frame, records_from_frame
from .location import DB_NAME, Location, describe_store, existing_ancestor, resolve
from .mirrors.rebuild import write_seed_files
from .mirrors.seed_files import Mirrors, NoMirrors, SeedMirrors
from .records.arguments import (
    MAX_TAIL,
    check_age,
    check_columns,
    check_count,
    check_limit,
    check_names,
    check_probability,
)
from .records.batch import Batch
from .records.filters import RecordFilter, shares_filters
from .records.labels import LabelKind, decode, group_column, parse_by, sort_key
from .records.record import CORE_METRICS
from .records.timestamps import time_window
from .records.validation import (
    check_label,
    check_metric_name,
    refuse_nan,
    validate_frame,
    validate_record,
)
from .store import open_directory_store, open_store
from .store.base import HistoryQuery, RunAgain, TailQuery

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from .files.mlflow import MlflowImportReport
    from .files.sync import SyncResult
    from .mirrors.layout import PreparedAppend
    from .mirrors.transaction import MirrorTransaction, NullMirrorTransaction
    from .records.kept_returns import KeptReturns
    from .stats.overfitting import Overfitting
    from .store.base import Store, WriteTx

def _one_ticker(ticker: Any) -> str:
    """The ticker of a per-ticker statistic (overfitting, effective trials, the Sharpe's
    confidence, unscored trials): required, unlike history's, where None means every
    ticker. These statistics compare one sweep's trials on one instrument's periods; every
    ticker's backtests together are not one sweep, so None is a ValidationError naming
    ``ticker`` (a WrongTypeError, a TypeError as before), as is any value not a str."""
    if not isinstance(ticker, str):
        hint = (": these statistics compare the trials of one ticker (ledger.tickers() lists them)"
                if ticker is None else "")
        raise WrongTypeError.of("ticker", f"ticker must be a str, got {type(ticker).__name__} "
                                          f"{ticker!r}{hint}")
    return check_label("ticker", ticker)


log = logging.getLogger("perfledger")

class Ledger:
    """A model-performance ledger.

    ``Ledger()`` opens ``$PERFLEDGER_URL`` if set, else the directory ``./memory/logs``.
    A directory holds an embedded SQLite database plus the seed's mirror files; any
    SQLAlchemy URL (``sqlite:///x.db``, ``postgresql+psycopg://user@host/db``) opens that
    database without local files. Safe to share between threads; each process opens its own.
    """

    #: Rows per insert of a large :meth:`log_many` (one transaction whatever the size). Why:
    #: a batch holds a Python object per value and its mirror text; one of 10M rows held more
    #: than 16 GB. Chunks of this size keep a few hundred MB alive at a time, and cost no
    #: measurable speed (each still inserts in bulk).
    log_many_chunk: int = 250_000

    def __init__(
        self,
        location: str | os.PathLike[str] | sa.URL | Location | None = None,
        *,
        mirrors: bool = True,
    ) -> None:
        self.location = resolve(location)
        self.directory: Path | None = self.location.directory
        self._db_path = self.directory / DB_NAME if self.directory is not None else None
        self._lock = threading.RLock()
        self._want_mirrors = mirrors and self.directory is not None
        self._open()

    @property
    def url(self) -> sa.URL:
        """The database's SQLAlchemy URL (made when first asked for: a directory ledger's
        single-record path never imports SQLAlchemy)."""
        return self.location.url

    # ------------------------------------------------------------------ lifecycle

    def _open(self) -> None:
        where = self.location.describe()
        if self.directory is not None:
            check_directory(self.directory, where)
        mirrors: Mirrors = (
            SeedMirrors(self.directory, adopt_file) if self._want_mirrors and self.directory
            else NoMirrors(deferred=self.directory is not None)
        )
        # A directory that does not exist is not created by opening it: reads answer as an
        # empty ledger and leave nothing on disk; the first write creates it (_writable).
        guarded = tuple(mirrors.paths.values())
        self._store: Store = (
            open_directory_store(self.location.database, lambda: self.url, ledger=where, guarded=guarded)
            if self.directory is not None else open_store(self.url, ledger=where, guarded=guarded))
        #: Why this process may not write the ledger (the message writes raise), or None.
        self._read_only = self._store.read_only_reason
        self._pid = os.getpid()
        self._identity = self._db_identity()
        self._mirrors = mirrors
        # Only a read unless the files are out of step: then they are adopted or repaired
        # under the write lock (the seed's files in a new ledger, a deleted database, a
        # mirror rewritten by the seed's code, a crash). A file that does not read as records
        # is reported and left alone; writes refuse to overwrite it.
        #: A new directory: opening it wrote nothing; its first write starts the files first.
        self._mirrors_unstarted = self._want_mirrors and not any(
            p.exists() for p in mirrors.paths.values())
        if not self._mirrors_in_step():
            if self._read_only is None:
                with self._store.writing() as tx, self._mirrors.transaction(tx, strict=False):
                    pass  # entering it repairs
                self._identity = self._db_identity()  # the adoption may have created the database
            else:
                log.warning(
                    "%s: the mirror files are out of step with the database and this user may "
                    "not repair them; reads use the database (records only the files hold are "
                    "left out until a user who may write opens the ledger)", where,
                )
        log.debug("opened %s%s", where, " read-only" if self.read_only else "")

    def _mirrors_in_step(self) -> bool:
        """Whether the mirrors are in step. A user who may not write verifies a file whose
        identity changed by its content (a restored copy is in step); a writer leaves that to
        the repair under the write lock, which records the copy's new identity once, so later
        opens stay cheap.
        Records stored after the last one the files hold (by a ``mirrors=False`` ledger) put
        them out of step: opening the ledger appends them."""
        try:
            return self._mirrors.in_step(self._store, verify=self._read_only is not None)
        except PermissionError:
            if self._read_only is None:
                raise
            return False  # a mirror this user may not read (made 0600 by an older release)

    def _db_identity(self) -> tuple[int, int] | None:
        if self.directory is None:
            return None
        try:
            st = os.stat(self._db_path)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def _ensure(self) -> Store:
        """Reopen after a fork, or when the database file was deleted or replaced."""
        with self._lock:
            if os.getpid() != self._pid:
                self._store.after_fork()
                self._pid = os.getpid()
            if self.directory is not None and self._db_identity() != self._identity:
                log.info("%s was removed or replaced; reopening", self.directory / DB_NAME)
                self._store.dispose()
                self._open()
            return self._store

    def close(self) -> None:
        """Release database connections and open files (the ledger reopens if used again)."""
        self._store.dispose()
        self._mirrors.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.location.describe()!r})"

    @property
    def mirrors_enabled(self) -> bool:
        return self._mirrors.enabled

    @property
    def read_only(self) -> bool:
        """True when this process may only read the ledger (its directory or files are not
        writable for this user, or the file system is read-only). Reads work; writes raise
        :class:`ReadOnlyLedgerError`. Decided when the ledger opens."""
        return self._read_only is not None

    def _writable(self) -> Store:
        """The store, for a write: refused before anything is touched on a read-only ledger."""
        store = self._ensure()
        if self._read_only is not None:
            raise ReadOnlyLedgerError(self._read_only)
        if self.directory is not None and self._identity is None:
            # The first write into a ledger that did not exist: its directory and database
            # now (reads never create them), known as this ledger's own file from here on.
            try:
                store.create()
            except ReadOnlyLedgerError:
                raise
            except PermissionError as exc:
                raise ReadOnlyLedgerError(
                    f"{self.location.describe()} does not exist and this user may not create it "
                    f"({exc.strerror})") from None
            self._identity = self._db_identity()
        if self._mirrors_unstarted:
            # The files and their committed state come first, in a transaction of their own:
            # a write's append journal then always names a committed state, so a database
            # deleted after the ledger's first write is never mistaken for that write dying
            # before its commit (which would cut its records out of the files).
            with store.writing() as tx, self._mirrors.transaction(tx):
                pass
            self._mirrors_unstarted = False
        return store

    # ------------------------------------------------------------------ writes

    def _write(self, batch: Batch, claim: tuple[list[str], pd.DataFrame] | None = None) -> int:
        """Store ``batch`` (and mirror it); returns how many records were stored. With
        ``claim`` (the rows' import keys and the validated frame the batch came from), rows
        whose key another import already claimed are left out, in the same transaction."""
        store = self._writable()
        prepared = self._mirrors.prepare(batch)  # formatted before the lock is taken
        # Without a claim the body is the insert alone (PostgreSQL: one round trip); one
        # record may take the store's short path (SQLite: stdlib sqlite3 alone).
        return self._in_write(store, lambda tx, m: self._store_batch(tx, m, batch, prepared, claim),
                              one=claim is None and len(batch) == 1, single=claim is None)

    def _write_chunks(self, clean: pd.DataFrame, keyed: bool) -> int:
        """Store the validated, sorted ``clean`` (``keyed``: its ``import_key`` column claims
        its rows) in ONE transaction, inserted :attr:`log_many_chunk` rows at a time: the same
        records, best models and mirror bytes as one insert, all or nothing, with only one
        chunk's batch and mirror text in memory at once."""
        store = self._writable()
        chunk = max(1, int(self.log_many_chunk))

        def body(tx: WriteTx, m: MirrorTransaction | NullMirrorTransaction) -> int:
            frame = clean
            if keyed:  # every key claimed at once, as one batch claims them
                keys = frame["import_key"].tolist()
                won = tx.claim_keys(keys)
                if len(won) < len(set(keys)):
                    frame = frame[[k in won for k in keys]]
            for start in range(0, len(frame), chunk):
                m.insert(Batch.from_frame(frame.iloc[start:start + chunk]))
            return len(frame)

        return self._in_write(store, body, one=False, single=False)

    def _in_write(self, store: Store,
                  body: Callable[[WriteTx, MirrorTransaction | NullMirrorTransaction], int],
                  *, one: bool, single: bool) -> int:
        """Run ``body`` in a write transaction with the mirrors' (again after a write
        conflict, or on the store's full path when its short one cannot run it)."""
        for attempt in range(8):
            try:
                opened = store.writing_one() if one else store.writing(single=single)
                with opened as tx, self._mirrors.transaction(tx) as m:
                    return body(tx, m)
            except RunAgain:
                continue  # the body needed the store's full path, which it takes from now on
            except WriteConflictError as exc:
                if attempt == 7:
                    raise
                log.debug("write conflict (%s); retrying", exc)
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _store_batch(
        tx: WriteTx, m: MirrorTransaction | NullMirrorTransaction, batch: Batch,
        prepared: PreparedAppend | None, claim: tuple[list[str], pd.DataFrame] | None,
    ) -> int:
        """The body of :meth:`_write`'s transaction; returns how many records it stored
        (with ``claim``, the rows no other import had claimed)."""
        if claim is not None:
            keys, frame = claim
            won = tx.claim_keys(keys)
            if len(won) < len(set(keys)):
                mask = [k in won for k in keys]
                if not any(mask):
                    return 0
                batch, prepared = Batch.from_frame(frame[mask]), None
        m.insert(batch, prepared)
        return len(batch)

    def log(
        self,
        model_name: str,
        ticker: str,
        sharpe: float | None = None,
        mse: float | None = None,
        drawdown: float | None = None,
        total_return: float | None = None,
        win_rate: float | None = None,
        accuracy: float | None = None,
        notes: str = "",
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        timestamp: Any = None,
    ) -> dict[str, Any]:
        """Record one evaluation and return it as the seed's record dict.

        ``win_rate`` and ``accuracy`` are fractions in [0, 1]; ``drawdown`` is <= 0;
        ``mse`` >= 0. ``metrics`` holds custom metrics (register their direction with
        :meth:`register_metric` to track their best). ``timestamp`` (default: now, UTC)
        backfills an old evaluation; a naive datetime is read as UTC. Bad input raises
        :class:`ValidationError` or ``TypeError`` and stores nothing.
        """
        rec = validate_record(
            model_name, ticker, sharpe=sharpe, mse=mse, drawdown=drawdown,
            total_return=total_return, win_rate=win_rate, accuracy=accuracy, notes=notes,
            metrics=metrics, params=params, tags=tags, timestamp=timestamp,
        )
        batch = Batch.from_record(rec)
        self._write(batch)
        out = rec.seed_dict(batch.timestamps()[0])
        log.debug("logged %s/%s at %s", rec.ticker, rec.model_name, out["timestamp"])
        return out

    def log_many(
        self, records: pd.DataFrame | Iterable[Mapping[str, Any]], *, import_keys: Sequence[str] | None = None
    ) -> int:
        """Record many evaluations in one transaction; returns how many were stored.
        A large input is inserted :attr:`log_many_chunk` rows at a time, still in that one
        transaction: all or nothing, in bounded memory.

        Accepts a DataFrame or an iterable of dicts with the keys of :meth:`log` (extra
        numeric columns are custom metrics). A ``returns`` column of series (lists, arrays,
        pandas Series) keeps each row's return series, as :meth:`log_backtest` does; a
        ``returns`` column of numbers (a user's scalar total return, say) is a custom metric
        named ``returns`` like any other numeric column, never read as a series; a column
        mixing numbers and series is refused, naming ``returns``. Every row is validated first: one
        :class:`ValidationError` lists each bad row by index and field, and nothing is stored.
        The batch is stored (and mirrored) in (ticker, timestamp) order.

        ``import_keys`` (one per row; the importer's content digests) makes the call
        idempotent under concurrency: a row whose key was already recorded, by this or any
        concurrent call, is not stored. Returns how many rows were stored.
        """
        import pandas as pd

        if isinstance(records, pd.DataFrame):
            frame = records
        else:
            rows = list(records)
            refuse_nan(rows)
            frame = pd.DataFrame(rows)
        if frame.empty:
            return 0
        clean = validate_frame(frame)
        if import_keys is not None:
            if len(import_keys) != len(clean):
                raise ValidationError(
                    f"import_keys has {len(import_keys)} keys for {len(clean)} rows",
                    [(None, "import_keys", "length")],
                )
            clean = clean.assign(import_key=list(import_keys))
        # Stored in (ticker, time) order: one ticker's rows end up next to each other on
        # disk, which halves the index work here and makes history(ticker=...) a short scan.
        clean = clean.sort_values(["ticker", "ts_us"], kind="stable")
        if len(clean) > self.log_many_chunk:
            stored = self._write_chunks(clean, import_keys is not None)
        else:
            claim = (clean["import_key"].tolist(), clean) if import_keys is not None else None
            stored = self._write(Batch.from_frame(clean), claim)
        log.debug("logged %d records", stored)
        return stored

    def register_metric(self, name: str, higher_is_better: bool) -> None:
        """Declare a custom metric's direction so :meth:`best` tracks it as ``best_<name>``.

        Stored in the database (every process sees it) and applied to history already
        logged. Registering again with the other direction recomputes its best entries.
        """
        check_metric_name(name, "name")
        if not isinstance(higher_is_better, bool):
            raise TypeError(
                f"higher_is_better must be a bool, got {type(higher_is_better).__name__} "
                f"{higher_is_better!r}"
            )
        store = self._writable()
        with store.writing() as tx, self._mirrors.transaction(tx) as m:
            if tx.register_metric(name, higher_is_better):
                m.write_best()

    def clear(self) -> None:
        """Take every record out of the ledger (registered metrics stay registered): reads
        see an empty ledger and the mirrors become empty (in the same transaction, also when this
        ledger was opened with ``mirrors=False``). The records are kept until
        :meth:`purge_cleared` deletes them, so :meth:`restore_cleared` can undo the clear;
        ``stats()["cleared"]`` says how many are kept."""
        store = self._writable()
        mirrors = self._whole_ledger_mirrors()
        try:
            # Entering the mirrors' transaction adopts records only a mirror holds: not lost.
            with store.writing() as tx, mirrors.transaction(tx) as m:
                kept = tx.clear()
                m.reset()
        finally:
            if mirrors is not self._mirrors:
                mirrors.close()
        log.info("cleared %s (%d records kept until purged: `perfledger restore` brings them back)",
                 describe_store(self.url), kept)

    def restore_cleared(self) -> int:
        """Bring back every record that earlier clears took out and no purge deleted, exactly
        as it was logged (timestamps, metrics, custom metrics, params, tags, notes), beside
        any record logged since; best models, leaderboards and the mirrors follow. One
        transaction: all come back or none. Returns how many records came back.

        A kept record the ledger holds again (a sync or an import brought it back since the
        clear) is not restored twice: its identity is its content, as ``import`` and
        ``sync`` key it, counted (two identical records kept and one held again: one comes
        back). Each record that comes back has its content key recorded as an imported or
        synced one has, so a later sync or import of it adds nothing."""
        store = self._writable()
        for attempt in range(8):
            try:
                with store.writing() as tx, self._mirrors.transaction(tx) as m:
                    restored, skipped = _restore_kept(tx, m)
                break
            except WriteConflictError:
                if attempt == 7:
                    raise
                time.sleep(0.01 * (attempt + 1))
        log.info("restored %d cleared records into %s (%d held again already, not restored twice)",
                 restored, describe_store(self.url), skipped)
        return restored

    def purge_cleared(self, older_than: timedelta | str | None = None) -> int:
        """Delete for good the records kept by clears made more than ``older_than`` ago (a
        ``timedelta`` or text such as ``'30d'``, ``'12h'``, ``'2w'``; None: every clear).
        Returns how many records were deleted; they can no longer be restored."""
        age = check_age("older_than", older_than)
        store = self._writable()
        before = None if age is None else time.time_ns() // 1000 - age // timedelta(microseconds=1)
        with store.writing() as tx:
            purged = tx.forget_cleared(before)
        log.info("purged %d cleared records from %s", purged, describe_store(self.url))
        return purged

    @classmethod
    def repair(cls, location: str | os.PathLike[str] | sa.URL | Location | None = None) -> list[str]:
        """Make a ledger whose schema is damaged whole again: recreate the missing tables
        (and a missing ``pl_meta``), recompute every derived table (best models, summaries,
        pairs, params/tags labels) from the records, and rewrite the mirror files from the
        database. Returns what was done, one line each.

        A classmethod: a damaged ledger does not open (``Ledger(location)`` raises
        :class:`~perfledger.errors.StorageError` with ``cause="schema"``, naming what is
        missing). When the records table itself is gone nothing can be recomputed: it
        raises the same error, pointing at the mirror files and the backups, and creates
        nothing."""
        loc = resolve(location)
        guarded = tuple(SeedMirrors(loc.directory).paths.values()) if loc.directory is not None else ()
        store = open_store(loc.url, ledger=loc.describe(), guarded=guarded, repair=True,
                           make_directory=loc.directory is not None)
        try:
            done, absent = list(store.repaired), store.absent
        finally:
            store.dispose()
        if absent:  # nothing there: a repair creates no ledger
            return done
        with cls(loc) as led:
            if led.mirrors_enabled:
                led.rebuild_mirrors()
                done.append("rewrote the mirror files from the database")
        log.info("repaired %s: %s", loc.describe(), "; ".join(done))
        return done

    def _whole_ledger_mirrors(self) -> Mirrors:
        """The mirrors an operation that removes records works on: a directory's files
        whatever this ledger's ``mirrors`` flag. ``mirrors=False`` only defers appends (the
        next ledger that keeps the files adds what they lack); records removed from the
        database must leave the files at once, or seed scripts keep reading them."""
        if self._mirrors.enabled or self.directory is None:
            return self._mirrors
        return SeedMirrors(self.directory, adopt_file)

    def rebuild_mirrors(self) -> None:
        """Rewrite the three seed files from the database."""
        store = self._writable()
        if not self._mirrors.enabled:
            raise MirrorsDisabledError(
                f"{self!r} keeps no mirror files; use export_seed_files(directory) instead"
            )
        with store.writing() as tx, self._mirrors.transaction(tx, strict=False) as m:
            m.rebuild()

    def copy_to(self, target: Ledger | str | os.PathLike[str] | Location) -> int:
        """Copy every record (and the registered metrics) into an empty ledger, e.g. an
        embedded one into PostgreSQL, in one transaction; returns how many were copied."""
        from .files.transfer import copy_store

        dest = target if isinstance(target, Ledger) else Ledger(target)
        try:
            return copy_store(self._ensure(), dest._writable(), dest._mirrors)
        finally:
            if dest is not target:  # opened here: closed here, not left to the collector
                dest.close()

    def sync(
        self,
        target: Ledger | str | os.PathLike[str] | Location,
        *,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        since: Any = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SyncResult:
        """Bring this ledger's records into ``target`` (a ledger, directory or URL) that may
        already hold records: a node's ledger into the team store, or the team store into a
        laptop's (filtered by ``ticker``, ``model_name``, ``since``).

        Idempotent (a record's identity is its content, as ``import`` keys it: a second sync
        adds nothing, and records the target holds from elsewhere are not doubled),
        incremental (the target keeps a high-water mark per source: the next sync reads the
        new records only), safe to run concurrently and to kill (a chunk's records and the
        mark that covers them commit together). Registered metric directions travel too; one
        that contradicts the target's is a :class:`ValidationError` naming the metric, and
        nothing is synced. A record the target holds without its kept return series gets
        the source's; one with a different series keeps its own, counted in the result
        (``series_attached``, ``series_differ``). ``progress(done, total)`` is called as
        source records are read.
        """
        from .files.sync import SyncFilter, sync_stores

        since_us, _ = time_window(None, since, None)
        flt = SyncFilter(check_names("ticker", ticker), check_names("model_name", model_name), since_us)
        dest = target if isinstance(target, Ledger) else Ledger(target)
        try:
            return sync_stores(self._ensure(), dest._writable(), dest, dest._mirrors, flt=flt,
                               progress=progress)
        finally:
            if dest is not target:
                dest.close()

    def import_mlflow(
        self,
        uri: str | os.PathLike[str],
        *,
        ticker_from: str = "param:ticker",
        model_from: str = "run-name",
        metrics: Mapping[str, str] | None = None,
        experiments: Sequence[str] | None = None,
        skip_invalid: bool = False,
    ) -> MlflowImportReport:
        """Import an MLflow tracking store's finished runs, one evaluation each, reading its
        database (``sqlite:///mlflow.db``, an SQLite file's path, or ``postgresql://...``)
        without MLflow. ``ticker_from``/``model_from``: ``param:NAME``, ``tag:NAME`` (or
        ``run-name`` for the model); ``metrics={"sharpe": "sharpe_ratio"}`` maps MLflow metric
        names to the ledger's. Idempotent (a second import adds nothing); runs without a
        ticker or model are listed in the report by run id, not guessed. The rules:
        :mod:`perfledger.files.mlflow`."""
        from .files.mlflow import import_mlflow

        self._writable()
        return import_mlflow(self, uri, ticker_from=ticker_from, model_from=model_from, metrics=metrics,
                             experiments=experiments, skip_invalid=skip_invalid)

    def export_seed_files(self, directory: str | os.PathLike[str]) -> Path:
        """Write the seed's three files into ``directory`` from any store; returns it."""
        target = Path(directory).expanduser().resolve()
        if self.directory is not None and target == self.directory.resolve():
            raise ValidationError(
                f"directory={str(directory)!r} is this ledger's own directory, whose files it keeps "
                "itself; use rebuild_mirrors() to rewrite them", [(None, "directory", "the ledger's own")],
            )
        store = self._ensure()
        with store.snapshot() as tx:
            write_seed_files(target, tx)
        return target

    # ------------------------------------------------------------------ backtests

    def log_backtest(
        self,
        model_name: str,
        ticker: str,
        returns: Any,
        predictions: Any = None,
        actuals: Any = None,
        periods_per_year: float = 252,
        notes: str = "",
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        timestamp: Any = None,
        *,
        keep_returns: bool = True,
    ) -> dict[str, Any]:
        """Compute a backtest's metrics from per-period returns and log them as one
        evaluation (conventions in ``docs/metrics.md``); returns the record.

        Core metrics go to their columns; ``sortino, calmar, volatility, n_periods, skew,
        kurtosis, psr`` (and ``periods_per_year``) are custom metrics, registered in their
        directions so ``best()`` tracks them. Everything is validated before anything is
        written, so bad returns or labels store nothing (not even a registration).

        The return series itself is kept with the record (exactly, as float64; a pandas
        Series with a DatetimeIndex keeps its dates, a list or array its order), unless
        ``keep_returns=False``: :meth:`returns`, :meth:`returns_frame` and
        :meth:`overfitting` read it back. NaN/inf, fewer than 2 periods, or a DatetimeIndex
        that is not strictly increasing are a :class:`ValidationError` naming ``returns``.
        """
        import numpy as np

        from .records.kept_returns import keep_returns as kept_series
        from .records.kept_returns import materialised
        from .stats.backtest import BACKTEST_DIRECTIONS, backtest_metrics

        # numpy's bools too (a flag read from an array, a mask's element): np.False_ is
        # False; anything else (0, "no", None) is refused, not read as truthy or falsy.
        if not isinstance(keep_returns, bool | np.bool_):
            raise WrongTypeError.of("keep_returns", f"keep_returns must be True or False, got "
                                                   f"{keep_returns!r} ({type(keep_returns).__name__})")
        keep_returns = bool(keep_returns)
        returns = materialised(returns)  # a generator is read twice below: once for each
        kept = kept_series(returns)
        core, custom = backtest_metrics(returns, periods_per_year, predictions, actuals)
        rec = validate_record(model_name, ticker, notes=notes, metrics=custom, params=params, tags=tags,
                              timestamp=timestamp, **core)
        known = self.metric_directions()
        for name, higher in BACKTEST_DIRECTIONS.items():
            if known.get(name) is not higher:
                self.register_metric(name, higher)
        batch = Batch.from_records([rec])
        if keep_returns:
            batch.returns = [kept]
        self._write(batch)
        return rec.seed_dict()

    def returns(self, record_id: int) -> pd.Series:
        """The return series :meth:`log_backtest` kept for record ``record_id`` (the
        ``record_id`` column of ``history(include_meta=True)``): float64, exactly as logged,
        indexed by its UTC dates when it had them (else 0..n-1). A record without kept
        returns is a :class:`ValidationError` naming ``record_id``."""
        rid = int(check_count("record_id", record_id, 1))  # type: ignore[arg-type]
        store = self._ensure()
        kept = store.returns([rid]).get(rid)
        if kept is None:
            cleared = ("; a cleared record comes back with restore_cleared() (`perfledger restore`)"
                       if store.stats().get("cleared") else "")
            if rid > store.last_id():
                raise ValidationError.of("record_id", f"no record {rid} in the ledger (its highest "
                                                      f"record_id is {store.last_id()}){cleared}")
            raise ValidationError.of("record_id", f"record_id={rid} has no kept return series: logged "
                                                  "without one (log it with log_backtest(..., "
                                                  f"returns=...)), or not in the ledger{cleared}")
        return kept.series(name=rid)

    def _read_returns(self, ids: list[int]) -> Mapping[int, KeptReturns]:
        """The kept series of records ``ids``, as stored (an import compares them)."""
        return self._ensure().returns(ids)

    def _attach_returns(self, kept: Mapping[int, KeptReturns]) -> int:
        """Attach ``kept[id]`` to each record ``id`` still without a series, in one write
        transaction (an import bringing the series of records present without one:
        :mod:`perfledger.files.attach`); returns how many were attached."""
        store = self._writable()
        # (in the mirrors' transaction like every write, though the files hold no series)
        with store.writing() as tx, self._mirrors.transaction(tx):
            return len(tx.attach_returns(kept))

    @shares_filters
    def returns_frame(
        self,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        days_back: float | None = None,
        since: Any = None,
        until: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        at_least: Mapping[str, float] | None = None,
        at_most: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """The kept return series of the evaluations :meth:`history` finds with the same
        filters, one column per evaluation (named by its ``record_id``, oldest first),
        aligned on their dates (the union; NaN where one has no return; daily-or-coarser series
        on their UTC date), or, when all were kept without dates and have one length, on their
        order. Series that cannot be matched (dated mixed with undated, undated of different
        lengths, different ``periods_per_year``) are a :class:`ValidationError` naming
        ``returns`` that says why: the one rule of :mod:`perfledger.records.alignment`, which
        :meth:`overfitting` and :meth:`effective_trials` apply too.
        ``frame.attrs["model_name"]`` maps each column to its model. Evaluations without
        kept returns are left out; none: an empty frame."""
        return self._returns_frame(self._query(RecordFilter.of(locals())))

    def _returns_frame(self, query: HistoryQuery) -> pd.DataFrame:
        """:meth:`returns_frame` of a checked query."""
        from .records.alignment import align

        store = self._ensure()
        # Only the ids, models, frequencies and series of the records that kept one, in one
        # read: not the metrics, notes, params and tags a history() would fetch and drop.
        found = store.returns_matching(query) if store.any_returns() else []
        ids = [rid for rid, _, _, _ in found]
        models = {rid: model for rid, model, _, _ in found}
        ppy = {rid: per for rid, _, per, _ in found if per is not None}
        kept = {rid: series for rid, _, _, series in found}
        frame = align(kept, ids, ppy)  # the one matching rule (records/alignment.py), or refused
        frame.attrs["model_name"] = {i: models[i] for i in ids}
        return frame

    def sharpe_confidence(
        self, ticker: str, periods_per_year: float = 252, n_trials: int | None = None
    ) -> pd.DataFrame:
        """Per model on ``ticker``: best Sharpe, Probabilistic and Deflated Sharpe Ratio,
        deflated by every logged evaluation with a Sharpe on the ticker plus every trial that
        ran without one (:meth:`unscored_trials`: pruned or failed), or by ``n_trials`` when
        more configurations were tried than logged (see
        :func:`perfledger.stats.backtest.sharpe_confidence`)."""
        from .stats.backtest import sharpe_confidence

        _one_ticker(ticker)
        hist = self.history(ticker=ticker)
        return sharpe_confidence(
            hist, periods_per_year=periods_per_year, n_trials=n_trials,
            unscored=self.unscored_trials(ticker),
            effective=self.effective_trials(ticker) if n_trials is None and len(hist) > 1 else None,
        )

    def effective_trials(self, ticker: str) -> tuple[float, int] | None:
        """(N_eff, k): the effective number of independent trials among the k evaluations
        on ``ticker`` with a Sharpe and a kept return series, from their correlations on their
        common periods (:func:`perfledger.stats.trials.effective_trials`, Li & Ji's
        eigenvalue count; docs/metrics.md); None when fewer than 2 such series share at least 3 periods
        (or one is constant there), or when the series cannot be compared period by period:
        different ``periods_per_year``, or series kept without dates of different lengths.
        What the DSR of :meth:`sharpe_confidence` deflates by."""
        from .records.alignment import common_periods
        from .stats.trials import effective_trials

        _one_ticker(ticker)
        if not self._ensure().any_returns():
            return None
        # Only what is tested here (a ticker's whole history is most of the cost otherwise).
        hist = self.history(ticker=ticker, include_meta=True, columns=["sharpe"])
        hist = hist[hist["sharpe"].notna() & hist["has_returns"]]
        if len(hist) < 2:
            return None
        scored = set(hist["record_id"].astype(int))
        try:  # the one matching rule (records/alignment.py): what it refuses has no N_eff
            frame = self.returns_frame(ticker=ticker)
            frame = common_periods(frame[[c for c in frame.columns if c in scored]])
        except ValidationError:
            return None
        if frame.shape[1] < 2 or frame.shape[0] < 3:
            return None
        try:
            return effective_trials(frame.to_numpy()), int(frame.shape[1])
        except ValidationError:
            return None

    def overfitting(
        self,
        ticker: str,
        *,
        model_name: str | Sequence[str] | None = None,
        days_back: float | None = None,
        since: Any = None,
        until: Any = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        at_least: Mapping[str, float] | None = None,
        at_most: Mapping[str, float] | None = None,
        partitions: int = 16,
        metric: str = "sharpe",
        periods_per_year: float = 252,
    ) -> Overfitting:
        """The Probability of Backtest Overfitting of the evaluations on ``ticker`` that kept
        their return series (filters as :meth:`history`), by combinatorially symmetric
        cross-validation over their common periods (the dates every one of them has, matched
        by the rule of :meth:`returns_frame`, which refuses series it cannot match) in
        ``partitions`` blocks (S, even, 2..20; 16 by default: 12,870 splits), ``metric``
        "sharpe" (or "sortino", "mean", "total_return"). Returns
        :class:`perfledger.stats.overfitting.Overfitting`:
        ``pbo``, the ``logits``, each split's winner in and out of sample and the degradation
        line (``slope``, ``intercept``, ``r_squared``), ``prob_oos_loss``; its ``trials`` are
        ``"<model_name>#<record_id>"``. Formulas and sources: docs/metrics.md.

        Fewer than 2 such evaluations, or too few common periods for ``partitions``: one
        :class:`ValidationError` line saying how many are needed."""
        from .records.alignment import common_periods
        from .stats.overfitting import probability_of_backtest_overfitting

        _one_ticker(ticker)
        frame = self._returns_frame(self._query(RecordFilter.of(locals())))
        models = frame.attrs.pop("model_name", {})  # (pandas deep-copies attrs on every operation)
        if frame.shape[1] < 2:
            raise ValidationError.of(
                "ticker", f"overfitting needs at least 2 evaluations on {ticker!r} with kept returns "
                          f"(log_backtest(..., returns=...)); the filters found {frame.shape[1]}")
        common = common_periods(frame)  # the dates every one of them has, or one line: none
        common.columns = [f"{models[c]}#{c}" for c in frame.columns]
        return probability_of_backtest_overfitting(common, partitions, metric, periods_per_year)

    def unscored_trials(self, ticker: str) -> int:
        """How many trials on ``ticker`` ran but have no Sharpe: records tagged
        ``trial_state=pruned`` or ``failed`` (an Optuna study's pruned and failed trials, see
        :mod:`perfledger.integrations.optuna`) whose ``sharpe`` is empty. The Deflated Sharpe
        Ratio counts them in its N: they were tried too."""
        from .stats.backtest import TRIAL_STATE_TAG, UNSCORED_STATES

        _one_ticker(ticker)
        return sum(
            int(self.history(ticker=ticker, tags={TRIAL_STATE_TAG: state}, columns=["sharpe"])["sharpe"]
                .isna().sum())
            for state in UNSCORED_STATES
        )

    # ------------------------------------------------------------------ reads

    """History, records, best models, listings, leaderboards, decay and statistics."""

    @shares_filters
    def history(
        self,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        days_back: float | None = None,
        since: Any = None,
        until: Any = None,
        *,
        at_least: Mapping[str, float] | None = None,
        at_most: Mapping[str, float] | None = None,
        limit: int | None = None,
        include_meta: bool = False,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Evaluations as a DataFrame, oldest first (so ``iloc[-1]`` is the latest).

        Columns: the seed's (``timestamp`` as a UTC pandas datetime, metrics as floats) plus
        one per custom metric. ``ticker``/``model_name`` take one name or a list.
        ``days_back`` is exact (now minus that many days); ``since``/``until`` are datetimes
        or ISO strings. ``at_least={"sharpe": 1.0}``, ``at_most={"mse": 0.02}`` filter on
        metric values (custom ones too). ``params={"max_depth": 6}``, ``tags={"run":
        "nightly"}`` keep records holding every given key with an equal value (params compare
        as JSON values: ``6`` matches ``6`` and ``6.0``, never ``"6"``; a tuple matches an
        array). ``limit`` keeps only the latest N rows. Every filter runs in the database.
        ``include_meta=True`` adds ``params`` and ``tags`` columns (dicts), ``record_id``
        and ``has_returns`` (whether :meth:`log_backtest` kept its return series).
        ``columns=["sharpe"]`` reads only those metrics (core or custom; ``"notes"`` too)
        besides ``timestamp``, ``ticker`` and ``model_name``: a chart of one metric reads a
        fraction of the values (a custom metric never stored comes back as NaN).
        """
        return self._history(RecordFilter.of(locals()), limit=check_limit(limit), include_meta=include_meta,
                             columns=check_columns(columns))

    def _history(self, chosen: RecordFilter, **more: Any) -> pd.DataFrame:
        query = self._query(chosen, **more)
        return history_frame(self._ensure().history(query), query)

    @shares_filters
    def count(
        self,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        days_back: float | None = None,
        since: Any = None,
        until: Any = None,
        *,
        at_least: Mapping[str, float] | None = None,
        at_most: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> int:
        """How many evaluations :meth:`history` with the same filters returns (without
        ``limit``), counted in the database: a view showing the latest rows can say how many
        matched without fetching them."""
        return self._ensure().count(self._query(RecordFilter.of(locals())))

    def history_rows(
        self,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        days_back: float | None = None,
        *,
        at_least: Mapping[str, float] | None = None,
        at_most: Mapping[str, float] | None = None,
        limit: int | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> tuple[list[str], list[tuple[Any, ...]]] | None:
        """:meth:`history`'s columns and rows as plain tuples (timestamps as UTC datetimes,
        missing values None) when the store reads them without pandas, else None.

        Why: a command line printing 50 rows, or reading one value, should not import
        pandas, pyarrow and SQLAlchemy first. The SQLite single-record path answers the plain
        filters; anything else (PostgreSQL, params/tags filters) returns None and the caller
        uses :meth:`history`. Arguments are checked as :meth:`history` checks them."""
        chosen = RecordFilter(ticker, model_name, days_back, params=params, tags=tags,
                              at_least=at_least, at_most=at_most)
        return self._ensure().history_rows(self._query(chosen, limit=check_limit(limit)))

    def latest_value(self, ticker: str, model_name: str, metric: str,
                     days_back: float | None = None) -> list[tuple[float, Any]] | None:
        """The latest value of ``metric`` for one (ticker, model) pair, within ``days_back``,
        and its timestamp, as a list of one (``[]``: no value), read without pandas when the
        store can (as :meth:`history_rows`); None when it cannot (use :meth:`history`)."""
        return self._ensure().latest(self._query(RecordFilter(ticker, model_name, days_back)), metric)

    @staticmethod
    def _query(chosen: RecordFilter, **more: Any) -> HistoryQuery:
        """A checked :class:`HistoryQuery` (every filter validated, none yet run)."""
        return HistoryQuery(**chosen.checked(), **more)

    def records(
        self,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        days_back: float | None = None,
        since: Any = None,
        until: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        include_returns: bool = False,
        include_meta: bool = False,
    ) -> list[dict[str, Any]]:
        """Whole records (the seed's dict plus ``metrics``, ``params``, ``tags``), oldest
        first, filtered in the database (``params``/``tags`` as in :meth:`history`): what
        exports and imports need beyond history(). ``include_returns=True`` adds
        ``returns``: the kept return series (a Series, as :meth:`returns` gives it) or None.
        ``include_meta=True`` adds ``record_id`` and ``has_returns`` (what an import or a
        sync needs to attach a series to a record already present)."""
        frame = self.history(ticker, model_name, days_back, since, until, include_meta=True,
                             params=params, tags=tags)
        out = records_from_frame(frame)
        if include_meta:
            for rec, rid, has in zip(out, frame["record_id"].tolist(), frame["has_returns"].tolist(),
                                     strict=True):
                rec["record_id"], rec["has_returns"] = int(rid), bool(has)
        if include_returns:
            ids = frame["record_id"].to_numpy()[frame["has_returns"].to_numpy()].tolist()
            kept = self._ensure().returns(ids)
            for rec, rid in zip(out, frame["record_id"].tolist(), strict=True):
                r = kept.get(int(rid))
                rec["returns"] = None if r is None else r.series()
        return out

    def best(self, ticker: str | None = None) -> dict[str, Any]:
        """The seed's best-models structure: ``{ticker: {"best_sharpe": {"model", "value",
        "timestamp"}, ...}}``, or one ticker's inner dict (``{}`` for an unknown ticker)."""
        if ticker is not None:
            check_label("ticker", ticker)
        return self._ensure().best(ticker)

    def tickers(self) -> list[str]:
        """Tickers with at least one record, sorted."""
        return self._ensure().tickers()

    def models(self, ticker: str | None = None) -> list[str]:
        """Model names with at least one record (for ``ticker`` if given), sorted."""
        if ticker is not None:
            check_label("ticker", ticker)
        return self._ensure().models(ticker)

    def params(self, ticker: str | None = None) -> dict[str, list[Any]]:
        """Every param name (of ``ticker``'s records, if given) with its distinct values,
        sorted: what a picker offers. Whole numbers come back as ints, arrays as tuples, so
        every value but a JSON object can be passed back as a ``params=`` filter."""
        return self._labels(LabelKind.PARAM, ticker)

    def tags(self, ticker: str | None = None) -> dict[str, list[str]]:
        """Every tag key (of ``ticker``'s records, if given) with its distinct values, sorted."""
        return self._labels(LabelKind.TAG, ticker)

    def _labels(self, kind: LabelKind, ticker: str | None) -> dict[str, list[Any]]:
        if ticker is not None:
            check_label("ticker", ticker)
        out: dict[str, list[Any]] = {}
        for k, key, value, _n in self._ensure().labels(ticker):
            if k == kind:
                out.setdefault(key, []).append(decode(value))
        return {key: sorted(out[key], key=sort_key) for key in sorted(out)}

    def metric_directions(self) -> dict[str, bool]:
        """Every metric :meth:`best` tracks, mapped to True when higher is better."""
        return self._ensure().directions()

    def leaderboard(
        self,
        ticker: str | None = None,
        metric: str = "sharpe",
        days_back: float | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        by: str = "model",
        since: Any = None,
        until: Any = None,
        at_least: Mapping[str, float] | None = None,
        at_most: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """One row per model (per ticker and model when ``ticker`` is None) with count, mean,
        std, min, max and latest of each metric, ranked within each ticker by the mean of
        ``metric`` in its own direction. Without filters the statistics come from a summary
        the database keeps up to date on every insert; with any of ``days_back``/``since``/
        ``until``, ``at_least``/``at_most``, ``params``/``tags`` (as in :meth:`history`) or
        ``by``, the database selects and groups the matching records.

        ``by="param:NAME"`` or ``"tag:NAME"`` ranks that param's (tag's) values instead of
        models: one row per (ticker, value), the values in a column named ``NAME`` (or
        ``param:NAME`` if NAME is ``rank``, ``ticker`` or ``records``); records without it
        are left out. A ``by`` naming no param or tag of the ledger is a ValidationError."""
        if ticker is not None:
            check_label("ticker", ticker)
        grouping = parse_by(by)
        query = self._query(RecordFilter(ticker, None, days_back, since, until, params=params, tags=tags,
                                         at_least=at_least, at_most=at_most))
        store = self._ensure()
        group = group_column(grouping, store.labels() if grouping else (), by, STATS)
        directions = self._directions_for(store, metric)
        long, pairs = store.leaderboard_stats(query, grouping)
        return leaderboard_frame(long, pairs, metric, directions, group)

    @staticmethod
    def _directions_for(store: Store, metric: str) -> dict[str, bool]:
        """Every metric's direction (True: higher is better); a ValidationError naming
        ``metric`` when it has none."""
        directions = store.directions()
        if metric not in directions:
            raise ValidationError(
                f"metric={metric!r} has no known direction; known: {sorted(directions)} "
                "(register a custom metric with Ledger.register_metric)",
                [(None, "metric", "unknown")],
            )
        return directions

    def decay(
        self,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        metric: str = "sharpe",
        *,
        recent: int = 20,
        alpha: float = 0.01,
        baseline: int | None = 100,
        days_back: float | None = None,
        since: Any = None,
        until: Any = None,
    ) -> pd.DataFrame:
        """Is a model getting worse? One row per (ticker, model) with at least ``recent + 10``
        values of ``metric``: its latest ``recent`` evaluations against up to ``baseline``
        before them (None: all of them), by a one-sided Mann–Whitney U test in the metric's
        own direction (a rising MSE is worse, a rising Sharpe is not; custom metrics use their
        registered direction). ``decayed`` is ``p_value < alpha``.

        Columns: ticker, model_name, metric, higher_is_better, baseline_n, recent_n,
        baseline_mean, recent_mean, change, prob_worse, p_value, decayed, autocorr,
        recent_from, last_timestamp; decayed rows first. ``days_back``/``since``/``until``
        restrict the evaluations considered. The test, its assumptions (independent
        evaluations: see ``autocorr``) and its false-alarm rate: ``docs/monitoring.md``.
        """
        from .stats.decay import MIN_BASELINE, decay_frame

        recent_n = check_count("recent", recent, 2, maximum=MAX_TAIL)
        base_n = check_count("baseline", baseline, MIN_BASELINE, optional=True, maximum=MAX_TAIL)
        level = check_probability("alpha", alpha)
        store = self._ensure()
        if metric not in CORE_METRICS:
            check_metric_name(metric, "metric")
        higher = self._directions_for(store, metric)[metric]
        since_us, until_us = time_window(days_back, since, until)
        query = TailQuery(
            metric=metric,
            custom=metric not in CORE_METRICS,
            tickers=check_names("ticker", ticker),
            models=check_names("model_name", model_name),
            since_us=since_us,
            until_us=until_us,
            keep=None if base_n is None else recent_n + base_n,
            min_count=recent_n + MIN_BASELINE,
        )
        return decay_frame(store.metric_tails(query), metric, higher, recent=recent_n, alpha=level,
                           baseline=base_n)

    def info(self) -> dict[str, Any]:
        """What ``perfledger stats`` prints: the store (described, passwords hidden), its
        schema version, :meth:`stats` (without the ``state`` token) and, for a ledger
        directory, the size in bytes of each file in it (the database, its write-ahead log,
        the mirrors, kept copies)."""
        store = self._ensure()
        out: dict[str, Any] = {"store": self.location.describe(), "schema_version": store.schema_version()}
        out.update((k, v) for k, v in store.stats().items() if k != "state")
        if self.directory is not None:
            sizes = {}
            # A directory not created yet (nothing was written) holds no file.
            for path in sorted(self.directory.iterdir()) if self.directory.is_dir() else ():
                try:
                    if path.is_file():
                        sizes[path.name] = path.stat().st_size
                except OSError:  # removed meanwhile
                    continue
            out["files"] = sizes
            out["total_bytes"] = sum(sizes.values())
        return out

    def stats(self) -> dict[str, Any]:
        """Record, ticker and model counts, ``cleared`` (records cleared and kept until
        purged: :meth:`restore_cleared` brings them back), the latest timestamp, and a
        ``state`` token that changes whenever the ledger does (for caches)."""
        return dict(self._ensure().stats())


def check_directory(directory: Path, where: str) -> None:
    """Refuse a ledger directory that is a file, or that this user may not create; a
    directory that does not exist yet is fine (nothing is created until the first write)."""
    found = existing_ancestor(directory)
    if not found.is_dir():
        raise ValidationError(
            f"store {where!r} is a file, not a ledger directory; give a directory (created "
            "if missing) or a database URL", [(None, "store", "a file")],
        )
    effective = os.access in os.supports_effective_ids
    if found != directory and not os.access(found, os.W_OK | os.X_OK, effective_ids=effective):
        raise ReadOnlyLedgerError(
            f"{where} does not exist and this user may not create it (Permission denied)")


def _restore_kept(tx: WriteTx, m: MirrorTransaction | NullMirrorTransaction) -> tuple[int, int]:
    """The body of :meth:`Ledger.restore_cleared`'s transaction: insert the kept records the
    ledger does not hold again (by content key, as a multiset), claim their keys, forget
    the kept ones. Returns (restored, skipped because held)."""
    from collections import Counter

    from .files.importer import batch_keys, record_hash
    from .files.sync import take

    held: Counter[str] = Counter()
    for _ids, batch in tx.iter_batches():
        held.update(record_hash(k) for k in batch_keys(batch))
    restored = skipped = kept = 0
    for batch in tx.cleared_batches():
        kept += len(batch)
        hashes = [record_hash(k) for k in batch_keys(batch)]
        back = []
        for i, h in enumerate(hashes):
            if held[h] > 0:
                held[h] -= 1  # this one is in the ledger again: one kept copy fewer comes back
            else:
                back.append(i)
        skipped += len(batch) - len(back)
        if back:
            m.insert(batch if len(back) == len(batch) else take(batch, back))
            tx.claim_keys([hashes[i] for i in back])
            restored += len(back)
    if kept:
        tx.forget_cleared()
        m.write_best()
    return restored, skipped
