"""Independent recomputations the tests compare the ledger against."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

CORE_METRICS = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")
DIRECTIONS = {"sharpe": True, "mse": False, "drawdown": True, "total_return": True,
              "win_rate": True, "accuracy": True}


def recompute_best(history: pd.DataFrame, directions: dict[str, bool]) -> dict[str, Any]:
    """Best per ticker per metric from a history frame (chronological): strictly better wins,
    ties keep the earlier record — written without the library's code."""
    out: dict[str, Any] = {}
    for ticker in sorted(set(history["ticker"])) if len(history) else []:
        rows = history[history["ticker"] == ticker]
        entry = {}
        for metric, higher in directions.items():
            best = None
            if metric in rows.columns:
                for _, r in rows.iterrows():
                    v = r[metric]
                    if v is None or (isinstance(v, float) and math.isnan(v)):
                        continue
                    if best is None or (v > best[1] if higher else v < best[1]):
                        best = (r["model_name"], float(v), r["timestamp"].isoformat())
            entry[f"best_{metric}"] = (
                {"model": best[0], "value": best[1], "timestamp": best[2]}
                if best else {"model": None, "value": None, "timestamp": None}
            )
        out[ticker] = entry
    return out


def normalise_best(best: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as pandas-parsed instants, so string formatting differences don't matter."""
    out: dict[str, Any] = {}
    for t, entry in best.items():
        out[t] = {
            k: {**v, "timestamp": pd.Timestamp(v["timestamp"]) if v["timestamp"] else None}
            for k, v in entry.items()
        }
    return out


def mirror_records(directory: Path) -> list[dict[str, Any]]:
    with open(directory / "model_performance.json", encoding="utf-8") as f:
        return json.load(f)


def csv_records(directory: Path) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)  # notes may be a megabyte
    with open(directory / "model_performance.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _json_value(v: Any) -> Any:
    """A JSON value with whole floats as ints (6.0 is 6), for comparing by value."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    return v


def label_text(v: Any) -> str:
    return json.dumps(_json_value(v), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def recompute_labels(
    params: list[dict[str, Any]], tags: list[dict[str, Any]]
) -> list[tuple[int, str, str, str]]:
    """(position, kind, key, value text) of every param and tag of records, without the library."""
    return [(pos, kind, k, label_text(v)) for kind, maps in (("p", params), ("t", tags))
            for pos, d in enumerate(maps) for k, v in (d or {}).items()]


def labels_of_store(url: str) -> tuple[list[tuple[str, str, str, int]], set[tuple[int, str, str, str]] | None,
                                        list[tuple[str, str, str, int]], set[tuple[int, str, str, str]]]:
    """(stored label counts, stored SQLite links or None, recomputed counts, recomputed links)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        labels = sorted(tuple(r) for r in conn.exec_driver_sql("SELECT kind, key, value, n FROM pl_labels"))
        links = None
        if engine.dialect.name == "sqlite":
            links = {tuple(r) for r in conn.exec_driver_sql(
                "SELECT rl.record_id, l.kind, l.key, l.value FROM pl_record_labels rl "
                "JOIN pl_labels l ON l.id = rl.label_id")}
        rows = conn.exec_driver_sql(
            "SELECT id, CAST(params AS TEXT), CAST(tags AS TEXT) FROM pl_records ORDER BY id").fetchall()
    engine.dispose()
    found = recompute_labels([json.loads(p) if p else {} for _, p, _ in rows],
                             [json.loads(t) if t else {} for _, _, t in rows])
    counts: dict[tuple[str, str, str], int] = {}
    for _, *label in found:
        counts[tuple(label)] = counts.get(tuple(label), 0) + 1
    want_links = {(rows[p][0], *rest) for p, *rest in found}
    return labels, links, sorted((*k, n) for k, n in counts.items()), want_links


def assert_labels_match_records(url: str) -> None:
    """The stored labels (and SQLite's record links) equal a recomputation from the records."""
    labels, links, want_labels, want_links = labels_of_store(url)
    assert labels == want_labels
    if links is not None:
        assert links == want_links


LOG_WORKER = Path(__file__).parent / "workers" / "log_worker.py"


def kill_rounds(location: Path, rounds: int, seed: int, worker_args: list[str], max_wait: float,
                tag: str = "r") -> set[str]:
    """Start ``workers/log_worker.py`` with ``--ack`` again and again, and SIGKILL it after
    its first acknowledgement plus a random wait of up to ``max_wait`` seconds. Returns the
    notes of every record a worker acknowledged (its log() had returned); each round's
    notes start with ``{tag}{round}-``."""
    rng = random.Random(seed)
    acknowledged: set[str] = set()
    for round_ in range(rounds):
        prefix = f"{tag}{round_}"
        child = subprocess.Popen(
            [sys.executable, str(LOG_WORKER), str(location), prefix, "1000000", "--ack", *worker_args],
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        first = child.stdout.readline()  # started logging
        assert first.strip().isdigit()
        acknowledged.add(f"{prefix}-{first.strip()}")
        time.sleep(rng.uniform(0.0, max_wait))
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        acknowledged |= {f"{prefix}-{line}" for line in out.split()}
        assert child.returncode == -signal.SIGKILL
    return acknowledged


def show_tab(at: Any, index: int) -> Any:
    """Select the dashboard's tab ``index`` (only the selected tab is drawn; a switch reruns the
    page, as a click does in the browser) and return it."""
    from perfledger.dashboard.app import TAB_KEY, TABS

    at.session_state[TAB_KEY] = TABS[index]
    at.run()
    assert not at.exception, at.exception
    return at.tabs[index]


#: The seed's dashboard page, which every AppTest of the dashboard starts.
DASHBOARD_PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "Model_Performance_Dashboard.py")
#: A first run imports Streamlit, pandas and plotly and opens the ledger: slow on a busy machine.
PAGE_TIMEOUT = 90


def start_page(*, user: dict[str, object] | None = None, secrets: dict[str, object] | None = None,
               page: str = DASHBOARD_PAGE, check: bool = True, actions_open: bool = True) -> Any:
    """The dashboard page run once under AppTest (as signed-in ``user``, with ``secrets``);
    with ``check`` (the default), asserted to have raised nothing. ``actions_open``: the
    sidebar's "Log an evaluation" and "Clear all data" expanders start open, as if clicked
    (their contents are drawn only while open), so a test drives the form directly."""
    from streamlit.testing.v1 import AppTest

    from perfledger.dashboard.sidebar import CLEAR_OPEN_KEY, LOG_OPEN_KEY

    at = AppTest.from_file(page, default_timeout=PAGE_TIMEOUT)
    if actions_open:
        at.session_state[LOG_OPEN_KEY] = at.session_state[CLEAR_OPEN_KEY] = True
    if user is not None:
        at.user = user
    if secrets is not None:
        at.secrets = secrets
    at.run()
    if check:
        assert not at.exception, at.exception
    return at
