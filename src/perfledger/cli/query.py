"""Commands that read the ledger: history, best, tickers, models, leaderboard, check, decay,
overfit, stats."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from ..records.arguments import MAX_PARTITIONS, MAX_TAIL, MIN_BASELINE, PROBABILITY_WORDS, check_probability
from .app import EXIT_CHECK_FAILED, fail, library_errors, open_ledger, say
from .options import (
    AtLeast,
    AtMost,
    By,
    Days,
    Format,
    Model,
    ModelFilter,
    OutputFormat,
    ParamFilter,
    TagFilter,
    Ticker,
    TickerFilter,
    label_filters,
    numbers,
    real,
    whole,
)
from .output import echo_json, print_frame, print_rows
from .rows import hidden_columns, latest_of, more_rows, print_history, read_history, table_columns


def _probability(option: str, value: str) -> float:
    """``--alpha``: the library's rule for a significance level, named as the option."""
    return check_probability(option, value, text=True)


#: Rows a ``history`` table shows unless --limit/--all: the latest ones.
TABLE_ROWS = 50


def history(
    ctx: typer.Context,
    ticker: TickerFilter = None,
    model: ModelFilter = None,
    days: Days = None,
    min_: AtLeast = None,
    max_: AtMost = None,
    limit: Annotated[
        int | None, whole("--limit", f"Only the latest N rows (a table shows {TABLE_ROWS} unless --all)",
                          1)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="A table shows every matching row.")] = False,
    param: ParamFilter = None,
    tag: TagFilter = None,
    format_: Format = OutputFormat.table,
    columns: Annotated[
        str | None, typer.Option("--columns", metavar="all|NAME,...",
                                 help="A table's custom metric columns: all, or the ones named "
                                      "(default none; csv/json carry every column).")
    ] = None,
) -> None:
    """Show evaluations, oldest first (timestamps in UTC); a table shows the latest 50, csv/json all.

    Example: perfledger history --ticker AAPL --days 30 --min sharpe=1.0 --tag run=nightly --param max_depth=6
    """
    at_least, at_most = numbers(min_, "--min"), numbers(max_, "--max")
    params, tags = label_filters(param, tag)
    if all_ and limit is not None:
        fail(f"give --all or --limit {limit}, not both")
    # A terminal table of 100,000 rows takes half a minute and helps nobody: it shows the
    # latest rows and says how many matched; csv/json (for programs) carry every row.
    shown = TABLE_ROWS if format_ == OutputFormat.table and limit is None and not all_ else limit
    filters = dict(ticker=ticker, model_name=model, days_back=days, at_least=at_least or None,
                   at_most=at_most or None, params=params, tags=tags)
    with library_errors():
        led = open_ledger(ctx)
        plain = read_history(led, filters, shown)  # without pandas when the ledger can
        if plain is None:
            frame = led.history(**filters, limit=shown)
            matched = led.count(**filters) if shown is not None and len(frame) == shown else len(frame)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns is not None else None
    if plain is not None:
        print_history(plain, format_, wanted)
        return
    if format_ != OutputFormat.table:
        print_frame(frame, format_)
        return
    if frame.empty:
        say("No records match.")
        return
    filled = [c for c in frame.columns if frame[c].notna().any()]
    keep, hidden = table_columns(list(frame.columns), filled, wanted)
    print_frame(frame[keep], format_, title="History")
    if matched > len(frame):
        say(more_rows(len(frame), matched))
    if hidden:
        say(hidden_columns(hidden))


def best(
    ctx: typer.Context,
    ticker: TickerFilter = None,
    ticker_arg: Annotated[
        str | None, typer.Argument(metavar="TICKER", hidden=True, help="Same as --ticker (older spelling).")
    ] = None,
    format_: Format = OutputFormat.table,
) -> None:
    """Show the best model per metric (per ticker); --format json prints the seed's best-models shape.

    Example: perfledger best --ticker AAPL --format json
    """
    if ticker_arg is not None:
        if ticker is not None and ticker != ticker_arg:
            fail(f"ticker given twice, {ticker_arg!r} and --ticker {ticker!r}; give it once, with --ticker")
        ticker = ticker_arg
    with library_errors():
        result = open_ledger(ctx).best(ticker)
    if format_ == OutputFormat.json:
        echo_json(result)
        return
    per_ticker = {ticker: result} if ticker is not None else result
    columns = ["ticker", "metric", "model", "value", "timestamp"]
    rows = [
        (t, key.removeprefix("best_"), e.get("model"), e.get("value"), e.get("timestamp"))
        for t, entries in per_ticker.items() for key, e in entries.items() if e.get("model")
    ]
    if not rows and format_ == OutputFormat.table:
        say("No records." if ticker is None else f"No records for {ticker}.")
        return
    print_rows(columns, rows, format_, title="Best models")


