"""A dashboard the team can share: who may write from the page (issue 21, part 3).

Served on loopback the page offers its writes; served on any other address (Streamlit's
``server.address``, as ``perfledger dashboard --address`` or ``streamlit run
--server.address`` sets it) no write action exists on the page unless the operator allowed
it, and the page says which mode it is in and why. With ``allow_writes_for`` only the named
signed-in users (``st.user``, mocked through AppTest) get them. Driven headlessly with
AppTest; the real server, a fresh clone and Chromium are in tests/test_dashboard_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

from helpers import start_page
from streamlit import config
from streamlit.testing.v1 import AppTest

from perfledger import Ledger
from perfledger.dashboard.access import decide, is_loopback, parse_writers
from perfledger.sample import sample_records

ROOT = Path(__file__).resolve().parents[1]
#: Every widget that writes, and the inputs of the log form.
WRITES = {"add_sample", "first_run_sample", "clear", "confirm_clear", "log_submit", "log_model",
          "log_ticker", "register_higher", "register_lower"}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    loc = tmp_path / "ledger"
    with Ledger(loc) as led:
        led.log_many(sample_records(evaluations=3, random_state=1))
        led.log("Custom", "AAPL", sharpe=1.0, metrics={"sortino": 2.0})  # a direction prompt
    monkeypatch.setenv("PERFLEDGER_URL", str(loc))
    for var in ("PERFLEDGER_READ_ONLY", "PERFLEDGER_ALLOW_WRITES", "PERFLEDGER_ALLOW_WRITES_FOR"):
        monkeypatch.delenv(var, raising=False)
    return loc


@pytest.fixture
def served_on() -> Iterator[object]:
    """Set Streamlit's ``server.address`` as ``--server.address`` would (restored after)."""
    before = config.get_option("server.address")
    yield lambda address: config.set_option("server.address", address)
    config.set_option("server.address", before)


def widget_keys(at: AppTest) -> set[str]:
    out: set[str] = set()
    for kind in ("button", "checkbox", "text_input", "number_input", "text_area"):
        out |= {w.key for w in getattr(at, kind) if w.key}
    return out


def run(metric: str | None = None, *, user: dict[str, object] | None = None,
        secrets: dict[str, object] | None = None) -> AppTest:
    at = start_page(user=user, secrets=secrets)
    if metric is not None:
        at.sidebar.selectbox(key="metric").select(metric).run()
        assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.sidebar.caption).replace("\\", "")


def test_on_loopback_every_write_is_offered_and_the_page_says_why(store: Path, served_on) -> None:
    served_on("127.0.0.1")
    at = run("sortino")
    assert WRITES - {"first_run_sample"} <= widget_keys(at)
    assert "Writes enabled: served on 127.0.0.1" in captions(at)


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.0.2.7", "::", "dashboard.example.org"])
def test_beyond_loopback_no_write_action_exists(store: Path, served_on, address: str) -> None:
    served_on(address)
    at = run("sortino")  # a custom metric without a direction: the prompt, without its buttons
    assert not widget_keys(at) & WRITES
    assert not [b for b in at.sidebar.button]  # no button at all in the sidebar
    text = captions(at)
    assert "Read-only: served on" in text and "beyond this machine" in text and "--allow-writes" in text
    assert (address or "every interface") in text
    assert len(at.tabs) == 4  # everything else is shown


def test_an_empty_ledger_beyond_loopback_offers_no_sample_button(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served_on) -> None:
    monkeypatch.setenv("PERFLEDGER_URL", str(tmp_path / "empty"))
    monkeypatch.delenv("PERFLEDGER_ALLOW_WRITES", raising=False)
    monkeypatch.delenv("PERFLEDGER_READ_ONLY", raising=False)
    served_on("0.0.0.0")
    at = run()
    assert not widget_keys(at) & WRITES
    assert not (tmp_path / "empty" / "perfledger.db").exists() or Ledger(tmp_path / "empty").stats()[
        "records"] == 0


