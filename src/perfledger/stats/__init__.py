"""The statistics: metrics computed from a return series (:mod:`.returns`: Sharpe, Sortino,
drawdown, PSR, DSR), a backtest as a ledger record and the confidence in a ticker's best
Sharpe (:mod:`.backtest`), and the decay test (:mod:`.decay`).

Pure computation on the values it is given (numpy, pandas, the standard library): it
imports :mod:`perfledger.records` and :mod:`perfledger.errors` only; the
:class:`~perfledger.Ledger` reads, calls and logs. ``perfledger.returns`` is the public
name of :mod:`.returns`.
"""
