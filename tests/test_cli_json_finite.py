"""No JSON output holds Infinity or NaN (README, Validation): an undefined or infinite number
is null in every --format json path (review of issue 22, #11: leaderboard's min_trl_years was
Infinity for a best Sharpe <= 0, overfit's degradation line NaN when undefined)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from cli_runner import run_cli

from perfledger import Ledger
from perfledger.cli.output import dumps, json_safe


def _strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON output")

    return json.loads(text, parse_constant=refuse)


def test_leaderboard_json_has_no_infinity(tmp_path: Path) -> None:
    store = tmp_path / "ledger"
    rng = np.random.default_rng(0)
    with Ledger(store) as led:
        for j in range(3):  # losing strategies: MinTRL is infinite
            led.log_backtest(f"Lose{j}", "E", rng.normal(-0.001, 0.01, 300))
    out = run_cli("leaderboard", "--ticker", "E", "--format", "json", env={"PERFLEDGER_URL": str(store)})
    assert out.returncode == 0, out.stderr
    rows = _strict(out.stdout)
    assert rows and all(r["min_trl_years"] is None for r in rows)  # type: ignore[union-attr, index]


def test_overfit_json_has_no_nan_when_the_degradation_line_is_undefined(tmp_path: Path) -> None:
    store = tmp_path / "ledger"
    idx = pd.bdate_range("2020-01-01", periods=6, tz="UTC")
    with Ledger(store) as led:
        led.log_backtest("A", "E", pd.Series([0.01, -0.01, 0.02] * 2, index=idx))
        led.log_backtest("B", "E", pd.Series([0.0, 0.005, -0.002] * 2, index=idx))
        assert math.isnan(led.overfitting("E", partitions=2).slope)
    out = run_cli("overfit", "--ticker", "E", "--partitions", "2", "--format", "json",
                  env={"PERFLEDGER_URL": str(store)})
    assert out.returncode == 0, out.stderr
    got = _strict(out.stdout)
    assert got["degradation_slope"] is None  # type: ignore[index]


def test_every_json_writer_maps_non_finite_numbers_to_null() -> None:
    value = {"a": math.inf, "b": [-math.inf, math.nan, 1.5], "c": (2.0, "x")}
    assert json_safe(value) == {"a": None, "b": [None, None, 1.5], "c": [2.0, "x"]}
    assert _strict(dumps(value)) == {"a": None, "b": [None, None, 1.5], "c": [2.0, "x"]}
