"""Issue 11: a PostgreSQL ledger of a million records, against bare baselines in the same run.

* ingest: one ``log_many`` of every record (information);
* ``history(ticker)`` against a bare ADBC fetch of the same rows from a plain indexed table
  (a copy of ``pl_records`` without perfledger's columns of meta, one index on
  ``(ticker, ts, id)``), same database, timed alternately: target <= 2x;
* ``best(ticker)``, ``leaderboard(ticker)``, ``leaderboard()``;
* 8 processes of single ``log()`` calls against 8 processes that each do, per record, a bare
  ``INSERT`` plus the best-row upsert (one transaction per record, psycopg, no perfledger),
  processes started and connected before the clock, same run: target >= 1/3 of the bare
  rate, 0 lost, ``best()`` equal to a recomputation from history.

Run: ``python -m bench.bench_pg [--records 1000000]`` (writes ``bench/results/pg.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from bench.bench_scale import _best_matches_history, _pg_worker, run_writers
from bench.common import (
    figure,
    generate_records,
    interleaved_medians,
    median_time,
    throwaway_pg_database,
    timed,
    write_results,
)

MS = 1000.0
METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")

_BARE_DDL = (
    "CREATE TABLE bare_w (id BIGSERIAL PRIMARY KEY, ticker TEXT NOT NULL, model_name TEXT NOT NULL, "
    "ts BIGINT NOT NULL, " + ", ".join(f"{m} DOUBLE PRECISION" for m in METRICS) + ", notes TEXT NOT NULL)",
    "CREATE INDEX ON bare_w (ticker, ts, id)",
    "CREATE TABLE bare_best (ticker TEXT, metric TEXT, model_name TEXT NOT NULL, value DOUBLE PRECISION "
    "NOT NULL, ts BIGINT NOT NULL, record_id BIGINT NOT NULL, PRIMARY KEY (ticker, metric))",
)
_BARE_INSERT = (
    "INSERT INTO bare_w (ticker, model_name, ts, " + ", ".join(METRICS) + ", notes) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_BARE_BEST = (
    "INSERT INTO bare_best (ticker, metric, model_name, value, ts, record_id) VALUES (%s, 'sharpe', %s, %s, "
    "%s, %s) ON CONFLICT (ticker, metric) DO UPDATE SET model_name = excluded.model_name, value = "
    "excluded.value, ts = excluded.ts, record_id = excluded.record_id WHERE excluded.value > bare_best.value"
)


def _bare_worker(url: str, wid: int, k: int, barrier: Any, out: Any) -> None:
    """The floor: per record, one transaction of a bare INSERT and the best-row upsert."""
    import psycopg

    from bench.common import generate_records, record_dicts

    recs = record_dicts(generate_records(10, 10, max(1, -(-k // 100)), random_state=100 + wid).head(k))
    conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1))
    errors: list[str] = []
    barrier.wait()
    for i, r in enumerate(recs):
        ts = int(time.time() * 1e6)
        try:
            with conn.transaction():
                rid = conn.execute(_BARE_INSERT, (r["ticker"], r["model_name"], ts,
                                                  *(r[m] for m in METRICS), f"w{wid}-{i}")).fetchone()[0]
                conn.execute(_BARE_BEST, (r["ticker"], r["model_name"], r["sharpe"], ts, rid))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    conn.close()
    out.put((wid, errors))


def writers(procs: int, k: int) -> dict[str, Any]:
    """Our writers and the bare floor, alternated twice into fresh databases; medians."""
    from perfledger import Ledger

    ours: list[float] = []
    floor: list[float] = []
    res: dict[str, Any] = {"procs": procs, "k": k, "errors": [], "lost": 0, "best_ok": True, "mismatches": []}
    for _ in range(2):
        with throwaway_pg_database("pgw") as url:
            import psycopg

            with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1), autocommit=True) as c:
                for ddl in _BARE_DDL:
                    c.execute(ddl)
            seconds, errors = run_writers(_bare_worker, url, procs, k)
            floor.append(procs * k / seconds)
            res["errors"] += errors
            with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1)) as c:
                bare_n = c.execute("SELECT COUNT(*) FROM bare_w").fetchone()[0]
            res["lost"] += procs * k - bare_n
        with throwaway_pg_database("pgw") as url:
            Ledger(url).close()  # schema created once, as a team's first user would
            seconds, errors = run_writers(_pg_worker, url, procs, k)
            ours.append(procs * k / seconds)
            res["errors"] += errors
            with Ledger(url) as led:
                notes = set(led.history()["notes"])
                expected = {f"w{w}-{i}" for w in range(procs) for i in range(k)}
                res["lost"] += len(expected - notes)
                ok, mismatches = _best_matches_history(led)
                res["best_ok"] = res["best_ok"] and ok
                res["mismatches"] += mismatches
    res.update(ours=ours, floor=floor, rate=statistics.median(ours), floor_rate=statistics.median(floor))
    return res


def _bare_fetch(con: Any, ticker: str) -> Any:
    cur = con.cursor()
    try:
        cur.execute("SELECT ts, model_name, " + ", ".join(METRICS) + ", notes FROM bare_h "
                    "WHERE ticker = $1 ORDER BY ts, id", (ticker,))
        return cur.fetch_arrow_table()
    finally:
        cur.close()


def run(records: int, writer_k: int, procs: int) -> dict[str, Any]:
    import adbc_driver_postgresql.dbapi as adbc_pg
    import psycopg

    from perfledger import Ledger
    from perfledger.store.postgres.arrow import conninfo

    figs: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    g = "pg"
    n_tickers, n_models = 50, 40
    evals = max(1, records // (n_tickers * n_models))
    reps = 9
    gen_s, df = timed(lambda: generate_records(n_tickers, n_models, evals))
    n = len(df)
    label = f"{n:,}"
    with throwaway_pg_database("pg") as url:
        led = Ledger(url)
        ingest_s, _ = timed(lambda: led.log_many(df))
        raw.update(n=n, generate_s=gen_s, ingest_s=ingest_s)
        figs.append(figure(f"PostgreSQL log_many({label} rows)", ingest_s, "s", group=g,
                           note=f"{n / ingest_s:,.0f} records/s, one call into an empty database"))
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql", 1), autocommit=True) as c:
            c.execute("CREATE TABLE bare_h AS SELECT id, ticker, model_name, ts, " + ", ".join(METRICS)
                      + ", notes FROM pl_records")
            c.execute("CREATE INDEX ON bare_h (ticker, ts, id)")
            c.execute("VACUUM ANALYZE bare_h")
            c.execute("VACUUM ANALYZE pl_records")
        bare = adbc_pg.connect(conninfo(led._store.engine), autocommit=True)
        ticker = "T000"
        rows = len(led.history(ticker=ticker))
        assert _bare_fetch(bare, ticker).num_rows == rows
        store = led._store
        reader = store._arrow

        def row_path() -> Any:
            store._arrow = None  # as without the ADBC driver
            try:
                return led.history(ticker=ticker)
            finally:
                store._arrow = reader

        med = interleaved_medians({"pl": lambda: led.history(ticker=ticker), "rows": row_path,
                                   "bare": lambda: _bare_fetch(bare, ticker)}, repeat=reps, warmup=2)
        bare.close()
        ratio = med["pl"] / med["bare"]
        raw.update(history_s=med["pl"], bare_s=med["bare"], row_path_s=med["rows"])
        figs.append(figure(f"PostgreSQL history(ticker) ({rows:,} of {label} rows)", med["pl"] * MS, "ms",
                           target="<= 2x bare ADBC fetch", ok=ratio <= 2, baseline=med["bare"] * MS,
                           baseline_name="ADBC fetch of the same rows from a plain indexed table",
                           ratio=ratio, group=g, note=f"timed alternately, median of {reps}; "
                           f"columnar reader: {type(led._store._arrow).__name__}"))
        figs.append(figure(f"PostgreSQL history(ticker) without the ADBC driver ({rows:,} rows)",
                           med["rows"] * MS, "ms", baseline=med["pl"] * MS, baseline_name="with the driver",
                           ratio=med["rows"] / med["pl"], group=g,
                           note="information: the row path (psycopg, a Python object per value), same run"))
        for name, fn, limit, rep in (("best(ticker)", lambda: led.best(ticker), 5, 30),
                                     ("leaderboard(ticker)", lambda: led.leaderboard(ticker), 100, 9),
                                     ("leaderboard() all tickers", led.leaderboard, 500, 5)):
            t = median_time(fn, repeat=rep)
            figs.append(figure(f"PostgreSQL {name} on {label} records", t * MS, "ms", target=f"<= {limit} ms",
                               ok=t * MS <= limit, group=g))
        led.close()
    w = writers(procs, writer_k)
    raw["writers"] = w
    wratio = w["rate"] / w["floor_rate"]
    figs.append(figure(f"PostgreSQL: {procs} processes x {writer_k} single log()", w["rate"], "records/s",
                       target=">= 1/3 of bare INSERT + best upsert", ok=wratio >= 1 / 3,
                       baseline=w["floor_rate"], baseline_name=f"{procs} processes: bare INSERT + "
                       "best-row upsert per record", ratio=wratio, group=g,
                       note="processes started before the clock; median of 2 alternated runs "
                            f"(ours {', '.join(f'{x:,.0f}' for x in w['ours'])}; bare "
                            f"{', '.join(f'{x:,.0f}' for x in w['floor'])})"))
    figs.append(figure("PostgreSQL writers: records lost, errors", w["lost"] + len(w["errors"]), "records",
                       target="0", ok=w["lost"] == 0 and not w["errors"], group=g,
                       note=f"lost {w['lost']}, errors {sorted(set(w['errors']))[:3]}"))
    figs.append(figure("PostgreSQL writers: best() equals recomputation from history", int(w["best_ok"]),
                       "ok", target="equal", ok=w["best_ok"], group=g,
                       note="; ".join(w["mismatches"][:3]) or "every ticker x metric matches"))
    return {"figures": figs, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--writer-records", type=int, default=250, help="single log() calls per writer process")
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="--records 20000 --writer-records 50")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.records, args.writer_records = 20_000, 50
    res = run(args.records, args.writer_records, args.procs)
    path = write_results("pg", res, args.out)
    for f in res["figures"]:
        print(json.dumps(f))
    print("wrote", path)


if __name__ == "__main__":
    main()
