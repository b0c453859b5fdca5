"""Shared helpers for the benchmarks: timing, figures with targets, data generation, PG.

Timings on a shared 2-core machine are noisy, so every figure is a median of repeats and,
where a comparison matters, a ratio against a baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PG_ADMIN_URL = os.environ.get("PERFLEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

SEED_COLUMNS = (
    "timestamp", "ticker", "model_name", "sharpe", "mse", "drawdown",
    "total_return", "win_rate", "accuracy", "notes",
)


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds; warm-up calls fill caches the way a
    long-running process would have them filled."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """One timed call: (seconds, result). For work too expensive to repeat."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    target: str | None = None,
    ok: bool | None = None,
    baseline: float | None = None,
    baseline_name: str | None = None,
    ratio: float | None = None,
    note: str = "",
    group: str = "",
) -> dict[str, Any]:
    """One reported figure. ``ok`` is None for information-only lines (no target)."""
    return {
        "group": group,
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "status": None if ok is None else ("PASS" if ok else "FAIL"),
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "note": note,
    }


def write_results(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    """Raw JSON results, so the report can be regenerated and runs compared later."""
    out = out_dir or RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on; they mean little without it."""
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


def generate_records(
    n_tickers: int, n_models: int, n_evals: int, *, random_state: int = 42, days: float = 730.0
) -> Any:
    """A seed-shaped DataFrame of ``n_tickers * n_models * n_evals`` evaluations.

    Values are plausible (each ticker/model pair has a skill level; drawdown <= 0, rates in
    [0, 1], mse >= 0) because the ledger validates them, and timestamps are spread over
    ``days`` so time filters select realistic fractions. Built with numpy: generating a
    million rows must not dominate the benchmark.
    """
    import pandas as pd

    rng = np.random.default_rng(random_state)
    n_pairs = n_tickers * n_models
    n = n_pairs * n_evals
    tickers = np.array([f"T{i:03d}" for i in range(n_tickers)], dtype=object)
    models = np.array([f"Model_{j:02d}_v{j % 4 + 1}" for j in range(n_models)], dtype=object)
    pair = np.repeat(np.arange(n_pairs), n_evals)
    skill = rng.normal(1.0, 0.5, n_pairs)[pair]
    sharpe = skill + rng.normal(0.0, 0.3, n)
    end_us = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1_000_000)
    span_us = int(days * 86_400_000_000)
    ts_us = end_us - rng.integers(0, span_us, n)
    notes_vocab = np.array(
        ["", "baseline run", "tuned lr=1e-3", "walk-forward fold", "50 epochs", "retrained on latest data"],
        dtype=object,
    )
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(ts_us, unit="us", utc=True),
            "ticker": tickers[pair // n_models],
            "model_name": models[pair % n_models],
            "sharpe": np.round(sharpe, 4),
            "mse": np.round(np.abs(rng.normal(0.02, 0.008, n)) + 0.001, 5),
            "drawdown": np.round(-np.abs(rng.normal(0.12, 0.05, n)), 4),
            "total_return": np.round(0.08 * sharpe + rng.normal(0, 0.05, n), 4),
            "win_rate": np.round(np.clip(0.5 + 0.05 * sharpe + rng.normal(0, 0.03, n), 0, 1), 4),
            "accuracy": np.round(np.clip(0.52 + 0.04 * sharpe + rng.normal(0, 0.03, n), 0, 1), 4),
            "notes": notes_vocab[rng.integers(0, len(notes_vocab), n)],
        }
    )
    return frame


def record_dicts(frame: Any, naive_iso: bool = True) -> list[dict[str, Any]]:
    """Rows as seed record dicts (timestamp as an ISO string, as the seed stores it)."""
    out = frame.copy()
    ts = out["timestamp"].dt.tz_convert(None) if naive_iso else out["timestamp"]
    out["timestamp"] = ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return out.to_dict("records")


@contextlib.contextmanager
def throwaway_pg_database(tag: str) -> Iterator[str]:
    """Create ``perfledger_bench_<tag>_<pid>`` and drop it afterwards (even on error);
    yields its SQLAlchemy URL."""
    import psycopg

    name = f"perfledger_bench_{tag}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_python(code: str, env: dict[str, str] | None = None, python: str | None = None) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout (fresh = honest import
    times and peak RSS, not inflated or hidden by what this process already loaded)."""
    res = subprocess.run(
        [python or sys.executable, "-c", code],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"child failed ({res.returncode}): {res.stderr[-2000:]}")
    return res.stdout


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function, timed in alternation (a, b, c, a, b, c, ...).

    On a shared machine the load changes minute to minute; alternating makes each
    contender see the same mix of quiet and busy moments, so their ratio stays honest."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}
