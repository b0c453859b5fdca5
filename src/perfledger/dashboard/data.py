"""Every question the dashboard asks the :class:`~perfledger.Ledger`, cached.

Caches are keyed on the ledger's location *and* its ``stats()["state"]`` token, which
changes on every write by any process: a rerun after someone else logs sees the new record,
and an unchanged ledger is never queried twice. ``stats()`` itself is not cached (it is the
freshness check and costs a few indexed reads). All filtering and aggregation happens in
the Ledger (i.e. in the database); this module adds no SQL and no pandas group-bys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ..files.csv_text import csv_text
from ..ledger import Ledger
from ..location import resolve
from ..records.labels import canonical, decode
from ..stats.backtest import sharpe_confidence as confidence_of
from ..stats.decay import empty_decay_frame
from .access import Access
from .access import current as current_access

RAW_TABLE_ROWS = 1_000
#: The metrics PSR/DSR/MinTRL read from a ticker's history (:func:`..stats.backtest.sharpe_confidence`).
CONFIDENCE_INPUTS = ("sharpe", "psr", "n_periods", "skew", "kurtosis", "periods_per_year")


def current_location() -> str:
    """Where the dashboard reads, resolved like ``Ledger()``: ``$PERFLEDGER_URL`` else
    ``./memory/logs`` (made absolute, so the cache key names one store)."""
    return resolve().as_argument()


def display_location(location: str) -> str:
    """The location as it may be shown on a page: never with a password, and a directory
    under the one the dashboard was started from as people name it (``./memory/logs``)."""
    loc = resolve(location)
    if loc.directory is not None:
        try:
            return "./" + loc.directory.relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            pass
    return loc.describe()


def access(location: str) -> Access:
    """Whether this run of the page may offer writes, and why (:mod:`.access`): never with
    ``$PERFLEDGER_READ_ONLY`` or a ledger this user may only read; beyond loopback only when
    the operator allowed it; with ``allow_writes_for``, only for the named signed-in users."""
    return current_access(ledger_read_only=get_ledger(location).read_only)


@st.cache_resource(show_spinner=False)
def get_ledger(location: str) -> Ledger:
    """One Ledger per location per server process (it is thread-safe and pools connections)."""
    return Ledger(location)


def stats(location: str) -> dict[str, Any]:
    """Fresh counts and the state token (deliberately uncached)."""
    return get_ledger(location).stats()


@dataclass(frozen=True)
class Window:
    """The record filters every view applies, whatever its ticker scope: days back, a date
    range (whole UTC days, the end inclusive), metric bounds, params and tags. Hashable (a
    cache key)."""

    days_back: float | None = None
    start: date | None = None
    end: date | None = None
    at_least: tuple[tuple[str, float], ...] = field(default=())
    at_most: tuple[tuple[str, float], ...] = field(default=())
    params: tuple[tuple[str, Any], ...] = field(default=())
    tags: tuple[tuple[str, str], ...] = field(default=())

    def time_kwargs(self) -> dict[str, Any]:
        """``days_back``/``since``/``until`` for the Ledger."""
        return {
            "days_back": self.days_back,
            "since": datetime.combine(self.start, time.min, UTC) if self.start else None,
            "until": (
                datetime.combine(self.end + timedelta(days=1), time.min, UTC) - timedelta(microseconds=1)
                if self.end
                else None
            ),
        }

    def kwargs(self) -> dict[str, Any]:
        """The time window and metric bounds as keyword arguments of ``Ledger.history`` and
        ``Ledger.leaderboard``."""
        return {
            **self.time_kwargs(),
            "at_least": dict(self.at_least) or None,
            "at_most": dict(self.at_most) or None,
            "params": dict(self.params) or None,
            "tags": dict(self.tags) or None,
        }

    def parts(self, labels: bool = True) -> list[str]:
        """The active filters in words, e.g. ``["last 30 days", "sharpe ≥ 1"]``; params and
        tags only with ``labels``."""
        parts = [f"last {self.days_back:g} days"] if self.days_back else []
        if self.start or self.end:
            parts.append(f"{self.start or '…'} → {self.end or '…'}")
        parts += [f"{k} ≥ {v:g}" for k, v in self.at_least]
        parts += [f"{k} ≤ {v:g}" for k, v in self.at_most]
        if labels:
            parts += [f"{k} = {v!r}" for k, v in (*self.params, *self.tags)]
        return parts

    def active(self) -> bool:
        """True when any of these filters narrows the records."""
        return bool(self.days_back or self.start or self.end or self.at_least or self.at_most
                    or self.params or self.tags)


@dataclass(frozen=True)
class Filters:
    """What the sidebar selected: a ticker, models, and the window every view applies;
    hashable so it can be part of a cache key."""

    ticker: str
    models: tuple[str, ...] = ()
    window: Window = field(default_factory=Window)

    def history_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``Ledger.history`` for these filters (dates are whole UTC days,
        the end date inclusive)."""
        return {"ticker": self.ticker, "model_name": list(self.models) or None, **self.window.kwargs()}

    def describe(self) -> str:
        """One line saying which filters are active, for captions."""
        models = f"models: {', '.join(self.models)}" if self.models else "all models"
        return " · ".join([models, *self.window.parts()])


