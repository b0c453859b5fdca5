"""How many independent trials a sweep really made, and the DSR deflated by that number.

200 configurations of one model are not 200 independent strategies: their returns are
highly correlated, so the Deflated Sharpe Ratio with N = 200 over-deflates and with N = 1
under-deflates. :func:`effective_trials` estimates the number of independent trials from
the eigenvalues λ of the trials' return correlation matrix R (N × N) with **Li & Ji's**
estimator (Li & Ji, "Adjusting multiple testing in multilocus analyses using the eigenvalues
of a correlation matrix", Heredity 95:221–227, 2005):

    M_eff = Σᵢ f(|λᵢ|),   f(x) = I(x ≥ 1) + (x − ⌊x⌋)

Each eigenvalue of at least 1 counts one whole trial plus its fractional part, each smaller
one its own size. It is 1 for identical trials (λ = N, 0, …, 0), N for uncorrelated ones
(every λ = 1), and ≈ k for k uncorrelated families of identical trials **whatever their
sizes** (one eigenvalue per family, the size of the family, counted as one): a sweep is a set
of families (a learning-rate grid of one model, a window grid of another), so the estimator
must count families, not weigh them by size.

Why not the alternatives: the participation ratio (Σλ)²/Σλ² = N²/Σρ² (Bretherton et al.,
1999) weighs families by their sizes, (Σnᵢ)²/Σnᵢ²: one family of 190 configurations beside
10 independent strategies counts as 1.11, not 11, and the DSR barely deflates. The
average-correlation proxy N̂ = ρ̄ + (1 − ρ̄)·N (and Nyholt's 2004 eigenvalue variance) say
≈ 101 for two uncorrelated families of 100. Li & Ji's cost: f jumps at whole numbers (a
family's top eigenvalue of 199.99 counts 1.99, of 200 counts 1), so a family of near-identical
trials counts between 1 and 2.

Small samples: sampling spreads the eigenvalues of independent series around 1, but while
each stays below 2 it counts exactly its own size and their sum is N: no adjustment is
needed (``n_periods`` is accepted for compatibility and checked, not used). N_eff is clipped
to [1, N].

:func:`deflated_sharpe_ratio_effective` is the DSR with a real-valued N (the Bailey & López
de Prado 2014 SR₀ formula applied to N_eff): for an integer N ≥ 2 it equals
:func:`perfledger.returns.deflated_sharpe_ratio`. Near N = 1 the formula's extreme-value
approximation turns negative (N = 1.1 would give SR₀ < 0, a DSR above the PSR), so SR₀ is
floored at 0: the DSR never exceeds the PSR.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..errors import ValidationError
from .returns import EULER_GAMMA, check_variance, norm_ppf, probabilistic_sharpe_ratio

__all__ = [
    "deflated_sharpe_ratio_effective",
    "effective_trials",
    "effective_trials_from_correlation",
    "expected_max_sharpe_effective",
]


def _matrix(returns: Any) -> np.ndarray:
    if isinstance(returns, str | bytes) or returns is None:
        raise ValidationError.of("returns", f"returns must be a T × N matrix of numbers, got "
                                            f"{type(returns).__name__}")
    try:
        x = np.asarray(returns, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValidationError.of("returns", f"returns must be a T × N matrix of numbers: {exc}") from None
    if x.ndim != 2 or x.shape[1] < 1 or x.shape[0] < 3:
        raise ValidationError.of(
            "returns", f"returns must be a T × N matrix (periods × trials) with T >= 3, got shape {x.shape}"
        )
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        i, j = map(int, bad[0])
        raise ValidationError.of("returns", f"returns[{i}, {j}]={x[i, j]!r} is not a finite number; "
                                            "align the trials on their common periods first")
    return x


def effective_trials(returns: Any) -> float:
    """The effective number of independent trials of a T × N returns matrix (array or
    DataFrame, T >= 3, finite, one column per trial, aligned on common periods): Li & Ji's
    count over the eigenvalues of its correlation matrix (module docstring). A column with
    constant returns has no correlation: a ValidationError naming ``returns``, as for NaN/inf
    or a bad shape."""
    x = _matrix(returns)
    t = x.shape[0]
    dev = x - x.mean(axis=0)
    norms = np.sqrt((dev * dev).sum(axis=0))
    flat = np.flatnonzero(norms <= 1e-12 * np.maximum(np.abs(x).max(axis=0), 1e-300))
    if flat.size:
        j = int(flat[0])
        raise ValidationError.of("returns", f"returns[:, {j}] is constant: a trial without variance "
                                            "has no correlation with the others")
    z = dev / norms
    return effective_trials_from_correlation(np.clip(z.T @ z, -1.0, 1.0), n_periods=t)


def effective_trials_from_correlation(correlation: Any, n_periods: int | None = None) -> float:
    """Li & Ji's M_eff = Σ f(|λ|), f(x) = I(x ≥ 1) + (x − ⌊x⌋), over the eigenvalues λ of an
    N × N correlation matrix, clipped to [1, N] (module docstring: why this estimator).
    ``n_periods`` (T >= 3) is checked but not needed (module docstring). A ValidationError
    names ``correlation`` (not square, not finite, entries outside [−1, 1], a diagonal other
    than 1, not symmetric) or ``n_periods``."""
    try:
        r = np.asarray(correlation, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValidationError.of("correlation", f"correlation must be a square matrix: {exc}") from None
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] < 1:
        raise ValidationError.of("correlation",
                                 f"correlation must be a square N × N matrix, got shape {r.shape}")
    if not np.isfinite(r).all() or (np.abs(r) > 1.0 + 1e-12).any():
        raise ValidationError.of("correlation", "correlation must hold finite values between -1 and 1")
    if not np.allclose(np.diag(r), 1.0, atol=1e-9) or not np.allclose(r, r.T, atol=1e-12):
        raise ValidationError.of("correlation", "correlation must be symmetric with 1 on the diagonal")
    if n_periods is not None and (
        isinstance(n_periods, bool) or not isinstance(n_periods, numbers.Integral) or n_periods < 3
    ):
        raise ValidationError.of("n_periods", f"n_periods={n_periods!r} must be an integer >= 3")
    n = r.shape[0]
    lam = np.abs(np.linalg.eigvalsh((r + r.T) / 2.0))
    # Rounding leaves an eigenvalue meant to be a whole number (N for identical trials, 1
    # for independent ones) a few ulps below it, where f would count it as almost 2 (or 0):
    # snap values within 1e-9·N of a whole number onto it.
    whole = np.round(lam)
    lam = np.where(np.abs(lam - whole) <= 1e-9 * n, whole, lam)
    m_eff = float(np.sum((lam >= 1.0) + (lam - np.floor(lam))))
    return float(min(max(m_eff, 1.0), n))


def _n_effective(n_effective: Any) -> float:
    if (
        isinstance(n_effective, bool)
        or not isinstance(n_effective, numbers.Real)
        or not math.isfinite(n_effective)
        or n_effective < 1
    ):
        raise ValidationError.of(
            "n_effective", f"n_effective={n_effective!r} must be a finite number >= 1 (the effective "
                           "number of independent trials)"
        )
    return float(n_effective)


def expected_max_sharpe_effective(n_effective: float, variance: float) -> float:
    """SR₀ of the DSR for a real-valued number of trials:
    max(0, √V·((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))), 0 for N = 1 (module docstring:
    why the floor). Equal to :func:`perfledger.returns.expected_max_sharpe` for integer
    N >= 2. A ValidationError names ``n_effective`` < 1 (or not finite) or a bad ``variance``."""
    n = _n_effective(n_effective)
    variance = check_variance(variance)
    if n == 1.0 or variance == 0:
        return 0.0
    value = math.sqrt(variance) * (
        (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n) + EULER_GAMMA * norm_ppf(1.0 - 1.0 / (n * math.e))
    )
    return max(value, 0.0)


def deflated_sharpe_ratio_effective(
    sr: float, n_periods: float, n_effective: float, variance: float, skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """The DSR of a per-period ``sr`` over ``n_periods`` with ``n_effective`` independent
    trials (e.g. :func:`effective_trials` of the sweep's returns) whose per-period Sharpes
    have variance ``variance``; ``kurtosis`` non-excess, as the PSR. NaN when the PSR is."""
    return probabilistic_sharpe_ratio(
        sr, n_periods, skew, kurtosis, sr_benchmark=expected_max_sharpe_effective(n_effective, variance)
    )