def tickers(ctx: typer.Context) -> None:
    """List tickers with records, one per line.

    Example: perfledger tickers
    """
    with library_errors():
        names = open_ledger(ctx).tickers()
    for name in names:
        say(name)


def models(ctx: typer.Context, ticker: TickerFilter = None) -> None:
    """List model names with records, one per line.

    Example: perfledger models --ticker AAPL
    """
    with library_errors():
        names = open_ledger(ctx).models(ticker)
    for name in names:
        say(name)


def leaderboard(
    ctx: typer.Context,
    ticker: TickerFilter = None,
    metric: Annotated[str, typer.Option(help="Rank by this metric's mean.")] = "sharpe",
    days: Days = None,
    param: ParamFilter = None,
    tag: TagFilter = None,
    by: By = "model",
    format_: Format = OutputFormat.table,
    n_trials: Annotated[int | None, whole(
        "--n-trials", help="Trials the DSR deflates by, when more were tried than logged "
        "(default: every logged evaluation with a Sharpe on the ticker; never fewer)", minimum=1)] = None,
) -> None:
    """Rank models (or a param's or tag's values, --by) per ticker by a metric's mean.

    With --ticker each model also gets its best Sharpe, Probabilistic Sharpe Ratio and Deflated Sharpe Ratio
    (over the ticker's whole history, so not with --param/--tag/--by), deflated by every
    evaluation with a Sharpe logged on the ticker, or by --n-trials.

    Example: perfledger leaderboard --ticker AAPL --by param:max_depth --tag run=nightly
    """
    params, tags = label_filters(param, tag)
    plain = by == "model" and params is None and tags is None
    if n_trials is not None and (ticker is None or not plain):
        fail("--n-trials applies to the Deflated Sharpe Ratio, shown with --ticker "
             "(and without --param/--tag/--by)")
    with library_errors():
        led = open_ledger(ctx)
        board = led.leaderboard(ticker, metric=metric, days_back=days, params=params, tags=tags, by=by)
        conf = led.sharpe_confidence(ticker, n_trials=n_trials) if ticker is not None and plain else None
    if conf is not None and not board.empty:
        extra = conf[["model_name", "sharpe", "psr", "dsr", "min_trl_years"]].rename(
            columns={"sharpe": "best_sharpe"})
        board = board.merge(extra, on="model_name", how="left")
    if format_ != OutputFormat.table:
        print_frame(board, format_)
        return
    if board.empty:
        say("No records.")
        return
    group = str(board.columns[2])  # model_name, or the param/tag ranked
    cols = ["rank"] + (["ticker"] if ticker is None else []) + [group, "records"]
    cols += [c for c in (f"{metric}_mean", f"{metric}_std", f"{metric}_latest") if c in board.columns]
    if conf is not None:
        cols += [c for c in ("best_sharpe", "psr", "dsr", "min_trl_years") if c in board.columns]
    per = "" if by == "model" else f" per {group}"
    print_frame(board[cols], format_, title=f"Leaderboard by {metric}{per}")
    if conf is not None and len(conf):
        n_eff = float(conf["n_effective"].iloc[0])
        effective = (f"; they count as {n_eff:.1f} independent trial(s) given their kept returns"
                     if math.isfinite(n_eff) else "")
        say(
            f"PSR: probability the true Sharpe > 0; DSR: the same against the best Sharpe expected "
            f"by luck from {int(conf['n_trials'].iloc[0])} trial(s) on {ticker} (every evaluation "
            f"with a Sharpe, or --n-trials){effective}; min_trl_years: the track record needed for "
            "PSR 0.95."
        )


