"""``history`` and ``check`` answered from plain rows print exactly what the DataFrame path
prints, for the same ledger (:mod:`perfledger.cli.rows`, :mod:`perfledger.store.sqlite.direct_reads`).

Each command runs twice in-process on one ledger: as it runs (a SQLite ledger directory
takes the rows path) and with :meth:`Ledger.history_rows`/:meth:`Ledger.latest_value`
answering None, which forces the DataFrame path; stdout, stderr and the exit code must be
byte-identical. The ledger holds what could differ: odd notes (quotes, commas, newlines, a
tab, Rich markup, an escape sequence, non-ASCII, an empty note and none), missing core
metrics, custom metrics some rows lack, extreme floats, timestamps with and without
microseconds, and params/tags (not history columns unless asked for).
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_runner import Completed, run_cli

from perfledger import Ledger

NOW = datetime.now(UTC).replace(microsecond=0)

NOTES = ['plain', 'comma, "quoted" and\nnewline', "tab\there", "[red]markup[/red] [/mnt/x]", "esc \x1b[2J",
         "ünïcödé ✓ 株", "", None,  # None is stored as ""
         "=1+2", "trailing space "]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli-rows") / "logs"
    values = [1.5, -0.25, 1e-05, 12345678.9, 1e16, 2.0, 0.1 + 0.2, 1 / 3, -7.0, 123.456]
    with Ledger(d) as led:
        for i in range(60):  # more than a table shows (50)
            when = NOW - timedelta(days=40 - i * 0.5, microseconds=(i % 3) * 1234)
            led.log("LSTM_v1" if i % 4 else "GRU", "AAPL" if i % 5 else "MSFT",
                    sharpe=values[i % len(values)] if i % 7 else None,
                    mse=abs(values[(i + 3) % len(values)]) if i % 2 else None,
                    drawdown=-0.1 * (i % 4) if i % 3 == 0 else None,
                    notes=NOTES[i % len(NOTES)], timestamp=when,
                    metrics={"sortino": values[(i + 1) % len(values)]} if i % 3 else
                    ({"calmar": 0.5 + i} if i % 2 else None),
                    params={"depth": i % 3}, tags={"run": f"r{i % 2}"})
    return d


def both(ledger: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[Completed, Completed]:
    calls: list[str] = []
    real = Ledger.history_rows, Ledger.latest_value

    def spy(name: str, fn):
        def wrapped(self, *a, **k):
            out = fn(self, *a, **k)
            calls.append(f"{name}:{out is not None}")
            return out
        return wrapped

    with monkeypatch.context() as m:
        m.setattr(Ledger, "history_rows", spy("rows", real[0]))
        m.setattr(Ledger, "latest_value", spy("latest", real[1]))
        rows = run_cli("--store", str(ledger), *args)
    assert calls and all(c.endswith(":True") for c in calls), calls  # the rows path answered
    with monkeypatch.context() as m:
        m.setattr(Ledger, "history_rows", lambda self, *a, **k: None)
        m.setattr(Ledger, "latest_value", lambda self, *a, **k: None)
        frame = run_cli("--store", str(ledger), *args)
    return rows, frame


def same(rows: Completed, frame: Completed) -> None:
    assert (rows.returncode, rows.stderr) == (frame.returncode, frame.stderr)
    assert rows.stdout == frame.stdout


HISTORY_ARGS = [
    (),
    ("--ticker", "AAPL"),
    ("--ticker", "AAPL", "--model", "LSTM_v1"),
    ("--ticker", "MSFT", "--model", "GRU"),
    ("--ticker", "AAPL", "--days", "10"),
    ("--min", "sharpe=0", "--max", "mse=100"),
    ("--min", "sortino=1"),
    ("--ticker", "AAPL", "--limit", "7"),
    ("--all",),
    ("--ticker", "NOPE"),
    ("--ticker", "AAPL", "--model", "GRU", "--days", "1"),
    ("--columns", "all"),
    ("--ticker", "AAPL", "--columns", "calmar"),
]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize("args", HISTORY_ARGS, ids=lambda a: " ".join(a) or "all")
def test_history_rows_print_what_the_frame_prints(ledger: Path, monkeypatch: pytest.MonkeyPatch,
                                                  args: tuple[str, ...], fmt: str) -> None:
    rows, frame = both(ledger, monkeypatch, "history", *args, "--format", fmt)
    assert rows.returncode == 0, rows.stderr
    same(rows, frame)


def test_the_ledger_holds_what_could_differ(ledger: Path) -> None:
    with Ledger(ledger) as led:
        h = led.history()
    assert h["sharpe"].isna().any() and h["sortino"].isna().any() and h["calmar"].notna().any()
    assert set(h["notes"]) >= {"", 'comma, "quoted" and\nnewline', "esc \x1b[2J"}
    assert any(t.microsecond for t in h["timestamp"])
    assert math.isclose(h["sharpe"].max(), 1e16)


CHECK_ARGS = [
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "sharpe", "--min", "0"),
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "sharpe", "--max", "-1e9"),
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "mse", "--max", "1", "--days", "30"),
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "sortino", "--min", "0.5", "--max", "2"),
    ("--ticker", "MSFT", "--model", "GRU", "--metric", "calmar", "--min", "0"),
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "win_rate", "--min", "0"),
    ("--ticker", "AAPL", "--model", "LSTM_v1", "--metric", "never_logged", "--min", "0"),
    ("--ticker", "NOPE", "--model", "LSTM_v1", "--metric", "sharpe", "--min", "0"),
    ("--ticker", "AAPL", "--model", "GRU", "--metric", "sharpe", "--min", "0", "--days", "0.001"),
]


@pytest.mark.parametrize("args", CHECK_ARGS, ids=lambda a: " ".join(a))
def test_check_from_rows_says_what_the_frame_says(ledger: Path, monkeypatch: pytest.MonkeyPatch,
                                                  args: tuple[str, ...]) -> None:
    rows, frame = both(ledger, monkeypatch, "check", *args)
    assert rows.returncode in (0, 1), rows.stderr
    same(rows, frame)


def test_check_reads_the_latest_value_by_time_then_id(tmp_path: Path) -> None:
    """Two records at one time: the later-logged one is the latest (as in history's order)."""
    d = tmp_path / "logs"
    when = NOW - timedelta(hours=1)
    with Ledger(d) as led:
        led.log("M", "T", sharpe=3.0, timestamp=when)
        led.log("M", "T", sharpe=0.5, timestamp=when)
        led.log("M", "T", sharpe=9.0, timestamp=when - timedelta(days=1))
    out = run_cli("--store", str(d), "check", "--ticker", "T", "--model", "M", "--metric", "sharpe",
                  "--min", "1")
    assert out.returncode == 1 and "latest sharpe=0.5" in out.stderr


def test_label_filters_take_the_frame_path(ledger: Path) -> None:
    """A params/tags filter is not a plain read: the ledger says so, the command still answers."""
    with Ledger(ledger) as led:
        assert led.history_rows(params={"depth": 1}) is None
        assert led.history_rows(ticker="AAPL") is not None
    out = run_cli("--store", str(ledger), "history", "--param", "depth=1", "--format", "csv")
    assert out.returncode == 0 and len(list(csv.reader(io.StringIO(out.stdout)))) == 1 + 20


def test_a_history_table_shows_custom_metrics_when_asked(ledger: Path) -> None:
    """Review 24 #14: a table shows the record's fields and core metrics; custom metrics (the
    sample has eight) only with --columns, and a line says which were left out."""
    plain = run_cli("--store", str(ledger), "history", "--ticker", "AAPL")
    assert plain.returncode == 0
    header = next(x for x in plain.stdout.splitlines() if "timestamp" in x)
    assert "sharpe" in header and "sortino" not in header and "calmar" not in header
    assert "2 custom metric column(s) not shown (calmar, sortino): --columns all" in plain.stdout
    every = run_cli("--store", str(ledger), "history", "--ticker", "AAPL", "--columns", "all")
    header = next(x for x in every.stdout.splitlines() if "timestamp" in x)
    assert "sortino" in header and "calmar" in header and "not shown" not in every.stdout
    one = run_cli("--store", str(ledger), "history", "--ticker", "AAPL", "--columns", "sortino")
    assert "1 custom metric column(s) not shown (calmar)" in one.stdout
    bad = run_cli("--store", str(ledger), "history", "--columns", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("Error: --columns nope names no column")
    csv_out = run_cli("--store", str(ledger), "history", "--format", "csv").stdout
    assert "sortino" in csv_out.splitlines()[0]  # csv/json carry every column
