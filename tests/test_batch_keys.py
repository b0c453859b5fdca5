"""``batch_keys``/``record_hashes`` (files/importer.py), built a column at a time for sync,
give exactly :func:`record_key`/:func:`record_hash` of each record: the identity every
earlier sync and import stored in ``pl_import_keys`` must not change."""

from __future__ import annotations

import math

from perfledger.files.importer import batch_keys, record_hash, record_hashes, record_key
from perfledger.records.batch import Batch
from perfledger.records.record import CORE_METRICS


def test_column_keys_equal_the_record_by_record_keys() -> None:
    values = [None, math.nan, -0.0, 0.0, 1, 2.5, 1e300, -7.25]
    n = 40
    batch = Batch(
        ticker=[f"T{i % 3}" for i in range(n)],
        model_name=["M'\"\\x" if i % 4 == 0 else "M" for i in range(n)],
        ts_us=[1_700_000_000_000_000 + i // 2 for i in range(n)],
        core={m: [values[(i + j) % len(values)] for i in range(n)] for j, m in enumerate(CORE_METRICS)},
        notes=[("", "a\r\nb", "a\r\r\nb\r", "x\ny")[i % 4] for i in range(n)],
        metrics=[{} if i % 3 else {"ic": values[i % len(values)], "b": 1.5, "a": -0.0} for i in range(n)],
        params=[{} if i % 2 else {"lr": 0.1, "grid": [1, 2.5e20], "n": {"z": 1, "a": None}}
                for i in range(n)],
        tags=[{} if i % 5 else {"run": "é", "k": "v"} for i in range(n)],
    )
    want = [
        record_key(batch.ts_us[i], batch.ticker[i], batch.model_name[i],
                   (batch.core[m][i] for m in CORE_METRICS), batch.notes[i], batch.metrics[i],
                   batch.params[i], batch.tags[i])
        for i in range(n)
    ]
    got = batch_keys(batch)
    assert got == want
    assert [repr(k) for k in got] == [repr(k) for k in want]
    assert record_hashes(got) == [record_hash(k) for k in want]
