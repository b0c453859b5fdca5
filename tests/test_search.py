"""Finding and comparing experiments by params and tags (issue 12), on both stores.

Storage: every write path keeps ``pl_labels`` (and SQLite's ``pl_record_labels``) equal to a
recomputation from the records themselves. Reads: every filter, grouping and listing equals
a recomputation in plain Python/pandas from the unfiltered records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import assert_labels_match_records, label_text, labels_of_store

from perfledger import Ledger, ValidationError
from perfledger.store import writes


def sweep(n: int = 60) -> list[dict[str, Any]]:
    """A small sweep: every record has params, most have tags; values of several JSON types."""
    out = []
    for i in range(n):
        params: dict[str, Any] = {"max_depth": (3, 6, 9)[(i // 3) % 3], "lr": (0.01, 0.05)[i % 2]}
        if i % 5 == 0:
            params["max_depth"] = float(params["max_depth"])  # 6.0 is the number 6
        if i % 7 == 0:
            params["layers"] = [64, 32] if i % 2 else [64, 32, 16]
        if i % 11 == 0:
            params.update(early_stop=True, seed=None, sched={"kind": "cosine"}, depth_text="6")
        tags = {"run": "nightly" if i % 10 == 0 else f"sweep-{i % 3}"} if i % 4 else {}
        if i % 6 == 0:
            tags["owner"] = "ana"
        out.append({
            "model_name": f"XGB_{i % 4}", "ticker": ("AAPL", "MSFT", "BRK.B")[i % 3],
            "timestamp": f"2024-01-{1 + i % 28:02d}T10:{i % 60:02d}:00", "sharpe": 0.1 * (i % 17) - 0.3,
            "mse": 0.001 * (1 + i % 9), "sortino": 0.2 * (i % 5), "params": params, "tags": tags,
            "notes": f"r{i}",
        })
    return out


def _url(led: Ledger) -> str:
    return led.url.render_as_string(hide_password=False)


def stored_labels(led: Ledger) -> list[tuple[str, str, str, int]]:
    return labels_of_store(_url(led))[0]


def assert_labels_consistent(led: Ledger) -> None:
    assert_labels_match_records(_url(led))


# --------------------------------------------------------------------------- storage


def test_every_write_path_keeps_the_labels(any_ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = sweep()
    for r in recs[:5]:
        any_ledger.log(r["model_name"], r["ticker"], sharpe=r["sharpe"], params=r["params"], tags=r["tags"],
                       timestamp=r["timestamp"])
    any_ledger.log("Plain", "AAPL", sharpe=1.0)  # no params, no tags: no label
    any_ledger.log_many(recs[5:30])
    monkeypatch.setattr(writes, "BULK_ROWS", 10)  # the bulk path: label index built after the data
    any_ledger.log_many(recs[30:])
    assert_labels_consistent(any_ledger)
    assert ("t", "run", '"nightly"', 3) in stored_labels(any_ledger)
    sixes = sum(1 for r in recs if r["params"]["max_depth"] == 6)
    assert any(isinstance(r["params"]["max_depth"], float) for r in recs if r["params"]["max_depth"] == 6)
    assert ("p", "max_depth", "6", sixes) in stored_labels(any_ledger)  # 6 and 6.0 are one value


def test_clear_forgets_every_label(any_ledger: Ledger) -> None:
    any_ledger.log_many(sweep(12))
    any_ledger.clear()
    assert stored_labels(any_ledger) == []
    assert labels_of_store(_url(any_ledger))[1] in (None, set())
    any_ledger.log("M", "AAPL", sharpe=1.0, params={"max_depth": 6}, tags={"run": "nightly"})
    assert stored_labels(any_ledger) == [("p", "max_depth", "6", 1), ("t", "run", '"nightly"', 1)]


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_copy_carries_the_labels(target: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    src = Ledger(tmp_path / "src")
    src.log_many(sweep())
    dest = request.getfixturevalue("pg_ledger") if target == "postgres" else Ledger(tmp_path / "dest")
    src.copy_to(dest)
    assert stored_labels(dest) == stored_labels(src)
    assert_labels_consistent(dest)


def test_a_rejected_write_stores_no_label(any_ledger: Ledger) -> None:
    any_ledger.log("M", "AAPL", sharpe=1.0, params={"a": 1})
    state = any_ledger.stats()["state"]
    with pytest.raises(ValidationError, match="empty key"):
        any_ledger.log("M", "AAPL", sharpe=1.0, params={"": 1})
    with pytest.raises(ValidationError):
        any_ledger.log_many([{"model_name": "M", "ticker": "AAPL", "params": {"b": 2}},
                             {"model_name": "M", "ticker": "AAPL", "win_rate": 68}])
    assert any_ledger.stats()["state"] == state
    assert stored_labels(any_ledger) == [("p", "a", "1", 1)]


CONCURRENT_WORKER = """
import sys
from perfledger import Ledger
led = Ledger(sys.argv[1])
for i in range(int(sys.argv[3])):
    led.log("M%d" % (i % 3), "AAPL" if i % 2 else "MSFT", sharpe=0.1 * i, notes="%s-%d" % (sys.argv[2], i),
            params={"max_depth": (3, 6, 9)[i % 3], "lr": 0.05}, tags={"run": "nightly", "w": sys.argv[2]})
