"""MLflow: bring your history with you (issue 24, item 5).

``tests/fixtures/mlflow_store.db`` was written by REAL MLflow (3.18.0, the benchmark's
``.venv-mlflow``) through its public API, by ``tests/fixtures/make_mlflow_store.py``; beside
it, ``mlflow_store.json`` is what MLflow's own client read back from it. perfledger reads the
database without MLflow, and each test compares the ledger with MLflow's answer (the JSON),
never with perfledger's own reading. PostgreSQL: the same store's five tables copied into a
throw-away PostgreSQL database (MLflow did not write that copy; the SQLite file is the real
MLflow store).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_runner import process_env, run_cli

from perfledger import Ledger, ValidationError
from perfledger.files.mlflow import TABLES

FIXTURES = Path(__file__).parent / "fixtures"
STORE = FIXTURES / "mlflow_store.db"
MLFLOW = json.loads((FIXTURES / "mlflow_store.json").read_text())
MAP = {"sharpe": "sharpe_ratio", "drawdown": "max_dd"}


def mlflow_runs(**where: str) -> list[dict]:
    return [r for r in MLFLOW["runs"] if all(r[k] == v for k, v in where.items())]


def importable(run: dict) -> bool:
    return run["status"] == "FINISHED" and run["lifecycle_stage"] == "active"


def as_param(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def by_run(led: Ledger) -> dict[str, dict]:
    return {r["tags"]["mlflow_run"]: r for r in led.records()}


def test_each_finished_run_is_one_evaluation_as_mlflow_reads_it(ledger: Ledger) -> None:
    before = hashlib.sha256(STORE.read_bytes()).hexdigest()
    report = ledger.import_mlflow(STORE, metrics=MAP)
    assert hashlib.sha256(STORE.read_bytes()).hexdigest() == before  # read-only: not a byte written
    expected = [r for r in MLFLOW["runs"] if importable(r) and "ticker" in r["params"]]
    assert len(expected) == 4 and report.imported == 4 and report.stored
    got = by_run(ledger)
    assert set(got) == {r["run_id"] for r in expected}
    for run in expected:
        rec = got[run["run_id"]]
        m = run["metrics"]
        assert rec["ticker"] == run["params"]["ticker"] and rec["model_name"] == run["run_name"]
        assert rec["sharpe"] == m["sharpe_ratio"]            # the latest of 3 steps
        assert rec["drawdown"] == m["max_dd"] and rec["mse"] == m["mse"] and rec["win_rate"] == m["win_rate"]
        custom = {k: v for k, v in m.items() if k in ("sortino", "ic") and v is not None}
        assert rec["metrics"] == custom                       # ic NaN on one run: not measured
        assert rec["params"] == {k: as_param(v) for k, v in run["params"].items()}
        assert isinstance(rec["params"]["max_depth"], int)
        assert rec["tags"] == {**{k: v for k, v in run["tags"].items() if not k.startswith("mlflow.")},
                               "mlflow_run": run["run_id"], "mlflow_experiment": run["experiment"]}
        assert rec["notes"] == run["tags"]["mlflow.note.content"]
        assert datetime.fromisoformat(rec["timestamp"]) == datetime.fromtimestamp(run["end_time"] / 1000, UTC)
    # Skipped runs: named by run id, never guessed; unfinished and deleted runs not imported.
    no_ticker = [r["run_id"] for r in MLFLOW["runs"] if importable(r) and "ticker" not in r["params"]]
    assert sorted(run for run, _ in report.missing) == sorted(no_ticker)
    assert all("no ticker (param 'ticker')" in why for _, why in report.missing)
    statuses = [r["status"] for r in MLFLOW["runs"]
                if r["lifecycle_stage"] == "active" and r["status"] != "FINISHED"]
    assert report.unfinished == {s: statuses.count(s) for s in set(statuses)}
    assert report.unmapped_metrics == ["val/loss"]
    assert sorted(ledger.history(params={"max_depth": 6}, tags={"run": "nightly"})["sharpe"]) == sorted(
        r["metrics"]["sharpe_ratio"] for r in expected if r["params"]["max_depth"] == "6")


def test_a_second_import_adds_nothing(ledger: Ledger) -> None:
    assert ledger.import_mlflow(STORE, metrics=MAP).imported == 4
    again = ledger.import_mlflow(f"sqlite:///{STORE}", metrics=MAP)
    assert (again.imported, again.duplicates) == (0, 4)
    assert len(ledger.history()) == 4


def test_ticker_and_model_from_tags_params_and_one_experiment(ledger: Ledger) -> None:
    report = ledger.import_mlflow(STORE, ticker_from="tag:asset", model_from="param:arch",
                                  experiments=["lstm"])
    runs = [r for r in mlflow_runs(experiment="lstm") if importable(r)]
    assert report.imported == len(runs) == 2 and report.missing == [] and report.unfinished == {"KILLED": 1}
    got = by_run(ledger)
    for run in runs:
        rec = got[run["run_id"]]
        assert (rec["ticker"], rec["model_name"]) == ("SPY", "LSTM")
        assert rec["accuracy"] == run["metrics"]["accuracy"]          # a core name: its column
        assert rec["metrics"] == {"sharpe_ratio": run["metrics"]["sharpe_ratio"]}  # unmapped: custom
    # Across every experiment, runs without the tag are reported, not guessed.
    every = ledger.import_mlflow(STORE, ticker_from="tag:asset", model_from="param:arch")
    assert every.imported == 0 and every.duplicates == 2
    xgb = [r["run_id"] for r in MLFLOW["runs"] if importable(r) and r["experiment"] == "xgb-sweep"]
    assert sorted(r for r, _ in every.missing) == sorted(xgb)
    assert all(why == "no ticker (tag 'asset'), no model (param 'arch')" for _, why in every.missing)


def test_a_refused_run_blocks_the_import_unless_skipped_and_is_named_by_run_id(tmp_path: Path,
                                                                                ledger: Ledger) -> None:
    bad = tmp_path / "bad.db"
    shutil.copy(STORE, bad)
    victim = next(r["run_id"] for r in MLFLOW["runs"] if importable(r) and "ticker" in r["params"])
    with sqlite3.connect(bad) as conn:
        conn.execute("UPDATE latest_metrics SET value = 68 WHERE key = 'win_rate' AND run_uuid = ?",
                     (victim,))
    report = ledger.import_mlflow(bad, metrics=MAP)
    assert not report.stored and report.imported == 0 and ledger.history().empty
    assert [(r.where, r.field) for r in report.rejected] == [(f"run {victim}", "win_rate")]
    assert "did you mean 0.68" in report.rejected[0].message
    skipped = ledger.import_mlflow(bad, metrics=MAP, skip_invalid=True)
    assert skipped.imported == 3 and victim not in by_run(ledger)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"ticker_from": "run-name"}, "ticker_from"),
    ({"ticker_from": "ticker"}, "ticker_from"),
    ({"model_from": "tag:"}, "model_from"),
    ({"metrics": {"sharpe": "a", "mse": "a"}}, "metrics"),
    ({"metrics": {"bad name": "a"}}, "metrics"),
    ({"experiments": ["nope"]}, "experiments"),
])
def test_bad_arguments_name_the_argument_and_store_nothing(ledger: Ledger, kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ledger.import_mlflow(STORE, **kwargs)
    assert field in {f for _, f, _ in info.value.problems}
    assert ledger.history().empty


def test_what_is_not_an_mlflow_database_is_refused_and_never_created(tmp_path: Path, ledger: Ledger) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(ValidationError, match="no such SQLite database file"):
        ledger.import_mlflow(missing)
    with pytest.raises(ValidationError, match="no such SQLite database file"):
        ledger.import_mlflow(f"sqlite:///{missing}")
    assert not missing.exists()
    with pytest.raises(ValidationError, match="file store"):
        ledger.import_mlflow(tmp_path)
    with pytest.raises(ValidationError, match="file store"):
        ledger.import_mlflow(f"file://{tmp_path}")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE runs (x)").connection.commit()
    with pytest.raises(ValidationError, match=r"not an MLflow tracking database: no table\(s\) experiments"):
        ledger.import_mlflow(other)


def test_garbage_a_cut_file_and_an_unreachable_server_are_one_clean_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 200)
    cut = tmp_path / "cut.db"
    cut.write_bytes(STORE.read_bytes()[:5000])
    store = str(tmp_path / "ledger")
    for source in (garbage, cut):
        r = run_cli("--store", store, "import-mlflow", str(source))
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr == (f"Error: the MLflow database {source} could not be read "
                            "(DatabaseError: damaged, or not a database)\n")
    r = run_cli("--store", store, "import-mlflow", "postgresql://me:s3cret@127.0.0.1:1/mlflow")
    assert r.returncode == 2 and "s3cret" not in r.stderr
    assert r.stderr.startswith("Error: cannot connect to or read the MLflow database "
                               "postgresql://me:***@127.0.0.1:1/mlflow (OperationalError)")
    assert Ledger(store).history().empty


def test_the_command(tmp_path: Path) -> None:
    store = str(tmp_path / "ledger")
    out = run_cli("--store", store, "import-mlflow", str(STORE), "--metric", "sharpe=sharpe_ratio",
                  "--metric", "drawdown=max_dd")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"{STORE}: 4 imported, 0 duplicate, 0 rejected (of 7 finished run(s))"
    no_ticker = [r["run_id"] for r in MLFLOW["runs"] if importable(r) and "ticker" not in r["params"]]
    for run_id in no_ticker:
        assert f"  run {run_id}: skipped, no ticker (param 'ticker')" in lines
    again = run_cli("--store", store, "import-mlflow", f"sqlite:///{STORE}", "--metric",
                    "sharpe=sharpe_ratio", "--metric", "drawdown=max_dd")
    first = again.stdout.splitlines()[0]
    assert first.endswith(": 0 imported, 4 duplicate, 0 rejected (of 7 finished run(s))")
    bad = run_cli("--store", store, "import-mlflow", str(STORE), "--model-from", "name")
    assert bad.returncode == 2 and bad.stderr.startswith("Error: model_from='name' must be")
    assert "Example: perfledger import-mlflow" in run_cli("import-mlflow", "--help").stdout


def _copy_to_postgres(admin_url: str) -> str:
    """The fixture's five MLflow tables (as MLflow created them: reflected) in a new database."""
    import sqlalchemy as sa

    name = f"mlflow_copy_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = sa.make_url(admin_url).set(database=name)
    src = sa.create_engine(f"sqlite:///{STORE}")
    meta = sa.MetaData()
    meta.reflect(src, only=list(TABLES))
    for table in meta.tables.values():
        table.constraints = {c for c in table.constraints if isinstance(c, sa.PrimaryKeyConstraint)}
        table.foreign_keys.clear()
    dst = sa.create_engine(url)
    meta.create_all(dst)
    with src.connect() as s, dst.begin() as d:
        for table in meta.sorted_tables:
            rows = [dict(r._mapping) for r in s.execute(sa.select(table))]
            if rows:
                d.execute(table.insert(), rows)
    src.dispose()
    dst.dispose()
    return url.render_as_string(hide_password=False)


