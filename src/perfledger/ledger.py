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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .access import read_only_reason
from .batch import Batch
from .errors import ReadOnlyLedgerError, ValidationError
from .importer import adopt_file
from .ledger_reads import LedgerReads
from .location import DB_NAME, Location, describe_store, resolve
from .mirror_format import PreparedAppend
from .mirror_rebuild import write_seed_files
from .mirrors import STATE_KEY, SeedMirrors
from .store import open_store
from .validation import (
    check_label,
    check_metric_name,
    validate_frame,
    validate_record,
)

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from .store.base import Store, WriteTx

log = logging.getLogger("perfledger")

class Ledger(LedgerReads):
    """A model-performance ledger.

    ``Ledger()`` opens ``$PERFLEDGER_URL`` if set, else the directory ``./memory/logs``.
    A directory holds an embedded SQLite database plus the seed's mirror files; any
    SQLAlchemy URL (``sqlite:///x.db``, ``postgresql+psycopg://user@host/db``) opens that
    database without local files. Safe to share between threads; each process opens its own.
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | sa.URL | Location | None = None,
        *,
        mirrors: bool = True,
    ) -> None:
        self.location = resolve(location)
        self.directory: Path | None = self.location.directory
        self._db_path = self.directory / DB_NAME if self.directory is not None else None
        self.url: sa.URL = self.location.url
        self._lock = threading.RLock()
        self._want_mirrors = mirrors and self.directory is not None
        self._open()

    # ------------------------------------------------------------------ lifecycle

    def _open(self) -> None:
        where = self.location.describe()
        if self.directory is not None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except PermissionError as exc:
                raise ReadOnlyLedgerError(
                    f"{where} does not exist and this user may not create it ({exc.strerror})"
                ) from None
        mirrors = (
            SeedMirrors(self.directory, adopt_file) if self._want_mirrors and self.directory else None
        )
        #: Why this process may not write the ledger (the message writes raise), or None.
        self._read_only = read_only_reason(
            where, self.url, (mirrors.json_path, mirrors.csv_path, mirrors.best_path) if mirrors else ()
        )
        self._store: Store = open_store(self.url, read_only=self._read_only is not None)
        self._pid = os.getpid()
        self._identity = self._db_identity()
        self._mirrors = mirrors
        # Only a read unless the files are out of step: then they are adopted or repaired
        # under the write lock (the seed's files in a new ledger, a deleted database, a
        # mirror rewritten by the seed's code, a crash). A file that does not read as records
        # is reported and left alone; writes refuse to overwrite it.
        if self._mirrors is not None and not self._mirrors_in_step():
            if self._read_only is None:
                with self._store.writing() as tx:
                    self._mirrors.sync(tx, strict=False)
            else:
                log.warning(
                    "%s: the mirror files are out of step with the database and this user may "
                    "not repair them; reads use the database (records only the files hold are "
                    "left out until a user who may write opens the ledger)", where,
                )
        log.debug("opened %s%s", describe_store(self.url), " read-only" if self.read_only else "")

    def _mirrors_in_step(self) -> bool:
        """Whether the mirrors are in step. A user who may not write verifies a file whose
        identity changed by its content (a restored copy is in step); a writer leaves that to
        ``sync``, which records the copy's new identity once, so later opens stay cheap.
        Records stored after the last one the files hold (by a ``mirrors=False`` ledger) put
        them out of step: opening the ledger appends them."""
        assert self._mirrors is not None
        try:
            return self._mirrors.in_step(self._store.get_meta(STATE_KEY), verify=self._read_only is not None,
                                         last_id=self._store.last_id())
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
        """Release database connections (the ledger reopens if used again)."""
        self._store.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.location.describe()!r})"

    @property
    def mirrors_enabled(self) -> bool:
        return self._mirrors is not None

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
        return store

    # ------------------------------------------------------------------ writes

    def _write(self, batch: Batch, claim: tuple[list[str], pd.DataFrame] | None = None) -> int:
        """Store ``batch`` (and mirror it); returns how many records were stored. With
        ``claim`` (the rows' import keys and the validated frame the batch came from), rows
        whose key another import already claimed are left out, in the same transaction."""
        store = self._writable()
        prepared = PreparedAppend(batch) if self._mirrors is not None else None
        for attempt in range(8):
            try:
                with store.writing() as tx:
                    try:
                        stored = self._store_batch(tx, batch, prepared, claim)
                    except BaseException:
                        # Still under the write lock: no other writer has touched the files.
                        # (A failed commit, after it, leaves a bulk append's journal to the
                        # next writer.)
                        if self._mirrors is not None:
                            self._mirrors.abandon()
                        raise
                if self._mirrors is not None:
                    self._mirrors.committed()
                return stored
            except Exception as exc:
                if store.is_conflict(exc) and attempt < 7:
                    log.debug("write conflict (%s); retrying", exc)
                    time.sleep(0.01 * (attempt + 1))
                    continue
                raise
        raise AssertionError("unreachable")

    def _store_batch(
        self, tx: WriteTx, batch: Batch, prepared: PreparedAppend | None,
        claim: tuple[list[str], pd.DataFrame] | None,
    ) -> int:
        """The body of :meth:`_write`'s transaction; returns how many records it stored
        (with ``claim``, the rows no other import had claimed)."""
        if self._mirrors is not None:
            # Repair before inserting: a rebuild must not already hold this batch.
            self._mirrors.sync(tx)
        if claim is not None:
            keys, frame = claim
            won = tx.claim_keys(keys)
            if len(won) < len(set(keys)):
                mask = [k in won for k in keys]
                if not any(mask):
                    return 0
                batch = Batch.from_frame(frame[mask])
                prepared = PreparedAppend(batch) if self._mirrors is not None else None
        if self._mirrors is not None and prepared is not None:
            self._mirrors.begin_append(prepared)  # a large batch: written during the insert
        changed = tx.insert(batch)
        if self._mirrors is not None and prepared is not None:
            self._mirrors.append(tx, prepared, changed)
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
        self._write(Batch.from_records([rec]))
        out = rec.seed_dict()
        log.debug("logged %s/%s at %s", rec.ticker, rec.model_name, out["timestamp"])
        return out

    def log_many(
        self, records: pd.DataFrame | Iterable[Mapping[str, Any]], *, import_keys: Sequence[str] | None = None
    ) -> int:
        """Record many evaluations in one transaction; returns how many were stored.

        Accepts a DataFrame or an iterable of dicts with the keys of :meth:`log` (extra
        numeric columns are custom metrics). Every row is validated first: one
        :class:`ValidationError` lists each bad row by index and field, and nothing is stored.
        The batch is stored (and mirrored) in (ticker, timestamp) order.

        ``import_keys`` (one per row; the importer's content digests) makes the call
        idempotent under concurrency: a row whose key was already recorded, by this or any
        concurrent call, is not stored. Returns how many rows were stored.
        """
        import pandas as pd

        frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
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
        with store.writing() as tx:
            if tx.register_metric(name, higher_is_better) and self._mirrors is not None:
                self._mirrors.sync(tx)
                self._mirrors.write_best(tx)

    def clear(self) -> None:
        """Delete every record (registered metrics stay registered). Mirrors become empty."""
        store = self._writable()
        with store.writing() as tx:
            if self._mirrors is not None:
                self._mirrors.sync(tx)  # records only a mirror holds are adopted, not lost
            tx.clear()
            if self._mirrors is not None:
                self._mirrors.reset(tx)
        log.info("cleared %s", describe_store(self.url))

    def rebuild_mirrors(self) -> None:
        """Rewrite the three seed files from the database."""
        store = self._writable()
        if self._mirrors is None:
            raise ValidationError(
                f"{self!r} keeps no mirror files; use export_seed_files(directory) instead",
                [(None, "mirrors", "disabled")],
            )
        with store.writing() as tx:
            self._mirrors.rebuild(tx)

    def copy_to(self, target: Ledger | str | os.PathLike[str] | Location) -> int:
        """Copy every record (and the registered metrics) into an empty ledger, e.g. an
        embedded one into PostgreSQL, in one transaction; returns how many were copied."""
        from .transfer import copy_store

        dest = target if isinstance(target, Ledger) else Ledger(target)
        return copy_store(self._ensure(), dest._writable(), dest._mirrors)

    def export_seed_files(self, directory: str | os.PathLike[str]) -> Path:
        """Write the seed's three files into ``directory`` from any store; returns it."""
        target = Path(directory).expanduser().resolve()
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
    ) -> dict[str, Any]:
        """Compute a backtest's metrics from per-period returns and log them as one
        evaluation (conventions in ``docs/metrics.md``); returns the record.

        Core metrics go to their columns; ``sortino, calmar, volatility, n_periods, skew,
        kurtosis, psr`` (and ``periods_per_year``) are custom metrics, registered in their
        directions so ``best()`` tracks them. Everything is validated before anything is
        written, so bad returns or labels store nothing (not even a registration).
        """
        from .backtest import BACKTEST_DIRECTIONS, backtest_metrics

        core, custom = backtest_metrics(returns, periods_per_year, predictions, actuals)
        validate_record(model_name, ticker, notes=notes, metrics=custom, params=params, tags=tags,
                        timestamp=timestamp, **core)
        known = self.metric_directions()
        for name, higher in BACKTEST_DIRECTIONS.items():
            if known.get(name) is not higher:
                self.register_metric(name, higher)
        return self.log(model_name, ticker, notes=notes, metrics=custom, params=params, tags=tags,
                        timestamp=timestamp, **core)

    def sharpe_confidence(
        self, ticker: str, periods_per_year: float = 252, n_trials: int | None = None
    ) -> pd.DataFrame:
        """Per model on ``ticker``: best Sharpe, Probabilistic and Deflated Sharpe Ratio,
        deflated by every logged evaluation with a Sharpe on the ticker, or by ``n_trials``
        when more configurations were tried than logged (see
        :func:`perfledger.backtest.sharpe_confidence`)."""
        from .backtest import sharpe_confidence

        check_label("ticker", ticker)
        return sharpe_confidence(
            self.history(ticker=ticker), periods_per_year=periods_per_year, n_trials=n_trials
        )
