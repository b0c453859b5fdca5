"""The params and tags parts of the page: sidebar filters, and the Performance tab's view
comparing one param's values. Queries go through :mod:`.data` (so through the Ledger and
its caches), figures come from :mod:`.charts`; this module only lays them out."""

from __future__ import annotations

from typing import Any

import streamlit as st

from . import charts, data
from .formatting import md, md_code, metric_label

ANY = "(any)"


def _keep_valid(key: str, options: list[Any], default: Any) -> None:
    if key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = default


def _pick(kind: str, choices: dict[str, list[Any]]) -> tuple[tuple[str, Any], ...]:
    """A key selectbox and, once a key is chosen, a selectbox of its values."""
    names = [ANY, *choices]
    _keep_valid(f"{kind}_name", names, ANY)
    left, right = st.columns(2)
    name = left.selectbox(kind.capitalize(), names, key=f"{kind}_name")
    # Objects cannot be filter values (they are unhashable); every other listed value can.
    values = [v for v in choices.get(name, []) if not isinstance(v, dict)]
    if name == ANY or not values:
        right.selectbox("equals", ["—"], key=f"{kind}_value_none", disabled=True)
        return ()
    vkey = f"{kind}_value::{name}"
    _keep_valid(vkey, values, values[0])
    value = right.selectbox("equals", values, key=vkey, format_func=str)
    return ((name, value),)


def render_filters(
    location: str, state: str, ticker: str
) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str], ...]]:
    """Sidebar: one tag and one param filter (key, then value) from what ``ticker``'s
    records carry; returns them as the ``params``/``tags`` of :class:`.data.Window`."""
    params, tags = data.labels(location, state, ticker)
    chosen = any(st.session_state.get(f"{k}_name", ANY) != ANY for k in ("tag", "param"))
    with st.expander("🔎 Params & tags", expanded=chosen):
        if not params and not tags:
            st.caption(f"No params or tags logged for {md(ticker)}.")
            return (), ()
        tag = _pick("tag", tags)
        param = _pick("param", params)
    return param, tag


def render_comparison(
    location: str, state: str, filters: data.Filters, metric: str, dirs: dict[str, bool]
) -> None:
    """Performance tab: ``metric`` per value of a chosen param (box per value, with counts),
    over the evaluations the filters select. Nothing is drawn when no record has params."""
    params, _ = data.labels(location, state, filters.ticker)
    if not params:
        return
    st.markdown("##### 🔬 Compare a param's values")
    names = list(params)
    default = next((n for n in names if len(params[n]) > 1), names[0])
    _keep_valid("compare_param", names, default)
    if "compare_param" not in st.session_state:
        st.session_state["compare_param"] = default
    col, _ = st.columns([1, 2])
    name = col.selectbox("Param", names, key="compare_param")
    frame = data.param_values(location, state, filters, name)
    st.plotly_chart(
        charts.param_comparison_figure(frame, name, metric, dirs.get(metric, True)),
        key="perf_param_comparison",
        width="stretch",
    )
    st.caption(
        f"{metric_label(metric)} of the {len(frame):,} evaluations that carry {md_code(name)} "
        "(all sidebar filters apply); n = evaluations per value. Rank the values with "
        f"{md_code(f'perfledger leaderboard --by param:{name}')} or "
        f"{md_code(f'Ledger.leaderboard(by={chr(34)}param:{name}{chr(34)})')}."
    )
