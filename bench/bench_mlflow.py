"""What a user would pick instead: MLflow's tracking API on its default SQLite backend,
against perfledger and the seed's design, at equal numbers of stored records.

Each evaluation is one MLflow run (the six metrics, tags ticker/model_name/notes); the
ticker history is ``search_runs(filter_string="tags.ticker = '...'")``; the best Sharpe per
ticker is one ``search_runs(order_by=["metrics.sharpe DESC"], max_results=1)`` per ticker
(MLflow has no per-group query). perfledger answers with ``history(ticker=)`` and
``best()``; the seed design with its CSV scan and ``best_models.json``.

Needs the bench venv (mlflow, matplotlib): ``python -m bench.bench_mlflow [--quick]
[--plot docs/scaling.png]``; writes ``bench/results/mlflow.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import seed_baseline
from bench.common import figure, generate_records, interleaved_medians, record_dicts, write_results

METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")
N_TICKERS, N_MODELS = 10, 10
TICKER = "T000"


def _records(n: int, seed: int) -> list[dict[str, Any]]:
    per_pair = max(1, -(-n // (N_TICKERS * N_MODELS)))
    frame = generate_records(N_TICKERS, N_MODELS, per_pair, seed=seed).sample(frac=1.0, random_state=seed)
    return record_dicts(frame.head(n))


class Design:
    """One storage design under test: how it logs one record and answers the two queries."""

    name = ""

    def grow_to(self, n: int) -> None:
        """Bring the store to ``n`` records as cheaply as the design allows (untimed)."""
        raise NotImplementedError

    def log(self, rec: dict[str, Any]) -> None:
        raise NotImplementedError

    def ticker_history(self) -> Any:
        raise NotImplementedError

    def best_per_ticker(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Release files and connections."""


class PerfledgerDesign(Design):
    name = "perfledger"

    def __init__(self, tmp: Path) -> None:
        from perfledger import Ledger

        self.led = Ledger(tmp / "perfledger")  # directory ledger: SQLite + mirror files
        self.count = 0

    def grow_to(self, n: int) -> None:
        if n > self.count:
            self.led.log_many(_records(n - self.count, seed=1000 + self.count))
            self.count = n

    def log(self, rec: dict[str, Any]) -> None:
        self.led.log(rec["model_name"], rec["ticker"], notes=rec["notes"], **{m: rec[m] for m in METRICS})
        self.count += 1

    def ticker_history(self) -> Any:
        return self.led.history(ticker=TICKER)

    def best_per_ticker(self) -> Any:
        return self.led.best()

    def close(self) -> None:
        self.led.close()


class SeedDesign(Design):
    name = "seed design"

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "seed"
        self.recs: list[dict[str, Any]] = []

    def grow_to(self, n: int) -> None:
        if n > len(self.recs):
            self.recs.extend(_records(n - len(self.recs), seed=2000 + len(self.recs)))
            seed_baseline.prefill(self.dir, self.recs)

    def log(self, rec: dict[str, Any]) -> None:
        out = seed_baseline.log_model_performance(
            self.dir, rec["model_name"], rec["ticker"], notes=rec["notes"], **{m: rec[m] for m in METRICS}
        )
        self.recs.append(out)

    def ticker_history(self) -> Any:
        return seed_baseline.get_model_performance_history(self.dir, ticker=TICKER)

    def best_per_ticker(self) -> Any:
        return seed_baseline.get_best_models(self.dir)


