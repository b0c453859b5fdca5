"""PostgreSQL's bulk write path (store/postgres/bulk.py): a large batch through binary COPY
and one set-based merge per derived table.

It must leave exactly what the row-by-row path leaves (records, custom metrics, kept return
series, params/tags and their counts, best, summary, pairs, and the "best changed" answers),
into an empty store and into one that already holds rivals; send a handful of statements
instead of one per record; and keep sync's guarantees under real concurrency and SIGKILL
when every chunk takes it.
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

import numpy as np
import pandas as pd
import pytest
from cli_runner import process_env
from test_pg_writes import _round_trips, _state
from test_sync import assert_derived_exact, content, fill
from test_sync_processes import WORKER, sync_at_once, union

from perfledger import Ledger
from perfledger.store.postgres import bulk
from perfledger.store.postgres.writer import PgWriteTx

pytestmark = pytest.mark.postgres

N = 3 * bulk.BULK_ROWS


def _frame(n: int, seed: int, prefix: str) -> pd.DataFrame:
    """``n`` records with ties (values and timestamps), missing values, custom metrics,
    params, tags and kept return series on some."""
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 500, n), unit="s")
    return pd.DataFrame({
        "timestamp": ts,
        "ticker": [f"T{i % 4}" for i in range(n)],
        "model_name": [f"M{i % 5}" for i in range(n)],
        "sharpe": [None if i % 9 == 0 else float(rng.integers(0, 20)) / 4 for i in range(n)],
        "mse": [float(rng.integers(1, 30)) / 100 for _ in range(n)],
        "drawdown": [-float(rng.integers(0, 10)) / 20 for _ in range(n)],
        "ic": [float(rng.integers(0, 7)) / 10 if i % 3 else np.nan for i in range(n)],
        "free": [float(i % 13) for i in range(n)],
        "params": [{"lr": i % 3, "grid": [1, 2.5]} if i % 2 else None for i in range(n)],
        "tags": [{"run": f"{prefix}{i % 4}"} if i % 5 == 0 else None for i in range(n)],
        "notes": [f"{prefix}{i}" for i in range(n)],
        "returns": [[0.01 * (i % 7), -0.02, 0.005] if i % 50 == 0 else None for i in range(n)],
    })


def _kept(led: Ledger) -> list[tuple[str, list[float]]]:
    hist = led.history(include_meta=True)
    return sorted((n, led.returns(int(r)).tolist()) for n, r, h in
                  zip(hist["notes"], hist["record_id"], hist["has_returns"], strict=True) if h)


def _load(led: Ledger, frames: list[pd.DataFrame], bulk_path: bool, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[dict[str, Any], list[bool], list[tuple[str, list[float]]], dict[str, Any]]:
    changed: list[bool] = []
    took: list[bool] = []
    insert, insert_bulk = PgWriteTx.insert, PgWriteTx._insert_bulk
    monkeypatch.setattr(bulk, "BULK_ROWS", bulk.BULK_ROWS if bulk_path else 10 ** 9)

    def spy(self: PgWriteTx, batch: Any) -> Any:
        out = insert(self, batch)
        changed.append(out.best_changed)
        return out

    def spy_bulk(self: PgWriteTx, batch: Any) -> Any:
        took.append(True)
        return insert_bulk(self, batch)

    monkeypatch.setattr(PgWriteTx, "insert", spy)
    monkeypatch.setattr(PgWriteTx, "_insert_bulk", spy_bulk)
    for frame in frames:
        led.log_many(frame)
    monkeypatch.undo()
    assert bool(took) == bulk_path
    return _state(led), changed, _kept(led), led.best()


def test_the_bulk_path_leaves_what_the_row_path_leaves(pg_ledger: Ledger,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Into an empty store, then a second batch into the filled one (some best entries
    beaten, some tied, some not; every summary merged with stored rows), then a batch
    that changes no best entry."""
    pg_ledger.register_metric("ic", higher_is_better=False)
    first, second = _frame(N, 1, "a"), _frame(N, 2, "b")
    third = _frame(N, 3, "c").assign(sharpe=-100.0, mse=9.0, drawdown=-0.99, ic=9.0)
    frames = [first, second, third]
    rows_state = _load(pg_ledger, frames, False, monkeypatch)
    pg_ledger.clear()
    bulk_state = _load(pg_ledger, frames, True, monkeypatch)
    assert bulk_state == rows_state
    assert bulk_state[1] == [True, True, False]
    assert len(bulk_state[2]) == 3 * N // 50  # the kept return series, all carried
    assert_derived_exact(pg_ledger)
    # Counted independently: the labels' record counts.
    labels = {(k, key, v): n for k, key, v, n in rows_state[0]["labels"]}
    assert labels[("p", "lr", "1")] == sum(int(f["params"].map(lambda p: bool(p) and p["lr"] == 1).sum())
                                           for f in frames)


