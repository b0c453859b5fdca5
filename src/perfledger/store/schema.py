"""The relational schema, shared by SQLite and PostgreSQL.

``pl_records`` is the one source of truth. Everything else is derived from it and kept
up to date *in the same transaction* as each insert, so that the questions users ask most
("best model for AAPL", "tickers", "leaderboard") never scan history:

* ``pl_best``      one row per (ticker, metric): the current best record;
* ``pl_summary``   one row per (ticker, model, metric): count, mean, M2, min, max, latest;
* ``pl_pairs``     one row per (ticker, model): record count and time span;
* ``pl_extra``     custom metric values, one row per (record, name);
* ``pl_metric_defs`` registered custom metrics and their direction;
* ``pl_meta``      schema version and the mirror files' committed state.

Tables are prefixed ``pl_`` so a ledger can live in a team's existing database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

_JSON_TEXT = sa.Text().with_variant(JSONB(), "postgresql")

#: The tables as this release creates them. A change here arrives with a migration in
#: :mod:`.migrations` that brings older ledgers to exactly this schema.
metadata = sa.MetaData()

records = sa.Table(
    "pl_records",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("ticker", sa.String(200), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),  # UTC microseconds since the epoch
    sa.Column("sharpe", sa.Float),
    sa.Column("mse", sa.Float),
    sa.Column("drawdown", sa.Float),
    sa.Column("total_return", sa.Float),
    sa.Column("win_rate", sa.Float),
    sa.Column("accuracy", sa.Float),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    # JSON objects or NULL: JSON text on SQLite, JSONB on PostgreSQL (queryable with SQL).
    sa.Column("params", _JSON_TEXT),
    sa.Column("tags", _JSON_TEXT),
    sa.Index("ix_pl_records_ticker_ts", "ticker", "ts", "id"),
    # (model, ticker, time): a model's history, and the latest N values of one (ticker, model)
    # pair read straight off the index (Ledger.decay); schema v7 replaced (model_name, ts).
    sa.Index("ix_pl_records_model_ticker_ts", "model_name", "ticker", "ts", "id"),
    sa.Index("ix_pl_records_ts", "ts"),
)

extra = sa.Table(
    "pl_extra",
    metadata,
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

metric_defs = sa.Table(
    "pl_metric_defs",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("higher_is_better", sa.Boolean, nullable=False),
)

best = sa.Table(
    "pl_best",
    metadata,
    sa.Column("ticker", sa.String(200), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
)

summary = sa.Table(
    "pl_summary",
    metadata,
    sa.Column("ticker", sa.String(200), primary_key=True),
    sa.Column("model_name", sa.String(200), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("mean", sa.Float, nullable=False),
    sa.Column("m2", sa.Float, nullable=False),
    sa.Column("min", sa.Float, nullable=False),
    sa.Column("max", sa.Float, nullable=False),
    sa.Column("last_value", sa.Float, nullable=False),
    sa.Column("last_ts", sa.BigInteger, nullable=False),
    sa.Column("last_id", sa.BigInteger, nullable=False),
)

pairs = sa.Table(
    "pl_pairs",
    metadata,
    sa.Column("ticker", sa.String(200), primary_key=True),
    sa.Column("model_name", sa.String(200), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("first_ts", sa.BigInteger, nullable=False),
    sa.Column("last_ts", sa.BigInteger, nullable=False),
)

meta = sa.Table(
    "pl_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
