"""Every ``perfledger ...`` command README shows in its code blocks runs against a fresh
sample ledger (what ``make run`` adds, in ``./memory/logs``) and does what README says:
its exit code, output that is not empty, and the rows it names.

Commands are read from README itself; each must have an entry in :data:`EXPECT` (a command
added to README without one fails :func:`test_every_readme_command_is_mapped`). What a
command needs from outside is mapped explicitly: a PostgreSQL URL becomes a throw-away
database on the test server (conftest's), ``sqlite:///mlflow.db`` a copy of the store real
MLflow wrote (``tests/fixtures/mlflow_store.db``); ``dashboard`` is skipped with its reason
(it serves until stopped: tests/test_dashboard*.py cover it).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from perfledger import Ledger
from perfledger.sample import DECAYING, add_sample_data
from tests.cli_runner import Completed, run_cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
README_PG_URLS = re.compile(r"postgresql\+psycopg://[\w.@-]+/\w+")


def readme_commands() -> list[str]:
    """Each ``perfledger`` command line of README's fenced code blocks (continuation lines
    joined, comments dropped), normalised to single spaces, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("perfledger "):
                out.append(shlex.join(shlex.split(line, comments=True)))
    return out


@dataclass
class Run:
    """One README command's run: where, and what it printed."""

    cwd: Path
    done: Completed
    #: The arguments run (after ``perfledger``), README's URLs replaced.
    args: list[str]
    #: The PostgreSQL database that replaced README's URL ("" for none).
    pg: str = ""

    @property
    def ledger(self) -> Path:
        return self.cwd / "memory" / "logs"


def _rows(run: Run) -> pd.DataFrame:
    return Ledger(run.ledger).history()


def expect_log(run: Run) -> None:
    assert run.done.returncode == 0 and run.done.stdout.strip()
    last = _rows(run).iloc[-1]
    assert (last["model_name"], last["ticker"], last["sharpe"], last["win_rate"]) == (
        "LSTM_v1", "AAPL", 1.85, 0.68)


def expect_history_csv(run: Run) -> None:
    assert run.done.returncode == 0
    rows = list(csv.DictReader(io.StringIO(run.done.stdout)))
    expected = Ledger(run.ledger).history(ticker="AAPL", days_back=30)
    assert len(rows) == len(expected) > 0 and {r["ticker"] for r in rows} == {"AAPL"}


def expect_best_json(run: Run) -> None:
    assert run.done.returncode == 0
    best = json.loads(run.done.stdout)
    assert best["best_sharpe"]["model"] == Ledger(run.ledger).best("AAPL")["best_sharpe"]["model"]


def expect_leaderboard_psr(run: Run) -> None:
    assert run.done.returncode == 0
    out = run.done.stdout
    assert "psr" in out and "dsr" in out and "trial(s) on AAPL" in out  # README: ranking + PSR / DSR
    for model in Ledger(run.ledger).models("AAPL"):
        assert model in out


def expect_history_labels(run: Run) -> None:
    assert run.done.returncode == 0
    n = len(Ledger(run.ledger).history(ticker="AAPL", tags={"run": "nightly"}, params={"max_depth": 6}))
    assert n > 0 and (f"of {n} matching" in run.done.stdout or n <= 50)


def expect_by_param(run: Run) -> None:
    assert run.done.returncode == 0
    assert "per max_depth" in run.done.stdout
    board = Ledger(run.ledger).leaderboard("AAPL", by="param:max_depth")
    first = run.done.stdout.split("┡")[1].splitlines()[1]
    assert str(board.iloc[0]["max_depth"]) in first and len(board) >= 3  # the best value first


def expect_import_idempotent(run: Run) -> None:
    assert run.done.returncode == 0 and "0 imported" in run.done.stdout  # its own records: once
    again = run_cli("import", "memory/logs/model_performance.json", cwd=run.cwd)
    assert again.returncode == 0 and "0 imported" in again.stdout


def expect_mlflow(run: Run) -> None:
    assert run.done.returncode == 0
    assert re.search(r"[1-9]\d* imported", run.done.stdout)
    again = run_cli(*run.args, cwd=run.cwd)
    assert again.returncode == 0 and re.search(r"\b0 imported", again.stdout)


