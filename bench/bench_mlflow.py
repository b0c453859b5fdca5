"""What a user would pick instead: MLflow's tracking API on its default SQLite backend,
against perfledger and the seed's design, at equal numbers of stored records.

Each evaluation is one MLflow run (the six metrics, tags ticker/model_name/notes); the
ticker history is ``search_runs(filter_string="tags.ticker = '...'")``; the best Sharpe per
ticker is one ``search_runs(order_by=["metrics.sharpe DESC"], max_results=1)`` per ticker
(MLflow has no per-group query). perfledger answers with ``history(ticker=)`` and
``best()``; the seed design with its CSV scan and ``best_models.json``.

MLflow runs in its own interpreter (``--mlflow-python``; see ``bench/mlflow_worker.py``)
because it pins pyarrow below what perfledger needs. Run:
``python -m bench.bench_mlflow --mlflow-python .venv-mlflow/bin/python [--quick]
[--plot docs/scaling.png]``; writes ``bench/results/mlflow.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import seed_baseline
from bench.common import ROOT, figure, generate_records, record_dicts, write_results

METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")
N_TICKERS, N_MODELS = 10, 10
TICKER = "T000"
TICKERS = [f"T{i:03d}" for i in range(N_TICKERS)]


def _records(n: int, random_state: int) -> list[dict[str, Any]]:
    per_pair = max(1, -(-n // (N_TICKERS * N_MODELS)))
    frame = generate_records(N_TICKERS, N_MODELS, per_pair, random_state=random_state)
    frame = frame.sample(frac=1.0, random_state=random_state)
    return record_dicts(frame.head(n))


class Design:
    """One storage design under test. Every operation returns the seconds it took, so that
    a design living in another process can time itself without the pipe's overhead."""

    name = ""
    count = 0

    def grow_to(self, n: int) -> None:
        """Bring the store to ``n`` records as cheaply as the design allows (untimed)."""
        raise NotImplementedError

    def log(self, recs: list[dict[str, Any]]) -> float:
        raise NotImplementedError

    def history(self) -> float:
        raise NotImplementedError

    def best(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        """Release files, connections and processes."""


def _clock(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class PerfledgerDesign(Design):
    name = "perfledger"

    def __init__(self, tmp: Path) -> None:
        from perfledger import Ledger

        self.led = Ledger(tmp / "perfledger")  # directory ledger: SQLite + mirror files

    def grow_to(self, n: int) -> None:
        if n > self.count:
            self.led.log_many(_records(n - self.count, random_state=1000 + self.count))
            self.count = n

    def log(self, recs: list[dict[str, Any]]) -> float:
        def go() -> None:
            for rec in recs:
                self.led.log(rec["model_name"], rec["ticker"], notes=rec["notes"],
                             **{m: rec[m] for m in METRICS})

        self.count += len(recs)
        return _clock(go)

    def history(self) -> float:
        return _clock(lambda: self.led.history(ticker=TICKER))

    def best(self) -> float:
        return _clock(self.led.best)

    def close(self) -> None:
        self.led.close()


class SeedDesign(Design):
    name = "seed design"

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "seed"
        self.recs: list[dict[str, Any]] = []

    def grow_to(self, n: int) -> None:
        if n > len(self.recs):
            self.recs.extend(_records(n - len(self.recs), random_state=2000 + len(self.recs)))
            seed_baseline.prefill(self.dir, self.recs)
        self.count = len(self.recs)

    def log(self, recs: list[dict[str, Any]]) -> float:
        def go() -> None:
            for rec in recs:
                self.recs.append(seed_baseline.log_model_performance(
                    self.dir, rec["model_name"], rec["ticker"], notes=rec["notes"],
                    **{m: rec[m] for m in METRICS}))

        out = _clock(go)
        self.count = len(self.recs)
        return out

    def history(self) -> float:
        return _clock(lambda: seed_baseline.get_model_performance_history(self.dir, ticker=TICKER))

    def best(self) -> float:
        return _clock(lambda: seed_baseline.get_best_models(self.dir))


class MlflowDesign(Design):
    """Proxy for ``bench.mlflow_worker`` running in the MLflow interpreter."""

    name = "MLflow (SQLite backend)"

    def __init__(self, tmp: Path, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, "-m", "bench.mlflow_worker"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1,
        )
        self.version = self.call(op="init", uri=f"sqlite:///{tmp / 'mlflow.db'}")["version"]

    def call(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req, default=str) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the MLflow worker died (exit {self.proc.wait()}); see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def grow_to(self, n: int) -> None:
        # MLflow has no bulk "many runs" call: a user fills it run by run, and so do we.
        if n > self.count:
            self.call(op="log", records=_records(n - self.count, random_state=3000 + self.count))
            self.count = n

    def log(self, recs: list[dict[str, Any]]) -> float:
        self.count += len(recs)
        return float(self.call(op="log", records=recs)["seconds"])

    def history(self) -> float:
        return float(self.call(op="history", ticker=TICKER)["seconds"])

    def best(self) -> float:
        return float(self.call(op="best", tickers=TICKERS)["seconds"])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def measure(designs: list[Design], checkpoints: list[int], window: int, reps: int,
            rounds: int = 5) -> dict[str, list[dict[str, Any]]]:
    """At each checkpoint: grow every store to (checkpoint - window), time ``window``
    single logs per design (so each store then holds the checkpoint), then the two
    queries. Designs are timed in alternation (chunks of logs, query repeats) so that all
    three see the same machine load."""
    rows: dict[str, list[dict[str, Any]]] = {d.name: [] for d in designs}
    for cp in checkpoints:
        for d in designs:
            d.grow_to(cp - window)
        recs = _records(window, random_state=cp)
        chunk = window // rounds
        spent = {d.name: 0.0 for d in designs}
        for r in range(rounds):
            for d in designs:
                spent[d.name] += d.log(recs[r * chunk: (r + 1) * chunk])
        for d in designs:  # any remainder, so each store holds exactly the checkpoint
            if recs[rounds * chunk:]:
                d.log(recs[rounds * chunk:])
        for d in designs:  # warm-up
            d.history()
            d.best()
        hist: dict[str, list[float]] = {d.name: [] for d in designs}
        best: dict[str, list[float]] = {d.name: [] for d in designs}
        for _ in range(reps):
            for d in designs:
                hist[d.name].append(d.history())
                best[d.name].append(d.best())
        for d in designs:
            row = {"stored": cp, "log_rate": rounds * chunk / spent[d.name],
                   "history_s": statistics.median(hist[d.name]), "best_s": statistics.median(best[d.name])}
            rows[d.name].append(row)
            print(f"{d.name:>24} {cp:>6}: {row['log_rate']:8.1f} logs/s  history "
                  f"{row['history_s'] * 1000:8.2f} ms  best {row['best_s'] * 1000:8.2f} ms", flush=True)
    return rows


def run(quick: bool, plot_path: Path | None, mlflow_python: str) -> dict[str, Any]:
    """Measure the three designs at the same checkpoints; figures are ratios at each."""
    checkpoints = [200, 500] if quick else [1000, 2000, 5000]
    window = 20 if quick else 50
    reps = 3
    tmp = Path(tempfile.mkdtemp(prefix="plbench_mlflow_"))
    designs: list[Design] = []
    ml: MlflowDesign | None = None
    try:
        designs.append(PerfledgerDesign(tmp))
        designs.append(SeedDesign(tmp))
        ml = MlflowDesign(tmp, mlflow_python)
        designs.append(ml)
        results = measure(designs, checkpoints, window, reps)
        if plot_path is not None:
            ml.call(op="plot", results=results, path=str(plot_path.resolve()), ticker=TICKER)
        version = ml.version
    finally:
        for d in designs:
            d.close()
        shutil.rmtree(tmp, ignore_errors=True)

    figs: list[dict[str, Any]] = []
    pl, seed, mlr = results["perfledger"], results["seed design"], results["MLflow (SQLite backend)"]
    for i, cp in enumerate(checkpoints):
        for what, key, unit, scale, better_high in (
            ("single log() rate", "log_rate", "logs/s", 1.0, True),
            (f"ticker history ({TICKER})", "history_s", "ms", 1000.0, False),
            ("best Sharpe per ticker (all tickers)", "best_s", "ms", 1000.0, False),
        ):
            v = pl[i][key] * scale
            for other_name, other in (("MLflow", mlr), ("seed design", seed)):
                o = other[i][key] * scale
                ratio = v / o if better_high else o / v
                figs.append(figure(f"{what} at {cp:,} stored", v, unit, baseline=o, baseline_name=other_name,
                                   ratio=ratio, group="mlflow",
                                   note="ratio = times better for perfledger (< 1: worse)"))
    return {"figures": figs, "raw": {"checkpoints": checkpoints, "window": window, "results": results,
                                     "mlflow_version": version}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--mlflow-python", default=sys.executable)
    args = ap.parse_args()
    res = run(args.quick, args.plot, args.mlflow_python)
    path = write_results("mlflow", res, args.out)
    print("wrote", path)


if __name__ == "__main__":
    main()
