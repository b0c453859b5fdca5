"""Issue 3 targets: a million-record ledger. Ingest, history, best, listings,
leaderboards, single logs on a full store, opening a copy of it, peak memory, import time,
PostgreSQL writers.

Run: ``python -m bench.bench_scale [--quick]`` (writes ``bench/results/scale.json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common import (
    figure,
    generate_records,
    interleaved_medians,
    median_time,
    run_python,
    throwaway_pg_database,
    timed,
    write_results,
)

MS = 1000.0


def _seed_query(csv_path: Path, ticker: str) -> pd.DataFrame:
    """The seed's history path: read the whole CSV, parse timestamps, filter, sort."""
    df = pd.read_csv(csv_path)
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df = df[df["ticker"] == ticker]
    return df.sort_values("timestamp")


def _rss_child(directory: Path, call: str) -> int:
    """Peak RSS (KiB) of a fresh interpreter that opens the ledger and runs ``call``.

    Read from ``VmHWM`` in ``/proc/self/status``, the high-water mark of the child's own
    address space. ``getrusage(RUSAGE_SELF).ru_maxrss`` is not usable here: Linux carries
    the parent's peak across fork/exec into the child's ru_maxrss, so every child would
    report this (large) benchmark process's peak. ru_maxrss is kept in the raw results.
    """
    code = (
        "import resource\n"
        "from perfledger import Ledger\n"
        f"led = Ledger({str(directory)!r})\n"
        f"out = {call}\n"
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0].split()[1]\n"
        "print(hwm, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    return int(run_python(code).strip().splitlines()[-1].split()[0])


def _startup_ms(stmt: str, repeat: int) -> float:
    """Median wall time of ``python -c stmt`` minus that of ``python -c pass``, in ms."""
    def once(code: str) -> float:
        t0 = time.perf_counter()
        run_python(code)
        return time.perf_counter() - t0

    base = statistics.median(once("pass") for _ in range(repeat))
    return (statistics.median(once(stmt) for _ in range(repeat)) - base) * MS


