"""Run the whole benchmark suite and write its report.

    python -m bench.run_all                 # full: docs/benchmarks.md + docs/scaling.png
    python -m bench.run_all --quick         # smoke: bench/results/benchmarks-quick.md
    python -m bench.run_all --only search   # one section, rewritten in place in the report
    python -m bench.run_all --only pg       # the PostgreSQL section (issue 11) alone
    python -m bench.run_all --only sync     # syncing ledgers (issue 21) alone

Each benchmark runs in its own fresh interpreter (no state or memory carried between them);
raw results land in ``bench/results/*.json``. The MLflow comparison runs with
``--mlflow-python`` (default: this interpreter), because MLflow must not be installed into
the project's environment (it pins pyarrow below what perfledger needs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, ROOT, machine_facts

#: 1/5/15-minute load averages when each stage ended: context for noisy figures.
LOADS: dict[str, tuple[float, float, float]] = {}


def _run(python: str, module: str, args: list[str], *, check: bool = True) -> float:
    """Run ``python -m module args`` with output streamed to our console; seconds taken.
    ``check=False`` for a benchmark whose non-zero exit only says it missed its budget."""
    cmd = [python, "-m", module, *args]
    print("+", shlex.join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=check)
    LOADS[module.rsplit(".", 1)[-1]] = os.getloadavg()
    return time.perf_counter() - t0


def _probe(python: str) -> dict[str, Any]:
    """Which perfledger (and which library versions) the benchmarks actually measured."""
    code = (
        "import json, sqlite3, sys, pandas, sqlalchemy, perfledger, memory.model_log\n"
        "try:\n    import mlflow; mv = mlflow.__version__\nexcept ImportError:\n    mv = None\n"
        "print(json.dumps({'perfledger_file': perfledger.__file__,\n"
        "'memory_file': memory.model_log.__file__, 'pandas': pandas.__version__, "
        "'sqlalchemy': sqlalchemy.__version__, 'python': sys.version.split()[0], "
        "'sqlite': sqlite3.sqlite_version, 'mlflow': mv}))"
    )
    res = subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        # Fail before the long run, not after it: the interpreter cannot import what we measure.
        sys.exit(f"{python} cannot import perfledger and its dependencies:\n{res.stderr[-1500:]}")
    info = json.loads(res.stdout)
    src = Path(info["perfledger_file"]).resolve().parent
    git = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %s"], capture_output=True,
                         text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                           text=True, check=False)
    info["perfledger_commit"] = (git.stdout.strip() or "unknown") + (" (+ uncommitted changes)"
                                                                     if dirty.stdout.strip() else "")
    return info


def _probe_mlflow(python: str) -> dict[str, Any]:
    """The MLflow interpreter needs only MLflow (and matplotlib, which MLflow brings)."""
    code = "import json, mlflow, matplotlib; print(json.dumps({'mlflow': mlflow.__version__}))"
    res = subprocess.run([python, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"{python} cannot import mlflow and matplotlib:\n{res.stderr[-1500:]}")
    return dict(json.loads(res.stdout))


TITLES = {
    "core": "Seed API throughput and concurrent writers (issue 2)",
    "scale": "A million-record ledger (issue 3)",
    "mlflow": "Against MLflow's tracking API and the seed design",
    "search": "Finding experiments by params and tags (issue 12)",
    "pg": "A million records on PostgreSQL (issue 11)",
    "sync": "Syncing ledgers (issue 21)",
}
EXPLAIN = {
    "core": (
        "Throughput (both designs timed in alternating chunks): logs/s through "
        "`memory.model_log.log_model_performance` on a directory ledger (SQLite + JSON/CSV/best "
        "mirrors) pre-filled to N records, versus the seed's design re-created in "
        "`bench/seed_baseline.py` (full JSON read-modify-write with indent=2, pandas CSV append, "
        "best_models.json read-modify-write) at the same N. Concurrency: 4 spawned processes each "
        "log K records at once into one store; every record carries a unique note, so the count is "
        "of records actually present afterwards."
    ),
    "scale": (
        "Data: tickers x models x evaluations generated with numpy (plausible values, timestamps "
        "over ~2 years). Ingest baseline: `df.to_csv(path)` of the same DataFrame. History "
        "baseline: the seed's query path (`pd.read_csv` of a CSV holding the same rows, "
        "`pd.to_datetime`, filter by ticker, sort), timed alternately with `history(ticker=)`. "
        "Peak RSS is `VmHWM` of a fresh child process."
    ),
    "mlflow": (
        "One growing store per design; at each checkpoint, 50 single logs per design are timed in "
        "alternating chunks of 10 (so each store then holds the checkpoint count), then the ticker "
        "history and the best Sharpe per ticker are timed, alternating designs (median of 3). "
        "perfledger: `history(ticker=)`, `best()`; seed design: CSV scan, `best_models.json`; "
        "MLflow: `search_runs` by tag, and one `search_runs(order_by=sharpe DESC, max_results=1)` "
        "per ticker (10 tickers). MLflow runs in its own venv and process (it pins pyarrow<26, "
        "which the core cannot use) and times its operations itself, so the pipe is not charged "
        "to it."
    ),
    "search": (
        "Data: the scale benchmark's generator plus a sweep (params `max_depth` in {3, 6, 9}, `lr`, "
        "`n_estimators`; tags `run` = `nightly` on ~1% of the records, else one of 50 ad-hoc runs, and "
        "`owner`), stored with one `log_many` into a directory ledger. Baselines, in the same run and "
        "alternated with ours: what a user does without the filters, i.e. `history(include_meta=True)` "
        "of the whole store, then a pandas filter or group-by; and, as information, the pandas filter "
        "alone on a frame already in memory with params/tags flattened into columns. PostgreSQL runs "
        "the same queries on a smaller store (JSONB containment, GIN indexes)."
    ),
    "pg": (
        "One `log_many` of the scale benchmark's records into a fresh PostgreSQL database (same "
        "machine, default server settings). History baseline: the same rows fetched through the ADBC "
        "PostgreSQL driver from `bare_h`, a plain copy of `pl_records` with one `(ticker, ts, id)` "
        "index, same database, timed alternately with `history(ticker=)`. Writers: 8 spawned processes "
        "of single `log()` calls against 8 processes that each run, per record, one transaction of a "
        "bare `INSERT` and the best-row upsert (psycopg, no perfledger); every process connects before "
        "the clock starts; two alternated runs each, fresh databases, medians. `best()` is checked "
        "against a recomputation from history and every record's unique note is counted."
    ),
    "sync": (
        "`bench/bench_sync.py`. Source: a directory ledger (`mirrors=False`) holding the scale "
        "benchmark's N records. Full sync: `Ledger.sync` into an empty PostgreSQL database, against a "
        "bare `adbc_ingest` (ADBC PostgreSQL driver, binary COPY) of the same rows (ticker, model, "
        "timestamp, six metrics, notes) from an Arrow table already in memory into a plain table of a "
        "fresh database, timed before and after the sync (median of the two); as information, "
        "`log_many` of the same rows into another empty database (the insert path a sync shares). "
        "Incremental: 1,000 new records (newer than any stored) are logged into the source and synced "
        "into the N-record target, alternated with a `log_many` of 1,000 other records of the same "
        "shape into the same target; 5 rounds, medians; `SyncResult.read` says how many source "
        "records each sync read."
    ),
}


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if abs(v) >= 0.1 or v == 0 else f"{v:.3f}"


def _table(figs: list[dict[str, Any]]) -> list[str]:
    lines = ["| figure | measured | target | baseline | ratio | status | notes |",
             "|---|---|---|---|---|---|---|"]
    for f in figs:
        base = ""
        if f["baseline"] is not None:
            base = f"{_fmt(f['baseline'])} {f['unit']} ({f['baseline_name']})"
        ratio = f"{f['ratio']:.1f}x" if f["ratio"] is not None else ""
        status = f"**{f['status']}**" if f["status"] else "info"
        lines.append(f"| {f['name']} | {_fmt(f['value'])} {f['unit']} | {f['target'] or ''} | {base} | "
                     f"{ratio} | {status} | {f['note']} |")
    return lines


def write_report(path: Path, *, quick: bool, command: str, facts: dict[str, Any], probe: dict[str, Any],
                 mlprobe: dict[str, Any] | None, sections: dict[str, dict[str, Any]],
                 timings: dict[str, float], plot: Path | None, profile: str | None,
                 dashboard: str | None = None, monitoring: str | None = None) -> None:
    """docs/benchmarks.md: facts, command, every figure with target/ratio/status, plot."""
    all_figs = [f for s in sections.values() for f in s["figures"]]
    failed = [f for f in all_figs if f["status"] == "FAIL"]
    passed = [f for f in all_figs if f["status"] == "PASS"]
    out = [
        "# perfledger benchmarks"
        + (" (QUICK smoke run: small sizes, not the real figures)" if quick else ""),
        "",
        "Generated by the benchmark suite itself; do not edit by hand. Re-run with `make bench`.",
        "",
        "## Machine and run",
        "",
        f"- date: {facts['date_utc']}",
        f"- machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['ram_gb']} GB RAM, {facts['platform']}; "
        "shared and noisy, so every comparison is against a baseline measured in the same run, "
        "and repeated timings are medians",
        f"- python {probe['python']}, SQLite {probe['sqlite']}, pandas {probe['pandas']}, "
        f"SQLAlchemy {probe['sqlalchemy']}" + (f", MLflow {mlprobe['mlflow']} (separate venv)"
                                              if mlprobe and mlprobe.get("mlflow") else ""),
        f"- perfledger measured: `{probe['perfledger_file']}` at commit {probe['perfledger_commit']}; "
        f"seed API module `{probe['memory_file']}`",
        f"- command: `{command}`",
        "- stage wall times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()),
        f"- load average (1/5/15 min) at start: {'/'.join(f'{x:.1f}' for x in facts['loadavg'])}; "
        "at the end of each stage: "
        + ", ".join(f"{k} {'/'.join(f'{x:.1f}' for x in v)}" for k, v in LOADS.items())
        + f" (on {facts['nproc']} CPUs: above {facts['nproc']} means other work was competing)",
        "",
        f"**Summary: {len(passed)} PASS, {len(failed)} FAIL** against the targets"
        + (" (failed: " + "; ".join(f"{f['name']} = {_fmt(f['value'])} {f['unit']}"
                                    + (f" ({f['ratio']:.1f}x)" if f["ratio"] is not None else "")
                                    + f", target {f['target']}" for f in failed) + ")" if failed else "")
        + ".",
        "",
    ]
    for key, sec in sections.items():
        out += _section(key, sec)
        if key == "mlflow" and plot is not None:
            out += [f"![scaling]({os.path.relpath(plot, path.parent)})", ""]
    if dashboard:
        out += ["## The dashboard's first render (issues 4 and 13)", "",
                "Streamlit's `AppTest` runs the whole page (all three tabs, every query and figure, "
                "the decay test on the ticker and on every ticker, PSR/DSR) on a fresh ledger with "
                "every cache cleared; budget 1.5 s at 1,000,000 records (issue 13; issue 4's was 5 s "
                "at 100,000). The baseline is one `Ledger.history()` of the whole store in the same "
                "run.", "",
                dashboard.replace("#### ", "### ").strip(), ""]
    if monitoring:
        out += ["## Monitoring at a million records (issue 13)", "",
                "`Ledger.decay` tests every (ticker, model) pair's latest 20 evaluations against the "
                "100 before them; each pair's values are read off the (model_name, ticker, ts, id) "
                "index and nothing else. The data are stationary, so every flag is a false alarm. "
                "The filtered leaderboards are what the dashboard asks when a filter is set.", "",
                monitoring.strip(), ""]
    if profile:
        out += ["## Where the time goes (cProfile, top entries by own time)", "",
                "Full output: `bench/results/profile.txt`.", "", "```", profile, "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out))


def _section(key: str, sec: dict[str, Any], run_note: str = "") -> list[str]:
    lines = [f"## {TITLES.get(key, key)}", "", EXPLAIN.get(key, ""), ""]
    if run_note:
        lines += [run_note, ""]
    return [*lines, *_table(sec["figures"]), ""]


def splice_report(path: Path, sections: dict[str, dict[str, Any]], command: str, facts: dict[str, Any],
                  timings: dict[str, float]) -> None:
    """Rewrite only these sections of an existing report (``--only``): each says when and how
    it was run, since the report's header describes the full run; the summary is recounted."""
    text = path.read_text() if path.exists() else "# perfledger benchmarks\n"
    for key, sec in sections.items():
        figs = sec["figures"]
        passed = sum(f["status"] == "PASS" for f in figs)
        failed = [f["name"] for f in figs if f["status"] == "FAIL"]
        end_load = LOADS.get("bench_" + key, facts["loadavg"])
        note = (f"Run on its own on {facts['date_utc']} ({timings.get(key, 0):.0f} s): `{command}`; load "
                f"average {'/'.join(f'{x:.1f}' for x in facts['loadavg'])} at the start, "
                f"{'/'.join(f'{x:.1f}' for x in end_load)} at the end (on {facts['nproc']} CPUs). "
                f"{passed} PASS, {len(failed)} FAIL" + (f" ({'; '.join(failed)})" if failed else "") + ".")
        body = "\n".join(_section(key, sec, note))
        heading = f"## {TITLES.get(key, key)}\n"
        if heading in text:
            start = text.index(heading)
            nxt = text.find("\n## ", start + len(heading))
            text = text[:start] + body + ("\n" + text[nxt + 1:] if nxt >= 0 else "")
        else:
            anchors = [text.find(h) for h in ("## The dashboard's first render", "## Where the time goes")]
            at = min((a for a in anchors if a >= 0), default=-1)
            text = text[:at] + body + "\n" + text[at:] if at >= 0 else text.rstrip("\n") + "\n\n" + body
    passed, failed = text.count("| **PASS** |"), text.count("| **FAIL** |")
    text = re.sub(r"\*\*Summary: \d+ PASS, \d+ FAIL\*\*[^\n]*",
                  f"**Summary: {passed} PASS, {failed} FAIL** against the targets (the "
                  f"{', '.join(sections)} section was run on its own afterwards; see it).", text, count=1)
    path.write_text(text)


