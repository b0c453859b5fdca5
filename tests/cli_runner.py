"""The ``perfledger`` command line, run by the tests: in this process, or as a real process.

:func:`run_cli` runs the real app in this process, in the isolation of Typer's ``CliRunner``
(its own stdin, stdout, stderr and environment variables), the way the console script runs
it (``perfledger.cli.main`` calls ``app(prog_name="perfledger")``: the Click group built
from the app, whose ``Group.main`` in standalone mode turns every way out into an exit
code), in about a hundredth of the time a new interpreter takes to start. What a fresh
process would see, it sees too:

- stdout and stderr apart, and the exit code;
- the environment: ``$PERFLEDGER_URL`` and ``$PERFLEDGER_DEBUG`` unset unless given in
  ``env``; ``COLUMNS=80``, the width Rich and Click give a process without a terminal (help
  text); tables go to a stdout that is not a terminal, as through a pipe;
- the working directory ``cwd`` (restored afterwards);
- what the interpreter itself prints on stderr: the traceback of an exception that escapes
  (``PERFLEDGER_DEBUG=1``), exit code 1; warnings (each shown once per run, as in a new
  process); and log records of WARNING and above as logging's last-resort handler prints
  them in a process that configured no logging (pytest's handlers are set aside meanwhile;
  the messages are also kept, in ``Completed.logged``);
- no state carried over: every ``Ledger`` the command opened is closed when it returns, as
  the end of a process releases its connections.

:func:`run_process` runs ``python -m perfledger`` with this checkout's ``src`` first on
``PYTHONPATH`` and no terminal (stdin from ``/dev/null`` unless ``input`` is given): for the
few tests that need a real process (pipes between processes, a second process holding the
ledger, the interpreter's own start-up and exit) and for the test that checks the two agree
(``tests/test_cli_process.py``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from perfledger import Ledger
from perfledger.cli import app

SRC = Path(__file__).resolve().parents[1] / "src"

#: What a test process's environment must not pass on to the command unless a test says so.
CLEARED = ("PERFLEDGER_URL", "PERFLEDGER_DEBUG")
#: The terminal width of a process whose output is not a terminal (Rich's and Click's default).
NO_TERMINAL_COLUMNS = "80"


@dataclass
class Completed:
    """A finished command: the fields of ``subprocess.CompletedProcess`` the tests read."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    #: The exception that escaped the app (its traceback is in ``stderr``), else None.
    exception: BaseException | None = None
    #: The log messages (WARNING and above) printed on stderr.
    logged: list[str] = field(default_factory=list)
    #: stdout as written, before text mode turns ``\r`` and ``\r\n`` into ``\n`` (run_cli only):
    #: what a program reading the pipe in binary (or with ``newline=""``) gets.
    raw_stdout: bytes = b""


def run_cli(*args: str, env: Mapping[str, str | None] | None = None,
            cwd: str | os.PathLike[str] | None = None, input: str | bytes | None = None) -> Completed:
    """``perfledger ARGS`` in this process; ``env`` sets (a value) or unsets (None) variables.
    stdout and stderr are read as ``subprocess.run(..., text=True)`` reads a process's."""
    overrides: dict[str, str | None] = {name: None for name in CLEARED}
    overrides["COLUMNS"] = NO_TERMINAL_COLUMNS
    overrides.update(env or {})
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(_closing_every_ledger())
        logged = stack.enter_context(_last_resort_logging())
        stack.enter_context(_fresh_warnings())
        out, err, _ = stack.enter_context(CliRunner().isolation(input=input, env=overrides))
        try:
            returncode, escaped = _main(list(args))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        raw = out.getvalue()
        stdout, stderr = _text(raw), _text(err.getvalue())
    return Completed(list(args), returncode, stdout, stderr, escaped, logged.messages, raw)


@functools.cache
def _command() -> Any:
    """The Click group ``app()`` builds, built once: building it is most of what a short
    command costs, and it keeps nothing from one run to the next (each run has its context)."""
    return typer.main.get_command(app)


def _main(args: list[str]) -> tuple[int, BaseException | None]:
    """What ``perfledger.cli.main`` does in a process, and what the interpreter does with
    the way it ends: (exit code, the exception that escaped, its traceback on stderr)."""
    try:
        _command().main(args=args, prog_name="perfledger")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0, None
        print(exc.code, file=sys.stderr)
        return 1, None
    except Exception as exc:
        traceback.print_exception(exc)
        return 1, exc
    return 0, None


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def run_process(*args: str, env: Mapping[str, str | None] | None = None,
                cwd: str | os.PathLike[str] | None = None, input: str | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m perfledger ARGS`` in a new process (this checkout's ``src`` first on the
    path); ``env`` as for :func:`run_cli`, on top of this process's environment."""
    return subprocess.run([sys.executable, "-m", "perfledger", *args], env=process_env(env), cwd=cwd,
                          input=input, stdin=subprocess.DEVNULL if input is None else None,
                          capture_output=True, text=True, timeout=timeout)


def process_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment, ``src`` first on ``PYTHONPATH``, :data:`CLEARED` and
    ``COLUMNS`` unset (the child has no terminal), then ``env`` applied (None unsets)."""
    out = {k: v for k, v in os.environ.items() if k not in (*CLEARED, "COLUMNS")}
    out["PYTHONPATH"] = os.pathsep.join([str(SRC), out.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for name, value in (env or {}).items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


@contextlib.contextmanager
def _closing_every_ledger() -> Iterator[None]:
    """Close, on the way out, every Ledger opened meanwhile (one that failed to open too)."""
    opened: list[Ledger] = []
    init = Ledger.__init__

    def tracked(self: Ledger, *args: Any, **kwargs: Any) -> None:
        opened.append(self)
        init(self, *args, **kwargs)

    Ledger.__init__ = tracked  # type: ignore[method-assign]
    try:
        yield
    finally:
        Ledger.__init__ = init  # type: ignore[method-assign]
        for led in opened:
            with contextlib.suppress(Exception):  # a half-open one may have nothing to close
                led.close()


class _LastResort(logging.Handler):
    """What ``logging.lastResort`` does (WARNING and above, the bare message, on whatever
    ``sys.stderr`` is at the time), keeping the messages."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        self.messages.append(message)
        sys.stderr.write(message + "\n")


@contextlib.contextmanager
def _last_resort_logging() -> Iterator[_LastResort]:
    """The root logger as in a process that configured no logging (its default level, no
    handler but the last resort): pytest's handlers are set aside meanwhile."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    last = _LastResort()
    root.handlers[:] = [last]
    root.setLevel(logging.WARNING)
    try:
        yield last
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@contextlib.contextmanager
def _fresh_warnings() -> Iterator[None]:
    """The interpreter's default warning filters, a fresh "once per place" memory, and
    warnings printed on (the captured) stderr, as a new process prints them."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category in (("ignore", DeprecationWarning), ("ignore", PendingDeprecationWarning),
                                 ("ignore", ImportWarning), ("ignore", ResourceWarning)):
            warnings.filterwarnings(action, category=category)
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
            sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = show
        yield
