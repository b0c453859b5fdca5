"""The seed's own ``memory/model_log.py`` writing its files, as the seed specification has it.

    python seed_model_log.py DIRECTORY PREFIX COUNT

Each call of :func:`log_model_performance` does what the seed's code does: load
``model_performance.json``, append the record, rewrite the whole file in place with
``json.dump(records, f, indent=2)``; append a row to ``model_performance.csv`` (header first
when the file is new); rewrite ``best_models.json``. Timestamps are the seed's naive local
``datetime.now().isoformat()``. No perfledger code is involved.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

FIELDS = ["timestamp", "ticker", "model_name", "sharpe", "mse", "drawdown", "total_return",
          "win_rate", "accuracy", "notes"]
HIGHER = {"sharpe": True, "mse": False, "drawdown": True, "total_return": True, "win_rate": True,
          "accuracy": True}


def log_model_performance(directory: Path, model_name: str, ticker: str, timestamp: str | None = None,
                          **metrics: Any) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    record = {"timestamp": timestamp or datetime.now().isoformat(), "ticker": ticker,
              "model_name": model_name}
    for m in HIGHER:
        record[m] = metrics.get(m)
    record["notes"] = metrics.get("notes", "")
    jpath = directory / "model_performance.json"
    records = json.loads(jpath.read_text()) if jpath.exists() else []
    records.append(record)
    with open(jpath, "w") as f:  # in place: same inode, truncated and rewritten
        json.dump(records, f, indent=2)
    cpath = directory / "model_performance.csv"
    new = not cpath.exists()
    with open(cpath, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: ("" if v is None else v) for k, v in record.items()})
    best: dict[str, Any] = {}
    for r in records:
        entry = best.setdefault(r["ticker"], {})
        for m, higher in HIGHER.items():
            v = r[m]
            cur = entry.get(f"best_{m}")
            if v is not None and (cur is None or (v > cur["value"] if higher else v < cur["value"])):
                entry[f"best_{m}"] = {"model": r["model_name"], "value": v, "timestamp": r["timestamp"]}
    with open(directory / "best_models.json", "w") as f:
        json.dump(best, f, indent=2)
    return record


def main() -> None:
    directory, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(count):
        log_model_performance(directory, f"M{i % 3}", f"T{i % 2}", sharpe=1 + i / 100, mse=0.01 * (i + 1),
                              drawdown=-0.1, win_rate=0.5, notes=f"{prefix}-{i}")
    print(os.getpid(), flush=True)


if __name__ == "__main__":
    main()
