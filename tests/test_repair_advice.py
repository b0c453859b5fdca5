"""``perfledger repair`` never sends people in a loop, and says what it did once (issue 20's
review, item 3).

A ledger whose ``pl_records`` lost a column was told "run `perfledger repair`", and repair
refused it: the values of that column are nowhere else in the database. The open and the
repair now say the same thing, and never point at ``repair`` for what it cannot fix: the
engine's backups (a ``.bak`` file only beside an embedded ledger, never on PostgreSQL) and the
exact ``import`` command, which works. What repair does fix, it prints once.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from cli_runner import run_cli
from test_schema_damage import _fill, _sql, store  # noqa: F401 - the fixture of both engines

from perfledger import Ledger, StorageError


def _one_error(result: object) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert result.returncode == 2 and len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    return lines[0]


@pytest.mark.parametrize(("table", "column"), [("pl_records", "sharpe"), ("pl_records", "notes"),
                                               ("pl_extra", "value")])
def test_a_recorded_column_lost_is_never_sent_to_repair(
    store: tuple[str, str], table: str, column: str  # noqa: F811
) -> None:
    where, url = store
    _fill(where)
    _sql(url, f"ALTER TABLE {table} DROP COLUMN {column}")
    opened = _one_error(run_cli("--store", where, "history"))
    repaired = _one_error(run_cli("--store", where, "repair"))
    for line in (opened, repaired):
        assert f"{table}.{column}" in line or f"{table} lost its column(s) {column}" in line, line
        assert "run `perfledger repair`" not in line and "cannot" in line, line
        assert "import" in line, line
        if url.startswith("postgresql"):
            assert ".bak" not in line and "pg_restore" in line, line
        else:
            assert "perfledger.db.v<N>.bak" in line, line
    with pytest.raises(StorageError):
        Ledger.repair(where)


def test_the_advised_import_works(tmp_path: Path) -> None:
    """The SQLite line's command, run as printed, brings the records back from the mirror."""
    where = str(tmp_path / "ledger")
    _fill(where)
    _sql(f"sqlite:///{tmp_path / 'ledger' / 'perfledger.db'}", "ALTER TABLE pl_records DROP COLUMN sharpe")
    line = _one_error(run_cli("--store", where, "leaderboard"))
    command = re.search(r"`(perfledger --store \S+ import \S+)`", line)
    assert command is not None, line
    args = shlex.split(command.group(1))[1:]
    result = run_cli(*args)
    assert result.returncode == 0 and "60 imported" in result.stdout, result.stdout + result.stderr
    with Ledger(args[1]) as led:
        assert len(led.history()) == 60 and led.history()["sharpe"].notna().any()


def test_repair_says_each_thing_it_did_once(store: tuple[str, str]) -> None:  # noqa: F811
    where, url = store
    _fill(where)
    _sql(url, "DROP TABLE pl_summary")
    result = run_cli("--store", where, "repair")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("recreated pl_summary") == 1, output
    assert output.count("recomputed the derived tables") == 1, output
