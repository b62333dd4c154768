"""The digest nonce key: servers of one store share a random key kept in that store, so a nonce
issued by one is accepted by another (as happens through the dispatcher); servers on another
store, same realm, refuse it (the key is not derived from anything public); a configured
``--nonce-secret`` is used as given, on any store."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from sipha.server.service import NONCE_KEY_NAME
from sipha.sip import Response
from sipha.sip.auth import build_credentials, parse_challenge
from tests.server.helpers import SipClient, add_user, server
from tests.store.helpers import run_with

USER, PASSWORD = "alice", "pw"


def with_user(url: str) -> str:
    add_user(url, USER, PASSWORD)
    return url


@pytest.fixture(params=["sqlite", "redis"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes empty stores of one backend (Redis: a fresh key prefix), the user in each."""

    def make() -> str:
        if request.param == "sqlite":
            return with_user(f"sqlite:{tmp_path / f'{uuid.uuid4().hex[:8]}.db'}")
        base: str = request.getfixturevalue("redis_url")
        return with_user(f"{base}?prefix=nk{uuid.uuid4().hex[:10]}:")

    return make


def register_across(client: SipClient, challenger: int, verifier: int) -> Response:
    """REGISTER at ``challenger``; answer its 401 to ``verifier``; the final response there."""
    ruri = "sip:127.0.0.1"
    headers = [f"Contact: <sip:{USER}@127.0.0.1:{client.port}>", "Expires: 60"]
    to = f"<sip:{USER}@127.0.0.1>"
    client.server = ("127.0.0.1", challenger)
    call_id = client.request("REGISTER", ruri, to=to, from_user=USER, headers=headers)
    first = client.recv_final()
    assert first.status == 401, first
    challenge = parse_challenge(first.get("www-authenticate") or "")
    creds = build_credentials(challenge, method="REGISTER", uri=ruri, username=USER,
                              password=PASSWORD, cnonce=f"cn{client.n}")
    client.server = ("127.0.0.1", verifier)
    client.request("REGISTER", ruri, to=to, from_user=USER, call_id=call_id, cseq=2,
                   headers=[*headers, f"Authorization: {creds}"])
    return client.recv_final()


def stored_key(url: str) -> bytes:
    # A probe candidate comes back only if no server stored a key.
    return run_with(url, lambda s: s.shared_secret(NONCE_KEY_NAME, b"probe-not-stored"))


def test_servers_on_one_store_accept_each_others_nonces(
    tmp_path: Path, new_store: Callable[[], str]
) -> None:
    url = new_store()
    with (
        server(tmp_path, store=url, name="a") as a,
        server(tmp_path, store=url, name="b") as b,
        SipClient(a.port) as ua,
    ):
        assert register_across(ua, a.port, b.port).status == 200
        assert register_across(ua, b.port, a.port).status == 200
    key = stored_key(url)
    assert key != b"probe-not-stored"
    assert len(key) == 32


def test_servers_on_other_stores_of_the_same_realm_refuse_the_nonce(
    tmp_path: Path, new_store: Callable[[], str]
) -> None:
    one, other = new_store(), new_store()
    with (
        server(tmp_path, store=one, name="a") as a,
        server(tmp_path, store=other, name="c") as c,
        SipClient(a.port) as ua,
    ):
        # c cannot check a's nonce: a fresh challenge (its own nonce), not a 200 or a 403.
        refused = register_across(ua, a.port, c.port)
        assert refused.status == 401, refused
        # Each still accepts its own.
        assert register_across(ua, c.port, c.port).status == 200
    key_one, key_other = stored_key(one), stored_key(other)
    assert b"probe-not-stored" not in (key_one, key_other)
    assert key_one != key_other


def test_configured_nonce_secret_is_used_on_any_store(tmp_path: Path) -> None:
    one = with_user(f"sqlite:{tmp_path / 'one.db'}")
    other = with_user(f"sqlite:{tmp_path / 'other.db'}")
    flag = ("--nonce-secret", "configured-secret-of-the-cluster")
    with (
        server(tmp_path, store=one, name="a", extra=flag) as a,
        server(tmp_path, store=other, name="c", extra=flag) as c,
        SipClient(a.port) as ua,
    ):
        assert register_across(ua, a.port, c.port).status == 200
    # Nothing was generated: the configured secret is the key.
    assert stored_key(one) == stored_key(other) == b"probe-not-stored"
