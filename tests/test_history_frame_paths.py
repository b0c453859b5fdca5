"""History's lean SQLite path gives the DataFrame the generic path gave (issue 23).

``Ledger.history`` on a SQLite ledger reads through the single-record path's connection (no
SQLAlchemy connection of its own) and shapes the frame in Arrow with one ``to_pandas``. The
frame must be exactly what the generic path gave before that change: the full store's read
(SQLAlchemy, then the columnar pool) shaped by the pre-change ``history_frame``, kept below as
the oracle. Awkward data: metrics missing, custom metrics on some records only (one never
stored), params/tags, unicode and empty notes, kept return series, several tickers and models,
every filter shape, ``limit``, ``columns``, ``include_meta`` and empty answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pytest

import perfledger.ledger as ledger_module
from perfledger import Ledger
from perfledger.store.sql import SQLStore
from perfledger.store.sqlite.direct import DirectStore


def reference_history_frame(rows: Any, query: Any) -> pd.DataFrame:
    """The pre-change ``perfledger.frames.history_frame`` (release 8113ef4), verbatim: the oracle."""

    table = rows.records
    i = table.column_names.index("ts")
    if not pa.types.is_timestamp(table.schema.field(i).type):  # UTC microseconds: typed in Arrow
        table = table.set_column(i, "ts", table.column(i).cast(pa.int64()).cast(pa.timestamp("us", tz="UTC")))
    raw = table.to_pandas()
    if query.limit:  # the store returns the latest N newest first
        raw = raw.iloc[::-1].reset_index(drop=True)
    n = len(raw)
    one_ticker = query.tickers[0] if len(query.tickers) == 1 else None
    data: dict[str, Any] = {
        "timestamp": raw["ts"],
        "ticker": raw["ticker"] if one_ticker is None
        else pd.Series(one_ticker, index=pd.RangeIndex(n), dtype="str"),
        "model_name": raw["model_name"],
    }
    for m in query.core_columns():
        col = raw[m]
        data[m] = col if col.dtype == np.float64 else col.to_numpy(dtype=float, na_value=np.nan)
    if query.with_notes():
        data["notes"] = raw["notes"]
    frame = pd.DataFrame({k: v.array if isinstance(v, pd.Series) else v for k, v in data.items()})
    if query.include_meta:
        frame["params"] = [json.loads(v) if isinstance(v, str) and v else {} for v in raw["params"]]
        frame["tags"] = [json.loads(v) if isinstance(v, str) and v else {} for v in raw["tags"]]
        frame["record_id"] = raw["id"].to_numpy(dtype=np.int64)
        frame["has_returns"] = raw["has_returns"].to_numpy(dtype=np.int64) != 0
    if rows.extras is not None and rows.extras.num_rows:
        extras = rows.extras.to_pandas()
        wide = extras.pivot(index="record_id", columns="name", values="value")
        wide = wide.reindex(raw["id"].to_numpy(dtype=np.int64))
        for name in sorted(wide.columns):
            frame[name] = wide[name].to_numpy(dtype=float, na_value=np.nan)
    for name in sorted(query.custom_columns() or ()):  # asked for, never stored: all NaN
        if name not in frame.columns:
            frame[name] = np.full(n, np.nan)
    return frame




def _fill(led: Ledger) -> None:
    """Records with every awkward shape a history answer holds."""
    led.register_metric("ic", higher_is_better=True)
    rows = []
    for i in range(90):
        rows.append({
            "model_name": ("Mα", "M1", "M2")[i % 3], "ticker": ("T1", "T2", "Ω3")[i % 3 if i % 5 else 0],
            "timestamp": f"2026-0{1 + i % 3}-{1 + i % 28:02d}T0{i % 10}:00:{i % 60:02d}.{i:06d}+00:00",
            "sharpe": None if i % 7 == 0 else i / 10 - 3,
            "mse": None if i % 4 == 1 else 0.01 * (i % 5),
            "drawdown": -0.01 * (i % 9), "total_return": None, "win_rate": 0.5,
            "accuracy": None if i % 2 else 0.25,
            "notes": ("", "ünïcödé ✓ 文字", "multi\nline", "n'quote\"")[i % 4],
            "metrics": ({"ic": i / 3, "turnover": i * 2.0} if i % 4 == 0
                        else {"ic": -i} if i % 6 == 1 else None),
            "params": {"depth": i % 3, "lr": [0.1, i % 2]} if i % 2 else None,
            "tags": {"run": "nightly", "who": "é"} if i % 3 == 0 else None,
        })
    led.log_many(rows)
    returns = np.random.default_rng(0).normal(0, 0.01, 60)
    led.log_backtest("Mα", "T1", returns, timestamp="2026-02-10T12:00:00+00:00", params={"depth": 9})


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("paths")
    with Ledger(d) as led:
        _fill(led)
    return d


QUERIES: list[dict[str, Any]] = [
    {},
    {"ticker": "T1"},
    {"ticker": "T1", "model_name": "Mα"},
    {"ticker": "Ω3", "model_name": ["M1", "M2"]},
    {"ticker": ["T1", "T2"]},
    {"model_name": "M2"},
    {"ticker": "T2", "limit": 4},
    {"limit": 1},
    {"ticker": "T1", "include_meta": True},
    {"include_meta": True, "limit": 5},
    {"ticker": "T1", "columns": ["sharpe"]},
    {"columns": ["ic", "notes"]},
    {"ticker": "T2", "columns": ["never_stored", "turnover"]},
    {"columns": []},
    {"at_least": {"sharpe": 0.5}, "at_most": {"mse": 0.02}},
    {"at_least": {"ic": 2.0}},
    {"since": "2026-02-01", "until": "2026-03-01T00:00:00+00:00"},
    {"ticker": "T1", "days_back": 100_000},
    {"ticker": "nobody"},
    {"ticker": "T1", "at_least": {"sharpe": 1e9}, "include_meta": True},
    {"ticker": "nobody", "columns": ["ic"]},
    {"params": {"depth": 1}},
    {"tags": {"run": "nightly"}, "include_meta": True},
]


def _generic(led: Ledger, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """The frame before the lean path: the full store's read, the pre-change shaping."""
    with monkeypatch.context() as mp:
        mp.setattr(DirectStore, "history", lambda self, q: self.full.history(q))
        mp.setattr(ledger_module, "history_frame", reference_history_frame)
        return led.history(**kwargs)


