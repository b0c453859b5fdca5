"""Start the dashboard: ``perfledger dashboard``, ``make dashboard`` and ``python -m
perfledger.dashboard`` all end here.

The dashboard runs in a ``streamlit run`` subprocess (Streamlit owns its own event loop and
signal handling, which do not mix with a CLI's); the ledger location travels through
``$PERFLEDGER_URL`` so the page opens exactly the store the caller meant.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..location import ENV_URL, Location, resolve
from .access import ALLOW_WRITES_ENV, ALLOW_WRITES_FLAG, is_loopback, truthy

SCRIPT = Path(__file__).with_name("streamlit_app.py")
DEFAULT_PORT = 8501


#: What brings the dashboard's dependencies (pyproject.toml's ``dashboard`` extra).
DASHBOARD_EXTRA = "perfledger[dashboard]"


def missing_dashboard_modules() -> list[str]:
    """The dashboard's dependencies this interpreter cannot import (found without importing
    them: Streamlit takes a second to import), so a missing extra is one line naming the
    ``pip install`` instead of the child's ``No module named streamlit``."""
    from importlib.util import find_spec

    return [name for name in ("streamlit", "plotly") if find_spec(name) is None]


def free_port(address: str = "127.0.0.1", start: int = DEFAULT_PORT, tries: int = 100) -> int:
    """The first port from ``start`` nobody listens on, so the URL we print is the real one
    (Streamlit would silently move to another port otherwise)."""
    host = "127.0.0.1" if address in ("", "0.0.0.0") else address
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {start}..{start + tries - 1} on {host}")


def streamlit_command(address: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no telemetry, bound where asked."""
    return [
        sys.executable, "-m", "streamlit", "run", str(SCRIPT),
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        # The launcher prints the URL once, with the ledger it serves; not Streamlit's too
        # (its welcome, nor its "Uvicorn server started on 127.0.0.1:8501" info line).
        "--logger.hideWelcomeMessage", "true",
        "--logger.level", "warning",
    ]  # fmt: skip


def launch(
    location: str | None = None,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    sample: bool = False,
    allow_writes: bool = False,
    ready_timeout: float = 60.0,
) -> int:
    """Run the dashboard on ``location`` (default ``$PERFLEDGER_URL``, else ``./memory/logs``)
    until it stops; returns Streamlit's exit code (non-zero when it could not start).

    Nothing is written before Streamlit serves: a missing dashboard extra (exit 2, naming
    the ``pip install``), a busy or invalid port, or a Streamlit that exits at start,
    leaves the ledger (and its directory) untouched. ``sample=True`` then adds
    sample evaluations, only to an empty ledger *directory* (the embedded store) and never
    with ``$PERFLEDGER_READ_ONLY`` set or to a database URL.

    Served on an address other than loopback the page is read-only (:mod:`.access`) unless
    ``allow_writes`` (``--allow-writes``), carried to the page as ``$PERFLEDGER_ALLOW_WRITES``.
    """
    missing = missing_dashboard_modules()
    if missing:
        print(f"Error: the dashboard needs {' and '.join(missing)}, not installed here: "
              f"pip install '{DASHBOARD_EXTRA}'; nothing was started", file=sys.stderr)
        return 2
    where = resolve(location)
    loc = where.as_argument()  # for the child: absolute, so its working directory does not matter
    if port is not None and not 0 < port < 65536:
        print(f"Error: port={port} is not a TCP port (1-65535); nothing was started", file=sys.stderr)
        return 2
    host = "127.0.0.1" if address in ("", "0.0.0.0") else address
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror: "nan", "[", a NUL...
        print(f"Error: --address {address!r} is not an address of this machine ({exc}); "
              "nothing was started", file=sys.stderr)
        return 2
    if port is None:
        port = free_port(address)
    elif not _port_free(address, port):
        print(f"Error: port {port} on {address} is in use; nothing was started", file=sys.stderr)
        return 2
    env = {**os.environ, ENV_URL: loc}
    if allow_writes:
        env[ALLOW_WRITES_ENV] = "1"
    proc = subprocess.Popen(streamlit_command(address, port), env=env)
    previous = _forward_sigterm(proc)
    try:
        if not _wait_until_serving(proc, address, port, ready_timeout):
            code = proc.poll()
            if code is None:
                proc.terminate()
                code = proc.wait()
            print(f"Error: Streamlit did not start on {address}:{port}; nothing was written",
                  file=sys.stderr)
            return code or 1
        if sample:
            add_sample_if_asked(where)
        shown = "localhost" if address in ("", "0.0.0.0") else address
        print(
            f"perfledger dashboard on {where.describe()}\n  Local URL: http://{shown}:{port}\n"
            f"{_mode_line(address, allow_writes or truthy(env.get(ALLOW_WRITES_ENV)))}"
            "  (Ctrl+C to stop)",
            flush=True,
        )
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _mode_line(address: str, allow_writes: bool) -> str:
    """One line for the operator when the page is reachable from other machines."""
    if is_loopback(address):
        return ""
    if allow_writes:
        return f"  Writes enabled for anyone who can open the page ({ALLOW_WRITES_FLAG})\n"
    return f"  Read-only: served beyond this machine ({ALLOW_WRITES_FLAG} to offer writes)\n"


def add_sample_if_asked(where: Location) -> int:
    """Sample data into an empty ledger directory; 0 (with the reason printed) for a URL
    store, read-only mode, a ledger this user may only read or one that holds records."""
    from ..errors import ReadOnlyLedgerError
    from ..ledger import Ledger
    from ..sample import add_sample_data
    from .access import READ_ONLY_ENV

    if where.directory is None:
        print("--sample: not adding sample data to a database URL store", flush=True)
        return 0
    if os.environ.get(READ_ONLY_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        print("--sample: read-only mode; no sample data added", flush=True)
        return 0
    refused = "--sample: this user may only read the ledger; no sample data added"
    try:
        led = Ledger(where)
    except ReadOnlyLedgerError:  # a directory this user may only read, with no ledger yet
        print(refused, flush=True)
        return 0
    try:
        if led.read_only:
            print(refused, flush=True)
            return 0
        if led.stats()["records"]:
            return 0
        added = add_sample_data(led)
    finally:
        led.close()
    print(f"The ledger was empty: added {added} sample evaluations (--sample).", flush=True)
    return added


def _port_free(address: str, port: int) -> bool:
    host = "127.0.0.1" if address in ("", "0.0.0.0") else address
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_until_serving(proc: subprocess.Popen[bytes], address: str, port: int, timeout: float) -> bool:
    """True once the server accepts connections; False if it exits or never does."""
    host = "127.0.0.1" if address in ("", "0.0.0.0") else address
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _forward_sigterm(proc: subprocess.Popen[bytes]) -> Any:
    """Stop the server when we are stopped (a service manager sends SIGTERM, not Ctrl+C), so
    no orphaned Streamlit keeps the port. Returns the previous handler, or None off the main
    thread where handlers cannot be installed."""
    try:
        return signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    except ValueError:
        return None