def test_allow_writes_offers_writes_beyond_loopback_with_a_warning(
        store: Path, served_on, monkeypatch: pytest.MonkeyPatch) -> None:
    served_on("0.0.0.0")
    monkeypatch.setenv("PERFLEDGER_ALLOW_WRITES", "1")  # what `perfledger dashboard --allow-writes` sets
    at = run()
    assert {"add_sample", "clear", "log_submit"} <= widget_keys(at)
    assert "Writes enabled for anyone who can open this page" in captions(at)
    at.sidebar.checkbox(key="confirm_clear").check().run()
    at.sidebar.button(key="clear").click().run()  # the write works
    with Ledger(store) as led:
        assert led.stats()["records"] == 0


def test_read_only_env_wins_over_allow_writes(
        store: Path, served_on, monkeypatch: pytest.MonkeyPatch) -> None:
    served_on("127.0.0.1")
    monkeypatch.setenv("PERFLEDGER_ALLOW_WRITES", "1")
    monkeypatch.setenv("PERFLEDGER_READ_ONLY", "1")
    at = run()
    assert not widget_keys(at) & WRITES
    assert "PERFLEDGER_READ_ONLY is set" in captions(at)


WRITERS = {"perfledger": {"allow_writes_for": ["alice@example.org", "Bob@Example.org"]}}


@pytest.mark.parametrize("address", ["0.0.0.0", "127.0.0.1"])
def test_allow_writes_for_named_signed_in_users_only(store: Path, served_on, address: str) -> None:
    served_on(address)
    alice = run(user={"is_logged_in": True, "email": "alice@example.org", "name": "Alice"}, secrets=WRITERS)
    assert {"add_sample", "clear", "log_submit"} <= widget_keys(alice)
    assert "Writes enabled for alice@example.org" in captions(alice)
    alice.sidebar.text_input(key="log_model").input("ByAlice")
    alice.sidebar.text_input(key="log_ticker").input("AAPL")
    alice.sidebar.number_input(key="log_sharpe").set_value(1.5)
    alice.sidebar.button(key="log_submit").click().run()
    assert not alice.exception
    with Ledger(store) as led:
        assert "ByAlice" in set(led.history(ticker="AAPL")["model_name"])
    bob = run(user={"is_logged_in": True, "email": "bob@example.org"}, secrets=WRITERS)
    assert {"clear", "log_submit"} <= widget_keys(bob)  # the list ignores case
    for user in ({"is_logged_in": True, "email": "mallory@example.org"}, {"is_logged_in": False},
                 {"email": "alice@example.org"}):  # not signed in: an e-mail alone is not a sign-in
        at = run(user=user, secrets=WRITERS)
        assert not widget_keys(at) & WRITES, user
        assert "writes are allowed only for alice@example.org, bob@example.org" in captions(at)


def test_allow_writes_for_from_the_environment(
        store: Path, served_on, monkeypatch: pytest.MonkeyPatch) -> None:
    served_on("0.0.0.0")
    monkeypatch.setenv("PERFLEDGER_ALLOW_WRITES_FOR", "carol@example.org")
    assert "clear" in widget_keys(run(user={"is_logged_in": True, "email": "carol@example.org"}))
    assert "clear" not in widget_keys(run(user={"is_logged_in": True, "email": "dave@example.org"}))


AUTH = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                 "client_id": "perfledger", "client_secret": "s",
                 "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}}


def test_with_oidc_configured_the_page_is_for_signed_in_users_only(store: Path, served_on) -> None:
    """``[auth]`` in secrets.toml: a visitor who is not signed in sees a Sign in button and
    nothing of the ledger; a signed-in one sees the page and who they are; with
    allow_writes_for too, only the named ones get the writes."""
    served_on("0.0.0.0")
    visitor = run(user={"is_logged_in": False}, secrets=AUTH)
    assert [b.key for b in visitor.button] == ["sign_in"]
    assert len(visitor.tabs) == 0 and not visitor.dataframe
    assert str(store) not in " ".join(str(c.value) for c in visitor.caption)
    signed = {**AUTH, **WRITERS}
    carol = run(user={"is_logged_in": True, "email": "carol@example.org"}, secrets=signed)
    assert len(carol.tabs) == 4 and "sign_out" in widget_keys(carol)
    assert "Signed in as carol@example.org" in captions(carol)
    assert not widget_keys(carol) & WRITES
    alice = run(user={"is_logged_in": True, "email": "alice@example.org"}, secrets=signed)
    assert {"clear", "log_submit"} <= widget_keys(alice)


