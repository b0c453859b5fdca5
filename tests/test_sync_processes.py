"""``sync`` under concurrency and SIGKILL, with real processes (issue 21, part 1).

16 node ledgers syncing at once into one PostgreSQL store give their exact union (records
shared between nodes stored once); two syncs of one source at once store it once; a sync
killed with SIGKILL again and again, then run to the end, loses and doubles nothing (the
mark advances only with the records it covers). Checked against the nodes' own records
and a recomputation of best() from the target's history.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cli_runner import process_env
from helpers import normalise_best, recompute_best
from test_sync import content, fill

from perfledger import Ledger

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "workers" / "sync_worker.py"


def sync_at_once(pairs: list[tuple[str, str]]) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-m", "perfledger", "--store", src, "sync", "--to", dst],
                              env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for src, dst in pairs]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out + err
        outs.append(out)
    return outs


def union(*ledgers: Ledger) -> Counter[Any]:
    total: Counter[Any] = Counter()
    for led in ledgers:
        total |= Counter(dict.fromkeys(content(led), 1))
    return total


def assert_best_exact(led: Ledger) -> None:
    hist = led.history()
    assert normalise_best(led.best()) == normalise_best(recompute_best(hist, led.metric_directions()))


def test_sixteen_nodes_sync_into_one_postgres_store_at_once(
    tmp_path: Path, pg_ledger: Ledger, pg_server_url: str
) -> None:
    nodes = []
    for k in range(16):
        node = Ledger(tmp_path / f"node{k}")
        node.register_metric("ic", True)
        fill(node, 0, 40, prefix="shared")  # the same 40 records on every node
        fill(node, 1000 * k, 1000 * k + 300, prefix=f"n{k}-")
        nodes.append(node)
    pg_ledger.log("Direct", "T0", sharpe=9.0, notes="logged directly")
    outs = sync_at_once([(str(tmp_path / f"node{k}"), pg_server_url) for k in range(16)])
    assert sum(int(o.split()[0].replace(",", "")) for o in outs) == 16 * 300 + 40
    want = union(*nodes)
    got = content(pg_ledger)
    assert max(got.values()) == 1 and sum(got.values()) == len(want) + 1
    assert Counter({k: v for k, v in got.items() if k[9] != "logged directly"}) == want
    assert_best_exact(pg_ledger)
    # Again, at once: nothing new, nothing read but the marks' records.
    outs = sync_at_once([(str(tmp_path / f"node{k}"), pg_server_url) for k in range(16)])
    assert all(o.startswith("0 new, 340 already there") for o in outs), outs
    assert content(pg_ledger) == got


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_two_syncs_of_one_source_at_once_store_it_once(tmp_path: Path, engine: str,
                                                       request: pytest.FixtureRequest) -> None:
    node = Ledger(tmp_path / "node")
    fill(node, 0, 3000)
    if engine == "postgres":
        request.getfixturevalue("pg_ledger")
        target = request.getfixturevalue("pg_server_url")
    else:
        target = str(tmp_path / "team")
        Ledger(target).close()
    outs = sync_at_once([(str(tmp_path / "node"), target)] * 2)
    assert sorted(int(o.split()[0].replace(",", "")) for o in outs)[1] <= 3000
    with Ledger(target) as team:
        assert content(team) == content(node)
        assert_best_exact(team)


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_sync_killed_again_and_again_then_rerun_loses_and_doubles_nothing(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    node = Ledger(tmp_path / "node")
    node.register_metric("ic", True)
    fill(node, 0, 20_000)
    if engine == "postgres":
        request.getfixturevalue("pg_ledger")
        target = request.getfixturevalue("pg_server_url")
    else:
        target = str(tmp_path / "team")
    rng = random.Random(21)
    kills = 0
    for round_ in range(6):
        if round_ == 3:
            fill(node, 30_000, 31_000, prefix="late")  # new records between kills
        child = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "node"), target, "700"],
                                 env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        # After the first chunk committed (so every round moves on, however loaded the
        # machine), at a random moment: between chunks or inside one.
        if child.stdout.readline().startswith("stored up to"):
            time.sleep(rng.uniform(0.0, 0.8))
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.communicate(timeout=300)
    assert kills >= 4
    with Ledger(target) as team:
        partial = team.stats()["records"]
        assert 0 < partial <= 21_000
        got = content(team)
        assert max(got.values()) == 1  # never doubled, even between kills
    final = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "node"), target, "700"],
                           env=process_env(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert final.stdout.splitlines()[-1] == f"{21_000 - partial:,} new, {partial:,} already there"
    with Ledger(target) as team:
        assert content(team) == content(node)
        assert_best_exact(team)
        if engine == "sqlite":
            from helpers import mirror_records

            assert Counter(r["notes"] for r in mirror_records(Path(target))) == Counter(
                r["notes"] for r in node.records())
