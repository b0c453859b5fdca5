"""The seed's three files (``model_performance.json``, ``model_performance.csv``,
``best_models.json``) kept as faithful mirrors of the database.

One concept per module:

* :mod:`.transaction`: a write transaction's work on the files, as one object
  (``with mirrors.transaction(tx) as m: m.insert(batch)``): repairs on entry, appends, and
  on leaving either the new state saved or the appends taken back, a failed COMMIT included.
* :mod:`.seed_files`: the files of one directory (:class:`~.seed_files.SeedMirrors`; its
  null counterpart :class:`~.seed_files.NoMirrors` for a ledger that keeps none), and how
  they are brought back in step: adoption, rebuilds, restored copies recognised.
* :mod:`.state`: their committed state, one versioned record; every earlier shape read.
* :mod:`.undo`: taking back an append that did not commit, in-process or, after a crash,
  from the journal written before every transaction's first append.
* :mod:`.layout`, :mod:`.columns`: the bytes (shared with exports); a large batch's spelled
  by Arrow and written in the background during its insert.
* :mod:`.rebuild`: whole files written from the database. :mod:`.file_writes`: atomic
  writes, ``pwritev`` of bytes in pieces. :mod:`.failures`: an ``OSError`` on the files (a
  full disk, a file size limit) as perfledger's error, mapped once.

May import :mod:`perfledger.records`, :mod:`perfledger.errors` and the store's contract
(:mod:`perfledger.store.base`); never the files package or the
:class:`~perfledger.Ledger`, which hands it the importer's adoption as a callable.
Internal: no user imports it.
"""
