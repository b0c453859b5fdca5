"""Commands that change or move the ledger: log, import, import-mlflow, export, copy, sync, clear,
restore, purge, repair, dashboard."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import PerfLedgerError, partly_stored
from ..records.arguments import AGE_WORDS
from .app import EXIT_USAGE, fail, library_errors, open_ledger, say, store_of
from .options import (
    Days,
    ExportFormat,
    Metrics,
    Model,
    ModelFilter,
    ParamFilter,
    Params,
    TagFilter,
    Tags,
    Ticker,
    TickerFilter,
    json_values,
    label_filters,
    numbers,
    pairs,
    real,
    whole,
)
from .output import console

_MAX_LISTED = 50


def log(
    ctx: typer.Context,
    model: Model,
    ticker: Ticker,
    sharpe: Annotated[float | None, real("--sharpe", "Sharpe ratio (annualised).")] = None,
    mse: Annotated[float | None, real("--mse", "Mean squared error (>= 0).")] = None,
    drawdown: Annotated[float | None, real("--drawdown", "Maximum drawdown (<= 0).")] = None,
    total_return: Annotated[float | None, real("--total-return", "Total return as a fraction.")] = None,
    win_rate: Annotated[float | None, real("--win-rate", "Win rate, a fraction in [0, 1].")] = None,
    accuracy: Annotated[float | None, real("--accuracy", "Accuracy, a fraction in [0, 1].")] = None,
    notes: Annotated[str, typer.Option(help="Free text.")] = "",
    metric: Metrics = None,
    param: Params = None,
    tag: Tags = None,
    timestamp: Annotated[
        str | None, typer.Option(help="ISO 8601 time of the evaluation (default now; naive = UTC).")
    ] = None,
) -> None:
    """Record one evaluation.

    Example: perfledger log --model LSTM_v1 --ticker AAPL --sharpe 1.85 --win-rate 0.68 --param epochs=50
    """
    metrics = numbers(metric, "--metric")
    params = json_values(param, "--param")
    tags = dict(pairs(tag, "--tag"))
    with library_errors():
        rec = open_ledger(ctx).log(
            model, ticker, sharpe=sharpe, mse=mse, drawdown=drawdown, total_return=total_return,
            win_rate=win_rate, accuracy=accuracy, notes=notes, metrics=metrics or None,
            params=params or None, tags=tags or None, timestamp=timestamp,
        )
    say(f"Logged {rec['model_name']} on {rec['ticker']} at {rec['timestamp']}")


def import_(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(metavar="FILE", help="Files: .json .csv .parquet .jsonl")],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good rows of a file with bad ones.")
    ] = False,
) -> None:
    """Import records; importing the same records again adds nothing.

    A file with any bad row imports nothing (exit 2) unless --skip-invalid.

    Naive timestamps (the seed's files) are read as UTC.

    Example: perfledger import memory/logs/model_performance.json old/model_performance.csv
    """
    from ..files.importer import import_file

    blocked = False
    imported = 0  # by the files before: a later file's failure does not undo them
    with library_errors():
        led = open_ledger(ctx)
        for path in paths:
            try:
                with _progress(path) as progress:
                    report = import_file(led, path, skip_invalid=skip_invalid, progress=progress)
            except PerfLedgerError as exc:
                if imported and exc.unstored is not None:
                    raise partly_stored(exc, imported, "import") from exc
                raise
            imported += report.imported
            say(report.summary())
            for i, r in enumerate(report.rejected):
                if i == _MAX_LISTED:
                    say(f"  ... and {len(report.rejected) - _MAX_LISTED} more problem(s)")
                    break
                say(f"  {r.where}: {r.message}")
            blocked |= not report.stored
    if blocked:
        raise typer.Exit(EXIT_USAGE)


def import_mlflow(
    ctx: typer.Context,
    tracking_uri: Annotated[str, typer.Argument(
        metavar="TRACKING_URI",
        help="MLflow's tracking database: sqlite:///mlflow.db, a .db file, or postgresql://user@host/db.")],
    ticker_from: Annotated[str, typer.Option(
        "--ticker-from", metavar="param:NAME|tag:NAME", help="Where each run names its ticker.")
    ] = "param:ticker",
    model_from: Annotated[str, typer.Option(
        "--model-from", metavar="run-name|param:NAME|tag:NAME", help="Where each run names its model.")
    ] = "run-name",
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", metavar="NAME=MLFLOW_NAME",
        help="Store MLflow's metric MLFLOW_NAME as NAME (repeatable), e.g. sharpe=sharpe_ratio.")
    ] = None,
    experiment: Annotated[list[str] | None, typer.Option(
        "--experiment", metavar="NAME", help="Only this experiment's runs (repeatable; default all).")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the good runs when some are refused.")
    ] = False,
) -> None:
    """Import an MLflow tracking store's finished runs (one evaluation each), without MLflow.

    Each run's latest metrics, params and non-system tags are carried; its end time is the
    timestamp. Runs without a ticker or model are listed by run id and skipped. Importing
    again adds nothing. A run the ledger refuses blocks the import (exit 2) unless --skip-invalid.

    Example: perfledger import-mlflow sqlite:///mlflow.db --ticker-from tag:asset --metric sharpe=sharpe_ratio
    """
    mapping: dict[str, str] = {}
    for ours, theirs in pairs(metric, "--metric"):
        if ours in mapping:
            fail(f"--metric {ours}=... is given twice")
        mapping[ours] = theirs
    with library_errors():
        report = open_ledger(ctx).import_mlflow(
            tracking_uri, ticker_from=ticker_from, model_from=model_from, metrics=mapping or None,
            experiments=experiment, skip_invalid=skip_invalid,
        )
    lines = report.lines()
    for i, line in enumerate(lines):
        if i == _MAX_LISTED + 1:
            typer.echo(f"  ... and {len(lines) - i} more line(s)")
            break
        typer.echo(line)
    if not report.stored:
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
        SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), TimeElapsedColumn(),
        console=console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(f"{path.name}: reading", total=len(stages))

        def update(stage: str, done: int, _total: int) -> None:
            label = f"{path.name}: {stage}" + (f" ({done:,} rows)" if done else "")
            step = stages.index(stage) if stage in stages else 0
            bar.update(task, description=label, completed=step)

        yield update


def export(
    ctx: typer.Context,
    format_: Annotated[
        ExportFormat | None, typer.Option("--format", help="File format (default: from the --output suffix).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="File to write.")] = None,
    seed_files: Annotated[
        Path | None, typer.Option("--seed-files", help="Write the seed's three files into this directory.")
    ] = None,
    ticker: TickerFilter = None,
    model: ModelFilter = None,
    days: Days = None,
    param: ParamFilter = None,
    tag: TagFilter = None,
) -> None:
    """Export records (with custom metrics, params, tags); re-importing an export adds nothing.

    Example: perfledger export --format parquet --output aapl.parquet --ticker AAPL --tag run=nightly
    """
    from ..files.exporter import export_records

    params, tags = label_filters(param, tag)
    if seed_files is not None:
        if output is not None or format_ is not None or ticker or model or days is not None or param or tag:
            fail("--seed-files writes all records; it takes no --format/--output/filters")
        with library_errors():
            target = open_ledger(ctx).export_seed_files(seed_files)
        say(f"Wrote model_performance.json, model_performance.csv, best_models.json to {target}")
        return
    if output is None:
        fail("give --output PATH (with --format csv|json|parquet) or --seed-files DIR")
    if format_ is None:
        known = [f.value for f in ExportFormat]
        suffix = output.suffix.lstrip(".").lower()
        if suffix not in known:
            fail(f"cannot tell the format of --output {str(output)!r} from its suffix; "
                 f"give --format {'|'.join(known)}")
        format_ = ExportFormat(suffix)
    with library_errors():
        n = export_records(open_ledger(ctx), format_.value, output, ticker=ticker, model_name=model,
                           days_back=days, params=params, tags=tags)
    say(f"Exported {n} record(s) to {output}")


def copy(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="Target: an empty ledger directory or database URL.")],
) -> None:
    """Copy every record of the ledger into another, empty store (one transaction).

    Example: perfledger --store ./memory/logs copy --to postgresql+psycopg://me@db-host/ledger
    """
    from ..location import resolve

    with library_errors():
        n = open_ledger(ctx).copy_to(to)
    say(f"Copied {n} records to {resolve(to).describe()}")


def sync(
    ctx: typer.Context,
    to: Annotated[
        str | None, typer.Option("--to", metavar="DIR_OR_URL", help="Bring this ledger's records into it.")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", metavar="DIR_OR_URL", help="Bring its records into this ledger.")
    ] = None,
    ticker: Annotated[
        list[str] | None, typer.Option("--ticker", metavar="TICKER", help="Only this ticker (repeatable).")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", metavar="MODEL", help="Only this model (repeatable).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="Only records at or after TIME (ISO 8601; naive: UTC)."),
    ] = None,
) -> None:
    """Sync records between two ledgers (directories or database URLs); again, only what is new.

    Records the other side already has (synced, imported or logged there) are not doubled.

    It keeps a mark, so the next sync reads only new records: cron on many nodes at once is safe.

    Metric directions travel too; a conflicting one is refused and nothing is synced.

    Example: perfledger --store ./memory/logs sync --to postgresql+psycopg://me@db-host/ledger
    """
    from ..ledger import Ledger

    if (to is None) == (from_ is None):
        fail("give exactly one of --to DIR_OR_URL or --from DIR_OR_URL")
    with library_errors():
        here = open_ledger(ctx)
        source, target = (here, to) if to is not None else (Ledger(from_), here)
        try:
            with _sync_progress() as progress:
                result = source.sync(target, ticker=ticker or None, model_name=model or None, since=since,
                                     progress=progress)
        finally:
            if source is not here:
                source.close()
    say(result.summary())


@contextmanager
def _sync_progress() -> Iterator[Any]:
    """A Rich progress bar on stderr for a sync that reads many records, on a terminal only."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console(stderr=True), transient=True,
    ) as bar:
        task = None

        def update(done: int, total: int) -> None:
            nonlocal task
            if task is None and total >= 50_000:
                task = bar.add_task("syncing", total=total)
            if task is not None:
                bar.update(task, completed=done)

        yield update


