"""The floor of the browser benchmark: the least a Streamlit page can do to show one chart.

One Plotly line chart of ``$FLOOR_POINTS`` points (default 12,000: what the dashboard's first
chart drew at a million records before issue 23) and one selectbox whose change redraws it
with another series, so a widget change costs one script rerun and one Plotly redraw. Nothing
is cached, nothing else is on the page. ``bench/bench_dashboard_browser.py`` serves it with
``streamlit run`` exactly as it serves the dashboard, and ``AppTest`` renders it for the
server-side floor.
"""

import os

import numpy as np
import plotly.graph_objects as go
import streamlit as st

POINTS = int(os.environ.get("FLOOR_POINTS", "12000"))
SERIES = [f"SERIES{i:02d}" for i in range(10)]

st.set_page_config(page_title="Floor", layout="wide")
name = st.selectbox("Ticker", SERIES, key="ticker")
rng = np.random.default_rng(SERIES.index(name))
x = (np.int64(1_700_000_000_000) + np.arange(POINTS, dtype=np.int64) * 60_000).astype("datetime64[ms]")
fig = go.Figure(go.Scatter(x=x, y=np.cumsum(rng.normal(0, 1, POINTS)), mode="lines"))
fig.update_layout(title=f"Value over time · {name}", height=420)
st.plotly_chart(fig, key="floor_chart", width="stretch")
