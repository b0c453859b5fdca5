"""A backtest's per-period return series as the ledger keeps it: exact, compact, checked.

``log_backtest(..., returns=...)`` keeps the series it computed the metrics from, so that
the questions asked after a sweep (was it overfit? how long must the track record be? how
many independent trials were there? what did the equity curve look like?) can be answered
later from the store. Kept as the raw bytes of the values, not as rows:

* ``values``: little-endian float64, 8 bytes per period, exactly the floats given (no
  rounding, no text round trip);
* ``dates``: little-endian int64 UTC microseconds since the epoch, 8 bytes per period, only
  when the series was a pandas Series with a DatetimeIndex (a list or array keeps its order
  only: ``dates`` is None). A zone-aware index stamped at its zone's midnight is a series
  of calendar dates and is kept as those dates (midnight UTC), like a naive one.

Ten years of daily returns (2,520 periods) are 20,160 bytes of values plus 20,160 bytes of
dates: about 40 KB per evaluation (20 KB without dates).

Bad input is refused before anything is stored, with a :class:`ValidationError` naming
``returns`` (the same rule on every door: log_backtest, log_many, a Parquet import, sync): a
bool, text or a complex number (a :class:`WrongTypeError`), a non-finite value, a return
below −1, fewer than 2 periods, a DatetimeIndex that is not strictly
increasing (out of order or duplicated), holds NaT, or has a date finer than a microsecond
(a nanosecond-precision index of whole microseconds is kept exactly).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ValidationError, WrongTypeError

#: The custom metric a backtest's frequency is stored under (without a direction: it is a
#: setting, not a score): the per-period Sharpe is recovered from the annualised one with it,
#: and series of different frequencies are never matched period by period (:mod:`.alignment`).
PERIODS_METRIC = "periods_per_year"

if TYPE_CHECKING:
    import pandas as pd

_F8 = np.dtype("<f8")
_I8 = np.dtype("<i8")


@dataclass(frozen=True, slots=True)
class KeptReturns:
    """One evaluation's return series, as stored: ``n`` periods, their float64 bytes, and
    their dates' int64 microsecond bytes (None when the series had no dates)."""

    n: int
    values: bytes
    dates: bytes | None = None

    def array(self) -> np.ndarray:
        """The values, float64, exactly as given."""
        return np.frombuffer(self.values, dtype=_F8).astype(np.float64)

    def dates_us(self) -> np.ndarray | None:
        """The dates as UTC microseconds since the epoch (None without dates)."""
        return None if self.dates is None else np.frombuffer(self.dates, dtype=_I8).astype(np.int64)

    def series(self, name: Any = None) -> pd.Series:
        """A pandas Series: indexed by UTC dates when the series had them, else 0..n-1."""
        import pandas as pd

        us = self.dates_us()
        index = (pd.RangeIndex(self.n) if us is None
                 else pd.DatetimeIndex(pd.to_datetime(us, unit="us", utc=True), name="date"))
        return pd.Series(self.array(), index=index, name=name, dtype="float64")


def _fail(message: str) -> ValidationError:
    return ValidationError.of("returns", message)


#: Values that are not numbers even though numpy would make floats of them: a bool is not a
#: 100 % return, text is read as a number only where the input is text (the command line,
#: files), and a complex number's imaginary part would be dropped silently.
_NOT_NUMBERS = (bool, np.bool_, str, bytes, complex, np.complexfloating)


def materialised(returns: Any) -> Any:
    """``returns`` as something that can be read twice: a one-shot iterator or generator
    becomes a list (log_backtest computes the metrics from it and keeps it); anything else
    as given."""
    if isinstance(returns, Iterator) or (isinstance(returns, Iterable) and not hasattr(returns, "__len__")
                                         and not isinstance(returns, str | bytes)):
        return list(returns)
    return returns


