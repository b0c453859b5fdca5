"""Tab 4, 📉 Backtests: what the kept return series show (issue 22).

For the sidebar's ticker, models and every filter: the equity curve (cumulative return) and
the underwater (drawdown) curve of each selected model's latest backtest that kept its
returns; the "Overfitting" panel (the Probability of Backtest Overfitting by CSCV over the
filtered evaluations, the histogram of its logits, the in-sample vs out-of-sample scatter
of each split's winner); MinTRL and the effective number of trials beside PSR/DSR. Every
number comes from the :class:`~perfledger.Ledger` (through :mod:`.data`); with no kept
series, one line says how to get them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ..stats.equity import drawdown_curve, equity_curve
from . import charts, data
from .formatting import md, md_code

#: At most this many models' curves on one chart (the latest backtest of each).
MAX_CURVES = 12
PARTITIONS = (16, 12, 10, 8, 6, 4)
NO_RETURNS = (
    "No backtest here kept its return series. Log backtests with "
    "`led.log_backtest(model, ticker, returns=series)` (a pandas Series with dates, or a list): "
    "the series is kept and its equity curve, drawdown and overfitting statistics appear here."
)


def latest_per_model(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Each model's latest kept series (columns are oldest first), at most :data:`MAX_CURVES`."""
    models: dict[int, str] = frame.attrs.get("model_name", {})
    latest: dict[str, Any] = {}
    for rid in frame.columns:
        latest[models[rid]] = rid
    return {m: frame[rid].dropna() for m, rid in list(latest.items())[-MAX_CURVES:]}


def render_backtests(location: str, state: str, filters: data.Filters) -> None:
    """Tab 4 (module docstring)."""
    frame = data.backtest_returns(location, state, filters)
    st.caption(f"{md(filters.ticker)} · {md(filters.describe())}")
    if isinstance(frame, str):  # series the ledger cannot match: its reason, not a wrong chart
        st.warning(md(frame))
        return
    if frame.shape[1] == 0:
        st.info(NO_RETURNS)
        return
    curves = latest_per_model(frame)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.curves_figure({m: equity_curve(r) for m, r in curves.items()},
                                             title="Equity curve (latest backtest per model)", kind="equity"),
                        key="equity_chart", width="stretch")
    with right:
        st.plotly_chart(charts.curves_figure({m: drawdown_curve(r) for m, r in curves.items()},
                                             title="Underwater: drawdown from the peak", kind="drawdown"),
                        key="underwater_chart", width="stretch")
    render_overfitting(location, state, filters, frame.shape[1])
    render_track_records(location, state, filters)


def render_overfitting(location: str, state: str, filters: data.Filters, n_series: int) -> None:
    """The "Overfitting" panel: PBO of the filtered evaluations with kept returns."""
    st.subheader("Overfitting")
    partitions = st.selectbox("Partitions S (blocks of the common periods)", PARTITIONS, index=0,
                              key="pbo_partitions",
                              help="CSCV cuts the periods every series has into S blocks; C(S, S/2) splits.")
    result = data.overfitting(location, state, filters, int(partitions))
    if isinstance(result, str):
        st.info(md(result))
        return
    bounds = [f"{name} ≥ {v:g}" for name, v in filters.window.at_least] + [
        f"{name} ≤ {v:g}" for name, v in filters.window.at_most]
    if bounds:
        # Keeping only a sweep's full-sample winners is the very selection CSCV audits: a
        # look-ahead, as the README says of the decay test and of PSR/DSR.
        st.warning(md(f"The metric threshold ({', '.join(bounds)}) chose these trials by their "
                      "full-sample results: that is the selection the PBO is meant to audit, so this "
                      "PBO is of the survivors only. Clear the threshold to audit the whole sweep."))
    c = st.columns(4)
    c[0].metric("PBO", f"{result.pbo:.1%}", border=True,
                help="Share of splits whose in-sample winner ranks at or below the median out of sample.")
    c[1].metric("P(out-of-sample loss)", f"{result.prob_oos_loss:.1%}", border=True)
    c[2].metric("Degradation slope", f"{result.slope:.2f}", border=True,
                help="OLS slope of the winners' out-of-sample metric on their in-sample metric.")
    c[3].metric("Trials × periods", f"{result.n_trials} × {result.n_periods:,}", border=True)
    if result.pbo >= 0.5:
        st.warning(f"Overfit: in {result.pbo:.0%} of the {result.n_splits:,} splits the in-sample winner "
                   "did no better than the median out of sample.")
    elif result.pbo > 0.1:
        st.warning(f"Some overfitting: PBO {result.pbo:.0%} over {result.n_splits:,} splits.")
    else:
        st.success(f"Not overfit: the in-sample winner stayed above the median out of sample in "
                   f"{1 - result.pbo:.0%} of the {result.n_splits:,} splits.")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.logit_histogram_figure(result.logits), key="pbo_logits", width="stretch")
    with right:
        st.plotly_chart(charts.is_oos_figure(result.is_performance, result.oos_performance, result.slope,
                                             result.intercept, result.metric),
                        key="pbo_scatter", width="stretch")


def render_track_records(location: str, state: str, filters: data.Filters) -> None:
    """MinTRL and the effective number of trials beside PSR/DSR, per model of the ticker."""
    conf = data.sharpe_confidence(location, state, filters.ticker)
    if filters.models:
        conf = conf[conf["model_name"].isin(filters.models)]
    if conf.empty:
        return
    st.subheader("Track record and trials")
    cols = {"model_name": "Model", "sharpe": "Best Sharpe", "psr": "PSR", "dsr": "DSR",
            "n_periods": "Periods", "min_trl_periods": "MinTRL (periods)", "min_trl_years": "MinTRL (years)",
            "n_trials": "Trials", "n_effective": "Effective trials"}
    table = conf[list(cols)].rename(columns=cols)
    st.dataframe(table, hide_index=True, width="stretch", key="track_records")
    st.caption("MinTRL: the track record needed for a PSR of 0.95 (compare with Periods). Effective "
               "trials: the independent trials among the kept series (Li & Ji's count over the "
               "eigenvalues of their correlations), which the DSR deflates by; see "
               f"{md_code('docs/metrics.md')}.")
