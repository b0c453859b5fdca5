"""``python -m perfledger.dashboard [--store LOCATION] [--address A] [--port N] [--sample]
[--allow-writes]``."""

from __future__ import annotations

import argparse
import sys

from .launch import launch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options mirroring :func:`~perfledger.dashboard.launch.launch`."""
    parser = argparse.ArgumentParser(
        prog="python -m perfledger.dashboard",
        description="Open the perfledger Streamlit dashboard on a ledger.",
    )
    parser.add_argument(
        "--store",
        default=None,
        help="ledger directory or database URL (default: $PERFLEDGER_URL, else ./memory/logs)",
    )
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: first free from 8501)")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="add sample evaluations if the ledger directory is empty (never to a URL store, "
        "never with PERFLEDGER_READ_ONLY set)",
    )
    parser.add_argument(
        "--allow-writes",
        action="store_true",
        help="offer the page's writes (log form, sample data, clear) even when served beyond "
        "loopback (--address other than 127.0.0.1); without it such a page is read-only",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse options and run the dashboard until it exits; returns its exit code."""
    args = parse_args(argv)
    return launch(args.store, address=args.address, port=args.port, sample=args.sample,
                  allow_writes=args.allow_writes)


if __name__ == "__main__":
    sys.exit(main())