def check(
    ctx: typer.Context,
    ticker: Ticker,
    model: Model,
    metric: Annotated[str, typer.Option(help="Metric to check, seed or custom.", show_default=False)],
    min_: Annotated[float | None, real("--min", "Pass when the latest value >= X.")] = None,
    max_: Annotated[float | None, real("--max", "Pass when the latest value <= X.")] = None,
    days: Days = None,
) -> None:
    """Check a model's latest metric value against a bound (exit 0 pass, 1 fail, 2 bad usage).

    Fails (exit 1) too when there is no value in the window. For cron jobs and CI.

    Example: perfledger check --ticker AAPL --model LSTM_v1 --metric sharpe --min 1.0 --days 30
    """
    from ..records.record import CORE_METRICS
    from ..records.validation import check_metric_name

    if min_ is None and max_ is None:
        fail("check needs --min X or --max X (or both, for a range)")
    for option, bound in (("--min", min_), ("--max", max_)):
        if bound is not None and bound != bound:  # NaN: no value passes or fails it
            fail(f"{option} {bound!r} is not a number to compare with")
    with library_errors():
        if metric not in CORE_METRICS:
            check_metric_name(metric, "metric")
        led = open_ledger(ctx)
        found = led.latest_value(ticker, model, metric, days)  # without pandas when the ledger can
        if found is None:
            frame = led.history(ticker=ticker, model_name=model, days_back=days)
            values = frame[metric].dropna() if metric in frame.columns else frame.iloc[0:0, 0:0]
            found = [(values.iloc[-1], frame.loc[values.index[-1], "timestamp"])] if len(values) else []
    window = f" in the last {days:g} days" if days is not None else ""
    latest_when = latest_of(found)
    if latest_when is None:
        say(f"FAIL: no {metric} for {model} on {ticker}{window}", err=True)
        raise typer.Exit(EXIT_CHECK_FAILED)
    latest, when = latest_when
    bounds = " and ".join(
        ([f">= {min_:g}"] if min_ is not None else []) + ([f"<= {max_:g}"] if max_ is not None else [])
    )
    ok = (min_ is None or latest >= min_) and (max_ is None or latest <= max_)
    line = f"{model} on {ticker}: latest {metric}={latest:g} (at {when}); required {bounds}"
    if ok:
        say(f"OK: {line}")
        return
    say(f"FAIL: {line}", err=True)
    raise typer.Exit(EXIT_CHECK_FAILED)


def decay(
    ctx: typer.Context,
    ticker: TickerFilter = None,
    model: ModelFilter = None,
    metric: Annotated[
        str, typer.Option(help="Metric to test, seed or custom (with a registered direction).")
    ] = "sharpe",
    recent: Annotated[int, whole("--recent", "How many of the latest evaluations to test", 2, MAX_TAIL)] = 20,
    alpha: Annotated[
        float, real("--alpha", "Significance level: the false-alarm rate per stable pair "
                    f"({PROBABILITY_WORDS}).", check=_probability)
    ] = 0.01,
    baseline: Annotated[
        int, whole("--baseline", "Earlier evaluations they are compared with", MIN_BASELINE, MAX_TAIL,
                   zero="all of them")
    ] = 100,
    days: Days = None,
    format_: Format = OutputFormat.table,
) -> None:
    """Flag models whose latest evaluations are worse than the ones before (exit 1 if any, 0 if none).

    Per (ticker, model) with at least RECENT + 10 evaluations: a one-sided Mann-Whitney U test.

    "Worse" is in the metric's own direction (a rising MSE is worse). Decayed rows first.

    For cron jobs and CI; the test and its false-alarm rate: docs/monitoring.md.

    Example: perfledger decay --ticker AAPL --metric sharpe --recent 20 --alpha 0.01
    """
    with library_errors():
        frame = open_ledger(ctx).decay(
            ticker, model, metric, recent=recent, alpha=alpha, baseline=baseline or None, days_back=days,
        )
    decayed = int(frame["decayed"].sum())
    if format_ != OutputFormat.table:
        print_frame(frame, format_)
    elif frame.empty:
        say(f"No (ticker, model) pair has the {recent + MIN_BASELINE:,} evaluations of {metric} the test "
            f"needs (--recent {recent:,} and {MIN_BASELINE} earlier ones).")
    else:
        cols = ["ticker", "model_name", "recent_n", "baseline_n", "baseline_mean", "recent_mean", "change",
                "p_value", "autocorr"]
        shown = frame[cols].assign(decayed=frame["decayed"].map({True: "DECAYED", False: ""}))
        print_frame(shown, format_, title=f"Decay of {metric}: latest {recent} against the ones before")
        say(f"{decayed} of {len(frame)} pair(s) decayed (one-sided Mann-Whitney U, p < {alpha:g}).")
    if decayed:
        raise typer.Exit(EXIT_CHECK_FAILED)