@pytest.mark.postgres
def test_a_postgresql_tracking_store_imports_alike(tmp_path: Path, pg_server_url: str) -> None:
    from conftest import PG_ADMIN_URL

    url = _copy_to_postgres(PG_ADMIN_URL)
    a, b = Ledger(tmp_path / "a"), Ledger(tmp_path / "b")
    ra, rb = a.import_mlflow(STORE, metrics=MAP), b.import_mlflow(url, metrics=MAP)
    assert (rb.imported, rb.missing, rb.unfinished) == (ra.imported, ra.missing, ra.unfinished)
    assert a.records() == b.records()
    assert b.import_mlflow(url, metrics=MAP).imported == 0
    a.close()
    b.close()


@pytest.mark.slow
def test_imports_at_once_store_each_run_once(tmp_path: Path) -> None:
    store = str(tmp_path / "ledger")
    Ledger(store).close()
    procs = [subprocess.Popen([sys.executable, "-m", "perfledger", "--store", store, "import-mlflow",
                               str(STORE), "--metric", "sharpe=sharpe_ratio"], env=process_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    imported = 0
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        imported += int(out.split(": ")[1].split(" imported")[0])
    assert imported == 4
    led = Ledger(store)
    assert sorted(r["tags"]["mlflow_run"] for r in led.records()) == sorted(
        r["run_id"] for r in MLFLOW["runs"] if importable(r) and "ticker" in r["params"])
    led.close()


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "https://mlflow.example.com"])
def test_a_tracking_server_is_one_line_naming_what_is_read(tmp_path: Path, uri: str) -> None:
    """Review 24 #8: MLflow's usual URI is its tracking server's: one line saying perfledger
    reads the tracking DATABASE, exit 2 (was "unexpected NoSuchModuleError", exit 1)."""
    r = run_cli("--store", str(tmp_path / "ledger"), "import-mlflow", uri)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"Error: uri={uri!r} is not a database perfledger reads: it reads MLflow's "
                        "tracking database, not a tracking server; give the database the server stores "
                        "its runs in (its --backend-store-uri): sqlite:///path/mlflow.db or "
                        "postgresql://user@host/db\n")
    other = run_cli("--store", str(tmp_path / "ledger"), "import-mlflow", "mysql://u@h/db")
    assert other.returncode == 2 and other.stderr == (
        "Error: uri='mysql://u@h/db' is not a database perfledger reads: it reads an SQLite or "
        "PostgreSQL tracking database: sqlite:///path/mlflow.db or postgresql://user@host/db\n")


