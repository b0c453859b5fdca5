"""The :class:`Ledger`: the one object users (and the seed module, CLI and dashboard) talk to.

It validates, hands batches to the store, keeps the seed's mirror files in step, and
notices when its directory was deleted or restored under it (users' tests ``rmtree`` and
``copytree`` ``memory/logs`` between calls), so it never writes into a deleted file.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .batch import Batch
from .errors import ValidationError
from .mirrors import PreparedAppend, SeedMirrors, write_seed_files
from .records import (
    SEED_METRICS,
    check_label,
    check_metric_name,
    format_ts_many,
    now_us,
    parse_timestamp,
    validate_frame,
    validate_record,
)
from .store.base import HistoryQuery
from .store.sql import SQLStore, describe, sqlite_url_for

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("perfledger")

DEFAULT_DIR = os.path.join("memory", "logs")
DB_NAME = "perfledger.db"
ENV_URL = "PERFLEDGER_URL"
_DEADLOCK_CODES = {"40P01", "40001"}


def resolve_location(location: str | os.PathLike[str] | sa.URL | None) -> str | os.PathLike[str] | sa.URL:
    """``location``, else ``$PERFLEDGER_URL``, else ``./memory/logs``."""
    if location is not None:
        return location
    return os.environ.get(ENV_URL) or DEFAULT_DIR


def _parse_url(text: str | sa.URL) -> sa.URL:
    url = sa.make_url(text)
    if url.drivername in ("postgresql", "postgres"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        url = url.set(drivername="postgresql+psycopg")
    return url


class Ledger:
    """A model-performance ledger.

    ``Ledger()`` opens ``$PERFLEDGER_URL`` if set, else the directory ``./memory/logs``.
    A directory holds an embedded SQLite database plus the seed's mirror files; any
    SQLAlchemy URL (``sqlite:///x.db``, ``postgresql+psycopg://user@host/db``) opens that
    database without local files. Safe to share between threads; each process opens its own.
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | sa.URL | None = None,
        *,
        mirrors: bool = True,
    ) -> None:
        loc = resolve_location(location)
        self._lock = threading.RLock()
        self.directory: Path | None
        if isinstance(loc, sa.URL) or (isinstance(loc, str) and "://" in loc):
            self.url = _parse_url(loc)
            self.directory = None
        else:
            self.directory = Path(loc).expanduser().resolve()
            self.url = sqlite_url_for(self.directory / DB_NAME)
        self._want_mirrors = mirrors and self.directory is not None
        self._open()

    # ------------------------------------------------------------------ lifecycle

    def _open(self) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._store = SQLStore(self.url)
        self._pid = os.getpid()
        self._identity = self._db_identity()
        self._mirrors = SeedMirrors(self.directory) if self._want_mirrors and self.directory else None
        if self._mirrors is not None:
            with self._store.writing() as tx:
                self._mirrors.sync(tx)
        log.debug("opened %s", describe(self.url))

    def _db_identity(self) -> tuple[int, int] | None:
        if self.directory is None:
            return None
        try:
            st = os.stat(self.directory / DB_NAME)
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def _ensure(self) -> SQLStore:
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
        where = str(self.directory) if self.directory else self.url.render_as_string(hide_password=True)
        return f"Ledger({where!r})"

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
            except sa.exc.DBAPIError as exc:
                code = getattr(getattr(exc, "orig", None), "sqlstate", None)
                if code in _DEADLOCK_CODES and attempt < 7:
                    log.debug("write conflict (%s); retrying", code)
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
        log.info("cleared %s", describe(self.url))

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

    def copy_to(self, target: Ledger | str | os.PathLike[str]) -> int:
        """Copy every record (and the registered metrics) into an empty ledger, e.g. an
        embedded one into PostgreSQL, in one transaction; returns how many were copied."""
        from .transfer import copy_ledger

        dest = target if isinstance(target, Ledger) else Ledger(target)
        return copy_ledger(self, dest)

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
        since_us = parse_timestamp(since, "since") if since is not None else None
        if days_back is not None:
            if isinstance(days_back, bool) or not isinstance(days_back, numbers.Real):
                raise TypeError(
                    f"days_back must be a number, got {type(days_back).__name__} {days_back!r}"
                )
            if not math.isfinite(days_back) or days_back < 0:
                raise ValidationError(
                    f"days_back={days_back!r} must be a finite number >= 0",
                    [(None, "days_back", "out of range")],
                )
            cutoff = now_us() - int(days_back * 86_400_000_000)
            since_us = cutoff if since_us is None else max(since_us, cutoff)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValidationError(f"limit={limit!r} must be a positive int", [(None, "limit", "bad")])
        query = HistoryQuery(
            tickers=_names("ticker", ticker),
            models=_names("model_name", model_name),
            since_us=since_us,
            until_us=parse_timestamp(until, "until") if until is not None else None,
            at_least=_bounds("at_least", at_least),
            at_most=_bounds("at_most", at_most),
            limit=limit,
            include_meta=include_meta,
        )
        return self._ensure().history(query)

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
        from .records import SEED_FIELDS

        frame = self.history(ticker, model_name, days_back, since, until, include_meta=True)
        custom = [c for c in frame.columns if c not in (*SEED_FIELDS, "params", "tags")]
        stamps = format_ts_many(frame["timestamp"].dt.as_unit("us").astype("int64").to_numpy())
        out: list[dict[str, Any]] = []
        seed_rows = frame[list(SEED_FIELDS[1:])].astype(object).where(frame.notna(), None)
        extra = frame[custom].to_numpy(dtype=float) if custom else None
        for i, row in enumerate(seed_rows.itertuples(index=False, name=None)):
            rec: dict[str, Any] = {"timestamp": stamps[i], **dict(zip(SEED_FIELDS[1:], row, strict=True))}
            rec["metrics"] = (
                {c: float(extra[i, j]) for j, c in enumerate(custom) if not math.isnan(extra[i, j])}
                if extra is not None else {}
            )
            rec["params"] = frame["params"].iat[i]
            rec["tags"] = frame["tags"].iat[i]
            out.append(rec)
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

    def metric_directions(self) -> dict[str, bool]:
        """Every metric :meth:`best` tracks, mapped to True when higher is better."""
        return self._ensure().directions()

    def leaderboard(
        self, ticker: str | None = None, metric: str = "sharpe", days_back: float | None = None
    ) -> pd.DataFrame:
        """One row per model (per ticker and model when ``ticker`` is None) with count, mean,
        std, min, max and latest of each metric, ranked within each ticker by the mean of
        ``metric`` in its own direction. Statistics come from a summary the database keeps
        up to date on every insert; ``days_back`` aggregates that window in the database."""
        if ticker is not None:
            check_label("ticker", ticker)
        since = None
        if days_back is not None:
            if isinstance(days_back, bool) or not isinstance(days_back, numbers.Real) or days_back < 0:
                raise ValidationError(
                    f"days_back={days_back!r} must be a number >= 0", [(None, "days_back", "bad")]
                )
            since = now_us() - int(days_back * 86_400_000_000)
        return self._ensure().leaderboard(ticker, metric, since)

    def stats(self) -> dict[str, Any]:
        """Record, ticker and model counts, the latest timestamp, and a ``state`` token that
        changes whenever the ledger does (for caches)."""
        return dict(self._ensure().stats())

    # ------------------------------------------------------------------ backtests
    # (thin delegates; the logic lives in perfledger.backtest and perfledger.metrics)

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
        """Compute a backtest's metrics from per-period returns and log them (see
        :func:`perfledger.backtest.log_backtest`; conventions in ``docs/metrics.md``)."""
        from .backtest import log_backtest

        return log_backtest(
            self, model_name, ticker, returns, predictions=predictions, actuals=actuals,
            periods_per_year=periods_per_year, notes=notes, params=params, tags=tags,
            timestamp=timestamp,
        )

    def sharpe_confidence(self, ticker: str, periods_per_year: float = 252) -> pd.DataFrame:
        """Per model on ``ticker``: best Sharpe, Probabilistic and Deflated Sharpe Ratio (see
        :func:`perfledger.backtest.sharpe_confidence`)."""
        from .backtest import sharpe_confidence

        return sharpe_confidence(self, ticker, periods_per_year=periods_per_year)


def _names(fieldname: str, value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (check_label(fieldname, value),)
    if isinstance(value, Sequence) or hasattr(value, "__iter__"):
        return tuple(check_label(fieldname, v) for v in value)
    raise TypeError(f"{fieldname} must be a str or a list of str, got {type(value).__name__}")


def _bounds(fieldname: str, value: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    if not value:
        return ()
    if not isinstance(value, Mapping):
        raise TypeError(f"{fieldname} must be a mapping of metric name to number")
    out = []
    for name, bound in value.items():
        if name not in SEED_METRICS:
            check_metric_name(name, fieldname)
        if isinstance(bound, bool) or not isinstance(bound, numbers.Real) or not math.isfinite(bound):
            raise ValidationError(
                f"{fieldname}[{name!r}]={bound!r} must be a finite number",
                [(None, fieldname, "not a number")],
            )
        out.append((name, float(bound)))
    return tuple(out)
