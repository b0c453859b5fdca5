"""perfledger: a model-performance ledger for quant research.

    from perfledger import Ledger
    led = Ledger()                      # $PERFLEDGER_URL, else ./memory/logs
    led.log("LSTM_v1", "AAPL", sharpe=1.85, mse=0.0234, drawdown=-0.12)
    led.best("AAPL")["best_sharpe"]     # {"model": "LSTM_v1", "value": 1.85, "timestamp": ...}

Heavy modules (pandas, SQLAlchemy) load on first use of :class:`Ledger`, so
``import perfledger`` stays cheap for scripts that only need, say, the error classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    FileReadError,
    MirrorConflictError,
    MirrorsDisabledError,
    MissingDependencyError,
    NotALedgerError,
    PerfLedgerError,
    ReadOnlyLedgerError,
    SchemaVersionError,
    StorageError,
    StoreConnectionError,
    ValidationError,
    WriteConflictError,
    WrongTypeError,
)

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = [
    "FileReadError",
    "Ledger",
    "MirrorConflictError",
    "MirrorsDisabledError",
    "MissingDependencyError",
    "NotALedgerError",
    "PerfLedgerError",
    "ReadOnlyLedgerError",
    "SchemaVersionError",
    "StorageError",
    "StoreConnectionError",
    "ValidationError",
    "WriteConflictError",
    "WrongTypeError",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Ledger":
        from .ledger import Ledger

        return Ledger
    raise AttributeError(f"module 'perfledger' has no attribute {name!r}")
