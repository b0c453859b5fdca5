"""The read half of the :class:`~perfledger.Ledger`: every question a ledger answers.

Kept apart from ledger.py (lifecycle and writes) so each file stays readable; the methods
are the Ledger's own (``Ledger`` inherits them) and reach the store through its
``_ensure()``. Queries are validated here, run by the store, shaped by :mod:`.frames`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ValidationError
from .frames import STATS, history_frame, leaderboard_frame, records_from_frame
from .labels import check_filter, decode, group_column, parse_by, sort_key
from .query_args import check_bounds, check_count, check_limit, check_names, check_probability
from .record import CORE_METRICS
from .store.base import HistoryQuery, TailQuery
from .timestamps import time_window
from .validation import check_label, check_metric_name

if TYPE_CHECKING:
    import pandas as pd

    from .store.base import Store


class LedgerReads:
    """History, records, best models, listings, leaderboards, decay and statistics."""

    def _ensure(self) -> Store:  # provided by Ledger
        raise NotImplementedError

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
        ``include_meta=True`` adds ``params`` and ``tags`` columns (dicts).
        """
        query = self._query(ticker, model_name, days_back, since, until, params, tags,
                            at_least=check_bounds("at_least", at_least),
                            at_most=check_bounds("at_most", at_most),
                            limit=check_limit(limit), include_meta=include_meta)
        return history_frame(self._ensure().history(query), query)

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
        query = self._query(ticker, model_name, days_back, since, until, params, tags,
                            at_least=check_bounds("at_least", at_least),
                            at_most=check_bounds("at_most", at_most))
        return self._ensure().count(query)

    @staticmethod
    def _query(ticker: Any, model_name: Any, days_back: Any, since: Any, until: Any,
               params: Any, tags: Any, **more: Any) -> HistoryQuery:
        """A checked :class:`HistoryQuery` (every argument validated, none yet run)."""
        since_us, until_us = time_window(days_back, since, until)
        return HistoryQuery(
            tickers=check_names("ticker", ticker), models=check_names("model_name", model_name),
            since_us=since_us, until_us=until_us, params=check_filter("params", params),
            tags=check_filter("tags", tags), **more,
        )

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
    ) -> list[dict[str, Any]]:
        """Whole records (the seed's dict plus ``metrics``, ``params``, ``tags``), oldest
        first, filtered in the database (``params``/``tags`` as in :meth:`history`): what
        exports and imports need beyond history()."""
        frame = self.history(ticker, model_name, days_back, since, until, include_meta=True,
                             params=params, tags=tags)
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

    def params(self, ticker: str | None = None) -> dict[str, list[Any]]:
        """Every param name (of ``ticker``'s records, if given) with its distinct values,
        sorted: what a picker offers. Whole numbers come back as ints, arrays as tuples, so
        every value but a JSON object can be passed back as a ``params=`` filter."""
        return self._labels("p", ticker)

    def tags(self, ticker: str | None = None) -> dict[str, list[str]]:
        """Every tag key (of ``ticker``'s records, if given) with its distinct values, sorted."""
        return self._labels("t", ticker)

    def _labels(self, kind: str, ticker: str | None) -> dict[str, list[Any]]:
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
        query = self._query(ticker, None, days_back, since, until, params, tags,
                            at_least=check_bounds("at_least", at_least),
                            at_most=check_bounds("at_most", at_most))
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
