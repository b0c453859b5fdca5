"""Plotly figure builders: pure functions from small frames to figures.

A chart never carries more points than a person can see: long series are reduced to
time-bucket means (:func:`downsample`), at most ``MAX_POINTS_PER_TRACE`` per model and
``MAX_POINTS_PER_CHART`` in all, so a 100,000-record ledger renders as fast as a small one.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from .formatting import format_value, metric_label, plotly_tickformat

#: One colour per model, fixed by its position in the sorted model list, so a model keeps its
#: colour across the raw line, its rolling mean and every chart of the page.
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
           "#FF97FF", "#FECB52")
DECAYING = " ⚠ decaying"
#: 4,000 points fill a chart ~1,200 px wide (a bucket per pixel of each of a few lines) and send
#: ~170 KiB of JSON; 12,000 sent ~510 KiB that the browser parsed and drew before the page was
#: usable (issue 23, docs/benchmarks.md).
MAX_POINTS_PER_TRACE = 1_000
MAX_POINTS_PER_CHART = 4_000
#: plotly_white's layout only: its per-trace defaults are most of the template, and copying
#: them into every figure cost ~25 ms a chart (Streamlit's theme restyles traces anyway).
_TEMPLATE = go.layout.Template(layout=pio.templates["plotly_white"].layout)
_LAYOUT = {
    "template": _TEMPLATE,
    "margin": {"l": 10, "r": 10, "t": 48, "b": 10},
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.12, "xanchor": "left", "x": 0},
}


def points_budget(
    n_traces: int, per_trace: int = MAX_POINTS_PER_TRACE, per_chart: int = MAX_POINTS_PER_CHART
) -> int:
    """Points each trace may keep so the whole chart stays within ``per_chart``."""
    if n_traces <= 0:
        return per_trace
    return max(2, min(per_trace, per_chart // n_traces))


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: the mean time and mean value of each of ``max_points``
    equal time buckets (empty buckets dropped). Means keep the trend honest (no cherry-picked
    extremes) and cost one vectorised pass. ``x`` is int64 nanoseconds or floats; NaN values
    are dropped first. Short series come back unchanged."""
    x = np.asarray(x)
    y = np.asarray(y, dtype=float)
    ok = ~np.isnan(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n <= max_points or max_points < 1:
        return x, y
    xf = x.astype(np.float64)
    lo, hi = float(xf.min()), float(xf.max())
    if hi == lo:
        return x[:1], np.array([y.mean()])
    idx = np.minimum(((xf - lo) / (hi - lo) * max_points).astype(np.int64), max_points - 1)
    counts = np.bincount(idx, minlength=max_points)
    keep = counts > 0
    mx = np.bincount(idx, weights=xf, minlength=max_points)[keep] / counts[keep]
    my = np.bincount(idx, weights=y, minlength=max_points)[keep] / counts[keep]
    return mx.astype(x.dtype) if x.dtype.kind in "iu" else mx, my


def envelope(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of the series itself (never averaged): the first point,
    and in each of ``max_points // 3`` equal runs of consecutive points its lowest, highest
    and last point, in order. For equity and underwater curves, whose extremes and end are
    the numbers read off them: the lowest drawn drawdown is the stored ``drawdown``, the last
    drawn equity point the ``total_return`` (bucket means hid a −35 % crash as −5 %). NaN
    values are dropped first; short series come back unchanged."""
    x = np.asarray(x)
    y = np.asarray(y, dtype=float)
    ok = ~np.isnan(y)
    x, y = x[ok], y[ok]
    n = len(x)
    buckets = max(1, (max_points - 1) // 3)
    if n <= max_points or max_points < 4:
        return x, y
    bucket = np.arange(n, dtype=np.int64) * buckets // n
    order = np.lexsort((y, bucket))  # within each bucket, by value
    starts = np.searchsorted(bucket[order], np.arange(buckets))
    ends = np.r_[starts[1:], n] - 1
    last = np.r_[np.flatnonzero(np.diff(bucket)), n - 1]
    keep = np.unique(np.concatenate(([0], order[starts], order[ends], last)))
    return x[keep], y[keep]


def _series(frame: pd.DataFrame, metric: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(model, int64 ns times, values) per model, in model order."""
    if frame.empty or metric not in frame.columns:
        return []
    ts = frame["timestamp"]
    ns = ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)
    vals = frame[metric].to_numpy(dtype=float)
    codes, models = pd.factorize(frame["model_name"], sort=True)
    order = np.argsort(codes, kind="stable")  # each model's rows together, in time order
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(models)))]
    return [
        (str(model), ns[order[bounds[i]:bounds[i + 1]]], vals[order[bounds[i]:bounds[i + 1]]])
        for i, model in enumerate(models)
    ]


