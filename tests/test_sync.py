"""``Ledger.sync`` (issue 21, part 1): a node's ledger into the team store, and back.

Between any two stores (directory <-> PostgreSQL <-> directory): every record arrives whole
(params, tags, custom metrics, registered directions), a second sync adds nothing, records
the target holds from elsewhere are not doubled, the next sync reads only what is new, and
a cleared, restored or replaced source (or a cleared target) falls back to the content check.
The target's best() and leaderboard() are compared with a recomputation from its history.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import normalise_best, recompute_best

from perfledger import Ledger
from perfledger.errors import ValidationError


def fill(led: Ledger, start: int, stop: int, *, prefix: str = "r", ts_base: int = 0) -> list[dict[str, Any]]:
    """Records with every kind of content: custom metrics, params (ints, floats, nested),
    tags, notes; timestamps distinct and deterministic."""
    rows = [{
        "timestamp": f"2025-01-{1 + (i + ts_base) // 86_400 % 28:02d}T{(i // 3600) % 24:02d}:"
                     f"{(i // 60) % 60:02d}:{i % 60:02d}.{i:06d}+00:00",
        "ticker": f"T{i % 3}", "model_name": f"M{i % 4}",
        "sharpe": (i * 37 % 101) / 10 - 5, "mse": (i % 7) / 10, "drawdown": -(i % 5) / 10,
        "notes": f"{prefix}{i}", "ic": (i % 11) / 100 if i % 2 else None,
        "params": {"lr": 0.1 * (i % 3), "depth": i % 5, "grid": {"a": [1, 2.5]}},
        "tags": {"run": f"{prefix}-{i % 2}", "node": prefix},
    } for i in range(start, stop)]
    led.log_many(rows)
    return rows


def content(led: Ledger) -> Counter[Any]:
    """Every record's whole content, as a multiset (independent of ids and order)."""
    def canon(d: dict[str, Any]) -> Any:
        return tuple(sorted((k, repr(v)) for k, v in (d or {}).items()))
    return Counter(
        (r["timestamp"], r["ticker"], r["model_name"], *(repr(r[m]) for m in
         ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")),
         r["notes"], canon(r["metrics"]), canon(r["params"]), canon(r["tags"]))
        for r in led.records()
    )


def assert_derived_exact(led: Ledger) -> None:
    """best() and leaderboard() equal a recomputation from the target's history."""
    hist = led.history()
    assert normalise_best(led.best()) == normalise_best(recompute_best(hist, led.metric_directions()))
    board = led.leaderboard()
    for (ticker, model), rows in hist.groupby(["ticker", "model_name"]):
        got = board[(board["ticker"] == ticker) & (board["model_name"] == model)].iloc[0]
        assert got["records"] == len(rows)
        assert got["sharpe_count"] == rows["sharpe"].count()
        assert got["sharpe_mean"] == pytest.approx(rows["sharpe"].mean())
        assert got["sharpe_max"] == rows["sharpe"].max()
    assert len(board) == hist.groupby(["ticker", "model_name"]).ngroups


@pytest.fixture(params=["dir->dir", "dir->pg", "pg->dir"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Ledger, Ledger]:
    """(source, target) between the two engines, both ways."""
    if request.param == "dir->dir":
        return Ledger(tmp_path / "node"), Ledger(tmp_path / "team")
    pg = request.getfixturevalue("pg_ledger")
    if request.param == "dir->pg":
        return Ledger(tmp_path / "node"), pg
    return pg, Ledger(tmp_path / "laptop")


def test_sync_carries_every_record_whole_and_a_second_sync_adds_nothing(pair: tuple[Ledger, Ledger]) -> None:
    src, dst = pair
    src.register_metric("ic", True)
    fill(src, 0, 600)
    first = src.sync(dst)
    assert (first.new, first.already_there, first.directions) == (600, 0, 1)
    assert content(dst) == content(src)
    assert dst.metric_directions()["ic"] is True
    assert dst.best()["T1"]["best_ic"]["value"] == src.best()["T1"]["best_ic"]["value"]
    assert_derived_exact(dst)
    again = src.sync(dst)
    assert (again.new, again.already_there, again.read) == (0, 600, 0)
    assert again.summary() == "0 new, 600 already there"
    assert content(dst) == content(src)


def test_records_the_target_holds_from_elsewhere_are_not_doubled(
    pair: tuple[Ledger, Ledger], tmp_path: Path
) -> None:
    src, dst = pair
    fill(src, 0, 300)
    fill(dst, 200, 400)  # logged there directly: 100 of them are the source's too (same content)
    other = Ledger(tmp_path / "other")
    fill(other, 250, 350)
    other.sync(dst)  # synced in from a third ledger: keyed, all already there
    result = src.sync(dst)
    assert (result.new, result.already_there) == (200, 100)
    got = content(dst)
    assert max(got.values()) == 1 and sum(got.values()) == 400
    assert_derived_exact(dst)
    back = dst.sync(src)  # and back: the source gains exactly the target's others
    assert (back.new, back.already_there) == (100, 300)
    assert content(src) == content(dst)


def test_the_next_sync_reads_only_the_new_records(pair: tuple[Ledger, Ledger]) -> None:
    src, dst = pair
    fill(src, 0, 2000)
    assert src.sync(dst).read == 2000
    fill(src, 2000, 2010)
    result = src.sync(dst)
    assert result.incremental and (result.read, result.new, result.already_there) == (10, 10, 2000)
    assert content(dst) == content(src)
    assert_derived_exact(dst)


def test_a_cleared_source_falls_back_to_the_content_check(pair: tuple[Ledger, Ledger]) -> None:
    src, dst = pair
    fill(src, 0, 500)
    src.sync(dst)
    src.clear()
    fill(src, 1000, 1600)  # more records than before: ids reach past the mark again on SQLite
    result = src.sync(dst)
    assert not result.incremental and (result.read, result.new) == (600, 600)
    assert sum(content(dst).values()) == 1100 and max(content(dst).values()) == 1
    src.clear()
    fill(src, 0, 100)  # records the target already has, under ids below the mark
    result = src.sync(dst)
    assert not result.incremental and (result.new, result.already_there) == (0, 100)


def test_a_cleared_target_gets_everything_again(pair: tuple[Ledger, Ledger]) -> None:
    src, dst = pair
    fill(src, 0, 300)
    src.sync(dst)
    dst.clear()
    result = src.sync(dst)
    assert not result.incremental and result.new == 300
    assert content(dst) == content(src)


def test_a_source_restored_from_an_older_backup_is_checked_by_content(tmp_path: Path) -> None:
    src_dir = tmp_path / "node"
    src = Ledger(src_dir)
    fill(src, 0, 300)
    src.close()
    shutil.copytree(src_dir, tmp_path / "backup")  # same ledger id, fewer records
    src = Ledger(src_dir)
    fill(src, 300, 400)
    dst = Ledger(tmp_path / "team")
    src.sync(dst)
    src.close()
    shutil.rmtree(src_dir)
    shutil.copytree(tmp_path / "backup", src_dir)
    restored = Ledger(src_dir)
    fill(restored, 500, 520)  # ids 301..320 again, other content than the mark's record
    result = restored.sync(dst)
    assert not result.incremental and (result.new, result.already_there) == (20, 300)
    assert sum(content(dst).values()) == 420 and max(content(dst).values()) == 1


def test_two_copies_of_one_ledger_sync_into_one_target(tmp_path: Path) -> None:
    """A directory copied to a second node keeps its ledger id: both nodes' marks share a
    key, and neither may skip the other's records."""
    a = Ledger(tmp_path / "a")
    fill(a, 0, 100)
    a.close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a, b = Ledger(tmp_path / "a"), Ledger(tmp_path / "b")
    dst = Ledger(tmp_path / "team")
    fill(a, 100, 150, prefix="a")
    fill(b, 100, 180, prefix="b")
    a.sync(dst)
    b.sync(dst)
    fill(a, 200, 210, prefix="a")
    a.sync(dst)
    want = content(a) + content(b)
    for k in list(want):
        want[k] = 1
    assert content(dst) == want


def test_a_conflicting_direction_is_refused_and_nothing_is_synced(pair: tuple[Ledger, Ledger]) -> None:
    src, dst = pair
    src.register_metric("ic", True)
    src.register_metric("turnover", False)
    dst.register_metric("ic", False)
    fill(src, 0, 50)
    with pytest.raises(ValidationError, match="'ic'") as err:
        src.sync(dst)
    assert "\n" not in str(err.value)
    assert dst.stats()["records"] == 0 and "turnover" not in dst.metric_directions()


def test_a_filtered_pull(pair: tuple[Ledger, Ledger]) -> None:
    src, dst = pair
    rows = fill(src, 0, 400)
    since = "2025-01-01T00:03:00+00:00"
    result = src.sync(dst, ticker="T1", model_name=["M1", "M3"], since=since)
    want = [r for r in rows if r["ticker"] == "T1" and r["model_name"] in ("M1", "M3")
            and r["timestamp"] >= "2025-01-01T00:03:00"]
    assert result.new == len(want) > 0
    assert sorted(r["notes"] for r in dst.records()) == sorted(r["notes"] for r in want)
    # The filtered mark is the filter's own: an unfiltered sync still brings the rest.
    rest = src.sync(dst)
    assert (rest.new, rest.already_there) == (400 - len(want), len(want))
    assert content(dst) == content(src)


def test_bad_arguments_name_the_field(tmp_path: Path) -> None:
    src, dst = Ledger(tmp_path / "a"), Ledger(tmp_path / "b")
    with pytest.raises(ValidationError, match="since"):
        src.sync(dst, since="yesterday-ish")
    with pytest.raises(ValidationError, match="ticker"):
        src.sync(dst, ticker="")
    with pytest.raises(ValidationError, match="ledger itself"):
        src.sync(Ledger(tmp_path / "a"))


def test_the_mirrors_of_a_directory_target_hold_the_synced_records(tmp_path: Path) -> None:
    from helpers import mirror_records

    src, dst = Ledger(tmp_path / "a"), Ledger(tmp_path / "b")
    fill(src, 0, 120)
    src.sync(dst)
    assert sorted(r["notes"] for r in mirror_records(tmp_path / "b")) == sorted(f"r{i}" for i in range(120))


# --------------------------------------------------------------------------- command line


def test_cli_sync_to_and_from_prints_one_summary_line(
    tmp_path: Path, pg_ledger: Ledger, pg_server_url: str
) -> None:
    from cli_runner import run_cli

    node = Ledger(tmp_path / "node")
    node.register_metric("ic", True)
    fill(node, 0, 250)
    node.close()
    out = run_cli("--store", str(tmp_path / "node"), "sync", "--to", pg_server_url)
    assert (out.returncode, out.stdout, out.stderr) == (0, "250 new, 0 already there\n", "")
    out = run_cli("--store", str(tmp_path / "node"), "sync", "--to", pg_server_url)
    assert out.stdout == "0 new, 250 already there\n"
    out = run_cli("--store", str(tmp_path / "laptop"), "sync", "--from", pg_server_url,
                  "--ticker", "T0", "--ticker", "T2", "--model", "M0", "--since", "2025-01-01T00:00:00")
    want = [i for i in range(250) if i % 3 in (0, 2) and i % 4 == 0]
    assert (out.returncode, out.stdout) == (0, f"{len(want)} new, 0 already there\n")
    with Ledger(tmp_path / "laptop") as laptop:
        assert sorted(r["notes"] for r in laptop.records()) == sorted(f"r{i}" for i in want)
        assert laptop.metric_directions()["ic"] is True


def test_cli_sync_errors_are_one_line(tmp_path: Path) -> None:
    from cli_runner import run_cli

    a = Ledger(tmp_path / "a")
    a.register_metric("ic", True)
    b = Ledger(tmp_path / "b")
    b.register_metric("ic", False)
    fill(a, 0, 5)
    a.close()
    b.close()
    for args, needle in [
        (["sync"], "exactly one of --to"),
        (["sync", "--to", str(tmp_path / "b"), "--from", str(tmp_path / "b")], "exactly one of --to"),
        (["sync", "--to", str(tmp_path / "b"), "--since", "soon"], "since='soon'"),
        (["sync", "--to", str(tmp_path / "b")], "metric 'ic'"),
    ]:
        out = run_cli("--store", str(tmp_path / "a"), *args)
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.startswith("Error: ") and out.stderr.count("\n") == 1 and needle in out.stderr
    with Ledger(tmp_path / "b") as b:
        assert b.stats()["records"] == 0


def test_a_postgres_source_whose_writers_commit_out_of_id_order_loses_nothing(
    pg_ledger: Ledger, pg_server_url: str, tmp_path: Path
) -> None:
    """PostgreSQL writers take ids from a sequence and may commit out of order: a sync that
    ran in between saw the later id, not the earlier. The mark remembers the gap, and the
    next sync brings the record that filled it."""
    from perfledger.records.batch import Batch
    from perfledger.records.validation import validate_record

    fill(pg_ledger, 0, 10)
    laptop = Ledger(tmp_path / "laptop")
    assert pg_ledger.sync(laptop).new == 10
    slow = Batch.from_records([validate_record("Slow", "SLOW", sharpe=1.0, notes="slow writer")])
    other, slow_writer = Ledger(pg_server_url), Ledger(pg_server_url)  # two more writers
    with slow_writer._ensure().writing() as tx:
        tx.insert(slow)  # its id is taken now; it commits after the next one
        other.log("Fast", "FAST", sharpe=2.0, notes="fast writer")
        early = pg_ledger.sync(laptop)
        assert (early.new, early.incremental) == (1, True)
    other.close()
    slow_writer.close()
    late = pg_ledger.sync(laptop)
    assert (late.new, late.incremental) == (1, True)
    assert content(laptop) == content(pg_ledger)
    assert pg_ledger.sync(laptop).new == 0


def test_a_pull_with_a_role_that_may_only_read_the_team_store(
    pg_ledger: Ledger, pg_server_url: str, tmp_path: Path
) -> None:
    """The source is never required to be writable: without an id (and unable to get one)
    every pull checks content, and is still exact."""
    import sqlalchemy as sa

    fill(pg_ledger, 0, 50)
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DELETE FROM pl_meta WHERE key = 'ledger_id'")  # as a new ledger
        conn.exec_driver_sql("DROP ROLE IF EXISTS pl_sync_reader")
        conn.exec_driver_sql("CREATE ROLE pl_sync_reader LOGIN")
        conn.exec_driver_sql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO pl_sync_reader")
    try:
        url = sa.make_url(pg_server_url).set(username="pl_sync_reader").render_as_string(hide_password=False)
        laptop = Ledger(tmp_path / "laptop")
        with Ledger(url) as reader:
            first = reader.sync(laptop)
            again = reader.sync(laptop)
        assert (first.new, again.new, again.already_there, again.incremental) == (50, 0, 50, False)
        assert content(laptop) == content(pg_ledger)
        assert pg_ledger._ensure().get_meta("ledger_id") is None
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM pl_sync_reader")
            conn.exec_driver_sql("DROP ROLE pl_sync_reader")
        admin.dispose()


def test_progress_reports_the_records_read(tmp_path: Path) -> None:
    src, dst = Ledger(tmp_path / "a"), Ledger(tmp_path / "b")
    fill(src, 0, 250)
    calls: list[tuple[int, int]] = []
    from perfledger.files.sync import sync_stores

    sync_stores(src._ensure(), dst._writable(), dst, dst._mirrors, chunk=100,
                progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 250), (100, 250), (200, 250), (250, 250)]
    calls.clear()
    fill(src, 250, 260)
    src.sync(dst, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 10), (10, 10)]


