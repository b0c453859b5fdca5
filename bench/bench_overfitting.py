"""Issue 22: what the overfitting statistics cost against their input, in one run.

Data: a sweep of 200 trials × 2,520 daily returns (10 years), normal noise with a few
trials given a small edge, float64. Measured, alternated and in the same process:

* ours: ``probability_of_backtest_overfitting(returns, partitions=16)``: 12,870 splits
  from per-block sums;
* the issue's target, in the ledger: the 200 series logged as backtests (kept returns,
  schema v7) in a SQLite ledger; ``Ledger.overfitting("AAPL", partitions=16)`` (reading the
  series, aligning them on their common dates, the statistic) against
  ``Ledger.returns_frame("AAPL")``, reading those 200 series from the store: ≤ 2×;
* reading the same series from files, for comparison: ``pandas.read_parquet`` of a
  200-column frame with its DatetimeIndex, and ``numpy.load`` of the bare 2,520 × 200
  ``.npy`` (a lower bound: no format can be read faster than a memory copy of the file's
  pages);
* the naive approach, once (it takes minutes at full size): every split recomputes every
  trial's Sharpe from the raw returns of its halves (numpy over trials, a loop over
  ``itertools.combinations``), ranks, logits; ``--naive-splits K`` times the first K
  splits and scales to 12,870 (said in the report);
* as information: effective trials, MinTRL of the 200 trials, their equity curves.

Run: ``python -m bench.bench_overfitting [--quick] [--write-doc]`` (writes
``bench/results/overfitting.json``; ``--write-doc`` replaces this section of
docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import ROOT, figure, machine_facts, timed, write_results
from perfledger import Ledger
from perfledger.stats import (
    effective_trials,
    equity_curve,
    min_track_record_length,
    probability_of_backtest_overfitting,
)

SECTION = "## Overfitting statistics: PBO, MinTRL, effective trials (issue 22)"


def sweep(n_trials: int, n_periods: int, seed: int = 22) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0002, 0.01, (n_periods, n_trials))
    x[:, :: max(1, n_trials // 5)] += 0.0004  # a few trials with an edge
    return pd.DataFrame(x, index=pd.bdate_range("2015-01-01", periods=n_periods),
                        columns=[f"trial_{i:03d}" for i in range(n_trials)])


def naive_pbo(m: np.ndarray, s: int, limit: int | None) -> tuple[float, int]:
    """CSCV recomputed from the raw returns of every split (numpy across trials only)."""
    m = m[m.shape[0] % s:]
    size = m.shape[0] // s
    blocks = [m[i * size:(i + 1) * size] for i in range(s)]
    n = m.shape[1]
    below = done = 0
    for chosen in combinations(range(s), s // 2):
        if limit is not None and done >= limit:
            break
        rest = [b for b in range(s) if b not in chosen]
        ins = np.concatenate([blocks[b] for b in chosen])
        outs = np.concatenate([blocks[b] for b in rest])
        sr_in = ins.mean(axis=0) / ins.std(axis=0, ddof=1)
        sr_out = outs.mean(axis=0) / outs.std(axis=0, ddof=1)
        w = int(np.argmax(sr_in))
        rank = np.count_nonzero(sr_out < sr_out[w]) + (np.count_nonzero(sr_out == sr_out[w]) + 1) / 2
        below += math.log(rank / (n + 1 - rank)) <= 0
        done += 1
    return below / done, done


def alternated(fns: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    """Each function once per round, the rounds repeated: load drifts hit all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times


