"""The seed's model-performance logging API, on a :class:`perfledger.Ledger`.

Drop-in for code written against the seed specification: same function names, signatures
and return shapes, same files under ``memory/logs/``; and the two functions the seed's own
dashboard page imported (``render_model_performance_dashboard``, ``render_best_models_summary``),
which draw perfledger's dashboard tabs into a team's page. Underneath, records go to an embedded
SQLite database (or ``$PERFLEDGER_URL``) that loses nothing under concurrent writers or
killed processes; the seed's JSON/CSV/best-models files are kept as mirrors.

The ledger location is resolved at *each call* (``$PERFLEDGER_URL``, else ``./memory/logs``
under the current working directory), so ``os.chdir`` and tests that delete or restore
``memory/logs`` between calls behave as they did with the seed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfledger.ledger import Ledger
from perfledger.location import DEFAULT_DIR, resolve

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "clear_model_performance_log",
    "ensure_log_directory",
    "get_available_models",
    "get_available_tickers",
    "get_best_models",
    "get_ledger",
    "get_model_performance_history",
    "log_model_performance",
    "render_best_models_summary",
    "render_model_performance_dashboard",
]

_ledgers: dict[str, Ledger] = {}
_lock = threading.Lock()


def get_ledger() -> Ledger:
    """The :class:`~perfledger.Ledger` behind these functions, for the current directory."""
    location = resolve()
    key = location.as_argument()
    with _lock:
        led = _ledgers.get(key)
        if led is None:
            led = _ledgers[key] = Ledger(location)
        return led


def ensure_log_directory() -> Path:
    """Create ``memory/logs`` if missing (its database comes with the first log); return its path."""
    led = get_ledger()
    if led.directory is not None:
        # The seed created the directory here; perfledger's reads never create anything,
        # so this does (the database and the files follow with the first log).
        led.directory.mkdir(parents=True, exist_ok=True)
    led.stats()  # reopens the store if the directory was removed since the last call
    return led.directory if led.directory is not None else Path(DEFAULT_DIR).resolve()


def log_model_performance(
    model_name: str,
    ticker: str,
    sharpe: float | None = None,
    mse: float | None = None,
    drawdown: float | None = None,
    total_return: float | None = None,
    win_rate: float | None = None,
    accuracy: float | None = None,
    notes: str = "",
    *,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    timestamp: Any = None,
) -> dict[str, Any]:
    """Log model performance; returns the logged record as a dict (see ``Ledger.log``)."""
    return get_ledger().log(
        model_name, ticker, sharpe=sharpe, mse=mse, drawdown=drawdown,
        total_return=total_return, win_rate=win_rate, accuracy=accuracy, notes=notes,
        metrics=metrics, params=params, tags=tags, timestamp=timestamp,
    )


def _filter(value: Any) -> Any:
    """The seed's filters are ``if ticker:`` / ``if days_back:``: an empty value ("", 0, [])
    means "no filter", as None does. (perfledger's own API refuses a blank ticker, which is
    more often a bug than a wish; this module keeps the seed's meaning.)"""
    if value is None:
        return None
    try:
        return value if value else None
    except (TypeError, ValueError):  # a value with no truth (an array): the library judges it
        return value


def get_model_performance_history(
    ticker: str | None = None, model_name: str | None = None, days_back: int | None = None
) -> pd.DataFrame:
    """Performance history as a DataFrame, oldest first (``iloc[-1]`` is the latest). As in the
    seed, an empty ``ticker``/``model_name`` or ``days_back=0`` filters nothing."""
    return get_ledger().history(ticker=_filter(ticker), model_name=_filter(model_name),
                                days_back=_filter(days_back))


def get_best_models(ticker: str | None = None) -> dict[str, Any]:
    """Best model per metric: ``{ticker: {"best_sharpe": {...}, ...}}``, or one ticker's
    (an empty ``ticker`` is every ticker, as in the seed)."""
    return get_ledger().best(_filter(ticker))


def get_available_tickers() -> list[str]:
    """Tickers with performance data."""
    return get_ledger().tickers()


def get_available_models(ticker: str | None = None) -> list[str]:
    """Models with performance data, optionally for one ticker (an empty one: every ticker)."""
    return get_ledger().models(_filter(ticker))


def clear_model_performance_log() -> None:
    """Clear all model performance logs."""
    get_ledger().clear()


def render_model_performance_dashboard() -> None:
    """Draw the dashboard's 📈 Performance Dashboard tab into the current Streamlit page (its
    filters go to the sidebar), as the seed's own page did. Needs ``perfledger[dashboard]``;
    Streamlit is imported only when this is called."""
    from perfledger.dashboard.components import model_performance_dashboard

    model_performance_dashboard()


def render_best_models_summary() -> None:
    """Draw the dashboard's 🏆 Best Models Summary tab into the current Streamlit page."""
    from perfledger.dashboard.components import best_models_summary

    best_models_summary()
