"""What a record is, and the rules that let one into the ledger.

Holds the record itself (:mod:`.record`: its fields, the core metrics and their
directions), the timestamp codec (:mod:`.timestamps`), the one coercion of user numbers
(:mod:`.numbers`), the checks of what may be stored
(:mod:`.validation`) and of what a query may ask (:mod:`.arguments`), how params and tags
compare (:mod:`.labels`), and a validated batch in columnar form with its aggregates
(:mod:`.batch`).

The bottom layer: it imports only :mod:`perfledger.errors` (and numpy/pandas where a batch
needs them), never the store, the mirrors or the :class:`~perfledger.Ledger`.
Internal: users import :class:`~perfledger.Ledger` and the errors from :mod:`perfledger`.
"""
