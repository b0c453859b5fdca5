"""The "Decaying" panel: which models the decay test flags, shown on the Performance tab (the
selected ticker) and the Quick Analytics tab (every ticker)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from .display import formatted, header_width
from .formatting import md
from .insights import decay_badges, decay_explainer, decay_view, decaying


def render_decay_panel(
    table: pd.DataFrame,
    *,
    metric: str,
    recent: int,
    alpha: float,
    higher: bool | None,
    with_ticker: bool,
    key: str,
) -> None:
    """A "⚠️ Decaying" badge naming the flagged models (change and p-value), or a quiet line
    saying none is; the full table of tested models in an expander; what was tested."""
    if higher is None:
        st.caption(f"Decay test: {md(metric)} has no direction yet, so nothing can be called worse.")
        return
    flagged = decaying(table)
    if len(flagged):
        st.warning(f"⚠️ **Decaying** ({len(flagged)} of {len(table)}): "
                   + decay_badges(table, with_ticker=with_ticker))
    elif len(table):
        st.success(f"✓ No model is decaying: none of the {len(table)} tested has latest evaluations "
                   f"significantly worse than before (α = {alpha:g}).")
    else:
        st.info(f"No model has the {recent + 10} evaluations the decay test needs in this window "
                f"(its latest {recent} and 10 before them): widen **Days back** or the date range, "
                "or lower **latest N** in the sidebar.")
    if len(table):
        with st.expander(f"Decay test details ({len(table)} model{'s' if len(table) != 1 else ''} tested)",
                         expanded=bool(len(flagged)) and with_ticker):
            view, m = decay_view(table, with_ticker=with_ticker)
            view, config = formatted(view, {"Before (mean)": m, "Latest (mean)": m, "Change": m})
            config["p-value"] = st.column_config.NumberColumn("p-value", format="%.2g",
                                                              width=header_width("p-value"))
            st.dataframe(view, hide_index=True, width="stretch", column_config=config, key=key)
    st.caption(decay_explainer(metric, recent, alpha, len(table), higher))
