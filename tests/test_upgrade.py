"""A ledger written by an earlier release always opens, reads the same, and keeps working.

The fixtures were written through each release's public API (tests/fixtures/make_fixtures.py):
release 59663d5 (schema v1) and release 68dc16b (schema v5); every later schema change must
pass these, on both engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import assert_labels_match_records, label_text
from upgrade_fixtures import (
    EXPECTED_BY_VERSION,
    VERSIONS,
    as_json,
    copy_sqlite,
    restored_postgres,
    schema_version,
)

from perfledger import Ledger
from perfledger.store.migrations import current_version


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def EXPECTED(version: str) -> dict[str, Any]:
    return EXPECTED_BY_VERSION[version]


@pytest.fixture(params=["sqlite", "postgres"])
def old_location(request: pytest.FixtureRequest, tmp_path: Path, version: str) -> Any:
    """A ledger written by an earlier release (each of VERSIONS), on each engine."""
    if request.param == "sqlite":
        yield copy_sqlite(tmp_path, version)
    else:
        from conftest import PG_ADMIN_URL, _server_or_skip

        _server_or_skip()
        with restored_postgres(PG_ADMIN_URL, version) as url:
            yield url


def _schema(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    insp = sa.inspect(engine)
    out = {
        t: (
            sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)),
            sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)),
            sorted(insp.get_pk_constraint(t)["constrained_columns"]),
        )
        for t in insp.get_table_names() if t.startswith("pl_")
    }
    engine.dispose()
    return out


def test_an_old_ledger_opens_and_reads_exactly_as_its_release_wrote_it(old_location: Any,
                                                                     EXPECTED: dict[str, Any]) -> None:
    with Ledger(old_location) as led:
        assert as_json(led.records()) == EXPECTED["records"]
        assert as_json(led.best()) == EXPECTED["best"]
        assert led.metric_directions() == EXPECTED["metric_directions"]
        stats = led.stats()
        stats.pop("state")
        assert stats.pop("cleared") == 0  # schema v6: records a clear kept (none yet)
        assert stats == EXPECTED["stats"]
        assert led.tickers() == EXPECTED["tickers"]
        assert led.models() == EXPECTED["models"]
        assert {t: led.models(t) for t in led.tickers()} == EXPECTED["models_by_ticker"]
        url = led.url.render_as_string(hide_password=False)
    assert schema_version(url) == current_version()


def test_after_the_upgrade_new_logs_work_and_a_second_open_changes_nothing(
    old_location: Any, EXPECTED: dict[str, Any]
) -> None:
    with Ledger(old_location) as led:
        led.log("Upgraded_v2", "AAPL", sharpe=9.5, metrics={"sortino": 1.0}, params={"max_depth": 6},
                tags={"run": "after-upgrade"})
        assert led.best("AAPL")["best_sharpe"]["model"] == "Upgraded_v2"
        url = led.url.render_as_string(hide_password=False)
        before = as_json(led.records())
        schema = _schema(url)
    with Ledger(old_location) as again:
        assert as_json(again.records()) == before
        assert len(before) == len(EXPECTED["records"]) + 1
        assert before[-1]["params"] == {"max_depth": 6} and before[-1]["tags"] == {"run": "after-upgrade"}
    assert _schema(url) == schema


def test_an_upgraded_schema_is_the_schema_a_new_ledger_gets(old_location: Any, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    with Ledger(old_location) as led:
        upgraded = led.url.render_as_string(hide_password=False)
    if led.url.get_backend_name() == "sqlite":
        fresh = Ledger(tmp_path / "fresh")
        fresh.clear()  # the first write creates the schema (opening creates nothing)
    else:
        fresh = request.getfixturevalue("pg_ledger")
    assert _schema(upgraded) == _schema(fresh.url.render_as_string(hide_password=False))


def test_an_upgraded_ledger_clears_and_restores_every_old_record(old_location: Any,
                                                                 EXPECTED: dict[str, Any]) -> None:
    """Schema v6 keeps what a clear takes out: an old ledger's records come back exactly."""
    with Ledger(old_location) as led:
        led.clear()
        assert led.history().empty and led.best() == {}
        assert led.stats()["cleared"] == len(EXPECTED["records"])
    with Ledger(old_location) as led:
        assert led.restore_cleared() == len(EXPECTED["records"])
        key = lambda r: (r["timestamp"], r["ticker"], r["model_name"], r["notes"])  # noqa: E731
        assert sorted(as_json(led.records()), key=key) == sorted(EXPECTED["records"], key=key)
        assert as_json(led.best()) == EXPECTED["best"]
        assert led.stats()["cleared"] == 0


