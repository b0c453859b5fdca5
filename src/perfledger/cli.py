"""The ``perfledger`` command line: the Python API, one command per call.

Each command parses its options, calls the library and formats the answer; no ledger logic
lives here. Library errors (bad input, an unreachable or too-new store) become one line on
stderr, ``Error: ...`` naming the field and value, and exit code 2; a failed ``check``
exits 1; success exits 0. Scripts and cron jobs can rely on those three codes.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from .errors import PerfLedgerError

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from .ledger import Ledger

app = typer.Typer(
    name="perfledger",
    help="A model-performance ledger: log evaluations, query history, find the best model per ticker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2
TABLE, CSV, JSON = "table", "csv", "json"
_MAX_LISTED = 50


# --------------------------------------------------------------------------- plumbing


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(exc).__name__


@contextmanager
def _library_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one clean line and exit code 2."""
    try:
        yield
    except (PerfLedgerError, TypeError, ValueError, OSError) as exc:
        _fail(_one_line(exc))


def _store(ctx: typer.Context) -> str | None:
    return (ctx.obj or {}).get("store")


def _open(ctx: typer.Context) -> Ledger:
    from .ledger import Ledger

    return Ledger(_store(ctx))


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal (pipes, tests) rich would wrap at 80 columns; a wide page keeps rows whole.
    return Console(stderr=stderr, width=None if stream.isatty() else 200, highlight=False)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ", timespec="seconds")
    return str(v)