def stats(ctx: typer.Context, format_: Format = OutputFormat.table) -> None:
    """Show what the ledger holds: records, tickers, models, cleared records kept, the schema
    version, where it is and (for a directory) its files' sizes.

    Example: perfledger --store ./memory/logs stats --format json
    """
    with library_errors():
        info = open_ledger(ctx).info()
    if format_ == OutputFormat.json:
        echo_json(info)
        return
    if format_ == OutputFormat.csv:
        print_rows(["field", "value"], _flat(info), format_)
        return
    if info["schema_version"] is None:
        info["schema_version"] = "none: no ledger here yet (the first write creates it)"
    width = max(len(k) for k, _ in _flat(info))
    for key, value in _flat(info):
        say(f"{key.ljust(width)}  {'' if value is None else value}")  # a path may hold anything


def _flat(info: dict[str, object]) -> list[tuple[str, object]]:
    """``files`` spread out as ``file <name>`` rows (sizes in bytes)."""
    rows: list[tuple[str, object]] = []
    for key, value in info.items():
        if isinstance(value, dict):
            rows.extend((f"file {name}", size) for name, size in value.items())
        else:
            rows.append((_LABELS.get(key, key), value))
    return rows


#: Table labels that say more than the JSON keys.
_LABELS = {"cleared": "cleared (kept, restorable)", "schema_version": "schema version",
           "last_timestamp": "last logged", "total_bytes": "total bytes"}


def overfit(
    ctx: typer.Context,
    ticker: Ticker,
    model: ModelFilter = None,
    param: ParamFilter = None,
    tag: TagFilter = None,
    partitions: Annotated[
        int, whole("--partitions", "Blocks S the common periods are cut into: C(S, S/2) splits", 2,
                   MAX_PARTITIONS, even=True)
    ] = 16,
    days: Days = None,
    format_: Format = OutputFormat.table,
) -> None:
    """Is the sweep overfit? The Probability of Backtest Overfitting (CSCV) over the evaluations
    on a ticker that kept their returns (log_backtest), on the dates they all have.

    PBO: the share of the C(S, S/2) in-sample/out-of-sample splits in which the configuration
    best in sample ranks at or below the median out of sample (formulas: docs/metrics.md).

    Example: perfledger overfit --ticker AAPL --tag run=sweep-3 --partitions 16
    """
    params, tags = label_filters(param, tag)
    with library_errors():
        result = open_ledger(ctx).overfitting(ticker, model_name=model, days_back=days, params=params,
                                              tags=tags, partitions=partitions)
    summary = overfit_summary(result)
    if format_ == OutputFormat.json:
        echo_json(summary)
        return
    rows = pd_frame([(k, v) for k, v in summary.items() if k != "verdict"])
    print_frame(rows, format_, title=f"Probability of Backtest Overfitting on {ticker}")
    if format_ == OutputFormat.table:
        say(str(summary["verdict"]))


def overfit_summary(result: Any) -> dict[str, Any]:
    """The numbers of an :class:`~perfledger.stats.overfitting.Overfitting` people read, and
    a verdict in plain words."""
    pbo = float(result.pbo)
    if pbo >= 0.5:
        verdict = (f"Overfit: in {pbo:.0%} of the splits the in-sample winner did no better than "
                   "the median configuration out of sample; the sweep's best backtest says little "
                   "about how it will do live.")
    elif pbo > 0.1:
        verdict = (f"Some overfitting: in {pbo:.0%} of the splits the in-sample winner fell to or "
                   "below the median out of sample; treat the best configuration's edge with care.")
    else:
        verdict = (f"Not overfit: the in-sample winner stayed above the median out of sample in "
                   f"{1 - pbo:.0%} of the splits.")
    return {
        "pbo": pbo, "trials": int(result.n_trials), "periods": int(result.n_periods),
        "partitions": int(result.partitions), "splits": int(result.n_splits),
        "degradation_slope": float(result.slope), "degradation_intercept": float(result.intercept),
        "degradation_r2": float(result.r_squared), "prob_oos_loss": float(result.prob_oos_loss),
        "metric": str(result.metric), "verdict": verdict,
    }


def pd_frame(pairs: list[tuple[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(pairs, columns=["statistic", "value"]).astype({"value": object})
