"""Equity and underwater curves: what a backtest looked like, period by period.

The first chart a quant opens. From simple per-period returns r (0.01 = +1 %), with wealth
starting at 1.0 *before* the first return (the convention of
:func:`perfledger.returns.from_returns`, so the last point of :func:`equity_curve` is its
``total_return`` and the lowest point of :func:`drawdown_curve` is its ``drawdown``):

* equity (cumulative return, compounded): Eₜ = ∏ₛ≤ₜ (1 + rₛ) − 1;
* drawdown (underwater): Dₜ = (1 + Eₜ) / max(1, max_{s≤t}(1 + E_s)) − 1 ≤ 0, so a loss in the
  first period is already a drawdown.

A pandas Series keeps its index (a DatetimeIndex keeps its dates); a list or array gets a
RangeIndex (0 … n − 1). Bad input (NaN/inf, a return below −1, nothing at all) is a
ValidationError naming ``returns``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from .returns import _as_array

__all__ = ["drawdown_curve", "equity_curve"]


def _wealth(returns: Any) -> tuple[np.ndarray, pd.Index]:
    index = returns.index if isinstance(returns, pd.Series) else None
    r = _as_array(returns, "returns")
    if r.size == 0:
        raise ValidationError.of("returns", "returns is empty: a curve needs at least one period")
    low = int(np.argmin(r))
    if r[low] < -1.0:
        raise ValidationError.of(
            "returns",
            f"returns[{low}]={r[low]!r} is below -1: a simple return cannot lose more than everything",
        )
    return np.cumprod(1.0 + r), (index if index is not None else pd.RangeIndex(r.size))


def equity_curve(returns: Any) -> pd.Series:
    """Cumulative compounded return after each period, ∏(1 + r) − 1 (module docstring)."""
    wealth, index = _wealth(returns)
    return pd.Series(wealth - 1.0, index=index, name="equity")


def drawdown_curve(returns: Any) -> pd.Series:
    """The underwater curve: each period's fall from the highest wealth so far (the initial
    1.0 included), ≤ 0 (module docstring)."""
    wealth, index = _wealth(returns)
    peak = np.maximum(np.maximum.accumulate(wealth), 1.0)
    return pd.Series(np.minimum(wealth / peak - 1.0, 0.0) + 0.0, index=index, name="drawdown")
