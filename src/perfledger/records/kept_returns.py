"""A backtest's per-period return series as the ledger keeps it: exact, compact, checked.

``log_backtest(..., returns=...)`` keeps the series it computed the metrics from, so that
the questions asked after a sweep (was it overfit? how long must the track record be? how
many independent trials were there? what did the equity curve look like?) can be answered
later from the store. Kept as the raw bytes of the values, not as rows:

* ``values``: little-endian float64, 8 bytes per period, exactly the floats given (no
  rounding, no text round trip);
* ``dates``: little-endian int64 UTC microseconds since the epoch, 8 bytes per period, only
  when the series was a pandas Series with a DatetimeIndex (a list or array keeps its order
  only: ``dates`` is None).

Ten years of daily returns (2,520 periods) are 20,160 bytes of values plus 20,160 bytes of
dates: about 40 KB per evaluation (20 KB without dates).

Bad input is refused before anything is stored, with a :class:`ValidationError` naming
``returns``: a non-finite value, fewer than 2 periods, a DatetimeIndex that is not strictly
increasing (out of order or duplicated) or holds NaT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ValidationError

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
            utc = index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
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
        raise _fail(f"returns must be a sequence of numbers, got {type(values).__name__}")
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
    return KeptReturns(int(arr.size), arr.astype(_F8).tobytes(), dates)
