"""Kept return series travel with their records: a Parquet export carries them (an import
brings them back exactly), ``sync`` carries them, ``log_many`` takes them; the seed's JSON and
CSV mirrors and exports stay exactly seed-shaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perfledger import Ledger, ValidationError
from perfledger.files.exporter import export_records
from perfledger.files.importer import import_file


def _daily(seed: int, n: int = 120) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(rng.normal(0.0003, 0.01, n), index=pd.bdate_range("2019-01-01", periods=n, tz="UTC"))


def _fill(led: Ledger) -> dict[str, pd.Series]:
    kept = {"Dated": _daily(1), "Ordered": pd.Series([0.01, -0.02, 0.005, 1e-17])}
    led.log_backtest("Dated", "AAPL", kept["Dated"], tags={"run": "s1"})
    led.log_backtest("Ordered", "AAPL", kept["Ordered"].tolist(), tags={"run": "s1"})
    led.log("Plain", "AAPL", sharpe=1.2)
    return kept


def _by_model(led: Ledger) -> dict[str, pd.Series]:
    hist = led.history(include_meta=True)
    return {m: led.returns(int(r)) for m, r, h in
            zip(hist["model_name"], hist["record_id"], hist["has_returns"], strict=True) if h}


def _same(a: pd.Series, b: pd.Series) -> bool:
    return a.to_numpy().tobytes() == b.to_numpy().tobytes() and list(a.index) == list(b.index)


def test_a_parquet_export_carries_the_returns_and_an_import_brings_them_back(
    any_ledger: Ledger, tmp_path: Path
) -> None:
    kept = _fill(any_ledger)
    out = tmp_path / "x.parquet"
    assert export_records(any_ledger, "parquet", out) == 3
    table = pq.read_table(out)
    assert table.schema.field("returns").type == pa.list_(pa.float64())
    rows = {r["model_name"]: r for r in table.to_pylist()}
    assert rows["Plain"]["returns"] is None and rows["Ordered"]["returns_dates"] is None
    assert rows["Ordered"]["returns"] == kept["Ordered"].tolist()
    target = Ledger(tmp_path / "imported")
    assert import_file(target, out).imported == 3
    got = _by_model(target)
    assert set(got) == {"Dated", "Ordered"}
    assert _same(got["Dated"], kept["Dated"]) and _same(got["Ordered"], kept["Ordered"])
    again = import_file(target, out)  # the round trip is exact: duplicates, nothing added
    assert again.imported == 0 and again.duplicates == 3
    target.close()


def test_a_bad_series_in_a_parquet_file_is_rejected_by_name(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({
        "timestamp": ["2024-01-02T00:00:00+00:00"], "ticker": ["AAPL"], "model_name": ["M"],
        "returns": pa.array([[0.01, float("nan")]], pa.list_(pa.float64())),
    }), path)
    report = import_file(ledger, path)
    assert report.imported == 0 and [r.field for r in report.rejected] == ["returns"]
    assert ledger.history().empty


def test_sync_carries_the_returns(ledger: Ledger, pg_ledger: Ledger) -> None:
    kept = _fill(ledger)
    assert ledger.sync(pg_ledger).new == 3
    got = _by_model(pg_ledger)
    assert _same(got["Dated"], kept["Dated"]) and _same(got["Ordered"], kept["Ordered"])
    for model in ("Dated", "Ordered"):  # one dated, one not: side by side they are refused
        assert pg_ledger.returns_frame(tags={"run": "s1"}, model_name=model).shape[1] == 1


def test_log_many_takes_a_returns_column(any_ledger: Ledger) -> None:
    r = _daily(3, 30)
    any_ledger.log_many(pd.DataFrame({"ticker": ["AAPL", "AAPL"], "model_name": ["A", "B"],
                                      "sharpe": [1.0, 2.0], "returns": [r, None]}))
    got = _by_model(any_ledger)
    assert list(got) == ["A"] and _same(got["A"], r)
    with pytest.raises(ValidationError, match="returns"):
        any_ledger.log_many([{"ticker": "AAPL", "model_name": "C", "returns": [0.1]}])
    assert len(any_ledger.history()) == 2


def test_the_mirrors_and_the_json_and_csv_exports_stay_seed_shaped(ledger: Ledger, tmp_path: Path) -> None:
    _fill(ledger)
    assert ledger.directory is not None
    mirror = json.loads((ledger.directory / "model_performance.json").read_text())
    assert all("returns" not in r for r in mirror)
    header = (ledger.directory / "model_performance.csv").read_text().splitlines()[0]
    assert "returns" not in header
    export_records(ledger, "json", tmp_path / "x.json")
    export_records(ledger, "csv", tmp_path / "x.csv")
    assert all("returns" not in r for r in json.loads((tmp_path / "x.json").read_text()))
    assert "returns" not in (tmp_path / "x.csv").read_text().splitlines()[0]
    assert all("returns" not in r for r in ledger.records())


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Ledger]:
    """A SQLite ledger apart from ``any_ledger``'s (whose SQLite case is the ``ledger`` one)."""
    led = Ledger(tmp_path / "source")
    yield led
    led.close()