class MlflowDesign(Design):
    name = "MLflow (SQLite backend)"

    def __init__(self, tmp: Path) -> None:
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
        mlflow.set_experiment("perfledger-bench")
        self.count = 0

    def grow_to(self, n: int) -> None:
        # MLflow has no bulk "many runs" call: a user fills it run by run, and so do we.
        while self.count < n:
            for rec in _records(n - self.count, seed=3000 + self.count):
                self.log(rec)

    def log(self, rec: dict[str, Any]) -> None:
        mlflow = self.mlflow
        with mlflow.start_run():
            mlflow.set_tags({"ticker": rec["ticker"], "model_name": rec["model_name"], "notes": rec["notes"]})
            mlflow.log_metrics({m: rec[m] for m in METRICS})
        self.count += 1

    def ticker_history(self) -> Any:
        return self.mlflow.search_runs(filter_string=f"tags.ticker = '{TICKER}'")

    def best_per_ticker(self) -> Any:
        return {
            f"T{i:03d}": self.mlflow.search_runs(
                filter_string=f"tags.ticker = 'T{i:03d}'", order_by=["metrics.sharpe DESC"], max_results=1
            )
            for i in range(N_TICKERS)
        }


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
        recs = _records(window, seed=cp)
        chunk = window // rounds
        spent = {d.name: 0.0 for d in designs}
        for r in range(rounds):
            part = recs[r * chunk: (r + 1) * chunk]
            for d in designs:
                t0 = time.perf_counter()
                for rec in part:
                    d.log(rec)
                spent[d.name] += time.perf_counter() - t0
        for d in designs:  # top up any remainder so the store holds exactly the checkpoint
            for rec in recs[rounds * chunk:]:
                d.log(rec)
        fns: dict[str, Callable[[], Any]] = {}
        for d in designs:
            fns[f"{d.name}|history"] = d.ticker_history
            fns[f"{d.name}|best"] = d.best_per_ticker
        med = interleaved_medians(fns, repeat=reps)
        for d in designs:
            row = {"stored": cp, "log_rate": rounds * chunk / spent[d.name],
                   "history_s": med[f"{d.name}|history"], "best_s": med[f"{d.name}|best"]}
            rows[d.name].append(row)
            print(f"{d.name:>24} {cp:>6}: {row['log_rate']:8.1f} logs/s  history "
                  f"{row['history_s'] * 1000:8.2f} ms  best {row['best_s'] * 1000:8.2f} ms", flush=True)
    return rows


def plot(results: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Two panels, log scales: log rate and ticker-history time against stored records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=90)
    styles = {"perfledger": "o-", "seed design": "s--", "MLflow (SQLite backend)": "^-."}
    for name, rows in results.items():
        xs = [r["stored"] for r in rows]
        ax1.plot(xs, [r["log_rate"] for r in rows], styles.get(name, "o-"), label=name)
        ax2.plot(xs, [r["history_s"] * 1000 for r in rows], styles.get(name, "o-"), label=name)
    ax1.set(xscale="log", yscale="log", xlabel="stored records", ylabel="single log() calls / s",
            title="Log rate (higher is better)")
    ax2.set(xscale="log", yscale="log", xlabel="stored records", ylabel="ms",
            title=f"Ticker history query ({TICKER}; lower is better)")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(quick: bool, plot_path: Path | None) -> dict[str, Any]:
    """Measure the three designs at the same checkpoints; figures are ratios at each."""
    import mlflow

    checkpoints = [200, 500] if quick else [1000, 2000, 5000]
    window = 20 if quick else 50
    reps = 3
    tmp = Path(tempfile.mkdtemp(prefix="plbench_mlflow_"))
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    designs: list[Design] = []
    try:
        for factory in (PerfledgerDesign, SeedDesign, MlflowDesign):
            designs.append(factory(tmp))
        results = measure(designs, checkpoints, window, reps)
    finally:
        for d in designs:
            d.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if plot_path is not None:
        plot(results, plot_path)

    figs: list[dict[str, Any]] = []
    pl, seed, ml = results["perfledger"], results["seed design"], results["MLflow (SQLite backend)"]
    for i, cp in enumerate(checkpoints):
        for what, key, unit, scale, better_high in (
            ("single log() rate", "log_rate", "logs/s", 1.0, True),
            (f"ticker history ({TICKER})", "history_s", "ms", 1000.0, False),
            ("best Sharpe per ticker (all tickers)", "best_s", "ms", 1000.0, False),
        ):
            v = pl[i][key] * scale
            for other_name, other in (("MLflow", ml), ("seed design", seed)):
                o = other[i][key] * scale
                ratio = v / o if better_high else o / v
                figs.append(figure(f"{what} at {cp:,} stored", v, unit, baseline=o, baseline_name=other_name,
                                   ratio=ratio, group="mlflow",
                                   note="ratio = times better for perfledger (< 1: worse)"))
    return {
        "figures": figs,
        "raw": {"checkpoints": checkpoints, "window": window, "results": results,
                "mlflow_version": mlflow.__version__},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args()
    res = run(args.quick, args.plot)
    path = write_results("mlflow", res, args.out)
    print("wrote", path)


if __name__ == "__main__":
    main()
