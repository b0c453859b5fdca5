"""The checks of read arguments: which tickers/models, metric ranges, limits, counts and
levels a query asks for.

Apart from :mod:`.validation` (what may be *stored*) because a bad read argument never
threatens the ledger: it only has to fail with a message naming the argument and the value,
before any SQL is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ..errors import ValidationError
from .numbers import MAX_WHOLE, shown, to_real, to_whole
from .record import CORE_METRICS
from .timestamps import EARLIEST, now_us, to_us
from .validation import check_label, check_metric_name


def _fail(fieldname: str, message: str) -> ValidationError:
    return ValidationError(message, [(None, fieldname, message)])


def check_names(fieldname: str, value: Any) -> tuple[str, ...]:
    """A query's ticker or model filter: one name or a list of names."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (check_label(fieldname, value),)
    if isinstance(value, Mapping) or not hasattr(value, "__iter__"):
        raise TypeError(f"{fieldname} must be a str or a list of str, got {type(value).__name__}")
    return tuple(check_label(fieldname, v) for v in value)


def check_columns(value: Any) -> tuple[str, ...] | None:
    """A history's ``columns``: None (every column), or the metric names (core or custom)
    and ``"notes"`` to read besides ``timestamp``, ``ticker`` and ``model_name``; in the
    order given, each once."""
    if value is None:
        return None
    if isinstance(value, str | Mapping) or not hasattr(value, "__iter__"):
        raise TypeError(f"columns must be a list of metric names, got {type(value).__name__} {value!r}")
    out: list[str] = []
    for name in value:
        if name not in CORE_METRICS and name != "notes":
            check_metric_name(name, "columns")
        if name not in out:
            out.append(name)
    return tuple(out)


def check_bounds(fieldname: str, value: Any) -> tuple[tuple[str, float], ...]:
    """Metric-range filters (``at_least``/``at_most``): metric name → finite number."""
    if not value:
        return ()
    if not isinstance(value, Mapping):
        raise TypeError(f"{fieldname} must be a mapping of metric name to number")
    out = []
    for name, bound in value.items():
        if name not in CORE_METRICS:
            check_metric_name(name, fieldname)
        out.append((name, to_real(f"{fieldname}[{name!r}]", bound)))
    return tuple(out)


#: The largest row count a database LIMIT takes (a signed 64-bit integer).
MAX_LIMIT = MAX_WHOLE


def check_limit(limit: Any) -> int | None:
    """``limit``: None, or a whole number of rows from 1 to :data:`MAX_LIMIT`."""
    if limit is None:
        return None
    return to_whole("limit", limit, minimum=1, maximum=MAX_LIMIT, what="(rows)")


def check_count(fieldname: str, value: Any, minimum: int, *, optional: bool = False,
                maximum: int = MAX_WHOLE) -> int | None:
    """A whole number from ``minimum`` to ``maximum`` (None allowed when ``optional``)."""
    if value is None and optional:
        return None
    return to_whole(fieldname, value, minimum=minimum, maximum=maximum,
                    what="(or None)" if optional else "")


#: The most evaluations a decay test looks at per side: two of them summed stay a BIGINT.
MAX_TAIL = MAX_WHOLE // 4
#: Evaluations a decay test needs before the recent ones: fewer than 10 earlier values say
#: little (:mod:`perfledger.stats.decay`; here so the command line's help can say it
#: without importing numpy).
MIN_BASELINE = 10
#: The blocks S a CSCV may cut the periods into: even, from 2 to 20 (C(20, 10) = 184,756
#: splits; :mod:`perfledger.stats.overfitting`).
MAX_PARTITIONS = 20
#: How a significance level's range is said, in messages and the command line's help.
PROBABILITY_WORDS = "a number greater than 0 and less than 1, e.g. 0.01"


def check_probability(fieldname: str, value: Any, *, text: bool = False) -> float:
    """A real number strictly between 0 and 1 (a significance level)."""
    p = to_real(fieldname, value, text=text)
    if not 0 < p < 1:
        raise _fail(fieldname, f"{fieldname}={shown(value)} must be {PROBABILITY_WORDS}")
    return p


_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: How an age is written, in messages and the command line's help.
AGE_WORDS = ("a whole number (ASCII digits 0-9) and a unit: s (seconds), m (minutes, not months), "
             "h (hours), d (days) or w (weeks), e.g. 90m, 36h, 30d, 2w; reaching back no further than "
             "the year 1")


def check_age(fieldname: str, value: Any) -> timedelta | None:
    """An age (``purge --older-than``): a ``timedelta`` or text such as ``30d``, ``12h``,
    ``2w`` (:data:`AGE_WORDS`); None means no age limit. An age reaching back before the year
    1 (the earliest time a datetime holds, as for ``days_back``) is refused, naming the most."""
    if value is None:
        return None
    most = timedelta(microseconds=now_us() - to_us(EARLIEST))
    if isinstance(value, timedelta):
        age = value
    elif isinstance(value, str):
        found = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", value.lower(), re.ASCII)
        if found is None:
            raise _fail(fieldname, f"{fieldname}={shown(value)} is not an age: write {AGE_WORDS}")
        try:
            age = timedelta(**{_AGE_UNITS[found.group(2)]: int(found.group(1))}) if len(
                found.group(1)) <= 20 else timedelta.max
        except OverflowError:
            age = timedelta.max
    else:
        raise _fail(fieldname, f"{fieldname} must be a timedelta or text such as '30d', got "
                               f"{type(value).__name__} {shown(value)}")
    if age > most:
        raise _fail(fieldname, f"{fieldname}={shown(value)} reaches back before the year 1: an age is at "
                               f"most {most.days}d (omit it to purge every clear)")
    if age < timedelta(0):
        raise _fail(fieldname, f"{fieldname}={value!r} is negative")
    return age
