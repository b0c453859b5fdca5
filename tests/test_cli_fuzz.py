"""Every command, fed any value a user can type, exits 0, 1 or 2 and never shows a traceback.

The commands and their options are read from the Typer app itself, so a new command or
option is covered the day it is added. Each option gets the hard values (NaN, infinities,
huge numbers, empty, NUL, brackets, unicode, very long text) and then text Hypothesis
generates. The invocations run in-process (tests/cli_runner.py), which prints what a
``python -m perfledger`` process prints (tests/test_cli_process.py checks that).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_runner import Completed, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfledger import Ledger
from perfledger.cli import app

GROUP: Any = typer.main.get_command(app)

HARD_VALUES = [
    "nan", "inf", "-inf", "1e308", "-1e308", "1e9", "9223372036854775808", "9" * 400, "-0", "",
    " ", "a\x00b", "[red]x[/red]", "[", "]]", "{}", "[[[[", "AAPL=", "=1", "x=nan", "sharpe=inf",
    "ünïcødé ☃ 日本", "\u202e", "x" * 10_000, "x=" + "[" * 5000, "../../etc/passwd", "postgresql://u:pw@h/db",
]

#: Valid values for required parameters, so the bad value reaches the code it is meant for.
REQUIRED = {"--ticker": "AAPL", "--model": "LSTM", "--metric": "sharpe", "--to": "TARGET", "paths": "IN.json",
            "tracking_uri": "mlflow.db"}


def params_of(command: Any) -> list[Any]:
    return [p for p in command.params if not getattr(p, "is_flag", False) and p.name != "help"]


#: ``dashboard --address nan`` asks DNS, which may take seconds to say no: tested apart.
SLOW = {("dashboard", "address")}
CASES = [
    (name, param.name)
    for name, command in GROUP.commands.items()
    for param in params_of(command)
    if (name, param.name) not in SLOW
]


def argv_for(command_name: str, param_name: str | None, value: str) -> list[str]:
    """The command line: required options valid, the one under test set to ``value``."""
    command = GROUP.commands[command_name]
    args = [command_name]
    tested = None
    for param in params_of(command):
        is_option = param.param_type_name == "option"
        if param.name == param_name:
            tested = (param.opts[0], value) if is_option else (None, value)
            continue
        if param.required:
            key = param.opts[0] if is_option else param.name
            given = REQUIRED[key]
            args += [param.opts[0], given] if is_option else [given]
    if command_name == "check" and param_name not in ("min_", "max_"):
        args += ["--min", "0"]
    if tested is not None:
        opt, val = tested
        args += [opt, val] if opt else ["--", val]
    return args


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A ledger with a few records, and an import file, in a directory the commands run in.

    It is two levels below the module's temporary directory: a value such as
    ``../../etc/passwd`` given to an option that writes (``copy --to``, ``export --output``)
    resolves inside it, never in the temporary root shared with other runs (it left
    ``/tmp/pytest-of-<user>/etc/passwd`` behind)."""
    base = tmp_path_factory.mktemp("fuzz") / "runs" / "here"
    base.mkdir(parents=True)
    with Ledger(base / "ledger") as led:
        for i in range(30):
            led.log("LSTM", "AAPL", sharpe=1.0 + i / 100, notes="n", params={"d": i % 3}, tags={"run": "a"})
    (base / "IN.json").write_text(json.dumps([{"timestamp": "2024-01-01T00:00:00", "ticker": "AAPL",
                                              "model_name": "LSTM", "sharpe": 1.0}]))
    shutil.copy(Path(__file__).parent / "fixtures" / "mlflow_store.db", base / "mlflow.db")  # real MLflow's
    yield base


@pytest.fixture(autouse=True)
def no_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    """``dashboard`` must not start a server: its Streamlit process "exits at start"."""
    import perfledger.dashboard.launch as launch

    class Exited:
        def __init__(self, *_: Any, **__: Any) -> None:
            pass

        def poll(self) -> int:
            return 1

        def wait(self, timeout: float | None = None) -> int:
            return 1

    fake = types.SimpleNamespace(Popen=Exited, TimeoutExpired=subprocess.TimeoutExpired)
    monkeypatch.setattr(launch, "subprocess", fake)


def invoke(workdir: Path, args: list[str]) -> Completed:
    # In the temp dir: relative outputs (export --output, copy --to) land there.
    return run_cli("--store", str(workdir / "ledger"), *args, cwd=workdir)


