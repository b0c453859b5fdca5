"""Who may write from the dashboard page, and the one sentence that says why.

A page anyone on the network can open must not offer them "Clear all data". The page decides
from what the operator chose, read at every run:

* ``$PERFLEDGER_READ_ONLY`` set, or a ledger this user may only read: read-only, always.
* ``allow_writes_for`` configured (``[perfledger]`` in ``.streamlit/secrets.toml`` or
  ``$PERFLEDGER_ALLOW_WRITES_FOR``, e-mail addresses): writes only for a signed-in user
  (``st.user``, Streamlit's OIDC ``st.login``) who is on the list, wherever the page is served.
* Served on a loopback address (``127.0.0.1``, ``::1``, ``localhost``) and not reached
  through a reverse proxy: writes, as for one researcher on their own machine.
* Served on any other address (Streamlit's ``server.address``, as ``perfledger dashboard
  --address`` or ``streamlit run --server.address`` set it; unset means every interface), or
  reached through a proxy (``X-Forwarded-For``/``Forwarded`` on the request): read-only,
  unless the operator passed ``--allow-writes`` (``$PERFLEDGER_ALLOW_WRITES=1``, or
  ``streamlit run page.py -- --allow-writes``).

With Streamlit's OIDC sign-in configured (``[auth]`` in ``.streamlit/secrets.toml``) the page
is for signed-in users only: :func:`sign_in_gate` shows a "Sign in" button (``st.login``) and
nothing of the ledger until the provider says who is there.

The decision is a pure function (:func:`decide`) of those inputs, so it is tested on its own;
:func:`current` gathers them from Streamlit and the environment.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

READ_ONLY_ENV = "PERFLEDGER_READ_ONLY"
ALLOW_WRITES_ENV = "PERFLEDGER_ALLOW_WRITES"
ALLOW_WRITES_FOR_ENV = "PERFLEDGER_ALLOW_WRITES_FOR"
ALLOW_WRITES_FLAG = "--allow-writes"
SECRETS_SECTION = "perfledger"
_TRUE = ("1", "true", "yes", "on")
_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


@dataclass(frozen=True)
class Access:
    """Whether this page offers writes, and why (shown on the page as is)."""

    writable: bool
    reason: str


def is_loopback(address: str | None) -> bool:
    """True for an address only this machine can reach. ``None``/``""`` (Streamlit's default)
    binds every interface; a host name other than ``localhost`` may resolve anywhere."""
    if not address:
        return False
    host = address.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def parse_writers(value: Any) -> tuple[str, ...]:
    """``["alice@x", "Bob@Y"]`` or ``"alice@x, bob@y"`` → lower-cased e-mail addresses."""
    items: Iterable[Any] = value.replace(";", ",").split(",") if isinstance(value, str) else value or ()
    return tuple(sorted({str(v).strip().lower() for v in items if str(v).strip()}))


def decide(
    *,
    address: str | None,
    proxied: bool = False,
    allow_writes: bool = False,
    writers: tuple[str, ...] = (),
    user_email: str | None = None,
    logged_in: bool = False,
    auth_configured: bool = False,
    env_read_only: bool = False,
    ledger_read_only: bool = False,
) -> Access:
    """The page's mode from the operator's choices and the request (see the module doc)."""
    if env_read_only:
        return Access(False, f"🔒 Read-only mode (${READ_ONLY_ENV} is set): logging, sample data "
                             "and clearing are disabled.")
    if ledger_read_only:
        return Access(False, "🔒 Read-only: this user may not write this ledger, so logging, sample "
                             "data and clearing are disabled.")
    if writers:
        who = ", ".join(writers)
        if not auth_configured and not logged_in:
            return Access(False, f"🔒 Read-only: writes are allowed only for {who}, and no sign-in "
                                 "is configured ([auth] in .streamlit/secrets.toml).")
        if not logged_in:
            return Access(False, f"🔒 Read-only: writes are allowed only for {who}; sign in to write.")
        email = (user_email or "").strip().lower()
        if email in writers:
            return Access(True, f"✏️ Writes enabled for {email} (one of the named writers).")
        return Access(False, f"🔒 Read-only: signed in as {email or 'a user without an e-mail'}; "
                             f"writes are allowed only for {who}.")
    shown = address or "every interface"
    if is_loopback(address) and not proxied:
        return Access(True, f"✏️ Writes enabled: served on {shown}, reachable from this machine only.")
    where = "through a reverse proxy" if proxied and is_loopback(address) else f"on {shown}"
    if allow_writes:
        return Access(True, f"⚠️ Writes enabled for anyone who can open this page: served {where} "
                            f"and started with {ALLOW_WRITES_FLAG}.")
    return Access(False, f"🔒 Read-only: served {where}, beyond this machine. The operator can "
                         f"start it with {ALLOW_WRITES_FLAG} (or ${ALLOW_WRITES_ENV}=1) to offer "
                         "writes, or name the users who may write (allow_writes_for).")


def _secrets_section() -> Mapping[str, Any]:
    import streamlit as st

    try:
        section = st.secrets.get(SECRETS_SECTION)
    except Exception:  # no secrets.toml at all, or an unreadable one: nothing configured
        return {}
    return section if isinstance(section, Mapping) else {}


def _auth_configured() -> bool:
    import streamlit as st

    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file, or one this user may not read: no sign-in configured
        return False


def sign_in_gate() -> None:
    """With ``[auth]`` configured, stop the page for anyone not signed in (a "Sign in" button,
    nothing of the ledger); for a signed-in user, say who and offer "Sign out". Without
    ``[auth]`` it does nothing (authentication then is a reverse proxy's job, or nobody's)."""
    import streamlit as st

    from .formatting import md

    if not _auth_configured():
        return
    user = _user()
    if user.get("is_logged_in") is True:
        with st.sidebar:
            st.caption(f"Signed in as {md(user.get('email') or user.get('name') or 'an unnamed user')}")
            st.button("Sign out", key="sign_out", on_click=st.logout)
        return
    st.title("📈 Model Performance Dashboard")
    st.info("Sign in to see this ledger.")
    st.button("Sign in", key="sign_in", type="primary", on_click=st.login)
    st.stop()


def _user() -> dict[str, Any]:
    """``st.user`` as a dict; empty when it cannot be read (Streamlit reads the secrets file
    to answer, and a user who may not read it is simply nobody signed in)."""
    import streamlit as st

    try:
        return dict(st.user.to_dict())
    except Exception:
        return {}


def current(ledger_read_only: bool) -> Access:
    """The mode of this run of the page, from Streamlit's config, the request, ``st.user``,
    ``st.secrets`` and the environment."""
    import streamlit as st

    section = _secrets_section()
    headers: Mapping[str, str] = {}
    try:
        headers = {k.lower(): v for k, v in (st.context.headers or {}).items()}
    except Exception:  # no request (a bare script run)
        headers = {}
    user = _user()
    env_writers = os.environ.get(ALLOW_WRITES_FOR_ENV)
    return decide(
        address=st.get_option("server.address"),
        proxied=any(h in headers for h in _PROXY_HEADERS),
        allow_writes=truthy(os.environ.get(ALLOW_WRITES_ENV))
        or ALLOW_WRITES_FLAG in sys.argv[1:]
        or section.get("allow_writes") is True,
        writers=parse_writers(env_writers if env_writers is not None else section.get("allow_writes_for")),
        user_email=user.get("email") if isinstance(user.get("email"), str) else None,
        logged_in=user.get("is_logged_in") is True,
        auth_configured=_auth_configured(),
        env_read_only=truthy(os.environ.get(READ_ONLY_ENV)),
        ledger_read_only=ledger_read_only,
    )
