"""Ledgers written by release 59663d5 (schema v1), opened by today's code: see tests/fixtures/."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "v1_expected.json").read_text(encoding="utf-8"))


def copy_v1_sqlite(tmp_path: Path) -> Path:
    """The v1 ledger directory, copied (opening a ledger writes to it)."""
    target = tmp_path / "v1_ledger"
    shutil.copytree(FIXTURES / "v1_sqlite", target)
    return target


@contextmanager
def restored_v1_postgres(admin_url: str) -> Iterator[str]:
    """The v1 PostgreSQL dump restored into a fresh database; dropped afterwards."""
    name = f"perfledger_v1_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name)
    try:
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        dump = str(FIXTURES / "v1_postgres.sql")
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq, "-f", dump],
                       check=True, capture_output=True, text=True)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


def as_json(value: Any) -> Any:
    """Through a JSON round trip, the way v1_expected.json was written."""
    return json.loads(json.dumps(value))


def schema_version(url: str) -> int:
    """The version stamped in a store, read directly (not through perfledger)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        v = conn.execute(sa.text("SELECT value FROM pl_meta WHERE key = 'schema_version'")).scalar()
    engine.dispose()
    return int(v)
