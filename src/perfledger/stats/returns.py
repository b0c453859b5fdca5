"""Backtest metrics computed one way, so every model in the ledger is scored alike.

The seed left ``calculate_sharpe_ratio`` and friends to each user, so two researchers'
"Sharpe 1.5" could mean different things (annualised or not, ddof 0 or 1, drawdown from
the first close or from the initial capital). :func:`from_returns` fixes the conventions:

* ``returns`` are simple per-period returns (``0.01`` = +1 %), risk-free rate 0.
* ``sharpe`` = mean / sample std (ddof=1) × √periods_per_year.
* ``volatility`` = sample std (ddof=1) × √periods_per_year.
* ``total_return`` = ∏(1 + r) − 1.
* ``drawdown`` = min over t of (wealth_t / running peak_t − 1), wealth starting at 1.0
  *before* the first return, so a first-period loss is a drawdown. Always <= 0.
* ``win_rate`` = positive periods / non-zero periods (flat periods are neither).
* ``sortino`` = mean / √mean(min(r, 0)²) × √periods_per_year (downside deviation over all
  periods, target 0).
* ``calmar`` = annualised return / |drawdown|, annualised return = (1 + total_return) **
  (periods_per_year / n) − 1.
* ``skew`` and ``kurtosis`` are the moment estimators m3 / m2^1.5 and m4 / m2² (m_k the
  k-th central moment with divisor n; kurtosis is *not* excess: 3 for a normal).
* ``psr`` = Probabilistic Sharpe Ratio against 0 (Bailey & López de Prado 2012) of the
  per-period Sharpe SR = mean / std over T = n periods:
  Φ(SR·√(T−1) / √(1 − skew·SR + (kurtosis−1)/4·SR²)).
* ``mse`` = mean((predictions − actuals)²); ``accuracy`` = share of periods where
  sign(prediction) = sign(actual) (a zero matches only a zero).
* ``n_periods`` = n.

Undefined values are *left out* of the result (and therefore not stored), never stored as
a made-up number: with zero variance (all returns equal) there is no ``sharpe``, ``psr``,
``skew`` or ``kurtosis``; with no losing period there is no ``sortino``; with no drawdown
there is no ``calmar``; with only flat periods there is no ``win_rate``. A standard
deviation below 1e-12 × max|r| counts as zero (constant returns otherwise give a
rounding-error std and an absurd Sharpe).

Bad input raises :class:`~perfledger.ValidationError` naming the argument: NaN or
infinite values, fewer than 2 returns, a return below −1 (a simple return cannot lose more
than everything), predictions without actuals (or the reverse), predictions and
actuals of different lengths, or a ``periods_per_year`` so large that the annualised return
(for ``calmar``) does not fit a float.

Pure numpy and the standard library: no pandas, no scipy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..records.numbers import shown, to_real, to_whole

__all__ = [
    "EULER_GAMMA",
    "check_n_trials",
    "check_variance",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "from_returns",
    "norm_cdf",
    "norm_ppf",
    "probabilistic_sharpe_ratio",
]

#: The Euler–Mascheroni constant γ used by the expected maximum of N Sharpe ratios.
EULER_GAMMA = 0.5772156649015329
_STD = NormalDist()
_ZERO_STD_RTOL = 1e-12
_MAX_LOG = math.log(1e300)  # an annualised growth factor beyond this is not a usable number


def norm_cdf(z: float) -> float:
    """Φ, the standard normal CDF (±inf map to 1 and 0)."""
    return _STD.cdf(z)


def norm_ppf(p: float) -> float:
    """Φ⁻¹, the standard normal quantile, for 0 < p < 1."""
    return _STD.inv_cdf(p)


def _fail(argument: str, message: str) -> ValidationError:
    return ValidationError(message, [(None, argument, message)])


def _as_array(values: Any, argument: str) -> np.ndarray:
    """A finite 1-D float array, or a ValidationError naming ``argument``."""
    if isinstance(values, str | bytes) or values is None:
        raise _fail(argument, f"{argument} must be a sequence of numbers, got {type(values).__name__}")
    if isinstance(values, Iterable) and not hasattr(values, "__len__"):
        values = list(values)  # a generator
    from ..records.kept_returns import check_numbers

    check_numbers(values, argument)  # bools, text, complex: WrongTypeError, as on every door
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError, ArithmeticError) as exc:
        # Name the value numpy could not take (10**400, Decimal("sNaN"), "abc"), through the
        # one coercion of user numbers, else say what numpy said.
        if isinstance(values, Iterable):
            for i, v in enumerate(values):
                if not isinstance(v, Iterable):
                    to_real(f"{argument}[{i}]", v, finite=False)
        raise _fail(argument, f"{argument} must be a sequence of numbers: {exc}") from None
    if arr.ndim != 1:
        raise _fail(argument, f"{argument} must be one-dimensional, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = int(bad[0])
        raise _fail(
            argument,
            f"{argument}[{i}]={arr[i]!r} is not a finite number ({bad.size} non-finite value(s))",
        )
    return arr


def check_periods_per_year(periods_per_year: Any) -> float:
    ppy = to_real("periods_per_year", periods_per_year)
    if ppy <= 0:
        raise _fail(
            "periods_per_year",
            f"periods_per_year={shown(periods_per_year)} must be a finite number > 0 (252 for daily)",
        )
    return ppy


def probabilistic_sharpe_ratio(
    sr: float, n_periods: float, skew: float = 0.0, kurtosis: float = 3.0, sr_benchmark: float = 0.0
) -> float:
    """PSR: the probability that the true per-period Sharpe exceeds ``sr_benchmark``.

    Bailey & López de Prado (2012): Φ((SR − SR*)·√(T−1) / √(1 − γ3·SR + (γ4−1)/4·SR²)),
    with SR the *per-period* (not annualised) Sharpe, T periods, γ3 skewness and γ4
    (non-excess) kurtosis. NaN when T < 2 or the variance term is not positive.
    """
    if not (n_periods >= 2) or not all(map(math.isfinite, (sr, skew, kurtosis, sr_benchmark))):
        return math.nan
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0:
        return math.nan
    return norm_cdf((sr - sr_benchmark) * math.sqrt(n_periods - 1.0) / math.sqrt(var))


def check_n_trials(n_trials: Any, at_least: int = 1) -> int:
    """``n_trials`` as an int >= ``at_least``, or a ValidationError naming it and its value."""
    reason = (f"the ledger holds {at_least} trial(s) with a Sharpe on this ticker, and every one counts: "
              "n_trials adds configurations tried but not logged; correlated trials are counted by the "
              "effective number of trials when n_trials is left unset"
              if at_least > 1 else "at least one strategy was tried")
    return to_whole("n_trials", n_trials, minimum=at_least, what=f"({reason})")


def check_variance(variance: Any) -> float:
    """The trials' Sharpe variance as a float >= 0, or a ValidationError naming it. A NaN or
    negative variance is refused rather than read as 0, which would make the DSR its most
    favourable value (the PSR)."""
    v = to_real("variance", variance, finite=False) if variance is not None else math.nan
    if not (math.isfinite(v) and v >= 0):
        raise _fail("variance", f"variance={shown(variance)} must be a finite number >= 0 "
                                "(the variance of the trials' Sharpe ratios)")
    return v


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """SR0 of the Deflated Sharpe Ratio: the Sharpe the best of ``n_trials`` unskilled
    strategies is expected to reach by luck, given the variance of the trials' Sharpes
    (Bailey & López de Prado 2014):
    √V · ((1−γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))). 0 for a single trial.

    SR0 is in the units of the Sharpes V was computed from: annualised Sharpes give an
    annualised SR0, to be divided by √periods_per_year before a per-period PSR uses it.
    A ValidationError for ``n_trials`` < 1 or a NaN, infinite or negative ``variance``."""
    n_trials = check_n_trials(n_trials)
    variance = check_variance(variance)
    if n_trials == 1 or variance == 0:
        return 0.0
    n = float(n_trials)
    return math.sqrt(variance) * (
        # Φ⁻¹(1 − q) written as −Φ⁻¹(q): 1 − 1/N is 1.0 in floating point for N past ~1e16,
        # where Φ⁻¹ is undefined; −Φ⁻¹(1/N) stays exact for every N a count can hold.
        (1.0 - EULER_GAMMA) * -norm_ppf(1.0 / n) + EULER_GAMMA * -norm_ppf(1.0 / (n * math.e))
    )


def deflated_sharpe_ratio(
    sr: float, n_periods: float, n_trials: int, variance: float, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """DSR: the PSR of the per-period ``sr`` against :func:`expected_max_sharpe` instead of 0.

    ``variance`` is the variance of the *per-period* Sharpes of the ``n_trials`` strategies
    tried (trials of different frequencies: use :func:`expected_max_sharpe` on annualised
    Sharpes and convert SR0 per trial, as ``sharpe_confidence`` does). With one trial the
    benchmark is 0 and the DSR equals the PSR."""
    return probabilistic_sharpe_ratio(
        sr, n_periods, skew, kurtosis, sr_benchmark=expected_max_sharpe(n_trials, variance)
    )


def _annualised(total_return: float, ppy: float, n: int) -> float:
    """(1 + total_return) ** (ppy / n) − 1, or a ValidationError naming ``periods_per_year``
    when it does not fit a float (compounding a gain over an absurd number of periods per year
    overflows: an OverflowError from Python, inf from numpy)."""
    if total_return <= -1.0:
        return -1.0
    log_growth = math.log1p(total_return) * (ppy / n)
    if log_growth > _MAX_LOG:
        raise _fail(
            "periods_per_year",
            f"periods_per_year={ppy!r} annualises a total return of {total_return:.6g} over {n} periods "
            f"to (1 + {total_return:.6g}) ** ({ppy:.6g} / {n}), too large for a number: "
            "is periods_per_year the number of periods in one year (252 for daily)?",
        )
    return (1.0 + total_return) ** (ppy / n) - 1.0


def from_returns(
    returns: Any,
    periods_per_year: float = 252,
    predictions: Any = None,
    actuals: Any = None,
) -> dict[str, float]:
    """Every metric the ledger knows, from a backtest's per-period returns.

    Conventions and edge cases are in this module's docstring (and ``docs/metrics.md``):
    one definition for everyone is the point. Undefined metrics are absent from the result.
    ``predictions``/``actuals`` (both or neither, same length) add ``mse`` and ``accuracy``.
    """
    ppy = check_periods_per_year(periods_per_year)
    r = _as_array(returns, "returns")
    n = r.size
    if n < 2:
        raise _fail("returns", f"returns has {n} period(s); at least 2 are needed for a standard deviation")
    low = int(np.argmin(r))
    if r[low] < -1.0:
        raise _fail(
            "returns",
            f"returns[{low}]={r[low]!r} is below -1: a simple return cannot lose more than everything",
        )
    out: dict[str, float] = {}
    if (predictions is None) != (actuals is None):
        missing = "actuals" if actuals is None else "predictions"
        raise _fail(missing, f"{missing} is missing: mse and accuracy need both predictions and actuals")
    if predictions is not None:
        p = _as_array(predictions, "predictions")
        a = _as_array(actuals, "actuals")
        if p.size != a.size:
            raise _fail(
                "actuals", f"predictions has {p.size} values but actuals has {a.size}; they must match"
            )
        if p.size == 0:
            raise _fail("predictions", "predictions is empty")
        out["mse"] = float(np.mean((p - a) ** 2))
        out["accuracy"] = float(np.mean(np.sign(p) == np.sign(a)))

    # An overflow (returns of 1e200) is refused below by name, once: numpy's warnings about
    # it would only precede that one line with five of their own.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mean = float(np.mean(r))
        std = float(np.std(r, ddof=1))
        if std <= _ZERO_STD_RTOL * float(np.max(np.abs(r))):
            std = 0.0
        root = math.sqrt(ppy)

        wealth = np.cumprod(np.concatenate(([1.0], 1.0 + r)))
        peak = np.maximum.accumulate(wealth)
        drawdown = float(np.min(wealth / peak - 1.0))
        total_return = float(wealth[-1] - 1.0)
        out["total_return"] = total_return
        out["drawdown"] = min(drawdown, 0.0) + 0.0  # never -0.0 or a rounding-positive value
        out["volatility"] = std * root
        out["n_periods"] = float(n)

        nonzero = int(np.count_nonzero(r))
        if nonzero:
            out["win_rate"] = float(np.count_nonzero(r > 0)) / nonzero

        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        if downside > 0:
            out["sortino"] = mean / downside * root

        if drawdown < 0:
            out["calmar"] = _annualised(total_return, ppy, n) / abs(drawdown)

        if std > 0:
            sr = mean / std
            out["sharpe"] = sr * root
            dev = r - mean
            m2 = float(np.mean(dev**2))
            skew = float(np.mean(dev**3)) / m2**1.5
            kurt = float(np.mean(dev**4)) / m2**2
            out["skew"] = skew
            out["kurtosis"] = kurt
            psr = probabilistic_sharpe_ratio(sr, n, skew, kurt)
            if math.isfinite(psr):
                out["psr"] = psr
    _refuse_non_finite(out, wealth)
    return out


def _refuse_non_finite(out: dict[str, float], wealth: np.ndarray) -> None:
    """Every metric from_returns gives is a finite number, or the returns are refused naming
    ``returns`` and the reason: returns that compound past the largest float (1e10 per period
    is a 1,000,000,000,000% gain, not a simple return) make total return infinite and
    drawdown undefined, and a metric nobody passed must never be the one blamed."""
    if not np.isfinite(wealth).all():
        at = int(np.flatnonzero(~np.isfinite(wealth))[0]) - 1
        raise _fail("returns", (
            f"returns compound past the largest number a float holds at returns[{at}] (total "
            "return infinite, drawdown undefined): are they simple per-period returns (0.01 for 1%)?"))
    bad = {k: v for k, v in out.items() if not math.isfinite(v)}
    if bad:
        raise _fail("returns", "returns give metrics that are not finite numbers ("
                    + ", ".join(f"{k}={v!r}" for k, v in bad.items())
                    + "): are they simple per-period returns (0.01 for 1%)?")