def expect_export(run: Run) -> None:
    assert run.done.returncode == 0
    assert len(pd.read_parquet(run.cwd / "all.parquet")) == len(_rows(run))


def expect_check(run: Run) -> None:
    latest = Ledger(run.ledger).history(ticker="AAPL", model_name="LSTM_v1", days_back=30)["sharpe"].iloc[-1]
    assert run.done.returncode == (0 if latest >= 1.0 else 1)  # README: 1 is a failed check
    assert (run.done.stdout + run.done.stderr).strip()


def expect_decay(run: Run) -> None:
    assert run.done.returncode == 1  # README: exit 1 when a model is getting worse
    flagged = [line for line in run.done.stdout.splitlines() if "DECAYED" in line]
    assert len(flagged) == 1 and all(name in flagged[0] for name in DECAYING)


def expect_overfit(run: Run) -> None:
    """README: the sample's sweep (40 configurations, tag run=sweep-3) is really overfit."""
    assert run.done.returncode == 0
    cells = [line.strip("│ ").split("│")[:2] for line in run.done.stdout.splitlines() if line.startswith("│")]
    rows = {name.strip(): value.strip() for name, value in cells}
    assert float(rows["pbo"]) > 0.5
    assert int(rows["trials"]) == 40
    assert "Overfit:" in run.done.stdout


def expect_not_overfit(run: Run) -> None:
    """README: the sample's other sweep (24 configurations, tag run=sweep-4) is not overfit."""
    assert run.done.returncode == 0
    cells = [line.strip("│ ").split("│")[:2] for line in run.done.stdout.splitlines() if line.startswith("│")]
    rows = {name.strip(): value.strip() for name, value in cells}
    assert float(rows["pbo"]) < 0.1
    assert int(rows["trials"]) == 24
    assert "Not overfit:" in run.done.stdout


def expect_copied(run: Run) -> None:
    assert run.done.returncode == 0 and run.done.stdout.strip()
    assert len(Ledger(run.pg).history()) == len(_rows(run))


def expect_clear(run: Run) -> None:
    assert run.done.returncode == 0 and len(_rows(run)) == 0
    restored = run_cli("restore", cwd=run.cwd)  # README: `perfledger restore` undoes it
    assert restored.returncode == 0 and len(_rows(run)) == 1144


def expect_purge(run: Run) -> None:
    assert run.done.returncode == 0 and run.done.stdout.strip()
    assert len(_rows(run)) == 1144  # only cleared records are purged


def expect_stats(run: Run) -> None:
    assert run.done.returncode == 0
    info = json.loads(run.done.stdout)
    assert info["records"] == 1144 and info["tickers"] == 6 and "schema_version" in info


def expect_version(run: Run) -> None:
    assert (run.done.returncode, run.done.stdout) == (0, f"perfledger {version('perfledger')}\n")


def expect_synced_to(run: Run) -> None:
    assert run.done.returncode == 0 and "1,144 new" in run.done.stdout
    again = run_cli(*run.args, cwd=run.cwd)
    assert again.returncode == 0 and "0 new" in again.stdout  # README: only what is new


def expect_synced_from(run: Run) -> None:
    assert run.done.returncode == 0 and run.done.stdout.strip()
    got = Ledger(run.cwd / "analysis").history()
    assert len(got) > 0 and set(got["ticker"]) == {"AAPL"}


def _seed_pg(run_dir: Path, url: str) -> None:
    """``sync --from`` reads a team store: fill it from the sample first."""
    assert run_cli("sync", "--to", url, cwd=run_dir).returncode == 0


@dataclass
class Expect:
    check: Callable[[Run], None]
    #: Why the command is not run here (it needs something a test cannot give).
    skip: str = ""
    #: A fresh PostgreSQL database replaces the README's URL.
    postgres: bool = False
    #: A step before the command (given the working directory and the PostgreSQL URL).
    before: Callable[[Path, str], None] | None = None


