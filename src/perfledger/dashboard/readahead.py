"""The dashboard's read-ahead: after a first render, what a switch to another ticker reads.

A ticker switch on a million-record ledger waited on the new ticker's uncached reads before
its chart (issue 23). Once the Performance tab is drawn, :func:`prefetch` fills the same
:mod:`.data` caches for the next tickers on a background thread, keyed like every other
cache (the ledger's location and ``state`` token: a write makes them stale, never wrong).
It waits while any page of this server is being drawn (:func:`drawing`) and runs at the
lowest CPU priority: a person's page comes first. ``$PERFLEDGER_DASHBOARD_PREFETCH=0`` turns
it off.
"""

from __future__ import annotations

import logging
import os
import threading
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import streamlit as st

from . import data

log = logging.getLogger("perfledger")
#: How many other tickers :func:`prefetch` warms after a first render (a bound on the work
#: and on the caches' entries it takes: each ticker is a few cached answers).
PREFETCH_TICKERS = 12
#: ``0`` turns :func:`prefetch` off (a server that must not read ahead; the test suite).
PREFETCH_ENV = "PERFLEDGER_DASHBOARD_PREFETCH"


def warm_tickers(location: str, state: str, filters: data.Filters, metric: str, recent: int,
                 alpha: float, limit: int = PREFETCH_TICKERS) -> list[str]:
    """Fill the caches a switch to another ticker reads before its chart (its models, labels,
    leaderboard, the charted metric's series and the decay test), for up to ``limit`` other
    tickers, with this page's window and metric. Returns the tickers warmed. Keyed like every
    other cache (location and ``state``): a write makes them stale, never wrong."""
    names = data.tickers(location, state)
    at = names.index(filters.ticker) if filters.ticker in names else -1
    # The tickers after this one in the list first (the ones a person is likely to pick next).
    others = [t for t in names[at + 1:] + names[:max(at, 0)] if t != filters.ticker][:limit]
    for t in others:  # each read waits for the pages being drawn (a person's page first)
        _wait_while_drawing()
        data.models(location, state, t)
        _wait_while_drawing()
        data.labels(location, state, t)
        _wait_while_drawing()
        data.leaderboard(location, state, t, metric, filters.window)
        _wait_while_drawing()
        data.series(location, state, data.Filters(ticker=t, window=filters.window), metric)
        _wait_while_drawing()
        data.decay(location, state, t, (), metric, filters.window, recent, alpha)
    return others


_WARMED: set[tuple[Any, ...]] = set()
_WARMED_LOCK = threading.Lock()
_drawing = 0  # script runs of this process drawing a page right now


@contextmanager
def drawing() -> Iterator[None]:
    """Mark a script run in progress: the read-ahead waits for it (a person's page first)."""
    global _drawing
    with _WARMED_LOCK:
        _drawing += 1
    try:
        yield
    finally:
        with _WARMED_LOCK:
            _drawing -= 1


def _wait_while_drawing(limit: float = 30.0) -> None:
    """Block the read-ahead while any page is being drawn (each read waits, so a new run
    waits at most for one read in progress); after ``limit`` seconds it goes on anyway."""
    deadline = clock.monotonic() + limit
    while _drawing > 0 and clock.monotonic() < deadline:
        clock.sleep(0.05)


def prefetch(location: str, state: str, filters: data.Filters, metric: str, recent: int,
             alpha: float) -> None:
    """After the page is drawn, :func:`warm_tickers` on a background thread, once per ledger
    state, window and metric per server process: a ticker switch then finds its reads cached
    (issue 23: the switch waited on the new ticker's uncached reads before its chart). Off
    with ``$PERFLEDGER_DASHBOARD_PREFETCH=0``; a failure there costs only a cache miss later."""
    if not st.runtime.exists() or os.environ.get(PREFETCH_ENV, "1").strip() in ("0", "false", "no", "off"):
        return
    key = (location, state, filters.window, metric, recent, alpha)
    with _WARMED_LOCK:
        if key in _WARMED:
            return
        _WARMED.add(key)

    def work() -> None:
        # The lowest CPU priority for this thread (Linux schedules threads, so this leaves
        # the server's other threads and the browser on the same host theirs).
        with suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            warm_tickers(location, state, filters, metric, recent, alpha)
        except Exception:  # a cache miss later, never an error on the page
            log.debug("dashboard prefetch failed", exc_info=True)

    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    thread = threading.Thread(target=work, name="perfledger-prefetch", daemon=True)
    add_script_run_ctx(thread, get_script_run_ctx())
    thread.start()
