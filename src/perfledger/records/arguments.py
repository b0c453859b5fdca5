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


def check_probability(fieldname: str, value: Any) -> float:
    """A real number strictly between 0 and 1 (a significance level)."""
    p = to_real(fieldname, value)
    if not 0 < p < 1:
        raise _fail(fieldname, f"{fieldname}={shown(value)} must be a number between 0 and 1, e.g. 0.01")
    return p


_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def check_age(fieldname: str, value: Any) -> timedelta | None:
    """An age (``purge --older-than``): a ``timedelta`` or text such as ``30d``, ``12h``,
    ``2w`` (units s, m, h, d, w); None means no age limit."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        age = value
    elif isinstance(value, str):
        found = re.fullmatch(r"\s*(\d{1,12})\s*([smhdw])\s*", value.lower())
        if found is None:
            raise _fail(fieldname, f"{fieldname}={value!r} is not an age such as '30d', '12h' or '2w' "
                                   "(units s, m, h, d, w)")
        try:
            age = timedelta(**{_AGE_UNITS[found.group(2)]: int(found.group(1))})
        except OverflowError:
            raise _fail(fieldname, f"{fieldname}={value!r} is longer than any date") from None
    else:
        raise _fail(fieldname, f"{fieldname} must be a timedelta or text such as '30d', got "
                               f"{type(value).__name__} {shown(value)}")
    if age < timedelta(0):
        raise _fail(fieldname, f"{fieldname}={value!r} is negative")
    return age
