"""The command line as real processes: what only a process shows, and that the in-process
runner every other CLI test uses (tests/cli_runner.py) prints what a process prints.

- ``python -m perfledger`` and the ``perfledger`` console script start and exit 0, 1 or 2 as
  documented (README, "Command line");
- an unexpected error is one line, and ``PERFLEDGER_DEBUG=1`` prints the interpreter's traceback;
- ``history --format csv`` piped into another process, whole or cut short (``| head``);
- another process holding the ledger open while the command line logs into it;
- the same commands run in-process and as a process give the same exit code, stdout and
  stderr, byte for byte (tables, help, usage and library errors, warnings and log lines).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from cli_runner import process_env, run_cli, run_process

from perfledger import Ledger

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``ledger`` (fixed timestamps, so every read prints the same) and
    ``conflict``, a ledger whose JSON mirror does not read as records."""
    base = tmp_path_factory.mktemp("cli_process")
    with Ledger(base / "ledger") as led:
        led.log_many([{"model_name": f"M{i % 3}", "ticker": ("AAPL", "MSFT")[i % 2], "sharpe": 1 + i / 10,
                       "mse": 0.01 * (i + 1), "notes": f"run {i}", "params": {"depth": i % 4},
                       "timestamp": f"2024-01-0{1 + i // 10}T10:{i % 10:02d}:00+00:00"} for i in range(60)])
    (base / "conflict").mkdir()
    (base / "conflict" / "model_performance.json").write_text("not json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Ledger(base / "conflict").close()
    return base


AGREE = {
    "help": [],
    "command help": ["history", "--help"],
    "table": ["--store", "ledger", "history", "--limit", "20"],
    "csv": ["--store", "ledger", "history", "--format", "csv"],
    "leaderboard": ["--store", "ledger", "leaderboard", "--ticker", "AAPL"],
    "failed check": ["--store", "ledger", "check", "--ticker", "AAPL", "--model", "M0", "--metric", "sharpe",
                     "--min", "99"],
    "usage error": ["--store", "ledger", "history", "--days", "abc"],
    "library error": ["--store", "mysql://u@h/db", "tickers"],
    "warnings": ["--store", "conflict", "tickers"],
    "refused write": ["--store", "conflict", "log", "--model", "M", "--ticker", "AAPL", "--sharpe", "1"],
}


@pytest.mark.parametrize("case", AGREE)
def test_in_process_runs_print_what_a_process_prints(place: Path, case: str) -> None:
    args = AGREE[case]
    inside, outside = run_cli(*args, cwd=place), run_process(*args, cwd=place)
    assert (inside.returncode, inside.stdout, inside.stderr) == (
        outside.returncode, outside.stdout, outside.stderr)
    assert inside.stdout or inside.stderr


def console_script() -> Path:
    script = Path(sys.executable).with_name("perfledger")
    if not script.exists():
        pytest.skip(f"no perfledger console script beside {sys.executable} (tests/test_install.py "
                    "checks a fresh install's)")
    return script


@pytest.mark.parametrize("entry", ["python -m perfledger", "console script"])
def test_the_command_starts_and_exits_0_1_2(tmp_path: Path, entry: str) -> None:
    python_m = [sys.executable, "-m", "perfledger"]
    start = python_m if entry == "python -m perfledger" else [str(console_script())]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*start, "--store", str(tmp_path / "l"), *args], env=process_env(),
                              capture_output=True, text=True, timeout=300)

    logged = run("log", "--model", "LSTM_v1", "--ticker", "AAPL", "--sharpe", "1.85")
    assert logged.returncode == 0 and logged.stderr == "", logged
    check = ["check", "--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "sharpe"]
    assert run(*check, "--min", "1").returncode == 0
    failed = run(*check, "--min", "2")
    assert failed.returncode == 1 and failed.stderr.startswith("FAIL: ") and failed.stdout == "", failed
    bad = run("log", "--model", "M", "--ticker", "AAPL", "--win-rate", "68")
    assert bad.returncode == 2 and bad.stdout == "", bad
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("Error: ") and "win_rate" in bad.stderr


# Runs the console script's entry point with a bug planted in the ledger.
BUGGY = textwrap.dedent("""
    import sys
    import perfledger.ledger
    def broken(self):
        raise RuntimeError("a bug")
    perfledger.ledger.Ledger.tickers = broken
    from perfledger.cli import main
    main()
""")


def test_an_unexpected_error_is_one_line_and_the_traceback_is_for_debugging(tmp_path: Path) -> None:
    def run(debug: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", BUGGY, "--store", str(tmp_path / "l"), "tickers"],
                              env=process_env({"PERFLEDGER_DEBUG": debug}), capture_output=True, text=True,
                              timeout=300)

    quiet = run(None)
    assert quiet.returncode == 1 and quiet.stdout == ""
    assert quiet.stderr == ("Error: unexpected RuntimeError: a bug "
                            "(set PERFLEDGER_DEBUG=1 for the traceback)\n")
    loud = run("1")
    assert loud.returncode == 1
    assert loud.stderr.startswith("Traceback (most recent call last):")
    assert loud.stderr.rstrip().splitlines()[-1] == "RuntimeError: a bug"


def piped(place: Path, reader: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """``perfledger history --format csv | python -c READER``: the writer's result and what
    the reader printed."""
    writer = subprocess.Popen([sys.executable, "-m", "perfledger", "--store", str(place), "history",
                               "--format", "csv"], env=process_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    reading = subprocess.run([sys.executable, "-c", reader], stdin=writer.stdout, capture_output=True,
                             text=True, timeout=300)
    assert writer.stdout is not None and writer.stderr is not None
    writer.stdout.close()  # the reader's end only: the writer sees it closed when the reader exits
    err = writer.stderr.read().decode()
    writer.wait(timeout=300)
    assert reading.returncode == 0, reading.stderr
    return subprocess.CompletedProcess(writer.args, writer.returncode, "", err), reading.stdout


def test_csv_piped_into_another_process_whole_or_cut_short(tmp_path: Path) -> None:
    with Ledger(tmp_path / "big") as led:  # far more than a pipe holds (64 KiB)
        led.log_many([{"model_name": "M", "ticker": "AAPL", "sharpe": i / 1000, "notes": "n" * 80}
                      for i in range(5000)])
    count = "import csv, sys; rows = list(csv.DictReader(sys.stdin)); print(len(rows), rows[-1]['sharpe'])"
    whole, out = piped(tmp_path / "big", count)
    assert whole.returncode == 0 and whole.stderr == "", whole
    assert out.split() == ["5000", "4.999"]
    # `| head -n 1`: the reader goes away; the writer stops without a word (Click's exit 1 on a
    # broken pipe), never a traceback or an "unexpected" error.
    cut, out = piped(tmp_path / "big", "import sys; print(sys.stdin.readline().strip())")
    assert out.startswith("timestamp,ticker,model_name,sharpe,")
    assert cut.returncode in (0, 1) and cut.stderr == "", cut


HOLDER = textwrap.dedent("""
    import sys
    from perfledger import Ledger
    led = Ledger(sys.argv[1])
    led.log("Holder", "AAPL", sharpe=1.0)
    print("ready", flush=True)
    sys.stdin.readline()
    print(sorted(led.history()["model_name"]), flush=True)
""")


def test_the_command_line_logs_while_another_process_holds_the_ledger_open(tmp_path: Path) -> None:
    store = str(tmp_path / "l")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, store], env=process_env(), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert (tmp_path / "l" / "perfledger.db-wal").exists()  # it is open
        logged = run_cli("--store", store, "log", "--model", "Cli", "--ticker", "AAPL", "--sharpe", "2")
        assert logged.returncode == 0, logged
        read = run_cli("--store", store, "history", "--format", "json")
        assert sorted(r["model_name"] for r in json.loads(read.stdout)) == ["Cli", "Holder"]
        out, err = holder.communicate("go\n", timeout=120)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert holder.returncode == 0, err
    assert out.strip() == "['Cli', 'Holder']"