def _assert_identical(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got.dtypes.to_dict() == want.dtypes.to_dict()
    assert got.index.equals(want.index) and type(got.index) is type(want.index)
    pdt.assert_frame_equal(got, want, check_exact=True, check_index_type=True, check_column_type=True)
    for c in got.columns:  # NaN where NaN, to the bit elsewhere (dicts compared as values)
        if got[c].dtype == np.float64:
            assert np.array_equal(got[c].to_numpy(), want[c].to_numpy(), equal_nan=True)
            assert got[c].to_numpy().tobytes() == want[c].to_numpy().tobytes()
    if "timestamp" in got.columns:
        assert str(got["timestamp"].dt.tz) == "UTC"


@pytest.mark.parametrize("kwargs", QUERIES, ids=lambda k: json.dumps(k, ensure_ascii=True))
def test_lean_path_frame_is_the_generic_paths(filled: Path, kwargs: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(filled) as led:
        assert isinstance(led._ensure(), DirectStore)
        plain = not (kwargs.get("params") or kwargs.get("tags"))
        with monkeypatch.context() as mp:
            if plain:  # the lean path is the one taken: the generic read would fail
                mp.setattr(SQLStore, "_history", lambda *a: pytest.fail("generic read taken"))
            lean = led.history(**kwargs)
        generic = _generic(led, kwargs, monkeypatch)
    _assert_identical(lean, generic)


def test_the_oracle_sees_awkward_data(filled: Path) -> None:
    """The data are as awkward as claimed (else the comparison above proves little)."""
    with Ledger(filled) as led:
        frame = led.history(include_meta=True)
    assert frame["sharpe"].isna().any() and frame["mse"].isna().any()
    assert frame["total_return"].isna().sum() == 90  # all but the backtest's
    assert frame["ic"].notna().any() and frame["ic"].isna().any() and "turnover" in frame.columns
    assert "ünïcödé ✓ 文字" in set(frame["notes"]) and "" in set(frame["notes"])
    assert frame["has_returns"].sum() == 1
    assert any(p == {"depth": 1, "lr": [0.1, 1]} for p in frame["params"])
    assert frame["tags"].map(bool).any() and not frame["tags"].map(bool).all()
    assert frame["timestamp"].is_monotonic_increasing and len(frame) == 91


def test_lean_path_after_another_process_adds_custom_metrics(tmp_path: Path) -> None:
    """Whether custom metrics exist is asked at each read, not remembered: a ledger that had
    none gets them from another writer, and the next history shows them."""
    with Ledger(tmp_path) as led, Ledger(tmp_path) as other:
        led.log("M", "T", sharpe=1.0, timestamp="2026-01-01")
        assert "ic" not in led.history("T").columns
        other.log("M", "T", sharpe=2.0, metrics={"ic": 0.5}, timestamp="2026-01-02")
        frame = led.history("T")
    assert frame["ic"].tolist()[1] == 0.5 and np.isnan(frame["ic"].tolist()[0])
