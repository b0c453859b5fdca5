"""Instructions per sustained single ``log()``, counted by callgrind: a figure no load on
this shared machine changes (wall times under a load of 20-40 do not compare run to run).

Each count is a fresh interpreter under ``valgrind --tool=callgrind`` on a copy of a
20,000-record directory ledger (mirrors on), 50 warm-up logs, then ``N`` logs of one record
(a best not beaten); the figure is (Ir(410) - Ir(10)) / 400, user space only (the system
calls' kernel work is not counted). ``--src`` points at another checkout's ``src`` for an
A/B (the template ledger is built by the code being counted).

Run: ``python -m bench.count_single_log [--src /path/to/other/src]`` (needs valgrind; ~2 min
on a quiet machine).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import shutil, sys
from pathlib import Path
from perfledger import Ledger
template, work, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
if not template.exists():
    with Ledger(template) as led:
        led.log_many([{"model_name": f"M{i % 100}", "ticker": f"T{i % 500:03d}", "sharpe": (i % 97) / 10,
                       "mse": (i % 13) / 100 + 0.001, "notes": f"seed-{i}"} for i in range(20_000)])
shutil.copytree(template, work)
led = Ledger(work)
for i in range(50 + n):
    led.log("M_new", f"T{i % 500:03d}", sharpe=0.1, mse=0.5, notes="x")
led.close()
"""


def count(src: str, template: Path, work: Path, n: int, *, counted: bool = True) -> int:
    """Instructions of one child run (0 when not ``counted``: the template is built at full
    speed, outside valgrind)."""
    env = {**os.environ, "PYTHONPATH": src}
    tool = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] if counted else []
    out = subprocess.run([*tool, sys.executable, "-c", CHILD, str(template), str(work), str(n)],
                         capture_output=True, text=True, env=env, check=True)
    if not counted:
        return 0
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(Path(__file__).resolve().parent.parent / "src"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="count_single_log_") as tmp:
        template = Path(tmp) / "template"
        count(args.src, template, Path(tmp) / "warm", 0, counted=False)  # builds the template
        low = count(args.src, template, Path(tmp) / "low", 10)
        high = count(args.src, template, Path(tmp) / "high", 410)
    print(f"{args.src}: {(high - low) // 400:,} instructions per sustained log()")


if __name__ == "__main__":
    main()
