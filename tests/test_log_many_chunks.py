"""A large ``log_many`` is inserted in chunks, in one transaction (issue 23).

One ``log_many`` of 10M rows held more than 16 GB (a Python object per value, and the
mirrors' text, for the whole batch at once). Above ``Ledger.log_many_chunk`` rows it now
inserts a chunk at a time inside its one transaction. What must not change: the ledger it
leaves (records, best models, the mirror files to the byte; leaderboard statistics but for
a mean's last bits, as two calls would merge them) is the one a single insert leaves,
import keys claim the same rows, and it is still all or nothing: a failure in a later chunk
(an exception, or the process killed) leaves no row of any chunk and the files as they were.
"""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from helpers import csv_records, mirror_records

from perfledger import Ledger
from perfledger.records.batch import Batch

FILES = ("model_performance.json", "model_performance.csv", "best_models.json")


def _frame(n: int, tag: str = "r") -> pd.DataFrame:
    """Rows with ties in every metric (best models are decided between equal values), custom
    metrics on some rows only, params/tags, unicode notes, several tickers out of order and
    timestamps shared across tickers."""
    i = np.arange(n)
    return pd.DataFrame({
        "model_name": [f"M{k % 5}" for k in i],
        "ticker": [("Zed", "T1", "Ω2", "A0")[k % 4] for k in i],
        "timestamp": pd.to_datetime(1_767_225_600_000_000 + (i * 7919 % 1000) * 3_600_000_000,
                                    unit="us", utc=True),
        "sharpe": (i % 11) / 4,
        "mse": np.where(i % 6 == 0, np.nan, (i % 3) / 100),
        "win_rate": (i % 5) / 5,
        "ic": np.where(i % 3 == 0, (i % 7) / 10, np.nan),
        "notes": [f"{tag}-{k} ünï ✓" for k in i],
        "params": [{"depth": int(k % 3)} if k % 2 else {} for k in i],
        "tags": [{"run": "nightly"} if k % 5 == 0 else {} for k in i],
    })


def _state(d: Path) -> tuple[pd.DataFrame, dict, pd.DataFrame, dict[str, bytes]]:
    with Ledger(d) as led:
        frame = led.history(include_meta=True)
        best = led.best()
        board = led.leaderboard()
    return frame, best, board, {n: (d / n).read_bytes() for n in FILES}


def _load(d: Path, frame: pd.DataFrame, chunk: int, **kwargs: object) -> int:
    with Ledger(d) as led:
        led.register_metric("ic", higher_is_better=True)
        led.log_many(_frame(40, "before"))  # something already there, its best to beat
        led.log_many_chunk = chunk
        return led.log_many(frame, **kwargs)


def test_chunks_leave_the_ledger_one_insert_leaves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame(1000)
    inserts: list[int] = []
    real = Batch.from_frame
    monkeypatch.setattr(Batch, "from_frame", staticmethod(lambda f: inserts.append(len(f)) or real(f)))
    assert _load(tmp_path / "one", frame, chunk=10**9) == 1000
    assert inserts[-1] == 1000
    inserts.clear()
    assert _load(tmp_path / "chunked", frame, chunk=93) == 1000
    assert inserts[1:] == [93] * 10 + [70]  # the first is the 40 rows logged before
    one, chunked = _state(tmp_path / "one"), _state(tmp_path / "chunked")
    pdt.assert_frame_equal(chunked[0].drop(columns="record_id"), one[0].drop(columns="record_id"),
                           check_exact=True)
    assert chunked[1] == one[1]
    # The running statistics merge chunk by chunk (as two log_many calls merge): the same
    # counts, minima, maxima and latest values, means and variances to the last bits or so.
    pdt.assert_frame_equal(chunked[2], one[2], check_exact=False, rtol=1e-12, atol=0)
    counts = [c for c in one[2].columns if c.endswith(("_count", "_min", "_max", "_latest"))]
    pdt.assert_frame_equal(chunked[2][counts], one[2][counts], check_exact=True)
    for name in FILES:
        assert chunked[3][name] == one[3][name], name
    assert collections.Counter(r["notes"] for r in mirror_records(tmp_path / "chunked")) == \
        collections.Counter(one[0]["notes"])
    assert len(csv_records(tmp_path / "chunked")) == 1040


