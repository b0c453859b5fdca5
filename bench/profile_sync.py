"""Where a full sync's time goes: a directory ledger of N records synced into an empty
PostgreSQL database under cProfile, the time split by step (reading the source, content
keys, claiming them in ``pl_import_keys``, the records' insert, the derived tables, the
marks, commits), with the server's view beside it: the WAL each table and index cost
(``pg_current_wal_lsn`` before and after) and the size of each relation afterwards.
Diagnostic output, not a pass/fail figure.

Run: ``python -m bench.profile_sync [--records 100000]`` (writes ``bench/results/profile_sync.txt``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, generate_records, throwaway_pg_database

#: (label, function name fragments as pstats shows them: "file:line(name)"), cumulative.
STEPS = (
    ("read the source (iter_batches)", ("writes.py", "iter_batches")),
    ("content keys (batch_keys)", ("importer.py", "batch_keys")),
    ("content digests (record_hashes)", ("importer.py", "record_hashes")),
    ("claim keys (pl_import_keys)", ("", "claim_keys")),
    ("insert: whole (tx.insert)", ("writer.py", "insert")),
    ("insert: ids", ("", "_allocate_ids")),
    ("insert: record rows", ("", "_insert_records")),
    ("insert: params/tags labels", ("writes.py", "add_labels")),
    ("insert: derived tables (_merge)", ("writes.py", "_merge")),
    ("insert: aggregates in Python/pandas", ("batch.py", "aggregates")),
    ("insert: bulk path (bulk.py)", ("bulk.py", "insert_bulk")),
    ("insert: bulk COPYs (client side)", ("bulk.py", "_copy_rows")),
    ("marks (get_meta/set_meta)", ("writes.py", "set_meta")),
    ("transaction commit", ("base.py", "commit")),
)


def _wal(conn: Any) -> int:
    return int(conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])


def _relations(conn: Any) -> list[tuple[str, int]]:
    return [(r[0], int(r[1])) for r in conn.execute(
        "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relname LIKE 'pl_%' AND pg_relation_size(c.oid) > 0 "
        "ORDER BY 2 DESC")]


def _statement_clock() -> tuple[dict[str, list[float]], Any]:
    """Time every statement psycopg sends (the client's wait is the server's work plus the
    round trip), by its first words; returns the totals and an undo."""
    import psycopg

    totals: dict[str, list[float]] = {}
    originals = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany")}

    def wrap(name: str) -> Any:
        fn = originals[name]

        def timed(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(self, query, *args, **kwargs)
            finally:
                text = query if isinstance(query, str) else str(query)
                key = f"{name}: {' '.join(text.split())[:70]}"
                entry = totals.setdefault(key, [0.0, 0])
                entry[0] += time.perf_counter() - t0
                entry[1] += 1
        return timed

    for name in originals:
        setattr(psycopg.Cursor, name, wrap(name))

    def undo() -> None:
        for name, fn in originals.items():
            setattr(psycopg.Cursor, name, fn)
    return totals, undo


def run(records: int) -> str:
    import psycopg

    from perfledger import Ledger

    df = generate_records(50, 40, max(1, records // 2000))
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, throwaway_pg_database("profsync") as url:
        node = Ledger(Path(tmp) / "node", mirrors=False)
        node.log_many(df)
        team = Ledger(url)
        team.register_metric("warmup_only", True)  # the schema exists before the clock
        plain = url.replace("postgresql+psycopg", "postgresql", 1)
        with psycopg.connect(plain, autocommit=True) as admin:
            w0 = _wal(admin)
            clock, undo = _statement_clock()
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            res = node.sync(team)
            prof.disable()
            wall = time.perf_counter() - t0
            undo()
            w1 = _wal(admin)
            rels = _relations(admin)
        out.write(f"sync of {len(df):,} records into an empty PostgreSQL store: {wall:.2f} s wall "
                  f"({res.summary()}); WAL written {(w1 - w0) / 1e6:.1f} MB\n\n")
        stats = pstats.Stats(prof)
        table: dict[str, float] = {}
        for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            for label, (frag, fname) in STEPS:
                if name == fname and frag in file:
                    table[label] = table.get(label, 0.0) + ct
        out.write("step (cumulative, profiled)            seconds   share of wall\n")
        for label, _ in STEPS:
            if label in table:
                out.write(f"  {label:<38} {table[label]:7.2f}   {table[label] / wall:6.1%}\n")
        out.write("\nstatements (client wait = server work + round trip), slowest first:\n")
        for key, (secs, calls) in sorted(clock.items(), key=lambda kv: -kv[1][0])[:14]:
            out.write(f"  {secs:7.2f} s  {calls:6d}x  {key}\n")
        out.write("\nrelation sizes afterwards (MB):\n")
        for name, size in rels:
            out.write(f"  {name:<40} {size / 1e6:8.1f}\n")
        s = io.StringIO()
        st = pstats.Stats(prof, stream=s).strip_dirs()
        st.print_callees("insert_bulk")
        out.write("\n--- what the bulk insert called (each execute: one statement's round trip) ---\n")
        out.write(s.getvalue())
        s = io.StringIO()
        st = pstats.Stats(prof, stream=s).strip_dirs()
        st.sort_stats("tottime").print_stats(25)
        out.write("\n--- by own time ---\n" + s.getvalue())
        node.close()
        team.close()
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--name", default="profile_sync")
    args = ap.parse_args()
    text = run(args.records)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{args.name}.txt"
    path.write_text(text)
    print(text)
    print("wrote", path)


if __name__ == "__main__":
    main()
