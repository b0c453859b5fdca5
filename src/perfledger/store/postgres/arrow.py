"""PostgreSQL's columnar reads: the ADBC PostgreSQL driver behind :class:`~..columnar.ArrowPool`.

The driver reads PostgreSQL's binary format into Arrow buffers in C++ (a ticker's 20,000
rows of a million: ~20 ms, against ~120-140 ms through psycopg). It is optional (the
``postgres`` extra installs it); without it the store reads through SQLAlchemy, with
identical results.

Connecting: the driver gets exactly the libpq parameters psycopg gets for the store's URL
(SQLAlchemy's dialect translates the URL, psycopg's ``make_conninfo`` quotes them as a
``key=value`` string), so passwords, ``?options=``, ``sslmode``, unix-socket hosts
(``?host=/var/run/postgresql``) and ``PGPASSWORD``/``~/.pgpass`` behave as for the engine.
The conninfo holds the password: it is never put into a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql

from ..columnar import ArrowPool

if TYPE_CHECKING:
    import sqlalchemy as sa


def available() -> bool:
    """True when the ADBC PostgreSQL driver is installed. Only looked up, not imported: its
    import loads ``pyarrow.dataset`` (~0.3 s), paid by the first columnar read instead."""
    import importlib.util

    try:
        return importlib.util.find_spec("adbc_driver_postgresql") is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def conninfo(engine: sa.Engine) -> str:
    """The libpq ``key=value`` string psycopg connects ``engine`` with (password included:
    for the driver only, never for a message)."""
    from psycopg.conninfo import make_conninfo

    _, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs.pop("context", None)  # psycopg's adapters, not a connection parameter
    return str(make_conninfo("", **{k: v for k, v in kwargs.items() if v is not None}))


class PostgresArrow(ArrowPool):
    """ADBC PostgreSQL connections to one database."""

    def __init__(self, engine: sa.Engine, connections: int = 1):
        """At most ``connections`` ADBC connections open at once (the store's budget)."""
        self._conninfo = conninfo(engine)
        super().__init__(postgresql.dialect(paramstyle="numeric_dollar"), size=connections,
                         limit=connections)

    def _connect(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc_pg

        return adbc_pg.connect(self._conninfo, autocommit=True)
