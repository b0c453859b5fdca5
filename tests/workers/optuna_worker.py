"""One Optuna worker process: joins a study in a shared RDB storage and optimizes it with
perfledger's LedgerCallback (tests/test_optuna.py runs several at once). With ``--backfill``
it only runs ``LedgerCallback.log_study`` over the whole study and prints how many it stored."""

from __future__ import annotations

import argparse
import sys

import optuna

from perfledger import Ledger
from perfledger.integrations.optuna import LedgerCallback


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -2.0, 2.0)
    depth = trial.suggest_int("max_depth", 2, 8)
    trial.set_user_attr("n_periods", 252)
    trial.set_user_attr("worker", sys.argv[-1])
    if depth == 2:
        raise optuna.TrialPruned()
    if depth == 8:
        return float("nan")  # Optuna marks the trial FAIL
    return 1.5 - x * x + depth / 10


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("storage")
    ap.add_argument("study")
    ap.add_argument("ledger")
    ap.add_argument("trials", type=int)
    ap.add_argument("--backfill", action="store_true")
    ap.add_argument("name")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(args.storage, engine_kwargs={"connect_args": {"timeout": 60}}
                                         if args.storage.startswith("sqlite") else {})
    study = optuna.load_study(study_name=args.study, storage=storage)
    led = Ledger(args.ledger)
    cb = LedgerCallback(led, ticker="AAPL", model_name="XGB", metric="sharpe")
    if args.backfill:
        print(cb.log_study(study))
        return
    study.optimize(objective, n_trials=args.trials, callbacks=[cb])
    led.close()


if __name__ == "__main__":
    main()
