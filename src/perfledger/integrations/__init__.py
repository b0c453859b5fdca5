"""Integrations: perfledger inside the tools quants already run (Optuna's ``study.optimize``).

Each module is one tool's adapter, imported on its own (``from perfledger.integrations.optuna
import LedgerCallback``) so that none of them needs the others' packages. They sit on the
faces' layer: like the command line, they ask the :class:`~perfledger.Ledger` and nothing
below it. (Reading another tool's *stored* history, MLflow's tracking database, is an import
like any other: :mod:`perfledger.files.mlflow`, ``Ledger.import_mlflow``.)
"""
