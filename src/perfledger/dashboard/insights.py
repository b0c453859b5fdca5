"""Pure helpers for the dashboard's monitoring views: the best models within the filters,
how much to trust the best Sharpe (PSR/DSR, in plain words), and which models are decaying.

Inputs are already small (a leaderboard has a row per ticker and model, a decay table a row
per pair, ``sharpe_confidence`` a row per model); no Streamlit here, so they are unit-tested
directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .formatting import format_value, md, metric_label, order_metrics

#: The DSR below which the best model's Sharpe is called possibly luck (the 95 % level the
#: Deflated Sharpe Ratio paper uses).
DSR_CONFIDENT = 0.95
#: Choices of the decay test's "latest N evaluations".
DECAY_WINDOWS = (5, 10, 20, 30, 50, 100)
#: Choices of its significance level.
DECAY_ALPHAS = (0.001, 0.01, 0.05)


def board_metrics(board: pd.DataFrame) -> list[str]:
    """Every metric a leaderboard has statistics for (custom ones without a direction too)."""
    return order_metrics(c.removesuffix("_count") for c in board.columns if c.endswith("_count"))


def best_from_board(board: pd.DataFrame, directions: Mapping[str, bool]) -> dict[str, dict[str, Any]]:
    """``Ledger.best()``'s shape (``{ticker: {"best_<m>": {"model", "value", "timestamp"}}}``)
    for the records a filtered leaderboard aggregated: per ticker and metric with a direction,
    the model whose best value (max, or min when lower is better) is best. ``timestamp`` is
    None: a leaderboard keeps no dates."""
    out: dict[str, dict[str, Any]] = {}
    metrics = [m for m in board_metrics(board) if m in directions]
    for ticker, rows in board.groupby("ticker", sort=True):
        entry: dict[str, Any] = {}
        for m in metrics:
            higher = directions[m]
            col = f"{m}_max" if higher else f"{m}_min"
            values = rows[col].dropna()
            if values.empty:
                entry[f"best_{m}"] = {"model": None, "value": None, "timestamp": None}
                continue
            pick = values.idxmax() if higher else values.idxmin()
            entry[f"best_{m}"] = {
                "model": rows.at[pick, "model_name"], "value": float(values[pick]), "timestamp": None,
            }
        out[str(ticker)] = entry
    return out


def with_confidence(view: pd.DataFrame, conf: pd.DataFrame) -> pd.DataFrame:
    """A leaderboard view (``Model`` column) with each model's best Sharpe, PSR and DSR from
    ``sharpe_confidence``, right after the ranking metric's columns; only when some model has
    a PSR."""
    if conf.empty or conf["psr"].notna().sum() == 0 or "Model" not in view.columns:
        return view
    names = {"model_name": "Model", "sharpe": "Best Sharpe", "psr": "PSR", "dsr": "DSR",
             "min_trl_years": "MinTRL (years)", "n_effective": "Effective trials"}
    extra = conf[[c for c in names if c in conf.columns]].rename(columns=names)
    if "Effective trials" in extra.columns and extra["Effective trials"].isna().all():
        extra = extra.drop(columns="Effective trials")  # no kept returns: nothing to show
    out = view.merge(extra, on="Model", how="left")
    cols = list(view.columns)
    at = next((i + 1 for i, c in enumerate(cols) if c.endswith("(latest)")), len(cols))
    return out[[*cols[:at], *[c for c in extra.columns if c != "Model"], *cols[at:]]]


def confidence_note(conf: pd.DataFrame, ticker: str) -> tuple[str, str]:
    """``(kind, text)``: a plain-words verdict on the best Sharpe of ``ticker``. ``kind`` is
    ``"warning"`` when the best model's DSR is below :data:`DSR_CONFIDENT` (it could be luck
    among the models tried), ``"success"`` when above, ``"info"`` when no backtest says."""
    if conf.empty or conf["psr"].notna().sum() == 0:
        return ("info", f"PSR and DSR need backtests (`Ledger.log_backtest`, which stores the number "
                        f"of periods); none of the models on {md(ticker)} has one yet.")
    n = int(conf["n_trials"].iloc[0])
    top = conf.iloc[0]  # sharpe_confidence sorts by Sharpe, best first
    sharpe, dsr, psr = float(top["sharpe"]), float(top["dsr"]), float(top["psr"])
    best = format_value("sharpe", sharpe)
    if math.isnan(dsr):
        reason = str(top.get("dsr_reason") or "no backtest record (number of periods) to judge it by")
        return ("info", f"{md(top['model_name'])} has the best Sharpe ({best}) but no Deflated "
                        f"Sharpe Ratio: {md(reason)}.")
    # A trial is every logged evaluation with a Sharpe on the ticker (a sweep of 30 runs of one
    # model is 30 trials), so the note says evaluations, not models.
    trials = f"{n} trial{'s' if n != 1 else ''} (evaluations with a Sharpe) on {md(ticker)}"
    if dsr < DSR_CONFIDENT:
        return ("warning", f"**{md(top['model_name'])}'s best Sharpe ({best}) could be luck among "
                           f"{n} trials.** Its Deflated Sharpe Ratio is {dsr:.2f}: the chance its true "
                           f"Sharpe beats what the luckiest of {trials} would show with no skill at all "
                           f"(PSR, against zero: {psr:.2f}). Below {DSR_CONFIDENT:.2f}, treat the "
                           "ranking with suspicion.")
    return ("success", f"{md(top['model_name'])}'s best Sharpe ({best}) is unlikely to be luck: "
                       f"DSR {dsr:.2f} after accounting for the {trials}.")


def default_decay_window(longest: int) -> int:
    """The decay test's default "latest N": 20 when some model has the 30 evaluations that
    needs, else the largest choice a model can still be tested with (N + 10 evaluations)."""
    if longest >= 30:
        return 20
    fits = [w for w in DECAY_WINDOWS if w + 10 <= longest]
    return fits[-1] if fits else DECAY_WINDOWS[0]


def decaying(table: pd.DataFrame) -> pd.DataFrame:
    """The decayed rows of a decay table."""
    return table[table["decayed"]] if not table.empty else table


def decay_view(table: pd.DataFrame, *, with_ticker: bool) -> tuple[pd.DataFrame, str]:
    """A decay table as people read it, and the metric it tests (for number formats)."""
    metric = str(table["metric"].iloc[0]) if not table.empty else "sharpe"
    cols = {"ticker": "Ticker", "model_name": "Model", "baseline_mean": "Before (mean)",
            "recent_mean": "Latest (mean)", "change": "Change", "p_value": "p-value",
            "decayed": "Decaying"}
    if not with_ticker:
        cols.pop("ticker")
    out = table[list(cols)].rename(columns=cols).reset_index(drop=True)
    out.insert(len(out.columns) - 2, "Evaluations", [
        f"{r} vs {b}" for r, b in zip(table["recent_n"], table["baseline_n"], strict=True)
    ])
    return out, metric


def decay_badges(table: pd.DataFrame, *, with_ticker: bool = False, limit: int = 6) -> str:
    """One line naming the decaying models with their change and p-value, e.g.
    ``LSTM_v1 (Sharpe 1.21 → 0.65, p = 0.003)``."""
    rows = decaying(table)
    parts = []
    for r in rows.head(limit).itertuples(index=False):
        who = f"{md(r.ticker)} · {md(r.model_name)}" if with_ticker else md(r.model_name)
        parts.append(f"**{who}** ({metric_label(r.metric)} {format_value(r.metric, r.baseline_mean)} → "
                     f"{format_value(r.metric, r.recent_mean)}, p = {r.p_value:.2g})")
    more = len(rows) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def flagged_models(table: pd.DataFrame) -> frozenset[str]:
    """Model names a decay table flags (for one ticker)."""
    return frozenset(decaying(table)["model_name"]) if not table.empty else frozenset()


def decay_explainer(metric: str, recent: int, alpha: float, pairs: int, higher: bool | None) -> str:
    """The caption under a decay view: what was tested, in one sentence."""
    worse = "lower" if higher else "higher"
    return (f"Decay test: each model's latest {recent} {metric_label(metric)} values against up to 100 "
            f"before them (one-sided Mann–Whitney U, flagged when p < {alpha:g}; {worse} is worse). "
            f"{pairs} model{'s' if pairs != 1 else ''} had the {recent + 10} evaluations it needs. "
            "Date filters apply; metric thresholds do not (they would hide the drop it looks for).")


def windows_up_to(stops: tuple[int, ...], longest: int) -> tuple[int, ...]:
    """A rolling-window slider's stops bounded by the data: none longer than the most
    evaluations any model has (a window of 1,000 over 20 evaluations is their plain mean),
    and always two at least, so the slider can move."""
    kept = tuple(w for w in stops if w <= longest)
    return kept if len(kept) >= 2 else stops[:2]
