"""The SQL of the SQLite single-record path, as text constants: no SQLAlchemy to import.

``import sqlalchemy`` alone takes longer than a whole small command-line tool's process, so
the paths a person waits for (``perfledger log``, ``best``, ``tickers``; a ``log()`` in a
fresh process) run these on stdlib ``sqlite3`` (:mod:`.direct`). They are not written by
hand: each is what SQLAlchemy compiles from :mod:`..schema` and :mod:`..upserts` for SQLite
(:class:`..writes.Statements`), or, for the few reads written here, gives the same rows as
the store's own read on the same database; ``tests/test_direct_sqlite.py`` checks both, so
the two paths cannot drift. A schema change fails that test until these follow.
"""

from __future__ import annotations

from ...records.record import CORE_METRICS

#: The schema version these statements were written for: another version opens through
#: the full store (which migrates), never through :mod:`.direct`.
SCHEMA_VERSION = 7

#: Every table of a whole SQLite ledger with its columns, as :mod:`..schema` creates them: a
#: file that differs (a damaged or altered schema) opens through the full store, which says so.
TABLE_COLUMNS: dict[str, frozenset[str]] = {
    "pl_records": frozenset(("id", "ticker", "model_name", "ts", *CORE_METRICS, "notes", "params", "tags")),
    "pl_extra": frozenset(("record_id", "name", "value")),
    "pl_metric_defs": frozenset(("name", "higher_is_better")),
    "pl_best": frozenset(("ticker", "metric", "model_name", "value", "ts", "record_id")),
    "pl_summary": frozenset(("ticker", "model_name", "metric", "n", "mean", "m2", "min", "max",
                             "last_value", "last_ts", "last_id")),
    "pl_pairs": frozenset(("ticker", "model_name", "n", "first_ts", "last_ts")),
    "pl_meta": frozenset(("key", "value")),
    "pl_import_keys": frozenset(("key",)),
    "pl_labels": frozenset(("id", "h", "kind", "key", "value", "n")),
    "pl_cleared": frozenset(("id", "cleared_at", "n")),
    "pl_cleared_records": frozenset(("clear_id", "id", "ticker", "model_name", "ts", *CORE_METRICS,
                                     "notes", "params", "tags")),
    "pl_cleared_extra": frozenset(("clear_id", "record_id", "name", "value")),
    "pl_returns": frozenset(("record_id", "n", "vals", "dates")),
    "pl_cleared_returns": frozenset(("clear_id", "record_id", "n", "vals", "dates")),
    "pl_record_labels": frozenset(("record_id", "label_id")),
}

#: The tables and columns of the file (one query; compared with :data:`TABLE_COLUMNS`).
SCHEMA_COLUMNS = ("SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p "
                  "WHERE m.type = 'table' AND m.name LIKE 'pl\\_%' ESCAPE '\\'")

# ---------------------------------------------------------------------- compiled by SQLAlchemy
# (tests/test_direct_sqlite.py: equal to :class:`..writes.Statements` of the SQLite store)

