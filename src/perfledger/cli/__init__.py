"""The ``perfledger`` command line: the Python API, one command per call.

Each command parses its options (shared ones defined once, in :mod:`.options`), calls the
library and formats the answer (:mod:`.output`); no ledger logic lives here. Library errors
(bad input, an unreachable or too-new store) become one line on stderr, ``Error: ...``
naming the field and value, and exit code 2; a failed ``check`` (or a ``decay`` that
flagged a model) exits 1; success exits 0. Click's usage errors are one line too (exit 2);
an unexpected error (a bug) is one line and exit 1, its traceback only with
``PERFLEDGER_DEBUG=1``. Scripts and cron jobs can rely on those three codes.

Modules: :mod:`.app` (the Typer app, ``--store``, error plumbing), :mod:`.options`,
:mod:`.output`, :mod:`.query` (commands that read) and :mod:`.manage` (commands that write
or move records); :mod:`.rows` (``history`` printed from plain rows, without pandas) and
:mod:`.coercion` (option values read without pydantic). Heavy imports (pandas, the ledger)
happen inside commands, so ``perfledger --help`` stays fast.
"""

from __future__ import annotations

import inspect

from . import manage, query
from .app import Command, app, takes_store

#: Every command, in the order ``perfledger --help`` lists them.
COMMANDS = {
    "log": manage.log,
    "history": query.history,
    "best": query.best,
    "tickers": query.tickers,
    "models": query.models,
    "leaderboard": query.leaderboard,
    "import": manage.import_,
    "import-mlflow": manage.import_mlflow,
    "export": manage.export,
    "check": query.check,
    "decay": query.decay,
    "overfit": query.overfit,
    "dashboard": manage.dashboard,
    "copy": manage.copy,
    "sync": manage.sync,
    "clear": manage.clear,
    "restore": manage.restore,
    "purge": manage.purge,
    "stats": query.stats,
    "repair": manage.repair,
}


def summary(function: object) -> str:
    """A command's line in ``perfledger --help``: its docstring's first paragraph on one line
    (the docstring is wrapped for the source; the list must not keep those line breaks)."""
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


for _name, _function in COMMANDS.items():
    app.command(_name, cls=Command, short_help=summary(_function))(takes_store(_function))


def main() -> None:
    """The ``perfledger`` console script."""
    app(prog_name="perfledger")


__all__ = ["COMMANDS", "app", "main"]
