"""The two CSV writers of the mirror (Arrow for large batches, Python for a few rows) must
write byte-for-byte the same text, or a mirror would mix two spellings of one number."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from perfledger.mirrors import layout as mirrors
from perfledger.records.batch import Batch
from perfledger.records.record import CORE_METRICS

floats = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from([0.0, -0.0, 1e-6, 1e-7, 1e10, 9999999999.0, 1e15, 5e-324,
                                   1e-4, -1e-4, 9.999999999999999e-05, 9999999999.999998, 123.0, -5.0,
                                   0.1 + 0.2, 1 / 3]))
row = st.fixed_dictionaries({
    "ticker": st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=6),
    "notes": st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
    "ts": st.integers(min_value=-2_208_988_800_000_000, max_value=7_258_118_400_000_000),
    **{m: floats for m in CORE_METRICS},
    "metrics": st.dictionaries(st.sampled_from(["a", "b"]), st.floats(allow_nan=False,
                                                                     allow_infinity=False)),
})


@settings(max_examples=300, deadline=None)
@given(st.lists(row, min_size=1, max_size=5))
def test_python_and_arrow_writers_agree(rows: list[dict]) -> None:
    batch = Batch(
        ticker=[r["ticker"] for r in rows], model_name=["M"] * len(rows),
        ts_us=[r["ts"] for r in rows], core={m: [r[m] for r in rows] for m in CORE_METRICS},
        notes=[r["notes"] for r in rows], metrics=[r["metrics"] for r in rows],
        params=[{}] * len(rows), tags=[{}] * len(rows),
    )
    assert mirrors._csv_small(batch) == mirrors._csv_arrow(batch)
