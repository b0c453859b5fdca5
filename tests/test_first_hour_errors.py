"""Errors that say what to do (issue 24, item 2): a missing extra names the ``pip install``
that brings it (exit 2, one ``Error:`` line), help shows flags as flags, ``--version``.

A missing extra is simulated in a real process: ``sys.modules[name] = None`` makes both
``import name`` and ``importlib.util.find_spec(name)`` see the module as absent, as in an
environment where it was never installed.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from perfledger.cli import COMMANDS
from tests.cli_runner import process_env, run_cli

HIDE_AND_RUN = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['perfledger', *sys.argv[2:]]\n"
    "from perfledger.cli import main\n"
    "main()\n"
)


def run_without(modules: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HIDE_AND_RUN, modules, *args], cwd=cwd,
                          env=process_env(), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_dashboard_without_streamlit_names_the_extra(tmp_path: Path) -> None:
    store = tmp_path / "ledger"
    done = run_without("streamlit", "--store", str(store), "dashboard", "--sample", cwd=tmp_path)
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == [
        "Error: the dashboard needs streamlit, not installed here: "
        "pip install 'perfledger[dashboard]'; nothing was started"
    ]
    assert "No module named" not in done.stderr + done.stdout
    assert not store.exists()  # nothing written, no sample data


def test_dashboard_without_plotly_names_the_extra(tmp_path: Path) -> None:
    done = run_without("plotly", "--store", str(tmp_path / "l"), "dashboard", cwd=tmp_path)
    assert done.returncode == 2
    assert "needs plotly" in done.stderr and "pip install 'perfledger[dashboard]'" in done.stderr


@pytest.mark.parametrize("args", [
    ("--store", "postgresql://me@127.0.0.1/test", "tickers"),
    ("--store", "postgres://me@127.0.0.1/test", "history"),
    ("--store", "{dir}", "copy", "--to", "postgresql://me@127.0.0.1/test"),
])
def test_postgres_url_without_the_driver_names_the_extra(tmp_path: Path, args: tuple[str, ...]) -> None:
    args = tuple(a.replace("{dir}", str(tmp_path / "led")) for a in args)
    done = run_without("psycopg,psycopg2,adbc_driver_postgresql", *args, cwd=tmp_path)
    assert done.returncode == 2, done
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: ") and line.endswith("pip install 'perfledger[postgres]'")
    assert "user@host" not in line  # never the URL form that just failed


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_flags_without_a_value(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    done = run_cli(*args)
    assert done.returncode == 0
    assert "<bool>" not in done.stdout
    help_line = next(line for line in done.stdout.splitlines() if "--help" in line)
    assert help_line.split("--help", 1)[1].split("Show this")[0].strip(" │") == ""


def test_a_flag_takes_no_value(tmp_path: Path) -> None:
    assert run_cli("--store", str(tmp_path / "l"), "history", "--all").returncode == 0
    done = run_cli("--store", str(tmp_path / "l"), "history", "--all=yes")
    assert done.returncode == 2 and "does not take a value" in done.stderr


def test_version() -> None:
    done = run_cli("--version")
    assert (done.returncode, done.stdout) == (0, f"perfledger {version('perfledger')}\n")
    assert "--version" in run_cli("--help").stdout


def test_a_psycopg2_url_without_psycopg2_says_to_use_postgresql_or_install_it(tmp_path: Path) -> None:
    """Review 24 #4: the extra brings psycopg 3, so for ``postgresql+psycopg2://`` it is no
    answer: say to drop the driver name or install psycopg2."""
    url = "postgresql+psycopg2://me@127.0.0.1/test"
    done = run_without("psycopg2", "--store", url, "tickers", cwd=tmp_path)
    assert done.returncode == 2, done
    [line] = done.stderr.splitlines()
    assert line.endswith("(psycopg2 is not installed): use postgresql://… (psycopg 3, which pip install "
                         "'perfledger[postgres]' brings) instead of postgresql+psycopg2://…, or pip "
                         "install psycopg2-binary"), line


def test_help_lines_are_whole_sentences_and_arguments_upper_case() -> None:
    """Review 24 #5: the command list shows each summary as one paragraph (the docstring's
    source line breaks made ragged "evaluations" / "on a ticker" rows); usage lines name
    arguments in capitals."""
    import typer

    from perfledger.cli import app

    group = typer.main.get_command(app)
    for name in COMMANDS:
        short = group.commands[name].short_help  # what Typer's list prints (else the raw help)
        assert isinstance(short, str) and "\n" not in short and "  " not in short, (name, short)
    overfit = group.commands["overfit"].short_help or ""
    assert "(CSCV) over the evaluations on a ticker that kept" in overfit
    usage = run_cli("import-mlflow", "--help").stdout
    assert "{TRACKING_URI}" in usage and "tracking_uri" not in usage
