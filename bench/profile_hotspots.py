"""Where the time goes: cProfile of ``log_many`` on the big batch, ``history(ticker=)``
and single ``log()`` calls on the full store. Diagnostic output for the core's authors,
not a pass/fail figure.

Run: ``python -m bench.profile_hotspots [--quick]`` (writes ``bench/results/profile.txt``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, generate_records


def _profile(fn: Callable[[], Any], top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    out.write("\n--- by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    # Drop pstats' preamble lines about ordering; keep the totals line and the table.
    return "\n".join(ln for ln in text.splitlines() if ln.strip() and "Ordered by" not in ln)


def run(quick: bool, top: int = 15) -> str:
    """Profile the three paths and return one text report."""
    from perfledger import Ledger

    shape = (20, 20, 100) if quick else (50, 40, 500)
    df = generate_records(*shape)
    tmp = Path(tempfile.mkdtemp(prefix="plbench_prof_"))
    sections = []
    try:
        led = Ledger(tmp / "full")
        sections.append((f"log_many({len(df):,} rows) into a fresh directory ledger (mirrors on)",
                         _profile(lambda: led.log_many(df), top)))
        sections.append(("history(ticker='T000') x 5",
                         _profile(lambda: [led.history(ticker="T000") for _ in range(5)], top)))
        rows = df.head(200).to_dict("records")

        def singles() -> None:
            for r in rows:
                led.log(r["model_name"], r["ticker"], sharpe=r["sharpe"], mse=r["mse"],
                        drawdown=r["drawdown"], total_return=r["total_return"], win_rate=r["win_rate"],
                        accuracy=r["accuracy"], notes=r["notes"])

        sections.append(("200 single log() calls on the full store", _profile(singles, top)))
        led.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return "\n\n".join(f"=== {title} ===\n{body}" for title, body in sections)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    text = run(args.quick)
    out = (args.out or RESULTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
