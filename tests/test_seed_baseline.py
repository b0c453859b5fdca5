"""The benchmark's seed-design baseline must behave like the seed, or its figures mean
nothing: every log appends to both files, best_models.json keeps the best per metric in
the seed's directions, and history filters and sorts as the seed's reader does."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench import seed_baseline as sb


def test_log_appends_to_json_and_csv(tmp_path: Path) -> None:
    for i in range(3):
        rec = sb.log_model_performance(tmp_path, f"M{i}", "AAPL", sharpe=float(i), mse=0.1, notes=f"n{i}")
        assert rec["ticker"] == "AAPL" and "T" in rec["timestamp"]
    data = json.loads((tmp_path / sb.JSON_NAME).read_text())
    assert [r["notes"] for r in data] == ["n0", "n1", "n2"]
    assert (tmp_path / sb.JSON_NAME).read_text().startswith("[\n  {")  # indent=2, as the seed
    csv = pd.read_csv(tmp_path / sb.CSV_NAME)
    assert list(csv.columns) == ["timestamp", "ticker", "model_name", "sharpe", "mse", "drawdown",
                                 "total_return", "win_rate", "accuracy", "notes"]
    assert csv["notes"].tolist() == ["n0", "n1", "n2"]


def test_best_models_tracks_each_metric_in_its_direction(tmp_path: Path) -> None:
    sb.log_model_performance(tmp_path, "A", "AAPL", sharpe=1.0, mse=0.03, drawdown=-0.2)
    sb.log_model_performance(tmp_path, "B", "AAPL", sharpe=2.0, mse=0.05, drawdown=-0.1)
    sb.log_model_performance(tmp_path, "C", "MSFT", sharpe=0.5)
    best = sb.get_best_models(tmp_path, "AAPL")
    assert best["best_sharpe"]["model"] == "B" and best["best_sharpe"]["value"] == 2.0
    assert best["best_mse"]["model"] == "A"  # lower is better
    assert best["best_drawdown"]["model"] == "B"  # closer to zero is better
    assert "best_accuracy" not in best  # never logged: no entry
    assert set(sb.get_best_models(tmp_path)) == {"AAPL", "MSFT"}


def test_history_filters_and_sorts(tmp_path: Path) -> None:
    sb.log_model_performance(tmp_path, "A", "AAPL", sharpe=1.0, timestamp="2024-01-02T00:00:00")
    sb.log_model_performance(tmp_path, "B", "AAPL", sharpe=2.0, timestamp="2024-01-01T00:00:00")
    sb.log_model_performance(tmp_path, "A", "MSFT", sharpe=3.0, timestamp="2024-01-03T00:00:00")
    hist = sb.get_model_performance_history(tmp_path, ticker="AAPL")
    assert hist["model_name"].tolist() == ["B", "A"]
    assert len(sb.get_model_performance_history(tmp_path, model_name="A")) == 2
    assert sb.get_model_performance_history(tmp_path, days_back=30).empty  # all older than 30 days
    assert sb.get_available_tickers(tmp_path) == ["AAPL", "MSFT"]


def test_prefill_matches_logging_one_by_one(tmp_path: Path) -> None:
    recs = [
        sb.log_model_performance(tmp_path / "logged", m, t, sharpe=s, mse=e, notes="x")
        for m, t, s, e in (("A", "AAPL", 1.0, 0.2), ("B", "AAPL", 0.5, 0.1), ("A", "MSFT", 2.0, 0.3))
    ]
    sb.prefill(tmp_path / "bulk", recs)
    for name in (sb.JSON_NAME, sb.BEST_NAME):
        logged = json.loads((tmp_path / "logged" / name).read_text())
        assert json.loads((tmp_path / "bulk" / name).read_text()) == logged
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "bulk" / sb.CSV_NAME),
                                  pd.read_csv(tmp_path / "logged" / sb.CSV_NAME))


def test_clear_removes_the_files(tmp_path: Path) -> None:
    sb.log_model_performance(tmp_path, "A", "AAPL", sharpe=1.0)
    sb.clear_model_performance_log(tmp_path)
    assert sb.get_best_models(tmp_path) == {}
    assert sb.get_model_performance_history(tmp_path).empty
