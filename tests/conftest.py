"""Shared fixtures: a fresh ledger per test, and a throw-away PostgreSQL database per run."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfledger import Ledger

PG_ADMIN_URL = os.environ.get("PERFLEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    return tmp_path / "ledger"


@pytest.fixture
def ledger(ledger_dir: Path) -> Iterator[Ledger]:
    led = Ledger(ledger_dir)
    yield led
    led.close()


def _server_or_skip() -> None:
    """Off CI a missing server skips with a reason; in CI it is a failure, never a skip."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # any connection problem
        msg = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(msg)


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "perfledger_test") -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server (its URL), dropped afterwards with
    every connection to it; skips (fails in CI) when the server is not reachable. Every test
    that needs a database of its own makes it here."""
    import sqlalchemy as sa

    _server_or_skip()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A throw-away database for this test run, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


def _reset(url: str) -> None:
    """Records, registered metrics and cleared records gone: each test starts from an empty ledger."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM pl_metric_defs")
        for table in ("pl_cleared_extra", "pl_cleared_returns", "pl_cleared_records", "pl_cleared"):  # kept
            conn.exec_driver_sql(f"DELETE FROM {table}")
    engine.dispose()


@pytest.fixture
def pg_ledger(pg_server_url: str) -> Iterator[Ledger]:
    led = Ledger(pg_server_url)
    led.clear()
    _reset(pg_server_url)
    yield led
    led.clear()
    led.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger(request: pytest.FixtureRequest, ledger_dir: Path) -> Iterator[Ledger]:
    """The same test on the embedded store and on PostgreSQL."""
    if request.param == "sqlite":
        led = Ledger(ledger_dir)
        yield led
        led.close()
    else:
        yield request.getfixturevalue("pg_ledger")


@pytest.fixture(autouse=True)
def _no_dashboard_prefetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page reads no ticker ahead on a background thread (``perfledger.dashboard.readahead.
    prefetch``): a test's reads and connections are its own (test_dashboard_reads.py turns
    it on)."""
    monkeypatch.setenv("PERFLEDGER_DASHBOARD_PREFETCH", "0")


@pytest.fixture(autouse=True)
def _dashboard_on_loopback() -> Iterator[None]:
    """AppTest runs the page as a researcher runs it on their own machine: Streamlit bound to
    127.0.0.1 (the repository's .streamlit/config.toml), whatever directory pytest started in.
    Tests of a page served beyond loopback set ``server.address`` themselves."""
    import sys

    config = sys.modules.get("streamlit.config")
    if config is None:
        yield
        return
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    try:
        yield
    finally:
        config.set_option("server.address", before)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ledger directory of this test only, made the dashboard's store
    (``$PERFLEDGER_URL``; never read-only). A test file that needs another store defines
    its own ``store``, which takes precedence."""
    loc = tmp_path / "ledger"
    monkeypatch.setenv("PERFLEDGER_URL", str(loc))
    monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
    return loc
