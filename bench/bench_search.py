"""Issue 12 targets: finding and comparing experiments by params and tags at a million records.

Data: ``generate_records`` (tickers x models x evaluations, as bench_scale) plus a sweep:
params ``max_depth`` in {3, 6, 9}, ``lr`` in {0.01, 0.05, 0.1}, ``n_estimators`` in {100,
200, 400}; tags ``run`` = ``"nightly"`` on ~1% of the records (else one of 50 ad-hoc runs)
and ``owner`` (one of 3). The store is a directory ledger (SQLite + mirrors), built with one
``log_many``.

Baselines, in the same run: what a user does without these filters, i.e. the whole history
read with its params and tags and filtered (or grouped) in pandas; and, for information,
the pandas filter alone on a frame already in memory with the params/tags flattened into
columns. MLflow's ``search_runs`` with a tag filter runs where its interpreter is given
(``--mlflow-python``) and importable; otherwise the section says it was skipped.

Run: ``python -m bench.bench_search [--quick]`` (writes ``bench/results/search.json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
G = "search"
NIGHTLY = {"run": "nightly"}


def sweep(shape: tuple[int, int, int], random_state: int = 5) -> pd.DataFrame:
    """``generate_records(*shape)`` with a params sweep and run/owner tags."""
    df = generate_records(*shape)
    rng = np.random.default_rng(random_state)
    n = len(df)
    md, lr, ne = rng.choice([3, 6, 9], n), rng.choice([0.01, 0.05, 0.1], n), rng.choice([100, 200, 400], n)
    df["params"] = [{"max_depth": int(a), "lr": float(b), "n_estimators": int(c)}
                    for a, b, c in zip(md, lr, ne, strict=True)]
    adhoc = np.array([f"adhoc-{i}" for i in range(50)], dtype=object)[rng.integers(0, 50, n)]
    run = np.where(rng.random(n) < 0.01, "nightly", adhoc)
    owner = np.array(["ana", "bo", "cy"], dtype=object)[rng.integers(0, 3, n)]
    df["tags"] = [{"run": r, "owner": o} for r, o in zip(run, owner, strict=True)]
    return df


def _pandas_filter(
    led: Any, ticker: str | None, params: dict[str, Any], tags: dict[str, str]
) -> pd.DataFrame:
    """Without the filters: read the whole history with params and tags, filter in pandas."""
    df = led.history(include_meta=True)
    keep = np.ones(len(df), dtype=bool)
    if ticker is not None:
        keep &= (df["ticker"] == ticker).to_numpy()
    for col, wanted in (("params", params), ("tags", tags)):
        for k, v in wanted.items():
            keep &= np.fromiter((d.get(k) == v for d in df[col]), dtype=bool, count=len(df))
    return df[keep]


def _pandas_board(led: Any, ticker: str) -> pd.DataFrame:
    """Without ``by=``: the whole history, then a pandas group-by on the param's values."""
    df = led.history(include_meta=True)
    df = df[df["ticker"] == ticker]
    df = df.assign(max_depth=[p.get("max_depth") for p in df["params"]]).dropna(subset=["max_depth"])
    return df.groupby("max_depth")[["sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy"]].agg(
        ["count", "mean", "std", "min", "max", "last"])


def _flat(led: Any) -> pd.DataFrame:
    """The whole history in memory with params/tags flattened into columns (info baseline)."""
    df = led.history(include_meta=True)
    for col in ("params", "tags"):
        keys = sorted({k for d in df[col] for k in d})
        for k in keys:
            df[f"{col}.{k}"] = [d.get(k) for d in df[col]]
    return df.drop(columns=["params", "tags"])


META = {"params": {"max_depth": 6, "lr": 0.05, "n_estimators": 200},
        "tags": {"run": "nightly", "owner": "ana"}}


