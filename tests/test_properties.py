"""Property test: any sequence of valid and invalid logs keeps best() and the mirrors in
agreement with history(), and a rejected call changes nothing."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from helpers import DIRECTIONS, csv_records, mirror_records, normalise_best, recompute_best
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfledger import Ledger

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64)
fraction = st.floats(min_value=0, max_value=1)
anything = st.one_of(st.none(), st.floats(), st.integers(-200, 200), st.text(max_size=3),
                     st.booleans())

valid_log = st.fixed_dictionaries(
    {"model_name": st.sampled_from(["A", "B", "C"]), "ticker": st.sampled_from(["AAPL", "^GSPC"])},
    optional={
        "sharpe": st.one_of(st.none(), finite, st.sampled_from([0.0, 1.0, 1.0])),
        "mse": st.floats(min_value=0, max_value=10),
        "drawdown": st.floats(min_value=-1, max_value=0),
        "win_rate": fraction,
        "accuracy": fraction,
        "notes": st.text(max_size=30),
        "metrics": st.dictionaries(st.sampled_from(["sortino", "calmar"]), finite, max_size=2),
    },
)
any_log = st.fixed_dictionaries(
    {"model_name": st.sampled_from(["A", "", " B", 3]), "ticker": st.sampled_from(["AAPL", "\n"])},
    optional={"sharpe": anything, "mse": anything, "drawdown": anything, "win_rate": anything},
)
ops = st.lists(st.one_of(valid_log.map(lambda d: ("log", d)), any_log.map(lambda d: ("log", d)),
                         st.lists(valid_log, max_size=4).map(lambda rows: ("many", rows)),
                         st.lists(any_log, min_size=1, max_size=3).map(lambda rows: ("many", rows))),
               max_size=12)


def state(led: Ledger) -> tuple:
    d = led.directory
    return (len(led.history()), json.dumps(led.best(), sort_keys=True),
            (d / "model_performance.json").read_bytes(), (d / "model_performance.csv").read_bytes())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_best_and_mirrors_always_agree_with_history(operations: list) -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        led = Ledger(tmp / "ledger")
        led.register_metric("sortino", True)
        led.register_metric("calmar", True)
        for kind, payload in operations:
            before = state(led)
            try:
                if kind == "log":
                    led.log(**payload)
                else:
                    led.log_many(payload)
            except (ValueError, TypeError):
                assert state(led) == before  # rejected: nothing changed
            h = led.history()
            dirs = {**DIRECTIONS, "sortino": True, "calmar": True}
            assert normalise_best(led.best()) == normalise_best(recompute_best(h, dirs))
            notes = sorted(h["notes"])
            assert sorted(r["notes"] for r in mirror_records(led.directory)) == notes
            assert sorted(r["notes"] for r in csv_records(led.directory)) == notes
            assert json.loads((led.directory / "best_models.json").read_text()) == led.best()
        led.close()
    finally:
        shutil.rmtree(tmp)
