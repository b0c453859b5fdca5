"""Finding and comparing experiments by params and tags (issue 12), on both stores.

Storage: every write path keeps ``pl_labels`` (and SQLite's ``pl_record_labels``) equal to a
recomputation from the records themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import assert_labels_match_records, labels_of_store

from perfledger import Ledger, ValidationError
from perfledger.store import writes


def sweep(n: int = 60) -> list[dict[str, Any]]:
    """A small sweep: every record has params, most have tags; values of several JSON types."""
    out = []
    for i in range(n):
        params: dict[str, Any] = {"max_depth": (3, 6, 9)[i % 3], "lr": (0.01, 0.05)[i % 2]}
        if i % 5 == 0:
            params["max_depth"] = float(params["max_depth"])  # 6.0 is the number 6
        if i % 7 == 0:
            params["layers"] = [64, 32] if i % 2 else [64, 32, 16]
        if i % 11 == 0:
            params.update(early_stop=True, seed=None, sched={"kind": "cosine"}, depth_text="6")
        tags = {"run": "nightly" if i % 10 == 0 else f"sweep-{i % 3}"} if i % 4 else {}
        if i % 6 == 0:
            tags["owner"] = "ana"
        out.append({
            "model_name": f"XGB_{i % 4}", "ticker": ("AAPL", "MSFT", "BRK.B")[i % 3],
            "timestamp": f"2024-01-{1 + i % 28:02d}T10:{i % 60:02d}:00", "sharpe": 0.1 * (i % 17) - 0.3,
            "mse": 0.001 * (1 + i % 9), "sortino": 0.2 * (i % 5), "params": params, "tags": tags,
        })
    return out


def _url(led: Ledger) -> str:
    return led.url.render_as_string(hide_password=False)


def stored_labels(led: Ledger) -> list[tuple[str, str, str, int]]:
    return labels_of_store(_url(led))[0]


def assert_labels_consistent(led: Ledger) -> None:
    assert_labels_match_records(_url(led))


# --------------------------------------------------------------------------- storage


def test_every_write_path_keeps_the_labels(any_ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = sweep()
    for r in recs[:5]:
        any_ledger.log(r["model_name"], r["ticker"], sharpe=r["sharpe"], params=r["params"], tags=r["tags"],
                       timestamp=r["timestamp"])
    any_ledger.log("Plain", "AAPL", sharpe=1.0)  # no params, no tags: no label
    any_ledger.log_many(recs[5:30])
    monkeypatch.setattr(writes, "_BULK_ROWS", 10)  # the bulk path: label index built after the data
    any_ledger.log_many(recs[30:])
    assert_labels_consistent(any_ledger)
    assert ("t", "run", '"nightly"', 3) in stored_labels(any_ledger)
    assert ("p", "max_depth", "6", 20) in stored_labels(any_ledger)  # 6 and 6.0 are one value


def test_clear_forgets_every_label(any_ledger: Ledger) -> None:
    any_ledger.log_many(sweep(12))
    any_ledger.clear()
    assert stored_labels(any_ledger) == []
    assert labels_of_store(_url(any_ledger))[1] in (None, set())
    any_ledger.log("M", "AAPL", sharpe=1.0, params={"max_depth": 6}, tags={"run": "nightly"})
    assert stored_labels(any_ledger) == [("p", "max_depth", "6", 1), ("t", "run", '"nightly"', 1)]


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_copy_carries_the_labels(target: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    src = Ledger(tmp_path / "src")
    src.log_many(sweep())
    dest = request.getfixturevalue("pg_ledger") if target == "postgres" else Ledger(tmp_path / "dest")
    src.copy_to(dest)
    assert stored_labels(dest) == stored_labels(src)
    assert_labels_consistent(dest)


def test_a_rejected_write_stores_no_label(any_ledger: Ledger) -> None:
    any_ledger.log("M", "AAPL", sharpe=1.0, params={"a": 1})
    state = any_ledger.stats()["state"]
    with pytest.raises(ValidationError, match="empty key"):
        any_ledger.log("M", "AAPL", sharpe=1.0, params={"": 1})
    with pytest.raises(ValidationError):
        any_ledger.log_many([{"model_name": "M", "ticker": "AAPL", "params": {"b": 2}},
                             {"model_name": "M", "ticker": "AAPL", "win_rate": 68}])
    assert any_ledger.stats()["state"] == state
    assert stored_labels(any_ledger) == [("p", "a", "1", 1)]
