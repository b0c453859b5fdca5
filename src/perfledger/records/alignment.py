"""The one rule that matches kept return series period by period.

``returns_frame``, ``overfitting`` (PBO), ``effective_trials`` (and so the DSR of
``sharpe_confidence``) and the dashboard's Backtests tab all line several evaluations' series
up side by side. A statistic computed on misaligned periods (a 2020 return paired with a 2021
one, a day with a month) is a wrong number that looks right, so they all go through
:func:`align`, and a set of series that cannot be matched is **refused** with one
:class:`ValidationError` line naming ``returns``, saying why and what to do:

* **Different frequencies**: series logged with different ``periods_per_year`` (252 and 12):
  a day is not a month. Refused (filter one frequency: ``model_name=``, ``tags=``).
* **Dated and undated mixed**: a series kept without dates (a list, an array, a Series whose
  index is not a DatetimeIndex) has no dates to match the others' on. Refused (log it again
  as a pandas Series with a DatetimeIndex, or filter it out).
* **Undated of different lengths**: two backtests of different lengths may share their end,
  their start, or nothing; pairing their first periods is a guess. Refused. Undated series of
  one length are matched by position (row i is each one's i-th period).
* **Dated**: matched on their dates. When every series is daily or coarser (at most one point
  per UTC calendar date) they are matched on the **UTC date**, so a close stamped 16:00
  America/New_York and a midnight stamp of the same day are one period, and the frame's index
  is that date (midnight UTC). Otherwise (intraday series) on the exact UTC instant.

:func:`align` returns the union of the periods (NaN where a series has none);
:func:`common_periods` keeps the periods every series has, and refuses with one line when
there are none (the series share no date), rather than letting a later count ("0 periods")
read as "too little data".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ValidationError
from .kept_returns import KeptReturns

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["align", "common_periods"]

_DAY_US = 86_400_000_000


def _ids(ids: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _refuse(message: str) -> ValidationError:
    return ValidationError.of("returns", message)


def _check_frequencies(ids: Sequence[int], periods_per_year: Mapping[int, float] | None) -> None:
    if not periods_per_year:
        return
    groups: dict[float, list[int]] = {}
    for i in ids:
        ppy = periods_per_year.get(i)
        if ppy is not None and math.isfinite(ppy):
            groups.setdefault(float(ppy), []).append(i)
    if len(groups) > 1:
        parts = "; ".join(f"{ppy:g} for record(s) {_ids(rs)}" for ppy, rs in sorted(groups.items()))
        raise _refuse(f"returns of different frequencies cannot be matched period by period "
                      f"(periods_per_year {parts}): filter one frequency (model_name=, tags=)")


def align(
    kept: Mapping[int, KeptReturns], ids: Sequence[int], periods_per_year: Mapping[int, float] | None = None
) -> pd.DataFrame:
    """The series ``kept[i]`` for ``i`` in ``ids``, one column each (named ``i``), matched by
    the module's rule on the union of their periods; ``periods_per_year`` maps a record to
    the frequency it was logged with (missing or NaN: unknown, not compared). A set that
    cannot be matched: a :class:`ValidationError` naming ``returns`` (module docstring)."""
    import pandas as pd

    ids = list(ids)
    if not ids:
        return pd.DataFrame(index=pd.RangeIndex(0))
    _check_frequencies(ids, periods_per_year)
    undated = [i for i in ids if kept[i].dates is None]
    if undated and len(undated) < len(ids):
        dated = [i for i in ids if kept[i].dates is not None]
        raise _refuse(f"returns of record(s) {_ids(undated)} were kept without dates and those of "
                      f"record(s) {_ids(dated)} with dates: they cannot be matched period by period; "
                      "log them again as a pandas Series with a DatetimeIndex, or filter them out "
                      "(model_name=, tags=)")
    if undated:
        lengths = {kept[i].n for i in ids}
        if len(lengths) > 1:
            shown = ", ".join(map(str, sorted(lengths)))
            raise _refuse(f"returns kept without dates have different lengths ({shown} "
                          "periods): without dates they cannot be matched period by period; log them "
                          "as a pandas Series with a DatetimeIndex, or filter one length")
        values = np.empty((len(ids), kept[ids[0]].n))
        for row, i in zip(values, ids, strict=True):
            row[:] = np.frombuffer(kept[i].values, dtype="<f8")
        return pd.DataFrame(values.T, columns=ids, copy=False)
    stamps = {i: kept[i].dates_us() for i in ids}
    days = {i: stamps[i] // _DAY_US for i in ids}
    daily = all(bool((np.diff(d) > 0).all()) for d in days.values())
    keys = {i: days[i] * _DAY_US for i in ids} if daily else stamps
    first = keys[ids[0]]
    if all(len(keys[i]) == len(first) and np.array_equal(keys[i], first) for i in ids):
        values = np.empty((len(ids), len(first)))  # one calendar: one block, no union
        for row, i in zip(values, ids, strict=True):
            row[:] = np.frombuffer(kept[i].values, dtype="<f8")
        index = pd.DatetimeIndex(pd.to_datetime(first, unit="us", utc=True), name="date")
        return pd.DataFrame(values.T, index=index, columns=ids, copy=False)
    columns = [
        pd.Series(kept[i].array(), name=i,
                  index=pd.DatetimeIndex(pd.to_datetime(keys[i], unit="us", utc=True), name="date"))
        for i in ids
    ]
    return pd.concat(columns, axis=1, join="outer", sort=True)


def common_periods(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of an :func:`align` frame where every series has a return; a
    :class:`ValidationError` naming ``returns`` when they share none (each series' span said,
    so a 2020 backtest beside a 2022 one reads as that, not as "too little data")."""
    import pandas as pd

    if frame.shape[1] == 0 or not frame.isna().to_numpy().any():
        return frame
    common = frame.dropna()
    dated = isinstance(frame.index, pd.DatetimeIndex)
    if common.shape[0] == 0 and frame.shape[0] > 0:
        spans = []
        for c in list(frame.columns)[:4]:
            s = frame[c].dropna()
            spans.append(f"record {c}: {s.index[0]:%Y-%m-%d} to {s.index[-1]:%Y-%m-%d}" if len(s) and dated
                         else f"record {c}: {len(s)} periods")
        raise _refuse(f"the {frame.shape[1]} series share no date ({'; '.join(spans)}"
                      f"{'; …' if frame.shape[1] > 4 else ''}): dates are compared as UTC days for "
                      "daily-or-coarser series, as UTC instants for intraday ones")
    return common
