"""Switching from the seed never loses its history (issue 9, items 1 and 2).

A directory written by the seed's own code is adopted on first open (every record, a copy of
the originals, one log line); a database deleted under its mirrors is rebuilt from them; the
seed's code rewriting a mirror beside perfledger has its records adopted and the mirror stays
valid JSON; a file that does not read as records is never overwritten.
"""

from __future__ import annotations

import collections
import csv
import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_cli
from helpers import csv_records, mirror_records

from perfledger import Ledger
from perfledger.errors import MirrorConflictError
from perfledger.files.importer import import_file

WORKERS = Path(__file__).parent / "workers"
sys.path.insert(0, str(WORKERS))
from seed_model_log import log_model_performance  # noqa: E402

SEED_FILES = ("model_performance.json", "model_performance.csv", "best_models.json")


def write_seed_history(directory: Path, n: int = 300) -> None:
    """``n`` records written by the seed's code, plus 5 rows only its CSV holds."""
    for i in range(n):
        log_model_performance(directory, f"M{i % 4}", f"T{i % 3}",
                              timestamp=f"2024-01-15T10:{i // 60:02d}:{i % 60:02d}",
                              sharpe=1 + i / 100, mse=0.01 * (i + 1), win_rate=0.5, notes=f"seed-{i}")
    with open(directory / "model_performance.csv", "a", newline="") as f:
        w = csv.writer(f)
        for i in range(5):
            w.writerow([f"2024-02-01T00:00:0{i}", "T9", "CsvOnly", 2.0, "", "", "", "", "", f"csv-only-{i}"])


def notes_counter(led: Ledger) -> collections.Counter[str]:
    return collections.Counter(led.history()["notes"])


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    d = tmp_path / "memory" / "logs"
    write_seed_history(d)
    return d