def assert_clean(result: Completed, args: list[str]) -> None:
    where = (args, result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert result.exception is None, (where, result.exception)
    assert result.returncode in (0, 1, 2), where
    assert "Traceback" not in result.stdout + result.stderr, where
    # The library's own warnings (e.g. seed files found at a copy's target, adopted) are log
    # lines on stderr, as in a process; what the command line says is one line at most.
    logged = {line for message in result.logged for line in message.splitlines()}
    err = [line for line in result.stderr.splitlines() if line.strip() and line not in logged]
    if result.returncode == 2:
        assert (err and err[-1].startswith("Error: ")) or "rejected" in result.stdout, where
    assert len(err) <= 1, where


@pytest.mark.parametrize(("command", "param"), CASES)
def test_every_option_given_hard_values(workdir: Path, command: str, param: str) -> None:
    for value in HARD_VALUES:
        args = argv_for(command, param, value)
        assert_clean(invoke(workdir, args), args)


@pytest.mark.parametrize(("command", "param"), CASES)
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=50) | st.floats().map(repr) | st.integers().map(str))
def test_every_option_given_generated_values(workdir: Path, command: str, param: str, value: str) -> None:
    args = argv_for(command, param, value)
    assert_clean(invoke(workdir, args), args)


@pytest.mark.parametrize("value", [*HARD_VALUES, "mysql://u@h/db", "foo://x", "://", "sqlite:///IN.json"])
def test_store_option_given_hard_values(workdir: Path, value: str) -> None:
    for command in ("tickers", "history"):
        result = run_cli("--store", value, command, cwd=workdir)
        assert_clean(result, ["--store", value, command])


def test_the_enumeration_sees_every_command() -> None:
    expected = {"log", "history", "leaderboard", "check", "import", "copy", "clear", "dashboard"}
    assert expected <= set(GROUP.commands)
    assert ("history", "limit") in CASES and ("leaderboard", "days") in CASES


# ------------------------------------------------------------------------ the cases


def test_listed_cases(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l") as led:
        led.log("M", "T", sharpe=1.0)
    (tmp_path / "big.json").write_text(
        '[{"timestamp": "2024-01-01", "ticker": "A", "model_name": "m", "sharpe": ' + "9" * 400 + "}]")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "perfledger.db").write_bytes(os.urandom(8192))
    before = (tmp_path / "corrupt" / "perfledger.db").read_bytes()
    cases = {
        ("--store", "l", "leaderboard", "--days", "inf"): (2, "--days='inf'"),
        ("--store", "l", "leaderboard", "--days", "nan"): (2, "--days='nan'"),
        ("--store", "l", "history", "--days", "1e9"): (2, "--days='1e9'"),
        ("--store", "l", "check", "--ticker", "T", "--model", "M", "--metric", "sharpe", "--min", "nan"):
            (2, "--min='nan'"),
        ("--store", "l", "history", "--limit", "9223372036854775808"): (2, "--limit='9223372036854775808'"),
        ("--store", "l", "history", "--limit", "abc"): (2, "'abc'"),
        ("--store", "l", "import", "big.json"): (2, "400 digits"),
        ("--store", "l", "import", "deep.json"): (2, "deep.json"),
        ("--store", "mysql://u@h/db", "tickers"): (2, "'mysql'"),
        ("--store", "foo://x", "tickers"): (2, "'foo'"),
        ("--store", "://", "tickers"): (2, "'://'"),
        ("--store", "sqlite:///notes.txt", "tickers"): (2, "notes.txt"),
        ("--store", "corrupt", "tickers"): (2, "perfledger.db"),
        ("--store", "l", "history", "--bogus"): (2, "--bogus"),
    }
    for args, (code, named) in cases.items():
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr, (args, r.stderr)
        text = r.stderr.strip() if r.stderr.strip() else r.stdout.strip()
        assert named in text, (args, text)
        if r.stderr.strip():
            assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert (tmp_path / "corrupt" / "perfledger.db").read_bytes() == before
    assert Ledger(tmp_path / "l").stats()["records"] == 1


def test_unexpected_errors_are_one_line_unless_debugging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last resort: a bug becomes one line and exit 1; PERFLEDGER_DEBUG=1 shows the traceback."""
    import perfledger.ledger as ledger_module

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug\nsecond line")

    monkeypatch.setattr(ledger_module.Ledger, "tickers", broken)
    result = run_cli("--store", str(tmp_path / "l"), "tickers")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: unexpected RuntimeError: a bug; second line (set PERFLEDGER_DEBUG=1 for the traceback)"
    ]
    result = run_cli("--store", str(tmp_path / "l"), "tickers", env={"PERFLEDGER_DEBUG": "1"})
    assert isinstance(result.exception, RuntimeError) and result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().endswith("RuntimeError: a bug\nsecond line")


def test_dashboard_address_is_checked_before_anything_starts(workdir: Path) -> None:
    for value in ("a\x00b", "[", "]]", "\u202e", "x" * 300, "999.1.2.3"):
        args = argv_for("dashboard", "address", value)
        result = invoke(workdir, args)
        assert_clean(result, args)
        assert result.returncode == 2 and "--address" in result.stderr, (value, result.stderr)
