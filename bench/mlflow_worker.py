"""The MLflow side of the comparison, in its own interpreter.

MLflow pins ``pyarrow<26`` while perfledger's core needs a newer pyarrow, so the two cannot
share a virtualenv. ``bench_mlflow`` (running with perfledger) drives this worker, started
with the MLflow venv's python, over JSON lines on stdin/stdout. Each operation is timed
here, inside the worker, so the pipe's overhead is not charged to MLflow. The worker also
draws the plot (matplotlib comes with MLflow). Imports nothing from perfledger.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")


class Worker:
    """One MLflow tracking store on SQLite, used the way a quant researcher would."""

    def __init__(self, uri: str) -> None:
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("perfledger-bench")

    def log(self, records: list[dict[str, Any]]) -> float:
        """One run per evaluation: tags ticker/model_name/notes, the six metrics."""
        mlflow = self.mlflow
        t0 = time.perf_counter()
        for rec in records:
            with mlflow.start_run():
                mlflow.set_tags({"ticker": rec["ticker"], "model_name": rec["model_name"],
                                 "notes": rec["notes"]})
                mlflow.log_metrics({m: rec[m] for m in METRICS})
        return time.perf_counter() - t0

    def history(self, ticker: str) -> tuple[float, int]:
        t0 = time.perf_counter()
        df = self.mlflow.search_runs(filter_string=f"tags.ticker = '{ticker}'")
        return time.perf_counter() - t0, len(df)

    def best(self, tickers: list[str]) -> float:
        """MLflow has no per-group query: one ordered search per ticker."""
        t0 = time.perf_counter()
        for t in tickers:
            self.mlflow.search_runs(filter_string=f"tags.ticker = '{t}'", order_by=["metrics.sharpe DESC"],
                                    max_results=1)
        return time.perf_counter() - t0


def plot(results: dict[str, list[dict[str, Any]]], path: str, ticker: str) -> None:
    """Two panels, log scales: single-log rate and ticker-history time vs stored records."""
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
            title=f"Ticker history query ({ticker}; lower is better)")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def serve(inp: TextIO, out: TextIO) -> None:
    """Answer one JSON request per line until ``quit`` or end of input."""
    worker: Worker | None = None
    for line in inp:
        req = json.loads(line)
        op = req["op"]
        reply: dict[str, Any]
        if op == "init":
            worker = Worker(req["uri"])
            reply = {"version": worker.mlflow.__version__}
        elif op == "log" and worker is not None:
            reply = {"seconds": worker.log(req["records"])}
        elif op == "history" and worker is not None:
            seconds, rows = worker.history(req["ticker"])
            reply = {"seconds": seconds, "rows": rows}
        elif op == "best" and worker is not None:
            reply = {"seconds": worker.best(req["tickers"])}
        elif op == "plot":
            plot(req["results"], req["path"], req["ticker"])
            reply = {"ok": True}
        elif op == "quit":
            break
        else:
            reply = {"error": f"bad request {op!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main() -> None:
    # Keep the protocol channel clean: anything MLflow prints goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # even C-level writes to fd 1
    sys.stdout = sys.stderr
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    serve(sys.stdin, channel)


if __name__ == "__main__":
    main()
