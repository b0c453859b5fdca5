"""Many writers on one PostgreSQL server (issue 21, part 2): what one Ledger costs the server
in connections, and a team's worth of processes at once against the default
``max_connections = 100``.

Connections are counted where the server counts them, in ``pg_stat_activity`` (each Ledger
tagged with its own ``application_name``, which libpq sends for psycopg and ADBC alike),
sampled by a thread while the Ledger reads and writes from several threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL

from perfledger import Ledger, ValidationError

pytestmark = pytest.mark.postgres
WORKER = Path(__file__).parent / "workers" / "pg_team_worker.py"


def tagged(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


class Sampler:
    """The most connections each application_name held at once, polled every few ms."""

    def __init__(self, database: str):
        self.database = database
        self.most: Counter[str] = Counter()
        self.total = 0
        self._stop = threading.Event()
        self._engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._engine.connect() as conn:
            while not self._stop.is_set():
                rows = conn.exec_driver_sql(
                    "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid() GROUP BY 1", (self.database,)).all()
                for name, n in rows:
                    self.most[name] = max(self.most[name], n)
                self.total = max(self.total, sum(n for _, n in rows))
                time.sleep(0.005)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()


def _hammer(led: Ledger, threads: int = 8, each: int = 6) -> None:
    """Reads of every kind (columnar history, best, leaderboards, stats) and writes (log,
    log_many, a labelled log) from several threads at once."""
    def work(t: int) -> None:
        for i in range(each):
            led.log(f"M{t}", "AAPL", sharpe=t + i / 100, notes=f"t{t}-{i}")
            led.history(ticker="AAPL")
            led.best("AAPL")
            led.leaderboard("AAPL")
            led.stats()
            if i % 5 == 0:
                led.log_many([{"model_name": f"M{t}", "ticker": "MSFT", "sharpe": 1.0, "notes": f"b{t}-{i}"}])
                led.log(f"M{t}", "MSFT", sharpe=0.5, params={"lr": i}, notes=f"p{t}-{i}")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))


@pytest.fixture
def database(pg_server_url: str) -> Iterator[tuple[str, str]]:
    """The run's database, emptied, and its name."""
    with Ledger(pg_server_url) as led:
        led.clear()
    yield pg_server_url, sa.make_url(pg_server_url).database or ""
    with Ledger(pg_server_url) as led:
        led.clear()


@pytest.mark.parametrize(("budget", "most"), [(None, 2), ("1", 1), ("5", 5)])
def test_one_ledger_holds_at_most_its_budget_of_server_connections(
        database: tuple[str, str], monkeypatch: pytest.MonkeyPatch, budget: str | None, most: int) -> None:
    """Eight threads reading and writing through one Ledger: never more than 2 server
    connections by default ($PERFLEDGER_PG_CONNECTIONS sets another budget), and every
    answer right (each thread's records all there)."""
    url, name = database
    if budget is None:
        monkeypatch.delenv("PERFLEDGER_PG_CONNECTIONS", raising=False)
    else:
        monkeypatch.setenv("PERFLEDGER_PG_CONNECTIONS", budget)
    app = f"pl_budget_{uuid.uuid4().hex[:8]}"
    with Sampler(name) as seen, Ledger(tagged(url, app)) as led:
        _hammer(led)
        hist = led.history(include_meta=True)
    assert seen.most[app] <= most, seen.most
    assert seen.most[app] >= min(most, 2), seen.most  # the budget was used, not avoided
    notes = set(hist["notes"])
    assert {f"t{t}-{i}" for t in range(8) for i in range(6)} <= notes
    assert len(hist) == 8 * 6 + 8 * 2 * 2  # each thread: 6 logs, and at i = 0 and 5 two more


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_budget_is_refused_naming_the_variable(
        pg_server_url: str, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PERFLEDGER_PG_CONNECTIONS", value)
    with pytest.raises(ValidationError, match=f"PERFLEDGER_PG_CONNECTIONS='{value}'"):
        Ledger(pg_server_url)


def _terminate(app: str, admin: sa.Engine) -> None:
    with admin.connect() as conn:
        pids = [r[0] for r in conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app,))]
        assert pids
        for pid in pids:
            conn.exec_driver_sql("SELECT pg_terminate_backend(%s, 5000)", (pid,))


def test_a_session_the_server_ended_is_noticed_without_a_ping(database: tuple[str, str]) -> None:
    """The server ends the Ledger's sessions (as a restart does): the next log() and read
    work at once, on new connections (the pooled ones are seen closed at checkout, with no
    round trip, so an idle check costs nothing on the busy path)."""
    url, _ = database
    app = f"pl_gone_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with Ledger(tagged(url, app)) as led:
            led.log("M", "T", sharpe=1.0)
            led.history(ticker="T")
            for round_ in range(3):
                _terminate(app, admin)
                led.log("M", "T", sharpe=2.0 + round_)
                assert len(led.history(ticker="T")) == 2 + round_
            assert led.best("T")["best_sharpe"]["value"] == 4.0
    finally:
        admin.dispose()


def _recomputed_best(led: Ledger) -> dict[tuple[str, str], float]:
    hist = led.history()
    out = {}
    for ticker, grp in hist.groupby("ticker"):
        for metric, higher in (("sharpe", True), ("mse", False), ("drawdown", True), ("win_rate", True)):
            out[(ticker, metric)] = grp[metric].max() if higher else grp[metric].min()
    return out


def _run_team(url: str, database: str, procs: int, count: int, tmp: Path,
              before_go: Callable[[], None] = lambda: None) -> tuple[Sampler, list[Any]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("PERFLEDGER_PG_CONNECTIONS", None)
    go = tmp / "go"
    workers = []
    with Sampler(database) as seen:
        for w in range(procs):
            workers.append(subprocess.Popen(
                [sys.executable, str(WORKER), tagged(url, f"pl_team_{w}"), f"w{w}", str(count),
                 str(tmp / f"ready{w}"), str(go)], env=env, stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 300
        while not all((tmp / f"ready{w}").exists() for w in range(procs)):
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in workers), [p.stderr.read() for p in workers if p.poll()]
            time.sleep(0.05)
        before_go()
        go.touch()
        results = [(p.wait(timeout=900), p.stderr.read()) for p in workers]
    return seen, results


@pytest.mark.slow
def test_32_processes_x_100_logs_at_once(database: tuple[str, str], tmp_path: Path) -> None:
    """32 research processes, each a Ledger that reads and writes, log 100 records each at
    once against the server's default max_connections = 100: every record stored once, no
    error (no "too many connections"), best() equal to a recomputation from history, and no
    process ever held more than 2 server connections."""
    url, name = database
    with sa.create_engine(PG_ADMIN_URL).connect() as conn:
        assert int(conn.exec_driver_sql("SHOW max_connections").scalar()) <= 100
    Ledger(url).close()  # the schema exists, as after a team's first user
    seen, results = _run_team(url, name, 32, 100, tmp_path)
    assert [err for code, err in results if code != 0] == []
    assert all(code == 0 for code, _ in results)
    team = {k: v for k, v in seen.most.items() if k.startswith("pl_team_")}
    assert len(team) == 32 and max(team.values()) <= 2, team
    with Ledger(url) as led:
        hist = led.history()
        assert len(hist) == 3200
        assert sorted(hist["notes"]) == sorted(f"w{w}-{i}" for w in range(32) for i in range(100))
        best = led.best()
        for (ticker, metric), want in _recomputed_best(led).items():
            assert best[ticker][f"best_{metric}"]["value"] == want, (ticker, metric)
