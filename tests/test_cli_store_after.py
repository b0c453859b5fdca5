"""``--store`` after the command name (``perfledger history --store D``) works for every
command, exactly as before it (``perfledger --store D history``), and each command's help
shows it.

The commands are the app's registered ones: a new command without an entry in :data:`ARGS`
fails :func:`test_every_command_is_covered`, so none can miss the option.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import Completed, run_cli

from perfledger import Ledger
from perfledger.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE = "{source}"  # replaced by the ledger directory each run uses

#: Arguments that make each command do its ordinary work on a small ledger (exit 0 where it can).
ARGS: dict[str, list[str]] = {
    "log": ["--model", "M", "--ticker", "T", "--sharpe", "1", "--timestamp", "2025-01-01T00:00:00"],
    "history": ["--format", "csv"],
    "best": ["--format", "json"],
    "tickers": [],
    "models": ["--ticker", "T"],
    "leaderboard": ["--format", "csv"],
    "import": ["seed/model_performance.json"],
    "import-mlflow": [f"sqlite:///{FIXTURES / 'mlflow_store.db'}", "--metric", "sharpe=sharpe_ratio"],
    "export": ["--format", "csv", "--output", "out.csv"],
    "check": ["--ticker", "T", "--model", "A", "--metric", "sharpe", "--min", "0"],
    "decay": ["--recent", "2", "--baseline", "10"],
    "overfit": ["--ticker", "T", "--partitions", "4"],
    "dashboard": ["--port", "8765"],
    "copy": ["--to", "copied"],
    "sync": ["--to", "synced"],
    "clear": ["--yes"],
    "restore": [],
    "purge": ["--yes"],
    "stats": ["--format", "json"],
    "repair": [],
}
COMMANDS = [c.name for c in app.registered_commands]


def test_every_command_is_covered() -> None:
    assert COMMANDS and sorted(COMMANDS) == sorted(ARGS), "give each command its arguments in ARGS"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger with records on T (two backtests with kept returns), a few cleared ones kept,
    and its seed files exported for ``import``."""
    import numpy as np

    root = tmp_path_factory.mktemp("source")
    with Ledger(root / "l") as led:
        led.log("Old", "T", sharpe=0.1)
        led.clear()
        rng = np.random.default_rng(3)
        dates = pd.date_range("2024-01-01", periods=40, freq="B", tz="UTC")
        for i, model in enumerate(("A", "B", "C")):
            led.log_backtest(
                model,
                "T",
                pd.Series(rng.normal(0.001 * i, 0.01, 40), index=dates),
                timestamp=f"2025-01-0{i + 1}T00:00:00",
            )
        for day in range(12):
            led.log("D", "T", sharpe=2.0 - day / 10, timestamp=f"2025-02-{day + 1:02d}T00:00:00")
        led.export_seed_files(root / "seed")
    return root


def _run(
    source: Path, work: Path, args: list[str], before: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[Completed, list[str | None]]:
    """The command on a fresh copy of the source ledger in ``work``, ``--store`` given before
    or after the command name; what it printed, and where the dashboard would have opened."""
    shutil.copytree(source, work)
    launched: list[str | None] = []

    def launch(location: str | None = None, **options: object) -> int:
        launched.append(location)
        return 0

    monkeypatch.setattr("perfledger.dashboard.launch.launch", launch)
    store = ["--store", str(work / "l")]
    line = [*store, *args] if before else [args[0], *store, *args[1:]]
    done = run_cli(*line, cwd=work)
    # Run elsewhere, the command would have opened ./memory/logs (a read leaves it behind).
    assert not (work / "memory").exists(), (line, done.stdout, done.stderr)
    return done, launched


@pytest.mark.parametrize("command", COMMANDS)
def test_store_after_the_command_is_the_store_before_it(
    command: str, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [command, *ARGS[command]]
    before, opened_before = _run(source, tmp_path / "before", args, True, monkeypatch)
    after, opened_after = _run(source, tmp_path / "after", args, False, monkeypatch)
    assert after.exception is None and after.returncode == before.returncode, after.stderr
    assert before.returncode in (0, 1), before.stderr  # each does its work, not a usage error
    same = [
        (d.stdout.replace(str(tmp_path / w), "W"), d.stderr.replace(str(tmp_path / w), "W"))
        for d, w in ((before, "before"), (after, "after"))
    ]
    assert same[0] == same[1]
    assert opened_after == [p.replace("before", "after") if p else p for p in opened_before]
    if command == "dashboard":
        assert opened_after == [str(tmp_path / "after" / "l")]
    for name in ("out.csv", "copied", "synced"):  # what the command wrote, in the same place
        assert (tmp_path / "before" / name).exists() == (tmp_path / "after" / name).exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_commands_help_shows_store(command: str) -> None:
    out = run_cli(command, "--help")
    assert out.returncode == 0
    flat = re.sub(r"[\s│]+", " ", out.stdout)  # Rich's box wraps the help text
    assert "--store DIR_OR_URL" in flat and "Before or after the command name" in flat, out.stdout


def test_store_given_twice_differently_is_one_usage_line(source: Path, tmp_path: Path) -> None:
    done = run_cli("--store", str(tmp_path / "x"), "tickers", "--store", str(source / "l"), cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--store given twice" in done.stderr
    assert not (tmp_path / "x").exists()
    same = run_cli("--store", str(source / "l"), "tickers", "--store", str(source / "l"))
    assert same.returncode == 0 and same.stdout == "T\n"


def test_store_after_the_command_beats_the_environment(source: Path, tmp_path: Path) -> None:
    done = run_cli("tickers", "--store", str(source / "l"), env={"PERFLEDGER_URL": str(tmp_path / "env")})
    assert done.returncode == 0 and done.stdout == "T\n"
    assert not (tmp_path / "env").exists()