def test_the_documented_secrets_toml_does_what_docs_deployment_says(store: Path, served_on) -> None:
    """The ``[auth]`` + ``allow_writes_for`` block of docs/deployment.md, read from the file."""
    import re
    import tomllib

    text = (ROOT / "docs" / "deployment.md").read_text()
    block = re.findall(r"```toml\n(.*?)```", text[text.index("### Authentication"):], flags=re.S)[0]
    secrets = tomllib.loads(block)
    served_on("0.0.0.0")
    assert [b.key for b in run(user={"is_logged_in": False}, secrets=secrets).button] == ["sign_in"]
    bob = run(user={"is_logged_in": True, "email": "Bob@Example.org"}, secrets=secrets)
    assert {"clear", "log_submit", "add_sample"} <= widget_keys(bob)
    eve = run(user={"is_logged_in": True, "email": "eve@example.org"}, secrets=secrets)
    assert len(eve.tabs) == 4 and not widget_keys(eve) & WRITES


# ---------------------------------------------------------------------------- the rule itself


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("10.0.0.5", False),
    ("myhost", False), ("localhost.evil.org", False),
])
def test_is_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_decide() -> None:
    assert decide(address="127.0.0.1").writable
    assert not decide(address="127.0.0.1", proxied=True).writable  # a reverse proxy on this host
    assert "through a reverse proxy" in decide(address="127.0.0.1", proxied=True).reason
    assert decide(address="127.0.0.1", proxied=True, allow_writes=True).writable
    assert not decide(address="0.0.0.0").writable
    assert decide(address="0.0.0.0", allow_writes=True).writable
    assert not decide(address="127.0.0.1", allow_writes=True, ledger_read_only=True).writable
    assert not decide(address="127.0.0.1", env_read_only=True).writable
    w = ("a@x",)
    assert not decide(address="127.0.0.1", writers=w).writable  # nobody signed in
    assert "no sign-in is configured" in decide(address="0.0.0.0", writers=w).reason
    assert decide(address="0.0.0.0", writers=w, logged_in=True, user_email="A@X").writable
    assert not decide(address="0.0.0.0", writers=w, logged_in=True, user_email="b@x").writable
    assert not decide(address="0.0.0.0", writers=w, logged_in=True, user_email="a@x",
                      env_read_only=True).writable
    assert parse_writers("a@x, B@y;c@z") == ("a@x", "b@y", "c@z")
    assert parse_writers(["a@x", " "]) == ("a@x",)


# ---------------------------------------------------------------------------- the real socket


def listening(port: int) -> set[str]:
    """Addresses a TCP socket listens on for ``port``, from /proc/net/tcp{,6} (state 0A)."""
    import ipaddress

    out: set[str] = set()
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state != "0A" or int(hexport, 16) != port:
                continue
            raw = bytes.fromhex(addr)  # 32-bit words in host (little-endian) order
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, size, 4))
            out.add(str(ipaddress.ip_address(words)))
    return out


@pytest.mark.slow
def test_a_fresh_clone_serves_the_seed_command_on_loopback_only(tmp_path: Path) -> None:
    """``streamlit run pages/Model_Performance_Dashboard.py`` from a fresh clone of this
    commit, with no address given, listens on 127.0.0.1 only (Streamlit's own default is every
    interface): the repository's .streamlit/config.toml says so."""
    import os
    import shutil
    import subprocess
    import sys
    import time

    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: the clone test needs a git checkout")
        pytest.skip("not a git checkout")
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp on this system")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", head], check=True)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERFLEDGER_", "STREAMLIT_"))}
    env["HOME"] = str(tmp_path)  # no user-level ~/.streamlit/config.toml either
    log = (tmp_path / "streamlit.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "pages/Model_Performance_Dashboard.py",
         "--server.port", str(port), "--server.fileWatcherType", "none"],
        cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not listening(port) and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "streamlit.log").read_text()
            time.sleep(0.2)
        assert listening(port) == {"127.0.0.1"}, (tmp_path / "streamlit.log").read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
