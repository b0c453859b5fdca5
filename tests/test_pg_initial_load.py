"""A sync into an EMPTY PostgreSQL store loads like a restore (``store/postgres/initial_load.py``).

One transaction: the tables locked, emptiness checked under the lock, the records' secondary
indexes and the content keys' primary key dropped, rows and keys copied, the indexes built
again, the derived tables computed on the server. Checked here against the normal path
(every table it leaves, row for row), with real processes: SIGKILL in the middle of a load
leaves the schema with every index it had (``pg_indexes`` compared) and nothing stored, and a
rerun gives the exact source; four syncs of different sources at once into one empty store
give their exact union (one loads, the others wait and take the normal path); two syncs of
one source at once store it once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cli_runner import process_env
from conftest import fresh_pg_database
from helpers import normalise_best, recompute_best
from test_sync import assert_derived_exact, content, fill

from perfledger import Ledger
from perfledger.files.sync import sync_stores

WORKER = Path(__file__).parent / "workers" / "sync_worker.py"
#: The derived tables and what orders their rows; mean and M2 are compared to rounding.
DERIVED = {"pl_best": "ticker, metric", "pl_summary": "ticker, model_name, metric",
           "pl_pairs": "ticker, model_name", "pl_labels": "h"}


def sync(src: Ledger, dst: Ledger, *, load_from: int, chunk: int = 1000) -> Any:
    return sync_stores(src._ensure(), dst._writable(), dst, dst._mirrors, chunk=chunk,
                       initial_load_from=load_from)


def rows(url: str, table: str, order: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}")]
    finally:
        engine.dispose()


def schema_state(url: str) -> list[tuple[Any, ...]]:
    """Every index and constraint of the ledger's tables, as the catalogue defines them."""
    indexes = rows(url, r"pg_indexes WHERE schemaname = current_schema() AND tablename LIKE 'pl\_%%'",
                   "tablename, indexname")
    constraints = rows(url, r"(SELECT conrelid::regclass::text AS t, conname, "
                            r"pg_get_constraintdef(oid) AS d "
                            r"FROM pg_constraint WHERE conrelid::regclass::text LIKE 'pl\_%%') AS c",
                       "t, conname")
    return [*indexes, *constraints]


def made(url: str) -> Ledger:
    """A ledger at ``url`` whose schema exists (a ledger is created by its first write)."""
    led = Ledger(url)
    led.register_metric("ic", True)
    return led


def node(tmp_path: Path, name: str, start: int, stop: int, *, returns: bool = False) -> Ledger:
    led = Ledger(tmp_path / name)
    led.register_metric("ic", True)
    fill(led, start, stop, prefix=name)
    fill(led, start, start + 50, prefix=name)  # the same content twice in the source: stored once
    if returns:
        led.log_many([{"ticker": "T9", "model_name": f"R{i}", "timestamp": f"2025-02-01T00:00:0{i}+00:00",
                       "sharpe": float(i), "returns": [0.01 * i, -0.02, 0.03]} for i in range(5)])
    return led


def test_an_initial_load_leaves_exactly_the_tables_the_normal_path_leaves(tmp_path: Path) -> None:
    src = node(tmp_path, "node", 0, 3000, returns=True)
    with fresh_pg_database() as fast_url, fresh_pg_database() as slow_url:
        fast, slow = made(fast_url), made(slow_url)
        before = schema_state(fast_url)
        loaded = sync(src, fast, load_from=1)
        normal = sync(src, slow, load_from=10**9)
        assert loaded.initial_load and not normal.initial_load
        assert (loaded.new, loaded.already_there) == (normal.new, normal.already_there) == (3005, 50)
        assert schema_state(fast_url) == before  # every index built again, as defined
        for table, order in [("pl_records", "id"), ("pl_extra", "record_id, name"),
                             ("pl_returns", "record_id"), ("pl_import_keys", "key"),
                             ("pl_metric_defs", "name")]:
            assert rows(fast_url, table, order) == rows(slow_url, table, order), table
        for table, order in DERIVED.items():
            got, want = rows(fast_url, table, order), rows(slow_url, table, order)
            if table == "pl_summary":  # (.., n, mean, m2, min, max, last_value, last_ts, last_id)
                assert [r[:4] + r[6:] for r in got] == [r[:4] + r[6:] for r in want]
                assert [v for r in got for v in r[4:6]] == pytest.approx([v for r in want for v in r[4:6]],
                                                                        rel=1e-12, abs=1e-12)
            else:
                assert got == want, table
        assert content(fast) == Counter(dict.fromkeys(content(src), 1))
        assert_derived_exact(fast)
        # The mark it left makes the next sync incremental, like the normal path's.
        fill(src, 5000, 5010, prefix="late")
        again = sync(src, fast, load_from=1)
        assert again.incremental and not again.initial_load and (again.read, again.new) == (10, 10)
        assert_derived_exact(fast)
        fast.close()
        slow.close()


def test_a_store_that_is_not_empty_takes_the_normal_path(tmp_path: Path, pg_ledger: Ledger) -> None:
    src = node(tmp_path, "node", 0, 500)
    pg_ledger.log("Direct", "T0", sharpe=1.0)
    result = sync(src, pg_ledger, load_from=1)
    assert not result.initial_load and result.new == 500
    assert_derived_exact(pg_ledger)


