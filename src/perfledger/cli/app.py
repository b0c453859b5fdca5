"""The Typer app, the global ``--store`` option and the error plumbing every command shares.

Library errors a user can cause (bad input, an unreadable file, an unreachable or too-new
store) become one line on stderr, ``Error: ...``, and exit code 2 (:func:`library_errors`,
:func:`fail`). Commands open the ledger with :func:`open_ledger`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from typer.core import TyperCommand

from ..errors import PerfLedgerError

if TYPE_CHECKING:
    from ..ledger import Ledger

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="perfledger",
    help="A model-performance ledger: log evaluations, query history, find the best model per ticker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class Command(TyperCommand):
    """A command whose hidden arguments (old spellings kept working) stay out of the usage line too."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not getattr(param, "hidden", False):
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def fail(message: str) -> NoReturn:
    """Print ``Error: message`` on stderr and exit 2."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(exc).__name__


@contextmanager
def library_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one clean line and exit code 2."""
    try:
        yield
    except (PerfLedgerError, TypeError, ValueError, OSError) as exc:
        fail(_one_line(exc))


def store_of(ctx: typer.Context) -> str | None:
    """The ``--store`` given to the app (None: ``$PERFLEDGER_URL``, else ``./memory/logs``)."""
    return (ctx.obj or {}).get("store")


def open_ledger(ctx: typer.Context) -> Ledger:
    """The ledger named by ``--store``; call it inside :func:`library_errors`."""
    from ..ledger import Ledger

    return Ledger(store_of(ctx))


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

    Example: perfledger --store ./memory/logs best --ticker AAPL
    """
    ctx.obj = {"store": store}
