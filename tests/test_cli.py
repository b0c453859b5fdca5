"""The ``perfledger`` command line, driven as a user drives it, the ledger in a temporary
directory named by ``$PERFLEDGER_URL`` (or ``--store``).

Commands run in-process, as the console script runs them (tests/cli_runner.py: same exit
codes, stdout and stderr as a process; tests/test_cli_process.py checks that they agree and
starts the real processes).
"""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import Completed, run_cli

from perfledger import Ledger

COMMANDS = ("log", "history", "best", "tickers", "models", "leaderboard", "import", "import-mlflow", "export",
            "check", "decay", "overfit", "dashboard", "copy", "sync", "clear", "restore", "purge", "stats",
            "repair")


def run(store: Path | None, *args: str, env_store: bool = True) -> Completed:
    """``perfledger ARGS`` with ``$PERFLEDGER_URL`` set to ``store`` (unset: None or not env_store)."""
    return run_cli(*args, env={"PERFLEDGER_URL": str(store) if store is not None and env_store else None})


def ok(result: Completed) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "ledger"


def history(store: Path) -> list[dict]:
    return json.loads(ok(run(store, "history", "--format", "json")))


# --------------------------------------------------------------------------- the seed's files


def seed_log(log_dir: Path, model_name: str, ticker: str, sharpe: float | None = None,
             mse: float | None = None, drawdown: float | None = None, total_return: float | None = None,
             win_rate: float | None = None, accuracy: float | None = None, notes: str = "",
             when: datetime | None = None) -> None:
    """The seed's storage design, re-created: naive local-clock ``isoformat()`` timestamps, the
    whole list re-dumped with ``json.dump(indent=2)``, the CSV rewritten by pandas."""
    log_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = log_dir / "model_performance.json", log_dir / "model_performance.csv"
    records = json.loads(json_path.read_text()) if json_path.exists() else []
    records.append({
        "timestamp": (when or datetime.now()).isoformat(),
        "ticker": ticker, "model_name": model_name, "sharpe": sharpe, "mse": mse, "drawdown": drawdown,
        "total_return": total_return, "win_rate": win_rate, "accuracy": accuracy, "notes": notes,
    })
    with open(json_path, "w") as f:
        json.dump(records, f, indent=2)
    pd.DataFrame(records).to_csv(csv_path, index=False)


def make_seed_files(log_dir: Path) -> list[dict]:
    base = datetime(2024, 1, 15, 10, 30, 0, 250000)
    seed_log(log_dir, "LSTM_v1", "AAPL", 1.85, 0.0234, -0.12, 0.25, 0.68, 0.72, "LSTM model with 50 epochs",
             when=base)
    seed_log(log_dir, "XGBoost_v2", "AAPL", 2.1, 0.0189, -0.08, 0.31, 0.75, 0.78,
             'tuned, "quoted"\nsecond line', when=base + timedelta(hours=1))
    seed_log(log_dir, "XGBoost_v2", "MSFT", 0.9, None, -0.2, 0.1, None, None, "",
             when=base + timedelta(days=1))
    seed_log(log_dir, "LSTM_v1", "MSFT", 1.1, 0.03, -0.15, 0.12, 0.55, 0.6, "plain")  # now, naive
    return json.loads((log_dir / "model_performance.json").read_text())


