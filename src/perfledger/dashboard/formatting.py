"""Pure helpers that turn Ledger results into what a person reads: labels, number formats,
display tables and safe download names. No Streamlit here, so they are unit-tested directly.

Every input is already small (a leaderboard has one row per ticker and model, ``best()`` one
entry per ticker and metric); nothing here scans the history.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from ..records.record import CORE_METRICS

LABELS = {
    "sharpe": "Sharpe",
    "mse": "MSE",
    "drawdown": "Max drawdown",
    "total_return": "Total return",
    "win_rate": "Win rate",
    "accuracy": "Accuracy",
    "psr": "PSR",
}
PERCENT_METRICS = frozenset({"drawdown", "total_return", "win_rate", "accuracy"})
#: Characters Markdown (and Streamlit's extensions: LaTeX between dollars, ``:red[...]``
#: directives, raw HTML) reads as syntax anywhere in a line; CommonMark lets each be
#: backslash-escaped. ``# + - =`` and ``1.`` only matter at the start of a line (_LINE_START).
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]<>|$~&])")
_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+[.)])")


def md(text: object) -> str:
    """Stored text (a model, ticker, note, param or tag) for Markdown, shown literally.

    Names are data: ``_ES_F_`` must not turn italic, ``$x$`` into LaTeX, ``[a](b)`` into a
    link or ``<b>x</b>`` into markup. Every view passes user strings through this (or
    :func:`md_code`) before ``st.markdown``/``caption``/``info``/metric labels."""
    escaped = _MARKDOWN_SYNTAX.sub(r"\\\1", " ".join(str(text).splitlines()))
    return _LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], escaped)


def md_code(text: object) -> str:
    """Stored text as an inline code span: a fence longer than any run of backticks inside."""
    text = " ".join(str(text).splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest or text.startswith(" ") else f"`{text}`"


def metric_label(metric: str) -> str:
    """Human label of a metric ("win_rate" → "Win rate"); custom metrics get title case."""
    return LABELS.get(metric, metric.replace("_", " ").capitalize())


def order_metrics(metrics: Iterable[str]) -> list[str]:
    """Seed metrics in the seed's order, then custom ones alphabetically, so every table and
    chart lists metrics the same way."""
    names = set(metrics)
    return [m for m in CORE_METRICS if m in names] + sorted(names - set(CORE_METRICS))


#: Beyond these magnitudes a value is written in scientific notation (``1e+100``, ``1e-300``):
#: a fixed-point spelling of ``sharpe=1e100`` is 101 digits, of ``1e-300`` a row of zeros.
LARGE, SMALL = 1e6, 1e-4


def _extreme(value: float) -> bool:
    return value != 0 and math.isfinite(value) and not SMALL <= abs(value) < LARGE


def format_value(metric: str, value: Any) -> str:
    """A metric value as people write it: returns and rates in %, Sharpe with 2 decimals,
    MSE with 4; missing values as an em dash; very large or tiny values (beyond
    :data:`LARGE`/:data:`SMALL`, as a percentage for rates) in scientific notation, so every
    card, table and chart of the page stays readable. The one formatting function of the
    page (:func:`plotly_tickformat` is its d3 twin for axes and hovers)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = float(value)
    if metric in PERCENT_METRICS:
        return f"{v * 100:.3g}%" if _extreme(v * 100) else f"{v:.1%}"
    if _extreme(v):
        return f"{v:.3g}"
    if metric == "sharpe":
        return f"{v:.2f}"
    if metric == "mse":
        return f"{v:.4f}"
    return f"{v:.4g}"


def plotly_tickformat(metric: str, values: Any = None) -> str:
    """The d3 format Plotly axes and hovers should use for ``metric``; given the ``values``
    shown, scientific notation when any is very large or tiny (as :func:`format_value`)."""
    if values is not None:
        import numpy as np

        arr = np.asarray(values, dtype=float).ravel()
        if metric in PERCENT_METRICS:
            arr = arr * 100
        size = np.abs(arr[np.isfinite(arr) & (arr != 0)])
        if size.size and (size.max() >= LARGE or size.min() < SMALL):
            return ".3~e"
    if metric in PERCENT_METRICS:
        return ".1%"
    if metric == "mse":
        return ".4f"
    return ".2f" if metric == "sharpe" else ".4g"


def format_date(value: Any) -> str:
    """An ISO timestamp or datetime as "2026-11-27 13:40 UTC" (minutes are enough to find a
    run; seconds and microseconds are noise on a dashboard)."""
    if value is None or value == "":
        return "—"
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")