def _pg_worker(url: str, wid: int, k: int, barrier: Any, out: Any) -> None:
    """One of the concurrent PostgreSQL writers; opens its ledger before the start line."""
    from bench.common import generate_records, record_dicts
    from perfledger import Ledger

    recs = record_dicts(generate_records(10, 10, max(1, -(-k // 100)), random_state=100 + wid).head(k))
    led = Ledger(url)
    led.tickers()
    errors: list[str] = []
    barrier.wait()
    for i, r in enumerate(recs):
        try:
            led.log(r["model_name"], r["ticker"], sharpe=r["sharpe"], mse=r["mse"], drawdown=r["drawdown"],
                    total_return=r["total_return"], win_rate=r["win_rate"], accuracy=r["accuracy"],
                    notes=f"w{wid}-{i}")
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    led.close()
    out.put((wid, errors))


def _best_matches_history(led: Any) -> tuple[bool, list[str]]:
    """Recompute the best value per ticker per metric from the full history and compare
    it with ``best()``: the maintained table must equal what a rescan would say."""
    hist = led.history()
    best = led.best()
    mismatches = []
    for ticker, grp in hist.groupby("ticker"):
        for metric, higher in (("sharpe", True), ("mse", False), ("drawdown", True),
                               ("total_return", True), ("win_rate", True), ("accuracy", True)):
            want = grp[metric].max() if higher else grp[metric].min()
            got = best[ticker][f"best_{metric}"]
            winners = set(grp.loc[grp[metric] == want, "model_name"])
            if got["value"] != want or got["model"] not in winners:
                mismatches.append(f"{ticker}/{metric}: best()={got['value']} history={want}")
    return not mismatches, mismatches[:5]


def run_writers(target: Any, url: str, procs: int, k: int) -> tuple[float, list[str]]:
    """``procs`` spawned processes running ``target``; the clock starts when all are ready."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    workers = [ctx.Process(target=target, args=(url, w, k, barrier, out)) for w in range(procs)]
    for p in workers:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    results = [out.get(timeout=900) for _ in workers]
    elapsed = time.perf_counter() - t0
    for p in workers:
        p.join(timeout=60)
    return elapsed, [e for _, errs in results for e in errs]


def pg_concurrency(procs: int, k: int) -> dict[str, Any]:
    """``procs`` processes log ``k`` records each at once into one throw-away database."""
    from perfledger import Ledger

    with throwaway_pg_database("scale") as url:
        Ledger(url).close()  # schema created once, as a team's first user would
        elapsed, errors = run_writers(_pg_worker, url, procs, k)
        with Ledger(url) as led:
            notes = set(led.history()["notes"])
            expected = {f"w{w}-{i}" for w in range(procs) for i in range(k)}
            present = len(expected & notes)
            best_ok, mismatches = _best_matches_history(led)
    return {"procs": procs, "k": k, "seconds": elapsed, "present": present, "expected": len(expected),
            "errors": len(errors), "error_kinds": sorted(set(errors))[:5], "best_ok": best_ok,
            "mismatches": mismatches}


def run(quick: bool) -> dict[str, Any]:
    """Every scale figure. ``quick``: 40k records instead of 1M, fewer repeats."""
    from perfledger import Ledger

    shape = (20, 20, 100) if quick else (50, 40, 500)
    reps = 3 if quick else 5
    figs: list[dict[str, Any]] = []
    raw: dict[str, Any] = {"shape": shape}
    g = "scale"
    tmp = Path(tempfile.mkdtemp(prefix="plbench_scale_"))
    try:
        gen_s, df = timed(lambda: generate_records(*shape))
        n = len(df)
        raw["n"], raw["generate_s"] = n, gen_s
        label = f"{n:,}"

        # ---------------------------------------------------------------- ingest
        csv_path = tmp / "baseline.csv"
        ingest_reps = 3
        runs: dict[str, list[float]] = {"csv": [], "full": [], "nomirror": []}

        def fresh_ingest(name: str, **kw: Any) -> float:
            """log_many into a brand-new directory (the previous run's is removed)."""
            shutil.rmtree(tmp / name, ignore_errors=True)
            led = Ledger(tmp / name, **kw)
            seconds, _ = timed(lambda: led.log_many(df))
            led.close()
            return seconds

        # Alternated, so all three see the same machine load; each starts with nothing left for
        # the kernel to write back (os.sync), or it would pay for the previous run's output.
        for _ in range(ingest_reps):
            os.sync()
            runs["csv"].append(timed(lambda: df.to_csv(csv_path, index=False))[0])
            os.sync()
            runs["full"].append(fresh_ingest("full"))
            os.sync()
            runs["nomirror"].append(fresh_ingest("nomirror", mirrors=False))
        shutil.rmtree(tmp / "nomirror", ignore_errors=True)
        csv_s, ingest_s, nomirror_s = (statistics.median(runs[k]) for k in ("csv", "full", "nomirror"))
        raw.update(csv_s=csv_s, ingest_s=ingest_s, nomirror_s=nomirror_s, ingest_runs=runs)
        ratio = ingest_s / csv_s
        figs.append(figure(f"log_many({label} rows), DB + JSON/CSV mirrors", ingest_s, "s",
                           target="<= 1.3x df.to_csv", ok=ratio <= 1.3, baseline=csv_s,
                           baseline_name="pandas df.to_csv", ratio=ratio, group=g,
                           note=f"{n / ingest_s:,.0f} records/s; median of {ingest_reps} runs, each into a "
                                "fresh directory, alternated with the baseline, each after os.sync()"))
        figs.append(figure(f"log_many({label} rows), mirrors=False", nomirror_s, "s",
                           baseline=csv_s, baseline_name="pandas df.to_csv", ratio=nomirror_s / csv_s,
                           group=g, note=f"{n / nomirror_s:,.0f} records/s; median of {ingest_reps}"))

        led = Ledger(tmp / "full")
        ticker = "T000"

        # ---------------------------------------------------------------- history
        hist_rows = len(led.history(ticker=ticker))
        med = interleaved_medians({"pl": lambda: led.history(ticker=ticker),
                                   "seed": lambda: _seed_query(csv_path, ticker)}, repeat=reps, warmup=1)
        hist_s, seed_s = med["pl"], med["seed"]
        ratio = seed_s / hist_s
        figs.append(figure(f"history(ticker) ({hist_rows:,} of {label} rows)", hist_s * MS, "ms",
                           target=">= 20x faster than seed query", ok=ratio >= 20, baseline=seed_s * MS,
                           baseline_name="pd.read_csv + to_datetime + filter + sort", ratio=ratio,
                           group=g, note="ratio = baseline time / perfledger time; timed alternately"))
        try:
            mirror_s, _ = timed(lambda: _seed_query(tmp / "full" / "model_performance.csv", ticker))
            mirror_note = f"seed reader on the ledger's CSV mirror parses fine ({mirror_s:.2f} s)"
            mirror_ok = True
        except Exception as exc:
            mirror_note = (f"seed reader on the ledger's CSV mirror FAILS: "
                           f"{type(exc).__name__}: {str(exc)[:160]}")
            mirror_ok = False
        raw["mirror_readable"] = mirror_ok
        figs.append(figure("seed reader (read_csv + to_datetime) on the CSV mirror", 1 if mirror_ok else 0,
                           "ok", target="parses", ok=mirror_ok, group=g, note=mirror_note))

        bounds = {"at_least": {"sharpe": 1.0}, "at_most": {"mse": 0.02}}
        range_rows = len(led.history(ticker=ticker, **bounds))
        range_s = median_time(lambda: led.history(ticker=ticker, **bounds), repeat=reps)
        figs.append(figure(f"history(ticker, sharpe>=1, mse<=0.02) ({range_rows:,} rows)", range_s * MS,
                           "ms", group=g, note="information"))

        # ---------------------------------------------------------------- lookups
        for name, fn, limit, rep in (
            ("best(ticker)", lambda: led.best(ticker), 5, 50),
            ("tickers()", led.tickers, 20, 50),
            ("models()", led.models, 20, 50),
            ("models(ticker)", lambda: led.models(ticker), 20, 50),
            ("leaderboard(ticker)", lambda: led.leaderboard(ticker), 100, 10),
            ("leaderboard() all tickers", led.leaderboard, 500, 5),
        ):
            t = median_time(fn, repeat=rep if not quick else max(3, rep // 5))
            figs.append(figure(f"{name} on {label} records", t * MS, "ms", target=f"<= {limit} ms",
                               ok=t * MS <= limit, group=g))

        windows, per_window = (3, 20) if quick else (10, 100)
        rows = df.sample(windows * per_window, random_state=1).to_dict("records")
        cpu: list[float] = []

        def singles(part: list[dict[str, Any]]) -> float:
            t0, c0 = time.perf_counter(), time.process_time()
            for r in part:
                led.log(r["model_name"], r["ticker"], sharpe=r["sharpe"], mse=r["mse"],
                        drawdown=r["drawdown"], total_return=r["total_return"], win_rate=r["win_rate"],
                        accuracy=r["accuracy"], notes=r["notes"])
            cpu.append((time.process_time() - c0) / len(part))
            return len(part) / (time.perf_counter() - t0)

        # The bulk loads above left ~1.5 GB for the kernel to write back; single logs measured
        # while it does would time that writeback, not log().
        os.sync()
        start = time.perf_counter()
        rates = [singles(rows[w * per_window: (w + 1) * per_window]) for w in range(windows)]
        sustained = windows * per_window / (time.perf_counter() - start)
        rate = statistics.median(rates)
        raw.update(single_log_rates=rates, single_log_cpu_s=cpu, single_log_sustained=sustained)
        figs.append(figure(f"single log() on the {label}-record store (with mirrors)", rate, "logs/s",
                           target=">= 1,500 logs/s", ok=rate >= 1500, group=g,
                           note=f"median of {windows} windows of {per_window} consecutive calls, after "
                                f"os.sync() (min {min(rates):,.0f}, max {max(rates):,.0f}; all "
                                f"{windows * per_window:,} calls: {sustained:,.0f}/s, checkpoints "
                                f"included; process CPU {statistics.median(cpu) * MS:.2f} ms per call)"))
        led.close()

        # ---------------------------------------------------------------- restored copy
        # A backup restored by copying the directory: new inodes, the committed bytes. Each
        # open records the copy's identity, so every timing needs a fresh copy; the baseline
        # reads the same fresh copy's two mirrors once, just before.
        copy = tmp / "copy"
        mirror_names = ("model_performance.json", "model_performance.csv")
        copy_runs: dict[str, list[float]] = {"read": [], "open": []}
        rewritten = False
        for _ in range(3):
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(tmp / "full", copy)
            os.sync()
            inodes = [os.stat(copy / name).st_ino for name in mirror_names]
            copy_runs["read"].append(timed(lambda: [(copy / name).read_bytes() for name in mirror_names])[0])
            seconds, opened = timed(lambda: Ledger(copy))
            opened.close()
            copy_runs["open"].append(seconds)
            rewritten |= inodes != [os.stat(copy / name).st_ino for name in mirror_names]
        shutil.rmtree(copy, ignore_errors=True)
        read_s, open_s = (statistics.median(copy_runs[k]) for k in ("read", "open"))
        raw.update(copy_runs=copy_runs, copy_rewritten=rewritten)
        ratio = open_s / read_s
        figs.append(figure(f"open a copy of the {label}-record ledger directory", open_s, "s",
                           target="<= 2x reading the mirrors", ok=ratio <= 2 and not rewritten,
                           baseline=read_s, baseline_name="Path.read_bytes of the JSON and CSV mirrors",
                           ratio=ratio, group=g,
                           note="shutil.copytree, then Ledger(copy): the mirrors' content is checked, "
                                f"nothing adopted ({'REWRITTEN' if rewritten else 'not rewritten'}); "
                                "median of 3 fresh copies, each read just before it is opened"))

        # ---------------------------------------------------------------- memory
        rss_open = _rss_child(tmp / "full", "led.tickers()")
        rss_filtered = _rss_child(tmp / "full", f"led.history(ticker={ticker!r})")
        rss_full = _rss_child(tmp / "full", "led.history()")
        raw.update(rss_open_kib=rss_open, rss_filtered_kib=rss_filtered, rss_full_kib=rss_full)
        figs.append(figure("peak RSS, fresh process: history(ticker)", rss_filtered / 1024, "MiB",
                           baseline=rss_full / 1024, baseline_name="history() whole table",
                           ratio=rss_full / rss_filtered, group=g,
                           note=f"open + tickers() only: {rss_open / 1024:.0f} MiB; "
                                "ratio = whole / filtered"))

        # ---------------------------------------------------------------- import time
        imp_reps = 5 if quick else 9
        imp = _startup_ms("import perfledger", imp_reps)
        imp_ledger = _startup_ms("from perfledger import Ledger", imp_reps)
        raw.update(import_ms=imp, import_ledger_ms=imp_ledger)
        figs.append(figure("`import perfledger` (fresh process, minus bare startup)", imp, "ms", group=g,
                           note=f"median of {imp_reps}"))
        figs.append(figure("`from perfledger import Ledger` (fresh process, minus bare startup)", imp_ledger,
                           "ms", group=g, note=f"median of {imp_reps}; loads SQLAlchemy"))

        # ---------------------------------------------------------------- PostgreSQL
        procs, k = (4, 50) if quick else (8, 250)
        pg = pg_concurrency(procs, k)
        raw["postgres"] = pg
        lost = pg["expected"] - pg["present"]
        figs.append(figure(f"PostgreSQL: {procs} processes x {k} log() at once",
                           pg["expected"] / pg["seconds"], "records/s", group=g,
                           note=f"{pg['seconds']:.1f} s wall; errors {pg['errors']} {pg['error_kinds']}"))
        figs.append(figure("PostgreSQL: records lost", lost, "records", target="0",
                           ok=lost == 0 and pg["errors"] == 0, group=g,
                           note=f"{pg['present']}/{pg['expected']} present"))
        figs.append(figure("PostgreSQL: best() equals recomputation from history", int(pg["best_ok"]), "ok",
                           target="equal", ok=pg["best_ok"], group=g,
                           note="; ".join(pg["mismatches"]) or "every ticker x metric matches"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"figures": figs, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = run(args.quick)
    path = write_results("scale", res, args.out)
    for f in res["figures"]:
        print(json.dumps(f))
    print("wrote", path)


if __name__ == "__main__":
    main()