def check_numbers(values: Any, argument: str = "returns") -> None:
    """A :class:`WrongTypeError` naming ``argument[i]`` and the value when a sequence of
    returns holds a bool, text or a complex number (see :data:`_NOT_NUMBERS`); the one type
    rule of every door a return series comes in by (log_backtest, from_returns, log_many,
    Parquet import, sync)."""
    kind = getattr(getattr(values, "dtype", None), "kind", "O")
    if kind in "iuf":
        return
    if kind in "bUScMm":
        what = {"b": "bools", "U": "text", "S": "bytes", "c": "complex numbers",
                "M": "dates", "m": "durations"}[kind]
        raise WrongTypeError.of(argument, f"{argument} must be real numbers, got an array of {what} "
                                          f"(dtype {values.dtype})")
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        return
    for i, v in enumerate(values):
        if isinstance(v, _NOT_NUMBERS) and not isinstance(v, np.floating):
            raise WrongTypeError.of(f"{argument}", f"{argument}[{i}]={v!r} is a {type(v).__name__}, "
                                                   "not a number")


def _refuse_below_microseconds(index: pd.DatetimeIndex) -> None:
    """Dates are kept to the microsecond (``dates`` above): a nanosecond-precision index
    whose stamps are whole microseconds is kept exactly; one with a finer part would come
    back changed (pandas' conversion truncates it silently, and two stamps in one
    microsecond would read as a duplicate), so it is refused, saying which and how to fix."""
    if index.unit != "ns":
        return  # "s", "ms", "us": whole microseconds by construction
    finer = np.flatnonzero(index.asi8 % 1000)
    if finer.size:
        i = int(finer[0])
        raise _fail(f"returns' dates are kept to the microsecond: {index[i]} at position {i} has a "
                    f"nanosecond part ({finer.size} date(s) do); round the index first "
                    "(returns.index.floor('us') or .round('us')) to keep it")


def _as_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The index in UTC. A time-zone-aware index whose every stamp is its own zone's midnight
    is a series of calendar dates (``pd.date_range(..., tz="Asia/Tokyo")``, a local-midnight
    daily file): it is kept as those dates (midnight UTC, as naive dates are), not as the
    instants, which fall on the previous UTC date east of UTC and move by an hour across a
    daylight-saving change: matched on the UTC date (:mod:`.alignment`), a Tokyo or Berlin
    daily series would pair day D with another series' day D-1."""
    if index.tz is None:
        return index.tz_localize("UTC")
    if len(index) and (index == index.normalize()).all():
        return index.tz_localize(None).tz_localize("UTC")
    return index.tz_convert("UTC")


def keep_returns(returns: Any) -> KeptReturns:
    """``returns`` (a Series with or without a DatetimeIndex, a list, an array) as it will be
    stored; a :class:`ValidationError` naming ``returns`` for anything that cannot be kept
    exactly (see module doc)."""
    import pandas as pd

    dates: bytes | None = None
    values: Any = returns
    if isinstance(returns, pd.Series):
        index = returns.index
        if isinstance(index, pd.DatetimeIndex):
            if index.hasnans:
                raise _fail("returns has a missing date (NaT) in its index")
            utc = _as_utc(index)
            _refuse_below_microseconds(utc)
            us = utc.as_unit("us").asi8.astype(_I8)
            steps = np.diff(us)
            if steps.size and (steps <= 0).any():
                i = int(np.flatnonzero(steps <= 0)[0]) + 1
                what = "duplicated" if steps[i - 1] == 0 else "out of order"
                raise _fail(f"returns' dates must be strictly increasing: {index[i]} at position {i} "
                            f"is {what}")
            dates = us.tobytes()
        values = returns.to_numpy()
    if isinstance(values, str | bytes) or values is None:
        raise WrongTypeError.of("returns", f"returns must be a sequence of numbers, got "
                                           f"{type(values).__name__}")
    values = materialised(values)
    check_numbers(values)
    try:
        arr = np.asarray(list(values) if not hasattr(values, "__len__") else values, dtype=np.float64)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise _fail(f"returns must be a sequence of numbers: {exc}") from None
    if arr.ndim != 1:
        raise _fail(f"returns must be one-dimensional, got shape {arr.shape}")
    if arr.size < 2:
        raise _fail(f"returns has {arr.size} period(s); at least 2 are needed")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise _fail(f"returns[{i}]={arr[i]!r} is not a finite number ({bad.size} non-finite value(s))")
    low = int(np.argmin(arr))
    if arr[low] < -1.0:
        raise _fail(f"returns[{low}]={float(arr[low])!r} is below -1: a simple return cannot lose more than "
                    "everything")
    return KeptReturns(int(arr.size), arr.astype(_F8).tobytes(), dates)
