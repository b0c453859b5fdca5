"""One resolver for "where is the ledger", and one rule for time windows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perfledger import Ledger, ValidationError
from perfledger.location import DB_NAME, describe_url_text, hide_password, resolve
from perfledger.records.timestamps import parse_timestamp, time_window, to_us


def test_default_is_env_then_memory_logs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFLEDGER_URL", raising=False)
    loc = resolve()
    assert loc.directory == tmp_path / "memory" / "logs"
    assert loc.url.database == str(tmp_path / "memory" / "logs" / DB_NAME)
    monkeypatch.setenv("PERFLEDGER_URL", "postgresql://u:s3cret@db.example/ledger")
    loc = resolve()
    assert loc.directory is None and loc.url.drivername == "postgresql+psycopg"
    assert "s3cret" not in loc.describe() and "s3cret" in loc.as_argument()


def test_directories_are_absolute_and_stay_put_after_chdir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    rel = resolve("rel/ledger")
    url = resolve("sqlite:///rel.db")
    monkeypatch.chdir(tmp_path.parent)
    assert rel.directory == tmp_path / "rel" / "ledger"
    assert url.url.database == str(tmp_path / "rel.db")


@pytest.mark.parametrize("url", [
    "postgresql://user:hunter2@host:5432/db",
    "postgresql://user@host/db?password=hunter2",
    "postgresql+psycopg://user:hunter2@host/db?sslmode=require&PASSWORD=hunter2",
])
def test_passwords_never_described(url: str) -> None:
    loc = resolve(url)
    assert "hunter2" not in loc.describe()
    assert "hunter2" not in describe_url_text(loc.url)
    assert "hunter2" not in hide_password(url)
    assert "host" in loc.describe()


def test_unparseable_urls_hide_passwords_and_name_the_store() -> None:
    assert "hunter2" not in hide_password("mysql://u:hunter2@h/db:bad:port")
    with pytest.raises(ValidationError, match="store") as exc:
        resolve("://")
    assert "://" in str(exc.value)
    with pytest.raises(ValidationError, match="empty"):
        resolve("  ")


def test_ledger_repr_uses_the_resolver(tmp_path: Path) -> None:
    with Ledger(tmp_path / "x") as led:
        assert repr(led) == f"Ledger({str(tmp_path / 'x')!r})"


@pytest.mark.parametrize("days", [math.inf, -math.inf, math.nan, 0, -1, 1e308, 1e9])
def test_time_window_refuses_impossible_days(days: float) -> None:
    with pytest.raises(ValidationError, match="days_back="):
        time_window(days)


@pytest.mark.parametrize("days", [True, "7", None])
def test_time_window_types(days: object) -> None:
    if days is None:
        assert time_window(None) == (None, None)
    else:
        with pytest.raises(TypeError, match="days_back"):
            time_window(days)


def test_time_window_is_exact_and_combines_with_since() -> None:
    before = to_us(datetime.now(UTC) - timedelta(days=1.5))
    since, until = time_window(1.5)
    after = to_us(datetime.now(UTC) - timedelta(days=1.5))
    assert until is None and before <= since <= after  # type: ignore[operator]
    assert time_window(1.5, since="2001-01-01T00:00:00")[0] >= since  # type: ignore[operator]
    recent = datetime.now(UTC).isoformat()
    assert time_window(1.5, since=recent)[0] == parse_timestamp(recent)
    with pytest.raises(ValidationError, match="after until"):
        time_window(since="2024-02-01", until="2024-01-01")


def test_every_query_uses_the_same_window_rule(ledger: Ledger) -> None:
    ledger.log("M", "AAPL", sharpe=1.0)
    for call in (
        lambda: ledger.history(days_back=math.inf),
        lambda: ledger.leaderboard(days_back=math.inf),
        lambda: ledger.records(days_back=math.inf),
    ):
        with pytest.raises(ValidationError, match="days_back=inf"):
            call()
    assert len(ledger.history(days_back=100_000)) == 1
    assert len(ledger.leaderboard(days_back=100_000)) == 1
