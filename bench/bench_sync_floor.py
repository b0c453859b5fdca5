"""What a sync into PostgreSQL cannot avoid, each part against the bare ADBC ingest of the
same rows, alternated in one run (medians): the floor under ``bench/bench_sync.py``'s full
sync.

Each round, into a fresh database holding perfledger's schema (``Ledger(url)`` created it):

* ``bare``: ``adbc_ingest`` of the N rows (ticker, model, timestamp, six metrics, notes)
  into a plain new table (the sync benchmark's baseline);
* ``records``: the same rows with their ids by binary ``COPY`` into ``pl_records`` (its
  primary key, three b-tree and two GIN indexes: what the ledger's reads need);
* ``records_btree`` and ``records_pkey``: the same COPY into ``pl_records`` of another fresh
  ledger without its two GIN indexes (params, tags), and without any index but its primary
  key: which of its indexes costs what;
* ``ids``: N ids from the records' sequence (``nextval``), as the bulk path takes them;
* ``keys``: N content keys (32 hex characters, random as digests are) claimed in
  ``pl_import_keys`` by the bulk path's own statement (``INSERT .. SELECT unnest(..) ON
  CONFLICT DO NOTHING RETURNING``), in chunks of 50,000 as a sync sends them: the unique
  index that makes concurrent syncs store a record once.

Run: ``python -m bench.bench_sync_floor [--records 200000] [--rounds 3]`` (writes
``bench/results/sync_floor.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from bench.bench_sync import METRICS, _arrow_rows, bare_ingest_into
from bench.common import figure, generate_records, throwaway_pg_database, write_results


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql", 1)


def _records(url: str, rows: list[tuple[Any, ...]]) -> float:
    import psycopg

    cols = ("id", "ticker", "model_name", "ts", *METRICS, "notes")
    with psycopg.connect(_plain(url)) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        with cur.copy(f"COPY pl_records ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "text", "text", "int8", *["float8"] * len(METRICS), "text"])
            for row in rows:
                cp.write_row(row)
        conn.commit()
        return time.perf_counter() - t0


def _drop_indexes(url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(_plain(url), autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP INDEX {name}")


def _ids(url: str, n: int) -> float:
    import psycopg

    from perfledger.store.postgres.bulk import BulkStatements

    sql = BulkStatements(_dialect()).ids
    with psycopg.connect(_plain(url)) as conn, conn.cursor(binary=True) as cur:
        t0 = time.perf_counter()
        cur.execute(sql, (n,))
        cur.fetchone()
        conn.commit()
        return time.perf_counter() - t0


def _dialect() -> Any:
    from sqlalchemy.dialects.postgresql import psycopg

    return psycopg.dialect()


def _keys(url: str, n: int, seed: int) -> float:
    import random

    import psycopg

    rng = random.Random(seed)
    keys = [f"{rng.getrandbits(128):032x}" for _ in range(n)]
    from perfledger.store.postgres.writer import PgStatements

    sql = PgStatements(_dialect()).claim  # the statement a sync's claim sends
    with psycopg.connect(_plain(url)) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        for i in range(0, n, 50_000):
            cur.execute(sql, {"keys": sorted(keys[i: i + 50_000])})
            cur.fetchall()
            conn.commit()
        return time.perf_counter() - t0


def run(records: int, rounds: int) -> dict[str, Any]:
    from perfledger import Ledger

    df = generate_records(50, 40, max(1, records // 2000))
    n = len(df)
    table = _arrow_rows(df)
    ts = table.column("ts").to_pylist()
    rows = list(zip(range(1, n + 1), df["ticker"].tolist(), df["model_name"].tolist(), ts,
                    *[df[m].tolist() for m in METRICS], df["notes"].tolist(), strict=True))
    times: dict[str, list[float]] = {"bare": [], "records": [], "records_btree": [], "records_pkey": [],
                                     "ids": [], "keys": []}
    gin = ["ix_pl_records_params_gin", "ix_pl_records_tags_gin"]
    btree = ["ix_pl_records_ticker_ts", "ix_pl_records_model_ticker_ts", "ix_pl_records_ts"]
    for r in range(rounds):
        with throwaway_pg_database(f"floor{r}") as url:
            Ledger(url).register_metric("floor_schema", True)  # the schema, created
            times["bare"].append(bare_ingest_into(url, table))
            times["records"].append(_records(url, rows))
            times["ids"].append(_ids(url, n))
            times["keys"].append(_keys(url, n, r))
        for variant, dropped in (("records_btree", gin), ("records_pkey", gin + btree)):
            with throwaway_pg_database(f"floor{r}{variant}") as url:
                Ledger(url).register_metric("floor_schema", True)
                _drop_indexes(url, dropped)
                times[variant].append(_records(url, rows))
    med = {k: statistics.median(v) for k, v in times.items()}
    names = {
        "records": "binary COPY of the rows into pl_records (pkey, 3 b-tree, 2 GIN indexes)",
        "records_btree": "the same COPY, pl_records without its 2 GIN indexes",
        "records_pkey": "the same COPY, pl_records with its primary key only",
        "ids": "their ids from the records' sequence (nextval)",
        "keys": "their content keys claimed in pl_import_keys (ON CONFLICT DO NOTHING RETURNING)",
    }
    figs = [figure(f"floor, {n:,} rows: {names[k]}", med[k], "s", baseline=med["bare"],
                   baseline_name="adbc_ingest of the same rows into a plain table",
                   ratio=med[k] / med["bare"],
                   group="sync floor", note=f"median of {rounds} alternated rounds: "
                                            + ", ".join(f"{t:.2f}" for t in times[k]))
            for k in names]
    gin_s, btree_s = med["records"] - med["records_btree"], med["records_btree"] - med["records_pkey"]
    figs.append(figure(f"floor, {n:,} rows: pl_records' indexes", med["records"] - med["records_pkey"], "s",
                       baseline=med["bare"], baseline_name="adbc_ingest of the same rows",
                       ratio=(med["records"] - med["records_pkey"]) / med["bare"], group="sync floor",
                       note=f"the 2 GIN indexes {gin_s:.2f} s, the 3 b-tree indexes {btree_s:.2f} s "
                            "(differences of the medians)"))
    floor = med["records"] + med["ids"] + med["keys"]
    figs.append(figure(f"floor, {n:,} rows: the three together", floor, "s", baseline=med["bare"],
                       baseline_name="adbc_ingest of the same rows", ratio=floor / med["bare"],
                       group="sync floor", note="a sync cannot take less than this (before reading "
                                                "the source, keying it, or merging the derived tables)"))
    return {"figures": figs, "raw": {"n": n, **times, "load": os.getloadavg()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--name", default="sync_floor")
    args = ap.parse_args()
    res = run(args.records, args.rounds)
    path = write_results(args.name, res)
    for f in res["figures"]:
        print(json.dumps(f))
    print("wrote", path)


if __name__ == "__main__":
    main()
