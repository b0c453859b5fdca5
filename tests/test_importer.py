"""The importer in-process: identity rules, formats, and a large partially-overlapping file."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfledger import Ledger, PerfLedgerError, ValidationError
from perfledger.files.exporter import export_records
from perfledger.files.importer import import_file, record_hash, record_key


@pytest.fixture
def led(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger")
    yield ledger
    ledger.close()


def test_identity_is_content() -> None:
    a = record_key(1, "AAPL", "M", [1.0, None, -0.0], "", {"x": 2.0}, {"p": 1}, {"t": "a"})
    b = record_key(1, "AAPL", "M", [1.0, float("nan"), 0.0], None, {"x": 2.0}, {"p": 1}, {"t": "a"})
    assert a == b and record_hash(a) == record_hash(b)
    assert record_key(1, "AAPL", "M", [1.0], "", None, {"p": 2}, None) != record_key(
        1, "AAPL", "M", [1.0], "", None, {"p": 1}, None
    )
    assert record_key(1, "AAPL", "M", [0.1 + 0.2], "", None, None, None) != record_key(
        1, "AAPL", "M", [0.3], "", None, None, None
    )  # exact floats: no rounding merges two different measurements


def test_params_only_difference_is_a_new_record(led: Ledger, tmp_path: Path) -> None:
    rec = {"timestamp": "2024-01-01T00:00:00", "ticker": "A", "model_name": "M", "sharpe": 1.0}
    led.log("M", "A", sharpe=1.0, timestamp="2024-01-01T00:00:00", params={"lr": 0.1})
    path = tmp_path / "x.json"
    path.write_text(json.dumps([rec, dict(rec, params={"lr": 0.1}), dict(rec, params={"lr": 0.2})]))
    report = import_file(led, path)
    assert (report.imported, report.duplicates) == (2, 1)
    assert (import_file(led, path).imported, import_file(led, path).duplicates) == (0, 3)


def test_nan_and_inf_are_rejected_an_empty_line_is_skipped(led: Ledger, tmp_path: Path) -> None:
    """A NaN is a value that is not a number, refused as log() refuses it (issue 20): not a
    missing one, which is null (or an empty cell)."""
    path = tmp_path / "n.jsonl"
    path.write_text(
        '{"timestamp": "2024-01-01T00:00:00", "ticker": "A", "model_name": "M", "sharpe": NaN}\n'
        "\n"
        '{"timestamp": "2024-01-01T00:00:01", "ticker": "A", "model_name": "M", "mse": Infinity}\n'
        "[1, 2]\n"
    )
    report = import_file(led, path)
    assert not report.stored and report.imported == 0
    assert [(r.where, r.field) for r in report.rejected] == [
        ("line 1", "sharpe"), ("line 3", "mse"), ("line 4", "row")]
    assert report.rejected[0].message.startswith("sharpe=NaN is not a number")
    report = import_file(led, path, skip_invalid=True)
    assert report.imported == 0 and led.history().empty


def test_pandas_parquet_and_csv_with_index(led: Ledger, tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "timestamp": ["2024-01-01T00:00:00", "2024-01-02T00:00:00+02:00"],
        "ticker": ["A", "B"], "model_name": ["M", "M"], "sharpe": [1.5, None], "custom_x": [3.0, None],
    })
    frame.to_parquet(tmp_path / "f.parquet")
    frame.to_csv(tmp_path / "f.csv")  # with pandas' index column
    assert import_file(led, tmp_path / "f.parquet").imported == 2
    assert import_file(led, tmp_path / "f.csv").duplicates == 2
    hist = led.history()
    assert hist["custom_x"].tolist()[0] == 3.0
    assert str(hist["timestamp"].iloc[1]) == "2024-01-01 22:00:00+00:00"


def test_whole_file_errors_raise(led: Ledger, tmp_path: Path) -> None:
    (tmp_path / "obj.json").write_text('{"a": 1}')
    with pytest.raises(ValidationError, match="array"):
        import_file(led, tmp_path / "obj.json")
    with pytest.raises(ValidationError, match="unknown file type"):
        import_file(led, tmp_path / "x.xlsx")


def test_large_partially_overlapping_import(led: Ledger, tmp_path: Path) -> None:
    rng = random.Random(4)
    base = datetime(2023, 1, 1)
    recs = [
        {"timestamp": (base + timedelta(seconds=17 * i, microseconds=rng.randrange(10**6))).isoformat(),
         "ticker": rng.choice(["AAPL", "MSFT", "BRK.B"]), "model_name": f"M{rng.randrange(8)}",
         "sharpe": rng.gauss(1, 0.5), "win_rate": rng.random(), "notes": f"run {i}"}
        for i in range(20_000)
    ]
    first = tmp_path / "first.json"
    first.write_text(json.dumps(recs[:12_000], indent=2))
    second = tmp_path / "second.csv"
    pd.DataFrame(recs[8_000:] + recs[:10]).to_csv(second, index=False)  # 4 010 already stored
    assert import_file(led, first).imported == 12_000
    report = import_file(led, second)
    assert (report.imported, report.duplicates, report.rejected_rows) == (8_000, 4_010, 0)
    assert len(led.history()) == 20_000
    out = tmp_path / "all.parquet"
    assert export_records(led, "parquet", out) == 20_000
    assert import_file(led, out).duplicates == 20_000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.lists(st.dictionaries(st.sampled_from(["ticker", "model_name", "sharpe", "timestamp",
                                                  "win_rate", "notes", "metrics"]),
                                 st.one_of(st.none(), st.text(max_size=5), st.floats(),
                                           st.integers(), st.booleans()), max_size=6),
                 max_size=4).map(lambda rows: json.dumps(rows).encode()),
    ),
    suffix=st.sampled_from([".json", ".csv"]),
)
def test_garbage_files_fail_cleanly_and_store_nothing_partial(
    led: Ledger, tmp_path: Path, payload: bytes, suffix: str
) -> None:
    """Whatever bytes a file holds, an import either reports (all or nothing) or raises one
    of the library's errors; it never crashes with anything else or stores part of a file."""
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(payload)
    before = led.stats()["records"]
    try:
        report = import_file(led, path)
    except (ValidationError, PerfLedgerError):
        assert led.stats()["records"] == before
        return
    after = led.stats()["records"]
    if report.rejected:
        assert not report.stored and after == before
    else:
        assert after == before + report.imported
