"""Timestamps: one exact representation (UTC microseconds) and one text spelling.

Stored as integer microseconds since the epoch (exact, sortable, cheap to index), written
as ``2024-01-15T10:30:00.000000+00:00`` (one fixed width, so strings sort like times), and
every time window a caller gives (``days_back``, ``since``, ``until``) is checked by
:func:`time_window`, the one rule every query uses.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from .numbers import shown, to_real

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The range of times a ledger holds; anything outside is a typo, not an evaluation.
MIN_TS = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)
_US_PER_DAY = 86_400_000_000
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


def format_ts(ts_us: int) -> str:
    """ISO 8601 in UTC with microseconds and an explicit offset, e.g.
    ``2024-01-15T10:30:00.000000+00:00``: one fixed width, so the strings sort like the times.

    Spelled from ``time.gmtime`` rather than ``(EPOCH + timedelta).isoformat()``: the same
    text (a property test holds them together over the ledger's whole range) at ~60% of the
    cost, and every ``log()`` and best-models document spells timestamps."""
    sec, us = divmod(int(ts_us), 1_000_000)
    t = time.gmtime(sec)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{us:06d}+00:00")


#: Below this many timestamps, numpy's set-up costs more than formatting them one by one.
_VECTOR_FROM = 64


def format_ts_many(ts_us: Any) -> list[str]:
    """:func:`format_ts` for a whole column, vectorised when it is long."""
    if len(ts_us) < _VECTOR_FROM:
        return [format_ts(t) for t in ts_us]
    import numpy as np

    arr = np.asarray(ts_us, dtype="int64").astype("datetime64[us]")
    return [s + "+00:00" for s in np.datetime_as_string(arr, unit="us").tolist()]


def now_us() -> int:
    return to_us(datetime.now(UTC))


def to_us(dt: datetime) -> int:
    """Exact integer microseconds (no float rounding) of an aware datetime."""
    delta = dt - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_timestamp(value: Any, field_name: str = "timestamp") -> int:
    """Accept a datetime (naive means UTC), a pandas Timestamp or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"{field_name}={value!r} is not an ISO 8601 timestamp "
                "(e.g. '2024-01-15T10:30:00' or '2024-01-15T10:30:00+00:00')",
                [(None, field_name, "not ISO 8601")],
            ) from None
    elif isinstance(value, datetime):
        dt = value
    elif hasattr(value, "to_pydatetime"):
        dt = value.to_pydatetime()
    else:
        raise TypeError(
            f"{field_name} must be a datetime or an ISO 8601 string, got "
            f"{type(value).__name__} {value!r}"
        )
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if not (MIN_TS <= dt < MAX_TS):
        raise ValidationError(
            f"{field_name}={value!r} is outside the supported range 1900-01-01 .. 2200-01-01",
            [(None, field_name, "out of range")],
        )
    return to_us(dt)



def time_window(
    days_back: Any = None, since: Any = None, until: Any = None
) -> tuple[int | None, int | None]:
    """Validate a query's time window and return it as ``(since_us, until_us)``.

    ``days_back`` is exact (now minus that many days, fractions allowed) and must be a
    finite number > 0 that reaches no further back than the year 1 (the earliest time a
    datetime represents; omit it for all history); ``since``/``until`` are datetimes or
    ISO 8601 strings (naive means UTC). With both ``days_back`` and ``since``, the later
    start wins. Every query (history,
    leaderboard, exports, the CLI) goes through here, so they all accept and refuse alike.
    """
    since_us = parse_timestamp(since, "since") if since is not None else None
    until_us = parse_timestamp(until, "until") if until is not None else None
    if days_back is not None:
        now = now_us()
        days = check_days_back("days_back", days_back, now=now)
        cutoff = now - round(days * _US_PER_DAY)
        since_us = cutoff if since_us is None else max(since_us, cutoff)
    if since_us is not None and until_us is not None and since_us > until_us:
        raise ValidationError(
            f"since={since!r} is after until={until!r}", [(None, "since", "after until")]
        )
    return since_us, until_us


#: How a number of days back is said (with the most it may be), in messages and help.
DAYS_WORDS = "a number of days above 0, fractions allowed, and at most {most}, back to the year 1"


def check_days_back(fieldname: str, value: Any, *, text: bool = False, now: int | None = None) -> float:
    """``days_back`` (``--days``): a finite number of days > 0 reaching no further back than
    the year 1, or a :class:`ValidationError` naming ``fieldname`` and the value."""
    days = to_real(fieldname, value, text=text)
    most = ((now_us() if now is None else now) - to_us(EARLIEST)) // _US_PER_DAY
    if days <= 0 or days > most:
        raise ValidationError(
            f"{fieldname}={shown(value)} must be {DAYS_WORDS.format(most=most)}; omit it for all history",
            [(None, fieldname, "out of range")],
        )
    return days
