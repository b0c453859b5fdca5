"""The JSON mirror's two writers (orjson over dicts for a few records, Arrow column by column
for a large batch) must write byte-for-byte the same text: one file holds the output of both,
and a rebuild or an export must reproduce the appends exactly."""

from __future__ import annotations

import json

import orjson
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from perfledger.mirrors import columns as mirror_columns
from perfledger.mirrors.layout import json_body
from perfledger.records.batch import Batch
from perfledger.records.record import CORE_METRICS, SEED_FIELDS
from perfledger.records.timestamps import format_ts

TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
# Every spelling orjson has: both sides of its exponent thresholds, integral values, -0.0.
FLOATS = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e100, max_value=1e100),
    st.sampled_from([0.0, -0.0, 1.0, -3.0, 1e-5, 9.999999999999999e-06, 1e-6, 1e-7, 1e10,
                     9999999999.999998, 1e15, 1e16, 123456789012345.0, 0.1 + 0.2, 1 / 3, 1e-100]),
)
ROW = st.fixed_dictionaries({
    "ticker": TEXT.filter(bool), "model_name": TEXT.filter(bool), "notes": TEXT,
    "ts": st.integers(min_value=-2_208_988_800_000_000, max_value=7_258_118_399_999_999),
    **{m: FLOATS for m in CORE_METRICS},
    "metrics": st.dictionaries(st.sampled_from(["ic", "hit"]), FLOATS.filter(lambda v: v is not None)),
    "params": st.dictionaries(st.sampled_from(["lr", "layers", "opt"]),
                              st.one_of(st.integers(-10**6, 10**6), FLOATS, TEXT,
                                        st.lists(st.integers(0, 9)))),
    "tags": st.dictionaries(st.sampled_from(["stage", "run"]), TEXT),
})


def _batch(rows: list[dict]) -> Batch:
    return Batch(
        ticker=[r["ticker"] for r in rows], model_name=[r["model_name"] for r in rows],
        ts_us=[r["ts"] for r in rows], core={m: [r[m] for r in rows] for m in CORE_METRICS},
        notes=[r["notes"] for r in rows], metrics=[r["metrics"] for r in rows],
        params=[r["params"] for r in rows], tags=[r["tags"] for r in rows],
    )


def _reference(batch: Batch) -> bytes:
    """The seed's layout from orjson over one dict per record, independently of perfledger."""
    records = []
    for i in range(len(batch)):
        rec = dict(zip(SEED_FIELDS, [format_ts(batch.ts_us[i]), batch.ticker[i], batch.model_name[i],
                                     *(batch.core[m][i] for m in CORE_METRICS), batch.notes[i]],
                       strict=True))
        for key in ("metrics", "params", "tags"):
            if getattr(batch, key)[i]:
                rec[key] = getattr(batch, key)[i]
        records.append(rec)
    return orjson.dumps(records, option=orjson.OPT_INDENT_2)[2:-2]


@settings(max_examples=300, deadline=None)
@given(st.lists(ROW, min_size=1, max_size=6))
def test_columns_write_what_orjson_writes(rows: list[dict]) -> None:
    batch = _batch(rows)
    columnar = b"".join(mirror_columns.json_parts(batch))
    assert columnar == _reference(batch)
    assert json_body(batch) == columnar  # the small path, on the same records


# Values a ledger accepts (labels without control characters, metrics within their bounds
# and magnitudes): every example reaches the comparison, none is skipped by validation.
LABEL = st.text(alphabet="ABCXYZ_abc019 .-", min_size=1, max_size=8).filter(lambda t: t.strip() == t != "")
STORABLE = st.one_of(st.none(), st.just(0.0), st.floats(min_value=1e-100, max_value=1e100))
VALID_ROW = st.fixed_dictionaries({
    "ticker": LABEL, "model_name": LABEL, "notes": TEXT.filter(lambda t: "\x00" not in t),
    "ts": st.integers(min_value=-2_208_988_800_000_000, max_value=7_258_118_399_999_999),
    "sharpe": STORABLE, "mse": STORABLE, "total_return": STORABLE.map(lambda v: v if v is None else -v),
    "drawdown": STORABLE.map(lambda v: v if v is None else -v),
    "win_rate": st.one_of(st.none(), st.just(0.0), st.floats(min_value=1e-100, max_value=1)),
    "accuracy": st.sampled_from([None, 0.0, 0.5, 1.0, 1 / 3]),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(VALID_ROW, min_size=1, max_size=6))
def test_a_validated_frame_gives_the_same_bytes_as_its_lists(rows: list[dict]) -> None:
    """A bulk load builds the Arrow columns from the frame's arrays, not the batch's lists."""
    from perfledger.records.validation import validate_frame

    frame = pd.DataFrame([{**{k: r[k] for k in ("ticker", "model_name", "notes", *CORE_METRICS)},
                           "timestamp": format_ts(r["ts"])} for r in rows])
    clean = validate_frame(frame)
    from_frame = Batch.from_frame(clean)
    from_lists = Batch.from_frame(clean)
    from_lists.frame = None
    assert from_frame.frame is not None
    assert (b"".join(mirror_columns.json_parts(from_frame))
            == b"".join(mirror_columns.json_parts(from_lists))
            == _reference(from_lists))


def test_a_batch_orjson_refuses_still_reads_back() -> None:
    """An integer beyond 64 bits in params: orjson refuses it, the standard library writes it."""
    rows = [{"ticker": "T", "model_name": "M", "notes": "big", "ts": 0, **dict.fromkeys(CORE_METRICS, 1.5),
             "metrics": {}, "params": {"seed": 2**70, "lr": 0.1}, "tags": {}}] * 3
    batch = _batch(rows)
    doc = json.loads(b"[" + json_body(batch) + b"]")
    assert [r["params"] for r in doc] == [{"seed": 2**70, "lr": 0.1}] * 3
    assert doc[0]["sharpe"] == 1.5 and doc[0]["timestamp"] == format_ts(0)