def test_import_seed_files_is_idempotent(tmp_path: Path, store: Path) -> None:
    seed_dir = tmp_path / "seed" / "memory" / "logs"
    records = make_seed_files(seed_dir)
    js, csv_file = seed_dir / "model_performance.json", seed_dir / "model_performance.csv"

    out = ok(run(store, "import", str(js)))
    assert "4 imported, 0 duplicate, 0 rejected" in out
    out = ok(run(store, "import", str(js)))
    assert "0 imported, 4 duplicate, 0 rejected" in out
    out = ok(run(store, "import", str(csv_file)))
    assert "0 imported, 4 duplicate, 0 rejected" in out

    stored = history(store)
    assert len(stored) == 4
    # Naive seed timestamps are read as UTC, to the microsecond.
    want = sorted(datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC) for r in records)
    assert [datetime.fromisoformat(r["timestamp"]) for r in stored] == want
    by_model = {(r["model_name"], r["ticker"]): r for r in stored}
    assert by_model[("XGBoost_v2", "AAPL")]["notes"] == 'tuned, "quoted"\nsecond line'
    assert by_model[("XGBoost_v2", "MSFT")]["mse"] is None
    best = json.loads(ok(run(store, "best", "AAPL", "--format", "json")))
    assert best["best_sharpe"]["model"] == "XGBoost_v2" and best["best_sharpe"]["value"] == 2.1


def test_csv_first_then_json_and_within_file_duplicates(tmp_path: Path, store: Path) -> None:
    seed_dir = tmp_path / "seed"
    make_seed_files(seed_dir)
    assert "4 imported" in ok(run(store, "import", str(seed_dir / "model_performance.csv")))
    assert "0 imported, 4 duplicate" in ok(run(store, "import", str(seed_dir / "model_performance.json")))
    doubled = tmp_path / "doubled.json"
    recs = json.loads((seed_dir / "model_performance.json").read_text())
    new = dict(recs[0], notes="a different note")
    doubled.write_text(json.dumps([new, new, *recs]))
    assert "1 imported, 5 duplicate, 0 rejected" in ok(run(store, "import", str(doubled)))
    assert len(history(store)) == 5


BAD_CSV_ROWS = [
    # (row as CSV text, expected field in the reason)
    ("2024-02-01T09:00:00,AAPL,Bad_win,1.2,0.02,-0.1,0.2,68,0.7,win rate in percent", "win_rate"),
    ("2024-02-01T09:01:00,AAPL,Bad_dd,1.2,0.02,0.2,0.2,0.6,0.7,positive drawdown", "drawdown"),
    ("2024-02-01T09:02:00,,Bad_ticker,1.2,0.02,-0.1,0.2,0.6,0.7,blank ticker", "ticker"),
    ("2024-02-01T09:03:00,AAPL,Bad_sharpe,abc,0.02,-0.1,0.2,0.6,0.7,not a number", "sharpe"),
]


def write_bad_csv(path: Path) -> dict[str, int]:
    """Two good rows (one spanning two physical lines) and the four bad ones; returns the
    physical line of each bad row (header = line 1)."""
    lines = [
        "timestamp,ticker,model_name,sharpe,mse,drawdown,total_return,win_rate,accuracy,notes",  # 1
        "2024-02-01T08:00:00,AAPL,Good_1,1.5,0.02,-0.1,0.2,0.6,0.7,\"two\nlines\"",            # 2-3
        "2024-02-01T08:01:00,MSFT,Good_2,0.5,0.03,-0.2,0.1,0.5,0.6,fine",                      # 4
    ]
    where = {}
    line_no = 5
    for row, field in BAD_CSV_ROWS:
        lines.append(row)
        where[field] = line_no
        line_no += 1
    path.write_text("\n".join(lines) + "\n")
    return where


def test_import_bad_rows_reports_lines_and_stores_nothing(tmp_path: Path, store: Path) -> None:
    bad = tmp_path / "bad.csv"
    where = write_bad_csv(bad)
    result = run(store, "import", str(bad))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "0 imported" in result.stdout and "4 rejected" in result.stdout
    report = result.stdout.splitlines()
    for field, line in where.items():
        hits = [x for x in report if x.strip().startswith(f"line {line}:")]
        assert hits and field in hits[0], (field, line, report)
    assert any("68" in x and "win_rate" in x for x in report)
    assert any("'abc'" in x for x in report)
    assert history(store) == []

    result = run(store, "import", "--skip-invalid", str(bad))
    assert result.returncode == 0, result.stderr
    assert "2 imported, 0 duplicate, 4 rejected" in result.stdout
    stored = history(store)
    assert sorted(r["model_name"] for r in stored) == ["Good_1", "Good_2"]
    assert stored[0]["notes"] == "two\nlines"
    # Importing again: the good rows are duplicates now.
    assert "0 imported, 2 duplicate, 4 rejected" in run(store, "import", "--skip-invalid", str(bad)).stdout