def test_a_ticker_first_seen_without_metrics_changes_the_best_document(pg_ledger: Ledger) -> None:
    frame = pd.DataFrame({"ticker": "NEW", "model_name": "M", "notes": [f"n{i}" for i in range(N)],
                          "timestamp": pd.Timestamp("2024-01-01", tz="UTC")})
    seen: list[bool] = []
    insert = PgWriteTx.insert

    def spy(self: PgWriteTx, batch: Any) -> Any:
        out = insert(self, batch)
        seen.append(out.best_changed)
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PgWriteTx, "insert", spy)
        pg_ledger.log_many(frame)
        pg_ledger.log_many(frame.assign(notes=[f"m{i}" for i in range(N)]))
    assert seen == [True, False]
    assert pg_ledger.tickers() == ["NEW"] and pg_ledger.stats()["records"] == 2 * N


def test_a_large_batch_is_a_handful_of_statements(pg_ledger: Ledger) -> None:
    """Not one statement per record: the whole batch (records, custom metrics, returns,
    labels, four merges) in a few dozen messages to the server."""
    frame = _frame(N, 4, "s")
    pg_ledger.log_many(frame.head(10))  # connections, schema, directions: not counted
    trips = _round_trips(pg_ledger, lambda: pg_ledger.log_many(frame))
    sent = [m.split()[0] for trip in trips for m in trip]
    statements = [m for m in sent if m in ("Query", "Execute")]
    assert len(statements) < 40, trips
    assert len(trips) < 40, trips
    assert pg_ledger.stats()["records"] == N + 10


