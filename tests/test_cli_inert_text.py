"""Text that reaches a terminal is inert (issue 20, item 8).

Notes come from teammates and imported files: a note ``\\x1b[2J\\x1b]0;pwned\\x07`` printed
as is clears the screen and sets the window title. Every stored text the command line
prints (tables, ``Error:`` lines, ``check``/``decay`` messages, warnings) has its control
characters (C0, DEL, C1, bidi overrides and isolates, line separators) made visible; ``--format
csv/json`` keep the exact text; each warning is one line.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from cli_runner import run_cli
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perfledger import Ledger
from perfledger.cli.app import _ACTIVE, visible
from perfledger.cli.options import OutputFormat
from perfledger.cli.output import print_frame, print_rows
from perfledger.files.csv_text import csv_text

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
    exact = as_csv.raw_stdout.decode()  # as a program reads the pipe: "\r" kept
    assert note in {r["notes"] for r in csv.DictReader(io.StringIO(exact, newline=""))}


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


#: Any text a note may hold: every character but NUL (refused on every write) and lone
#: surrogates (not text), line breaks of every kind and terminal controls often.
NOTE_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\r", "\n", '"', ",", "\t", "\x1b", "\x85", "\u2028", "\u202e", " "]),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    max_size=30,
)


def _printed(frame: pd.DataFrame, fmt: OutputFormat) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_frame(frame, fmt)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(notes=st.lists(NOTE_TEXT, min_size=1, max_size=5))
@example(notes=["\x7f"])  # DEL: the one active character in ASCII (CI's run found it)
def test_every_format_carries_any_note_exactly_and_inertly(notes: list[str]) -> None:
    """Each note comes back whole from Python's csv reader and a JSON reader; the JSON and
    the table hold no character a terminal acts on (CSV carries the exact text: a program's
    format, its line breaks quoted)."""
    frame = pd.DataFrame({"ticker": ["T"] * len(notes), "sharpe": [1.5] * len(notes), "notes": notes})
    rows = list(csv.reader(io.StringIO(_printed(frame, OutputFormat.csv), newline="")))
    assert rows[0] == ["ticker", "sharpe", "notes"] and [r[2] for r in rows[1:]] == notes
    assert [r[:2] for r in rows[1:]] == [["T", "1.5"]] * len(notes)
    as_json = _printed(frame, OutputFormat.json)
    assert [r["notes"] for r in json.loads(as_json)] == notes
    assert not _raw_controls(as_json)
    assert not _raw_controls(_printed(frame, OutputFormat.table))
    listed = io.StringIO()
    with contextlib.redirect_stdout(listed):
        print_rows(["notes"], [[n] for n in notes], OutputFormat.csv)
    assert [r[0] for r in csv.reader(io.StringIO(listed.getvalue(), newline=""))][1:] == notes
    # The dashboard's Download CSV is written by the same writer.
    downloaded = csv.DictReader(io.StringIO(csv_text(frame), newline=""))
    assert [r["notes"] for r in downloaded] == notes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notes=st.lists(NOTE_TEXT, min_size=1, max_size=4))
def test_history_csv_and_json_give_back_every_note(notes: list[str], tmp_path: Path) -> None:
    """Through the command line and a real ledger: ``history --format csv`` read by Python's
    csv reader, and ``--format json``, give back exactly the notes logged."""
    where = tmp_path / f"l{abs(hash(tuple(notes)))}"
    shutil.rmtree(where, ignore_errors=True)
    with Ledger(where) as led:
        for note in notes:
            led.log("M", "T", sharpe=1.0, notes=note)
    as_csv = run_cli("history", "--store", str(where), "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    exact = as_csv.raw_stdout.decode()  # as a program reads the pipe: "\r" kept
    assert [r["notes"] for r in csv.DictReader(io.StringIO(exact, newline=""))] == notes
    as_json = run_cli("history", "--store", str(where), "--format", "json")
    assert [r["notes"] for r in json.loads(as_json.stdout)] == notes and not _raw_controls(as_json.stdout)
    shutil.rmtree(where)


def test_stats_is_inert_and_its_csv_quotes_a_path_with_a_line_break(tmp_path: Path) -> None:
    where = tmp_path / "a\rb\x1b[2J"
    with Ledger(where) as led:
        led.log("M", "T", sharpe=1.0)
    table = run_cli("stats", "--store", str(where))
    assert table.returncode == 0 and not _raw_controls(table.stdout) and "a\\rb\\x1b[2J" in table.stdout
    exact = run_cli("stats", "--store", str(where), "--format", "csv").raw_stdout.decode()
    rows = dict(csv.reader(io.StringIO(exact, newline="")))
    assert rows["store"] == str(where) and rows["records"] == "1"
