"""Storage: the contract (:mod:`.base`) and its SQLAlchemy implementation (:mod:`.sql`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .base import Store


def open_store(url: sa.URL) -> Store:
    """Open (creating or checking its schema) the store at ``url``."""
    from .sql import SQLStore

    return SQLStore(url)
