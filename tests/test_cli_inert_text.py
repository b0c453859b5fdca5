"""Text that reaches a terminal is inert (issue 20, item 8).

Notes come from teammates and imported files: a note ``\\x1b[2J\\x1b]0;pwned\\x07`` printed
as is clears the screen and sets the window title. Every stored text the command line
prints (tables, ``Error:`` lines, ``check``/``decay`` messages, warnings) has its control
characters (C0, DEL, C1, bidi overrides and isolates, line separators) made visible; ``--format
csv/json`` keep the exact text; each warning is one line.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from pathlib import Path

import pytest
from cli_runner import run_cli

from perfledger import Ledger
from perfledger.cli.app import _ACTIVE, visible

NASTY = "\x1b[2J\x1b]0;pwned\x07 \x9b31m red \u202eevil\u2066 x\x00y\x7f\x85 line1\nline2\r\t"


def _raw_controls(text: str) -> set[str]:
    """Active characters in ``text``, the line ends that separate output lines aside."""
    return {c for c in text if ord(c) in _ACTIVE and c != "\n"}


def test_visible_escapes_every_active_character_and_nothing_else() -> None:
    for cp in _ACTIVE:
        out = visible(chr(cp))
        assert out.startswith("\\") and not _raw_controls(out), hex(cp)
    plain = "naïve — 日本語 [red]x[/red] C:\\data ünï ☃"
    assert visible(plain) == plain
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    with Ledger(tmp_path / "l") as led:
        text = NASTY.replace("\x00", "")
        led.log("M", "T", sharpe=1.0, notes=text, tags={"who": text}, params={"p": text})
        led.log("\u202eM", "T", sharpe=2.0)
        for i in range(40):
            led.log("\u202eM", "T2", sharpe=3.0 - i / 10)
    return tmp_path / "l"


def test_history_table_shows_control_characters_and_csv_json_keep_them(store: Path) -> None:
    note = NASTY.replace("\x00", "")
    table = run_cli("--store", str(store), "history")
    assert table.returncode == 0
    assert not _raw_controls(table.stdout), table.stdout
    assert "\\x1b[2J\\x1b]0;pwned\\x07" in table.stdout and "\\u202eevil" in table.stdout
    as_json = run_cli("--store", str(store), "history", "--format", "json")
    assert note in {r["notes"] for r in json.loads(as_json.stdout)}
    as_csv = run_cli("--store", str(store), "history", "--format", "csv")
    assert "\x1b[2J\x1b]0;pwned\x07 \x9b31m red \u202eevil\u2066" in as_csv.stdout  # the exact text
    assert note.replace("\r", "\n") in {r["notes"] for r in csv.DictReader(io.StringIO(as_csv.stdout))}


@pytest.mark.parametrize("args", [
    ["best"], ["models"], ["leaderboard", "--ticker", "T"], ["leaderboard", "--by", "param:p"],
    ["leaderboard", "--by", "tag:who"], ["check", "--ticker", "T", "--model", "\u202eM", "--metric", "sharpe",
                                         "--min", "0"],
    ["check", "--ticker", "T", "--model", "\u202eM", "--metric", "sharpe", "--min", "5"],
    ["decay", "--ticker", "T2", "--recent", "20", "--baseline", "10"],
    ["history", "--\x1b[2Jx"], ["history", "--ticker", "\x1b[2J"],
    ["log", "--model", "\u202eM", "--ticker", "T"],
])
def test_every_printed_line_is_inert(store: Path, args: list[str]) -> None:
    result = run_cli("--store", str(store), *args)
    assert result.exception is None
    assert not _raw_controls(result.stdout + result.stderr), (args, result.stdout, result.stderr)


def test_warnings_are_one_inert_line_each(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ``history`` reads plain rows when it can (Ledger.history_rows), else a DataFrame.
    originals = {name: getattr(Ledger, name) for name in ("history", "history_rows")}

    def noisy(self: Ledger, *a: object, name: str = "history", **k: object) -> object:
        warnings.warn("first line\nsecond \x1b[2J line", RuntimeWarning, stacklevel=1)
        try:
            raise ValueError("inner\ntraceback")
        except ValueError:
            logging.getLogger("psycopg").warning("error ignored in pipeline\n%s", "\x1b]0;t\x07",
                                                 exc_info=True)
        return originals[name](self, *a, **k)

    monkeypatch.setattr(Ledger, "history", noisy)
    monkeypatch.setattr(Ledger, "history_rows",
                        lambda self, *a, **k: noisy(self, *a, name="history_rows", **k))
    result = run_cli("--store", str(store), "history", "--format", "csv")
    assert result.returncode == 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, result.stderr
    assert lines[0] == "RuntimeWarning: first line; second \\x1b[2J line"
    assert lines[1].startswith("error ignored in pipeline") and "\\x1b]0;t\\x07" in lines[1]
    assert "Traceback" not in result.stderr
