"""What the command line prints can be trusted: stored text is shown as it was stored (never
read as Rich markup), no password is ever printed, a big ledger's table shows the latest
rows and says how many matched, and text PostgreSQL cannot hold (a NUL) is refused with one
line on every store, copies included.

Commands run in-process (tests/cli_runner.py); PostgreSQL cases use the real server with a
password its trust authentication ignores, so a leak would be visible.
"""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cli_runner import Completed, run_cli

from perfledger import Ledger, ValidationError

SECRET = "s3cretPW"
TRICKY = ["[red]LSTM", "features [/mnt/data/x.parquet]", "[bold]x[/bold] [link=http://e.org]y[/link]",
          "_ES_F_", "**b**", "`code`", "<b>x</b>", "$x$", "[/]"]


def cli(*args: str) -> Completed:
    return run_cli(*args)


def ok(result: Completed) -> str:
    assert result.returncode == 0, result
    return result.stdout


# --------------------------------------------------------------------------- text is data


def test_stored_text_is_never_rich_markup(tmp_path: Path) -> None:
    store = str(tmp_path / "l")
    with Ledger(store) as led:
        for i, text in enumerate(TRICKY):
            led.log(text.replace("`", "'"), "AAPL", sharpe=1.0 + i, notes=text)
    history = ok(cli("--store", store, "history"))
    best = ok(cli("--store", store, "best"))
    board = ok(cli("--store", store, "leaderboard", "--ticker", "AAPL"))
    for text in TRICKY:
        assert text in history
        assert text.replace("`", "'") in history and text.replace("`", "'") in board
    assert "[bold]x[/bold]" in best or "[bold]x[/bold]" in board


# --------------------------------------------------------------------------- passwords


@pytest.fixture
def secret_urls(pg_server_url: str) -> list[str]:
    url = sa.make_url(pg_server_url)
    with Ledger(pg_server_url) as led:
        led.clear()
        led.log("LSTM", "AAPL", sharpe=1.0)
    return [
        url.set(password=SECRET).render_as_string(hide_password=False),
        url.update_query_dict({"password": SECRET}).render_as_string(hide_password=False),
    ]


def test_no_command_prints_a_password(secret_urls: list[str], tmp_path: Path) -> None:
    source = tmp_path / "src"
    with Ledger(source) as led:
        led.log("M", "T", sharpe=2.0)
    for url in secret_urls:
        runs = {
            "clear": cli("--store", url, "clear"),
            "tickers": cli("--store", url, "tickers"),
            "history": cli("--store", url, "history"),
            "best": cli("--store", url, "best"),
            "leaderboard": cli("--store", url, "leaderboard", "--ticker", "AAPL"),
            "check": cli("--store", url, "check", "--ticker", "AAPL", "--model", "LSTM", "--metric", "sharpe",
                         "--min", "0"),
            "log": cli("--store", url, "log", "--model", "LSTM", "--ticker", "AAPL", "--sharpe", "1.5"),
            "export": cli("--store", url, "export", "--output", str(tmp_path / "x.csv")),
            "copy into a full store": cli("--store", str(source), "copy", "--to", url),
            "clear --yes": cli("--store", url, "clear", "--yes"),
            "copy": cli("--store", str(source), "copy", "--to", url),
            "unreachable": cli("--store", url.replace(":5432/", ":1/"), "tickers"),
            "bad port": cli("--store", url.replace(":5432/", ":99x/"), "tickers"),
        }
        for name, r in runs.items():
            assert SECRET not in r.stdout + r.stderr, (name, r.stdout, r.stderr)
            assert r.returncode in (0, 1, 2), (name, r.returncode, r.stderr)
        assert "pass --yes" in runs["clear"].stderr and "***" in runs["clear"].stderr
        assert "***" in runs["clear --yes"].stdout and "%2A" not in runs["clear --yes"].stdout
        assert runs["copy"].stdout.startswith("Copied 1 records to ")
        assert "already holds" in runs["copy into a full store"].stderr
        assert "cannot open" in runs["unreachable"].stderr
        assert "not a database URL" in runs["bad port"].stderr


def test_repr_and_errors_hide_the_password(secret_urls: list[str]) -> None:
    for url in secret_urls:
        with Ledger(url) as led:
            assert SECRET not in repr(led) and "***" in repr(led)
        with pytest.raises(Exception) as err:
            Ledger(url.replace("/perfledger_test", "/no_such_db_perfledger_test"))
        assert SECRET not in str(err.value)


class Serving:
    """Streamlit in miniature: listens on the address and port of its command line until it
    is waited for (then it has "stopped", exit 0)."""

    def __init__(self, command: list[str], **_: Any) -> None:
        option = dict(zip(command[5::2], command[6::2], strict=True))
        self.server = socket.create_server((option["--server.address"], int(option["--server.port"])))

    def poll(self) -> int | None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        self.server.close()
        return 0

    def terminate(self) -> None:
        self.server.close()


