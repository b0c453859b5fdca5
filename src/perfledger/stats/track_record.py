"""The minimum track record length: how long a record must be before its Sharpe is believable.

Bailey & López de Prado, "The Sharpe Ratio Efficient Frontier", Journal of Risk 15(2), 2012.
Inverting the Probabilistic Sharpe Ratio (PSR ≥ confidence) for the number of periods gives

    MinTRL = 1 + (1 − γ₃·SR + (γ₄ − 1)/4 · SR²) · (z_α / (SR − SR*))²,   z_α = Φ⁻¹(confidence)

with SR the observed **per-period** Sharpe (mean / std, ddof 1, not annualised), SR* the
benchmark in the same unit, γ₃ the skewness and γ₄ the kurtosis. γ₄ is the **non-excess**
kurtosis (3 for normal returns), exactly as :func:`perfledger.returns.probabilistic_sharpe_ratio`
and the stored ``kurtosis`` metric use it (moment estimators m₄ / m₂², ``from_returns``): a
track record of MinTRL periods with these moments has PSR(SR*) = confidence, to rounding.
(Passing an excess kurtosis, 0 for normal returns, would understate the record needed by
(3/4)·SR²·z²/(SR − SR*)² periods: the convention slip the paper's readers most often make.)

The length is in periods, and in years = periods / periods_per_year. It is the length the
*observed* moments would need: it assumes the returns keep their Sharpe, skew and kurtosis,
and are independent and identically distributed.

Undefined cases are answers, not crashes: with SR ≤ SR* no record is long enough (the
periods are ``inf`` and ``reason`` says why); with moments leaving 1 − γ₃·SR + (γ₄−1)/4·SR²
≤ 0 (impossible for real data: γ₄ ≥ 1 + γ₃²) the periods are NaN, with the reason.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .returns import check_periods_per_year, from_returns, norm_ppf

__all__ = ["TrackRecord", "min_track_record_length", "track_record_of"]


@dataclass(frozen=True)
class TrackRecord:
    """The minimum track record length of one Sharpe ratio.

    ``periods`` (1 + …, a real number; ``inf`` when ``sr`` ≤ ``sr_benchmark``, NaN when the
    moments leave no positive variance) and ``years`` = periods / periods_per_year, for a PSR
    of ``confidence`` against ``sr_benchmark`` (per period). ``reason`` is empty when
    ``periods`` is finite, else why not. ``n_periods`` is the record's actual length when
    known (:func:`track_record_of`), and ``enough`` says whether it reaches MinTRL."""

    periods: float
    years: float
    confidence: float
    sr: float
    sr_benchmark: float
    skew: float
    kurtosis: float
    periods_per_year: float
    reason: str = ""
    n_periods: int | None = None

    @property
    def enough(self) -> bool | None:
        """Whether the record is at least MinTRL long (None when its length is unknown)."""
        if self.n_periods is None:
            return None
        return bool(self.n_periods >= self.periods)  # False for inf and NaN


def _number(value: Any, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValidationError.of(argument, f"{argument}={value!r} must be a finite number")
    return float(value)


def _confidence(confidence: Any) -> float:
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, numbers.Real)
        or not (0.0 < confidence < 1.0)
    ):
        raise ValidationError.of(
            "confidence", f"confidence={confidence!r} must be a probability strictly between 0 and 1 "
                          "(0.95 for 95 %)"
        )
    return float(confidence)


def min_track_record_length(
    sr: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    sr_benchmark: float = 0.0,
    confidence: float = 0.95,
    periods_per_year: float = 252,
) -> TrackRecord:
    """MinTRL of a **per-period** Sharpe ``sr`` with skewness ``skew`` and non-excess
    ``kurtosis`` (3 = normal) against ``sr_benchmark`` (per period) at ``confidence``
    (module docstring: formula, source, conventions, the undefined cases).

    An annualised Sharpe S of daily returns is S / √252 per period. A ValidationError names
    a non-finite ``sr``, ``skew``, ``kurtosis`` or ``sr_benchmark``, a ``confidence`` outside
    (0, 1), or a bad ``periods_per_year``."""
    sr = _number(sr, "sr")
    skew = _number(skew, "skew")
    kurtosis = _number(kurtosis, "kurtosis")
    sr_benchmark = _number(sr_benchmark, "sr_benchmark")
    confidence = _confidence(confidence)
    ppy = check_periods_per_year(periods_per_year)
    base = dict(confidence=confidence, sr=sr, sr_benchmark=sr_benchmark, skew=skew,
                kurtosis=kurtosis, periods_per_year=ppy)
    if sr <= sr_benchmark:
        return TrackRecord(
            periods=math.inf, years=math.inf, **base,
            reason=f"the Sharpe {sr:.6g} per period does not exceed the benchmark {sr_benchmark:.6g}: "
                   "no track record is long enough",
        )
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0:
        return TrackRecord(
            periods=math.nan, years=math.nan, **base,
            reason=f"skew {skew:.6g} and kurtosis {kurtosis:.6g} leave no positive variance "
                   f"for the Sharpe estimate (1 − γ₃·SR + (γ₄ − 1)/4·SR² = {var:.6g}); "
                   "is kurtosis the non-excess one (3 for normal returns)?",
        )
    z = norm_ppf(confidence)
    try:  # a Sharpe a hair above the benchmark: (z / 1e-200)² is past the largest float
        periods = 1.0 + var * (z / (sr - sr_benchmark)) ** 2
    except OverflowError:
        periods = math.inf
    if math.isinf(periods):
        return TrackRecord(
            periods=math.inf, years=math.inf, **base,
            reason=f"the Sharpe {sr:.6g} per period exceeds the benchmark {sr_benchmark:.6g} by "
                   f"{sr - sr_benchmark:.3g}: the track record needed is beyond any number of periods",
        )
    return TrackRecord(periods=periods, years=periods / ppy, **base)


def track_record_of(
    returns: Any,
    periods_per_year: float = 252,
    sr_benchmark: float = 0.0,
    confidence: float = 0.95,
) -> TrackRecord:
    """MinTRL of a return series: its per-period Sharpe, skew and kurtosis as
    :func:`perfledger.returns.from_returns` computes them, and its length in ``n_periods``.
    Constant returns have no Sharpe: NaN periods with that reason. Bad ``returns`` are a
    ValidationError naming ``returns``, as in ``from_returns``."""
    values = from_returns(returns, periods_per_year)
    ppy = check_periods_per_year(periods_per_year)
    n = int(values["n_periods"])
    if "sharpe" not in values:
        confidence = _confidence(confidence)
        return TrackRecord(
            periods=math.nan, years=math.nan, confidence=confidence, sr=math.nan,
            sr_benchmark=_number(sr_benchmark, "sr_benchmark"), skew=math.nan, kurtosis=math.nan,
            periods_per_year=ppy, reason="constant returns have no Sharpe ratio", n_periods=n,
        )
    result = min_track_record_length(
        values["sharpe"] / math.sqrt(ppy), values["skew"], values["kurtosis"], sr_benchmark,
        confidence, ppy,
    )
    return TrackRecord(**{**result.__dict__, "n_periods": n})
