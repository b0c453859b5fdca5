"""Where a full sync into an EMPTY PostgreSQL store spends its time, part by part (issue 21).

The end-to-end figure of the sync's initial load (``store/postgres/initial_load.py``)
alone does not say what is left. Here each part runs on its own, serially, against the bare ADBC ingest
of the same rows (``bench_sync.bare_ingest_into``, timed before and after, median), in one run:

* ``read``: the directory source's ``iter_batches`` (SQLite), every chunk;
* ``key``: the content keys and digests of those batches (``batch_keys``, ``record_hashes``);
* ``load``: ``InitialLoad`` with those batches into a fresh database, its own clock per step
  (lock and drops, the COPYs, each index build, each derived table), then the commit;
* ``sync``: ``Ledger.sync`` end to end into another fresh database.

Run: ``python -m bench.bench_initial_load [--records 200000]`` (writes
``bench/results/initial_load.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_sync import _arrow_rows, bare_ingest_into
from bench.common import figure, generate_records, throwaway_pg_database, timed, write_results


def run(records: int, chunk: int) -> dict[str, Any]:
    from perfledger import Ledger
    from perfledger.files.importer import batch_keys, record_hashes

    df = generate_records(50, 40, max(1, records // 2000))
    n = len(df)
    table = _arrow_rows(df)
    parts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        node = Ledger(Path(tmp) / "node", mirrors=False)
        node.log_many(df)
        with throwaway_pg_database("il_bare1") as url:
            bare1 = bare_ingest_into(url, table)
        src = node._ensure()
        gc.disable()  # as the sync does while it runs (files/sync.py: _cycles_uncollected)
        with src.snapshot() as snap:
            parts["read the source (iter_batches)"], batches = timed(lambda: list(snap.iter_batches(chunk)))
        t0 = time.perf_counter()
        keyed = []
        for _ids, batch in batches:
            keyed.append((batch, record_hashes(batch_keys(batch))))
        parts["content keys and digests"] = time.perf_counter() - t0
        gc.enable()
        with throwaway_pg_database("il_load") as url:
            team = Ledger(url)
            team.register_metric("unused_metric", True)  # the schema made, as a sync's first write does
            store = team._writable()
            t0 = time.perf_counter()
            with store.writing() as tx:
                loader = tx.initial_load()
                assert loader is not None
                for batch, hashes in keyed:
                    loader.add(batch, hashes)
                loader.finish()
                t1 = time.perf_counter()
            commit = time.perf_counter() - t1
            load_s = time.perf_counter() - t0
            timings = dict(loader.timings, commit=commit)
            assert team.stats()["records"] == n
            team.close()
        with throwaway_pg_database("il_sync") as url:
            team = Ledger(url)
            sync_s, result = timed(lambda: node.sync(team))
            assert result.new == n and result.initial_load, result
            team.close()
        with throwaway_pg_database("il_bare2") as url:
            bare2 = bare_ingest_into(url, table)
        node.close()
    bare = statistics.median([bare1, bare2])
    g = "initial load parts"
    figs = [figure(f"bare ADBC ingest of {n:,} rows (median of before/after)", bare, "s", group=g,
                   note=f"{bare1:.2f} s and {bare2:.2f} s")]
    for name, s in parts.items():
        figs.append(figure(f"{name}, {n:,} records", s, "s", baseline=bare, ratio=s / bare, group=g))
    for name, s in timings.items():
        figs.append(figure(f"load: {name}", s, "s", baseline=bare, ratio=s / bare, group=g))
    figs.append(figure("load, whole (serial: its batches read and keyed beforehand)", load_s, "s",
                       baseline=bare, ratio=load_s / bare, group=g))
    serial = load_s + sum(parts.values())
    figs.append(figure("read + key + load, serially", serial, "s", baseline=bare, ratio=serial / bare,
                       group=g))
    figs.append(figure(f"Ledger.sync of {n:,} records into an empty PostgreSQL store (end to end)",
                       sync_s, "s",
                       target="<= 1.5x bare ADBC ingest", ok=sync_s / bare <= 1.5, baseline=bare,
                       baseline_name="adbc_ingest of the same rows", ratio=sync_s / bare, group=g))
    return {"figures": figs, "raw": {"n": n, "bare": [bare1, bare2], "parts": parts, "timings": timings,
                                     "load_s": load_s, "sync_s": sync_s}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--chunk", type=int, default=50_000)
    ap.add_argument("--name", default="initial_load", help="results file name (bench/results/NAME.json)")
    args = ap.parse_args()
    res = run(args.records, args.chunk)
    path = write_results(args.name, res)
    for f in res["figures"]:
        print(json.dumps(f))
    print("wrote", path)


if __name__ == "__main__":
    main()