def test_a_role_that_does_not_own_the_tables_takes_the_normal_path(tmp_path: Path) -> None:
    src = node(tmp_path, "node", 0, 400)
    role = f"h21_writer_{os.getpid()}"
    with fresh_pg_database() as url:
        made(url).close()
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            conn.exec_driver_sql(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
            conn.exec_driver_sql(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        try:
            dst = Ledger(sa.make_url(url).set(username=role).render_as_string(hide_password=False))
            result = sync(src, dst, load_from=1)
            assert not result.initial_load and result.new == 400
            assert_derived_exact(dst)
            dst.close()
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
                conn.exec_driver_sql(f"DROP OWNED BY {role}")
                conn.exec_driver_sql(f"DROP ROLE {role}")
            admin.dispose()


def test_a_sync_into_sqlite_takes_the_normal_path(tmp_path: Path) -> None:
    src = node(tmp_path, "node", 0, 300)
    dst = Ledger(tmp_path / "team")
    result = sync(src, dst, load_from=1)
    assert not result.initial_load and result.new == 300
    assert_derived_exact(dst)


def _lock_holders(url: str) -> int:
    """Sessions holding ACCESS EXCLUSIVE on pl_records (an initial load in progress)."""
    return len(rows(url, "pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'pl_records' "
                         "AND l.mode = 'AccessExclusiveLock' AND l.granted", "1"))


@pytest.mark.slow
def test_a_load_killed_at_any_point_leaves_every_index_and_a_rerun_gives_the_source(tmp_path: Path) -> None:
    src = node(tmp_path, "node", 0, 30_000)
    with fresh_pg_database() as url:
        made(url).close()
        before = schema_state(url)
        # While rows are being copied (after the first chunk), then after the last chunk
        # (building the indexes and the derived tables), then at a moment in between.
        for when in ("first chunk", "last chunk", "between"):
            child = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "node"), url, "3000", "1"],
                                     env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "started"
            line = child.stdout.readline()
            assert line.startswith("stored up to"), line
            if when == "last chunk":
                while not line.startswith("stored up to 30050"):
                    line = child.stdout.readline()
                    assert line.startswith("stored up to"), line
            elif when == "between":
                time.sleep(0.5)
            # The load holds its lock (its indexes are dropped, uncommitted) as it is killed.
            assert _lock_holders(url) == 1
            os.kill(child.pid, signal.SIGKILL)
            child.communicate(timeout=60)
            deadline = time.monotonic() + 30
            while _lock_holders(url) and time.monotonic() < deadline:  # the server notices the kill
                time.sleep(0.05)
            assert schema_state(url) == before, when
            for table in ("pl_records", "pl_import_keys", "pl_extra", "pl_summary", "pl_best", "pl_pairs"):
                assert rows(url, table, "1") == [], (when, table)
        final = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "node"), url, "3000", "1"],
                               env=process_env(), capture_output=True, text=True, timeout=600)
        assert final.returncode == 0, final.stderr
        assert final.stdout.splitlines()[-2:] == ["initial load", "30,000 new, 50 already there"]
        assert schema_state(url) == before
        with Ledger(url) as team:
            assert content(team) == Counter(dict.fromkeys(content(src), 1))
            assert_derived_exact(team)


def _at_once(pairs: list[tuple[Path, str]]) -> list[list[str]]:
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(source), target, "2000", "1"],
                              env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for source, target in pairs]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out + err
        outs.append(out.splitlines())
    return outs


@pytest.mark.slow
def test_four_syncs_of_different_sources_into_one_empty_store_give_the_exact_union(tmp_path: Path) -> None:
    nodes = [node(tmp_path, f"n{k}", 10_000 * k, 10_000 * k + 6000) for k in range(4)]
    for led in nodes:
        fill(led, 0, 30, prefix="shared")  # the same 30 records on every node
    with fresh_pg_database() as url:
        made(url).close()
        before = schema_state(url)
        outs = _at_once([(tmp_path / f"n{k}", url) for k in range(4)])
        assert sum("initial load" in out for out in outs) == 1, outs  # one loads, the others wait
        assert sum(int(out[-1].split()[0].replace(",", "")) for out in outs) == 4 * 6000 + 30
        assert schema_state(url) == before
        want: Counter[Any] = Counter()
        for led in nodes:
            want |= Counter(dict.fromkeys(content(led), 1))
        with Ledger(url) as team:
            assert content(team) == want
            hist = team.history()
            want_best = recompute_best(hist, team.metric_directions())
            assert normalise_best(team.best()) == normalise_best(want_best)
            assert_derived_exact(team)


@pytest.mark.slow
def test_two_syncs_of_one_source_at_once_into_an_empty_store_store_it_once(tmp_path: Path) -> None:
    src = node(tmp_path, "node", 0, 8000)
    with fresh_pg_database() as url:
        made(url).close()
        outs = _at_once([(tmp_path / "node", url)] * 2)
        assert sum("initial load" in out for out in outs) == 1, outs
        assert sorted(out[-1] for out in outs) == ["0 new, 8,050 already there",
                                                   "8,000 new, 50 already there"]
        with Ledger(url) as team:
            assert content(team) == Counter(dict.fromkeys(content(src), 1))
            assert_derived_exact(team)