def _twins(led: Ledger, series: list[pd.Series | None]) -> None:
    """Records of one content (the same metrics, given, not computed), each with a series
    or none: what two ledgers that ran the same sweep hold when one kept no series, or kept
    another run's."""
    led.log_many(pd.DataFrame({
        "timestamp": [f"2024-01-0{i + 2}T00:00:00+00:00" for i in range(len(series))],
        "ticker": "AAPL", "model_name": [f"M{i}" for i in range(len(series))],
        "sharpe": [1.0 + i for i in range(len(series))], "returns": series}))


def test_an_import_attaches_a_series_to_a_record_present_without_one(
    any_ledger: Ledger, source: Ledger, tmp_path: Path
) -> None:
    """Review #8, then issue 22: the seed-shaped JSON first, then the Parquet export. The
    records are duplicates by content; their series were dropped (then only reported). Now
    they are attached to the present records, exactly, and the report says how many; a
    re-import says nothing of the kind."""
    kept = _fill(source)
    js, pq_path = tmp_path / "all.json", tmp_path / "all.parquet"
    export_records(source, "json", js)
    export_records(source, "parquet", pq_path)
    assert import_file(any_ledger, js).imported == 3
    assert _by_model(any_ledger) == {}
    state = any_ledger.stats()["state"]
    report = import_file(any_ledger, pq_path)
    assert report.imported == 0 and report.duplicates == 3
    assert report.series_attached == 2 and report.series_not_imported == 0
    assert "2 return series attached to records already present without one" in report.summary()
    got = _by_model(any_ledger)
    assert set(got) == {"Dated", "Ordered"}
    assert _same(got["Dated"], kept["Dated"]) and _same(got["Ordered"], kept["Ordered"])
    assert len(any_ledger.history()) == 3 and any_ledger.stats()["state"] != state  # caches see it
    again = import_file(any_ledger, pq_path)
    assert again.duplicates == 3 and again.series_attached == again.series_not_imported == 0
    assert "series" not in again.summary()


def test_an_import_keeps_the_ledgers_different_series_and_counts_it(
    any_ledger: Ledger, source: Ledger, tmp_path: Path
) -> None:
    """The same content with another series: the ledger's is kept (never replaced), the
    report counts the file's as not imported; a record without one beside it gets its."""
    a, b, c = _daily(5), _daily(6), _daily(7)
    _twins(source, [a, c, None])
    _twins(any_ledger, [b, None, None])
    path = tmp_path / "x.parquet"
    export_records(source, "parquet", path)
    report = import_file(any_ledger, path)
    got = (report.imported, report.duplicates, report.series_attached, report.series_not_imported)
    assert got == (0, 3, 1, 1)
    assert ("1 return series not imported: record already present with a different one (kept)"
            in report.summary())
    got = _by_model(any_ledger)
    assert set(got) == {"M0", "M1"} and _same(got["M0"], b) and _same(got["M1"], c)


def test_sync_attaches_series_to_records_there_without_one_and_keeps_different_ones(
    any_ledger: Ledger, source: Ledger, tmp_path: Path
) -> None:
    """A sync onto a target holding the same records without series (imported from the
    seed-shaped JSON) brought nothing back: the records were 'already there'. Now their
    series are attached (both engines as the target), a target record with a different
    series keeps its own (counted), and a second sync changes nothing."""
    a, b, c = _daily(8), _daily(9), _daily(10)
    _twins(source, [a, c, None])
    _twins(any_ledger, [b, None, None])
    res = source.sync(any_ledger)
    assert (res.new, res.already_there, res.series_attached, res.series_differ) == (0, 3, 1, 1)
    assert "1 return series attached" in res.summary() and "different return series" in res.summary()
    got = _by_model(any_ledger)
    assert set(got) == {"M0", "M1"} and _same(got["M0"], b) and _same(got["M1"], c)
    kept = _fill(source)  # records with series, then the target gets them without (JSON)
    js = tmp_path / "all.json"
    export_records(source, "json", js)
    assert import_file(any_ledger, js).imported == 6 - 3
    res = source.sync(any_ledger)
    assert (res.new, res.series_attached) == (0, 2)
    got = _by_model(any_ledger)
    assert _same(got["Dated"], kept["Dated"]) and _same(got["Ordered"], kept["Ordered"])
    again = source.sync(any_ledger)
    assert (again.new, again.series_attached) == (0, 0) and "series attached" not in again.summary()
    assert len(any_ledger.history()) == 6
