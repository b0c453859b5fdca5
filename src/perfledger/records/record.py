"""What a performance record is: its fields, the core metrics and their directions.

A record is the seed specification's evaluation (timestamp, ticker, model, six metrics,
notes) plus what perfledger adds: custom metrics, params and tags. The rules that keep
wrong values out live in :mod:`.validation`; the timestamp codec in :mod:`.timestamps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .timestamps import format_ts

#: The six metrics every record has a column for, in the seed specification's order.
CORE_METRICS: tuple[str, ...] = ("sharpe", "mse", "drawdown", "total_return", "win_rate", "accuracy")
#: The seed specification's record keys, in its order (also the CSV mirror's first columns).
SEED_FIELDS: tuple[str, ...] = ("timestamp", "ticker", "model_name", *CORE_METRICS, "notes")
#: Direction of each core metric: True when a larger value is better. Drawdown is <= 0, so
#: "closest to zero" is "largest".
CORE_DIRECTIONS: dict[str, bool] = {
    "sharpe": True,
    "mse": False,
    "drawdown": True,
    "total_return": True,
    "win_rate": True,
    "accuracy": True,
}
#: Names a custom metric may not take: they are the record's own fields.
RESERVED_NAMES = frozenset({*SEED_FIELDS, "metrics", "params", "tags", "id"})


@dataclass(frozen=True, slots=True)
class Record:
    """One validated evaluation. ``ts_us`` is UTC microseconds since the epoch: exact,
    sortable and cheap to index, unlike a string or a float."""

    model_name: str
    ticker: str
    ts_us: int
    sharpe: float | None = None
    mse: float | None = None
    drawdown: float | None = None
    total_return: float | None = None
    win_rate: float | None = None
    accuracy: float | None = None
    notes: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def timestamp(self) -> str:
        return format_ts(self.ts_us)

    def seed_dict(self, timestamp: str | None = None) -> dict[str, Any]:
        """The seed specification's record dict, plus ``metrics``/``params``/``tags``.
        ``timestamp``: the record's time already spelled (by the mirrors' formatting)."""
        out: dict[str, Any] = {
            "timestamp": self.timestamp if timestamp is None else timestamp,
            "ticker": self.ticker,
            "model_name": self.model_name,
        }
        for m in CORE_METRICS:
            out[m] = getattr(self, m)
        out["notes"] = self.notes
        out["metrics"] = dict(self.metrics)
        out["params"] = dict(self.params)
        out["tags"] = dict(self.tags)
        return out

