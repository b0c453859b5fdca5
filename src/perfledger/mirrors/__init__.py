"""The seed's three files (``model_performance.json``, ``model_performance.csv``,
``best_models.json``) kept as faithful mirrors of the database.

Holds their byte layouts (:mod:`.layout`, :mod:`.columns`), their committed state
(:mod:`.state`), the mirrors kept in step inside each write transaction
(:mod:`.seed_files`), whole files rebuilt from the database (:mod:`.rebuild`), taking back
an append that did not commit (:mod:`.undo`) and the low-level file writes
(:mod:`.file_writes`).

May import :mod:`perfledger.records`, :mod:`perfledger.errors` and the store's contract
(:mod:`perfledger.store.base`); never the files package or the
:class:`~perfledger.Ledger`, which hands it the importer's adoption as a callable.
Internal: no user imports it.
"""
