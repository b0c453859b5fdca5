"""A number in params is spelled the way PostgreSQL's JSONB keeps it, on both engines
(issue 20, item 7).

JSONB keeps ``1e+23`` as the numeric 100000000000000000000000 and gives it back as that
integer; the canonical spelling (``records.labels.number_text``) is that integer too, so a
filter finds the record on SQLite and on PostgreSQL alike, and a copy between them keeps it.
Every float class: whole floats past 2**53, 1e200, 1e308, subnormals, -0.0, ordinary ones.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from cli_runner import run_cli

from perfledger import Ledger
from perfledger.records.labels import canonical

VALUES = [1e23, -1e23, 1e200, 1e308, 2.0**60, float(2**53 + 2), 1e16, 6.0, -0.0, 0.0, 0.1, 1.5e-7,
          5e-324, 1e-310, 2.2250738585072014e-308, 123.456, 9007199254740993.0]


def test_whole_floats_are_spelled_as_the_decimal_json_writes() -> None:
    """Independent: the exact decimal of json.dumps' text, which is what JSONB keeps."""
    for v in VALUES:
        if v.is_integer():
            expected = "0" if v == 0 else format(Decimal(json.dumps(v)), "f").split(".")[0]
            assert canonical(v) == expected, v
            assert canonical(v) == canonical(int(Decimal(json.dumps(v))))  # as JSONB gives it back
        else:
            assert canonical(v) == repr(v)
    assert canonical({"a": [1e23, 0.5]}) == '{"a":[100000000000000000000000,0.5]}'


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_param_is_found_by_its_own_value_on_both_engines(any_ledger: Ledger, value: float) -> None:
    any_ledger.log("M", "T", sharpe=1.0, params={"n": value, "list": [value, 1]})
    any_ledger.log("M", "T", sharpe=2.0, params={"n": 7})
    for filt in ({"n": value}, {"list": (value, 1)}):
        found = any_ledger.history(params=filt)
        assert found["sharpe"].tolist() == [1.0], (value, filt)
    assert any_ledger.count(params={"n": value}) == 1
    board = any_ledger.leaderboard("T", by="param:n")
    assert canonical(value) in {canonical(v) for v in board["n"]}


@pytest.mark.parametrize("direction", ["sqlite->postgres", "postgres->sqlite"])
def test_a_copy_keeps_every_float_findable(tmp_path: Path, pg_ledger: Ledger, direction: str) -> None:
    with Ledger(tmp_path / "l") as lite:
        src, dst = (lite, pg_ledger) if direction == "sqlite->postgres" else (pg_ledger, lite)
        for i, v in enumerate(VALUES):
            src.log(f"M{i}", "T", sharpe=1.0, params={"n": v})
        src.copy_to(dst)
        for v in VALUES:  # -0.0 and 0.0 are one JSON value: both found by either
            same = sorted(f"M{j}" for j, w in enumerate(VALUES) if canonical(w) == canonical(v))
            assert sorted(dst.history(params={"n": v})["model_name"]) == same, v
        spelled = {r["model_name"]: canonical(r["params"]["n"]) for r in dst.records()}
        assert spelled == {f"M{i}": canonical(v) for i, v in enumerate(VALUES)}


def test_the_command_line_finds_1e23_on_both_engines(tmp_path: Path, pg_server_url: str,
                                                    pg_ledger: Ledger) -> None:
    for store in (str(tmp_path / "l"), pg_server_url):
        logged = run_cli("--store", store, "log", "--model", "M", "--ticker", "T", "--param", "n=1e23")
        assert logged.returncode == 0, logged.stderr
        out = run_cli("--store", store, "history", "--param", "n=1e23", "--format", "json")
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)) == 1, (store, out.stdout)
