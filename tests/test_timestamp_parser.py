"""One timestamp parser for log(), log_many() and import (issue 20, item 7).

``log()`` reads text with ``datetime.fromisoformat`` (via ``parse_timestamp``); a batch
reads plain ISO text with pandas for speed and every other text with that same parser, so
the three accept the same set (week dates, surrounding spaces, offsets with seconds) and
refuse the same set (``2024-01``, which pandas alone would read), to the same microsecond.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfledger import Ledger, ValidationError
from perfledger.files.importer import import_file
from perfledger.records.timestamps import parse_timestamp
from perfledger.records.validation import validate_frame

DATES = st.sampled_from(["2024-01-15", "20240115", "2024-W03-1", "2024-W03", "2024-01", "2024", "2024-1-5",
                         "1969-12-31", "2024-001", "2199-12-31", "1899-12-31"])
TIMES = st.sampled_from(["", "T10", "T10:30", "T10:30:00", " 10:30:00", "t10:30", "T10:30:00.5",
                         "T10:30:00.123456", "T10:30:00.1234567", "T10:30:00,5", "T1030", "T24:00",
                         "T10:30:61"])
ZONES = st.sampled_from(["", "Z", "+01:00", "-05:30", "+0100", "+01", "+01:00:30", "+01:00:30.5", " +01:00",
                         "z"])
SPACES = st.sampled_from(["", " ", "  ", "\t"])


def _log_value(text: str) -> int | None:
    try:
        return parse_timestamp(text)
    except ValidationError:
        return None


def _batch_values(texts: list[str]) -> list[int | None]:
    out = []
    for t in texts:  # one by one: a refused row refuses its batch
        frame = pd.DataFrame({"model_name": ["M"], "ticker": ["T"], "timestamp": [t]})
        try:
            out.append(int(validate_frame(frame)["ts_us"].iloc[0]))
        except ValidationError:
            out.append(None)
    return out


def _product() -> list[str]:
    import itertools

    parts = [["", " "], DATES.elements, TIMES.elements, ZONES.elements, ["", "  "]]  # type: ignore[attr-defined]
    return ["".join(p) for p in itertools.product(*parts)]


def test_a_batch_reads_every_text_as_log_does() -> None:
    """Every combination (5,720 texts) in one batch: the rows refused are exactly the texts
    log() refuses, and the others are read to the same microsecond."""
    texts = _product()
    expected = [_log_value(t) for t in texts]
    assert 0 < expected.count(None) < len(texts)
    frame = pd.DataFrame({"model_name": "M", "ticker": "T", "timestamp": texts})
    with pytest.raises(ValidationError) as info:
        validate_frame(frame, max_listed=10)
    refused = {row for row, field, _ in info.value.problems if field == "timestamp"}
    assert refused == {i for i, v in enumerate(expected) if v is None}
    ok = [i for i, v in enumerate(expected) if v is not None]
    assert validate_frame(frame.iloc[ok])["ts_us"].tolist() == [expected[i] for i in ok]


@given(st.lists(st.tuples(SPACES, DATES, TIMES, ZONES, SPACES).map("".join), min_size=1, max_size=6))
@settings(max_examples=25, deadline=None)
def test_one_text_at_a_time_too(texts: list[str]) -> None:
    assert _batch_values(texts) == [_log_value(t) for t in texts]


@pytest.mark.parametrize("text", ["2024-W01-1", " 2024-01-01 ", "2024-01-01T00:00:00+01:00:30"])
def test_the_issue_cases_are_accepted_everywhere(tmp_path: Path, text: str) -> None:
    with Ledger(tmp_path / "l") as led:
        one = led.log("M", "T", timestamp=text)["timestamp"]
        led.log_many([{"model_name": "M2", "ticker": "T", "timestamp": text}])
        path = tmp_path / "in.json"
        path.write_text(json.dumps([{"timestamp": text, "ticker": "T", "model_name": "M3", "sharpe": 1.0}]))
        assert import_file(led, path).stored == 1
        stamps = {r["model_name"]: r["timestamp"] for r in led.records()}
        assert stamps == {"M": one, "M2": one, "M3": one}


@pytest.mark.parametrize("text", ["2024-01", "2024", "2024-1-5"])
def test_what_log_refuses_a_batch_refuses(tmp_path: Path, text: str) -> None:
    with Ledger(tmp_path / "l") as led:
        with pytest.raises(ValidationError, match="timestamp"):
            led.log("M", "T", timestamp=text)
        with pytest.raises(ValidationError, match="timestamp"):
            led.log_many([{"model_name": "M", "ticker": "T", "timestamp": text}])
        assert led.history().empty
