"""The two implementations of a batch's aggregates (plain Python for small batches, pandas
group-bys above 256 rows) must give the same answers on any batch, and both must agree with
a recomputation written here from the definitions."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfledger.records.batch import _FRAME_FROM, Batch
from perfledger.records.record import CORE_DIRECTIONS, CORE_METRICS

DIRECTIONS = {**CORE_DIRECTIONS, "sortino": True, "turnover": False}
values = st.one_of(st.none(), st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3)))
custom = st.dictionaries(st.sampled_from(["sortino", "turnover", "unregistered"]),
                         st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 3)), max_size=3)


@st.composite
def batches(draw: Any, min_size: int = 1, max_size: int = 40) -> Batch:
    n = draw(st.integers(min_size, max_size))
    tickers = draw(st.lists(st.sampled_from(["AAPL", "MSFT", "BRK.B"]), min_size=n, max_size=n))
    models = draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=n, max_size=n))
    # Few distinct timestamps, so ties on value *and* time are common (the id breaks them).
    ts = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    core = {m: draw(st.lists(values, min_size=n, max_size=n)) for m in CORE_METRICS}
    batch = Batch(ticker=tickers, model_name=models, ts_us=ts, core=core, notes=[""] * n,
                  metrics=draw(st.lists(custom, min_size=n, max_size=n)), params=[{}] * n, tags=[{}] * n)
    return batch


def _canonical(result: Any) -> tuple[Any, ...]:
    best, summary, pairs = result
    def rows(items: list[dict[str, Any]], key: tuple[str, ...]) -> list[tuple[Any, ...]]:
        return sorted(tuple(r[k] for k in key) for r in items)
    return (
        rows(best, ("ticker", "metric", "model_name", "value", "ts", "record_id")),
        rows(summary, ("ticker", "model_name", "metric", "n", "mean", "m2", "min", "max",
                       "last_value", "last_ts", "last_id")),
        rows(pairs, ("ticker", "model_name", "n", "first_ts", "last_ts")),
    )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _ids(batch: Batch) -> list[int]:
    return list(range(1, len(batch) + 1))


def _reference(batch: Batch) -> tuple[Any, ...]:
    """The aggregates straight from their definitions (record ids 1..n)."""
    ids = _ids(batch)
    obs: dict[tuple[str, str, str], list[tuple[int, int, float]]] = defaultdict(list)
    for pos in range(len(batch)):
        row = {m: batch.core[m][pos] for m in CORE_METRICS} | batch.metrics[pos]
        for m, v in row.items():
            if v is not None:
                key = (batch.ticker[pos], batch.model_name[pos], m)
                obs[key].append((batch.ts_us[pos], ids[pos], v))
    summary = []
    for (t, mod, m), xs in obs.items():
        vals = [v for _, _, v in xs]
        mean = sum(vals) / len(vals)
        last = max(xs)
        summary.append({"ticker": t, "model_name": mod, "metric": m, "n": len(vals), "mean": mean,
                        "m2": sum((v - mean) ** 2 for v in vals), "min": min(vals), "max": max(vals),
                        "last_value": last[2], "last_ts": last[0], "last_id": last[1]})
    best = []
    for t in set(batch.ticker):
        for m, higher in DIRECTIONS.items():
            cands = [(v, ts, rid, mod) for (tt, mod, mm), xs in obs.items() if tt == t and mm == m
                     for ts, rid, v in xs]
            if cands:
                v, ts, rid, mod = min(cands, key=lambda c: (-c[0] if higher else c[0], c[1], c[2]))
                best.append({"ticker": t, "metric": m, "model_name": mod, "value": v, "ts": ts,
                             "record_id": rid})
    pairs = []
    for t, mod in {(a, b) for a, b in zip(batch.ticker, batch.model_name, strict=True)}:
        ts = [batch.ts_us[p] for p in range(len(batch)) if (batch.ticker[p], batch.model_name[p]) == (t, mod)]
        pairs.append({"ticker": t, "model_name": mod, "n": len(ts), "first_ts": min(ts), "last_ts": max(ts)})
    return _canonical((best, summary, pairs))


@settings(max_examples=60, deadline=None)
@given(batches())
def test_small_and_frame_twins_agree_with_the_definition(batch: Batch) -> None:
    rows = _canonical(batch._aggregates_rows(DIRECTIONS, _ids(batch)))
    frame = _canonical(batch._aggregates_frame(DIRECTIONS, _ids(batch)))
    assert _close(rows, frame)
    assert _close(rows, _reference(batch))


@pytest.mark.parametrize("random_state", [1, 2, 3])
def test_aggregates_above_the_threshold_use_the_frame_twin_and_match_the_definition(
    random_state: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(random_state)
    n = _FRAME_FROM + rng.randint(1, 200)
    core = {m: [rng.choice([None, round(rng.uniform(-5, 5), 2)]) for _ in range(n)] for m in CORE_METRICS}
    batch = Batch(
        ticker=[rng.choice(["AAPL", "MSFT", "BRK.B"]) for _ in range(n)],
        model_name=[rng.choice(["A", "B", "C"]) for _ in range(n)],
        ts_us=[rng.randint(0, 20) for _ in range(n)], core=core, notes=[""] * n,
        metrics=[{"sortino": round(rng.uniform(-5, 5), 2)} if rng.random() < 0.5 else {} for _ in range(n)],
        params=[{}] * n, tags=[{}] * n,
    )
    used = []
    original = Batch._aggregates_frame
    monkeypatch.setattr(Batch, "_aggregates_frame", lambda self, d, i: used.append(1) or original(self, d, i))
    assert _close(_canonical(batch.aggregates(DIRECTIONS, _ids(batch))), _reference(batch))
    assert used, "a batch above the threshold must take the frame path"


@settings(max_examples=80, deadline=None)
@given(batches(min_size=1, max_size=1))
def test_the_one_record_twin_agrees_with_the_others_exactly(batch: Batch) -> None:
    """Every single log() takes the one-record twin: the same rows, the same values (a
    summary of one value has its mean exactly and M2 zero), as the plain-Python twin."""
    one = batch._aggregates_one(DIRECTIONS, 7)
    assert _canonical(one) == _canonical(batch._aggregates_rows(DIRECTIONS, [7]))
    assert _canonical(batch.aggregates(DIRECTIONS, [7])) == _canonical(one)
    assert _close(_canonical(batch._aggregates_one(DIRECTIONS, 1)), _reference(batch))
