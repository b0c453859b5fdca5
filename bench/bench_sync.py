"""Issue 21, part 1: syncing a node's ledger into a PostgreSQL team store, against bare baselines.

* full sync: ``Ledger.sync`` of a directory ledger of N records into an empty PostgreSQL
  database, against a bare ADBC ingest (``adbc_ingest``, binary COPY) of the same rows
  (ticker, model, timestamp, the six metrics, notes) from an Arrow table already in memory
  into a plain table of a fresh database, same run: target <= 1.5x;
* incremental sync: 1,000 new records on the N-record source, synced into the N-record
  target, against a ``log_many`` of 1,000 other records of the same shape into the same
  target, alternated round by round (medians): target <= 2x, and the sync must have read
  about the 1,000 (``SyncResult.read``), which proves neither million was scanned;
* a second sync with nothing new (information).

Run: ``python -m bench.bench_sync [--records 1000000] [--rounds 5]`` (writes
``bench/results/sync.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import figure, generate_records, throwaway_pg_database, timed, write_results

METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")


def _arrow_rows(df: Any) -> Any:
    import pyarrow as pa

    ts = df["timestamp"].dt.as_unit("us").astype("int64").to_numpy()
    return pa.table({
        "ticker": df["ticker"].astype(str).tolist(), "model_name": df["model_name"].astype(str).tolist(),
        "ts": ts, **{m: df[m].to_numpy(dtype=float) for m in METRICS}, "notes": df["notes"].tolist(),
    })


def bare_ingest_into(url: str, table: Any) -> float:
    """Seconds of a bare ADBC ingest of ``table`` into a new table of the database ``url``
    (the floor every sync figure is a ratio of)."""
    import adbc_driver_postgresql.dbapi as adbc_pg

    conn = adbc_pg.connect(url.replace("postgresql+psycopg", "postgresql", 1), autocommit=True)
    try:
        cur = conn.cursor()
        t0 = time.perf_counter()
        cur.adbc_ingest("bare_sync", table, mode="create")
        elapsed = time.perf_counter() - t0
        cur.close()
    finally:
        conn.close()
    return elapsed


def _bare_ingest(table: Any) -> float:
    with throwaway_pg_database("sync_bare") as url:
        return bare_ingest_into(url, table)


def _fresh(n: int, seed: int, after_us: int) -> Any:
    """``n`` records newer than everything stored (new evaluations are recent)."""
    import pandas as pd

    df = generate_records(10, 10, max(1, n // 100), random_state=seed, days=1.0)
    offset = after_us - int(df["timestamp"].min().value // 1000) + 1_000_000
    df["timestamp"] = df["timestamp"] + pd.to_timedelta(offset, unit="us")
    df["notes"] = [f"fresh-{seed}-{i}" for i in range(len(df))]
    return df


def run(records: int, rounds: int, new: int) -> dict[str, Any]:
    from perfledger import Ledger

    figs: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    g = "sync"
    n_tickers, n_models = 50, 40
    df = generate_records(n_tickers, n_models, max(1, records // (n_tickers * n_models)))
    n = len(df)
    label = f"{n:,}"
    table = _arrow_rows(df)
    with tempfile.TemporaryDirectory() as tmp, throwaway_pg_database("sync") as url:
        node = Ledger(Path(tmp) / "node", mirrors=False)
        raw["source_fill_s"], _ = timed(lambda: node.log_many(df))
        team = Ledger(url)
        # Alternated: the bare ingest, the sync, the bare ingest again (median of the two).
        bare1 = _bare_ingest(table)
        sync_s, result = timed(lambda: node.sync(team))
        bare2 = _bare_ingest(table)
        bare = statistics.median([bare1, bare2])
        assert result.new == n, result
        raw.update(n=n, sync_s=sync_s, bare_s=[bare1, bare2], result=str(result))
        ratio = sync_s / bare
        figs.append(figure(f"sync of {label} records into an empty PostgreSQL store", sync_s, "s",
                           target="<= 1.5x bare ADBC ingest", ok=ratio <= 1.5, baseline=bare,
                           baseline_name="adbc_ingest of the same rows (binary COPY) into a plain table",
                           ratio=ratio, group=g,
                           note=f"{n / sync_s:,.0f} records/s; bare ingest {bare1:.2f} s and {bare2:.2f} s, "
                                "before and after"))
        # Information: the same rows through log_many into another empty database (the insert
        # path a sync shares), so the sync's own share of the time is visible.
        with throwaway_pg_database("sync_lm") as url2:
            other_team = Ledger(url2)
            lm_s, _ = timed(lambda: other_team.log_many(df))
            other_team.close()
        raw["full_log_many_s"] = lm_s
        figs.append(figure(f"log_many of the same {label} rows into an empty PostgreSQL store", lm_s, "s",
                           baseline=bare, baseline_name="bare ADBC ingest", ratio=lm_s / bare, group=g,
                           note="information: the insert path a sync shares (records, derived tables, "
                                f"labels); the sync took {sync_s / lm_s:.2f}x this"))
        again_s, again = timed(lambda: node.sync(team))
        figs.append(figure(f"second sync, nothing new ({label} records each side)", again_s * 1000, "ms",
                           group=g, note=f"{again.summary()}; read {again.read} source records"))

        last_us = int(df["timestamp"].max().value // 1000)
        ours, theirs, reads = [], [], []
        for r in range(rounds):
            batch = _fresh(new, 1000 + r, last_us)
            other = _fresh(new, 5000 + r, last_us)
            node.log_many(batch)
            t, res = timed(lambda: node.sync(team))
            assert res.new == len(batch), res
            ours.append(t)
            reads.append(res.read)
            t, _ = timed(lambda o=other: team.log_many(o))
            theirs.append(t)
            last_us = max(last_us, int(batch["timestamp"].max().value // 1000),
                          int(other["timestamp"].max().value // 1000))
        inc, base = statistics.median(ours), statistics.median(theirs)
        raw.update(incremental_s=ours, log_many_s=theirs, reads=reads)
        figs.append(figure(f"incremental sync of {new:,} new records ({label}-record source and target)",
                           inc * 1000, "ms", target="<= 2x log_many of 1,000", ok=inc / base <= 2,
                           baseline=base * 1000,
                           baseline_name=f"log_many of {new:,} records into the same store",
                           ratio=inc / base, group=g,
                           note=f"alternated, median of {rounds}; source records read per sync: "
                                f"{sorted(set(reads))} (of {label}+)"))
        figs.append(figure("incremental sync: source records read", max(reads), "records",
                           target=f"about {new:,}", ok=max(reads) <= new * 1.05, group=g))
        node.close()
        team.close()
    return {"figures": figs, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="--records 20000 --rounds 3")
    ap.add_argument("--name", default="sync", help="results file name (bench/results/NAME.json)")
    args = ap.parse_args()
    if args.quick:
        args.records, args.rounds = 20_000, 3
    res = run(args.records, args.rounds, args.new)
    path = write_results(args.name, res)
    for f in res["figures"]:
        print(json.dumps(f))
    print("wrote", path)


if __name__ == "__main__":
    main()
