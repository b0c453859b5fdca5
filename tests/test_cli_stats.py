"""``perfledger stats`` (what docs/deployment.md tells users to run) and ``perfledger --version``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from cli_runner import run_cli

from perfledger import Ledger
from perfledger.store.migrations import current_version


def _log(store: str, n: int) -> None:
    with Ledger(store) as led:
        led.log_many([{"model_name": f"M{i % 3}", "ticker": ("AAPL", "MSFT")[i % 2], "sharpe": i / 10,
                       "timestamp": f"2024-01-{i + 1:02d}T00:00:00Z"} for i in range(n)])


def test_stats_says_what_the_ledger_holds(tmp_path: Path) -> None:
    store = str(tmp_path / "ledger")
    _log(store, 10)
    with Ledger(store) as led:
        led.clear()
    _log(store, 4)
    r = run_cli("--store", store, "stats", "--format", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    files = {p.name: p.stat().st_size for p in Path(store).iterdir() if p.is_file()}
    assert info["records"] == 4 and info["tickers"] == 2 and info["models"] == 3
    assert info["cleared"] == 10 and info["schema_version"] == current_version()
    assert info["last_timestamp"] == "2024-01-04T00:00:00.000000+00:00"
    assert info["store"] == store
    # The mirrors' sizes as on disk (the database's write-ahead log comes and goes with its
    # connections, so only its presence is checked).
    for name in ("model_performance.json", "model_performance.csv", "best_models.json"):
        assert info["files"][name] == files[name] > 0
    assert "perfledger.db" in info["files"] and info["total_bytes"] == sum(info["files"].values())
    table = run_cli("--store", store, "stats")
    assert table.returncode == 0
    rows = {line[:28].strip(): line[28:].strip() for line in table.stdout.splitlines()}
    assert rows["records"] == "4" and rows["cleared (kept, restorable)"] == "10"
    assert rows["schema version"] == str(current_version()) and rows["store"] == store
    assert rows["file model_performance.json"] == str(files["model_performance.json"])
    csv_out = run_cli("--store", store, "stats", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "field,value" and "records,4" in csv_out


def test_stats_on_postgresql_lists_no_files(pg_ledger: Ledger) -> None:
    pg_ledger.log("M", "AAPL", sharpe=1.0)
    r = run_cli("--store", pg_ledger.url.render_as_string(hide_password=False), "stats", "--format", "json")
    info = json.loads(r.stdout)
    assert info["records"] == 1 and "files" not in info and info["schema_version"] == current_version()
    assert info["store"] == pg_ledger.location.describe()


def test_version_prints_the_installed_version_without_heavy_imports() -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['perfledger', '--version']\n"
        "try:\n"
        "    runpy.run_module('perfledger', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "heavy = sorted(m for m in ('pandas', 'sqlalchemy', 'pyarrow', 'numpy') if m in sys.modules)\n"
        "print('EXIT', code, 'HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PERFLEDGER_URL": "/nonexistent/never-opened"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"perfledger {version('perfledger')}"
    assert lines[1] == "EXIT 0 HEAVY []"
    assert not Path("/nonexistent/never-opened").exists()