def _profile_summary(text: str, top: int = 8) -> str:
    """The first ``top`` rows of each section's by-own-time table."""
    keep: list[str] = []
    for section in text.split("=== ")[1:]:
        title, _, body = section.partition(" ===\n")
        rows = body.split("--- by cumulative time ---")[0].splitlines()
        header = [ln for ln in rows if "function calls" in ln][:1]
        table = [ln for ln in rows if ln.strip() and "function calls" not in ln
                 and ("ncalls" in ln or ln.strip()[0].isdigit())]
        keep += [f"# {title}", *header, *table[: top + 1], ""]
    return "\n".join(keep).rstrip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    ap.add_argument("--mlflow-python", default=sys.executable,
                    help="interpreter with mlflow installed; MLflow pins pyarrow<26, so it lives in its "
                    "own venv (default: this interpreter)")
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument("--no-profile", action="store_true", help="skip the cProfile diagnostics")
    ap.add_argument("--only", choices=["scale", "search", "pg", "sync"], action="append",
                    help="run only this section and rewrite it in the existing report (repeatable)")
    args = ap.parse_args()

    pp = os.environ.get("PYTHONPATH")
    command = (f"PYTHONPATH={pp} " if pp else "") + shlex.join(
        [os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable,
         "-m", "bench.run_all", *sys.argv[1:]])
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if args.quick:
        report, plot = RESULTS_DIR / "benchmarks-quick.md", RESULTS_DIR / "scaling-quick.png"
    else:
        report, plot = ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "scaling.png"
    q = ["--quick"] if args.quick else []
    facts = machine_facts()
    facts["loadavg"] = os.getloadavg()
    probe = _probe(sys.executable)
    ml = [] if args.skip_mlflow else ["--mlflow-python", args.mlflow_python]
    if args.only:
        modules = {"scale": ("bench.bench_scale", q), "search": ("bench.bench_search", [*q, *ml]),
                   "pg": ("bench.bench_pg", q), "sync": ("bench.bench_sync", q)}
        only_timings = {name: _run(sys.executable, modules[name][0], modules[name][1])
                        for name in dict.fromkeys(args.only)}
        sections = {name: json.loads((RESULTS_DIR / f"{name}.json").read_text()) for name in args.only}
        splice_report(report, sections, command, facts, only_timings)
        print(f"rewrote {', '.join(args.only)} in {report}")
        return
    mlprobe = None if args.skip_mlflow else _probe_mlflow(args.mlflow_python)
    timings: dict[str, float] = {}
    timings["core"] = _run(sys.executable, "bench.bench_core", q)
    timings["scale"] = _run(sys.executable, "bench.bench_scale", q)
    timings["search"] = _run(sys.executable, "bench.bench_search", [*q, *ml])
    timings["pg"] = _run(sys.executable, "bench.bench_pg", q)
    timings["sync"] = _run(sys.executable, "bench.bench_sync", q)
    sections = {name: json.loads((RESULTS_DIR / f"{name}.json").read_text())
                for name in ("core", "scale", "search", "pg", "sync")}
    if not args.skip_mlflow:
        timings["mlflow"] = _run(sys.executable, "bench.bench_mlflow",
                                 [*q, "--plot", str(plot), "--mlflow-python", args.mlflow_python])
        sections["mlflow"] = json.loads((RESULTS_DIR / "mlflow.json").read_text())
    # The dashboard's first render at 100k records (issue 4), measured with Streamlit's AppTest.
    timings["dashboard"] = _run(sys.executable, "bench.bench_dashboard",
                                ["--records", "20000", "--runs", "2"] if args.quick else [], check=False)
    dashboard_md = (RESULTS_DIR / "dashboard.md").read_text()
    # Monitoring at 1M records (issue 13): decay() over 2,000 pairs, filtered leaderboards.
    timings["monitoring"] = _run(sys.executable, "bench.bench_monitoring", q, check=False)
    monitoring_md = (RESULTS_DIR / "monitoring.md").read_text()
    profile = None
    if not args.no_profile:
        timings["profile"] = _run(sys.executable, "bench.profile_hotspots", q)
        profile = _profile_summary((RESULTS_DIR / "profile.txt").read_text())
    write_report(report, quick=args.quick, command=command, facts=facts, probe=probe, mlprobe=mlprobe,
                 sections=sections, timings=timings, plot=None if args.skip_mlflow else plot, profile=profile,
                 dashboard=dashboard_md, monitoring=monitoring_md)
    print(f"wrote {report}" + ("" if args.skip_mlflow else f" and {plot}"))


if __name__ == "__main__":
    main()