def test_dashboard_launch_line_hides_the_password(secret_urls: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import perfledger.dashboard.launch as launch

    monkeypatch.setattr(launch, "subprocess", types.SimpleNamespace(Popen=Serving))
    for url in secret_urls:
        r = cli("--store", url, "dashboard")
        assert r.returncode == 0, r
        assert r.stdout.startswith("perfledger dashboard on postgresql")
        assert "Local URL: http://127.0.0.1:" in r.stdout
        assert SECRET not in r.stdout + r.stderr


# --------------------------------------------------------------------------- big ledgers


def test_history_table_shows_the_latest_rows_and_counts_the_rest(tmp_path: Path) -> None:
    store = str(tmp_path / "l")
    with Ledger(store) as led:
        led.log_many([{"model_name": f"M{i % 3}", "ticker": "AAPL", "sharpe": i / 10,
                       "timestamp": f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}"} for i in range(120)])
    table = ok(cli("--store", store, "history"))
    assert table.count("AAPL") == 50
    assert "Showing the latest 50 of 120 matching records" in table
    assert "--limit N" in table and "--all" in table and "--format csv" in table
    assert "│ 11.9 " in table and "│ 0.1 " not in table  # the latest rows, not the first ones
    filtered = ok(cli("--store", store, "history", "--model", "M1"))
    assert filtered.count("AAPL") == 40 and "Showing" not in filtered
    assert ok(cli("--store", store, "history", "--all")).count("AAPL") == 120
    limited = ok(cli("--store", store, "history", "--limit", "7"))
    assert limited.count("AAPL") == 7 and "latest 7 of 120" in limited
    csv = ok(cli("--store", store, "history", "--format", "csv"))
    assert len(csv.strip().splitlines()) == 121
    assert csv.splitlines()[1].startswith("2024-01-01T00:00:00.000000+00:00,AAPL,M0,0.0,")
    both = cli("--store", store, "history", "--all", "--limit", "3")
    assert both.returncode == 2 and "--all" in both.stderr


def test_count_matches_history_with_the_same_filters(any_ledger: Ledger) -> None:
    any_ledger.log_many([{"model_name": f"M{i % 3}", "ticker": "AB"[i % 2], "sharpe": i / 10,
                          "params": {"d": i % 4}, "tags": {"run": "x" if i % 5 else "y"}} for i in range(60)])
    cases: list[dict[str, Any]] = [
        {}, {"ticker": "A"}, {"model_name": ["M0", "M2"]}, {"at_least": {"sharpe": 2.0}},
        {"params": {"d": 3}}, {"tags": {"run": "y"}, "ticker": "B"}, {"params": {"d": 99}}, {"days_back": 1},
    ]
    for kwargs in cases:
        assert any_ledger.count(**kwargs) == len(any_ledger.history(**kwargs)), kwargs
    with pytest.raises(ValidationError, match="days_back"):
        any_ledger.count(days_back=float("nan"))


# --------------------------------------------------------------------------- NUL characters


def test_a_nul_is_refused_on_every_store(any_ledger: Ledger) -> None:
    with pytest.raises(ValidationError, match="notes") as err:
        any_ledger.log("M", "AAPL", sharpe=1.0, notes="a\x00b")
    assert err.value.problems[0][1] == "notes"
    with pytest.raises(ValidationError, match="row 1"):
        any_ledger.log_many([{"model_name": "M", "ticker": "AAPL", "sharpe": 1.0},
                             {"model_name": "M", "ticker": "AAPL", "sharpe": 1.0, "notes": "x\x00"}])
    assert any_ledger.stats()["records"] == 0


def test_copy_of_an_old_note_with_a_nul_fails_cleanly(tmp_path: Path, pg_server_url: str) -> None:
    """A ledger written before NULs were refused: the copy names the record and the field,
    and writes nothing (one transaction)."""
    db = tmp_path / "old.db"
    with Ledger(f"sqlite:///{db}") as led:
        led.log_many([{"model_name": "M", "ticker": "AAPL", "sharpe": float(i), "notes": f"n{i}"}
                      for i in range(5)])
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE pl_records SET notes = 'a' || char(0) || 'b' WHERE notes = 'n3'")
    with Ledger(pg_server_url) as target:
        target.clear()
    r = cli("--store", f"sqlite:///{db}", "copy", "--to", pg_server_url)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: record 4 (AAPL, M, ") and "notes" in lines[0]
    with Ledger(pg_server_url) as target:
        assert target.stats()["records"] == 0
    with Ledger(f"sqlite:///{db}") as led:
        assert led.stats()["records"] == 5


def test_import_of_a_note_with_a_nul_names_the_record(tmp_path: Path) -> None:
    import json

    path = tmp_path / "in.json"
    row = {"ticker": "AAPL", "model_name": "M", "sharpe": 1.0}
    path.write_text(json.dumps([{**row, "timestamp": "2024-01-01T00:00:00", "notes": "ok"},
                                {**row, "timestamp": "2024-01-02T00:00:00", "notes": "a\x00b"}]))
    store = str(tmp_path / "l")
    r = cli("--store", store, "import", str(path))
    assert r.returncode == 2 and "record 2: notes=" in r.stdout and "NUL" in r.stdout, r.stdout
    with Ledger(store) as led:
        assert led.stats()["records"] == 0
