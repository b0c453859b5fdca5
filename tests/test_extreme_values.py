"""Extreme values never block a ticker (issue 9, item 4).

``log(sharpe=1e308)`` then ``log(sharpe=-1e308)`` made the running mean -inf, after which
every Sharpe log of that ticker/model failed (SQLite: NaN stored as NULL in a NOT NULL
column; PostgreSQL: ``DataError: overflow``). PostgreSQL also raises on underflow (a
difference of 1e-190-sized values squared). The policy (README, "Validation"): a metric is 0
or between 1e-100 and 1e100 in magnitude, so the derived statistics can neither overflow nor
underflow, and no sequence of valid logs can make a later valid log fail.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfledger import Ledger, ValidationError
from perfledger.records.validation import MAX_MAGNITUDE, MIN_MAGNITUDE


def _no_constants(name: str) -> Any:
    raise AssertionError(f"JSON output holds {name}")


def assert_strict_json(text: str) -> None:
    json.loads(text, parse_constant=_no_constants)


@pytest.mark.parametrize("field", ["sharpe", "total_return", "drawdown", "mse"])
def test_values_beyond_the_stated_magnitude_are_refused_naming_the_field(ledger: Ledger, field: str) -> None:
    value = -1e308 if field == "drawdown" else 1e308
    with pytest.raises(ValidationError, match=rf"{field}=.*±1e\+100"):
        ledger.log("M", "AAPL", **{field: value})
    with pytest.raises(ValidationError, match=rf"row 0: {field}="):
        ledger.log_many([{"model_name": "M", "ticker": "AAPL", field: value}])
    with pytest.raises(ValidationError, match="ic"):
        ledger.log("M", "AAPL", metrics={"ic": -1e200})
    with pytest.raises(ValidationError, match=r"mse=1e-200 is too small"):
        ledger.log("M", "AAPL", mse=1e-200)
    with pytest.raises(ValidationError, match="row 0: sharpe=5e-324"):
        ledger.log_many([{"model_name": "M", "ticker": "AAPL", "sharpe": 5e-324}])
    assert len(ledger.history()) == 0


def attempt(fn: Any, *args: Any, **kwargs: Any) -> bool:
    """Run one log; a ValidationError (an invalid value, refused) is not a failure."""
    try:
        fn(*args, **kwargs)
    except ValidationError:
        return False
    return True


def test_the_reported_sequences_no_longer_block_the_ticker(any_ledger: Ledger) -> None:
    led = any_ledger
    attempt(led.log, "M", "AAPL", sharpe=1e308)
    attempt(led.log, "M", "AAPL", sharpe=-1e308)
    led.log("M", "AAPL", sharpe=1.0)
    attempt(led.log, "M", "MSFT", mse=1e200)
    led.log("M", "MSFT", mse=1.0)
    led.log("M", "AAPL", sharpe=MAX_MAGNITUDE)
    led.log("M", "AAPL", sharpe=-MAX_MAGNITUDE)
    led.log("M", "AAPL", sharpe=1.0)
    led.log_many([{"model_name": "M", "ticker": "MSFT", "mse": v} for v in (MAX_MAGNITUDE, 0.0, 1.0)])
    led.log("M", "MSFT", mse=MIN_MAGNITUDE)
    led.log("M", "MSFT", mse=1.0000000000000002 * MIN_MAGNITUDE)
    led.log("M", "MSFT", mse=0.0)
    board = led.leaderboard("AAPL")
    assert board["sharpe_count"].iloc[0] == 4 and math.isfinite(board["sharpe_std"].iloc[0])
    assert_strict_json(json.dumps(led.best(), allow_nan=False))


EDGES = [1e308, -1e308, 1.7976931348623157e308, 1e200, -1e200, 1e-200, 5e-324, -5e-324, 1e-310,
         MAX_MAGNITUDE, -MAX_MAGNITUDE, MIN_MAGNITUDE, 1.0000000000000002 * MIN_MAGNITUDE, 0.0, 1.0]
ANY_FINITE = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EDGES))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sharpes=st.lists(ANY_FINITE, min_size=1, max_size=6),
    mses=st.lists(ANY_FINITE.map(abs), min_size=1, max_size=6),
    as_batch=st.booleans(),
)
def test_no_sequence_of_valid_logs_makes_a_later_valid_log_fail(
    any_ledger: Ledger, sharpes: list[float], mses: list[float], as_batch: bool
) -> None:
    """Any finite values are offered; what the ledger accepts is by definition valid, and
    after any sequence of accepted logs a later valid log must still succeed."""
    led = any_ledger
    led.clear()
    rows = [{"model_name": "M", "ticker": "AAPL", "sharpe": s, "mse": m, "metrics": {"ic": s}}
            for s, m in zip(sharpes, mses, strict=False)]
    if as_batch:
        attempt(led.log_many, rows)
    for r in rows:
        attempt(led.log, r["model_name"], r["ticker"], sharpe=r["sharpe"], mse=r["mse"], metrics=r["metrics"])
    led.register_metric("ic", higher_is_better=True)
    # The later valid logs: single and batched.
    led.log("M", "AAPL", sharpe=1.0, mse=0.5, metrics={"ic": 0.1})
    led.log_many([{"model_name": "M", "ticker": "AAPL", "sharpe": -1.0, "mse": 2.0}])
    board = led.leaderboard("AAPL")
    for col in ("sharpe_mean", "sharpe_std", "mse_mean", "mse_std", "ic_mean"):
        assert math.isfinite(board[col].iloc[0])
    assert_strict_json(json.dumps(led.best(), allow_nan=False))
    if led.directory is not None:
        for name in ("best_models.json", "model_performance.json"):
            assert_strict_json((led.directory / name).read_text())
