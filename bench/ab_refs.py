"""A/B: the same operations on two git revisions of perfledger, alternated in one run.

For a change that must not slow anything down (a refactor), absolute figures on a shared
machine say little; the ratio new/old of medians measured in alternation, on identical
stores, does. Each revision runs from its own ``git worktree`` in fresh worker processes.

    python -m bench.ab_refs --old 59663d5 --new HEAD --records 200000 --rounds 5 \
        --pg postgresql+psycopg://postgres@127.0.0.1:5432/perfledger_ab

Writes ``bench/results/ab_refs.json`` and ``docs/benchmarks-ab.md`` (the table, the machine,
the load and the command that produced them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, machine_facts, write_results

WORKER = r"""
import json, sys, time, statistics
from pathlib import Path
from perfledger import Ledger
from bench.common import generate_records

store, records, phase = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if phase == "build":
    per_pair = max(1, records // 100)
    frame = generate_records(10, 10, per_pair, random_state=1).head(records)
    led = Ledger(store)
    t = time.perf_counter(); led.log_many(frame); seconds = time.perf_counter() - t
    print(json.dumps({"log_many(all records) into a new store, mirrors on, s": seconds}))
    sys.exit(0)
led = Ledger(store)
def med(fn, n):
    xs = []
    for _ in range(n):
        t = time.perf_counter(); fn(); xs.append(time.perf_counter() - t)
    return statistics.median(xs)
led.history(ticker="T001"); led.best(); led.leaderboard()  # warm caches and pools
out = {
    "history(ticker) ms": med(lambda: led.history(ticker="T001"), 7) * 1e3,
    "history(ticker, days_back=90) ms": med(lambda: led.history(ticker="T001", days_back=90), 7) * 1e3,
    "best() ms": med(led.best, 15) * 1e3,
    "leaderboard(ticker) ms": med(lambda: led.leaderboard("T001"), 15) * 1e3,
    "leaderboard(days_back=90) ms": med(lambda: led.leaderboard(days_back=90), 3) * 1e3,
}
# Single logs as a research loop makes them: an existing ticker, values that rarely beat
# its best (so best_models.json is rarely rewritten), 1,000 calls, checkpoints included.
import random
rng = random.Random(3)
t = time.perf_counter()
for i in range(1000):
    led.log(f"AB_model_{i % 5}", "T001", sharpe=rng.gauss(0, 1), mse=rng.uniform(0.01, 0.1),
            win_rate=rng.uniform(0.4, 0.6), notes="ab")
out["single log() per s"] = 1000 / (time.perf_counter() - t)
batch = generate_records(10, 10, 10, random_state=9)
t = time.perf_counter(); led.log_many(batch); out["log_many(1k) ms"] = (time.perf_counter() - t) * 1e3
pg_url = sys.argv[4] if len(sys.argv) > 4 else ""
if pg_url:  # single logs on PostgreSQL: a network round trip each, into a store of 20k records
    pg = Ledger(pg_url); pg.clear(); pg.log_many(generate_records(10, 10, 200, random_state=2))
    for i in range(50):
        pg.log("AB_warm", "T001", sharpe=rng.gauss(0, 1))
    t = time.perf_counter()
    for i in range(500):
        pg.log(f"AB_model_{i % 5}", "T001", sharpe=rng.gauss(0, 1), mse=rng.uniform(0.01, 0.1),
               win_rate=rng.uniform(0.4, 0.6), notes="ab")
    out["PostgreSQL single log() per s"] = 500 / (time.perf_counter() - t)
    pg.clear(); pg.close()
print(json.dumps(out))
"""


def _worktree(ref: str, parent: Path) -> Path:
    path = parent / f"ab-{ref.replace('/', '_')}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), ref],
                   check=True, capture_output=True)
    return path


def _run(src: Path, store: Path, records: int, phase: str, pg: str = "") -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": f"{src / 'src'}{os.pathsep}{ROOT}"}
    # Run from the store's folder: the revision's own bench/ must not shadow this one's.
    res = subprocess.run([sys.executable, "-c", WORKER, str(store), str(records), phase, pg],
                         env=env, capture_output=True, text=True, check=False, cwd=store.parent)
    if res.returncode != 0:
        sys.exit(f"{src.name} {phase} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="59663d5")
    parser.add_argument("--new", default="HEAD")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pg", default="", help="also time single logs on this PostgreSQL URL "
                        "(a throw-away database: it is cleared)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="perfledger-ab-") as tmp:
        parent = Path(tmp)
        trees = {"old": _worktree(args.old, parent), "new": _worktree(args.new, parent)}
        try:
            samples: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
            for r in range(args.rounds):
                order = ("old", "new") if r % 2 == 0 else ("new", "old")
                for side in order:
                    store = parent / f"store-{side}-{r}"
                    # Each side builds its own store with its own code (what its users would have).
                    built = _run(trees[side], store, args.records, "build")
                    samples[side].append({**built, **_run(trees[side], store, args.records, "measure",
                                                          args.pg)})
                print(f"round {r + 1}/{args.rounds} done", flush=True)
        finally:
            for path in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                               check=False, capture_output=True)
    rows = []
    for name in samples["old"][0]:
        old = statistics.median(s[name] for s in samples["old"])
        new = statistics.median(s[name] for s in samples["new"])
        rows.append({"operation": name, "old": old, "new": new, "new/old": new / old})
    write_results("ab_refs", {"old": args.old, "new": args.new, "records": args.records,
                              "rounds": args.rounds, "rows": rows, "load": os.getloadavg()})
    facts = machine_facts()
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    title = f"operation ({args.records:,} records, median of {args.rounds})"
    lines = [
        "# perfledger A/B benchmark: two revisions, alternated in one run",
        "",
        "Generated by `bench/ab_refs.py`; do not edit by hand. Each revision builds its own store of "
        "the same generated records with its own code, then times the same operations in a fresh "
        "process; the revisions alternate round by round, so machine noise hits both alike. Read "
        "the ratio, not the absolute figures.",
        "",
        f"- date: {facts['date_utc']}; machine: {facts['nproc']} CPUs ({facts['cpu']}), shared; "
        f"load average at the end (1/5/15 min): {load}",
        f"- command: `python -m bench.ab_refs --old {args.old} --new {args.new} --records {args.records} "
        f"--rounds {args.rounds}{' --pg ' + _hide(args.pg) if args.pg else ''}`",
        f"- old: `{_describe(args.old)}`; new: `{_describe(args.new)}`",
        "",
        f"| {title} | old | new | new/old |",
        "|---|---:|---:|---:|",
        *(f"| {r['operation']} | {r['old']:.2f} | {r['new']:.2f} | {r['new/old']:.2f} |" for r in rows),
        "",
        "For times (ms, s) a ratio below 1 means the new revision is faster; for rates (per s), above 1.",
        "",
    ]
    out = ROOT / "docs" / "benchmarks-ab.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out}")


def _hide(url: str) -> str:
    from perfledger.location import hide_password

    return hide_password(url)


def _describe(ref: str) -> str:
    res = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", ref],
                         capture_output=True, text=True, check=False)
    return res.stdout.strip()[:100] or ref


if __name__ == "__main__":
    main()