def test_chunks_claim_import_keys_as_one_insert(tmp_path: Path) -> None:
    """Keys already recorded, and a key repeated within the call, store what one insert stores."""
    frame = _frame(300)
    keys = [f"k{i % 250}" for i in range(300)]  # 50 keys given twice, in different chunks
    stored = {}
    for name, chunk in (("one", 10**9), ("chunked", 7)):
        d = tmp_path / name
        with Ledger(d) as led:
            led.log_many(_frame(20, "before"), import_keys=[f"k{i}" for i in range(0, 200, 10)])
        stored[name] = _load(d, frame, chunk, import_keys=keys)
    assert stored["one"] == stored["chunked"]
    one, chunked = _state(tmp_path / "one"), _state(tmp_path / "chunked")
    pdt.assert_frame_equal(chunked[0].drop(columns="record_id"), one[0].drop(columns="record_id"),
                           check_exact=True)
    assert chunked[1] == one[1]
    for name in FILES:
        assert chunked[3][name] == one[3][name], name


def test_a_failure_in_a_later_chunk_stores_no_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(tmp_path) as led:
        led.log_many(_frame(40, "before"))
    before = {n: (tmp_path / n).read_bytes() for n in FILES}
    calls = []
    real = Batch.from_frame

    def third_fails(f: pd.DataFrame) -> Batch:
        calls.append(len(f))
        if len(calls) == 3:
            raise OSError("the disk went away during the third chunk")
        return real(f)

    monkeypatch.setattr(Batch, "from_frame", staticmethod(third_fails))
    with Ledger(tmp_path) as led:
        led.log_many_chunk = 100
        with pytest.raises(OSError, match="third chunk"):
            led.log_many(_frame(1000, "lost"))
        assert calls == [100, 100, 100]  # two chunks inserted before the failure
        assert len(led.history()) == 40
    monkeypatch.undo()
    assert {n: (tmp_path / n).read_bytes() for n in FILES} == before
    with Ledger(tmp_path) as led:
        assert not led.history()["notes"].str.startswith("lost").any()


KILLED_IN_A_LATER_CHUNK = """
import os, signal, sys, time
sys.path[:0] = {path!r}
import pandas as pd
from perfledger import Ledger
from perfledger.records.batch import Batch
real, calls = Batch.from_frame, []
def third_dies(f):
    calls.append(len(f))
    if len(calls) == 3:  # two chunks inserted and appended to the files
        os.kill(os.getpid(), signal.SIGKILL)
    return real(f)
Batch.from_frame = staticmethod(third_dies)
led = Ledger({directory!r})
led.log_many_chunk = 500
led.log_many(pd.DataFrame([{{"model_name": "M", "ticker": "T", "sharpe": i / 7, "notes": f"lost-{{i}}"}}
                           for i in range(3000)]))
"""


def test_a_process_killed_in_a_later_chunk_stores_no_row(tmp_path: Path) -> None:
    with Ledger(tmp_path) as led:
        led.log_many(_frame(40, "before"))
    before = {n: (tmp_path / n).read_bytes() for n in FILES}
    code = KILLED_IN_A_LATER_CHUNK.format(path=sys.path, directory=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert (tmp_path / "model_performance.csv").stat().st_size > len(before["model_performance.csv"])
    with Ledger(tmp_path) as led:
        notes = list(led.history()["notes"])
    assert len(notes) == 40 and not [n for n in notes if n.startswith("lost-")]
    assert {n: (tmp_path / n).read_bytes() for n in FILES} == before