def test_an_error_in_a_bulk_batch_stores_nothing(pg_ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the COPY (here: in the labels' step) rolls the records, their custom
    metrics and every merge back; the staging tables are empty for the next batch."""
    pg_ledger.log("M", "T0", sharpe=1.0)
    before = _state(pg_ledger)

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as mp:
        mp.setattr(PgWriteTx, "add_labels", boom)
        with pytest.raises(RuntimeError, match="boom"):
            pg_ledger.log_many(_frame(N, 5, "x"))
    assert _state(pg_ledger) == before and pg_ledger.stats()["records"] == 1
    pg_ledger.log_many(_frame(N, 6, "y"))
    assert pg_ledger.stats()["records"] == N + 1
    assert_derived_exact(pg_ledger)


@pytest.mark.slow
def test_nodes_syncing_bulk_chunks_at_once_give_their_exact_union(
    tmp_path: Path, pg_ledger: Ledger, pg_server_url: str
) -> None:
    """Four nodes, each with the same 2,500 records and 2,500 of its own, all chunks through
    the bulk path, synced at once, twice."""
    nodes = []
    for k in range(4):
        node = Ledger(tmp_path / f"node{k}")
        node.register_metric("ic", True)
        fill(node, 0, 2500, prefix="shared")
        fill(node, 10_000 * (k + 1), 10_000 * (k + 1) + 2500, prefix=f"n{k}-")
        nodes.append(node)
    outs = sync_at_once([(str(tmp_path / f"node{k}"), pg_server_url) for k in range(4)])
    assert sum(int(o.split()[0].replace(",", "")) for o in outs) == 4 * 2500 + 2500
    got = content(pg_ledger)
    assert max(got.values()) == 1 and got == union(*nodes)
    assert_derived_exact(pg_ledger)
    outs = sync_at_once([(str(tmp_path / f"node{k}"), pg_server_url) for k in range(4)])
    assert all(o.startswith("0 new, 5,000 already there") for o in outs), outs
    assert content(pg_ledger) == got


@pytest.mark.slow
def test_a_bulk_sync_killed_again_and_again_then_rerun_loses_and_doubles_nothing(
    tmp_path: Path, pg_ledger: Ledger, pg_server_url: str
) -> None:
    node = Ledger(tmp_path / "node")
    node.register_metric("ic", True)
    fill(node, 0, 24_000)
    chunk = str(bulk.BULK_ROWS + 1000)
    rng = random.Random(7)
    kills = 0
    for _ in range(5):
        child = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "node"), pg_server_url, chunk],
                                 env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        if child.stdout.readline().startswith("stored up to"):
            time.sleep(rng.uniform(0.0, 0.6))
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.communicate(timeout=300)
    assert kills >= 3
    partial = pg_ledger.stats()["records"]
    assert 0 < partial <= 24_000
    assert max(content(pg_ledger).values()) == 1
    final = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "node"), pg_server_url, chunk],
                           env=process_env(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert final.stdout.splitlines()[-1] == f"{24_000 - partial:,} new, {partial:,} already there"
    assert content(pg_ledger) == content(node)
    assert Counter(content(pg_ledger)).total() == 24_000
    assert_derived_exact(pg_ledger)


def test_two_transactions_registering_one_new_metric_at_once_both_succeed(
    pg_ledger: Ledger, pg_server_url: str
) -> None:
    """Nodes syncing at once each register the metric directions the team store lacks: the
    second registration of one metric waits for the first, then finds it there (before, it
    failed on pl_metric_defs' primary key and its sync stored nothing)."""
    import threading

    pg_ledger.log("M", "T", sharpe=1.0, metrics={"ic": 0.5})
    pg_ledger.log("M", "T", sharpe=1.0, metrics={"ic": 0.7})
    other = Ledger(pg_server_url)
    answers: list[bool] = []

    def second() -> None:
        with other._writable().writing() as tx:
            answers.append(tx.register_metric("ic", True))

    thread = threading.Thread(target=second)
    with pg_ledger._writable().writing() as tx:
        assert tx.register_metric("ic", True)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive()  # waiting on the first transaction's row
    thread.join(30)
    other.close()
    assert answers == [False]
    assert pg_ledger.best()["T"]["best_ic"]["value"] == 0.7


def test_two_bulk_batches_in_one_transaction_and_a_restore(pg_ledger: Ledger) -> None:
    """The staging tables are emptied before each batch: a second bulk batch in the same
    transaction stores its own rows only (a restore of many cleared records does this)."""
    from perfledger.records.batch import Batch
    from perfledger.records.validation import validate_frame

    first = Batch.from_frame(validate_frame(_frame(N, 8, "p")))
    second = Batch.from_frame(validate_frame(_frame(N, 9, "q")))
    with pg_ledger._writable().writing() as tx:
        a = tx.insert(first)
        b = tx.insert(second)
    assert len(set(a.ids) | set(b.ids)) == 2 * N
    assert pg_ledger.stats()["records"] == 2 * N
    assert Counter(content(pg_ledger)).total() == 2 * N
    assert_derived_exact(pg_ledger)
    want = content(pg_ledger)
    pg_ledger.clear()
    assert pg_ledger.restore_cleared() == 2 * N
    assert content(pg_ledger) == want
    assert_derived_exact(pg_ledger)
