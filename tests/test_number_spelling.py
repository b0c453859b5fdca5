"""Numbers as people write them: every path reads them alike (issue 20's review, item 1).

- A number other than 0 that a float64 turns into 0 (``1e-400``) is refused as one it turns
  into an infinity (``1e400``) is: never silently stored as 0.
- Text is a number only in the ASCII digits: ``1_0`` and ``１２`` (which ``float()``,
  ``int()`` and ``Decimal()`` all read) are refused on every path that reads text.
- A NaN or an infinity in an imported file (``nan`` in a CSV cell, ``NaN``/``Infinity`` in
  JSON, a Parquet NaN) is a bad row naming the row, the field and the value; an empty cell
  (null) stays a missing value.
- ``--param a=1e400`` is named as typed, not as ``inf``.
- ``win_rate=1.5`` gets the rule, not a guess; ``55`` gets 0.55.
"""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_runner import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from perfledger import Ledger, ValidationError
from perfledger.dashboard.forms import parse_metrics, parse_params
from perfledger.files.importer import import_file
from perfledger.records.numbers import to_real, to_whole
from perfledger.records.typed import json_from_text

#: Digit sets Python's float()/int() read besides ASCII: full-width, Arabic-Indic, Devanagari.
FOREIGN_DIGITS = ["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९"]


def _foreign(text: str, digits: str) -> str:
    return text.translate(str.maketrans("0123456789", digits))


# ------------------------------------------------------------------ underflow


@given(mantissa=st.integers(1, 9), exponent=st.integers(325, 5000))
@settings(max_examples=60, deadline=None)
def test_a_nonzero_literal_a_float_turns_into_zero_is_refused(mantissa: int, exponent: int) -> None:
    text = f"{mantissa}e-{exponent}"
    assert float(text) == 0.0  # what Python would have stored
    for value, kw in ((text, {"text": True}), (Decimal(text), {}), (Fraction(mantissa, 10**exponent), {})):
        with pytest.raises(ValidationError) as info:
            to_real("arg", value, **kw)
        message = str(info.value)
        assert "arg=" in message and "too small" in message and "0" in message, message
    assert to_real("arg", f"0e-{exponent}", text=True) == 0.0  # zero written so stays zero


def test_underflow_and_a_tiny_metric_get_one_rule(ledger: Ledger) -> None:
    """1e-200 (a float64 holds it, a metric may not) and 1e-400 (a float64 does not) are
    refused with the same words; so are 1e200 and 1e400."""
    messages = {}
    for value in (1e-200, Decimal("1e-400"), 1e200, Decimal("1e400")):
        with pytest.raises(ValidationError) as info:
            ledger.log("M", "T", sharpe=value)
        messages[str(value)] = str(info.value)
    small = [m for k, m in messages.items() if "-" in k]
    large = [m for k, m in messages.items() if "-" not in k]
    assert all("must be at least 1e-100 in magnitude" in m for m in small), small
    assert all("metrics must be within" in m for m in large), large
    assert "1E-400" in messages["1E-400"]
    assert ledger.history().empty


@pytest.mark.parametrize("rows", [
    [{"model_name": "M", "ticker": "T", "sharpe": Decimal("1e-400")}],
    [{"model_name": "M", "ticker": "T", "metrics": {"x": Decimal("-1e-400")}}],
    pd.DataFrame({"model_name": ["M"], "ticker": ["T"], "custom": [Fraction(1, 10**400)]}),
], ids=["dict", "metrics", "frame"])
def test_log_many_and_log_backtest_refuse_underflow(ledger: Ledger, rows: Any) -> None:
    with pytest.raises(ValidationError, match="too small in magnitude"):
        ledger.log_many(rows)
    with pytest.raises(ValidationError, match=r"periods_per_year=.*too small"):
        ledger.log_backtest("M", "T", [0.01, -0.02, 0.03] * 10, periods_per_year=Decimal("1e-400"))
    assert ledger.history().empty


def test_cli_sharpe_1e_400_is_refused_not_stored_as_zero(tmp_path: Path) -> None:
    store = tmp_path / "l"
    for value in ("1e-400", "-2.5e-999"):
        result = run_cli("--store", str(store), "log", "--model", "M", "--ticker", "T", "--sharpe", value)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert "--sharpe" in lines[0] and value in lines[0] and "too small" in lines[0], lines
    result = run_cli("--store", str(store), "log", "--model", "M", "--ticker", "T", "--sharpe", "0e-400")
    assert result.returncode == 0, result.stderr  # zero, written with an exponent, is zero
    with Ledger(store) as led:
        assert led.history()["sharpe"].tolist() == [0.0]


# ------------------------------------------------------------------ ASCII digits only


