"""Where a ledger is: the one place that turns what a user gives into a location.

Users name a ledger in three ways: nothing (``$PERFLEDGER_URL``, else ``./memory/logs``), a
directory (embedded SQLite plus the seed's mirror files) or a SQLAlchemy URL (any database,
no local files). The library, the seed module, the CLI and the dashboard all resolve it
here, so they agree on which store a name means, and they all describe it for humans the
same way: never with a password, wherever the URL carries one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ValidationError

if TYPE_CHECKING:
    import sqlalchemy as sa

DEFAULT_DIR = os.path.join("memory", "logs")
DB_NAME = "perfledger.db"
ENV_URL = "PERFLEDGER_URL"
#: URL query parameters that carry a secret (libpq and most drivers accept ``password=``).
_SECRET_QUERY_KEYS = frozenset({"password", "pass", "passwd", "pwd", "sslpassword"})
_HIDDEN = "***"


def is_url(location: object) -> bool:
    """True for a database URL, False for a directory path: the one test everyone uses.
    (An ``sqlalchemy.URL`` exists only once SQLAlchemy is imported: a directory is told
    without importing it.)"""
    if isinstance(location, str):
        return "://" in location
    sa = sys.modules.get("sqlalchemy")
    return sa is not None and isinstance(location, sa.URL)


@dataclass(frozen=True)
class Location:
    """A resolved ledger location.

    ``directory`` is set for a ledger directory (the database is ``directory/perfledger.db``
    and the mirrors live beside it); ``url`` is always the database to open. A directory's
    URL is made when first asked for: building it imports SQLAlchemy, which the SQLite
    single-record path (``perfledger log``) never needs.
    """

    given_url: sa.URL | None = None
    directory: Path | None = None
    _made_url: sa.URL | None = field(default=None, compare=False, repr=False)

    @property
    def url(self) -> sa.URL:
        if self.given_url is not None:
            return self.given_url
        if self._made_url is None:
            import sqlalchemy as sa

            object.__setattr__(self, "_made_url", sa.URL.create("sqlite", database=str(self.database)))
        return self._made_url  # type: ignore[return-value]

    @property
    def database(self) -> Path:
        """A directory's database file (only for a ledger directory)."""
        assert self.directory is not None
        return self.directory / DB_NAME

    def describe(self) -> str:
        """For people (messages, page headers, ``repr``): the directory, or the URL with
        every password hidden."""
        return str(self.directory) if self.directory is not None else describe_url_text(self.url)

    def as_argument(self) -> str:
        """For another process (``$PERFLEDGER_URL`` of a dashboard subprocess) and for cache
        keys: the absolute directory, or the full URL, password included."""
        if self.directory is not None:
            return str(self.directory)
        return self.url.render_as_string(hide_password=False)

    def __str__(self) -> str:
        return self.describe()