@st.cache_data(show_spinner=False, max_entries=32)
def history(location: str, state: str, filters: Filters) -> pd.DataFrame:
    """The filtered evaluations of one ticker, oldest first, every column."""
    return get_ledger(location).history(**filters.history_kwargs())


@st.cache_data(show_spinner=False, max_entries=32)
def series(location: str, state: str, filters: Filters, metric: str) -> pd.DataFrame:
    """The filtered evaluations of one ticker, oldest first, with only ``metric`` besides
    timestamp, ticker and model: what a chart of it draws (the charts downsample it). A
    ticker's 100,000 rows read this way cost a third of the whole history (issue 23: the
    ticker switch waited on the whole read before its chart)."""
    return get_ledger(location).history(**filters.history_kwargs(), columns=[metric])


@st.cache_data(show_spinner=False, max_entries=32)
def latest(location: str, state: str, filters: Filters, limit: int = RAW_TABLE_ROWS) -> pd.DataFrame:
    """The latest ``limit`` filtered evaluations of one ticker, every column, newest first
    (the raw table; the database keeps only those rows)."""
    frame = get_ledger(location).history(**filters.history_kwargs(), limit=limit)
    return frame.iloc[::-1].reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=32)
def recent(location: str, state: str, window: Window = Window(), limit: int = 20) -> pd.DataFrame:
    """The latest ``limit`` evaluations across the whole ledger within ``window``, newest first."""
    return get_ledger(location).history(limit=limit, **window.kwargs()).iloc[::-1].reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=64)
def leaderboard(
    location: str, state: str, ticker: str | None, metric: str, window: Window = Window()
) -> pd.DataFrame:
    """``Ledger.leaderboard`` over the records in ``window`` (aggregated by the database).
    A metric without a direction cannot rank: the board is then ranked by Sharpe."""
    led = get_ledger(location)
    if metric not in led.metric_directions():
        metric = "sharpe"
    return led.leaderboard(ticker, metric=metric, **window.kwargs())


@st.cache_data(show_spinner=False, max_entries=32)
def decay(
    location: str,
    state: str,
    ticker: str | None,
    models: tuple[str, ...],
    metric: str,
    window: Window,
    recent: int,
    alpha: float,
) -> pd.DataFrame:
    """``Ledger.decay`` within the time window (metric bounds are not applied: filtering on the
    tested values would hide the very drop the test looks for). Empty when ``metric`` has no
    direction."""
    led = get_ledger(location)
    if metric not in led.metric_directions():
        return empty_decay_frame()
    return led.decay(ticker, list(models) or None, metric, recent=recent, alpha=alpha, **window.time_kwargs())