def _datetimes(ns: np.ndarray) -> np.ndarray:
    """Nanosecond ints as UTC times at millisecond precision (bucket means have stray
    nanoseconds that Plotly's serializer would warn about; no chart resolves them). A numpy
    ``datetime64[ms]`` array (UTC, the axis says so), not pandas Timestamps: Plotly copies and
    serialises those one object at a time, ~20× slower for a chart of 20,000 points."""
    return (np.asarray(ns, dtype=np.int64) // 1_000_000).astype("datetime64[ms]")


def _epoch_ms(ns: np.ndarray) -> np.ndarray:
    """Nanosecond ints as float milliseconds since the epoch (UTC), for a ``type="date"`` axis.

    Why: Plotly serialises a ``datetime64`` array as one ISO string per point (~27 bytes), but
    a float array as base64 binary (8 bytes, ~11 in base64), and Plotly.js reads numbers on a
    date axis as epoch milliseconds: the same picture and hover text for less than half of the
    figure's JSON (174 KiB → 80 KiB for the first chart at a million records, issue 23)."""
    return np.asarray(ns, dtype=np.int64) / 1_000_000


def _empty_figure(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=plain(title), **_LAYOUT, height=360)
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _rolling(y: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    return pd.Series(y).rolling(window, min_periods=1).mean().to_numpy()


def _name(model: str, flagged: Collection[str]) -> str:
    return plain(model) + DECAYING if model in flagged else plain(model)


def plain(text: str) -> str:
    """Stored text for a Plotly label: Plotly reads ``<b>``-style tags (and ``%{...}`` in hover
    templates) in names and titles, so a name shows as itself only once they are escaped."""
    return html.escape(str(text), quote=False).replace("%", "&#37;")


def time_series_figure(
    frame: pd.DataFrame,
    metric: str,
    *,
    title: str | None = None,
    max_points: int = MAX_POINTS_PER_TRACE,
    rolling: int | None = None,
    flagged: Collection[str] = (),
) -> tuple[go.Figure, bool]:
    """One line per model of ``metric`` over time; returns the figure and whether any trace
    was downsampled (the page says so, so nobody mistakes bucket means for raw points).

    ``rolling``: also draw each model's rolling mean of its last ``rolling`` evaluations (a
    thick line in the model's colour; the raw values fade behind it). ``flagged``: models the
    decay test flags, named "⚠ decaying" in the legend and drawn dashed."""
    label = metric_label(metric)
    title = title or f"{label} over time"
    series = _series(frame, metric)
    if not series:
        return _empty_figure(title, f"No {label} values for these filters"), False
    budget = points_budget(len(series) * (2 if rolling else 1), max_points)
    fmt = plotly_tickformat(metric, np.concatenate([y for _m, _x, y in series]))
    fig = go.Figure()
    reduced = False
    for i, (model, x, y) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        ok = ~np.isnan(y)
        dx, dy = downsample(x, y, budget)
        reduced = reduced or len(dx) < np.count_nonzero(ok)
        name = _name(model, flagged)
        fig.add_trace(
            go.Scatter(
                x=_epoch_ms(dx),
                y=dy,
                name=name,
                legendgroup=model,
                mode="lines+markers" if len(dx) <= 200 else "lines",
                marker={"size": 5, "color": colour},
                line={"color": colour, "dash": "dash" if model in flagged else "solid",
                      "width": 1 if rolling else 2},
                opacity=0.35 if rolling else 1.0,
                hovertemplate=f"<b>{name}</b><br>%{{x|%Y-%m-%d %H:%M}}<br>{label}: "
                f"%{{y:{fmt}}}<extra></extra>",
            )
        )
        if rolling:
            rx, ry = downsample(x[ok], _rolling(y[ok], rolling), budget)
            fig.add_trace(
                go.Scatter(
                    x=_epoch_ms(rx),
                    y=ry,
                    name=f"{name} · rolling mean",
                    legendgroup=model,
                    showlegend=False,
                    mode="lines",
                    line={"color": colour, "width": 3, "dash": "dash" if model in flagged else "solid"},
                    hovertemplate=f"<b>{name}</b><br>%{{x|%Y-%m-%d}}<br>rolling mean of {rolling}: "
                    f"%{{y:{fmt}}}<extra></extra>",
                )
            )
    fig.update_layout(title=plain(title), height=420, **_LAYOUT)
    fig.update_yaxes(title=label, tickformat=fmt)
    fig.update_xaxes(title=None, type="date")  # x: epoch milliseconds (:func:`_epoch_ms`)
    return fig, reduced


def comparison_figure(board: pd.DataFrame, metric: str, higher_is_better: bool) -> go.Figure:
    """Mean ``metric`` per model with ±1 std error bars, best model first, from a leaderboard
    (aggregated by the database)."""
    label = metric_label(metric)
    title = f"Mean {label} per model ({'higher' if higher_is_better else 'lower'} is better)"
    key = f"{metric}_mean"
    if board.empty or key not in board.columns or board[key].notna().sum() == 0:
        return _empty_figure(title, f"No {label} values yet")
    rows = board.dropna(subset=[key]).sort_values(key, ascending=not higher_is_better)
    std = rows[f"{metric}_std"].fillna(0.0) if f"{metric}_std" in rows else None
    fmt = plotly_tickformat(metric, rows[key].to_numpy(dtype=float))
    names = (
        (rows["ticker"] + " · " + rows["model_name"]) if rows["ticker"].nunique() > 1 else rows["model_name"]
    ).map(plain)  # category tick labels (and %{x} in the hover) are Plotly markup too
    fig = go.Figure(
        go.Bar(
            x=names,
            y=rows[key],
            error_y={"type": "data", "array": std, "visible": std is not None},
            marker_color="#4C78A8",
            customdata=np.stack(
                [rows["records"].to_numpy(), (std if std is not None else rows[key] * 0)], axis=1
            ),
            hovertemplate=f"<b>%{{x}}</b><br>mean {label}: %{{y:{fmt}}}"
            f"<br>std: %{{customdata[1]:{fmt}}}"
            "<br>records: %{customdata[0]}<extra></extra>",
        )
    )
    fig.update_layout(title=plain(title), height=380, showlegend=False, **_LAYOUT)
    fig.update_yaxes(title=label, tickformat=fmt)
    # Model names slanted, with room below for them: level ones overlap past a few models.
    fig.update_xaxes(tickangle=-30, automargin=True)
    return fig


#: The smallest spread a heatmap column is coloured over, as a share of its median's size:
#: 54.0% against 56.0% are 2 points on a median of 55%, so they stay near the middle colour
#: instead of being painted worst and best.
RELATIVE_FLOOR = 0.10


def goodness(table: pd.DataFrame, directions: Mapping[str, bool]) -> pd.DataFrame:
    """Each metric column as a colour position in 0..1, diverging around the column's median
    (0.5) in that metric's direction (low MSE scores high): ``0.5 ± 0.5 · (value − median) /
    spread``, the spread being the farthest value's distance from the median, but at least
    :data:`RELATIVE_FLOOR` of the median's size, so small differences look small. A column
    with one distinct value scores 0.5; unknown directions count as higher-is-better;
    missing values stay NaN."""
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        v = table[col].astype(float)
        median = v.median()
        spread = max(float((v - median).abs().max()), RELATIVE_FLOOR * abs(float(median)))
        if pd.isna(median) or spread == 0:
            score = v * 0 + 0.5
        else:
            signed = (v - median) / spread
            score = 0.5 + 0.5 * (signed if directions.get(col, True) else -signed)
        out[col] = score.clip(0.0, 1.0)
    return out


def heatmap_figure(table: pd.DataFrame, directions: Mapping[str, bool], *, title: str) -> go.Figure:
    """Models × metrics heatmap coloured by :func:`goodness` (diverging around each metric's
    median: green better, red worse, by how much relative to the column's spread) with the
    raw values written in the cells."""
    if table.empty:
        return _empty_figure(title, "No metrics to compare yet")
    score = goodness(table, directions)
    text = [[format_value(m, table.at[i, m]) for m in table.columns] for i in table.index]
    labels = [f"{metric_label(m)} {'↑' if directions.get(m, True) else '↓'}" for m in table.columns]
    fig = go.Figure(
        go.Heatmap(
            z=score.to_numpy(),
            x=labels,
            y=[plain(str(i)) for i in table.index],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmin=0,
            zmax=1,
            colorbar={
                "title": {"text": "vs the metric's<br>median"},
                "tickvals": [0, 0.5, 1],
                "ticktext": ["worse", "median", "better"],
            },
            hovertemplate="<b>%{y}</b><br>%{x}: %{text}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(title=plain(title), height=max(260, 60 + 44 * len(table)), **{**_LAYOUT, "legend": {}})
    fig.update_yaxes(autorange="reversed")
    return fig


def trend_figure(
    frame: pd.DataFrame,
    metric: str,
    window: int,
    max_points: int = MAX_POINTS_PER_TRACE,
    flagged: Collection[str] = (),
) -> go.Figure:
    """Rolling mean of ``metric`` over each model's last ``window`` evaluations: the trend
    without the evaluation-to-evaluation noise (a decaying model shows as a falling line;
    ``flagged`` ones, from the decay test, are named and dashed)."""
    label = metric_label(metric)
    title = f"{label}: rolling mean of the last {window} evaluations"
    series = _series(frame, metric)
    if not series:
        return _empty_figure(title, f"No {label} values for these filters")
    budget = points_budget(len(series), max_points)
    fmt = plotly_tickformat(metric, np.concatenate([y for _m, _x, y in series]))
    fig = go.Figure()
    for i, (model, x, y) in enumerate(series):
        ok = ~np.isnan(y)
        dx, dy = downsample(x[ok], _rolling(y[ok], window), budget)
        name = _name(model, flagged)
        fig.add_trace(
            go.Scatter(
                x=_datetimes(dx),
                y=dy,
                name=name,
                mode="lines",
                line={"width": 2.5, "shape": "spline" if len(dx) <= 300 else "linear",
                      "color": PALETTE[i % len(PALETTE)], "dash": "dash" if model in flagged else "solid"},
                hovertemplate=f"<b>{name}</b><br>%{{x|%Y-%m-%d}}<br>rolling {label}: "
                f"%{{y:{fmt}}}<extra></extra>",
            )
        )
    fig.update_layout(title=plain(title), height=400, **_LAYOUT)
    fig.update_yaxes(title=f"{label} (rolling mean)", tickformat=fmt)
    return fig


def param_comparison_figure(
    frame: pd.DataFrame, name: str, metric: str, higher_is_better: bool,
    max_points: int = MAX_POINTS_PER_CHART,
) -> go.Figure:
    """``metric`` per value of param ``name``: one box per value (median, quartiles, whiskers
    at 1.5 IQR) labelled with its record count, values in their natural order. ``frame`` has
    ``value`` (what to show), ``value_key`` (what makes values equal) and ``metric``. Up to
    ``max_points`` evaluations are also drawn as points; above that the boxes are computed
    here and no point is sent to the browser."""
    from ..records.labels import sort_key

    label = metric_label(metric)
    title = f"{label} per {name} ({'higher' if higher_is_better else 'lower'} is better)"
    if frame.empty or metric not in frame.columns or frame[metric].notna().sum() == 0:
        return _empty_figure(title, f"No {label} values for {name}")
    data = frame.dropna(subset=[metric])
    shown = dict(zip(data["value_key"], data["value"], strict=True))
    order = sorted(shown, key=lambda k: sort_key(shown[k]))
    points = len(data) <= max_points
    fig = go.Figure()
    for key in order:
        y = data.loc[data["value_key"] == key, metric].to_numpy(dtype=float)
        box: dict[str, object] = {"name": f"{plain(str(shown[key]))}<br>n={len(y):,}",
                                  "marker_color": "#4C78A8", "showlegend": False}
        if points:
            fig.add_trace(go.Box(y=y, boxpoints="all", jitter=0.4, pointpos=0, marker={"size": 4},
                                 **box))
        else:
            q1, med, q3 = np.percentile(y, [25, 50, 75])
            iqr = q3 - q1
            lo, hi = y[y >= q1 - 1.5 * iqr].min(), y[y <= q3 + 1.5 * iqr].max()
            fig.add_trace(go.Box(q1=[q1], median=[med], q3=[q3], lowerfence=[lo], upperfence=[hi],
                                 mean=[y.mean()], x=[box["name"]], **box))
    fig.update_layout(title=plain(title), height=380, **_LAYOUT)
    fig.update_yaxes(title=label, tickformat=plotly_tickformat(metric, data[metric].to_numpy(dtype=float)))
    fig.update_xaxes(title=name, type="category")
    return fig


def curves_figure(curves: Mapping[str, pd.Series], *, title: str, kind: str,
                  max_points: int = MAX_POINTS_PER_TRACE) -> go.Figure:
    """One line per backtest (``curves``: label → a curve from :mod:`perfledger.stats.equity`,
    indexed by dates or periods): ``kind`` "equity" (cumulative return) or "drawdown" (the
    underwater curve, filled to 0). A line longer than the chart's point budget keeps each
    run's lowest, highest and last point (:func:`envelope`), never means: the drawn extremes
    and end are the series' own."""
    if not curves:
        return _empty_figure(title, "No kept return series for these filters")
    budget = points_budget(len(curves), max_points)
    fig = go.Figure()
    for i, (name, curve) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        dated = isinstance(curve.index, pd.DatetimeIndex)
        x = (curve.index.as_unit("ns").asi8 if dated else np.asarray(curve.index)).astype(np.int64)
        dx, dy = envelope(x, curve.to_numpy(dtype=float), budget)
        fig.add_trace(go.Scatter(
            x=_datetimes(dx) if dated else dx, y=dy, name=plain(name), mode="lines",
            line={"color": colour, "width": 1.5}, fill="tozeroy" if kind == "drawdown" else None,
            hovertemplate=f"<b>{plain(name)}</b><br>%{{x}}<br>{kind}: %{{y:.2%}}<extra></extra>",
        ))
    fig.update_layout(title=plain(title), height=360, **_LAYOUT)
    fig.update_yaxes(title="cumulative return" if kind == "equity" else "drawdown", tickformat=".0%")
    fig.update_xaxes(title=None)
    return fig


def logit_histogram_figure(logits: np.ndarray) -> go.Figure:
    """The distribution of the CSCV logits λ: mass left of 0 is the PBO."""
    fig = go.Figure(go.Histogram(x=logits, nbinsx=40, marker={"color": PALETTE[0]},
                                 hovertemplate="λ %{x}<br>%{y} splits<extra></extra>"))
    fig.add_vline(x=0, line={"color": PALETTE[1], "dash": "dash"})
    # a short title: the chart is half the page wide (a long one is cut off)
    fig.update_layout(title="PBO logits λ (left of 0: overfit)", height=320, **_LAYOUT)
    fig.update_xaxes(title="λ = logit of the relative rank out of sample")
    fig.update_yaxes(title="splits")
    return fig


def is_oos_figure(is_perf: np.ndarray, oos_perf: np.ndarray, slope: float, intercept: float,
                  metric: str, max_points: int = 2_000) -> go.Figure:
    """Each split's winner: in-sample against out-of-sample metric, with the degradation line
    (fitted on every split). Past ``max_points`` splits every k-th is drawn, and the title
    says how many of how many."""
    step = max(1, int(np.ceil(is_perf.size / max_points)))
    x, y = is_perf[::step], oos_perf[::step]
    # Said under the title, on a line of its own (the chart has half the page: one line
    # would be cut); the line fits every split.
    drawn = f"<br><sup>{x.size:,} of {is_perf.size:,} splits drawn</sup>" if step > 1 else ""
    fig = go.Figure(go.Scattergl(x=x, y=y, mode="markers", marker={"size": 4, "color": PALETTE[0],
                                                                   "opacity": 0.5},
                                 name="splits", hovertemplate="IS %{x:.3f}<br>OOS %{y:.3f}<extra></extra>"))
    if np.isfinite(slope) and x.size:
        lx = np.array([float(is_perf.min()), float(is_perf.max())])
        fig.add_trace(go.Scatter(x=lx, y=intercept + slope * lx, mode="lines", name="degradation line",
                                 line={"color": PALETTE[1], "width": 2}))
    label = metric_label(metric)
    fig.update_layout(title=f"Each split's winner: {label} in vs out of sample{drawn}", height=340,
                      **{**_LAYOUT, "legend": {**_LAYOUT["legend"], "y": -0.22}})  # below the axis title
    if drawn:
        fig.update_layout(margin={**_LAYOUT["margin"], "t": 68})  # room for the title's second line
    fig.update_xaxes(title=f"in-sample {label}")
    fig.update_yaxes(title=f"out-of-sample {label}")
    return fig