def test_the_old_mirrors_keep_every_record(tmp_path: Path, version: str, EXPECTED: dict[str, Any]) -> None:
    directory = copy_sqlite(tmp_path, version)
    Ledger(directory).close()
    mirrored = json.loads((directory / "model_performance.json").read_text(encoding="utf-8"))
    key = lambda r: (r["timestamp"], r["ticker"], r["model_name"])  # noqa: E731
    expected = {key(r): r for r in EXPECTED["records"]}
    assert len(mirrored) == len(expected)
    for rec in mirrored:
        want = expected[key(rec)]
        assert {k: v for k, v in rec.items() if k not in ("metrics", "params", "tags")} == {
            k: v for k, v in want.items() if k not in ("metrics", "params", "tags")}
        assert rec.get("params", {}) == want["params"] and rec.get("tags", {}) == want["tags"]
    assert json.loads((directory / "best_models.json").read_text(encoding="utf-8")) == EXPECTED["best"]


def test_the_upgrade_labels_every_old_record(old_location: Any) -> None:
    """Schema v4 fills pl_labels (and SQLite's pl_record_labels) from the records already
    stored: exactly what logging them today would have stored."""
    with Ledger(old_location) as led:
        url = led.url.render_as_string(hide_password=False)
    assert_labels_match_records(url)


def _holds(d: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(k in d and label_text(d[k]) == label_text(v) for k, v in wanted.items())


@pytest.mark.parametrize("kw", [
    {"tags": {"run": "nightly"}},
    {"params": {"max_depth": 6}},
    {"params": {"max_depth": 9}, "tags": {"run": "sweep-3"}},
    {"ticker": "AAPL", "params": {"max_depth": 6}, "tags": {"run": "nightly"}},
    {"params": {"layers": (64, 32)}},
    {"params": {"alpha": 1}},  # stored as 1.0
    {"params": {"big_int": 9007199254740993}},
    {"params": {"seed": None, "early_stop": True}},
    {"tags": {"note": 'a=b, c="d"'}},
], ids=str)
def test_the_old_records_are_found_by_params_and_tags(
    old_location: Any, kw: dict[str, Any], EXPECTED: dict[str, Any]
) -> None:
    ticker = kw.get("ticker")
    want = [r for r in EXPECTED["records"] if (ticker is None or r["ticker"] == ticker)
            and _holds(r["params"], kw.get("params", {})) and _holds(r["tags"], kw.get("tags", {}))]
    assert want
    with Ledger(old_location) as led:
        assert as_json(led.records(**kw)) == want


def test_the_old_records_are_ranked_by_a_param(old_location: Any, EXPECTED: dict[str, Any]) -> None:
    counts: dict[tuple[str, int], int] = {}
    for r in EXPECTED["records"]:
        if "max_depth" in r["params"]:
            key = (r["ticker"], r["params"]["max_depth"])
            counts[key] = counts.get(key, 0) + 1
    with Ledger(old_location) as led:
        board = led.leaderboard(by="param:max_depth")
        assert led.params()["max_depth"] == [3, 6, 9]
        assert "nightly" in led.tags()["run"]
    got = {(t, v): n for t, v, n in board[["ticker", "max_depth", "records"]].itertuples(index=False)}
    assert got == counts


def test_a_copy_of_a_v5_ledger_opens_without_adopting_or_rewriting(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Release 68dc16b kept each mirror's content CRC: a copy of its directory (new inodes and
    mtimes, as every checkout of the fixture has) is recognised by content, in the state shape
    that release saved, and its files are left byte for byte."""
    directory = copy_sqlite(tmp_path, "v5")
    before = {p.name: p.read_bytes() for p in directory.iterdir() if p.name != "perfledger.db"}
    with caplog.at_level("INFO", logger="perfledger"), Ledger(directory) as led:
        assert len(led.history()) == len(EXPECTED_BY_VERSION["v5"]["records"])
    assert not [r for r in caplog.records if "adopted" in r.getMessage() or "rebuilding" in r.getMessage()]
    after = {p.name: p.read_bytes() for p in directory.iterdir() if p.name in before}
    assert after == before


def test_an_upgraded_ledger_keeps_backtest_returns_through_clear_and_restore(
    old_location: Any, EXPECTED: dict[str, Any]
) -> None:
    """Schema v7 keeps a backtest's return series: an old ledger, upgraded, keeps one exactly
    (old records have none), and a clear and restore carry it with its record."""
    import numpy as np
    import pandas as pd

    r = pd.Series(np.random.default_rng(7).normal(0, 0.01, 50),
                  index=pd.bdate_range("2021-01-04", periods=50, tz="UTC"))
    with Ledger(old_location) as led:
        assert schema_version(led.url.render_as_string(hide_password=False)) == 7
        led.log_backtest("Kept", "AAPL", r)
        hist = led.history(include_meta=True)
        assert int(hist["has_returns"].sum()) == 1 and len(hist) == len(EXPECTED["records"]) + 1
        led.clear()
        assert led.restore_cleared() == len(EXPECTED["records"]) + 1
        (rid,) = led.returns_frame().columns
        back = led.returns(rid)
    assert back.to_numpy().tobytes() == r.to_numpy().tobytes() and (back.index == r.index).all()
