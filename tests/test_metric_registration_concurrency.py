"""Parallel first backtests on a fresh PostgreSQL ledger: each registers the backtest metrics
(psr, sortino, ...) at once. Registration is insert-or-nothing then a locked read, so none of
them fails on pl_metric_defs' primary key (the review of issue 22, #16: 2-3 of 4 workers
failed with a duplicate key). Real processes, released together, on a new database each round."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from perfledger import Ledger

WORKER = """
import sys, time, numpy as np
from pathlib import Path
from perfledger import Ledger
url, i, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
led = Ledger(url)
led.history()  # connected and the schema made before the start line
(go.parent / f"ready-{i}").touch()
while not go.exists():
    time.sleep(0.001)
led.log_backtest(f"N{i}", "AAPL", returns=np.random.default_rng(i).normal(0, 0.01, 300))
"""


@pytest.mark.parametrize("round_", range(2))
def test_parallel_first_backtests_register_their_metrics_once(
    pg_server_url: str, tmp_path: Path, round_: int
) -> None:
    from conftest import fresh_pg_database

    with fresh_pg_database("perfledger_reg") as url:
        with Ledger(url) as led:
            for i in range(3):
                led.log("M", "AAPL", sharpe=i / 10)  # a ledger with records, no backtest metric yet
        go = tmp_path / "go"
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(i), str(go)],
                                  stderr=subprocess.PIPE, text=True) for i in range(6)]
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready-*"))) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)  # every worker connected and waiting at the start line
        go.touch()
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 6, "\n".join(e for e in errors if e)
        with Ledger(url) as led:
            assert len(led.history(ticker="AAPL")) == 9
            directions = led.metric_directions()
            assert directions["psr"] is True and directions["volatility"] is False
            assert len(led.returns_frame(model_name=[f"N{i}" for i in range(6)]).columns) == 6