def test_a_non_json_number_param_stays_text_and_the_run_imports(tmp_path: Path, ledger: Ledger) -> None:
    """Review 24 #9: ``NaN``, ``Infinity``, ``1e400`` are not strict JSON: they stay text (a
    param is a label), and the run imports with the others; ``0.5`` and ``[1, 2]`` still parse.
    A non-MLflow SQLite file is named by the path given, not the read-only URI opened."""
    odd = tmp_path / "odd.db"
    shutil.copy(STORE, odd)
    victim = next(r["run_id"] for r in MLFLOW["runs"] if importable(r) and "ticker" in r["params"])
    texts = {"alpha": "NaN", "beta": "Infinity", "gamma": "1e400", "delta": "[1e400]", "eps": "0.5",
             "zeta": "[1, 2]", "eta": "-Infinity"}
    with sqlite3.connect(odd) as conn:
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                         [(k, v, victim) for k, v in texts.items()])
    report = ledger.import_mlflow(odd, metrics=MAP)
    assert report.imported == 4 and not report.rejected
    params = by_run(ledger)[victim]["params"]
    assert {k: params[k] for k in texts} == {**texts, "eps": 0.5, "zeta": [1, 2]}
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE runs (x)").connection.commit()
    with pytest.raises(ValidationError, match=rf"^{other} is not an MLflow tracking database"):
        ledger.import_mlflow(other)
