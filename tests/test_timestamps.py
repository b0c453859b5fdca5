"""The one text spelling of a timestamp, checked against an independent formatter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from perfledger.records.timestamps import MAX_TS, MIN_TS, format_ts, format_ts_many, parse_timestamp, to_us

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TS = st.integers(min_value=to_us(MIN_TS), max_value=to_us(MAX_TS) - 1)  # MAX_TS is excluded


def _stdlib(ts_us: int) -> str:
    return (EPOCH + timedelta(microseconds=ts_us)).isoformat(timespec="microseconds")


@given(TS)
def test_format_ts_is_the_isoformat_spelling_over_the_whole_range(ts_us: int) -> None:
    text = format_ts(ts_us)
    assert text == _stdlib(ts_us)
    assert parse_timestamp(text) == ts_us


@given(st.lists(TS, max_size=200))
def test_short_and_long_columns_are_spelled_alike(values: list[int]) -> None:
    """Short columns are formatted one by one, long ones by numpy: the same text."""
    assert format_ts_many(values) == [_stdlib(v) for v in values]


def test_the_edges_and_pre_1970_times() -> None:
    for ts in (to_us(MIN_TS), to_us(MAX_TS), -1, 0, 1, 999_999, -1_000_000, 951_782_400_000_000):
        assert format_ts(ts) == _stdlib(ts)
    assert format_ts(-1) == "1969-12-31T23:59:59.999999+00:00"
