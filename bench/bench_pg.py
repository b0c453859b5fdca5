"""Issue 11: a PostgreSQL ledger of a million records, against bare baselines in the same run.

* ingest: one ``log_many`` of every record (information);
* ``history(ticker)`` against a bare ADBC fetch of the same rows from a plain indexed table
  (a copy of ``pl_records`` without perfledger's columns of meta, one index on
  ``(ticker, ts, id)``), same database, timed alternately: target <= 2x;
* ``best(ticker)``, ``leaderboard(ticker)``, ``leaderboard()``;
* issue 21: one process, a single ``log()`` against a bare psycopg ``INSERT`` plus the
  best-row upsert (one transaction per record), alternated in blocks in one run: target
  <= 1.5x, with the server's default durable commit and with ``synchronous_commit = off``
  on both sides (what is left is client CPU and round trips, the part perfledger owns);
* 8 processes of single ``log()`` calls against 8 processes that each do, per record, a bare
  ``INSERT`` plus the best-row upsert (one transaction per record, psycopg, no perfledger),
  processes started and connected before the clock, same run: target >= 1/2 of the bare
  rate, 0 lost, ``best()`` equal to a recomputation from history;
* issue 21: 32 processes x 100 ``log()`` at once, each a Ledger that also reads, against the
  server's ``max_connections`` (100 by default): 0 lost, 0 errors (no "too many
  connections"), ``best()`` exact, and the most server connections any one process held
  (sampled from ``pg_stat_activity``): target <= 2.

Run: ``python -m bench.bench_pg [--records 1000000]`` (writes ``bench/results/pg.json``);
``--only writers`` runs the three writer figures alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
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


_ASYNC = "options=-c%20synchronous_commit%3Doff"


def single_log(calls: int, blocks: int, asynchronous: bool) -> dict[str, Any]:
    """One process: ``calls`` single ``log()`` calls against as many bare transactions (an
    ``INSERT`` and the best-row upsert), in alternated blocks, same database; ms per call."""
    import psycopg

    from perfledger import Ledger

    with throwaway_pg_database("pg1") as base:
        url = f"{base}?{_ASYNC}" if asynchronous else base
        plain = url.replace("postgresql+psycopg", "postgresql", 1)
        with psycopg.connect(plain, autocommit=True) as c:
            for ddl in _BARE_DDL:
                c.execute(ddl)
        led = Ledger(url)
        bare = psycopg.connect(plain)
        recs = [(f"M{i % 40}", f"T{i % 50:03d}", (i * 7919 % 1000) / 500 - 1) for i in range(calls)]

        def ours() -> None:
            for i, (model, ticker, sharpe) in enumerate(recs):
                led.log(model, ticker, sharpe=sharpe, mse=0.02, drawdown=-0.1, total_return=0.1,
                        win_rate=0.55, accuracy=0.6, notes=f"n{i}")

        def floor() -> None:
            for i, (model, ticker, sharpe) in enumerate(recs):
                ts = int(time.time() * 1e6)
                with bare.transaction():
                    rid = bare.execute(_BARE_INSERT, (ticker, model, ts, sharpe, 0.02, -0.1, 0.1, 0.55, 0.6,
                                                      f"n{i}")).fetchone()[0]
                    bare.execute(_BARE_BEST, (ticker, model, sharpe, ts, rid))

        med = interleaved_medians({"ours": ours, "bare": floor}, repeat=blocks, warmup=1)
        led.close()
        bare.close()
    return {"ours_ms": med["ours"] / calls * MS, "bare_ms": med["bare"] / calls * MS, "calls": calls,
            "blocks": blocks}


def _team_worker(url: str, wid: int, k: int, barrier: Any, out: Any) -> None:
    """One of 32 research processes: a Ledger that reads (so both its connections exist),
    then logs ``k`` records, reading now and then."""
    from perfledger import Ledger

    led = Ledger(f"{url}?application_name=pl_team_{wid}")
    led.history(ticker="T000")
    errors: list[str] = []
    barrier.wait()
    for i in range(k):
        try:
            led.log(f"M{(wid + i) % 40}", f"T{i % 50:03d}", sharpe=((wid * 131 + i * 7919) % 1000) / 500 - 1,
                    mse=((wid + i * 31) % 97) / 1000, drawdown=-0.1, total_return=0.1, win_rate=0.5,
                    accuracy=0.6, notes=f"w{wid}-{i}")
            if i % 25 == 24:
                led.history(ticker=f"T{i % 50:03d}")
                led.best()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    led.close()
    out.put((wid, errors))


def team(procs: int, k: int) -> dict[str, Any]:
    """``procs`` processes x ``k`` logs at once; connections per process sampled meanwhile."""
    import threading

    import psycopg

    from perfledger import Ledger

    with throwaway_pg_database("pgteam") as url:
        Ledger(url).close()
        plain = url.replace("postgresql+psycopg", "postgresql", 1)
        database = plain.rsplit("/", 1)[1]
        most: dict[str, int] = {}
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            with psycopg.connect(plain, autocommit=True) as c:
                max_conn = int(c.execute("SHOW max_connections").fetchone()[0])
                most["max_connections"] = max_conn
                while not stop.is_set():
                    rows = c.execute(
                        "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND application_name LIKE 'pl_team_%%' GROUP BY 1", (database,)).fetchall()
                    for name, n in rows:
                        most[name] = max(most.get(name, 0), n)
                    peak[0] = max(peak[0], sum(n for _, n in rows))
                    time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        seconds, errors = run_writers(_team_worker, url, procs, k)
        stop.set()
        sampler.join()
        with Ledger(url) as led:
            notes = list(led.history()["notes"])
            expected = {f"w{w}-{i}" for w in range(procs) for i in range(k)}
            ok, mismatches = _best_matches_history(led)
    per = [v for name, v in most.items() if name.startswith("pl_team_")]
    return {"procs": procs, "k": k, "seconds": seconds, "errors": errors, "lost": len(expected - set(notes)),
            "doubled": len(notes) - len(set(notes)), "best_ok": ok, "mismatches": mismatches,
            "most_per_process": max(per) if per else 0, "peak_total": peak[0],
            "max_connections": most.get("max_connections")}


def writer_figures(writer_k: int, procs: int, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 21's three figures (and the 8-writer floor)."""
    g = "pg"
    figs: list[dict[str, Any]] = []
    for asynchronous in (False, True):
        one = single_log(400, 7, asynchronous)
        raw[f"single_log_{'async' if asynchronous else 'durable'}"] = one
        ratio = one["ours_ms"] / one["bare_ms"]
        mode = "synchronous_commit=off on both" if asynchronous else "durable commit (server default)"
        figs.append(figure(f"PostgreSQL single log(), one process, {mode}", one["ours_ms"], "ms",
                           target="<= 1.5x bare INSERT + best upsert", ok=ratio <= 1.5,
                           baseline=one["bare_ms"], baseline_name="bare psycopg INSERT + best-row upsert, "
                           "one transaction", ratio=ratio, group=g,
                           note=f"{one['calls']} calls per block, median of {one['blocks']} "
                                "alternated blocks"))
    w = writers(procs, writer_k)
    raw["writers"] = w
    wratio = w["rate"] / w["floor_rate"]
    figs.append(figure(f"PostgreSQL: {procs} processes x {writer_k} single log()", w["rate"], "records/s",
                       target=">= 1/2 of bare INSERT + best upsert", ok=wratio >= 1 / 2,
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
    t = team(32, 100)
    raw["team"] = t
    figs.append(figure("PostgreSQL: 32 processes x 100 log() at once: lost, doubled, errors",
                       t["lost"] + t["doubled"] + len(t["errors"]), "records", target="0",
                       ok=not (t["lost"] or t["doubled"] or t["errors"]), group=g,
                       note=f"{32 * 100 / t['seconds']:,.0f} records/s; max_connections = "
                            f"{t['max_connections']}; errors {sorted(set(t['errors']))[:2]}"))
    figs.append(figure("PostgreSQL: 32 processes: most server connections one Ledger held",
                       t["most_per_process"], "connections", target="<= 2", ok=t["most_per_process"] <= 2,
                       group=g, note="pg_stat_activity sampled every 10 ms; peak for all 32: "
                                     f"{t['peak_total']}"))
    figs.append(figure("PostgreSQL: 32 processes: best() equals recomputation from history",
                       int(t["best_ok"]), "ok", target="equal", ok=t["best_ok"], group=g,
                       note="; ".join(t["mismatches"][:3]) or "every ticker x metric matches"))
    return figs


def _bare_fetch(con: Any, ticker: str) -> Any:
    cur = con.cursor()
    try:
        cur.execute("SELECT ts, model_name, " + ", ".join(METRICS) + ", notes FROM bare_h "
                    "WHERE ticker = $1 ORDER BY ts, id", (ticker,))
        return cur.fetch_arrow_table()
    finally:
        cur.close()


def run(records: int, writer_k: int, procs: int, only: str | None = None) -> dict[str, Any]:
    if only == "writers":
        raw: dict[str, Any] = {}
        return {"figures": writer_figures(writer_k, procs, raw), "raw": raw}
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
    figs += writer_figures(writer_k, procs, raw)
    return {"figures": figs, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--writer-records", type=int, default=250, help="single log() calls per writer process")
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="--records 20000 --writer-records 50")
    ap.add_argument("--only", choices=["writers"], default=None,
                    help="only the writer figures (single log, 8 and 32 processes)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.records, args.writer_records = 20_000, 50
    res = run(args.records, args.writer_records, args.procs, args.only)
    for f in res["figures"]:
        print(json.dumps(f), flush=True)
    path = write_results("pg", res, Path(args.out) if args.out else None)
    print("wrote", path)


if __name__ == "__main__":
    main()
