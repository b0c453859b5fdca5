"""Files in and out, and records moved between stores.

Holds reading evaluation files into rows (:mod:`.rows`: the seed's JSON/CSV and our
exports), importing them idempotently (:mod:`.importer`, also the adoption of records only
a mirror holds), exporting records (:mod:`.exporter`) and copying one store into another
(:mod:`.transfer`).

May import :mod:`perfledger.records`, :mod:`perfledger.store` (its contract) and
:mod:`perfledger.mirrors` (the seed layouts exports share); never the
:class:`~perfledger.Ledger` itself (functions take it as an argument).
Internal: users call :meth:`~perfledger.Ledger.copy_to`, ``perfledger import``/``export``.
"""