def run(quick: bool, naive_splits: int | None) -> dict[str, Any]:
    n_trials, n_periods, s = (50, 1260, 12) if quick else (200, 2520, 16)
    df = sweep(n_trials, n_periods)
    x = df.to_numpy()
    figs: list[dict[str, Any]] = []
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        npy, pq = Path(tmp) / "sweep.npy", Path(tmp) / "sweep.parquet"
        np.save(npy, x)
        df.to_parquet(pq)
        led = Ledger(Path(tmp) / "ledger", mirrors=False)
        dated = df.tz_localize("UTC")
        led.log_many(pd.DataFrame({"ticker": "AAPL", "model_name": list(df.columns),
                                   "sharpe": x.mean(axis=0) / x.std(axis=0, ddof=1) * math.sqrt(252),
                                   "returns": [dated[c] for c in df.columns]}))
        times = alternated({
            "pbo": lambda: probability_of_backtest_overfitting(x, partitions=s),
            "ledger_overfitting": lambda: led.overfitting("AAPL", partitions=s),
            "store_read": lambda: led.returns_frame("AAPL"),
            "parquet": lambda: pd.read_parquet(pq),
            "npy": lambda: np.load(npy),
        }, repeat=5 if quick else 25)
        via_ledger = led.overfitting("AAPL", partitions=s)
        led.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    res = probability_of_backtest_overfitting(x, partitions=s)
    what = f"{n_trials} trials × {n_periods:,} periods, S = {s} ({res.n_splits:,} splits)"
    figs.append(figure(f"probability_of_backtest_overfitting, {what}", med["pbo"] * 1000, "ms",
                       note=f"median of {len(times['pbo'])}, alternated with the reads (min "
                            f"{min(times['pbo']) * 1000:.1f}, max {max(times['pbo']) * 1000:.1f}); "
                            f"PBO {res.pbo:.3f}, prob. of OOS loss {res.prob_oos_loss:.3f}"))
    ratio_store = med["ledger_overfitting"] / med["store_read"]
    fast_of, fast_read = min(times["ledger_overfitting"]) * 1000, min(times["store_read"]) * 1000
    figs.append(figure(f"Ledger.overfitting, {what}, against Ledger.returns_frame (reading the "
                       f"{n_trials} series from the store)", med["ledger_overfitting"] * 1000, "ms",
                       target="<= 2x reading the series", ok=ratio_store <= 2.0,
                       baseline=med["store_read"] * 1000, baseline_name="Ledger.returns_frame",
                       ratio=ratio_store,
                       note=f"the issue's target; SQLite ledger, series with dates; ratio = overfitting() / "
                            f"read, medians of {len(times['store_read'])} alternated (fastest runs: "
                            f"{fast_of:.0f} / {fast_read:.0f} ms = {fast_of / fast_read:.1f}x); its PBO "
                            f"{via_ledger.pbo:.3f} (the pure function's {res.pbo:.3f})"))
    ratio_pq = med["pbo"] / med["parquet"]
    figs.append(figure(f"… against reading the series: pandas.read_parquet ({n_trials}-column frame, dates)",
                       med["pbo"] * 1000, "ms", target="<= 2x reading the series", ok=ratio_pq <= 2.0,
                       baseline=med["parquet"] * 1000, baseline_name="read_parquet", ratio=ratio_pq,
                       note="ratio = the pure function / read_parquet, for comparison with a file"))
    figs.append(figure("… against numpy.load of the bare .npy (lower bound of any read)",
                       med["pbo"] * 1000, "ms", baseline=med["npy"] * 1000, baseline_name="np.load",
                       ratio=med["pbo"] / med["npy"], note="info: ratio = ours / read"))
    limit = naive_splits if naive_splits is not None else (500 if quick else None)
    naive_t, (naive_value, done) = timed(lambda: naive_pbo(x, s, limit))
    scaled = naive_t * res.n_splits / done
    note = (f"one run over all {done:,} splits" if done == res.n_splits
            else f"{done:,} of {res.n_splits:,} splits timed ({naive_t:.2f} s), scaled")
    if done == res.n_splits:
        note += f"; its PBO {naive_value:.3f} (ours {res.pbo:.3f})"
    figs.append(figure("naive CSCV: Sharpe recomputed from raw returns on every split", scaled, "s",
                       baseline=med["pbo"], baseline_name="ours", ratio=scaled / med["pbo"],
                       note=note + "; ratio = naive / ours"))
    t_eff, n_eff = timed(lambda: effective_trials(x))
    figs.append(figure(f"effective_trials, {n_trials} trials × {n_periods:,} periods", t_eff * 1000, "ms",
                       note=f"info: N_eff = {n_eff:.1f} of {n_trials}"))
    sr = x.mean(axis=0) / x.std(axis=0, ddof=1)
    t_trl, _ = timed(lambda: [min_track_record_length(float(v)) for v in sr])
    figs.append(figure(f"min_track_record_length × {n_trials}", t_trl * 1000, "ms", note="info"))
    t_eq, _ = timed(lambda: [equity_curve(df[c]) for c in df.columns])
    figs.append(figure(f"equity_curve × {n_trials} (DatetimeIndex kept)", t_eq * 1000, "ms", note="info"))
    return {"figures": figs, "facts": machine_facts(), "load_start": load0, "load_end": os.getloadavg(),
            "quick": quick}


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3g}"
    return str(v)


