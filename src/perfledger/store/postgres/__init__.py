"""The team store: PostgreSQL, reached through psycopg 3 and, for large reads, ADBC.

Holds the store (:mod:`.store`: opening, transactions, what SQLSTATEs mean), its write
transaction (:mod:`.writer`: a single record in one statement), its SQL of filtered reads
and leaderboards (:mod:`.queries`: JSONB containment, aggregation in SQL) and its columnar
reads (:mod:`.arrow`).

May import the rest of :mod:`perfledger.store` and the layers below it.
"""
