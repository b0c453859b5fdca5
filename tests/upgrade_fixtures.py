"""Ledgers written by earlier releases, opened by today's code: see tests/fixtures/.

``v1``: release 59663d5 (schema v1, before migrations existed); ``v5``: release 68dc16b (schema
v5, the last before the store redesign and the versioned mirror state). Same data in both."""

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
#: The schema versions of the releases whose ledgers are kept as fixtures.
VERSIONS = ("v1", "v5")
EXPECTED_BY_VERSION: dict[str, dict[str, Any]] = {
    v: json.loads((FIXTURES / f"{v}_expected.json").read_text(encoding="utf-8")) for v in VERSIONS
}
EXPECTED = EXPECTED_BY_VERSION["v1"]


def copy_sqlite(tmp_path: Path, version: str) -> Path:
    """A fixture's ledger directory, copied (opening a ledger writes to it)."""
    target = tmp_path / f"{version}_ledger"
    shutil.copytree(FIXTURES / f"{version}_sqlite", target)
    return target


def copy_v1_sqlite(tmp_path: Path) -> Path:
    return copy_sqlite(tmp_path, "v1")


def restored_v1_postgres(admin_url: str) -> Any:
    return restored_postgres(admin_url, "v1")


@contextmanager
def restored_postgres(admin_url: str, version: str) -> Iterator[str]:
    """A fixture's PostgreSQL dump restored into a fresh database; dropped afterwards."""
    name = f"perfledger_{version}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name)
    try:
        libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
        dump = str(FIXTURES / f"{version}_postgres.sql")
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
    """Through a JSON round trip, the way the fixtures' expected reads were written."""
    return json.loads(json.dumps(value))


def schema_version(url: str) -> int:
    """The version stamped in a store, read directly (not through perfledger)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        v = conn.execute(sa.text("SELECT value FROM pl_meta WHERE key = 'schema_version'")).scalar()
    engine.dispose()
    return int(v)