EXPECT: dict[str, Expect] = {
    "perfledger log --model LSTM_v1 --ticker AAPL --sharpe 1.85 --win-rate 0.68 --param epochs=50":
        Expect(expect_log),
    "perfledger history --ticker AAPL --days 30 --format csv": Expect(expect_history_csv),
    "perfledger best --ticker AAPL --format json": Expect(expect_best_json),
    "perfledger leaderboard --ticker AAPL": Expect(expect_leaderboard_psr),
    "perfledger history --ticker AAPL --tag run=nightly --param max_depth=6": Expect(expect_history_labels),
    "perfledger leaderboard --ticker AAPL --by param:max_depth": Expect(expect_by_param),
    "perfledger import memory/logs/model_performance.json": Expect(expect_import_idempotent),
    "perfledger import-mlflow sqlite:///mlflow.db --metric sharpe=sharpe_ratio": Expect(expect_mlflow),
    "perfledger import-mlflow sqlite:///mlflow.db --ticker-from param:ticker --model-from run-name "
    "--metric sharpe=sharpe_ratio --metric drawdown=max_dd": Expect(expect_mlflow),
    "perfledger export --format parquet --output all.parquet": Expect(expect_export),
    "perfledger check --ticker AAPL --model LSTM_v1 --metric sharpe --min 1.0 --days 30":
        Expect(expect_check),
    "perfledger decay --metric sharpe --recent 20 --alpha 0.01": Expect(expect_decay),
    "perfledger overfit --ticker AAPL --tag run=sweep-3": Expect(expect_overfit),
    "perfledger overfit --ticker MSFT --tag run=sweep-4": Expect(expect_not_overfit),
    "perfledger copy --to postgresql+psycopg://me@db-host/ledger": Expect(expect_copied, postgres=True),
    "perfledger clear --yes": Expect(expect_clear),
    "perfledger purge --older-than 30d --yes": Expect(expect_purge),
    "perfledger stats --format json": Expect(expect_stats),
    "perfledger --version": Expect(expect_version),
    "perfledger sync --to postgresql+psycopg://me@db-host/ledger": Expect(expect_synced_to, postgres=True),
    "perfledger --store ./memory/logs sync --to postgresql+psycopg://trainer@db-host/perfledger":
        Expect(expect_synced_to, postgres=True),
    "perfledger --store ./analysis sync --from postgresql+psycopg://me@db-host/perfledger --ticker AAPL "
    "--since 2025-01-01": Expect(expect_synced_from, postgres=True, before=_seed_pg),
    "perfledger dashboard": Expect(lambda run: None, skip="serves until stopped; the dashboard's own "
                                   "tests (tests/test_dashboard*.py) start it and drive its page"),
}


def test_every_readme_command_is_mapped() -> None:
    found = readme_commands()
    assert len(found) >= 20
    assert sorted(set(found)) == sorted(EXPECT), "map each README command in EXPECT"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("readme-sample")
    led = Ledger(base / "memory" / "logs")
    add_sample_data(led)
    led.close()
    return base


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """An empty throw-away database (``copy --to`` wants an empty target)."""
    import sqlalchemy as sa

    from tests.conftest import PG_ADMIN_URL, _server_or_skip

    _server_or_skip()
    name = f"perfledger_readme_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.mark.parametrize("command", sorted(EXPECT))
def test_readme_command(command: str, sample_dir: Path, tmp_path: Path,
                        request: pytest.FixtureRequest) -> None:
    expect = EXPECT[command]
    if expect.skip:
        pytest.skip(expect.skip)
    shutil.copytree(sample_dir, tmp_path, dirs_exist_ok=True)
    shutil.copy(FIXTURES / "mlflow_store.db", tmp_path / "mlflow.db")
    line = command
    pg = ""
    if expect.postgres:
        pg = request.getfixturevalue("fresh_pg")
        line = README_PG_URLS.sub(pg, command)
    if expect.before is not None:
        expect.before(tmp_path, pg)
    args = shlex.split(line)[1:]
    done = run_cli(*args, cwd=tmp_path)
    run = Run(tmp_path, done, args, pg)
    assert done.exception is None, done.stderr
    expect.check(run)
