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
from pathlib import Path
from typing import Any

from ..location import ENV_URL, resolve

SCRIPT = Path(__file__).with_name("streamlit_app.py")
DEFAULT_PORT = 8501


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
    ]  # fmt: skip


def launch(
    location: str | None = None,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    sample_if_empty: bool = True,
) -> int:
    """Run the dashboard on ``location`` (default ``$PERFLEDGER_URL``, else ``./memory/logs``)
    until it stops; returns Streamlit's exit code.

    An empty store gets sample data first (``sample_if_empty``) so a first run shows
    something worth looking at. Listens on 127.0.0.1 unless ``address`` says otherwise.
    """
    from ..ledger import Ledger
    from ..sample import add_sample_data

    where = resolve(location)
    loc = where.as_argument()  # for the child: absolute, so its working directory does not matter
    led = Ledger(where)
    try:
        if sample_if_empty and led.stats()["records"] == 0:
            added = add_sample_data(led)
            print(f"The ledger was empty: added {added} sample evaluations.", flush=True)
    finally:
        led.close()
    port = port if port is not None else free_port(address)
    shown = "localhost" if address in ("", "0.0.0.0") else address
    print(
        f"perfledger dashboard on {where.describe()}\n  Local URL: http://{shown}:{port}\n  (Ctrl+C to stop)",
        flush=True,
    )
    env = {**os.environ, ENV_URL: loc}
    proc = subprocess.Popen(streamlit_command(address, port), env=env)
    previous = _forward_sigterm(proc)
    try:
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


def _forward_sigterm(proc: subprocess.Popen[bytes]) -> Any:
    """Stop the server when we are stopped (a service manager sends SIGTERM, not Ctrl+C), so
    no orphaned Streamlit keeps the port. Returns the previous handler, or None off the main
    thread where handlers cannot be installed."""
    try:
        return signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    except ValueError:
        return None
