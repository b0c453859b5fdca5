"""A PostgreSQL URL naming a database the server does not have (issue 20's review, item 4).

The server answers, so "cannot be reached" is wrong and sends people looking at networks
and firewalls: the line names the database and the server, and the ``createdb`` that makes
it. Told apart at the store boundary from the server's catalogue (libpq gives the server's
SQLSTATE 3D000 only as text at connection time, and text is never matched), on the real
server; a server that is not there is still "cannot be reached".
"""

from __future__ import annotations

import socket
import uuid

import pytest
import sqlalchemy as sa
from cli_runner import run_cli
from conftest import PG_ADMIN_URL

from perfledger import Ledger, StoreConnectionError


def _url(database: str, port: int | None = None) -> str:
    url = sa.make_url(PG_ADMIN_URL).set(database=database)
    if port is not None:
        url = url.set(port=port)
    return url.render_as_string(hide_password=False)


def _exists(name: str) -> bool:
    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            return found.first() is not None
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def missing(pg_server_url: str) -> str:  # pg_server_url: the server is there (or the test skips)
    name = f"perfledger_absent_{uuid.uuid4().hex[:10]}"
    assert not _exists(name)
    return name


def test_the_library_names_the_database_and_the_server(missing: str) -> None:
    url = sa.make_url(_url(missing))
    with pytest.raises(StoreConnectionError) as info:
        Ledger(_url(missing)).history()
    message = str(info.value)
    assert f"database {missing!r} does not exist on {url.host}:{url.port or 5432}" in message, message
    assert f"createdb -h {url.host} -p {url.port or 5432}" in message and missing in message, message
    assert "cannot be reached" not in message, message
    assert not _exists(missing)


@pytest.mark.parametrize("args", [["tickers"], ["history"], ["log", "--model", "M", "--ticker", "T"],
                                  ["stats"], ["repair"]])
def test_the_cli_says_so_in_one_line(missing: str, args: list[str]) -> None:
    result = run_cli("--store", _url(missing), *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert f"database {missing!r} does not exist on" in lines[0] and "createdb" in lines[0], lines
    assert not _exists(missing)


def test_a_database_dropped_under_an_open_ledger(pg_server_url: str) -> None:
    name = sa.make_url(pg_server_url).database
    led = Ledger(pg_server_url)
    try:
        led.log("M", "T", sharpe=1.0)
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()
        with pytest.raises(StoreConnectionError, match=f"database '{name}' does not exist"):
            led.log("M", "T", sharpe=2.0)
    finally:
        led.close()
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # the fixture drops it again afterwards
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()


def test_a_server_that_is_not_there_is_still_unreachable(pg_server_url: str) -> None:
    result = run_cli("--store", _url("whatever", port=_free_port()), "tickers")
    assert result.returncode == 2 and "cannot be reached" in result.stderr, result.stderr
    assert "does not exist" not in result.stderr
