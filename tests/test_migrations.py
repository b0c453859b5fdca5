"""The migration mechanism: ordered, one transaction, a backup on SQLite, refuses newer
stores, a no-op when current, one upgrade among concurrent openers. The steps here are
synthetic (each real schema change brings its own upgrade test from the v1 fixtures)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from upgrade_fixtures import schema_version

from perfledger import Ledger, SchemaVersionError
from perfledger.store import migrations
from perfledger.store.migrations import Migration, current_version


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


def _steps(calls: list[int], fail_at: int | None = None) -> list[Migration]:
    def make(version: int) -> Migration:
        def upgrade(conn: sa.Connection) -> None:
            calls.append(version)
            conn.exec_driver_sql(f"CREATE TABLE pl_synthetic_v{version} (x INTEGER)")
            if version == fail_at:
                raise RuntimeError(f"step {version} failed")
        return Migration(version, f"synthetic step {version}", upgrade)
    base = current_version()
    return [make(base + 1), make(base + 2)]


def _release(monkeypatch: pytest.MonkeyPatch, steps: list[Migration]) -> None:
    """Make this process a release whose migrations are ``steps``: the migrations list and
    the version the SQLite single-record path opens without them (a test in
    test_direct_sqlite.py keeps the two equal in the real release)."""
    from perfledger.store.sqlite import statements

    monkeypatch.setattr(migrations, "MIGRATIONS", steps)
    monkeypatch.setattr(statements, "SCHEMA_VERSION", max(m.version for m in steps))


def _url(led: Ledger) -> str:
    return led.url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store written at the current version, which the tests then call 'old'."""
    sqlite = request.param == "sqlite"
    led = Ledger(tmp_path / "ledger") if sqlite else request.getfixturevalue("pg_ledger")
    led.log("M", "AAPL", sharpe=1.5, metrics={"sortino": 2.0}, params={"lr": 0.1}, tags={"run": "a"})
    url = _url(led)
    led.close()
    # Read now: at teardown a test's patched MIGRATIONS may still be in place (the
    # monkeypatch of an autouse fixture is undone after this fixture's teardown).
    base = current_version()
    yield url
    if request.param == "postgres":
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for v in range(base + 1, base + 3):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS pl_synthetic_v{v}")
            conn.execute(sa.text("DELETE FROM pl_meta WHERE key LIKE 'ran-%'"))
            conn.exec_driver_sql(f"UPDATE pl_meta SET value = '{base}' WHERE key = 'schema_version'")
        engine.dispose()


def test_steps_run_in_order_once_and_keep_every_record(
    old_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = current_version()
    calls: list[int] = []
    _release(monkeypatch, [*migrations.MIGRATIONS, *_steps(calls)])
    led = Ledger(old_store)
    assert calls == [base + 1, base + 2]
    assert schema_version(old_store) == base + 2
    assert {f"pl_synthetic_v{base + 1}", f"pl_synthetic_v{base + 2}"} <= _tables(old_store)
    rec = led.records()[0]
    assert (rec["sharpe"], rec["metrics"], rec["params"], rec["tags"]) == (1.5, {"sortino": 2.0}, {"lr": 0.1},
                                                                          {"run": "a"})
    led.log("M", "AAPL", sharpe=2.0)
    led.close()
    Ledger(old_store).close()  # a second open is a no-op
    assert calls == [base + 1, base + 2]


def test_a_failing_step_leaves_the_store_as_it_was(old_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = current_version()
    calls: list[int] = []
    _release(monkeypatch, [*migrations.MIGRATIONS, *_steps(calls, fail_at=base + 2)])
    with pytest.raises(RuntimeError, match="failed"):
        Ledger(old_store)
    assert calls == [base + 1, base + 2]
    assert schema_version(old_store) == base
    assert not any(t.startswith("pl_synthetic") for t in _tables(old_store))  # step 1 rolled back too
    _release(monkeypatch, migrations.MIGRATIONS[:-2])
    with Ledger(old_store) as led:
        assert len(led.history()) == 1


def test_sqlite_upgrade_keeps_a_backup_of_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    led = Ledger(tmp_path / "l")
    led.log("M", "AAPL", sharpe=1.0)
    led.close()
    base = current_version()
    _release(monkeypatch, [*migrations.MIGRATIONS, *_steps([])])
    Ledger(tmp_path / "l").close()
    backup = tmp_path / "l" / f"perfledger.db.v{base}.bak"
    con = sqlite3.connect(backup)
    assert con.execute("SELECT value FROM pl_meta WHERE key='schema_version'").fetchone()[0] == str(base)
    assert con.execute("SELECT COUNT(*) FROM pl_records").fetchone()[0] == 1
    assert con.execute("SELECT name FROM sqlite_master WHERE name LIKE 'pl_synthetic%'").fetchall() == []
    con.close()


def test_a_newer_store_is_refused_naming_both_versions(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l")
    led.clear()  # the first write creates the schema (opening creates nothing)
    led.close()
    con = sqlite3.connect(tmp_path / "l" / "perfledger.db")
    con.execute("UPDATE pl_meta SET value = '42' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with pytest.raises(SchemaVersionError, match=rf"v42.*up to v{current_version()}"):
        Ledger(tmp_path / "l")


WORKER = textwrap.dedent("""
    import sys, time
    import sqlalchemy as sa
    from perfledger import Ledger
    from perfledger.store import migrations
    from perfledger.store.migrations import Migration

    def upgrade(conn):
        conn.exec_driver_sql("INSERT INTO pl_meta (key, value) VALUES ('ran-' || :pid, 'x')"
                             .replace(":pid", repr(str(__import__('os').getpid()))))
        time.sleep(0.5)

    migrations.MIGRATIONS = [*migrations.MIGRATIONS,
                             Migration(migrations.current_version() + 1, "slow", upgrade)]
    Ledger(sys.argv[1]).close()
""")


@pytest.mark.slow
def test_concurrent_openers_upgrade_once(old_store: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, old_store]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    engine = sa.create_engine(old_store)
    with engine.connect() as conn:
        ran = conn.execute(sa.text("SELECT COUNT(*) FROM pl_meta WHERE key LIKE 'ran-%'")).scalar()
    engine.dispose()
    assert ran == 1


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_schema_created_between_the_version_and_the_catalogue_reads_is_not_damaged(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """An opener reads the version, then the catalogue, without the lock; another opener
    committing the schema in between made a whole ledger look damaged (eight first syncs at
    once into an empty PostgreSQL database: one was refused with "run perfledger repair").
    The opener looks again, under the lock, before refusing."""
    url = str(tmp_path / "led") if engine == "sqlite" else request.getfixturevalue("pg_server_url")
    with Ledger(url) as led:
        led.log("M", "T", sharpe=1.0)  # the whole schema, committed
    real, calls = migrations.read_version, []

    def version_read_before_the_other_commit(conn: sa.Connection) -> int | None:
        calls.append(1)
        return None if len(calls) == 1 else real(conn)

    monkeypatch.setattr(migrations, "read_version", version_read_before_the_other_commit)
    with Ledger(url) as led:
        assert len(led.history()) == 1
    assert len(calls) >= 2
