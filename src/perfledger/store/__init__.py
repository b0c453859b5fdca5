"""Storage: the contract the Ledger is written against, and one store per engine.

Holds the contract (:mod:`.base`), the schema and its migrations (:mod:`.schema`,
:mod:`.migrations`), what both SQL stores share (:mod:`.sql`: the error boundary and the
common reads; :mod:`.writes`: the write transaction; :mod:`.upserts`: the merges into the
derived tables, declared as data; :mod:`.queries`, :mod:`.reads`; :mod:`.columnar`: reads
into Arrow; :mod:`.errors`: driver errors mapped once), and the two engines, each owning its
write transaction, its Arrow reader, its params/tags lookups and its leaderboard SQL:
:mod:`.sqlite` (embedded) and :mod:`.postgres` (for teams). No module outside those two
tells the engines apart; :func:`open_store` picks one by the URL's backend.

May import :mod:`perfledger.records`, :mod:`perfledger.location` and
:mod:`perfledger.errors`; never the mirrors, the files or the :class:`~perfledger.Ledger`.
Internal: users open a :class:`~perfledger.Ledger`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ValidationError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .base import Store


def open_directory_store(database: Path, url: Callable[[], sa.URL], *, ledger: str,
                         guarded: Sequence[Path]) -> Store:
    """A ledger directory's store (its database file ``database``, whose URL ``url()``
    builds): the SQLite single-record path (:mod:`.sqlite.direct`, stdlib ``sqlite3`` only)
    when the file is a whole ledger of this schema version, with the full store behind it
    for everything else. Otherwise the full store opens at once (it creates, upgrades, or
    refuses a damaged file), and a writable one's first ``log()`` looks again (a new
    directory takes the short path from its first record on). A ledger this process may
    only read is the full store's alone."""
    from .sqlite.direct import open_direct, pending

    def full() -> Store:
        return open_store(url(), ledger=ledger, guarded=guarded, make_directory=True)

    direct = open_direct(database, ledger=ledger, guarded=guarded, full=full)
    if direct is not None:
        return direct
    store = full()
    if store.read_only_reason is not None:
        return store
    return pending(database, ledger=ledger, guarded=guarded, full=store)


def open_store(url: sa.URL, *, ledger: str | None = None, guarded: Iterable[Path] = (),
               repair: bool = False, make_directory: bool = False) -> Store:
    """Open (creating, checking or upgrading its schema) the store at ``url``. For an
    embedded database, ``ledger`` names it as the user knows it (its directory), and
    ``guarded`` lists files beside it that its writes also change (the mirrors): when this
    process may not write one of them, the store opens read-only. With ``repair``, a damaged
    schema is made whole and every derived table recomputed (``store.repaired`` says what
    was done; :mod:`.repair`). ``make_directory``: the embedded database's directory (a
    ledger directory) may not exist yet; the first write creates it. Nothing is created by
    opening: reads of a ledger that does not exist answer as an empty one."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        from .sqlite.store import SQLiteStore

        return SQLiteStore(url, ledger=ledger, guarded=guarded, repair=repair, make_directory=make_directory)
    if backend == "postgresql":
        from .postgres.store import PostgresStore

        return PostgresStore(url, repair=repair)
    from ..location import describe_url_text

    raise ValidationError(
        f"store {describe_url_text(url)!r}: perfledger keeps ledgers in SQLite or PostgreSQL, not "
        f"{backend!r}; use a directory, sqlite:///path or postgresql://user@host/db",
        [(None, "store", "unsupported engine")],
    )