def time_ago(value: Any, now: datetime | None = None) -> str:
    """How long ago ``value`` (ISO string or datetime) was: "just now", "5 min ago",
    "3 h ago", "2 days ago" — what a glance at "last log" wants to know."""
    if value is None or value == "":
        return "never"
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    ref = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    ref = ref.tz_localize("UTC") if ref.tzinfo is None else ref
    seconds = (ref - ts).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86_400)
    return f"{days} day{'s' if days != 1 else ''} ago"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename_part(text: str, fallback: str = "data", max_len: int = 60) -> str:
    """``text`` reduced to ``[A-Za-z0-9._-]``: tickers such as ``^GSPC``, ``BRK.B`` or a
    hostile ``../../etc`` must never yield a path separator, a ``..`` or a hidden file."""
    s = _UNSAFE.sub("_", text)
    s = re.sub(r"\.{2,}", ".", s)
    s = re.sub(r"_{2,}", "_", s)
    s = s.strip("._-")[:max_len].strip("._-")
    return s or fallback


def download_filename(ticker: str, when: datetime | None = None) -> str:
    """File name of the CSV export for ``ticker``, e.g. ``perfledger_BRK.B_20261127.csv``."""
    stamp = (when or datetime.now()).strftime("%Y%m%d")
    return f"perfledger_{safe_filename_part(ticker)}_{stamp}.csv"


def best_summary(best: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``Ledger.best()`` as two tables: a wide one (ticker × metric → "model · value") to
    scan, and a long one (ticker, metric, model, value, logged) with the details."""
    metrics = order_metrics(k.removeprefix("best_") for entry in best.values() for k in entry)
    wide_rows: list[dict[str, str]] = []
    long_rows: list[dict[str, Any]] = []
    for ticker in sorted(best):
        entry = best[ticker]
        row = {"Ticker": ticker}
        for m in metrics:
            b = entry.get(f"best_{m}")
            if b is None or b.get("model") is None or b.get("value") is None:
                row[metric_label(m)] = "—"  # no model has it (never "None · —")
                continue
            row[metric_label(m)] = f"{b['model']} · {format_value(m, b['value'])}"
            long_rows.append(
                {
                    "Ticker": ticker,
                    "Metric": metric_label(m),
                    "Best model": b["model"],
                    "Value": format_value(m, b["value"]),
                    "Logged": format_date(b.get("timestamp")),
                }
            )
        wide_rows.append(row)
    wide = pd.DataFrame(wide_rows, columns=["Ticker", *(metric_label(m) for m in metrics)])
    long = pd.DataFrame(long_rows, columns=["Ticker", "Metric", "Best model", "Value", "Logged"])
    return wide, long


def leaderboard_view(board: pd.DataFrame, metric: str, metrics: Iterable[str]) -> pd.DataFrame:
    """The columns of ``Ledger.leaderboard`` worth reading: rank, model, records, the ranking
    metric's mean ± std and latest, then the mean of every other metric."""
    cols: dict[str, str] = {"rank": "Rank", "model_name": "Model", "records": "Records"}
    if board["ticker"].nunique() > 1:
        cols = {"rank": "Rank", "ticker": "Ticker", "model_name": "Model", "records": "Records"}
    lab = metric_label(metric)
    cols.update(
        {
            f"{metric}_mean": f"{lab} (mean)",
            f"{metric}_std": f"{lab} (std)",
            f"{metric}_latest": f"{lab} (latest)",
        }
    )
    for m in order_metrics(metrics):
        if m != metric:
            cols[f"{m}_mean"] = f"{metric_label(m)} (mean)"
    present = [c for c in cols if c in board.columns]
    return board[present].rename(columns=cols).reset_index(drop=True)


def top_models(board: pd.DataFrame, metric: str, higher_is_better: bool, n: int = 10) -> pd.DataFrame:
    """The ``n`` best (ticker, model) pairs of a whole-ledger leaderboard by mean ``metric``."""
    key = f"{metric}_mean"
    if board.empty or key not in board.columns:
        return pd.DataFrame(columns=["Ticker", "Model", "Records", f"{metric_label(metric)} (mean)"])
    ranked = board.dropna(subset=[key]).sort_values(key, ascending=not higher_is_better).head(n)
    out = ranked[["ticker", "model_name", "records", key]].rename(
        columns={
            "ticker": "Ticker",
            "model_name": "Model",
            "records": "Records",
            key: f"{metric_label(metric)} (mean)",
        }
    )
    out.insert(0, "#", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def model_metric_means(board: pd.DataFrame, metrics: Iterable[str]) -> pd.DataFrame:
    """Models × metrics table of means from a leaderboard. With several tickers the per-ticker
    means are combined weighted by their counts (exact overall mean), over the leaderboard's
    few rows rather than the history."""
    ms = [m for m in order_metrics(metrics) if f"{m}_mean" in board.columns]
    if board.empty or not ms:
        return pd.DataFrame(columns=ms)
    out: dict[str, pd.Series] = {}
    for m in ms:
        mean, count = board[f"{m}_mean"], board[f"{m}_count"].astype(float)
        weighted = (mean.fillna(0.0) * count).groupby(board["model_name"]).sum()
        total = count.where(mean.notna(), 0.0).groupby(board["model_name"]).sum()
        out[m] = (weighted / total.where(total > 0)).astype(float)
    table = pd.DataFrame(out)
    table.index.name = "model_name"
    return table.sort_index()
