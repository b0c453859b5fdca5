"""The :class:`Ledger`: the one object users (and the seed module, CLI and dashboard) talk to.

It validates, hands batches to the store, keeps the seed's mirror files in step, and
notices when its directory was deleted or restored under it (users' tests ``rmtree`` and
``copytree`` ``memory/logs`` between calls), so it never writes into a deleted file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import Batch
from .errors import ValidationError
from .frames import history_frame, leaderboard_frame, records_from_frame
from .location import DB_NAME, Location, describe_store, resolve
from .mirrors import PreparedAppend, SeedMirrors, write_seed_files
from .record import CORE_METRICS
from .store import open_store
from .store.base import HistoryQuery, TailQuery
from .timestamps import time_window
from .validation import (
    check_bounds,
    check_count,
    check_label,
    check_limit,
    check_metric_name,
    check_names,
    check_probability,
    validate_frame,
    validate_record,
)

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from .store.base import Store

log = logging.getLogger("perfledger")

class Ledger:
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
        self.url: sa.URL = self.location.url
        self._lock = threading.RLock()
        self._want_mirrors = mirrors and self.directory is not None
        self._open()

    # ------------------------------------------------------------------ lifecycle

    def _open(self) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._store: Store = open_store(self.url)
        self._pid = os.getpid()
        self._identity = self._db_identity()
        self._mirrors = SeedMirrors(self.directory) if self._want_mirrors and self.directory else None
        if self._mirrors is not None:
            with self._store.writing() as tx:
                self._mirrors.sync(tx)
        log.debug("opened %s", describe_store(self.url))

    def _db_identity(self) -> tuple[int, int] | None:
        if self.directory is None:
            return None
        try:
            st = os.stat(self.directory / DB_NAME)
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

    # ------------------------------------------------------------------ writes

    def _write(self, batch: Batch) -> None:
        store = self._ensure()
        prepared = PreparedAppend(batch) if self._mirrors is not None else None
        for attempt in range(8):
            try:
                with store.writing() as tx:
                    if self._mirrors is not None:
                        # Repair before inserting: a rebuild must not already hold this batch.
                        self._mirrors.sync(tx)
                    changed = tx.insert(batch)
                    if self._mirrors is not None and prepared is not None:
                        self._mirrors.append(tx, prepared, changed)
                return
            except Exception as exc:
                if store.is_conflict(exc) and attempt < 7:
                    log.debug("write conflict (%s); retrying", exc)
                    time.sleep(0.01 * (attempt + 1))
                    continue
                raise

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
        log.debug("logged %s/%s at %s", rec.ticker, rec.model_name, rec.timestamp)
        return rec.seed_dict()

    def log_many(self, records: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Record many evaluations in one transaction; returns how many were stored.

        Accepts a DataFrame or an iterable of dicts with the keys of :meth:`log` (extra
        numeric columns are custom metrics). Every row is validated first: one
        :class:`ValidationError` lists each bad row by index and field, and nothing is stored.
        The batch is stored (and mirrored) in (ticker, timestamp) order.
        """
        import pandas as pd

        frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
        if frame.empty:
            return 0
        clean = validate_frame(frame)
        # Stored in (ticker, time) order: one ticker's rows end up next to each other on
        # disk, which halves the index work here and makes history(ticker=...) a short scan.
        clean = clean.sort_values(["ticker", "ts_us"], kind="stable")
        self._write(Batch.from_frame(clean))
        log.debug("logged %d records", len(clean))
        return len(clean)

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
        store = self._ensure()
        with store.writing() as tx:
            if tx.register_metric(name, higher_is_better) and self._mirrors is not None:
                self._mirrors.sync(tx)
                self._mirrors.write_best(tx)

    def clear(self) -> None:
        """Delete every record (registered metrics stay registered). Mirrors become empty."""
        store = self._ensure()
        with store.writing() as tx:
            tx.clear()
            if self._mirrors is not None:
                self._mirrors.reset(tx)
        log.info("cleared %s", describe_store(self.url))

    def rebuild_mirrors(self) -> None:
        """Rewrite the three seed files from the database."""
        store = self._ensure()
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
        return copy_store(self._ensure(), dest._ensure(), dest._mirrors)

    def export_seed_files(self, directory: str | os.PathLike[str]) -> Path:
        """Write the seed's three files into ``directory`` from any store; returns it."""
        target = Path(directory).expanduser().resolve()
        store = self._ensure()
        with store.writing() as tx:
            write_seed_files(target, tx)
        return target

    # ------------------------------------------------------------------ reads

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
    ) -> pd.DataFrame:
        """Evaluations as a DataFrame, oldest first (so ``iloc[-1]`` is the latest).

        Columns: the seed's (``timestamp`` as a UTC pandas datetime, metrics as floats) plus
        one per custom metric. ``ticker``/``model_name`` take one name or a list.
        ``days_back`` is exact (now minus that many days); ``since``/``until`` are datetimes
        or ISO strings. ``at_least={"sharpe": 1.0}``, ``at_most={"mse": 0.02}`` filter on
        metric values (custom ones too). ``limit`` keeps only the latest N rows. Every filter
        runs in the database. ``include_meta=True`` adds ``params`` and ``tags`` columns (dicts).
        """
        since_us, until_us = time_window(days_back, since, until)
        query = HistoryQuery(
            tickers=check_names("ticker", ticker),
            models=check_names("model_name", model_name),
            since_us=since_us,
            until_us=until_us,
            at_least=check_bounds("at_least", at_least),
            at_most=check_bounds("at_most", at_most),
            limit=check_limit(limit),
            include_meta=include_meta,
        )
        return history_frame(self._ensure().history(query), query)

    def records(
        self,
        ticker: str | Sequence[str] | None = None,
        model_name: str | Sequence[str] | None = None,
        days_back: float | None = None,
        since: Any = None,
        until: Any = None,
    ) -> list[dict[str, Any]]:
        """Whole records (the seed's dict plus ``metrics``, ``params``, ``tags``), oldest
        first, filtered in the database: what exports and imports need beyond history()."""
        frame = self.history(ticker, model_name, days_back, since, until, include_meta=True)
        return records_from_frame(frame)

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

    def metric_directions(self) -> dict[str, bool]:
        """Every metric :meth:`best` tracks, mapped to True when higher is better."""
        return self._ensure().directions()

    def leaderboard(
        self,
        ticker: str | None = None,
        metric: str = "sharpe",
        days_back: float | None = None,
        *,
        since: Any = None,
        until: Any = None,
        at_least: Mapping[str, float] | None = None,
        at_most: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """One row per model (per ticker and model when ``ticker`` is None) with count, mean,
        std, min, max and latest of each metric, ranked within each ticker by the mean of
        ``metric`` in its own direction. Without filters the statistics come from a summary
        the database keeps up to date on every insert; ``days_back``/``since``/``until`` and
        ``at_least``/``at_most`` (as in :meth:`history`) aggregate the matching records in
        the database."""
        if ticker is not None:
            check_label("ticker", ticker)
        since_us, until_us = time_window(days_back, since, until)
        query = HistoryQuery(
            tickers=(ticker,) if ticker is not None else (),
            since_us=since_us,
            until_us=until_us,
            at_least=check_bounds("at_least", at_least),
            at_most=check_bounds("at_most", at_most),
        )
        store = self._ensure()
        directions = self._directions_for(store, metric)
        long, pairs = store.leaderboard_stats(query)
        return leaderboard_frame(long, pairs, metric, directions)

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
        from .decay import MIN_BASELINE, decay_frame

        recent_n = check_count("recent", recent, 2)
        base_n = check_count("baseline", baseline, MIN_BASELINE, optional=True)
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

    def stats(self) -> dict[str, Any]:
        """Record, ticker and model counts, the latest timestamp, and a ``state`` token that
        changes whenever the ledger does (for caches)."""
        return dict(self._ensure().stats())

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

    def sharpe_confidence(self, ticker: str, periods_per_year: float = 252) -> pd.DataFrame:
        """Per model on ``ticker``: best Sharpe, Probabilistic and Deflated Sharpe Ratio (see
        :func:`perfledger.backtest.sharpe_confidence`)."""
        from .backtest import sharpe_confidence

        check_label("ticker", ticker)
        return sharpe_confidence(self.history(ticker=ticker), periods_per_year=periods_per_year)
