"""The relational schema, shared by SQLite and PostgreSQL.

``pl_records`` is the one source of truth. Everything else is derived from it and kept
up to date *in the same transaction* as each insert, so that the questions users ask most
("best model for AAPL", "tickers", "leaderboard") never scan history:

* ``pl_best``      one row per (ticker, metric): the current best record;
* ``pl_summary``   one row per (ticker, model, metric): count, mean, M2, min, max, latest;
* ``pl_pairs``     one row per (ticker, model): record count and time span;
* ``pl_extra``     custom metric values, one row per (record, name);
* ``pl_metric_defs`` registered custom metrics and their direction;
* ``pl_import_keys`` the content key of every imported record, unique: concurrent imports of
  the same rows store them once (schema v3);
* ``pl_labels``    one row per distinct (param or tag, key, value): its record count, for
  pickers and for choosing how to run a params/tags filter;
* ``pl_record_labels`` (SQLite only) which record carries which label, indexed both ways:
  what makes ``history(tags=...)`` an index lookup on the embedded store. PostgreSQL filters
  the JSONB columns themselves, through GIN indexes (``jsonb_path_ops``, for ``@>``);
* ``pl_meta``      schema version and the mirror files' committed state;
* ``pl_cleared``, ``pl_cleared_records``, ``pl_cleared_extra`` (schema v6): records a clear
  took out of the ledger, kept until purged so that the clear can be undone. They are not
  records of the ledger: no read but ``restore``/``purge``/``stats`` looks at them.
* ``pl_returns``   (schema v7) a backtest's per-period return series, one row per record that
  kept one: its length, its float64 values and (when it had them) its dates, as bytes
  (:mod:`perfledger.records.kept_returns`); ``pl_cleared_returns`` keeps those of cleared records.

Tables are prefixed ``pl_`` so a ledger can live in a team's existing database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

_JSON_TEXT = sa.Text().with_variant(JSONB(), "postgresql")

#: The tables as this release creates them. A change here arrives with a migration in
#: :mod:`.migrations` that brings older ledgers to exactly this schema.
metadata = sa.MetaData()

#: The records' b-tree indexes, on both engines (a bulk load into SQLite builds them afterwards).
_BY_TICKER = sa.Index("ix_pl_records_ticker_ts", "ticker", "ts", "id")
# (model, ticker, time): a model's history, and the latest N values of one (ticker, model)
# pair read straight off the index (Ledger.decay); schema v5 replaced (model_name, ts).
_BY_MODEL = sa.Index("ix_pl_records_model_ticker_ts", "model_name", "ticker", "ts", "id")
_BY_TIME = sa.Index("ix_pl_records_ts", "ts")
RECORD_INDEXES = (_BY_TICKER, _BY_MODEL, _BY_TIME)
#: Containment (``params @> '{"max_depth": 6}'``) on PostgreSQL; SQLite uses pl_record_labels.
JSONB_INDEXES = tuple(
    sa.Index(f"ix_pl_records_{col}_gin", col, postgresql_using="gin",
             postgresql_ops={col: "jsonb_path_ops"}).ddl_if(dialect="postgresql")
    for col in ("params", "tags")
)

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
    *RECORD_INDEXES,
    *JSONB_INDEXES,
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

import_keys = sa.Table(
    "pl_import_keys",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
)

labels = sa.Table(
    "pl_labels",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    # sha1 of (kind, key, value): the unique key (a btree cannot hold arbitrarily long values).
    sa.Column("h", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(1), nullable=False),  # "p" a param, "t" a tag
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False),  # canonical JSON (perfledger.records.labels.canonical)
    sa.Column("n", sa.BigInteger, nullable=False),  # records carrying it
    sa.Index("ix_pl_labels_h", "h", unique=True),
    sa.Index("ix_pl_labels_key", "kind", "key"),
)

#: Which record carries which label: the embedded store's index of params and tags (its
#: store creates it; PostgreSQL searches the JSONB columns through their GIN indexes instead).
_BY_LABEL = sa.Index("ix_pl_record_labels_label", "label_id", "record_id")
RECORD_LABEL_INDEXES = (_BY_LABEL,)

record_labels = sa.Table(
    "pl_record_labels",
    metadata,
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("label_id", sa.BigInteger, primary_key=True),
    _BY_LABEL,
    sqlite_with_rowid=False,
)

#: One row per clear that kept records: when, and how many (``Ledger.restore_cleared`` brings
#: them back, ``Ledger.purge_cleared`` deletes them for good).
cleared = sa.Table(
    "pl_cleared",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("cleared_at", sa.BigInteger, nullable=False),  # UTC microseconds since the epoch
    sa.Column("n", sa.BigInteger, nullable=False),
)

#: The records of each clear, exactly as ``pl_records`` held them (its id kept: the order they
#: come back in). Keyed by (clear, id): a SQLite ledger reuses ids after a clear.
cleared_records = sa.Table(
    "pl_cleared_records",
    metadata,
    sa.Column("clear_id", sa.BigInteger, primary_key=True),
    *(sa.Column(c.name, sa.BigInteger() if c.name == "id" else c.type, primary_key=c.name == "id",
                nullable=c.nullable, autoincrement=False) for c in records.c),
)

#: The custom metric values of each clear's records.
cleared_extra = sa.Table(
    "pl_cleared_extra",
    metadata,
    sa.Column("clear_id", sa.BigInteger, primary_key=True),
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

#: A backtest's return series (schema v7): ``n`` periods, ``vals`` their little-endian
#: float64 bytes, ``dates`` their little-endian int64 UTC microseconds (NULL: order only).
#: A side table, not columns of pl_records: history() and every other read of the records
#: never carry these bytes, and records without returns cost nothing.
returns = sa.Table(
    "pl_returns",
    metadata,
    sa.Column("record_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("vals", sa.LargeBinary, nullable=False),
    sa.Column("dates", sa.LargeBinary),
)

#: The return series of each clear's records (schema v7).
cleared_returns = sa.Table(
    "pl_cleared_returns",
    metadata,
    sa.Column("clear_id", sa.BigInteger, primary_key=True),
    sa.Column("record_id", sa.BigInteger, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("vals", sa.LargeBinary, nullable=False),
    sa.Column("dates", sa.LargeBinary),
)

#: The tables that hold what a clear kept (schema v6; their returns: v7).
CLEARED_TABLES = (cleared, cleared_records, cleared_extra)
RETURNS_TABLES = (returns, cleared_returns)

#: The tables every store has; an engine's store adds its own (SQLite: ``pl_record_labels``).
COMMON_TABLES = (records, extra, metric_defs, best, summary, pairs, meta, import_keys, labels,
                 *CLEARED_TABLES, *RETURNS_TABLES)