def _singles(led: Any, rows: list[dict[str, Any]], meta: bool) -> float:
    kw = META if meta else {}
    t0 = time.perf_counter()
    for r in rows:
        led.log(r["model_name"], r["ticker"], notes=r["notes"], **kw,
                **{m: r[m] for m in ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")})
    return len(rows) / (time.perf_counter() - t0)


def _cpu(fn: Any, reps: int) -> float:
    """Median process CPU seconds of ``fn()``: what the call costs apart from waiting for a
    CPU on a busy machine (other processes still slow it through shared caches)."""
    out = []
    for _ in range(reps):
        c0 = time.process_time()
        fn()
        out.append(time.process_time() - c0)
    return statistics.median(out)


def _versus(name: str, ours: Any, base: Any, base_name: str, target_ms: float, reps: int,
            base_reps: int) -> tuple[dict[str, Any], float, float]:
    """Our call against a whole-history baseline, alternated (the baseline is slow, so it is
    repeated less); ours is then timed on its own ``reps`` times, wall and CPU."""
    med = interleaved_medians({"pl": ours, "base": base}, repeat=base_reps)
    t = median_time(ours, repeat=reps)
    cpu = _cpu(ours, reps)
    fig = figure(name, t * MS, "ms", target=f"<= {target_ms:g} ms", ok=t * MS <= target_ms,
                 baseline=med["base"] * MS, baseline_name=base_name, ratio=med["base"] / t, group=G,
                 note=f"median of {reps} (process CPU {cpu * MS:.1f} ms); ratio = baseline / perfledger")
    return fig, t, med["base"]


def embedded(quick: bool, tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from perfledger import Ledger

    shape = (20, 20, 100) if quick else (50, 40, 500)
    reps, base_reps = (5, 2) if quick else (9, 3)
    df = sweep(shape)
    n = len(df)
    label = f"{n:,}"
    raw: dict[str, Any] = {"shape": shape, "n": n}
    figs: list[dict[str, Any]] = []
    ingest_s, _ = timed(lambda: Ledger(tmp / "search").log_many(df))
    raw["ingest_s"] = ingest_s
    figs.append(figure(f"log_many({label} rows with 3 params + 2 tags), DB + mirrors", ingest_s, "s", group=G,
                       note=f"{n / ingest_s:,.0f} records/s; builds the store below (one run)"))
    led = Ledger(tmp / "search")
    ticker = "T000"
    combo = {"ticker": ticker, "params": {"max_depth": 6}, "tags": NIGHTLY}
    filtered = "history(include_meta) + pandas filter"
    by_depth = {"by": "param:max_depth"}
    cases = [
        (f"history(tags=run:nightly) ({len(led.history(tags=NIGHTLY)):,} of {label} rows)",
         lambda: led.history(tags=NIGHTLY), lambda: _pandas_filter(led, None, {}, NIGHTLY),
         filtered, 50, "tag"),
        (f"history({ticker}, params max_depth=6, tags run=nightly) ({len(led.history(**combo)):,} rows)",
         lambda: led.history(**combo), lambda: _pandas_filter(led, ticker, {"max_depth": 6}, NIGHTLY),
         filtered, 50, "combo"),
        (f"leaderboard({ticker}, by=param:max_depth) ({len(led.leaderboard(ticker, **by_depth))} rows)",
         lambda: led.leaderboard(ticker, **by_depth), lambda: _pandas_board(led, ticker),
         "history(include_meta) + pandas group-by", 100, "board"),
    ]
    def plain() -> Any:
        return led.history(ticker=ticker)

    ref, ref_cpu = median_time(plain, repeat=reps), _cpu(plain, reps)
    figs.append(figure(f"reference: history({ticker}) ({len(plain()):,} rows, no filter)", ref * MS, "ms",
                       group=G, note=f"process CPU {ref_cpu * MS:.1f} ms; the scale section's "
                                     "history(ticker): read this run's load against it"))
    raw["reference_s"] = ref
    for name, ours, base, base_name, target, key in cases:
        fig, t, b = _versus(name, ours, base, base_name, target, reps, base_reps)
        figs.append(fig)
        raw[f"{key}_s"], raw[f"{key}_baseline_s"] = t, b

    flat = _flat(led)
    mask = median_time(lambda: flat[(flat["tags.run"] == "nightly").to_numpy()], repeat=reps)
    figs.append(figure("pandas filter alone, frame already in memory (flattened columns)", mask * MS, "ms",
                       group=G, note=f"info: needs the whole {label}-row history loaded and flattened first"))
    flat = flat.iloc[0:0]

    for name, fn in (("params()", led.params), ("tags()", led.tags),
                     (f"params({ticker})", lambda: led.params(ticker)),
                     (f"leaderboard({ticker}, tags=run:nightly)",
                      lambda: led.leaderboard(ticker, tags=NIGHTLY)),
                     (f"leaderboard({ticker}, days_back=365)",
                      lambda: led.leaderboard(ticker, days_back=365))):
        t = median_time(fn, repeat=reps)
        figs.append(figure(f"{name} on {label} records", t * MS, "ms", group=G, note="info"))

    windows, per_window = (3, 20) if quick else (5, 60)
    rows = df.sample(2 * windows * per_window, random_state=1).to_dict("records")
    rates: dict[bool, list[float]] = {False: [], True: []}
    for w in range(windows):  # alternated: both see the same load
        for meta in (False, True):
            i = (2 * w + meta) * per_window
            rates[meta].append(_singles(led, rows[i: i + per_window], meta))
    raw["single_log_rates"] = {str(k): v for k, v in rates.items()}
    for meta, what in ((False, "no params/tags"), (True, "3 params + 2 tags")):
        r = statistics.median(rates[meta])
        figs.append(figure(f"single log() on the {label}-record store ({what})", r, "logs/s", group=G,
                           note=f"median of {windows} windows of {per_window}, alternated "
                                f"(min {min(rates[meta]):,.0f}, max {max(rates[meta]):,.0f}); with mirrors"))
    led.close()
    return figs, raw


def postgres(quick: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The same queries on PostgreSQL (JSONB containment through GIN indexes), smaller."""
    import sqlalchemy as sa

    from perfledger import Ledger

    shape = (10, 10, 100) if quick else (20, 20, 500)
    df = sweep(shape, random_state=6)
    figs: list[dict[str, Any]] = []
    raw: dict[str, Any] = {"shape": shape}
    with throwaway_pg_database("search") as url:
        led = Ledger(url)
        ingest_s, _ = timed(lambda: led.log_many(df))
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(
                "EXPLAIN SELECT id FROM pl_records r WHERE r.tags @> '{\"run\": \"nightly\"}'::jsonb"))
        engine.dispose()
        label = f"{len(df):,}"
        for name, fn in (("history(tags=run:nightly)", lambda: led.history(tags=NIGHTLY)),
                         ("history(T000, max_depth=6, run=nightly)",
                          lambda: led.history(ticker="T000", params={"max_depth": 6}, tags=NIGHTLY)),
                         ("leaderboard(T000, by=param:max_depth)",
                          lambda: led.leaderboard("T000", by="param:max_depth"))):
            t = median_time(fn, repeat=5)
            figs.append(figure(f"PostgreSQL: {name} on {label} records", t * MS, "ms", group=G, note="info"))
        uses_gin = "ix_pl_records_tags_gin" in plan
        figs.append(figure("PostgreSQL: a tag filter's plan uses the GIN index", int(uses_gin), "ok",
                           target="uses it", ok=uses_gin, group=G,
                           note=" / ".join(line.strip() for line in plan.splitlines()[:3])))
        raw.update(ingest_s=ingest_s, plan=plan)
        led.close()
    return figs, raw


def mlflow_note(python: str | None) -> dict[str, Any]:
    """MLflow needs its own interpreter (it pins pyarrow below perfledger's); say whether it ran."""
    if python is None:
        why = "no MLflow interpreter given (--mlflow-python; make bench creates .venv-mlflow)"
    else:
        res = subprocess.run([python, "-c", "import mlflow"], capture_output=True, text=True, check=False)
        why = None if res.returncode == 0 else f"{python} cannot import mlflow"
    return figure("MLflow search_runs with a tag filter", None, "", group=G,  # type: ignore[arg-type]
                  note=f"skipped: {why}" if why else "not measured by this section yet")


def run(quick: bool, mlflow_python: str | None, skip_pg: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="plbench_search_"))
    try:
        figs, raw = embedded(quick, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not skip_pg:
        pg_figs, raw["postgres"] = postgres(quick)
        figs += pg_figs
    figs.append(mlflow_note(mlflow_python))
    return {"figures": figs, "raw": raw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--mlflow-python", default=None)
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args()
    res = run(args.quick, args.mlflow_python, args.skip_pg)
    path = write_results("search", res, args.out)
    for f in res["figures"]:
        print(json.dumps(f))
    print("wrote", path)


if __name__ == "__main__":
    main()
