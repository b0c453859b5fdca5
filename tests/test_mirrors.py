"""The seed's files mirror the database exactly, and repair themselves after damage."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from helpers import csv_records, mirror_records

from perfledger import Ledger


def assert_mirrors_match(led: Ledger) -> None:
    d = led.directory
    h = led.history()
    recs = mirror_records(d)
    rows = csv_records(d)
    assert len(recs) == len(rows) == len(h)
    key = lambda r: (r["timestamp"], r["model_name"], r["notes"])  # noqa: E731
    assert sorted(map(key, recs)) == sorted(map(key, rows))
    assert sorted(r["notes"] for r in recs) == sorted(h["notes"])
    assert json.loads((d / "best_models.json").read_text()) == led.best()


def fill(led: Ledger, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        led.log(f"M{i % 3}", f"T{i % 2}", sharpe=i * 0.1, mse=0.01 * (i + 1), notes=f"rec-{i}")


def test_mirrors_follow_every_write(ledger: Ledger) -> None:
    fill(ledger, 5)
    ledger.log_many([{"model_name": "Bulk", "ticker": "T9", "sharpe": 9.0, "notes": f"bulk-{i}"}
                     for i in range(300)])
    assert_mirrors_match(ledger)
    df = pd.read_csv(ledger.directory / "model_performance.csv")
    assert len(df) == 305 and df["sharpe"].max() == 9.0


def test_custom_metrics_params_and_tags_round_trip(ledger: Ledger) -> None:
    ledger.log("M", "T", sharpe=1.0, metrics={"sortino": 2.5}, params={"lr": 0.01, "layers": [64, 32]},
               tags={"env": "prod"})
    rec = mirror_records(ledger.directory)[0]
    assert rec["metrics"] == {"sortino": 2.5}
    assert rec["params"] == {"lr": 0.01, "layers": [64, 32]} and rec["tags"] == {"env": "prod"}
    row = csv_records(ledger.directory)[0]
    assert json.loads(row["metrics"]) == {"sortino": 2.5} and json.loads(row["tags"]) == {"env": "prod"}


@pytest.mark.parametrize("garbage", [b",\n{\"timestamp\": \"2024", b",\n", b"\x00\x00\x00"])
def test_a_torn_append_is_repaired_on_open(ledger_dir: Path, garbage: bytes) -> None:
    led = Ledger(ledger_dir)
    fill(led, 4)
    led.close()
    # What a process killed between the file write and the commit leaves behind:
    path = ledger_dir / "model_performance.json"
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - 2)
        f.write(garbage)
    with open(ledger_dir / "model_performance.csv", "ab") as f:
        f.write(b"2024-01-01,PARTIAL,ro")
    led = Ledger(ledger_dir)
    assert_mirrors_match(led)
    assert len(mirror_records(ledger_dir)) == 4


def test_deleted_and_edited_mirrors_are_rebuilt_on_next_write(ledger: Ledger) -> None:
    fill(ledger, 3)
    d = ledger.directory
    (d / "model_performance.json").unlink()
    (d / "model_performance.csv").write_text("junk\n")
    (d / "best_models.json").write_text("{not json")
    fill(ledger, 1, start=3)
    assert_mirrors_match(ledger)
    assert len(mirror_records(d)) == 4


def test_rebuild_and_export(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 6)
    (ledger.directory / "model_performance.json").write_text("[]")
    ledger.rebuild_mirrors()
    assert_mirrors_match(ledger)
    out = ledger.export_seed_files(tmp_path / "export")
    assert mirror_records(out) == mirror_records(ledger.directory)
    assert (out / "model_performance.csv").read_bytes() == (
        ledger.directory / "model_performance.csv").read_bytes()


def test_url_ledgers_write_no_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    led = Ledger(f"sqlite:///{tmp_path / 'x.db'}")
    led.log("M", "T", sharpe=1.0)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("x.db")) == []
    assert not led.mirrors_enabled
    out = led.export_seed_files(tmp_path / "seed")
    assert mirror_records(out)[0]["model_name"] == "M"


@pytest.mark.parametrize("notes", ["\r", "a\rb", "x\r\ny", '"', ",", "é漢🚀"])
def test_awkward_notes_round_trip_through_the_csv(ledger: Ledger, notes: str) -> None:
    ledger.log("M", "T", sharpe=1.0, notes=notes)
    ledger.log("M", "T", sharpe=2.0, notes="after")
    assert [r["notes"] for r in csv_records(ledger.directory)] == [notes, "after"]
    df = pd.read_csv(ledger.directory / "model_performance.csv", keep_default_na=False)
    assert df["notes"].tolist() == [notes, "after"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o027])
def test_every_file_gets_the_mode_open_gives(tmp_path: Path, umask: int) -> None:
    """Teammates can read a ledger: each file perfledger creates gets 0666 less the umask
    (0644 under the usual 0022), not a temporary file's 0600 nor SQLite's own 0644."""
    from upgrade_fixtures import copy_v1_sqlite

    want = 0o666 & ~umask
    previous = os.umask(umask)
    try:
        d = tmp_path / "ledger"
        modes: dict[str, int] = {}

        def look(directory: Path, *names: str) -> None:
            for name in names:
                modes[f"{directory.name}/{name}"] = (directory / name).stat().st_mode & 0o777

        mirrors = ("model_performance.json", "model_performance.csv", "best_models.json")
        with Ledger(d) as led:
            led.log("M", "AAPL", sharpe=1.0)
            look(d, "perfledger.db", "perfledger.db-wal", "perfledger.db-shm", *mirrors)
            led.rebuild_mirrors()
            look(d, *mirrors)
            led.clear()
            look(d, *mirrors)
            look(led.export_seed_files(tmp_path / "export"), *mirrors)
        old = copy_v1_sqlite(tmp_path)
        Ledger(old).close()  # upgrades it, keeping a copy of the old file
        look(old, "perfledger.db.v1.bak")
    finally:
        os.umask(previous)
    assert modes == {name: want for name in modes}, {k: oct(v) for k, v in modes.items()}
