"""The embedded store: SQLite, the default, a file in the ledger directory.

Holds the store (:mod:`.store`: opening, the held write connection, what SQLite's result
codes mean), its write transaction (:mod:`.writer`: statements straight to ``sqlite3``,
records linked to their labels), its SQL of filtered reads and leaderboards
(:mod:`.queries`), its columnar reads through ADBC (:mod:`.arrow`), the engine's pragmas
(:mod:`.engine`), the database file itself (:mod:`.database_file`), who may write it
(:mod:`.access`), reads of a file this process may only read (:mod:`.readonly`), and the
file locks two SQLite libraries in one process must not drop (:mod:`.locks`).

May import the rest of :mod:`perfledger.store` and the layers below it.
"""