@given(n=st.integers(10, 10**12), cut=st.integers(1, 11), digits=st.sampled_from(FOREIGN_DIGITS))
@settings(max_examples=80, deadline=None)
def test_underscores_and_other_digits_are_not_numbers(n: int, cut: int, digits: str) -> None:
    plain = str(n)
    cut = min(cut, len(plain) - 1)
    for text in (f"{plain[:cut]}_{plain[cut:]}", _foreign(plain, digits), _foreign(plain, digits) + ".5"):
        assert float(text) is not None  # Python itself reads every one of them
        with pytest.raises(ValidationError) as info:
            to_real("--x", text, text=True)
        assert f"--x={text!r}" in str(info.value), str(info.value)
        if "." not in text:
            assert int(text) == n
            with pytest.raises(ValidationError) as info:
                to_whole("--n", text, minimum=0, text=True)
            assert f"--n={text!r}" in str(info.value), str(info.value)
        with pytest.raises(ValidationError):
            parse_metrics(f"x={text}")
        with pytest.raises(ValidationError) as info:
            json_from_text("--param a", text)
        assert text in str(info.value)
    assert to_real("--x", plain, text=True) == float(n)
    assert to_whole("--n", plain, minimum=0, text=True) == n


@pytest.mark.parametrize(("args", "option"), [
    (["log", "--model", "M", "--ticker", "T", "--sharpe", "1_0"], "--sharpe"),
    (["log", "--model", "M", "--ticker", "T", "--sharpe", "１２"], "--sharpe"),
    (["log", "--model", "M", "--ticker", "T", "--metric", "x=1_0"], "--metric x"),
    (["log", "--model", "M", "--ticker", "T", "--param", "a=1_0"], "--param a"),
    (["log", "--model", "M", "--ticker", "T", "--param", "a=１２"], "--param a"),
    (["log", "--model", "M", "--ticker", "T", "--param", "lr=.5"], "--param lr"),
    (["log", "--model", "M", "--ticker", "T", "--param", "a=nan"], "--param a"),
    (["history", "--limit", "1_0"], "--limit"),
    (["history", "--limit", "１２"], "--limit"),
    (["history", "--min", "sharpe=1_0"], "--min sharpe"),
    (["history", "--param", "a=1_0"], "--param a"),
    (["decay", "--recent", "2_0"], "--recent"),
])
def test_cli_refuses_numbers_python_alone_reads(tmp_path: Path, args: list[str], option: str) -> None:
    store = tmp_path / "l"
    result = run_cli("--store", str(store), *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert option in lines[0] and args[-1].partition("=")[2 if "=" in args[-1] else 0] in lines[0], lines
    assert not (store / "perfledger.db").exists() or Ledger(store).history().empty


def test_param_text_is_named_as_typed(tmp_path: Path) -> None:
    store = tmp_path / "l"
    for value, said in (("1e400", "'1e400'"), ("1e-400", "'1e-400'"), ("[1, 1e400]", "'1e400'"),
                        ("NaN", "'NaN'"), ("-Infinity", "'-Infinity'")):
        result = run_cli("--store", str(store), "log", "--model", "M", "--ticker", "T",
                         "--param", f"a={value}")
        assert result.returncode == 2 and said in result.stderr and "inf" not in result.stderr.replace(
            "Infinity", ""), (value, result.stderr)
    # Text that is not a number stays text; JSON stays JSON; a quoted number is a string.
    assert parse_params('a=adam, b=1.2.3, c="007", d=[1, 2.5], e=2024-01-01') == {
        "a": "adam", "b": "1.2.3", "c": "007", "d": [1, 2.5], "e": "2024-01-01"}
    with pytest.raises(ValidationError, match=r"write 0\.5"):
        parse_params("lr=.5")


# ------------------------------------------------------------------ imported files


def _rejected(report: Any) -> list[tuple[str, str]]:
    return [(r.where, r.field) for r in report.rejected]


@pytest.mark.parametrize("cell", ["nan", "NaN", "NAN", " nan ", "inf", "-inf", "Infinity", "sNaN"])
def test_a_nan_or_inf_csv_cell_is_a_bad_row(ledger: Ledger, tmp_path: Path, cell: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text("timestamp,ticker,model_name,sharpe,custom\n"
                    "2024-01-01,A,M,1.0,2.0\n"
                    f"2024-01-02,A,M,{cell},\n"
                    f"2024-01-03,A,M,,{cell}\n")
    report = import_file(ledger, path)
    assert not report.stored and report.imported == 0
    assert _rejected(report) == [("line 3", "sharpe"), ("line 4", "custom")]
    for r in report.rejected:
        assert f"{r.field}={cell!r}" in r.message, r.message
    assert ledger.history().empty


def test_an_empty_csv_cell_is_still_missing(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("timestamp,ticker,model_name,sharpe,mse,custom\n2024-01-01,A,M,,0.5,\n")
    assert import_file(ledger, path).imported == 1
    row = ledger.history().iloc[0]
    assert pd.isna(row["sharpe"]) and row["mse"] == 0.5


@pytest.mark.parametrize(("literal", "words"), [
    ("NaN", "not a"), ("Infinity", "not a finite number"), ("-Infinity", "not a finite number"),
    ("1e400", "too large"), ("1e-400", "too small")])
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_literals_a_float_cannot_hold_are_bad_rows(
    ledger: Ledger, tmp_path: Path, literal: str, words: str, suffix: str
) -> None:
    rows = [
        f'{{"timestamp": "2024-01-01", "ticker": "A", "model_name": "M", "sharpe": {literal}}}',
        f'{{"timestamp": "2024-01-02", "ticker": "A", "model_name": "M", "metrics": {{"x": {literal}}}}}',
        f'{{"timestamp": "2024-01-03", "ticker": "A", "model_name": "M", "params": {{"p": [{literal}]}}}}',
        '{"timestamp": "2024-01-04", "ticker": "A", "model_name": "M", "sharpe": null}',
    ]
    path = tmp_path / f"x{suffix}"
    path.write_text("[" + ",\n".join(rows) + "]" if suffix == ".json" else "\n".join(rows) + "\n")
    report = import_file(ledger, path)
    assert not report.stored and report.imported == 0
    where = "record" if suffix == ".json" else "line"
    assert _rejected(report) == [
        (f"{where} 1", "sharpe"), (f"{where} 2", "metrics"), (f"{where} 3", "params")]
    for r in report.rejected:
        assert literal in r.message and words in r.message, r.message
        assert "inf" not in r.message.replace("Infinity", ""), r.message  # named as written
    assert ledger.history().empty
    # The one good row (null: missing) imports with --skip-invalid.
    assert import_file(ledger, path, skip_invalid=True).imported == 1


def test_a_parquet_nan_is_a_bad_row_a_null_is_missing(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({
        "timestamp": ["2024-01-01", "2024-01-02"], "ticker": ["A", "A"], "model_name": ["M", "M"],
        "sharpe": pa.array(np.array([np.nan, 1.0])), "mse": pa.array([0.1, None], pa.float64())}), path)
    report = import_file(ledger, path)
    assert not report.stored and _rejected(report) == [("row 1", "sharpe")]
    assert "sharpe=nan is not a number" in report.rejected[0].message
    assert import_file(ledger, path, skip_invalid=True).imported == 1
    assert pd.isna(ledger.history().iloc[0]["mse"])


def test_cli_import_names_file_row_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('[{"timestamp": "2024-01-01", "ticker": "A", "model_name": "M", "sharpe": NaN}]')
    result = run_cli("--store", str(tmp_path / "l"), "import", str(path))
    assert result.returncode == 2
    assert "x.json: 0 imported (nothing stored" in result.stdout
    assert "record 1: sharpe=NaN is not a number" in result.stdout


def test_the_seeds_own_json_with_nan_is_still_adopted_as_missing(tmp_path: Path) -> None:
    """The seed's json.dump wrote NaN for a value its CSV holds as an empty cell: the ledger
    adopting the seed's files reads it as missing, as the seed's own readers did."""
    directory = tmp_path / "logs"
    directory.mkdir()
    record = {"timestamp": "2024-01-01T00:00:00", "ticker": "A", "model_name": "M",
              "sharpe": float("nan"), "mse": 0.5, "drawdown": None, "total_return": None,
              "win_rate": None, "accuracy": None, "notes": ""}
    (directory / "model_performance.json").write_text(json.dumps([record], indent=2))
    with Ledger(directory) as led:
        hist = led.history()
    assert len(hist) == 1 and pd.isna(hist.iloc[0]["sharpe"]) and hist.iloc[0]["mse"] == 0.5


# ------------------------------------------------------------------ a fraction's hint


@given(st.floats(1.0, 2.0, exclude_min=True, exclude_max=True))
@settings(max_examples=50, deadline=None)
def test_no_guess_where_the_mistake_is_not_plain(value: float) -> None:
    from perfledger.records.validation import bound_message

    for name in ("win_rate", "accuracy"):
        message = bound_message(name, value) or ""
        assert "must be [0, 1], a fraction" in message and "did you mean" not in message, message


@given(st.integers(2, 100))
@settings(max_examples=30, deadline=None)
def test_a_plain_percentage_gets_its_fraction(value: int) -> None:
    from perfledger.records.validation import bound_message

    message = bound_message("win_rate", float(value)) or ""
    assert message.endswith(f"read as a percentage, did you mean {value / 100:g}?"), message
    assert bound_message("win_rate", 101.0) and "did you mean" not in (bound_message("win_rate", 101.0) or "")