INSERT_RECORDS = ("INSERT INTO pl_records (id, ticker, model_name, ts, sharpe, mse, drawdown, total_return, "
                  "win_rate, accuracy, notes, params, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_EXTRA = "INSERT INTO pl_extra (record_id, name, value) VALUES (?, ?, ?)"
INSERT_LINKS = "INSERT INTO pl_record_labels (record_id, label_id) VALUES (?, ?)"
INSERT_RETURNS = "INSERT INTO pl_returns (record_id, n, vals, dates) VALUES (?, ?, ?, ?)"

_BEST = ("INSERT INTO pl_best (ticker, metric, model_name, value, ts, record_id) VALUES (:ticker, :metric, "
         ":model_name, :value, :ts, :record_id) ON CONFLICT (ticker, metric) DO UPDATE SET model_name = "
         "excluded.model_name, value = excluded.value, ts = excluded.ts, record_id = excluded.record_id "
         "WHERE excluded.value {} pl_best.value OR excluded.value = pl_best.value AND (excluded.ts < "
         "pl_best.ts OR excluded.ts = pl_best.ts AND excluded.record_id < pl_best.record_id)")
#: The best-row upserts, by the metric's direction (higher is better: ``best_hi``).
UPSERT_BEST_HI = _BEST.format(">")
UPSERT_BEST_LO = _BEST.format("<")
UPSERT_SUMMARY = (
    "INSERT INTO pl_summary (ticker, model_name, metric, n, mean, m2, min, max, last_value, last_ts, "
    "last_id) VALUES (:ticker, :model_name, :metric, :n, :mean, :m2, :min, :max, :last_value, :last_ts, "
    ":last_id) ON CONFLICT (ticker, model_name, metric) DO UPDATE SET n = (pl_summary.n + excluded.n), "
    "mean = (pl_summary.mean + ((excluded.mean - pl_summary.mean) * excluded.n) / ((pl_summary.n + "
    "excluded.n) + 0.0)), m2 = (pl_summary.m2 + excluded.m2 + ((excluded.mean - pl_summary.mean) * "
    "(excluded.mean - pl_summary.mean) * pl_summary.n * excluded.n) / ((pl_summary.n + excluded.n) + "
    "0.0)), min = CASE WHEN (pl_summary.min <= excluded.min) THEN pl_summary.min ELSE excluded.min END, "
    "max = CASE WHEN (pl_summary.max >= excluded.max) THEN pl_summary.max ELSE excluded.max END, "
    "last_value = CASE WHEN (excluded.last_ts > pl_summary.last_ts OR excluded.last_ts = "
    "pl_summary.last_ts AND excluded.last_id > pl_summary.last_id) THEN excluded.last_value ELSE "
    "pl_summary.last_value END, last_ts = CASE WHEN (pl_summary.last_ts >= excluded.last_ts) THEN "
    "pl_summary.last_ts ELSE excluded.last_ts END, last_id = CASE WHEN (excluded.last_ts > "
    "pl_summary.last_ts OR excluded.last_ts = pl_summary.last_ts AND excluded.last_id > "
    "pl_summary.last_id) THEN excluded.last_id ELSE pl_summary.last_id END"
)
UPSERT_PAIRS = (
    "INSERT INTO pl_pairs (ticker, model_name, n, first_ts, last_ts) VALUES (:ticker, :model_name, :n, "
    ":first_ts, :last_ts) ON CONFLICT (ticker, model_name) DO UPDATE SET n = (pl_pairs.n + excluded.n), "
    "first_ts = CASE WHEN (pl_pairs.first_ts <= excluded.first_ts) THEN pl_pairs.first_ts ELSE "
    "excluded.first_ts END, last_ts = CASE WHEN (pl_pairs.last_ts >= excluded.last_ts) THEN "
    "pl_pairs.last_ts ELSE excluded.last_ts END"
)
UPSERT_LABELS = ('INSERT INTO pl_labels (h, kind, "key", value, n) VALUES (:h, :kind, :key, :value, :n) '
                 "ON CONFLICT (h) DO UPDATE SET n = (pl_labels.n + excluded.n)")
UPSERT_META = ('INSERT INTO pl_meta ("key", value) VALUES (:key, :value) ON CONFLICT ("key") DO UPDATE '
               "SET value = excluded.value")
GET_META = 'SELECT pl_meta.value \nFROM pl_meta \nWHERE pl_meta."key" = :key'
MAX_ID = "SELECT coalesce(max(pl_records.id), 0) AS coalesce_1 \nFROM pl_records"
DIRECTIONS = "SELECT pl_metric_defs.name, pl_metric_defs.higher_is_better \nFROM pl_metric_defs"

# ---------------------------------------------------------------------- reads written here
# (tests/test_direct_sqlite.py: the same rows as the full store's reads on the same database)

#: Changes when another connection has committed since this one last looked (:class:`.direct.Known`).
DATA_VERSION = "PRAGMA data_version"
#: Whether a ticker has a record: its first one changes the best-models document.
TICKER_KNOWN = "SELECT 1 FROM pl_pairs WHERE ticker = ? LIMIT 1"
#: The label ids of the given hashes (``?`` marks appended, one per hash).
LABEL_IDS = "SELECT h, id FROM pl_labels WHERE h IN ({})"
#: Whether the ledger holds a custom metric value (a history then reads them too).
ANY_EXTRA = "SELECT 1 FROM pl_extra LIMIT 1"
TICKERS = "SELECT DISTINCT ticker FROM pl_pairs ORDER BY ticker"
MODELS = "SELECT DISTINCT model_name FROM pl_pairs ORDER BY model_name"
MODELS_OF = "SELECT DISTINCT model_name FROM pl_pairs WHERE ticker = ? ORDER BY model_name"
BEST_ROWS = "SELECT ticker, metric, model_name, value, ts FROM pl_best"
BEST_ROWS_OF = "SELECT ticker, metric, model_name, value, ts FROM pl_best WHERE ticker = ?"
