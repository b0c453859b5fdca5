"""A/B: ``probability_of_backtest_overfitting`` at two git revisions, alternated in one run.

The statistic's module is pure numpy (no other perfledger module is involved but its
checks), so the old revision's ``stats/overfitting.py`` is read with ``git show`` and loaded
beside the current one; both run on the same 200 trials × 2,520 daily returns, S = 16, one
after the other in each round; medians and the ratio old/new are printed, with the load.
On a shared machine only the ratio means something.

    python -m bench.ab_overfitting --old 0d09065 --rounds 15
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.bench_overfitting import sweep
from bench.common import ROOT
from perfledger.stats import overfitting as new


def load_old(rev: str) -> object:
    source = subprocess.run(["git", "show", f"{rev}:src/perfledger/stats/overfitting.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "overfitting_old.py"
    path.write_text(source, encoding="utf-8")
    name = "perfledger.stats._overfitting_old"  # a sibling: its relative imports resolve
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", default="0d09065",
                    help="the revision to compare with (default: before issue 22's finish)")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    old = load_old(args.old)
    x = sweep(200, 2520).to_numpy()
    fns = {"old": lambda: old.probability_of_backtest_overfitting(x, 16),  # type: ignore[attr-defined]
           "new": lambda: new.probability_of_backtest_overfitting(x, 16)}
    a, b = fns["old"](), fns["new"]()
    assert a.pbo == b.pbo and np.array_equal(a.winners, b.winners) and np.array_equal(a.oos_rank, b.oos_rank)
    load0 = os.getloadavg()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    load1 = os.getloadavg()
    print(f"old ({args.old}) {med['old']:.1f} ms, new {med['new']:.1f} ms: "
          f"{med['old'] / med['new']:.2f}x faster (medians of {args.rounds} alternated; same PBO, "
          f"winners and ranks); load {load0[0]:.1f} -> {load1[0]:.1f}")


if __name__ == "__main__":
    main()
