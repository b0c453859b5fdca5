"""The Typer app, the global ``--store`` option and the error plumbing every command shares.

Library errors a user can cause (perfledger's own: bad input, an unreadable file, an
unreachable, damaged or too-new store; and the file system's) become one line on stderr,
``Error: ...``, and exit code 2 (:func:`library_errors`, :func:`fail`). Click's own usage
errors (an unknown option, ``--days abc``) become one line
too, naming the option and the value, exit 2, instead of the boxed Rich panel: scripts read
stderr line by line (:class:`Group`). Anything else is a bug: :class:`Group` prints one line
and exits 1, with the traceback only when ``PERFLEDGER_DEBUG=1``. Commands open the ledger
with :func:`open_ledger`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import PerfLedgerError
from .coercion import lighten

if TYPE_CHECKING:
    from ..ledger import Ledger

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2

DEBUG_ENV = "PERFLEDGER_DEBUG"
#: Click's exception classes, found through Typer's public ``BadParameter`` (Typer vendors its
#: own copy of Click; older releases use Click itself).
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_ABORT = next(c for c in typer.Abort.__mro__ if c.__name__ == "Abort")


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    """``params`` with every flag (``--all``, ``--sample``, ``--yes``, ``--help``,
    ``--version``) shown in help without a value: Typer's help labels a bool flag
    ``<bool>``, as if it took one. An empty metavar prints nothing in the type column."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Group(TyperGroup):
    """The ``perfledger`` group: every way out is an exit code and, on failure, one line."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(lighten(super().get_params(ctx)))

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None,
        complete_var: str | None = None, standalone_mode: bool = True, **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            with one_line_warnings():
                code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except _CLICK_ERROR as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `perfledger`: the help
                exc.show()
                sys.exit(exc.exit_code)
            say(f"Error: {usage_message(exc, argv)}", err=True)
            sys.exit(exc.exit_code)
        except _ABORT:
            typer.echo("Aborted.", err=True)
            sys.exit(EXIT_CHECK_FAILED)
        except Exception as exc:  # the last resort: a bug, never a user's mistake
            if os.environ.get(DEBUG_ENV) == "1":
                raise
            say(
                f"Error: unexpected {type(exc).__name__}: {_one_line(exc)} "
                f"(set {DEBUG_ENV}=1 for the traceback)", err=True,
            )
            sys.exit(EXIT_CHECK_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


class _OneLine(logging.Filter):
    """Every log record a command lets through is one inert line: its message on one line,
    stored text in it made visible, no traceback (a driver's warning with an exception
    attached, such as psycopg's about a pipeline, would otherwise print a dozen lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = visible(_one_line_text(message)), ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """While a command runs, each warning it shows (Python's and the log's) is one line:
    ``RuntimeWarning: message``, inert; scripts read stderr line by line."""
    root = logging.getLogger()
    one = _OneLine()
    handlers = [*root.handlers, *([logging.lastResort] if logging.lastResort else [])]
    for handler in handlers:
        handler.addFilter(one)
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        sys.stderr.write(f"{category.__name__}: {visible(_one_line_text(str(message)))}\n")

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown
        for handler in handlers:
            handler.removeFilter(one)


def usage_message(exc: Exception, argv: Sequence[str]) -> str:
    """A Click usage error in one line; a bad value's message also quotes the value typed."""
    text = _one_line(exc) if not hasattr(exc, "format_message") else _one_line_text(exc.format_message())
    param = getattr(exc, "param", None)
    opts = getattr(param, "opts", None) or []
    value = _typed_value(argv, opts) if type(exc).__name__ == "BadParameter" else None
    return text if value is None or repr(value) in text else f"{text} (got {_short(value)!r})"


def _typed_value(argv: Sequence[str], opts: Sequence[str]) -> str | None:
    """The last value given to one of ``opts`` in ``argv`` (``--x V`` or ``--x=V``)."""
    found = None
    for i, arg in enumerate(argv):
        for opt in opts:
            if arg == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(opt + "=") and opt.startswith("--"):
                found = arg[len(opt) + 1:]
    return found


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[:width] + "..."


app = typer.Typer(
    name="perfledger",
    cls=Group,
    help="A model-performance ledger: log evaluations, query history, find the best model per ticker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class Command(TyperCommand):
    """A command whose hidden arguments (old spellings kept working) stay out of the usage
    line too, and whose flags are shown without a value."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(lighten(super().get_params(ctx)))

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not getattr(param, "hidden", False):
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


#: Characters a terminal acts on instead of showing: C0 controls (ESC starts the sequences
#: that clear a screen or set a window title), DEL, C1 controls, the bidirectional overrides
#: and isolates that reorder a line, and the Unicode line/paragraph separators.
_ACTIVE = [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
           *range(0x2066, 0x206A), 0x2028, 0x2029]
_VISIBLE = {cp: (f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}") for cp in _ACTIVE} | {
    0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def visible(text: str) -> str:
    """``text`` made inert for a terminal: every character in :data:`_ACTIVE` written as its
    escape (``\\x1b``, ``\\n``, ``\\u202e``), everything else as is. Every stored text the
    command line prints in a table or a message goes through here (notes come from teammates
    and imported files); ``--format csv/json`` write the exact text."""
    return text.translate(_VISIBLE)


def say(message: str, err: bool = False) -> None:
    """Print one message line (on stderr with ``err``), any stored text in it made inert."""
    typer.echo(visible(message), err=err)


def fail(message: str) -> NoReturn:
    """Print ``Error: message`` on stderr (made inert, see :func:`visible`) and exit 2."""
    say(f"Error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _one_line(exc: BaseException) -> str:
    return _one_line_text(str(exc)) or type(exc).__name__


def _one_line_text(text: str) -> str:
    """``text`` on one line, any password it quotes hidden (a driver may echo a URL or DSN)."""
    from ..location import hide_passwords_in

    return hide_passwords_in("; ".join(line.strip() for line in text.splitlines() if line.strip()))


@contextmanager
def library_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one clean line and exit code 2: perfledger's
    own (bad input, a store that failed or may only be read, a missing extra) and the file
    system's (a path the user named that cannot be read or written). Anything else is a bug
    and reaches :class:`Group` (exit 1)."""
    try:
        yield
    except (PerfLedgerError, OSError) as exc:
        fail(_one_line(exc))


def store_of(ctx: typer.Context) -> str | None:
    """The ``--store`` given before or after the command (None: ``$PERFLEDGER_URL``, else
    ``./memory/logs``)."""
    return (ctx.obj or {}).get("store")


STORE_HELP = "Ledger directory or SQLAlchemy URL (default: $PERFLEDGER_URL, else ./memory/logs)."
#: ``--store`` after the command name (``perfledger history --store D``): users put options
#: after the command they belong to, and the group-level one alone made that a usage error.
StoreAfter = Annotated[str | None, typer.Option(
    "--store", metavar="DIR_OR_URL", help=f"{STORE_HELP} Before or after the command name.",
    show_default=False)]


def takes_store(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a command taking ``ctx``) with the ``--store`` option added to its own
    options, defined here once, so every registered command accepts it after its name as
    well as before (the group's). Given in both places with different values is a usage
    error naming both; the one given after the command beats ``$PERFLEDGER_URL``."""
    signature = inspect.signature(function, eval_str=True)

    @functools.wraps(function)
    def command(*args: Any, store_after: str | None = None, **kwargs: Any) -> Any:
        if store_after is not None:
            _store_after(kwargs["ctx"], store_after)
        return function(*args, **kwargs)

    extra = inspect.Parameter("store_after", inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=StoreAfter)
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), extra])
    command.__annotations__ = {**typing.get_type_hints(function, include_extras=True),
                               "store_after": StoreAfter}
    return command


def _store_after(ctx: typer.Context, store: str) -> None:
    before = store_of(ctx)
    source = ctx.parent.get_parameter_source("store") if ctx.parent is not None else None
    if before is not None and before != store and getattr(source, "name", "") == "COMMANDLINE":
        fail(f"--store given twice, {before!r} before the command and {store!r} after it; give it once")
    ctx.obj = {**(ctx.obj or {}), "store": store}


def open_ledger(ctx: typer.Context) -> Ledger:
    """The ledger named by ``--store``; call it inside :func:`library_errors`."""
    from ..ledger import Ledger

    return Ledger(store_of(ctx))


def installed_version() -> str:
    """The installed distribution's version (its metadata; no heavy import), or the
    package's own when running from a source tree that was not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("perfledger")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"perfledger {installed_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="PERFLEDGER_URL",
            metavar="DIR_OR_URL",
            help=f"{STORE_HELP} Before or after the command name.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version,
                           help="Print the installed version and exit.")
    ] = False,
) -> None:
    """A model-performance ledger: log evaluations, query history, find the best model per ticker.

    Example: perfledger best --store ./memory/logs --ticker AAPL
    """
    ctx.obj = {"store": store}
