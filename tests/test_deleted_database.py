"""A database deleted while a process holds it open never locks anyone out.

``rm memory/logs/perfledger.db`` beside a running logger left its ``-wal``/``-shm``
behind; every other process then failed with ``disk I/O error`` until the holder exited.
Now the first opener removes them (openers queued on a lock), creates the new database and
adopts every record from the mirrors; the holder notices at its next call (the file's
identity changed) and reopens. Real processes; no acknowledged record is lost or doubled.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import csv_records, mirror_records

from perfledger import Ledger

HOLDER = """
import json, sys
sys.path[:0] = {path!r}
from perfledger import Ledger
led = Ledger({directory!r})
led.log("M", "T", sharpe=1.0, notes="holder-1")
print("ready", flush=True)
sys.stdin.readline()          # the database is deleted and others wrote meanwhile
led.log("M", "T", sharpe=2.0, notes="holder-2")
print(json.dumps(sorted(led.history()["notes"])), flush=True)
"""

OTHER = """
import json, sys
sys.path[:0] = {path!r}
from perfledger import Ledger
with Ledger({directory!r}) as led:
    led.log("M", "T", sharpe=3.0, notes={note!r})
    print(json.dumps(sorted(led.history()["notes"])))
"""


@pytest.mark.slow
def test_a_database_deleted_under_a_holder_is_adopted_by_others_and_the_holder_reopens(
    tmp_path: Path,
) -> None:
    d = tmp_path / "logs"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(path=sys.path, directory=str(d))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        (d / "perfledger.db").unlink()
        assert (d / "perfledger.db-wal").exists()  # left behind, in use by the holder

        def other(i: int) -> subprocess.CompletedProcess[str]:
            code = OTHER.format(path=sys.path, directory=str(d), note=f"other-{i}")
            return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

        with ThreadPoolExecutor(4) as pool:  # four processes open the deleted ledger at once
            results = list(pool.map(other, range(4)))
        for i, r in enumerate(results):
            assert r.returncode == 0, r.stderr
            notes = json.loads(r.stdout)
            assert "holder-1" in notes and f"other-{i}" in notes  # adopted, and its own stored
            assert max(collections.Counter(notes).values()) == 1
        holder.stdin.write("go\n")
        holder.stdin.flush()
        out, err = holder.communicate(timeout=120)
        assert holder.returncode == 0, err
    finally:
        if holder.poll() is None:
            holder.kill()
    expected = collections.Counter(["holder-1", "holder-2", *(f"other-{i}" for i in range(4))])
    assert collections.Counter(json.loads(out)) == expected  # the holder reopened: it sees them all
    with Ledger(d) as led:
        assert collections.Counter(led.history()["notes"]) == expected
    assert collections.Counter(r["notes"] for r in mirror_records(d)) == expected
    assert collections.Counter(r["notes"] for r in csv_records(d)) == expected
