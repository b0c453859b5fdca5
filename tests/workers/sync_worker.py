"""A separate process that syncs one ledger into another, used by the kill tests.

    python sync_worker.py SOURCE TARGET CHUNK [INITIAL_LOAD_FROM]

Runs the library's sync with chunks of CHUNK records (many transactions, so a SIGKILL lands
between and inside them), prints ``started`` once the sync is under way, a line after each
chunk committed, and the summary at the end. With INITIAL_LOAD_FROM, a source of at least that
many records into an empty PostgreSQL store takes the initial load (one transaction: a line
per chunk loaded, nothing committed before the end), and ``initial load`` is printed before
the summary when it did.
"""

from __future__ import annotations

import sys

from perfledger import Ledger
from perfledger.files.sync import sync_stores


def main() -> None:
    source, target, chunk = Ledger(sys.argv[1]), Ledger(sys.argv[2]), int(sys.argv[3])
    extra = {"initial_load_from": int(sys.argv[4])} if len(sys.argv) > 4 else {}

    def progress(done: int, total: int) -> None:
        print("started" if done == 0 else f"stored up to {done}", flush=True)

    result = sync_stores(source._ensure(), target._writable(), target, target._mirrors,
                         progress=progress, chunk=chunk, **extra)
    if result.initial_load:
        print("initial load", flush=True)
    print(result.summary(), flush=True)


if __name__ == "__main__":
    main()
