"""What one ``log()`` costs, here against another checkout (e.g. the release before a
change), alternated in one run: 2,000 single logs into a 20,000-record directory ledger
(mirrors on), CPU time (user + system) and wall time per call.

Each trial is a fresh interpreter on a fresh copy of a 20k-record ledger that the same
code built, so neither side inherits the other's caches or state format. ``--variant
new-nojournal`` times this checkout with the append journal switched off (its
``write_journal`` a no-op), which isolates the journal's share.

Run: ``PYTHONPATH=$PWD/src:$PWD python -m bench.ab_single_log --old-src /tmp/old/src [--trials 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, shutil, sys, time
from pathlib import Path
from perfledger import Ledger
template, work, logs, nojournal = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
if not template.exists():
    with Ledger(template) as led:
        led.log_many([{"model_name": f"M{i % 20}", "ticker": f"T{i % 50}", "sharpe": (i % 97) / 10,
                       "mse": (i % 13) / 100 + 0.001, "notes": f"seed-{i}"} for i in range(20_000)])
shutil.copytree(template, work)
if nojournal:
    import perfledger.mirrors.undo as u
    u.Journal.write = lambda *a, **k: None
led = Ledger(work)
for i in range(50):  # warm-up
    led.log(f"M{i % 20}", f"T{i % 50}", sharpe=i / 100, mse=0.01, notes=f"warm-{i}")
cpu0, wall0 = time.process_time(), time.perf_counter()
for i in range(logs):
    led.log(f"M{i % 20}", f"T{i % 50}", sharpe=(i % 89) / 10, mse=0.02, notes=f"timed-{i}")
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
led.close()
print(json.dumps({"cpu_us": cpu / logs * 1e6, "wall_us": wall / logs * 1e6}))
"""


def trial(src: str, template: Path, work: Path, logs: int, nojournal: bool) -> dict[str, float]:
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": src}
    argv = [sys.executable, "-c", CHILD, str(template), str(work), str(logs), "1" if nojournal else "0"]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    shutil.rmtree(work, ignore_errors=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-src", required=True, help="the other checkout's src/ directory")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--logs", type=int, default=2000)
    args = ap.parse_args()
    variants = {"old": (args.old_src, False), "new": (str(ROOT / "src"), False),
                "new-nojournal": (str(ROOT / "src"), True)}
    tmp = Path(tempfile.mkdtemp(prefix="plbench_ab_log_"))
    results: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    try:
        for t in range(args.trials):
            order = list(variants) if t % 2 == 0 else list(reversed(variants))
            for name in order:
                src, nojournal = variants[name]
                template = tmp / f"template-{'old' if name == 'old' else 'new'}"
                results[name].append(trial(src, template, tmp / "work", args.logs, nojournal))
            done = [f"{k} {v[-1]['cpu_us']:.0f} µs cpu / {v[-1]['wall_us']:.0f} µs wall"
                    for k, v in results.items()]
            print(f"trial {t + 1}: " + ", ".join(done), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.logs:,} single logs into a 20,000-record ledger, {args.trials} alternated trials "
          "(median, min-max), per call:")
    for name, runs in results.items():
        cpu = [r["cpu_us"] for r in runs]
        wall = [r["wall_us"] for r in runs]
        print(f"  {name:14s} cpu {statistics.median(cpu):6.1f} µs ({min(cpu):.0f}-{max(cpu):.0f})   "
              f"wall {statistics.median(wall):6.1f} µs ({min(wall):.0f}-{max(wall):.0f})")


if __name__ == "__main__":
    main()
