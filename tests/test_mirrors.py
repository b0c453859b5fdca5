"""The seed's files mirror the database exactly, and repair themselves after damage."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

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
            look(d, ".perfledger-journal")  # the append journal (see mirrors/undo.py)
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


def test_best_models_json_follows_new_tickers_with_and_without_metrics(ledger: Ledger) -> None:
    """A ticker's first record changes the best-models document (the seed lists every
    ticker), whether or not it carries a metric; a later worse record changes nothing."""
    path = ledger.directory / "best_models.json"
    ledger.log("M", "A", notes="no metric yet")
    assert "A" in json.loads(path.read_text())
    ledger.log("M", "B", sharpe=1.0)
    ledger.log("N", "B", sharpe=0.5)  # worse: the document stays as it was
    ledger.log("M", "C", metrics={"unregistered": 1.0})
    doc = json.loads(path.read_text())
    assert set(doc) == {"A", "B", "C"} and doc == ledger.best()
    assert doc["B"]["best_sharpe"]["model"] == "M"



# ---------------------------------------------------------------------- restored copies

MIRRORS = ("model_performance.json", "model_performance.csv")
SEED_FILES = (*MIRRORS, "best_models.json")


def _copytree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)  # new inodes, the same mtimes
    return dst


def _copy_files(src: Path, dst: Path) -> Path:
    dst.mkdir()  # new inodes and new mtimes, as a plain cp gives
    for path in src.iterdir():
        shutil.copy(path, dst / path.name)
        os.utime(dst / path.name, ns=(0, os.stat(path).st_mtime_ns + 10**9))
    return dst


def _touched(src: Path, dst: Path) -> Path:
    for name in SEED_FILES:  # the same inodes, new mtimes (touch, a restore in place)
        st = os.stat(src / name)
        os.utime(src / name, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    return src


COPIES = {"copytree": _copytree, "cp": _copy_files, "touch": _touched}


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A closed ledger of 305 records; one early record has sharpe 1.2345, far from the end."""
    d = tmp_path / "original"
    led = Ledger(d)
    led.log("M", "T0", sharpe=1.2345, notes="marked")
    led.log_many([{"model_name": f"M{i % 3}", "ticker": f"T{i % 4}", "sharpe": i / 100,
                   "mse": 0.01 * (i + 1), "notes": f"bulk-{i}"} for i in range(300)])
    fill(led, 4)
    led.close()
    return d


@pytest.fixture
def adoptions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the ledgers opened from now on adopt (read through the importer)."""
    import perfledger.ledger
    from perfledger.files.importer import adopt_file

    seen: list[str] = []

    def spy(tx: object, path: Path, held: int | None = None) -> object:
        seen.append(path.name)
        return adopt_file(tx, path, held)  # type: ignore[arg-type]

    monkeypatch.setattr(perfledger.ledger, "adopt_file", spy)
    return seen


def assert_mirrors_are_the_database(led: Ledger, tmp_path: Path) -> None:
    """Each seed file is byte for byte what an export of the database writes."""
    exported = led.export_seed_files(tmp_path / "export")
    for name in SEED_FILES:
        assert (led.directory / name).read_bytes() == (exported / name).read_bytes(), name
    shutil.rmtree(exported)


# ---------------------------------------------------------------------- the committed state


def _identities(d: Path) -> dict[str, tuple[int, int, bytes]]:
    return {name: (os.stat(d / name).st_ino, os.stat(d / name).st_mtime_ns, (d / name).read_bytes())
            for name in SEED_FILES}


def _repairs_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "perfledger" and r.levelno >= logging.INFO]


def assert_committed(directory: Path, scratch: Path, adoptions: list[str],
                     caplog: pytest.LogCaptureFixture) -> None:
    """The files are what the database commits, and the state says so truly: they are an
    export of the database byte for byte; the ledger reopens without touching them or
    logging a repair (their identities were recorded right); a copy of the directory opens
    without adopting anything, its mirrors unchanged (so were their content CRCs)."""
    before = _identities(directory)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="perfledger"), Ledger(directory) as led:
        assert _repairs_logged(caplog) == []
        assert_mirrors_are_the_database(led, scratch)
    assert _identities(directory) == before
    copy = scratch / "copy to check"
    shutil.copytree(directory, copy)
    with Ledger(copy) as led:
        assert {n: (copy / n).read_bytes() for n in MIRRORS} == {n: before[n][2] for n in MIRRORS}
        assert_mirrors_are_the_database(led, scratch)
    shutil.rmtree(copy)
    assert adoptions == []


def test_after_every_kind_of_write_the_files_are_the_committed_ones(
    ledger_dir: Path, tmp_path: Path, adoptions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Each write records the files' new state from what it wrote (the identities from the
    append's own ``fstat``, the CRCs extended by the bytes written), never reading them back:
    after each kind of write that state must be the files' real one."""
    from perfledger.files.transfer import copy_store

    long_note = "n" * 5000
    steps = {
        "first record": lambda led: led.log("M", "T", sharpe=1.0),
        "best unchanged": lambda led: led.log("M", "T", sharpe=0.5),
        "best rewritten": lambda led: led.log("M", "T", sharpe=2.0),
        "a new ticker, a long row": lambda led: led.log("M", "U", sharpe=0.1, notes=long_note),
        "a bulk load": lambda led: led.log_many([{"model_name": "B", "ticker": "T", "sharpe": i * 0.01}
                                                 for i in range(2500)]),
        "after the bulk load": lambda led: led.log("M", "T", sharpe=-1.0, notes="after bulk"),
        "a registration": lambda led: led.register_metric("ic", higher_is_better=True),
        "a rebuild": lambda led: led.rebuild_mirrors(),
    }
    for name, step in steps.items():
        with Ledger(ledger_dir) as led:
            step(led)
        assert_committed(ledger_dir, tmp_path, adoptions, caplog), name

    # A copy appends chunk after chunk in one transaction, each from the previous one's state.
    source, target = Ledger(ledger_dir), Ledger(tmp_path / "target")
    assert copy_store(source._ensure(), target._writable(), target._mirrors, chunk=700) == 2505
    source.close()
    target.close()
    assert_committed(tmp_path / "target", tmp_path, adoptions, caplog)
    with Ledger(tmp_path / "target") as led:
        led.clear()
    assert_committed(tmp_path / "target", tmp_path, adoptions, caplog)