led.close()
"""


@pytest.mark.slow
def test_concurrent_writers_keep_the_labels_exact(any_ledger: Ledger) -> None:
    """Writers sharing labels (new ones too) upsert the same pl_labels rows at once."""
    import os
    import subprocess
    import sys

    url = _url(any_ledger) if any_ledger.directory is None else str(any_ledger.directory)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_WORKER, url, f"w{k}", "25"], env=env,
                              stderr=subprocess.PIPE, text=True) for k in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert len(any_ledger.history(tags={"run": "nightly"})) == 100
    assert len(any_ledger.history(tags={"w": "w2"}, params={"max_depth": 6})) == 8
    assert_labels_consistent(any_ledger)


# --------------------------------------------------------------------------- history


def _holds(d: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    return all(k in d and label_text(d[k]) == label_text(v) for k, v in (wanted or {}).items())


def _notes(frame: Any) -> list[str]:
    return list(frame["notes"])


@pytest.fixture
def swept(any_ledger: Ledger) -> Ledger:
    any_ledger.log_many(sweep())
    return any_ledger


FILTERS: list[dict[str, Any]] = [
    {"tags": {"run": "nightly"}},
    {"params": {"max_depth": 6}},
    {"params": {"max_depth": 6.0}},
    {"params": {"max_depth": "6"}},
    {"params": {"depth_text": "6"}},
    {"params": {"depth_text": 6}},
    {"params": {"layers": (64, 32)}},
    {"params": {"layers": (64,)}},
    {"params": {"early_stop": True}},
    {"params": {"early_stop": 1}},
    {"params": {"seed": None}},
    {"params": {"max_depth": 6, "lr": 0.05}, "tags": {"run": "sweep-1"}},
    {"tags": {"run": "nightly", "owner": "ana"}},
    {"params": {"no_such_key": 1}},
    {"tags": {"run": "never"}},
    {"ticker": "AAPL", "params": {"max_depth": 6}, "tags": {"run": "sweep-1"}},
    {"ticker": ["AAPL", "MSFT"], "model_name": ["XGB_1", "XGB_3"], "params": {"lr": 0.05}},
    {"since": "2024-01-05", "until": "2024-01-20", "tags": {"run": "nightly"}},
    {"at_least": {"sharpe": 0.5}, "at_most": {"mse": 0.006}, "params": {"max_depth": 9}},
    {"at_least": {"sortino": 0.4}, "tags": {"owner": "ana"}},
]


@pytest.mark.parametrize("kw", FILTERS, ids=[str(f) for f in FILTERS])
def test_history_filters_equal_a_recomputation(swept: Ledger, kw: dict[str, Any]) -> None:
    everything = swept.history(include_meta=True)
    plain = {k: v for k, v in kw.items() if k not in ("params", "tags")}
    base = swept.history(include_meta=True, **plain)
    keep = [_holds(p, kw.get("params")) and _holds(t, kw.get("tags"))
            for p, t in zip(base["params"], base["tags"], strict=True)]
    got = swept.history(include_meta=True, **kw)
    assert _notes(got) == _notes(base[keep])
    if len(got):  # (an empty answer has no custom metric columns, as without these filters)
        assert list(got.columns) == list(everything.columns)
    want = swept.history(**plain)[keep].reset_index(drop=True)
    assert swept.history(**kw).equals(want) if len(want) else swept.history(**kw).empty
    recs = swept.records(**{k: v for k, v in kw.items() if k not in ("at_least", "at_most")})
    assert [r["notes"] for r in recs] == _notes(swept.history(
        **{k: v for k, v in kw.items() if k not in ("at_least", "at_most")}))


def test_limit_keeps_the_latest_matching_rows(swept: Ledger) -> None:
    every = swept.history(tags={"owner": "ana"})
    assert _notes(swept.history(tags={"owner": "ana"}, limit=3)) == _notes(every)[-3:]


def test_arrays_match_whole_and_in_order(swept: Ledger) -> None:
    notes = _notes(swept.history(params={"layers": (64, 32)}))
    assert notes and all(r["params"]["layers"] == [64, 32] for r in swept.records() if r["notes"] in notes)
    assert swept.history(params={"layers": (32, 64)}).empty


# --------------------------------------------------------------------------- listings


def test_params_and_tags_list_every_value(swept: Ledger) -> None:
    params = swept.params()
    assert params["max_depth"] == [3, 6, 9]
    assert params["layers"] == [(64, 32), (64, 32, 16)]
    assert params["early_stop"] == [True] and params["seed"] == [None] and params["depth_text"] == ["6"]
    assert params["sched"] == [{"kind": "cosine"}]
    assert swept.tags() == {"owner": ["ana"], "run": ["nightly", "sweep-0", "sweep-1", "sweep-2"]}
    recs = [r for r in swept.records() if r["ticker"] == "BRK.B"]
    want: dict[str, set[str]] = {}
    for r in recs:
        for k, v in r["tags"].items():
            want.setdefault(k, set()).add(v)
    assert swept.tags("BRK.B") == {k: sorted(v) for k, v in sorted(want.items())}
    assert set(swept.params("BRK.B")["max_depth"]) == {r["params"]["max_depth"] for r in recs}
    assert swept.params("NOPE") == {} and swept.tags("NOPE") == {}
    for value in params["layers"]:  # every listed value is a valid filter
        assert not swept.history(params={"layers": value}).empty


def test_listings_of_an_empty_ledger(any_ledger: Ledger) -> None:
    assert any_ledger.params() == {} and any_ledger.tags() == {}


# --------------------------------------------------------------------------- leaderboards


def _recomputed_board(frame: Any, group: str, metric: str = "sharpe") -> Any:
    """The leaderboard rows of ``frame`` (a history with a ``group`` column), by pandas."""
    g = frame.groupby(["ticker", group])[metric]
    out = g.agg(["count", "mean", "std", "min", "max", "last"]).reset_index()
    out["records"] = frame.groupby(["ticker", group]).size().to_numpy()
    return out.sort_values(["ticker", group]).reset_index(drop=True)


def _compare(board: Any, want: Any, group: str, metric: str = "sharpe") -> None:
    got = board.sort_values(["ticker", group]).reset_index(drop=True)
    assert list(got["ticker"]) == list(want["ticker"])
    assert list(got[group]) == list(want[group])
    assert list(got["records"]) == list(want["records"])
    assert list(got[f"{metric}_count"]) == list(want["count"])
    for stat in ("mean", "std", "min", "max"):
        assert got[f"{metric}_{stat}"].to_numpy() == pytest.approx(want[stat].to_numpy(), nan_ok=True)
    assert got[f"{metric}_latest"].to_numpy() == pytest.approx(want["last"].to_numpy())


@pytest.mark.parametrize(("ticker", "kw"), [
    (None, {"tags": {"run": "sweep-1"}}),
    ("AAPL", {"params": {"lr": 0.05}}),
    ("AAPL", {"days_back": 100_000, "tags": {"owner": "ana"}}),
])
def test_filtered_leaderboards_equal_a_recomputation(
    swept: Ledger, ticker: str | None, kw: dict[str, Any]
) -> None:
    frame = swept.history(ticker=ticker, **kw)
    if "ticker" not in frame:
        frame["ticker"] = ticker
    board = swept.leaderboard(ticker, **kw)
    _compare(board, _recomputed_board(frame, "model_name"), "model_name")
    _compare(board, _recomputed_board(frame, "model_name", "sortino"), "model_name", "sortino")


@pytest.mark.parametrize(("by", "key", "ticker", "kw"), [
    ("param:max_depth", "max_depth", None, {}),
    ("param:max_depth", "max_depth", "AAPL", {}),
    ("param:lr", "lr", "MSFT", {"tags": {"run": "sweep-1"}}),
    ("tag:run", "run", None, {"params": {"lr": 0.01}}),
    ("param:layers", "layers", None, {}),
])
def test_leaderboards_by_a_param_or_tag_equal_a_recomputation(
    swept: Ledger, by: str, key: str, ticker: str | None, kw: dict[str, Any]
) -> None:
    frame = swept.history(ticker=ticker, include_meta=True, **kw)
    if "ticker" not in frame:
        frame["ticker"] = ticker
    col = "params" if by.startswith("param:") else "tags"
    frame = frame[[key in d for d in frame[col]]].copy()
    frame[key] = [label_text(d[key]) for d in frame[col]]
    board = swept.leaderboard(ticker, by=by, **kw)
    assert list(board.columns[:4]) == ["rank", "ticker", key, "records"]
    board[key] = [label_text(v) for v in board[key]]
    _compare(board, _recomputed_board(frame, key), key)
    _compare(board, _recomputed_board(frame, key, "sortino"), key, "sortino")
    for _t, part in board.groupby("ticker"):  # ranked by mean Sharpe, best first
        assert list(part["rank"]) == sorted(part["rank"])
        assert part["sharpe_mean"].is_monotonic_decreasing


def test_many_values_are_grouped_alike(swept: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    from perfledger.store.sqlite import queries

    want = swept.leaderboard(by="param:max_depth", params={"lr": 0.05})
    monkeypatch.setattr(queries, "_IN_LIST_MAX", 1)  # values joined, not listed
    assert swept.leaderboard(by="param:max_depth", params={"lr": 0.05}).equals(want)


def test_a_param_leaderboard_has_typed_values(swept: Ledger) -> None:
    board = swept.leaderboard("AAPL", by="param:max_depth")
    assert sorted(board["max_depth"]) == [3, 6, 9] and board["max_depth"].dtype.kind == "i"
    assert board["records"].sum() == len(swept.history(ticker="AAPL"))
    assert swept.leaderboard("AAPL", by="param:max_depth", tags={"run": "never"}).empty


def test_a_key_named_like_a_column_gets_a_prefix(any_ledger: Ledger) -> None:
    any_ledger.log("M", "AAPL", sharpe=1.0, params={"records": 5, "ticker": "x"})
    assert "param:records" in any_ledger.leaderboard(by="param:records").columns
    assert "param:ticker" in any_ledger.leaderboard(by="param:ticker").columns


# --------------------------------------------------------------------------- bad input


BAD: list[tuple[dict[str, Any], str]] = [
    ({"tags": {"run": 6}}, "tags['run']"),
    ({"tags": {"": "x"}}, "tags"),
    ({"params": {"": 6}}, "params"),
    ({"params": {"layers": [64, 32]}}, "params['layers']"),
    ({"params": {"x": {1, 2}}}, "params['x']"),
    ({"params": {"x": object()}}, "params['x']"),
    ({"params": "max_depth=6"}, "params"),
]


@pytest.mark.parametrize(("kw", "named"), BAD, ids=[b[1] for b in BAD])
def test_bad_filters_raise_naming_the_argument_and_change_nothing(
    swept: Ledger, kw: dict[str, Any], named: str
) -> None:
    state = swept.stats()["state"]
    for call in (swept.history, swept.records, swept.leaderboard):
        with pytest.raises(ValidationError) as err:
            call(**kw)
        assert err.value.problems[0][1] == named
    assert swept.stats()["state"] == state


@pytest.mark.parametrize("by", ["", "param:", "tag:", "params:max_depth", "max_depth", None, 6,
                                "param:no_such", "tag:max_depth"])
def test_a_by_naming_nothing_raises(swept: Ledger, by: Any) -> None:
    with pytest.raises(ValidationError) as err:
        swept.leaderboard(by=by)
    assert err.value.problems[0][1] == "by"
    assert repr(by) in str(err.value)


# --------------------------------------------------------------------------- the plan on SQLite


def test_sqlite_starts_from_the_smallest_set(ledger: Ledger) -> None:
    from perfledger.records.labels import check_filter
    from perfledger.store.base import HistoryQuery

    ledger.log_many(sweep())
    store = ledger._ensure()

    def start(**kw: Any) -> str:
        q = HistoryQuery(tickers=tuple(kw.get("tickers", ())),
                         params=check_filter("params", kw.get("params")),
                         tags=check_filter("tags", kw.get("tags")))
        with store.reading() as conn:
            return store._source(conn, q).from_

    assert start(tags={"run": "nightly"}).startswith("pl_record_labels d CROSS JOIN")  # 3 of 60
    assert start(tickers=["AAPL"], tags={"run": "nightly"}).startswith("pl_record_labels")  # 3 < 20
    assert start(tickers=["AAPL"], params={"lr": 0.05}) == "pl_records r"  # 20 < 30
    with store.reading() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT r.id FROM pl_record_labels d CROSS JOIN pl_records r "
            "WHERE d.label_id = 1 AND r.id = d.record_id").fetchall()
    assert "ix_pl_record_labels_label" in str(plan)
