"""``perfledger overfit``: the PBO table and its verdict in plain words, JSON equal to the
library's numbers, the filters, one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from cli_runner import run_cli

from perfledger import Ledger


def _sweep(store: Path) -> None:
    rng = np.random.default_rng(1)
    idx = pd.bdate_range("2016-01-01", periods=400, tz="UTC")
    with Ledger(store) as led:
        for j in range(6):
            led.log_backtest(f"Cfg{j}", "AAPL", pd.Series(rng.normal(0, 0.01, 400), index=idx),
                             tags={"run": "sweep-3"})
        led.log_backtest("Other", "AAPL", pd.Series(rng.normal(0, 0.01, 400), index=idx),
                         tags={"run": "other"})


def test_overfit_table_verdict_and_json(tmp_path: Path) -> None:
    store = tmp_path / "ledger"
    _sweep(store)
    env = {"PERFLEDGER_URL": str(store)}
    table = run_cli("overfit", "--ticker", "AAPL", "--tag", "run=sweep-3", "--partitions", "8", env=env)
    assert table.returncode == 0, table.stderr
    assert "pbo" in table.stdout and "splits" in table.stdout
    assert any(w in table.stdout for w in ("Overfit:", "Some overfitting:", "Not overfit:"))
    out = run_cli("overfit", "--ticker", "AAPL", "--tag", "run=sweep-3", "--partitions", "8",
                  "--format", "json", env=env)
    got = json.loads(out.stdout)
    with Ledger(store) as led:
        want = led.overfitting("AAPL", tags={"run": "sweep-3"}, partitions=8)
    assert got["pbo"] == want.pbo and got["trials"] == 6 and got["splits"] == 70
    assert got["degradation_slope"] == want.slope and got["prob_oos_loss"] == want.prob_oos_loss
    every = json.loads(run_cli("overfit", "--ticker", "AAPL", "--format", "json", env=env).stdout)
    assert every["trials"] == 7 and every["splits"] == 12870


def test_overfit_errors_are_one_line(tmp_path: Path) -> None:
    store = tmp_path / "ledger"
    _sweep(store)
    env = {"PERFLEDGER_URL": str(store)}
    for args, words in ((("--ticker", "MSFT"), "at least 2 evaluations"),
                        (("--ticker", "AAPL", "--partitions", "7"), "--partitions='7' must be an even")):
        r = run_cli("overfit", *args, env=env)
        assert r.returncode == 2 and r.stderr.startswith("Error:") and words in r.stderr
        assert r.stderr.strip().count("\n") == 0
