"""The mirror files never hold records the database does not, and never change what a
record is.

* A clear is a whole-ledger operation: a ledger opened with ``mirrors=False`` empties the
  files at once too (seed scripts read them), in the clear's transaction, so a clear that
  fails leaves both as they were.
* Line endings are not content: a mirror or an export converted to CRLF (``unix2dos``,
  git's ``autocrlf``, ``sed 's/$/\\r/'``) holds the same records, never doubled.
* A committed record edited in a mirror by another tool is not a new record: the database
  is the truth; one log line and a RuntimeWarning, the edited file kept beside it, the
  mirror rewritten from the database. Records the seed's code appended are adopted.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import warnings
from pathlib import Path

import pytest
from helpers import csv_records, mirror_records

from perfledger import Ledger
from perfledger.errors import StorageError
from perfledger.files.importer import import_file
from perfledger.mirrors import transaction


def _logged(d: Path, n: int = 5) -> None:
    with Ledger(d) as led:
        for i in range(n):
            led.log("M", "AAPL", sharpe=i / 10, notes=f"r{i}")


@pytest.mark.parametrize("deferred", [False, True], ids=["in-step", "with-deferred-records"])
def test_a_clear_without_mirrors_empties_them_at_once(tmp_path: Path, deferred: bool) -> None:
    d = tmp_path / "logs"
    _logged(d)
    with Ledger(d, mirrors=False) as fast:
        if deferred:  # records the files do not hold yet
            fast.log("M", "AAPL", sharpe=2.0, notes="fast")
        fast.clear()
        # At once, before any other ledger opens: what seed scripts read is empty.
        assert mirror_records(d) == []
        assert csv_records(d) == []
        assert json.loads((d / "best_models.json").read_text()) == {}
        assert fast.history().empty
    with Ledger(d) as led:
        assert led.history().empty
        assert led.best() == {}
    assert mirror_records(d) == []


def test_a_clear_without_mirrors_that_fails_keeps_records_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "logs"
    _logged(d)
    before = {n: (d / n).read_bytes() for n in ("model_performance.json", "model_performance.csv")}

    def enospc(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(transaction, "write_best_lines", enospc)  # the files emptied, then the disk fills
    with Ledger(d, mirrors=False) as fast:
        with pytest.raises(StorageError):
            fast.clear()
        assert len(fast.history()) == 5
    assert {n: (d / n).read_bytes() for n in before} == before
    monkeypatch.undo()
    with Ledger(d) as led:
        assert sorted(led.history()["notes"]) == [f"r{i}" for i in range(5)]
    assert sorted(r["notes"] for r in mirror_records(d)) == [f"r{i}" for i in range(5)]


# ---------------------------------------------------------------- line endings

MULTI = "first line\nsecond, \"quoted\" line\r\nthird"


def _crlf(path: Path) -> None:
    """What ``unix2dos`` does: a CR before every LF."""
    subprocess.run(["sed", "-i", r"s/$/\r/", str(path)], check=True)


@pytest.mark.parametrize("name", ["model_performance.csv", "model_performance.json"])
def test_a_mirror_converted_to_crlf_doubles_nothing(tmp_path: Path, name: str) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log("M", "AAPL", sharpe=1.0, notes=MULTI)
        led.log("M", "AAPL", sharpe=2.0, notes="plain")
    _crlf(d / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # not an edit either
        with Ledger(d) as led:
            assert led.leaderboard()["records"].tolist() == [2]
            assert sorted(led.history()["notes"]) == sorted([MULTI, "plain"])  # stored exactly
            led.log("M", "AAPL", sharpe=3.0, notes="after")
            assert len(led.history()) == 3
    assert sorted(r["notes"] for r in csv_records(d)) == sorted([MULTI, "plain", "after"])
    assert sorted(r["notes"] for r in mirror_records(d)) == sorted([MULTI, "plain", "after"])


@pytest.fixture(params=["sqlite", "postgresql"])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Ledger:
    if request.param == "sqlite":
        led = Ledger(tmp_path / "logs")
        request.addfinalizer(led.close)
        return led
    return request.getfixturevalue("pg_ledger")


def test_a_crlf_resaved_export_reimports_as_nothing_new(any_ledger: Ledger, tmp_path: Path) -> None:
    any_ledger.log("M", "AAPL", sharpe=1.0, notes=MULTI, params={"depth": 3}, metrics={"ic": 0.1})
    any_ledger.log("M", "AAPL", sharpe=2.0, notes="plain")
    out = any_ledger.export_seed_files(tmp_path / "export")
    for name in ("model_performance.csv", "model_performance.json"):
        _crlf(out / name)
        report = import_file(any_ledger, out / name)
        assert (report.imported, report.duplicates) == (0, 2), name
    assert len(any_ledger.history()) == 2


def test_a_note_longer_than_the_csv_modules_limit_reads(tmp_path: Path) -> None:
    """Notes are stored whatever their length: a CSV holding one longer than the csv
    module's default field limit (131072 characters) reads (an import, an adoption)."""
    import csv

    csv.field_size_limit(131072)  # the default (tests/helpers.py raises it for its own reads)
    long_note = "x" * 200_000
    with Ledger(tmp_path / "a") as led:
        led.log("M", "AAPL", sharpe=1.0, notes=long_note)
        out = led.export_seed_files(tmp_path / "export")
    with Ledger(tmp_path / "b") as led:
        assert import_file(led, out / "model_performance.csv").imported == 1
        assert led.history()["notes"].tolist() == [long_note]
    seed = tmp_path / "seed"  # a directory holding only the seed's CSV: adopted
    seed.mkdir()
    (seed / "model_performance.csv").write_bytes((out / "model_performance.csv").read_bytes())
    with Ledger(seed) as led:
        assert led.history()["notes"].tolist() == [long_note]


