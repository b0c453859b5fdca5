"""Every number a user gives goes through one coercion (issue 20, item 7).

``10**400``, a count past a 64-bit integer, ``Decimal("sNaN")``/``Decimal("NaN")``, NaN and
infinity, bools and text that is not a number are a ``ValidationError`` naming the argument
and the value, on every library path and every numeric option of the command line (exit 2,
one ``Error:`` line), never an ``OverflowError``, an unnamed ``ValueError`` or an "unexpected"
exit 1; and nothing is stored.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from cli_runner import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfledger import Ledger, ValidationError
from perfledger.cli import app
from perfledger.files.importer import import_file
from perfledger.records.numbers import NotANumberError, shown, to_real, to_whole
from perfledger.stats.returns import from_returns

HUGE_INT = 10**400
BAD_REALS = [HUGE_INT, -HUGE_INT, Decimal("sNaN"), Decimal("NaN"), Decimal("-Infinity"), Decimal("1e400"),
             math.nan, math.inf, -math.inf, np.float64("nan"), True, np.bool_(False), "1.5", "abc", [1.0],
             Fraction(10**400, 3)]
BAD_COUNTS = [HUGE_INT, 2**63, 99999999999999999999, -(2**70), Decimal("sNaN"), Decimal("NaN"), math.nan,
              math.inf, 2.5, True, "3", None]


def _named(exc: BaseException, name: str) -> None:
    assert isinstance(exc, ValidationError), type(exc)
    assert name in str(exc), (name, str(exc))
    assert len(str(exc)) < 400, str(exc)  # the value is named, not printed in 400 digits


# ------------------------------------------------------------------ the coercion itself


@pytest.mark.parametrize("value", BAD_REALS, ids=lambda v: type(v).__name__ + ":" + shown(v, 20))
def test_to_real_refuses_with_a_named_validation_error(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        to_real("arg", value)
    _named(info.value, "arg=" if not isinstance(value, bool | np.bool_ | str | list) else "arg")


def test_wrong_types_are_still_type_errors() -> None:
    for value in (True, "1.5", [1.0], None):
        with pytest.raises(TypeError):
            to_real("arg", value)
        with pytest.raises(NotANumberError):
            to_real("arg", value)


@given(st.integers() | st.floats() | st.decimals() | st.fractions() | st.text(max_size=30)
       | st.booleans() | st.sampled_from([HUGE_INT, -HUGE_INT, 2**63, Decimal("sNaN")]))
@settings(max_examples=400, deadline=None)
def test_to_real_is_a_float_or_a_validation_error(value: Any) -> None:
    """Anything at all: a finite float equal to the value as float() reads it, or ours."""
    for text in (False, True):
        try:
            f = to_real("x", value, text=text)
        except ValidationError as exc:
            assert "x" in str(exc)
            continue
        assert type(f) is float and math.isfinite(f)
        if isinstance(value, str):
            assert f == float(Decimal(value.strip()))
        else:
            assert f == float(value)


@pytest.mark.parametrize("value", BAD_COUNTS, ids=repr)
def test_to_whole_refuses_with_a_named_validation_error(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        to_whole("n", value, minimum=1)
    _named(info.value, "n")


def test_shown_never_fails() -> None:
    assert "401 digits" in shown(HUGE_INT)
    assert "about" in shown(10**20000)  # repr() of it raises in Python 3.11+
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert shown(deep).startswith("<a list>") or len(shown(deep)) <= 63


# ------------------------------------------------------------------ every library path


@pytest.fixture()
def led(tmp_path: Path) -> Any:
    with Ledger(tmp_path / "l") as ledger:
        ledger.log("M", "T", sharpe=1.0)
        yield ledger


def _nothing_stored(led: Ledger) -> None:
    assert len(led.history()) == 1


@pytest.mark.parametrize("value", [HUGE_INT, Decimal("sNaN"), Decimal("NaN"), Decimal("1e400"), math.nan,
                                   True, "abc"], ids=lambda v: shown(v, 20))
@pytest.mark.parametrize("where", ["core", "metrics", "log_many", "log_many_metrics", "frame"])
def test_every_write_path_refuses_bad_numbers(led: Ledger, where: str, value: Any) -> None:
    import pandas as pd

    row = {"model_name": "M", "ticker": "T"}
    calls = {
        "core": lambda: led.log("M", "T", sharpe=value),
        "metrics": lambda: led.log("M", "T", metrics={"x": value}),
        "log_many": lambda: led.log_many([{**row, "sharpe": value}]),
        "log_many_metrics": lambda: led.log_many([{**row, "x": value}]),
        "frame": lambda: led.log_many(pd.DataFrame({"model_name": ["M"], "ticker": ["T"],
                                                    "sharpe": pd.Series([value], dtype=object)})),
    }
    if where == "frame" and isinstance(value, float):
        pytest.skip("a NaN in a DataFrame is pandas' empty cell (documented)")
    with pytest.raises(ValidationError) as info:
        calls[where]()
    _named(info.value, "x" if where in ("metrics", "log_many_metrics") else "sharpe")
    _nothing_stored(led)


@pytest.mark.parametrize("value", [HUGE_INT, -HUGE_INT, Decimal("sNaN"), Decimal("NaN"), math.inf, True],
                         ids=lambda v: shown(v, 20))
def test_every_read_argument_refuses_bad_numbers(led: Ledger, value: Any) -> None:
    calls = {
        "days_back": lambda: led.history(days_back=value),
        "at_least": lambda: led.history(at_least={"sharpe": value}),
        "at_most": lambda: led.count(at_most={"sharpe": value}),
        "limit": lambda: led.history(limit=value),
        "recent": lambda: led.decay(recent=value),
        "baseline": lambda: led.decay(baseline=value),
        "alpha": lambda: led.decay(alpha=value),
        "n_trials": lambda: led.sharpe_confidence("T", n_trials=value),
        "periods_per_year": lambda: led.log_backtest("M", "T", [0.01, -0.02, 0.03], periods_per_year=value),
    }
    for name, call in calls.items():
        with pytest.raises(ValidationError) as info:
            call()
        _named(info.value, name)
    _nothing_stored(led)


@pytest.mark.parametrize("value", [2**63 - 1, 99999999999999999999, 2**62])
def test_huge_counts_are_named_not_overflow(led: Ledger, value: int) -> None:
    """Counts a 64-bit integer holds but a query cannot use (``recent + baseline`` overflows)."""
    for call, name in ((lambda: led.decay(recent=value), "recent"),
                       (lambda: led.decay(baseline=value), "baseline")):
        with pytest.raises(ValidationError) as info:
            call()
        _named(info.value, name)


def test_a_huge_trial_count_deflates_instead_of_failing(led: Ledger) -> None:
    """n_trials up to 2**63 - 1: Φ⁻¹(1 − 1/N) is computed as −Φ⁻¹(1/N), no "p must be in range"."""
    for i in range(5):
        led.log(f"M{i}", "T", sharpe=1.0 + i / 10)
    conf = led.sharpe_confidence("T", n_trials=2**63 - 1)
    assert len(conf) == 6


def test_an_imported_metric_column_refuses_huge_numbers(led: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text('[{"timestamp": "2024-01-01T00:00:00", "ticker": "T", "model_name": "M", '
                    f'"sharpe": 1.0, "x": {HUGE_INT}, "mse": {HUGE_INT}}}]')
    report = import_file(led, path)
    assert not report.stored
    text = " ".join(r.message for r in report.rejected)
    assert "x=" in text and "mse=" in text and "an integer of 401 digits" in text
    _nothing_stored(led)


# ------------------------------------------------------------------ nesting


@pytest.mark.parametrize("field", ["params", "tags", "metrics"])
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_is_a_validation_error(led: Ledger, field: str, depth: int) -> None:
    deep: list[Any] = []
    for _ in range(depth):
        deep = [deep]
    with pytest.raises(ValidationError) as info:
        led.log("M", "T", **{field: {"a": deep}})
    assert field in str(info.value) and "'a'" in str(info.value)
    with pytest.raises(ValidationError):
        led.log_many([{"model_name": "M", "ticker": "T", field: {"a": deep}}])
    _nothing_stored(led)


# ------------------------------------------------------------------ the command line

GROUP: Any = typer.main.get_command(app)
#: Every numeric option of every command: the ones whose value is a number (X or N).
NUMERIC = [(name, p.opts[0]) for name, c in GROUP.commands.items() for p in c.params
           if getattr(p, "metavar", None) in ("X", "N")]
REQUIRED = {"log": ["--model", "M", "--ticker", "T"], "check": ["--ticker", "T", "--model", "M",
                                                               "--metric", "sharpe"],
            "export": ["--output", "out.csv"], "copy": ["--to", "copy-target"], "overfit": ["--ticker", "T"]}
BAD_TEXT = ["nan", "NaN", "inf", "-inf", "Infinity", "", " ", "1e400", "-1e400", "9" * 400, "abc", "1,5",
            "0x10", "sNaN", "9223372036854775808", "99999999999999999999", "--"]


def test_the_numeric_options_are_all_found() -> None:
    found = set(NUMERIC)
    assert {("log", "--sharpe"), ("log", "--win-rate"), ("history", "--days"), ("history", "--limit"),
            ("leaderboard", "--n-trials"), ("decay", "--recent"), ("decay", "--baseline"),
            ("decay", "--alpha"), ("check", "--min"), ("check", "--max"), ("dashboard", "--port")} <= found


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("cli") / "l"
    with Ledger(store) as led:
        for i in range(40):
            led.log("M", "T", sharpe=1.0 + i / 100)
    return store


def _count(store: Path) -> int:
    with Ledger(store) as led:
        return len(led.history())


def _cli(store: Path, command: str, option: str, value: str) -> Any:
    extra = ["--min", "0"] if command == "check" and option not in ("--min", "--max") else []
    return run_cli("--store", str(store), command, *REQUIRED.get(command, []), *extra, f"{option}={value}",
                   cwd=store.parent)


def _assert_clean(result: Any, option: str, value: str) -> None:
    where = (option, value, result.returncode, result.stdout[-500:], result.stderr[-500:])
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr, where
    assert result.exception is None, where
    if result.returncode == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), where


@pytest.mark.parametrize(("command", "option"), [c for c in NUMERIC if c[0] != "dashboard"])
def test_every_numeric_option_refuses_bad_numbers(cli_store: Path, command: str, option: str) -> None:
    before = _count(cli_store)
    # 9223372036854775808 and 99999999999999999999 are fine values of a metric (or a number of
    # days that the library's own window rule then refuses, naming days_back).
    counts = ("--limit", "--n-trials", "--recent", "--baseline", "--alpha", "--drawdown", "--win-rate",
              "--accuracy")
    fine = set() if option in counts else {"9223372036854775808", "99999999999999999999"}
    for value in BAD_TEXT:
        result = _cli(cli_store, command, option, value)
        _assert_clean(result, option, value)
        if value in fine and command != "log":
            continue
        if value in fine:
            assert result.returncode == 0, (option, value, result.stderr)
            continue
        assert result.returncode == 2, (option, value, result.stdout, result.stderr)
        assert option in result.stderr or option.lstrip("-").replace("-", "_") in result.stderr, \
            (option, value, result.stderr)
    assert _count(cli_store) == before + len(fine) * (command == "log")


@pytest.mark.parametrize(("command", "option"), [c for c in NUMERIC if c[0] != "dashboard"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.floats().map(repr) | st.integers(min_value=-(10**30), max_value=10**30).map(str)
       | st.sampled_from(BAD_TEXT) | st.text(max_size=12))
def test_numeric_options_hypothesis(cli_store: Path, command: str, option: str, value: str) -> None:
    if value.startswith("-"):
        value = value  # passed as --opt=-1, never read as an option
    _assert_clean(_cli(cli_store, command, option, value), option, value)


def test_port_option(cli_store: Path) -> None:
    for value in ("0", "70000", "nan", "9" * 400, ""):
        result = run_cli("--store", str(cli_store), "dashboard", f"--port={value}", cwd=cli_store.parent)
        assert result.returncode == 2 and "--port" in result.stderr, (value, result.stderr)


# ------------------------------------------------------------------ from_returns


def test_returns_that_overflow_are_refused_naming_returns(led: Ledger) -> None:
    bad = [1e10, -0.5, 1e10, 0.1] * 20
    with pytest.raises(ValidationError) as info:
        from_returns(bad)
    assert info.value.problems[0][1] == "returns"
    with pytest.raises(ValidationError) as info:
        led.log_backtest("M", "T", bad)
    assert {p[1] for p in info.value.problems} == {"returns"}
    _nothing_stored(led)


def test_computed_values_too_large_to_store_blame_returns(led: Ledger) -> None:
    # Wealth stays finite (1e5 ** 30 = 1e150) but the total return is too large to store.
    with pytest.raises(ValidationError) as info:
        led.log_backtest("M", "T", [1e5, 0.01] * 30)
    assert {p[1] for p in info.value.problems} == {"returns"}
    _nothing_stored(led)


def test_json_numbers_round_trip_as_given(tmp_path: Path) -> None:
    """Sanity for the import path: an ordinary value still imports exactly."""
    path = tmp_path / "ok.json"
    path.write_text(json.dumps([{"timestamp": "2024-01-01T00:00:00", "ticker": "T", "model_name": "M",
                                 "sharpe": 1.25, "x": 99999999999999999999}]))
    with Ledger(tmp_path / "l") as led:
        assert import_file(led, path).stored == 1
        rec = led.records()[0]
        assert rec["sharpe"] == 1.25 and rec["metrics"]["x"] == 1e20


@pytest.mark.parametrize("key", ["sharpe", "x", "notes", "timestamp", "params", "tags", "metrics"])
def test_a_nan_in_a_dict_row_is_refused_as_log_refuses_it(led: Ledger, key: str) -> None:
    with pytest.raises((ValidationError, TypeError)):
        led.log("M", "T", **({"metrics": {"x": math.nan}} if key == "x" else {key: math.nan}))
    with pytest.raises(ValidationError) as info:
        led.log_many([{"model_name": "M", "ticker": "T", key: math.nan}])
    assert key in str(info.value)
    _nothing_stored(led)