def test_a_same_size_rewrite_is_noticed_by_its_mtime(ledger: Ledger) -> None:
    """A file is the committed one when its inode, size and mtime are: a rewrite that keeps
    the size is noticed by its new mtime at the next write, which reports the edited record
    (not a new one: the database is the truth) and rewrites the file. (One that keeps the
    mtime too is not noticed: neither perfledger nor the seed's code makes one.)"""
    ledger.log("M", "T", sharpe=1.0, notes="aaaa")
    ledger.log("M", "T", sharpe=0.5, notes="bbbb")
    path = ledger.directory / "model_performance.csv"
    st = os.stat(path)
    path.write_bytes(path.read_bytes().replace(b"bbbb", b"cccc"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert os.stat(path).st_size == st.st_size
    with pytest.warns(RuntimeWarning, match="changed in the file"):
        ledger.log("M", "T", sharpe=0.2, notes="dddd")
    assert sorted(ledger.history()["notes"]) == ["aaaa", "bbbb", "dddd"]
    assert sorted(r["notes"] for r in csv_records(ledger.directory)) == ["aaaa", "bbbb", "dddd"]


def legacy_state(d: Path, shape: str, upto: int | None = None) -> str:
    """The state an earlier release committed for the files as they are now (the shapes
    ``parse_state`` documents): ``3-field`` (release 59663d5: inode, size, mtime), a fourth
    field digesting the last 4 KiB (``blake2b``, then ``crc32``), then ``content`` (whole
    content CRCs, ``upto``)."""
    doc: dict[str, Any] = {}
    content = {}
    for key, name, keep in (("json", "model_performance.json", 2), ("csv", "model_performance.csv", 0),
                            ("best", "best_models.json", 0)):
        data, st = (d / name).read_bytes(), os.stat(d / name)
        region = data[: len(data) - keep][-4096:]
        doc[key] = [st.st_ino, st.st_size, st.st_mtime_ns]
        if shape == "blake2b":
            doc[key].append(hashlib.blake2b(region, digest_size=12).hexdigest())
        elif shape in ("crc32", "content"):
            doc[key].append(f"crc32:{zlib.crc32(region):08x}")
        content[key] = f"crc32:{zlib.crc32(data[: len(data) - keep]):08x}"
    if shape == "content":
        doc["content"] = content
        doc["upto"] = upto
    return json.dumps(doc)


def commit_state(directory: Path, text: str) -> None:
    """Store ``text`` as the mirrors' committed state, as an earlier release left it (the
    ledger is closed)."""
    import sqlite3

    con = sqlite3.connect(directory / "perfledger.db")
    with con:
        con.execute("UPDATE pl_meta SET value = ? WHERE key = 'mirrors'", (text,))
    con.close()


LEGACY_SHAPES = ("3-field", "blake2b", "crc32", "content")


@pytest.mark.parametrize("shape", LEGACY_SHAPES)
def test_a_state_saved_by_an_earlier_release_is_read(
    ledger_dir: Path, tmp_path: Path, shape: str, adoptions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every shape of state an earlier release committed converts into the current one
    (``parse_state``: identity kept, a tail digest dropped, content CRCs where it had them).
    A ledger left so, its files in step, opens without any repair; a change to a file is
    still noticed; this release's next write commits CRCs, so a copy opens without adoption."""
    from perfledger.mirrors.state import FileState, MirrorState, parse_state

    with Ledger(ledger_dir) as led:
        for i in range(3):
            led.log("M", "T", sharpe=float(i), notes=f"n{i}")
    text = legacy_state(ledger_dir, shape, upto=3)
    want = {}
    for key, name, keep in (("json", "model_performance.json", 2), ("csv", "model_performance.csv", 0),
                            ("best", "best_models.json", 0)):
        st, data = os.stat(ledger_dir / name), (ledger_dir / name).read_bytes()
        crc = zlib.crc32(data[: len(data) - keep]) if shape == "content" else None
        want[key] = FileState(st.st_size, crc, st.st_ino, st.st_mtime_ns)
    assert parse_state(text, last_id=3) == MirrorState(want, upto=3)
    commit_state(ledger_dir, text)
    before = _identities(ledger_dir)
    with caplog.at_level(logging.INFO, logger="perfledger"), Ledger(ledger_dir):
        assert _repairs_logged(caplog) == []
    assert _identities(ledger_dir) == before

    with Ledger(ledger_dir) as led:
        led.log("M", "T", sharpe=9.0, notes="n3")
    assert_committed(ledger_dir, tmp_path, adoptions, caplog)

    commit_state(ledger_dir, legacy_state(ledger_dir, shape, upto=4))
    path = ledger_dir / "model_performance.csv"
    st = os.stat(path)
    path.write_bytes(path.read_bytes().replace(b"n1", b"n7"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with pytest.warns(RuntimeWarning, match="changed in the file"), Ledger(ledger_dir) as led:
        # An edit of a committed record is noticed and is not a new record (the database is
        # the truth; the edited file is kept).
        assert sorted(led.history()["notes"]) == ["n0", "n1", "n2", "n3"]
        assert_mirrors_are_the_database(led, tmp_path)
    assert b"n7" in (ledger_dir / "model_performance.csv.edited").read_bytes()


@pytest.mark.parametrize("text", ['{"v": 3, "json": [1, 2, 3]}', "not json", "[1, 2]"])
def test_a_state_that_does_not_read_trusts_nothing_and_loses_nothing(
    ledger_dir: Path, tmp_path: Path, text: str
) -> None:
    """A state saved by a later release, or damaged: every file is taken as out of step,
    read and adopted (nothing new in them), and rewritten from the database."""
    from perfledger.mirrors.state import MirrorState, parse_state

    assert parse_state(text, last_id=7) == MirrorState(upto=7)
    with Ledger(ledger_dir) as led:
        fill(led, 5)
        notes = sorted(led.history()["notes"])
    commit_state(ledger_dir, text)
    with Ledger(ledger_dir) as led:
        assert sorted(led.history()["notes"]) == notes
        assert_mirrors_are_the_database(led, tmp_path)


def test_a_copy_that_fails_part_way_leaves_the_target_as_it_was(
    tmp_path: Path, adoptions: list[str]
) -> None:
    """A copy into a directory ledger is one transaction, its files included: when a later
    chunk fails (a full disk), the target's database AND its three files are as before, the
    next open adopts nothing, and a rerun copies every record exactly once."""
    import contextlib
    import errno

    from perfledger.files.transfer import copy_store

    src = Ledger(tmp_path / "src")
    src.log_many([{"model_name": f"M{i % 3}", "ticker": f"T{i % 4}", "sharpe": i / 10,
                   "ic": i / 100, "notes": f"copied-{i}"} for i in range(30)])
    dst = Ledger(tmp_path / "dst")
    dst.clear()  # an existing empty ledger (opening alone creates nothing: no files to compare)
    store = dst._writable()
    before = _identities(dst.directory)
    inserts: list[int] = []
    writing = store.writing

    @contextlib.contextmanager
    def failing_writing():  # the target's transaction, whose second insert fails
        with writing() as tx:
            insert = tx.insert

            def second_fails(batch):  # type: ignore[no-untyped-def]
                inserts.append(len(batch))
                if len(inserts) == 2:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return insert(batch)

            tx.insert = second_fails  # type: ignore[method-assign]
            yield tx

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store, "writing", failing_writing)
        with pytest.raises(OSError, match="No space left"):
            copy_store(src._ensure(), store, dst._mirrors, chunk=10)
    assert inserts == [10, 10]
    assert dst.stats()["records"] == 0
    assert _identities(dst.directory) == before
    dst.close()

    with Ledger(tmp_path / "dst") as again:
        assert adoptions == []
        assert again.stats()["records"] == 0
        assert_mirrors_are_the_database(again, tmp_path)
        assert src.copy_to(again) == 30
        assert sorted(again.history()["notes"]) == sorted(src.history()["notes"])
        assert_mirrors_are_the_database(again, tmp_path)
    src.close()


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_of_the_directory_opens_without_adopting_or_rewriting(
    built: Path, tmp_path: Path, how: str, adoptions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A restored backup has new inodes (and, copied with cp, new mtimes) but the committed
    bytes: it opens after one read of each mirror, nothing adopted, no mirror rewritten."""
    copy = COPIES[how](built, tmp_path / "copy")
    before = {name: (os.stat(copy / name).st_ino, (copy / name).read_bytes()) for name in MIRRORS}
    with caplog.at_level(logging.INFO, logger="perfledger"):
        led = Ledger(copy)
    assert adoptions == []
    assert not [r for r in caplog.records if "adopted" in r.getMessage()]
    assert sum("is the committed file under a new inode" in m for m in _repairs_logged(caplog)) == 2
    assert {name: (os.stat(copy / name).st_ino, (copy / name).read_bytes()) for name in MIRRORS} == before
    assert led.stats()["records"] == 305
    led.close()
    # The copy's identity was recorded: the next open reads nothing, repairs nothing.
    assert_committed(copy, tmp_path, adoptions, caplog)


def test_a_same_size_edit_inside_a_copy_is_noticed(built: Path, tmp_path: Path, adoptions: list[str]) -> None:
    """One digit changed far from the end of the copied JSON: same size, same last 4 KiB, but
    not the committed content. The edit is noticed (read, reported), it is not a new record:
    the database is the truth, the edited file is kept, both mirrors show the database."""
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    path = copy / "model_performance.json"
    data = path.read_bytes()
    at = data.index(b"1.2345")
    assert data.count(b"1.2345") == 1 and at < len(data) - 4096
    path.write_bytes(data[:at] + b"1.2346" + data[at + 6:])
    with pytest.warns(RuntimeWarning, match="changed in the file"):
        led = Ledger(copy)
    assert adoptions[:1] == ["model_performance.json"]
    h = led.history()
    assert len(h) == 305 and set(h.loc[h["notes"] == "marked", "sharpe"]) == {1.2345}
    assert b"1.2346" in (copy / "model_performance.json.edited").read_bytes()
    assert_mirrors_match(led)
    assert_mirrors_are_the_database(led, tmp_path)
    led.close()



def test_a_state_without_content_crcs_still_adopts_a_copy(
    built: Path, tmp_path: Path, adoptions: list[str]
) -> None:
    """A release before the content CRCs saved none (and one running beside this one drops
    them when it saves): a copy taken then is adopted, as it was, losing and doubling
    nothing. This release's first write reads the CRCs once (so do an adoption and
    rebuild_mirrors()): a copy taken after it opens without adoption."""
    commit_state(built, legacy_state(built, "crc32"))
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    led = Ledger(copy)
    assert sorted(adoptions) == sorted(MIRRORS)
    assert led.stats()["records"] == 305
    assert_mirrors_are_the_database(led, tmp_path)
    led.close()
    adoptions.clear()
    shutil.copytree(copy, tmp_path / "copy of the adopted copy")
    Ledger(tmp_path / "copy of the adopted copy").close()
    assert adoptions == []

    with Ledger(built) as led:
        led.log("M", "T0", sharpe=0.0, notes="by this release")
    shutil.copytree(built, tmp_path / "copy after a write")
    with Ledger(tmp_path / "copy after a write") as led:
        assert led.stats()["records"] == 306
    assert adoptions == []

    commit_state(built, legacy_state(built, "crc32"))
    with Ledger(built) as led:
        led.rebuild_mirrors()
    shutil.copytree(built, tmp_path / "copy after a rebuild")
    Ledger(tmp_path / "copy after a rebuild").close()
    assert adoptions == []


def test_logging_into_an_opened_copy_keeps_files_and_database_in_step(
    built: Path, tmp_path: Path, adoptions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The content CRCs a copy's state carries are extended by every append: after writes,
    another copy still opens without adopting, and the files are the database's."""
    copy = tmp_path / "copy"
    _copy_files(built, copy)
    led = Ledger(copy)
    fill(led, 3, start=10)
    led.log_many([{"model_name": "B", "ticker": "T9", "sharpe": 5.0, "notes": f"late-{i}"}
                  for i in range(2500)])
    led.log("M", "T0", sharpe=-1.0, notes="last")
    led.close()
    assert_committed(copy, tmp_path, adoptions, caplog)
    again = tmp_path / "again"
    shutil.copytree(copy, again)
    led = Ledger(again)
    assert adoptions == []
    assert len(mirror_records(again)) == led.stats()["records"] == 305 + 3 + 2500 + 1
    assert_mirrors_match(led)
    assert_mirrors_are_the_database(led, tmp_path)
    led.close()


def test_records_stored_without_the_mirrors_reach_them_when_the_directory_is_next_opened(
    tmp_path: Path, adoptions: list[str]
) -> None:
    """``Ledger(dir, mirrors=False)`` stores records the files do not get. They used to stay
    missing from the mirrors for good (the files still matched their committed state); now
    the next ledger that keeps the mirrors appends them, in id order, with the best-models
    document rewritten, and nothing is adopted or doubled."""
    d = tmp_path / "led"
    with Ledger(d) as led:
        led.log("M", "T", sharpe=1.0, notes="mirrored")
    with Ledger(d, mirrors=False) as fast:
        fast.log("M", "T", sharpe=2.0, notes="not mirrored, one")
        fast.log_many([{"model_name": "N", "ticker": "U", "sharpe": 5.0, "ic": 0.3,
                        "notes": f"bulk {i}"} for i in range(2500)])  # a new, best ticker
    assert len(mirror_records(d)) == 1
    led = Ledger(d)
    assert [r["notes"] for r in mirror_records(d)][:3] == ["mirrored", "not mirrored, one", "bulk 0"]
    assert_mirrors_match(led)
    assert_mirrors_are_the_database(led, tmp_path)
    assert "U" in json.loads((d / "best_models.json").read_text())
    led.log("M", "T", sharpe=0.5, notes="after")
    led.close()
    with Ledger(d) as again:
        assert again.stats()["records"] == 2503
        assert_mirrors_are_the_database(again, tmp_path)
    assert adoptions == []


def test_an_open_ledger_mirrors_what_another_stored_without_mirrors_at_its_next_write(
    tmp_path: Path,
) -> None:
    """Both open at once: the ledger keeping the mirrors appends the other's records (stored
    after it opened) before its own, inside its write transaction."""
    d = tmp_path / "led"
    led = Ledger(d)
    led.log("M", "T", sharpe=1.0, notes="one")
    fast = Ledger(d, mirrors=False)
    fast.log("M", "T", sharpe=3.0, notes="two")
    led.log("M", "T", sharpe=2.0, notes="three")
    assert [r["notes"] for r in mirror_records(d)] == ["one", "two", "three"]
    assert json.loads((d / "best_models.json").read_text())["T"]["best_sharpe"]["value"] == 3.0
    assert_mirrors_match(led)
    fast.close()
    led.close()


def test_a_record_file_replaced_between_logs_gets_the_next_append(tmp_path: Path) -> None:
    """The record files stay open between logs (``HeldFiles``): a file replaced at its path
    meanwhile (a restored copy put in place by rename: same bytes, new inode) must get the
    next record, not the replaced file that the held descriptor still points to."""
    with Ledger(tmp_path) as led:
        led.log("A", "AAPL", sharpe=1.0)
        for name in ("model_performance.json", "model_performance.csv"):
            path = tmp_path / name
            copy = tmp_path / f"{name}.copy"
            shutil.copy2(path, copy)
            old_inode = path.stat().st_ino
            os.replace(copy, path)
            assert path.stat().st_ino != old_inode
        led.log("B", "AAPL", sharpe=2.0)
    records = json.loads((tmp_path / "model_performance.json").read_text())
    assert [r["model_name"] for r in records] == ["A", "B"]
    rows = (tmp_path / "model_performance.csv").read_text().splitlines()
    assert len(rows) == 3 and '"B"' in rows[2]