@st.cache_data(show_spinner=False, max_entries=32)
def sharpe_confidence(location: str, state: str, ticker: str) -> pd.DataFrame:
    """PSR, DSR and MinTRL per model over the ticker's whole history: what
    ``Ledger.sharpe_confidence`` computes, from only the columns it reads (a metric never
    logged reads as NaN, which it treats as absent); the DSR deflated by the effective
    number of trials when return series are kept."""
    led = get_ledger(location)
    frame = led.history(ticker, columns=CONFIDENCE_INPUTS)
    return confidence_of(frame, unscored=led.unscored_trials(ticker), effective=led.effective_trials(ticker))


@st.cache_data(show_spinner=False, max_entries=16)
def backtest_returns(location: str, state: str, filters: Filters) -> pd.DataFrame | str:
    """The kept return series of the filtered evaluations (``Ledger.returns_frame``), one
    column per evaluation, oldest first; ``attrs["model_name"]`` names each one's model. Or,
    when the series cannot be matched period by period (the ledger's one alignment rule:
    dated mixed with undated, different lengths or frequencies), its one-line reason."""
    from ..errors import ValidationError

    try:
        return get_ledger(location).returns_frame(**filters.history_kwargs())
    except ValidationError as exc:
        return str(exc)


@st.cache_data(show_spinner=False, max_entries=16)
def overfitting(location: str, state: str, filters: Filters, partitions: int) -> Any:
    """``Ledger.overfitting`` over the filtered evaluations, or the one-line reason it cannot
    be computed (too few trials or common periods) as a string."""
    from ..errors import ValidationError

    try:
        return get_ledger(location).overfitting(**filters.history_kwargs(), partitions=partitions)
    except ValidationError as exc:
        return str(exc)


@st.cache_data(show_spinner=False, max_entries=16)
def best(location: str, state: str) -> dict[str, Any]:
    """``Ledger.best()`` for every ticker."""
    return get_ledger(location).best()


@st.cache_data(show_spinner=False, max_entries=16)
def tickers(location: str, state: str) -> list[str]:
    """Tickers with records, sorted."""
    return get_ledger(location).tickers()


@st.cache_data(show_spinner=False, max_entries=64)
def models(location: str, state: str, ticker: str | None) -> list[str]:
    """Models with records (for ``ticker``), sorted."""
    return get_ledger(location).models(ticker)


@st.cache_data(show_spinner=False, max_entries=16)
def directions(location: str, state: str) -> dict[str, bool]:
    """Tracked metrics → higher-is-better."""
    return get_ledger(location).metric_directions()


@st.cache_data(show_spinner=False, max_entries=64)
def labels(
    location: str, state: str, ticker: str | None
) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    """Every param and tag (of ``ticker``'s records) with its values, for the pickers."""
    led = get_ledger(location)
    return led.params(ticker), led.tags(ticker)


@st.cache_data(show_spinner=False, max_entries=32)
def param_values(location: str, state: str, filters: Filters, name: str) -> pd.DataFrame:
    """The filtered evaluations that carry param ``name``: the history's columns plus
    ``value`` (as ``Ledger.params`` lists it) and ``value_key`` (its canonical JSON, equal
    exactly for equal values: what the comparison groups by)."""
    frame = get_ledger(location).history(**filters.history_kwargs(), include_meta=True)
    keep = [name in p for p in frame["params"]]
    out = frame.loc[keep].drop(columns=["params", "tags"]).reset_index(drop=True)
    out["value_key"] = [canonical(p[name]) for p in frame["params"] if name in p]
    out["value"] = [decode(k) for k in out["value_key"]]
    return out


def csv_export(led: Ledger, filters: Filters) -> bytes:
    """The full filtered history as CSV. The download button calls this only when clicked,
    on another thread without a script context, so it takes the Ledger itself rather than
    going through the Streamlit caches."""
    out = led.history(**filters.history_kwargs())
    # The ledger's one timestamp spelling, so the file re-imports as duplicates.
    out = out.assign(timestamp=out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"))
    return csv_text(out).encode("utf-8")  # a note with a bare \r quoted, not split