def clear(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: clear every record.")] = False,
) -> None:
    """Clear every record from the ledger (registered metric directions stay).

    The records are kept until `perfledger purge`: `perfledger restore` brings them back.

    Example: perfledger --store ./scratch clear --yes
    """
    from ..location import resolve

    if not yes:
        with library_errors():
            where = resolve(store_of(ctx)).describe()
        fail(f"clear takes every record out of {where}; pass --yes to confirm")
    with library_errors():
        led = open_ledger(ctx)
        led.clear()
        kept = led.stats()["cleared"]
    say(f"Cleared {led!r}; {kept} cleared record(s) kept: `perfledger restore` brings them "
               "back, `perfledger purge` deletes them for good")


def restore(ctx: typer.Context) -> None:
    """Bring back every cleared record that was not purged (beside any logged since).

    Example: perfledger --store ./memory/logs restore
    """
    with library_errors():
        led = open_ledger(ctx)
        n = led.restore_cleared()
    say(f"Restored {n} record(s) into {led!r}")


def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str | None, typer.Option("--older-than", metavar="AGE",
                                 help=f"Only clears older than AGE (default: all); AGE is {AGE_WORDS}.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete cleared records for good.")] = False,
) -> None:
    """Delete cleared records for good (they can no longer be restored).

    AGE is a whole number and a unit: s, m (minutes, not months), h, d or w (90m, 36h, 30d, 2w).

    Example: perfledger --store ./memory/logs purge --older-than 30d --yes
    """
    from ..records.arguments import check_age

    with library_errors():
        check_age("--older-than", older_than)
    if not yes:
        fail("purge deletes cleared records for good (no restore afterwards); pass --yes to confirm")
    with library_errors():
        led = open_ledger(ctx)
        n = led.purge_cleared(older_than)
    say(f"Purged {n} cleared record(s) from {led!r}")


