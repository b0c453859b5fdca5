"""`pip install perfledger` (no extras) gives a working `perfledger` command (issue 10, item 6).

One fresh venv per session: the project (pyproject, README, src) is copied to a temporary
directory, so building it leaves nothing in the checkout, and installed with the machine's
configured package index. The command then runs from the venv with a clean environment (no
PYTHONPATH pointing at the checkout), so what runs is the installed package and only its
declared dependencies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("install")
    project = base / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = base / "venv"
    env = clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(project)],
                         env=env, capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-4000:]
    return venv / "bin"


def clean_env() -> dict[str, str]:
    drop = ("PYTHONPATH", "PERFLEDGER_URL", "VIRTUAL_ENV", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop}


def cli(bin_: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_ / "perfledger"), *args], env=clean_env(), cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_plain_install_has_a_working_command(venv_bin: Path, tmp_path: Path) -> None:
    # No extras: neither the dashboard's nor PostgreSQL's libraries are there.
    probe = subprocess.run(
        [str(venv_bin / "python"), "-c",
         "import importlib.util as u, perfledger, json; print(json.dumps("
         "[perfledger.__file__, u.find_spec('streamlit') is None, u.find_spec('psycopg') is None]))"],
        env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    )
    where, no_streamlit, no_psycopg = json.loads(probe.stdout)
    assert str(venv_bin.parent) in where and no_streamlit and no_psycopg

    helped = cli(venv_bin, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "leaderboard" in helped.stdout and "Traceback" not in helped.stderr

    store = tmp_path / "ledger"
    logged = cli(venv_bin, "--store", str(store), "log", "--model", "LSTM_v1", "--ticker", "AAPL",
                 "--sharpe", "1.85", "--win-rate", "0.68", cwd=tmp_path)
    assert logged.returncode == 0, logged.stderr
    best = cli(venv_bin, "--store", str(store), "best", "--format", "json", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    assert "LSTM_v1" in best.stdout and "1.85" in best.stdout