def test_import_bad_json_records_named_by_index(tmp_path: Path, store: Path) -> None:
    good = {"timestamp": "2024-03-01T00:00:00", "ticker": "AAPL", "model_name": "Good", "sharpe": 1.0}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([
        good,
        dict(good, model_name="B1", win_rate=68),
        dict(good, model_name="B2", sharpe="abc"),
        dict(good, model_name="B3", timestamp=None),
    ], indent=2))
    result = run(store, "import", str(bad))
    assert result.returncode == 2
    out = result.stdout
    assert "3 rejected" in out
    assert "record 2: win_rate=68" in out.replace("68.0", "68")
    assert "record 3: sharpe='abc'" in out
    assert "record 4: timestamp is missing" in out
    assert history(store) == []


def test_import_unreadable_file_is_one_line_error(tmp_path: Path, store: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("[{not json")
    for path in (broken, tmp_path / "missing.csv", tmp_path / "data.txt"):
        result = run(store, "import", str(path))
        assert result.returncode == 2
        assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- log and reads


def test_log_history_best_tickers_models(store: Path) -> None:
    ok(run(store, "log", "--model", "LSTM_v1", "--ticker", "AAPL", "--sharpe", "1.85", "--mse", "0.0234",
           "--drawdown", "-0.12", "--total-return", "0.25", "--win-rate", "0.68", "--accuracy", "0.72",
           "--notes", "50 epochs", "--metric", "sortino=2.5", "--param", "epochs=50", "--param", "opt=adam",
           "--tag", "env=dev", "--timestamp", "2024-01-15T10:30:00"))
    ok(run(store, "log", "--model", "XGBoost_v2", "--ticker", "AAPL", "--sharpe", "2.1",
           "--timestamp", "2024-01-16T10:30:00+00:00"))
    ok(run(store, "log", "--model", "LSTM_v1", "--ticker", "MSFT", "--sharpe", "0.4"))

    table = ok(run(store, "history"))
    for word in ("LSTM_v1", "XGBoost_v2", "MSFT", "sortino", "50 epochs"):
        assert word in table
    frame = pd.read_csv(io.StringIO(ok(run(store, "history", "--format", "csv"))))
    assert len(frame) == 3 and frame.loc[0, "sortino"] == 2.5
    assert frame.loc[0, "timestamp"] == "2024-01-15T10:30:00.000000+00:00"
    rows = json.loads(ok(run(store, "history", "--ticker", "AAPL", "--min", "sharpe=2", "--format", "json")))
    assert [r["model_name"] for r in rows] == ["XGBoost_v2"]
    rows = json.loads(ok(run(store, "history", "--model", "LSTM_v1", "--max", "sharpe=1",
                             "--format", "json")))
    assert [r["ticker"] for r in rows] == ["MSFT"]
    rows = json.loads(ok(run(store, "history", "--limit", "1", "--days", "1", "--format", "json")))
    assert [r["ticker"] for r in rows] == ["MSFT"]

    best = json.loads(ok(run(store, "best", "--format", "json")))
    assert set(best) == {"AAPL", "MSFT"}
    assert set(best["AAPL"]) >= {f"best_{m}" for m in ("sharpe", "mse", "drawdown", "total_return",
                                                        "win_rate", "accuracy")}
    assert best["AAPL"]["best_sharpe"] == {"model": "XGBoost_v2", "value": 2.1,
                                           "timestamp": "2024-01-16T10:30:00.000000+00:00"}
    one = json.loads(ok(run(store, "best", "AAPL", "--format", "json")))
    assert one == best["AAPL"]
    assert "XGBoost_v2" in ok(run(store, "best", "AAPL"))
    assert ok(run(store, "tickers")).split() == ["AAPL", "MSFT"]
    assert ok(run(store, "models")).split() == ["LSTM_v1", "XGBoost_v2"]
    assert ok(run(store, "models", "--ticker", "MSFT")).split() == ["LSTM_v1"]

    board = json.loads(ok(run(store, "leaderboard", "--format", "json")))
    assert [(r["ticker"], r["model_name"], r["rank"]) for r in board] == [
        ("AAPL", "XGBoost_v2", 1), ("AAPL", "LSTM_v1", 2), ("MSFT", "LSTM_v1", 1)]
    csv_board = pd.read_csv(io.StringIO(ok(run(store, "leaderboard", "--metric", "mse", "--format", "csv"))))
    assert "mse_mean" in csv_board.columns
    assert "XGBoost_v2" in ok(run(store, "leaderboard", "--days", "100000"))

    # Params and tags went in as given (JSON values parsed, others kept as strings).
    with Ledger(store) as led:
        export = led.export_seed_files(store.parent / "seedcopy")
    recs = json.loads((export / "model_performance.json").read_text())
    assert recs[0]["params"] == {"epochs": 50, "opt": "adam"} and recs[0]["tags"] == {"env": "dev"}


def test_store_option_and_env(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    ok(run(a, "log", "--model", "M", "--ticker", "ENV"))
    ok(run(a, "--store", str(b), "log", "--model", "M", "--ticker", "OPT"))
    assert ok(run(a, "tickers")).split() == ["ENV"]
    assert ok(run(None, "--store", str(b), "tickers")).split() == ["OPT"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["log", "--model", "M", "--ticker", "AAPL", "--win-rate", "68"], ["win_rate", "68"]),
        (["log", "--model", "M", "--ticker", "AAPL", "--drawdown", "0.2"], ["drawdown", "0.2"]),
        (["log", "--model", "M", "--ticker", " ", "--sharpe", "1"], ["ticker"]),
        (["log", "--model", "M", "--ticker", "AAPL", "--metric", "x=abc"], ["x", "abc"]),
        (["log", "--model", "M", "--ticker", "AAPL", "--timestamp", "yesterday"], ["timestamp", "yesterday"]),
        (["history", "--days", "-1"], ["--days", "-1"]),
        (["leaderboard", "--metric", "nosuch"], ["metric", "nosuch"]),
    ],
)
def test_bad_input_is_one_clean_line(store: Path, args: list[str], words: list[str]) -> None:
    result = run(store, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr + result.stdout
    assert len(err.splitlines()) == 1 and err.startswith("Error: ")
    for w in words:
        assert w in err
    assert history(store) == []


@pytest.mark.parametrize(
    "args",
    [
        ["leaderboard", "--days", "inf"],
        ["leaderboard", "--days", "nan"],
        ["leaderboard", "--days", "1e308"],
        ["history", "--days", "1e9"],
        ["check", "--ticker", "AAPL", "--model", "M", "--metric", "sharpe", "--min", "1", "--days", "inf"],
        ["export", "--output", "OUT.csv", "--days", "nan"],
    ],
)
def test_days_out_of_range_is_one_library_error(store: Path, args: list[str]) -> None:
    """--days is checked by the library's time-window rule (records.timestamps.check_days_back),
    named as the option: one line, exit 2, no traceback."""
    result = run(store, *(a.replace("OUT", str(store.parent / "out")) for a in args))
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr + result.stdout
    assert len(err.splitlines()) == 1 and "--days=" in err and "days_back" not in err, err


@pytest.mark.parametrize(
    "args",
    [
        ["history", "--format", "xml"],
        ["leaderboard", "--format", "xml"],
        ["best", "--format", "xml"],
        ["export", "--format", "xml", "--output", "OUT.xml"],
    ],
)
def test_bad_format_is_a_usage_error_naming_the_value(store: Path, args: list[str]) -> None:
    result = run(store, *(a.replace("OUT", str(store.parent / "out")) for a in args))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert "--format" in result.stderr and "'xml'" in result.stderr, result.stderr
    assert history(store) == []


def test_best_ticker_option_and_positional_alias(store: Path) -> None:
    ok(run(store, "log", "--model", "LSTM_v1", "--ticker", "AAPL", "--sharpe", "1.85", "--mse", "0.02"))
    ok(run(store, "log", "--model", "XGBoost_v2", "--ticker", "AAPL", "--sharpe", "2.1"))
    ok(run(store, "log", "--model", "LSTM_v1", "--ticker", "MSFT", "--sharpe", "0.4"))
    for fmt in ("table", "csv", "json"):
        by_option = ok(run(store, "best", "--ticker", "AAPL", "--format", fmt))
        assert by_option == ok(run(store, "best", "AAPL", "--format", fmt)), fmt
        assert by_option == ok(run(store, "best", "AAPL", "--ticker", "AAPL", "--format", fmt)), fmt
        assert "XGBoost_v2" in by_option and "MSFT" not in by_option, fmt

    both = run(store, "best", "AAPL", "--ticker", "MSFT")
    assert both.returncode == 2, (both.stdout, both.stderr)
    err = both.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error: ") and "AAPL" in err and "MSFT" in err
    assert "[TICKER]" not in ok(run(store, "best", "--help"))  # the old spelling works, undocumented

    rows = pd.read_csv(io.StringIO(ok(run(store, "best", "--format", "csv"))))
    assert list(rows.columns) == ["ticker", "metric", "model", "value", "timestamp"]
    top = rows[(rows["ticker"] == "AAPL") & (rows["metric"] == "sharpe")]
    assert top[["model", "value"]].values.tolist() == [["XGBoost_v2", 2.1]]
    assert set(rows["ticker"]) == {"AAPL", "MSFT"}
    assert ok(run(store, "best", "--ticker", "NOPE", "--format", "csv")).strip() == (
        "ticker,metric,model,value,timestamp")


def test_export_formats_match_the_library() -> None:
    from perfledger.cli.options import ExportFormat
    from perfledger.files.exporter import EXPORT_FORMATS

    assert tuple(f.value for f in ExportFormat) == EXPORT_FORMATS


# --------------------------------------------------------------------------- export / import


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_import_round_trip(tmp_path: Path, store: Path, fmt: str) -> None:
    with Ledger(store) as led:
        led.log("LSTM_v1", "AAPL", sharpe=1.0 / 3.0, mse=0.0, drawdown=-0.0, notes='comma, "quote"\nline',
                metrics={"sortino": 1e-17}, params={"layers": [64, 32], "lr": 0.001, "name": "x"},
                tags={"run": "é"}, timestamp="2024-01-15T10:30:00.123456+05:00")
        led.log("LSTM_v1", "AAPL", sharpe=1.0 / 3.0, mse=0.0, drawdown=-0.0, notes='comma, "quote"\nline',
                metrics={"sortino": 1e-17}, params={"layers": [64, 32], "lr": 0.001, "name": "y"},
                tags={"run": "é"}, timestamp="2024-01-15T10:30:00.123456+05:00")  # differs in params only
        led.log("XGB", "MSFT", sharpe=2.5, win_rate=0.6)
        led.log_backtest("BT", "MSFT", [0.01, -0.02, 0.005, 0.0, 0.03])
    out = tmp_path / f"all.{fmt}"
    assert "Exported 4 record(s)" in ok(run(store, "export", "--format", fmt, "--output", str(out)))
    assert "0 imported, 4 duplicate, 0 rejected" in ok(run(store, "import", str(out)))

    # Into an empty ledger: everything comes back, then nothing more.
    other = tmp_path / "other"
    assert "4 imported" in ok(run(other, "import", str(out)))
    assert "0 imported, 4 duplicate" in ok(run(other, "import", str(out)))
    with Ledger(store) as a, Ledger(other) as b:
        ha, hb = a.history(), b.history()
    pd.testing.assert_frame_equal(ha, hb)

    # Filtered exports hold only what was asked for.
    part = tmp_path / f"msft.{fmt}"
    assert "Exported 2 record(s)" in ok(run(store, "export", "--format", fmt, "--output", str(part),
                                            "--ticker", "MSFT"))
    assert "Exported 1 record(s)" in ok(run(store, "export", "--output", str(tmp_path / f"bt.{fmt}"),
                                            "--model", "BT", "--days", "1"))


def test_export_seed_files_round_trip(tmp_path: Path, store: Path) -> None:
    with Ledger(store) as led:
        led.log("M", "AAPL", sharpe=1.2, params={"a": 1}, metrics={"custom": 3.5})
        led.log("N", "AAPL", sharpe=0.7, notes="x")
    target = tmp_path / "seedout"
    ok(run(store, "export", "--seed-files", str(target)))
    for name in ("model_performance.json", "model_performance.csv", "best_models.json"):
        assert (target / name).exists()
    for name in ("model_performance.json", "model_performance.csv"):
        assert "0 imported, 2 duplicate" in ok(run(store, "import", str(target / name)))
    assert run(store, "export").returncode == 2
    assert run(store, "export", "--output", str(tmp_path / "x.xml")).returncode == 2


# --------------------------------------------------------------------------- check, clear, help


def test_check_exit_codes(store: Path) -> None:
    old = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    ok(run(store, "log", "--model", "M", "--ticker", "AAPL", "--sharpe", "0.5", "--timestamp", old))
    ok(run(store, "log", "--model", "M", "--ticker", "AAPL", "--sharpe", "1.5", "--mse", "0.02"))
    base = ["check", "--ticker", "AAPL", "--model", "M"]

    r = run(store, *base, "--metric", "sharpe", "--min", "1.0")
    assert r.returncode == 0 and "1.5" in r.stdout
    r = run(store, *base, "--metric", "sharpe", "--min", "2.0")
    assert r.returncode == 1 and "sharpe=1.5" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert run(store, *base, "--metric", "mse", "--max", "0.05").returncode == 0
    assert run(store, *base, "--metric", "mse", "--max", "0.01").returncode == 1
    assert run(store, *base, "--metric", "sharpe", "--min", "1", "--max", "2").returncode == 0
    # No data in the window: 1, and the message says so.
    r = run(store, *base, "--metric", "win_rate", "--min", "0.5")
    assert r.returncode == 1 and "no win_rate" in r.stderr
    r = run(store, "check", "--ticker", "AAPL", "--model", "Other", "--metric", "sharpe", "--min", "0")
    assert r.returncode == 1 and "no sharpe" in r.stderr
    # The window only sees what is in it.
    r = run(store, *base, "--metric", "sharpe", "--max", "1.0", "--days", "30")
    assert r.returncode == 1
    # Bad usage: 2.
    assert run(store, *base, "--metric", "sharpe").returncode == 2
    assert run(store, *base, "--metric", "bad name", "--min", "1").returncode == 2
    assert run(store, "check", "--ticker", "AAPL", "--metric", "sharpe", "--min", "1").returncode == 2
    assert run(store, *base, "--metric", "sharpe", "--min", "abc").returncode == 2


def test_decay_exit_codes_and_output(store: Path) -> None:
    """Exit 1 when any pair decayed (decayed rows first), 0 when none, 2 on bad usage."""
    import numpy as np

    rng = np.random.default_rng(8)
    end = datetime(2026, 6, 1, tzinfo=UTC)
    with Ledger(store) as led:
        led.log_many([
            {"model_name": model, "ticker": "AAPL", "timestamp": end - timedelta(days=60 - i),
             "sharpe": 1.0 + rng.normal(0, 0.2) + (drop if i >= 40 else 0.0),
             "mse": 0.02 + abs(rng.normal(0, 0.002))}
            for model, drop in (("Steady", 0.0), ("Sliding", -0.6)) for i in range(60)
        ])
        led.log("Short", "AAPL", sharpe=1.0)  # too few evaluations: not reported
    r = run(store, "decay")
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert "DECAYED" in next(ln for ln in lines if "Sliding" in ln)
    assert lines.index(next(ln for ln in lines if "Sliding" in ln)) < lines.index(
        next(ln for ln in lines if "Steady" in ln))
    assert "Short" not in r.stdout and "1 of 2 pair(s) decayed" in r.stdout
    assert run(store, "decay", "--model", "Steady").returncode == 0
    assert run(store, "decay", "--metric", "mse").returncode == 0
    rows = json.loads(run(store, "decay", "--format", "json").stdout)
    assert [row["model_name"] for row in rows] == ["Sliding", "Steady"]
    assert rows[0]["decayed"] is True and rows[0]["p_value"] < 0.01 and rows[0]["baseline_n"] == 40
    csv = run(store, "decay", "--format", "csv")
    assert csv.returncode == 1 and csv.stdout.startswith("ticker,model_name,metric,")
    empty = run(store, "decay", "--ticker", "MSFT")
    assert empty.returncode == 0 and "No (ticker, model) pair" in empty.stdout
    for bad in (["--recent", "1"], ["--alpha", "2"], ["--metric", "nope"], ["--baseline", "3"],
                ["--recent", "x"], ["--days", "-1"]):
        r = run(store, "decay", *bad)
        assert r.returncode == 2, bad
        assert "Traceback" not in r.stderr
    assert "--recent='1' must be a whole number from 2 to" in run(store, "decay", "--recent", "1").stderr


def test_clear_needs_yes(store: Path) -> None:
    ok(run(store, "log", "--model", "M", "--ticker", "AAPL", "--sharpe", "1"))
    r = run(store, "clear")
    assert r.returncode == 2 and "--yes" in r.stderr and "Traceback" not in r.stderr
    assert len(history(store)) == 1
    ok(run(store, "clear", "--yes"))
    assert history(store) == []


def test_every_command_has_help_with_example(store: Path) -> None:
    from perfledger.cli import COMMANDS as REGISTERED

    assert tuple(REGISTERED) == COMMANDS
    top = ok(run(store, "--help"))
    for command in COMMANDS:
        assert command in top
        text = ok(run(store, command, "--help"))
        assert "Example:" in text and "perfledger" in text, command


def test_leaderboard_shows_sharpe_confidence(store: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    with Ledger(store) as led:
        for i in range(4):
            led.log_backtest(f"M{i}", "AAPL", rng.normal(0.0005 * i, 0.01, 300))
        conf = led.sharpe_confidence("AAPL").set_index("model_name")
    table = ok(run(store, "leaderboard", "--ticker", "AAPL"))
    assert "psr" in table and "dsr" in table and "4 trial(s)" in table
    rows = json.loads(ok(run(store, "leaderboard", "--ticker", "AAPL", "--format", "json")))
    assert len(rows) == 4
    for r in rows:
        assert r["psr"] == pytest.approx(conf.loc[r["model_name"], "psr"])
        assert r["dsr"] == pytest.approx(conf.loc[r["model_name"], "dsr"])
        assert not math.isnan(r["dsr"]) and r["dsr"] <= r["psr"] + 1e-12


def test_copy_moves_every_record_once(tmp_path: Path, store: Path) -> None:
    with Ledger(store) as led:
        led.log("M", "AAPL", sharpe=1.2, params={"a": 1}, metrics={"custom": 3.5})
        led.log("N", "MSFT", sharpe=0.7, notes="x")
    target = tmp_path / "copied"
    assert "Copied 2 records" in ok(run(store, "copy", "--to", str(target)))
    with Ledger(store) as src, Ledger(target) as dst:
        assert src.records() == dst.records()
    again = run(store, "copy", "--to", str(target))
    assert again.returncode == 2 and "already holds 2 records" in again.stderr
    assert "Traceback" not in again.stderr


# --------------------------------------------------------------------------- params and tags


@pytest.fixture
def sweep_store(store: Path) -> Path:
    rows = [{"model_name": f"XGB_{i % 2}", "ticker": ("AAPL", "MSFT")[i % 2], "sharpe": 0.1 * i,
             "timestamp": f"2024-01-{i + 1:02d}T00:00:00", "notes": f"r{i}",
             "params": {"max_depth": (3, 6, 9)[i % 3], "layers": [64, 32] if i % 4 else [64],
                        "depth_text": "6"},
             "tags": {"run": "nightly" if i % 5 == 0 else "sweep"}} for i in range(24)]
    with Ledger(store) as led:
        led.log_many(rows)
    return store


def test_history_and_export_filter_by_param_and_tag(tmp_path: Path, sweep_store: Path) -> None:
    with Ledger(sweep_store) as led:
        want = list(led.history(params={"max_depth": 6}, tags={"run": "nightly"})["notes"])
        arrays = list(led.history(params={"layers": (64, 32)})["notes"])
    assert want and arrays
    args = ["--tag", "run=nightly", "--param", "max_depth=6"]
    got = json.loads(ok(run(sweep_store, "history", *args, "--format", "json")))
    assert [r["notes"] for r in got] == want
    got = json.loads(ok(run(sweep_store, "history", "--param", "layers=[64, 32]", "--format", "json")))
    assert [r["notes"] for r in got] == arrays
    # JSON when valid: 6 is a number, '"6"' a string; tag values are text, as log stores them.
    assert ok(run(sweep_store, "history", "--param", 'max_depth="6"')).strip() == "No records match."
    text = json.loads(ok(run(sweep_store, "history", "--param", 'depth_text="6"', "--format", "json")))
    assert len(text) == 24
    out = tmp_path / "nightly.json"
    assert f"Exported {len(want)} record(s)" in ok(run(sweep_store, "export", "--output", str(out), *args))
    assert [r["notes"] for r in json.loads(out.read_text())] == want


def test_leaderboard_by_a_param(sweep_store: Path) -> None:
    rows = json.loads(ok(run(sweep_store, "leaderboard", "--ticker", "AAPL", "--by", "param:max_depth",
                             "--format", "json")))
    with Ledger(sweep_store) as led:
        board = led.leaderboard("AAPL", by="param:max_depth")
    assert [(r["rank"], r["max_depth"], r["records"]) for r in rows] == list(
        board[["rank", "max_depth", "records"]].itertuples(index=False, name=None))
    table = ok(run(sweep_store, "leaderboard", "--by", "tag:run", "--param", "max_depth=3"))
    assert "per run" in table and "nightly" in table and "psr" not in table
    with Ledger(sweep_store) as led:
        n = len(led.leaderboard(by="tag:run", params={"max_depth": 3}))
    assert n == table.count("│ sweep ") + table.count("│ nightly ")


@pytest.mark.parametrize(("args", "named"), [
    (["history", "--tag", "run"], "--tag"),
    (["history", "--param", "=6"], "--param"),
    (["history", "--param", 'grid={"a": 1}'], "params['grid']"),
    (["leaderboard", "--by", "param:nope"], "param:nope"),
    (["leaderboard", "--by", "max_depth"], "by="),
    (["export", "--output", "OUT.csv", "--tag", "run"], "--tag"),
])
def test_bad_param_and_tag_options_fail_with_one_line(sweep_store: Path, args: list[str], named: str) -> None:
    r = run(sweep_store, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert named in r.stderr and r.stderr.startswith("Error:") and "Traceback" not in r.stderr