def section(payload: dict[str, Any], command: str) -> str:
    f = payload["facts"]
    l0, l1 = payload["load_start"], payload["load_end"]
    status = [g["status"] for g in payload["figures"] if g["status"]]
    lines = [
        SECTION, "",
        "Data: a generated sweep (normal daily returns, a few trials with an edge), float64. The "
        "statistic against its input, alternated in one process: `Ledger.overfitting` against "
        "`Ledger.returns_frame` (the 200 series kept by the ledger, read from the store: the "
        "issue's target), the pure `probability_of_backtest_overfitting` (block sums, each "
        "half-set scored once) against two reads of the same series from files "
        "(`pandas.read_parquet` of the frame, and `numpy.load` of the bare array as the lower "
        "bound of any read); the naive CSCV (every split recomputes every Sharpe from the raw "
        "returns) once.", "",
        f"Run on {f['date_utc']} ({f['nproc']} CPUs, {f['cpu']}, Python {f['python']}): `{command}`; load "
        f"average {l0[0]:.1f}/{l0[1]:.1f}/{l0[2]:.1f} at the start, {l1[0]:.1f}/{l1[1]:.1f}/{l1[2]:.1f} "
        f"at the end. {status.count('PASS')} PASS, {status.count('FAIL')} FAIL.", "",
        "| figure | measured | target | baseline | ratio | status | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in payload["figures"]:
        base = ("" if g["baseline"] is None
                else f"{_fmt(g['baseline'])} {g['unit']} ({g['baseline_name']})")
        ratio = f"{g['ratio']:.1f}x" if g["ratio"] is not None else ""
        st = f"**{g['status']}**" if g["status"] else "info"
        lines.append(f"| {g['name']} | {_fmt(g['value'])} {g['unit']} | {g['target'] or ''} | {base} | "
                     f"{ratio} | {st} | {g['note']} |")
    return "\n".join(lines) + "\n"


def write_doc(text: str) -> Path:
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text(encoding="utf-8")
    if SECTION in doc:
        start = doc.index(SECTION)
        nxt = doc.find("\n## ", start + len(SECTION))
        rest = doc[nxt + 1:] if nxt != -1 else ""
        doc = doc[:start] + text + ("\n" + rest if rest else "")
    else:
        marker = "\n## Where the time goes"
        at = doc.find(marker)
        doc = doc + "\n" + text if at == -1 else doc[:at + 1] + text + "\n" + doc[at + 1:]
    path.write_text(doc, encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="50 trials × 1,260 periods, S = 12")
    ap.add_argument("--naive-splits", type=int, default=None,
                    help="time only the first K splits of the naive CSCV and scale (default: all)")
    ap.add_argument("--write-doc", action="store_true", help="replace this section of docs/benchmarks.md")
    args = ap.parse_args()
    payload = run(args.quick, args.naive_splits)
    exe = Path(sys.executable)
    with contextlib.suppress(ValueError):
        exe = exe.relative_to(ROOT)
    command = f"{exe} -m bench.bench_overfitting " + " ".join(sys.argv[1:])
    write_results("overfitting", {**payload, "command": command.strip()})
    text = section(payload, command.strip())
    print(text)
    if args.write_doc:
        print(f"wrote {write_doc(text)}")


if __name__ == "__main__":
    main()