# ---------------------------------------------------------------- edits by other tools


def _edit_json(d: Path, i: int, **changes: object) -> None:
    path = d / "model_performance.json"
    records = json.loads(path.read_text())
    records[i].update(changes)
    path.write_text(json.dumps(records, indent=2))


def _edit_csv(d: Path, old: str, new: str) -> None:
    path = d / "model_performance.csv"
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize("edit", ["json-value", "json-field-added", "csv-value", "json-removed"])
def test_an_edited_committed_record_is_not_a_new_record(
    tmp_path: Path, edit: str, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log("M", "AAPL", sharpe=1.0, notes="one")
        led.log("M", "AAPL", sharpe=2.0, notes="two")
        best = led.best()
        expected = led.export_seed_files(tmp_path / "expected")
    name = "model_performance.csv" if edit.startswith("csv") else "model_performance.json"
    if edit == "json-value":
        _edit_json(d, 0, sharpe=99.0)
    elif edit == "json-field-added":
        _edit_json(d, 1, reviewer_score=0.5)
    elif edit == "json-removed":
        path = d / name
        path.write_text(json.dumps(json.loads(path.read_text())[1:], indent=2))
    else:
        _edit_csv(d, '"M",1,', '"M",99,')
    edited = (d / name).read_bytes()
    with (caplog.at_level(logging.WARNING, logger="perfledger"),
          pytest.warns(RuntimeWarning, match="changed in the file") as caught, Ledger(d) as led):
        assert sorted(led.history()["notes"]) == ["one", "two"]
        assert led.best() == best  # the edited value is not reported
        assert set(led.history()["sharpe"]) == {1.0, 2.0}
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert len([r for r in caplog.records if "changed in the file" in r.getMessage()]) == 1
    assert (d / (name + ".edited")).read_bytes() == edited  # the edited file kept
    for mirror in ("model_performance.json", "model_performance.csv", "best_models.json"):
        assert (d / mirror).read_bytes() == (expected / mirror).read_bytes()  # rewritten
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        Ledger(d).close()  # reported once, not at every open


def test_records_the_seeds_code_appends_after_an_edit_are_adopted(tmp_path: Path) -> None:
    """The seed's own code rewrites the JSON with a record appended: that one is adopted,
    while an edit of a committed record in the same rewrite is reported, not adopted."""
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log("M", "AAPL", sharpe=1.0, notes="one")
    path = d / "model_performance.json"
    records = json.loads(path.read_text())
    records[0]["sharpe"] = 42.0
    records.append({"timestamp": "2024-05-01T00:00:00", "model_name": "Seed", "ticker": "AAPL",
                    "sharpe": 0.5, "mse": None, "drawdown": None, "total_return": None,
                    "win_rate": None, "accuracy": None, "notes": "appended by the seed"})
    path.write_text(json.dumps(records, indent=2))
    with pytest.warns(RuntimeWarning, match="1 record"), Ledger(d) as led:
        h = led.history()
        assert sorted(h["notes"]) == ["appended by the seed", "one"]
        assert set(h["sharpe"]) == {1.0, 0.5}
    assert sorted(r["notes"] for r in mirror_records(d)) == ["appended by the seed", "one"]


@pytest.mark.parametrize("how", ["seed-code", "csv-writer"])
def test_a_row_the_seeds_code_appends_to_the_csv_is_adopted(tmp_path: Path, how: str) -> None:
    """The seed's code writes the seed's 10 columns; appended below perfledger's header
    (13 columns), that row is a record, not the torn tail of an interrupted append."""
    import csv

    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log("M", "AAPL", sharpe=1.0, notes="one", params={"depth": 3})
    with open(d / "model_performance.csv", "a", newline="") as f:
        csv.writer(f, lineterminator="\n" if how == "seed-code" else "\r\n").writerow(
            ["2024-02-01T00:00:00", "AAPL", "Seed", 2.0, "", "", "", "", "", "from the seed"])
    with Ledger(d) as led:
        h = led.history()
        assert sorted(h["notes"]) == ["from the seed", "one"]
        assert led.best("AAPL")["best_sharpe"]["model"] == "Seed"
    assert sorted(r["notes"] for r in mirror_records(d)) == ["from the seed", "one"]
    assert sorted(r["notes"] for r in csv_records(d)) == ["from the seed", "one"]


def test_a_seed_shaped_row_cut_short_at_the_end_is_still_a_torn_tail(tmp_path: Path) -> None:
    """An append cut right after its notes (no line break yet) is what an interrupted write
    leaves, not a record: dropped when the committed bytes are intact, as before."""
    d = tmp_path / "logs"
    with Ledger(d) as led:
        led.log("M", "AAPL", sharpe=1.0, notes="one")
    with open(d / "model_performance.csv", "a", newline="") as f:
        f.write('"2024-02-01T00:00:00+00:00","AAPL","Lost",2,,,,,,"never committed"')
    with Ledger(d) as led:
        assert led.history()["notes"].tolist() == ["one"]
    assert [r["notes"] for r in csv_records(d)] == ["one"]