def test_records_imported_from_an_export_are_already_there(
    pair: tuple[Ledger, Ledger], tmp_path: Path
) -> None:
    """An import and a sync key a record alike: what one stored, the other skips."""
    from perfledger.files.exporter import export_records
    from perfledger.files.importer import import_file

    src, dst = pair
    fill(src, 0, 120)
    path = tmp_path / "half.json"
    export_records(src, "json", path, ticker=["T0", "T1"])  # type: ignore[arg-type]
    imported = import_file(dst, path).imported
    assert imported == 80
    result = src.sync(dst)
    assert (result.new, result.already_there) == (40, 80)
    assert content(dst) == content(src)
    assert import_file(dst, path).imported == 0


def test_huge_whole_float_params_keep_their_identity_through_postgresql(
    pg_ledger: Ledger, tmp_path: Path
) -> None:
    """PostgreSQL keeps 1e23 as the integer JSONB holds and gives it back as an int: a record
    synced there and back is the same record, not a new one (a review saw every record
    doubled after directory -> PostgreSQL -> directory)."""
    node = Ledger(tmp_path / "node")
    node.log_many([{"model_name": "M", "ticker": "T", "sharpe": i / 10, "notes": f"n{i}",
                    "params": {"n": 1e23, "nested": {"k": [1e16, -3e300, 2.5]}}} for i in range(20)])
    assert node.sync(pg_ledger).new == 20
    assert pg_ledger.sync(node).new == 0
    assert node.sync(pg_ledger).new == 0
    assert len(node.history()) == 20 and len(pg_ledger.history()) == 20