def resolve(location: str | os.PathLike[str] | sa.URL | Location | None = None) -> Location:
    """``location``, else ``$PERFLEDGER_URL``, else ``./memory/logs``, resolved once.

    Directories become absolute (a later ``chdir`` must not move the ledger); so does the
    file of a relative ``sqlite:///rel.db`` URL. ``postgresql://`` means psycopg 3, the
    driver perfledger ships. An empty string is refused rather than read as "here".
    """
    if isinstance(location, Location):
        return location
    if location is None:
        location = os.environ.get(ENV_URL) or DEFAULT_DIR
    if isinstance(location, str) and not location.strip():
        raise ValidationError(
            "store location is empty; give a directory or a database URL", [(None, "store", "empty")]
        )
    if not is_url(location):
        directory = Path(os.fspath(location)).expanduser().resolve()
        return Location(directory=directory)
    import sqlalchemy as sa

    try:
        url = sa.make_url(location)
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ValidationError(
            f"store {hide_password(str(location))!r} is not a database URL "
            "(e.g. postgresql://user@host/db or sqlite:///path/to/ledger.db)",
            [(None, "store", "not a URL")],
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    return Location(given_url=url)


def existing_ancestor(path: Path) -> Path:
    """``path`` if it exists, else its nearest ancestor that does: where a ledger directory
    that does not exist yet would be created (its first write creates it, never a read)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def describe_url_text(url: sa.URL) -> str:
    """The URL as text with the password hidden, in the userinfo and in the query."""
    query = {
        k: (_HIDDEN if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in url.query.items()
    }
    text = url.set(query=query).render_as_string(hide_password=True)
    return text.replace("%2A%2A%2A", _HIDDEN)  # the query's "***", not percent-encoded


def hide_passwords_in(text: str) -> str:
    """A message (a driver's error, an unexpected exception) with every password hidden: in
    each URL it quotes, and in ``password=...`` pairs of a libpq connection string."""
    import re

    text = re.sub(r"\S+://\S+", lambda m: hide_password(m.group(0)), text)
    keys = "|".join(sorted(_SECRET_QUERY_KEYS))
    return re.sub(rf"\b((?:{keys})\s*=\s*)('[^']*'|\S+)", rf"\1{_HIDDEN}", text, flags=re.IGNORECASE)


def describe_store(url: sa.URL) -> str:
    """Where a store is, for error messages: engine, database and host, never the password."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database!r}"
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"{url.get_backend_name()} database {url.database!r} on {host}{port}"


def hide_password(text: str) -> str:
    """Any text that may be a URL, with passwords hidden even when it does not parse."""
    import re

    if not is_url(text):
        return text
    import sqlalchemy as sa

    try:
        return describe_url_text(sa.make_url(text))
    except (sa.exc.ArgumentError, ValueError):
        text = re.sub(r"(://[^/:@]*:)[^@/]*@", rf"\1{_HIDDEN}@", text)
        return re.sub(r"((?:" + "|".join(_SECRET_QUERY_KEYS) + r")=)[^&]*", rf"\1{_HIDDEN}", text,
                      flags=re.IGNORECASE)


def foreign_database(location: str | os.PathLike[str], argument: str) -> sa.URL:
    """The URL to READ another tool's database at (MLflow's tracking store): a SQLAlchemy
    URL (``sqlite:///mlflow.db``, ``postgresql://user@host/mlflow``) or the path of an
    SQLite file. An SQLite database is opened read-only and must exist (nothing is ever
    created or written in it); a directory or a ``file:`` URI (MLflow's file store, which
    keeps no database), or any other URL (a tracking server's ``http://``) is a
    ValidationError naming ``argument``."""

    text = os.fspath(location)
    if not is_url(text):
        path = Path(text).expanduser()
        if path.is_dir():
            raise ValidationError(
                f"{argument}={text!r} is a directory (MLflow's file store?); perfledger reads a "
                "tracking DATABASE: sqlite:///path/mlflow.db or postgresql://user@host/db",
                [(None, argument, "a directory")],
            )
        text = f"sqlite:///{path}"
    if text.startswith("file:"):
        raise ValidationError(
            f"{argument}={text!r} is MLflow's file store, which keeps no database; perfledger reads "
            "sqlite:///path/mlflow.db or postgresql://user@host/db", [(None, argument, "a file store")],
        )
    url = resolve(text).url
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        # MLflow's usual URI is its tracking SERVER (http://host:5000, databricks): a REST
        # API, not a database. Told here, where the URL is parsed, not from a driver's error.
        server = url.get_backend_name() in ("http", "https", "databricks")
        raise ValidationError(
            f"{argument}={describe_url_text(url)!r} is not a database perfledger reads: it reads "
            + ("MLflow's tracking database, not a tracking server; give the database the server "
               "stores its runs in (its --backend-store-uri): " if server else
               "an SQLite or PostgreSQL tracking database: ")
            + "sqlite:///path/mlflow.db or postgresql://user@host/db",
            [(None, argument, url.get_backend_name())],
        )
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            raise ValidationError(
                f"{argument}={describe_url_text(url)!r}: no such SQLite database file",
                [(None, argument, "no such file")],
            )
        url = url.set(database=f"{Path(url.database).resolve().as_uri()}?mode=ro", query={"uri": "true"})
    return url


def restore_advice(url: sa.URL | None) -> str:
    """What to do when the records cannot be recomputed, for the store's engine: its backups
    and the mirror files or an export, imported into a new ledger (the exact command). A
    ``.bak`` copy exists only beside an embedded (SQLite) ledger."""
    if url is not None and url.get_backend_name() == "sqlite" and url.database:
        from pathlib import Path

        directory = Path(url.database).parent
        new = directory.with_name(directory.name + "-restored")
        mirror = directory / "model_performance.json"
        return (f"restore the database from a backup (this directory keeps perfledger.db.v<N>.bak "
                f"before each upgrade), or import the mirror file into a new ledger: `perfledger "
                f"--store {new} import {mirror}`")
    return ("restore the database from a backup (pg_dump/pg_restore, or the server's own), or "
            "import an export or a ledger directory's mirror file into a new database: "
            "`perfledger --store postgresql+psycopg://USER@HOST/NEW_DB import model_performance.json`")


def driver_install_hint(url: sa.URL, missing: str | None) -> str:
    """What to do when ``url``'s PostgreSQL driver module ``missing`` is not installed.
    ``perfledger[postgres]`` brings psycopg 3, the driver of ``postgresql://``: it is the
    answer only for that URL; a URL naming another driver (``postgresql+psycopg2://``) is
    told to drop the driver name or install that driver, since the extra would not help."""
    top = (missing or "").split(".")[0]
    if top in ("", "psycopg") or url.drivername in ("postgresql", "postgresql+psycopg"):
        return "pip install 'perfledger[postgres]'"
    package = {"psycopg2": "psycopg2-binary"}.get(top, top)
    return (f"use postgresql://… (psycopg 3, which pip install 'perfledger[postgres]' brings) "
            f"instead of {url.drivername}://…, or pip install {package}")