def repair(ctx: typer.Context) -> None:
    """Make a ledger with a damaged schema whole: recreate missing tables, recompute every
    derived table (best models, summaries, labels) from the records, rewrite the mirrors.

    When the records table itself is gone it says so and changes nothing (restore a backup,
    or import the mirror files into a new ledger).

    Example: perfledger --store ./memory/logs repair
    """
    from ..ledger import Ledger

    with library_errors():
        done = Ledger.repair(store_of(ctx))
    for line in done:
        say(f"Repaired: {line}")


def dashboard(
    ctx: typer.Context,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int | None, whole("--port", "Port (default: Streamlit's choice)", 1, 65535)] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Add sample data to an empty ledger directory.")
    ] = False,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="Offer the page's writes (log, sample data, clear) "
                           "even when served beyond loopback; without it such a page is read-only.")
    ] = False,
) -> None:
    """Open the Streamlit dashboard on this ledger (sample data only with --sample).

    On 127.0.0.1 (the default) the page offers writes; on any other --address it is read-only
    unless --allow-writes.

    Example: perfledger --store ./memory/logs dashboard --port 8501 --sample
    """
    try:
        from ..dashboard.launch import launch
    except ImportError as exc:
        fail(f"the dashboard is not available ({exc}); install with: pip install 'perfledger[dashboard]'")
    options: dict[str, Any] = {"address": address, "sample": sample, "allow_writes": allow_writes}
    if port is not None:
        options["port"] = port
    with library_errors():
        code = launch(store_of(ctx), **options)
    if code:
        raise typer.Exit(code)