def _print_frame(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    """A DataFrame as a Rich table, CSV or a JSON array (timestamps ISO 8601 UTC, NaN null)."""
    if fmt == CSV:
        out = frame.copy()
        for c in out.columns:
            if str(out[c].dtype).startswith("datetime64"):
                out[c] = [t.isoformat(timespec="microseconds") for t in out[c]]
        sys.stdout.write(out.to_csv(index=False))
        return
    if fmt == JSON:
        sys.stdout.write(json.dumps(_json_records(frame), indent=2, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in frame.columns:
        table.add_column(str(c), overflow="fold")
    # Probabilities read better as fixed decimals than as 1.265e-05.
    fixed = [str(c) in ("psr", "dsr") for c in frame.columns]
    for row in frame.itertuples(index=False):
        table.add_row(*(
            f"{v:.4f}" if fix and isinstance(v, float) and not math.isnan(v) else _fmt(v)
            for v, fix in zip(row, fixed, strict=True)
        ))
    _console().print(table)


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict("records"):
        clean = {}
        for k, v in rec.items():
            if hasattr(v, "isoformat"):
                v = v.isoformat(timespec="microseconds")
            elif isinstance(v, float) and math.isnan(v):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            clean[str(k)] = v
        out.append(clean)
    return out


def _check_format(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        _fail(f"--format={value!r} is not one of {', '.join(allowed)}")
    return value


def _pairs(items: list[str] | None, option: str) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"{option} {item!r} must be NAME=VALUE")
        out.append((key.strip(), value))
    return out


def _numbers(items: list[str] | None, option: str) -> dict[str, float]:
    out = {}
    for key, value in _pairs(items, option):
        try:
            out[key] = float(value)
        except ValueError:
            _fail(f"{option} {key}={value!r} is not a number")
    return out


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


# --------------------------------------------------------------------------- app


@app.callback()
def _main(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="PERFLEDGER_URL",
            help="Ledger directory or SQLAlchemy URL (default: $PERFLEDGER_URL, else ./memory/logs).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """A model-performance ledger: log evaluations, query history, find the best model per ticker.

    Example: perfledger --store ./memory/logs best AAPL
    """
    ctx.obj = {"store": store}


@app.command()
def log(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="Model name, e.g. LSTM_v1.")],
    ticker: Annotated[str, typer.Option("--ticker", help="Ticker, e.g. AAPL.")],
    sharpe: Annotated[float | None, typer.Option(help="Sharpe ratio (annualised).")] = None,
    mse: Annotated[float | None, typer.Option(help="Mean squared error (>= 0).")] = None,
    drawdown: Annotated[float | None, typer.Option(help="Maximum drawdown (<= 0).")] = None,
    total_return: Annotated[float | None, typer.Option(help="Total return as a fraction.")] = None,
    win_rate: Annotated[float | None, typer.Option(help="Win rate, a fraction in [0, 1].")] = None,
    accuracy: Annotated[float | None, typer.Option(help="Accuracy, a fraction in [0, 1].")] = None,
    notes: Annotated[str, typer.Option(help="Free text.")] = "",
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Custom NAME=X, repeatable.")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Parameter K=V, V parsed as JSON if valid (repeat).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag K=V (repeat).")] = None,
    timestamp: Annotated[
        str | None, typer.Option(help="ISO 8601 time of the evaluation (default now; naive = UTC).")
    ] = None,
) -> None:
    """Record one evaluation.

    Example: perfledger log --model LSTM_v1 --ticker AAPL --sharpe 1.85 --win-rate 0.68 --param epochs=50
    """
    metrics = _numbers(metric, "--metric")
    params = {k: _json_or_str(v) for k, v in _pairs(param, "--param")}
    tags = dict(_pairs(tag, "--tag"))
    with _library_errors():
        rec = _open(ctx).log(
            model, ticker, sharpe=sharpe, mse=mse, drawdown=drawdown, total_return=total_return,
            win_rate=win_rate, accuracy=accuracy, notes=notes, metrics=metrics or None,
            params=params or None, tags=tags or None, timestamp=timestamp,
        )
    typer.echo(f"Logged {rec['model_name']} on {rec['ticker']} at {rec['timestamp']}")


@app.command()
def history(
    ctx: typer.Context,
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    days: Annotated[float | None, typer.Option(help="Only the last N days.")] = None,
    min_: Annotated[list[str] | None, typer.Option("--min", help="Keep NAME >= X, repeatable.")] = None,
    max_: Annotated[list[str] | None, typer.Option("--max", help="Keep NAME <= X, repeatable.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the latest N rows.")] = None,
    format_: Annotated[str, typer.Option("--format", help="table, csv or json.")] = TABLE,
) -> None:
    """Show evaluations, oldest first (timestamps in UTC).

    Example: perfledger history --ticker AAPL --days 30 --min sharpe=1.0 --format csv
    """
    fmt = _check_format(format_, (TABLE, CSV, JSON))
    at_least, at_most = _numbers(min_, "--min"), _numbers(max_, "--max")
    with _library_errors():
        frame = _open(ctx).history(
            ticker=ticker, model_name=model, days_back=days, at_least=at_least or None,
            at_most=at_most or None, limit=limit,
        )
    if fmt == TABLE:
        if frame.empty:
            typer.echo("No records match.")
            return
        keep = [c for c in frame.columns if c in ("timestamp", "ticker", "model_name", "notes")
                or frame[c].notna().any()]
        frame = frame[keep]
    _print_frame(frame, fmt, title="History")


@app.command()
def best(
    ctx: typer.Context,
    ticker: Annotated[str | None, typer.Argument(help="Only this ticker.")] = None,
    format_: Annotated[str, typer.Option("--format", help="table or json (seed shape).")] = TABLE,
) -> None:
    """Show the best model per metric (per ticker).

    Example: perfledger best AAPL --format json
    """
    import pandas as pd

    fmt = _check_format(format_, (TABLE, JSON))
    with _library_errors():
        result = _open(ctx).best(ticker)
    if fmt == JSON:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    per_ticker = {ticker: result} if ticker is not None else result
    rows = [
        {"ticker": t, "metric": key.removeprefix("best_"), "model": e.get("model"), "value": e.get("value"),
         "timestamp": e.get("timestamp")}
        for t, entries in per_ticker.items() for key, e in entries.items() if e.get("model")
    ]
    if not rows:
        typer.echo("No records." if ticker is None else f"No records for {ticker}.")
        return
    _print_frame(pd.DataFrame(rows), TABLE, title="Best models")


@app.command()
def tickers(ctx: typer.Context) -> None:
    """List tickers with records, one per line.

    Example: perfledger tickers
    """
    with _library_errors():
        names = _open(ctx).tickers()
    for name in names:
        typer.echo(name)


@app.command()
def models(
    ctx: typer.Context, ticker: Annotated[str | None, typer.Option(help="Only models of this ticker.")] = None
) -> None:
    """List model names with records, one per line.

    Example: perfledger models --ticker AAPL
    """
    with _library_errors():
        names = _open(ctx).models(ticker)
    for name in names:
        typer.echo(name)


@app.command()
def leaderboard(
    ctx: typer.Context,
    ticker: Annotated[str | None, typer.Option(help="One ticker; adds PSR and DSR.")] = None,
    metric: Annotated[str, typer.Option(help="Rank by this metric's mean.")] = "sharpe",
    days: Annotated[float | None, typer.Option(help="Only the last N days.")] = None,
    format_: Annotated[str, typer.Option("--format", help="table, csv or json.")] = TABLE,
) -> None:
    """Rank models per ticker by a metric's mean (with --ticker: PSR and DSR too).

    With --ticker each model also gets its best Sharpe, Probabilistic Sharpe Ratio and Deflated Sharpe Ratio.

    Example: perfledger leaderboard --ticker AAPL --metric sharpe --days 90
    """
    fmt = _check_format(format_, (TABLE, CSV, JSON))
    with _library_errors():
        led = _open(ctx)
        board = led.leaderboard(ticker, metric=metric, days_back=days)
        conf = led.sharpe_confidence(ticker) if ticker is not None else None
    if conf is not None and not board.empty:
        extra = conf[["model_name", "sharpe", "psr", "dsr"]].rename(columns={"sharpe": "best_sharpe"})
        board = board.merge(extra, on="model_name", how="left")
    if fmt != TABLE:
        _print_frame(board, fmt)
        return
    if board.empty:
        typer.echo("No records.")
        return
    cols = ["rank"] + (["ticker"] if ticker is None else []) + ["model_name", "records"]
    cols += [c for c in (f"{metric}_mean", f"{metric}_std", f"{metric}_latest") if c in board.columns]
    if conf is not None:
        cols += [c for c in ("best_sharpe", "psr", "dsr") if c in board.columns]
    _print_frame(board[cols], TABLE, title=f"Leaderboard by {metric}")
    if conf is not None and len(conf):
        typer.echo(
            f"PSR: probability the true Sharpe > 0; DSR: the same against the best Sharpe expected "
            f"by luck from {len(conf)} model(s) tried on {ticker}."
        )


@app.command("import")
def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files: .json .csv .parquet .jsonl")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good rows of a file with bad ones.")
    ] = False,
) -> None:
    """Import records; importing the same records again adds nothing.

    A file with any bad row imports nothing (exit 2) unless --skip-invalid.

    Naive timestamps (the seed's files) are read as UTC.

    Example: perfledger import memory/logs/model_performance.json old/model_performance.csv
    """
    from .importer import import_file

    blocked = False
    with _library_errors():
        led = _open(ctx)
        for path in paths:
            with _progress(path) as progress:
                report = import_file(led, path, skip_invalid=skip_invalid, progress=progress)
            typer.echo(report.summary())
            for i, r in enumerate(report.rejected):
                if i == _MAX_LISTED:
                    typer.echo(f"  ... and {len(report.rejected) - _MAX_LISTED} more problem(s)")
                    break
                typer.echo(f"  {r.where}: {r.message}")
            blocked |= not report.stored
    if blocked:
        raise typer.Exit(EXIT_USAGE)


@contextmanager
def _progress(path: Path) -> Iterator[Any]:
    """A Rich progress display on stderr for large files on a terminal; else nothing."""
    try:
        large = path.stat().st_size > 2_000_000
    except OSError:
        large = False
    if not (large and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    stages = ("reading", "checking", "comparing", "storing")
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
        console=_console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(f"{path.name}: reading", total=len(stages))

        def update(stage: str, done: int, _total: int) -> None:
            label = f"{path.name}: {stage}" + (f" ({done:,} rows)" if done else "")
            step = stages.index(stage) if stage in stages else 0
            bar.update(task, description=label, completed=step)

        yield update


@app.command()
def export(
    ctx: typer.Context,
    format_: Annotated[str | None, typer.Option("--format", help="csv, json or parquet.")] = None,
    output: Annotated[Path | None, typer.Option(help="File to write.")] = None,
    seed_files: Annotated[
        Path | None, typer.Option("--seed-files", help="Write the seed's three files into this directory.")
    ] = None,
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    days: Annotated[float | None, typer.Option(help="Only the last N days.")] = None,
) -> None:
    """Export records (with custom metrics, params, tags); re-importing an export adds nothing.

    Example: perfledger export --format parquet --output aapl.parquet --ticker AAPL
    """
    from .exporter import EXPORT_FORMATS, export_records

    if seed_files is not None:
        if output is not None or format_ is not None or ticker or model or days is not None:
            _fail("--seed-files writes all records; it takes no --format/--output/filters")
        with _library_errors():
            target = _open(ctx).export_seed_files(seed_files)
        typer.echo(f"Wrote model_performance.json, model_performance.csv, best_models.json to {target}")
        return
    if output is None:
        _fail("give --output PATH (with --format csv|json|parquet) or --seed-files DIR")
    fmt = format_ or output.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        _fail(f"--format={fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    with _library_errors():
        n = export_records(_open(ctx), fmt, output, ticker=ticker, model_name=model, days_back=days)
    typer.echo(f"Exported {n} record(s) to {output}")


@app.command()
def check(
    ctx: typer.Context,
    ticker: Annotated[str, typer.Option(help="Ticker.")],
    model: Annotated[str, typer.Option("--model", help="Model name.")],
    metric: Annotated[str, typer.Option(help="Metric to check, seed or custom.")],
    min_: Annotated[float | None, typer.Option("--min", help="Pass when the latest value >= X.")] = None,
    max_: Annotated[float | None, typer.Option("--max", help="Pass when the latest value <= X.")] = None,
    days: Annotated[float | None, typer.Option(help="Only look at the last N days.")] = None,
) -> None:
    """Check a model's latest metric value against a bound (exit 0 pass, 1 fail, 2 bad usage).

    Fails (exit 1) too when there is no value in the window. For cron jobs and CI.

    Example: perfledger check --ticker AAPL --model LSTM_v1 --metric sharpe --min 1.0 --days 30
    """
    from .record import CORE_METRICS
    from .validation import check_metric_name

    if min_ is None and max_ is None:
        _fail("check needs --min X or --max X (or both, for a range)")
    with _library_errors():
        if metric not in CORE_METRICS:
            check_metric_name(metric, "metric")
        frame = _open(ctx).history(ticker=ticker, model_name=model, days_back=days)
    window = f" in the last {days:g} days" if days is not None else ""
    values = frame[metric].dropna() if metric in frame.columns else frame.iloc[0:0, 0:0]
    if len(values) == 0:
        typer.echo(f"FAIL: no {metric} for {model} on {ticker}{window}", err=True)
        raise typer.Exit(EXIT_CHECK_FAILED)
    latest = float(values.iloc[-1])
    when = frame.loc[values.index[-1], "timestamp"].isoformat()
    parts = [f">= {min_:g}"] if min_ is not None else []
    parts += [f"<= {max_:g}"] if max_ is not None else []
    bounds = " and ".join(parts)
    ok = (min_ is None or latest >= min_) and (max_ is None or latest <= max_)
    line = f"{model} on {ticker}: latest {metric}={latest:g} (at {when}); required {bounds}"
    if ok:
        typer.echo(f"OK: {line}")
        return
    typer.echo(f"FAIL: {line}", err=True)
    raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def dashboard(
    ctx: typer.Context,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port (default: Streamlit's choice).")] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Add sample data to an empty ledger directory.")
    ] = False,
) -> None:
    """Open the Streamlit dashboard on this ledger (sample data only with --sample).

    Example: perfledger --store ./memory/logs dashboard --port 8501 --sample
    """
    try:
        from .dashboard.launch import launch
    except ImportError as exc:
        _fail(f"the dashboard is not available ({exc}); install with: pip install 'perfledger[dashboard]'")
    options: dict[str, Any] = {"address": address, "sample": sample}
    if port is not None:
        options["port"] = port
    with _library_errors():
        code = launch(_store(ctx), **options)
    if code:
        raise typer.Exit(code)


@app.command()
def copy(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="Target: an empty ledger directory or database URL.")],
) -> None:
    """Copy every record of the ledger into another, empty store (one transaction).

    Example: perfledger --store ./memory/logs copy --to postgresql+psycopg://me@db-host/ledger
    """
    from .location import resolve

    with _library_errors():
        n = _open(ctx).copy_to(to)
    typer.echo(f"Copied {n} records to {resolve(to).describe()}")


@app.command()
def clear(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete every record.")] = False,
) -> None:
    """Delete every record in the ledger (registered metric directions stay).

    Example: perfledger --store ./scratch clear --yes
    """
    from .location import resolve

    if not yes:
        with _library_errors():
            where = resolve(_store(ctx)).describe()
        _fail(f"clear deletes every record in {where}; pass --yes to confirm")
    with _library_errors():
        led = _open(ctx)
        led.clear()
    typer.echo(f"Cleared {led!r}")


def main() -> None:
    """The ``perfledger`` console script."""
    app(prog_name="perfledger")
