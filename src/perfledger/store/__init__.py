"""Storage: the contract (:mod:`.base`) and its SQLAlchemy implementation (:mod:`.sql`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .base import Store


def open_store(url: sa.URL, *, read_only: bool = False) -> Store:
    """Open (creating or checking its schema) the store at ``url``; ``read_only`` (a SQLite
    file this process may not write) opens it without writing anything, and refuses writes."""
    from .sql import SQLStore

    return SQLStore(url, read_only=read_only)
