"""Imports are idempotent also when they run at once (issue 9, item 5).

Duplicate detection and insert were separate transactions: four concurrent imports of one
file stored it four times. Imported rows' content keys are now claimed in the insert's
transaction under a uniqueness rule the database enforces (``pl_import_keys``, schema v3).
Real ``perfledger import`` processes at once (what is tested is processes racing each other,
so they cannot run in-process), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import process_env

from perfledger import Ledger

pytestmark = pytest.mark.slow


def write_file(path: Path, start: int, stop: int) -> Path:
    rows = [{"timestamp": f"2024-03-01T00:00:00.{i:06d}+00:00", "ticker": f"T{i % 4}",
             "model_name": f"M{i % 5}", "sharpe": i / 100, "mse": 0.5, "notes": f"r{i}",
             "metrics": {"ic": i / 1000} if i % 2 else {}, "params": {"i": i}}
            for i in range(start, stop)]
    path.write_text(json.dumps(rows))
    return path


def import_at_once(location: str, files: list[Path]) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "perfledger", "--store", location, "import", str(f)],
                              env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for f in files]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, out + err


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        loc = str(tmp_path / "ledger")
        Ledger(loc).close()
        return loc
    request.getfixturevalue("pg_ledger")  # an empty PostgreSQL ledger
    return request.getfixturevalue("pg_server_url")


def test_one_file_imported_by_four_processes_is_stored_once(location: str, tmp_path: Path) -> None:
    f = write_file(tmp_path / "runs.json", 0, 3000)
    import_at_once(location, [f] * 4)
    with Ledger(location) as led:
        counts = collections.Counter(led.history()["notes"])
        assert len(counts) == 3000 and max(counts.values()) == 1
        assert led.stats()["records"] == 3000
        if led.directory is not None:
            mirrored = json.loads((led.directory / "model_performance.json").read_text())
            assert collections.Counter(r["notes"] for r in mirrored) == counts


def test_two_overlapping_files_at_once_store_their_exact_union(location: str, tmp_path: Path) -> None:
    a = write_file(tmp_path / "a.json", 0, 2000)
    b = write_file(tmp_path / "b.json", 1000, 3000)
    import_at_once(location, [a, b, a, b])
    with Ledger(location) as led:
        counts = collections.Counter(led.history()["notes"])
        assert set(counts) == {f"r{i}" for i in range(3000)} and max(counts.values()) == 1
        records = led.records(ticker="T1")
        assert all(r["params"] == {"i": int(r["notes"][1:])} for r in records)