def test_first_open_adopts_the_seeds_history(seed_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    originals = {name: (seed_dir / name).read_bytes() for name in SEED_FILES}
    with caplog.at_level(logging.INFO, logger="perfledger"):
        led = Ledger(seed_dir)
    counts = notes_counter(led)
    assert len(counts) == 305 and max(counts.values()) == 1
    adopted = [r for r in caplog.records if "adopted" in r.getMessage()]
    assert len(adopted) == 1 and "300 records from model_performance.json" in adopted[0].getMessage()
    assert "5 records from model_performance.csv" in adopted[0].getMessage()
    # The originals, byte for byte, beside the mirrors now rewritten from the database.
    for name, data in originals.items():
        assert (seed_dir / f"{name}.seed-backup").read_bytes() == data
    assert len(mirror_records(seed_dir)) == 305
    # Naive timestamps are read as UTC (README, "Command line"/import).
    first = led.history(ticker="T0").iloc[0]
    assert first["timestamp"] == pd.Timestamp("2024-01-15T10:00:00", tz="UTC") and first["notes"] == "seed-0"
    best = led.best("T0")["best_sharpe"]
    assert best["model"] == "M1" and best["value"] == 1 + 297 / 100  # the last T0 record's i is 297
    led.close()
    # A second open, and a re-import of the seed's file, add nothing.
    again = Ledger(seed_dir)
    copy = seed_dir.parent / "copy.json"
    copy.write_bytes(originals["model_performance.json"])
    assert import_file(again, copy).imported == 0
    assert sum(notes_counter(again).values()) == 305
    again.close()


def test_the_import_command_on_a_seed_directory_keeps_its_history(seed_dir: Path) -> None:
    proc = run_cli("--store", str(seed_dir), "import", str(seed_dir / "model_performance.json"))
    assert proc.returncode == 0, proc.stderr
    assert "adopted into" in proc.stderr  # the one log line, on stderr as in a process
    led = Ledger(seed_dir)
    assert sum(notes_counter(led).values()) == 305 and max(notes_counter(led).values()) == 1
    assert len(mirror_records(seed_dir)) == 305


@pytest.mark.slow
def test_two_processes_opening_a_seed_directory_at_once_adopt_it_once(seed_dir: Path) -> None:
    code = ("import sys; from perfledger import Ledger; led = Ledger(sys.argv[1]); "
            "led.log('Late', 'T0', sharpe=0.5, notes='late-' + sys.argv[2]); print(len(led.history()))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(seed_dir), str(k)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(3)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    led = Ledger(seed_dir)
    counts = notes_counter(led)
    assert len(counts) == 308 and max(counts.values()) == 1
    assert collections.Counter(r["notes"] for r in mirror_records(seed_dir)) == counts


def test_a_deleted_database_is_rebuilt_from_its_mirrors(tmp_path: Path) -> None:
    d = tmp_path / "ledger"
    led = Ledger(d)
    for i in range(10):
        led.log("M", "AAPL", sharpe=i / 10, metrics={"ic": i / 100}, params={"k": i}, notes=f"n{i}")
    before = led.records()
    led.close()
    for name in ("perfledger.db", "perfledger.db-wal", "perfledger.db-shm"):
        (d / name).unlink(missing_ok=True)
    again = Ledger(d)
    assert again.records() == before
    assert len(mirror_records(d)) == 10
    again.close()


@pytest.mark.slow
def test_the_seeds_code_writing_beside_perfledger(tmp_path: Path) -> None:
    d = tmp_path / "ledger"
    led = Ledger(d)
    for i in range(5):
        led.log("M", "AAPL", sharpe=i / 10, notes=f"ours-{i}")
    # A script still on the seed: load, append, rewrite model_performance.json in place.
    proc = subprocess.run([sys.executable, str(WORKERS / "seed_model_log.py"), str(d), "seed", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    led.log("M", "AAPL", sharpe=9.0, notes="ours-after")
    json.loads((d / "model_performance.json").read_text())  # valid JSON
    counts = notes_counter(led)
    expected = {f"ours-{i}" for i in range(5)} | {f"seed-{i}" for i in range(3)} | {"ours-after"}
    assert set(counts) == expected and max(counts.values()) == 1
    assert collections.Counter(r["notes"] for r in mirror_records(d)) == counts
    # And again, with perfledger and the seed's code taking turns.
    for k in range(3):
        subprocess.run([sys.executable, str(WORKERS / "seed_model_log.py"), str(d), f"turn{k}", "2"],
                       check=True, capture_output=True, timeout=120)
        led.log_many([{"model_name": "B", "ticker": "MSFT", "sharpe": 1.0, "notes": f"bulk{k}-{j}"}
                      for j in range(3)])
        assert collections.Counter(r["notes"] for r in mirror_records(d)) == notes_counter(led)
    assert len(led.history()) == 9 + 3 * 5
    led.close()


def test_records_adopted_from_one_mirror_reach_the_other(tmp_path: Path) -> None:
    """A record only the JSON holds (added by hand or by a script that writes only it) is
    stored, and the CSV, still in step with the last commit, is rewritten to show it too."""
    d = tmp_path / "ledger"
    led = Ledger(d)
    for i in range(5):
        led.log("M", "AAPL", sharpe=i / 10, notes=f"ours-{i}")
    path = d / "model_performance.json"
    records = json.loads(path.read_text())
    path.write_text(json.dumps([*records, {**records[-1], "notes": "json-only"}], indent=2))
    led.log("M", "AAPL", sharpe=9.0, notes="ours-after")
    counts = notes_counter(led)
    assert set(counts) == {f"ours-{i}" for i in range(5)} | {"json-only", "ours-after"}
    assert max(counts.values()) == 1
    assert collections.Counter(r["notes"] for r in mirror_records(d)) == counts
    assert collections.Counter(r["notes"] for r in csv_records(d)) == counts
    led.close()


CUT_SHORT = b'[\n  {"timestamp": "2024-01-01T00:00:00", "ticker": '


@pytest.mark.parametrize("content", [CUT_SHORT, b"not json at all"])
def test_an_unreadable_mirror_is_kept_and_never_overwritten(tmp_path: Path, content: bytes,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    d = tmp_path / "ledger"
    d.mkdir()
    (d / "model_performance.json").write_bytes(content)
    with pytest.warns(RuntimeWarning, match=r"model_performance\.json"), caplog.at_level(logging.WARNING):
        led = Ledger(d)
    assert sum("does not read as records" in r.getMessage() for r in caplog.records) == 1
    assert (d / "model_performance.json").read_bytes() == content
    with pytest.raises(MirrorConflictError, match=r"model_performance\.json"):
        led.log("M", "AAPL", sharpe=1.0)
    assert (d / "model_performance.json").read_bytes() == content
    assert len(led.history()) == 0
    # Moved away: the ledger takes over again.
    (d / "model_performance.json").rename(d / "kept.json")
    led.log("M", "AAPL", sharpe=1.0)
    assert len(mirror_records(d)) == 1
    led.close()


def test_a_hand_edited_mirror_with_bad_rows_is_not_overwritten(tmp_path: Path) -> None:
    d = tmp_path / "ledger"
    led = Ledger(d)
    led.log("M", "AAPL", sharpe=1.0, notes="kept")
    rows = json.loads((d / "model_performance.json").read_text())
    rows.append({"timestamp": "yesterday", "ticker": "AAPL", "model_name": "M", "sharpe": 2.0})
    (d / "model_performance.json").write_text(json.dumps(rows, indent=2))
    edited = (d / "model_performance.json").read_bytes()
    with pytest.raises(MirrorConflictError, match="record 2"):
        led.log("M", "AAPL", sharpe=3.0)
    assert (d / "model_performance.json").read_bytes() == edited
    assert list(led.history()["notes"]) == ["kept"]
    led.close()


CSV_HEADER = b"timestamp,ticker,model_name,sharpe,mse,drawdown,total_return,win_rate,accuracy,notes\r\n"


@pytest.mark.parametrize(("name", "content", "broken", "where"), [
    ("model_performance.json", CUT_SHORT, True, None),
    ("model_performance.csv", CSV_HEADER + b"2024-01-01,PARTIAL,ro", True, "line 2"),
    ("model_performance.json", b'[{"timestamp": "yesterday", "ticker": "T", "model_name": "M"}]', False,
     "record 1"),
    ("model_performance.json", b'{"not": "an array"}', False, None),
], ids=["json-cut-short", "csv-row-cut-short", "a-wrong-value", "not-an-array"])
def test_adoption_tells_a_broken_file_from_a_wrong_value(
    tmp_path: Path, name: str, content: bytes, broken: bool, where: str | None
) -> None:
    """A file that does not read raises FileReadError naming it and the first bad row;
    ``broken`` says whether its structure is (what an append cut short leaves, which a
    repair may drop) or a well-formed record holds a wrong value (kept, reported)."""
    from perfledger.errors import FileReadError
    from perfledger.files.importer import adopt_file

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FileReadError) as err:
        adopt_file(None, path)  # type: ignore[arg-type]  # refused before the transaction is used
    assert (err.value.broken, err.value.where, err.value.path) == (broken, where, path)
