"""Issue 2 targets: single-log throughput through the seed API, and records lost when
several processes log at once, for perfledger and for the seed's design (the baseline).

Run: ``python -m bench.bench_core [--quick]`` (writes ``bench/results/core.json``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench import seed_baseline
from bench.common import figure, generate_records, record_dicts, write_results

METRIC_KEYS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")


def _pool(n: int) -> list[dict[str, Any]]:
    """``n`` realistic records to log (values only; the log call stamps the time)."""
    frame = generate_records(10, 10, max(1, -(-n // 100)), random_state=7)
    return record_dicts(frame.head(n))


# ----------------------------------------------------------------------------- throughput


def _perfledger_logger(stored: int, tmp: Path) -> Callable[[dict[str, Any]], Any]:
    """A one-record logger through ``memory.model_log.log_model_performance`` on a
    directory ledger (database + mirrors) already holding ``stored`` records."""
    from perfledger import Ledger

    directory = tmp / f"pl_{stored}"
    if stored:
        with Ledger(directory) as led:
            led.log_many(generate_records(10, 10, max(1, stored // 100), random_state=1).head(stored))
    os.environ["PERFLEDGER_URL"] = str(directory)
    from memory import model_log

    return lambda rec: model_log.log_model_performance(**_kwargs(rec))


def _baseline_logger(stored: int, tmp: Path) -> Callable[[dict[str, Any]], Any]:
    """A one-record logger of the seed design on a store already holding ``stored`` records."""
    directory = tmp / f"seed_{stored}"
    if stored:
        frame = generate_records(10, 10, max(1, stored // 100), random_state=1).head(stored)
        seed_baseline.prefill(directory, record_dicts(frame))
    return lambda rec: seed_baseline.log_model_performance(directory, **_kwargs(rec))


def throughput(stored: int, n_logs: int, tmp: Path, rounds: int = 5) -> tuple[float, float]:
    """(perfledger, seed design) logs/s at ``stored`` records. The two are timed in
    alternating chunks so both see the same machine load; the first log of each (which
    opens files and connections) is not timed."""
    loggers = {"perfledger": _perfledger_logger(stored, tmp), "seed": _baseline_logger(stored, tmp)}
    recs = _pool(n_logs + 1)
    spent = dict.fromkeys(loggers, 0.0)
    try:
        for fn in loggers.values():
            fn(recs[0])
        chunk = n_logs // rounds
        for r in range(rounds):
            part = recs[1 + r * chunk: 1 + (r + 1) * chunk]
            for name, fn in loggers.items():
                t0 = time.perf_counter()
                for rec in part:
                    fn(rec)
                spent[name] += time.perf_counter() - t0
    finally:
        from memory import model_log

        model_log.get_ledger().close()
        os.environ.pop("PERFLEDGER_URL", None)
    done = chunk * rounds
    return done / spent["perfledger"], done / spent["seed"]


def _kwargs(rec: dict[str, Any]) -> dict[str, Any]:
    return {"model_name": rec["model_name"], "ticker": rec["ticker"], "notes": rec["notes"],
            **{m: rec[m] for m in METRIC_KEYS}}


# ----------------------------------------------------------------------------- concurrency


def _seed_worker(directory: str, wid: int, k: int, barrier: Any, out: Any) -> None:
    """One of the concurrent writers of the baseline; exceptions (e.g. a JSONDecodeError
    when it reads a half-written file) are counted, as a user would see them."""
    recs = _pool(k)
    errors: list[str] = []
    barrier.wait()
    for i, rec in enumerate(recs):
        try:
            seed_baseline.log_model_performance(directory, **{**_kwargs(rec), "notes": f"w{wid}-{i}"})
        except Exception as exc:
            errors.append(type(exc).__name__)
    out.put((wid, errors))


def _perfledger_worker(directory: str, wid: int, k: int, barrier: Any, out: Any) -> None:
    """One of the concurrent writers through the seed-compatible API."""
    os.environ["PERFLEDGER_URL"] = directory
    from memory import model_log

    recs = _pool(k)
    model_log.get_ledger()  # open before the start line, as a long-running job would have
    errors: list[str] = []
    barrier.wait()
    for i, rec in enumerate(recs):
        try:
            model_log.log_model_performance(**{**_kwargs(rec), "notes": f"w{wid}-{i}"})
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
    model_log.get_ledger().close()
    out.put((wid, errors))


def _run_concurrent(target: Any, directory: Path, procs: int, k: int) -> tuple[float, list[str]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    workers = [ctx.Process(target=target, args=(str(directory), w, k, barrier, out)) for w in range(procs)]
    for p in workers:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    results = [out.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - t0
    for p in workers:
        p.join(timeout=60)
    errors = [e for _, errs in results for e in errs]
    return elapsed, errors


def _present(notes: list[str], procs: int, k: int) -> int:
    expected = {f"w{w}-{i}" for w in range(procs) for i in range(k)}
    return len(expected & set(notes))


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        with open(path) as f:
            return json.load(f), None
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"


def _count_csv(path: Path) -> tuple[list[str], str | None]:
    try:
        df = pd.read_csv(path, keep_default_na=False)
        return df["notes"].astype(str).tolist(), None
    except Exception as exc:
        return [], f"{type(exc).__name__}: {str(exc)[:120]}"


def concurrent_loss(procs: int, k: int, tmp: Path) -> dict[str, Any]:
    """Both designs, ``procs`` processes x ``k`` logs started together into one store."""
    from perfledger import Ledger

    expected = procs * k
    out: dict[str, Any] = {"procs": procs, "k": k, "expected": expected}

    sdir = tmp / "conc_seed"
    elapsed, errors = _run_concurrent(_seed_worker, sdir, procs, k)
    data, json_err = _read_json(sdir / seed_baseline.JSON_NAME)
    best, best_err = _read_json(sdir / seed_baseline.BEST_NAME)
    csv_notes, csv_err = _count_csv(sdir / seed_baseline.CSV_NAME)
    json_present = _present([r.get("notes", "") for r in data], procs, k) if isinstance(data, list) else 0
    out["seed"] = {
        "seconds": elapsed, "errors": len(errors), "error_kinds": sorted(set(errors)),
        "json_present": json_present, "json_error": json_err, "csv_present": _present(csv_notes, procs, k),
        "csv_error": csv_err, "best_error": best_err, "best_readable": best is not None,
    }

    pdir = tmp / "conc_pl"
    with Ledger(pdir):
        pass  # create the store first, as a user's first run would
    elapsed, errors = _run_concurrent(_perfledger_worker, pdir, procs, k)
    with Ledger(pdir) as led:
        hist = led.history()
        db_present = _present(hist["notes"].tolist(), procs, k)
        n_rows = len(hist)
    mdata, mjson_err = _read_json(pdir / "model_performance.json")
    mcsv_notes, mcsv_err = _count_csv(pdir / "model_performance.csv")
    out["perfledger"] = {
        "seconds": elapsed, "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
        "db_present": db_present, "db_rows": n_rows,
        "json_present": _present([r.get("notes", "") for r in mdata], procs, k) if isinstance(mdata, list)
        else 0,
        "json_error": mjson_err, "csv_present": _present(mcsv_notes, procs, k), "csv_error": mcsv_err,
    }
    return out


# ----------------------------------------------------------------------------- main


def run(quick: bool) -> dict[str, Any]:
    """All core figures; ``quick`` logs fewer records per window (same store sizes)."""
    n_logs = 50 if quick else 200
    sizes = (200, 2000)
    figs: list[dict[str, Any]] = []
    raw: dict[str, Any] = {"n_logs": n_logs, "rates": {}}
    tmp = Path(tempfile.mkdtemp(prefix="plbench_core_"))
    try:
        for stored in sizes:
            pl, base = throughput(stored, n_logs, tmp)
            ratio = pl / base
            raw["rates"][stored] = {"perfledger": pl, "seed": base}
            target = stored == 2000
            figs.append(figure(
                f"seed-API log() at {stored:,} stored records", pl, "logs/s",
                target=">= 20x seed design" if target else None,
                ok=(ratio >= 20) if target else None,
                baseline=base, baseline_name="seed design", ratio=ratio,
                note=f"{n_logs} logs each, timed in alternating chunks; directory ledger with mirrors",
                group="core",
            ))
        k = 25 if quick else 100
        conc = concurrent_loss(4, k, tmp)
        raw["concurrent"] = conc
        s, p = conc["seed"], conc["perfledger"]
        lost_pl = conc["expected"] - p["db_present"]
        lost_seed = conc["expected"] - s["json_present"]
        figs.append(figure(
            f"records lost, 4 processes x {k} logs at once (perfledger)", lost_pl, "records",
            target="0", ok=lost_pl == 0 and p["errors"] == 0, group="core",
            note=(f"DB {p['db_present']}/{conc['expected']}, JSON mirror {p['json_present']}, "
                  f"CSV mirror {p['csv_present']}, errors {p['errors']}"),
        ))
        figs.append(figure(
            f"records lost, 4 processes x {k} logs at once (seed design)", lost_seed, "records",
            group="core",
            note=(f"JSON {s['json_present']}/{conc['expected']}"
                  f"{' (unreadable: ' + s['json_error'] + ')' if s['json_error'] else ''}, "
                  f"CSV {s['csv_present']}, best_models.json "
                  f"{'readable' if s['best_readable'] else 'UNREADABLE'}, "
                  f"{s['errors']} exceptions {s['error_kinds']}"),
        ))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"figures": figs, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = run(args.quick)
    path = write_results("core", res, args.out)
    for f in res["figures"]:
        print(json.dumps(f))
    print("wrote", path)


if __name__ == "__main__":
    main()
