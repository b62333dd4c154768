"""The registrar's pure decisions (RFC 3261 §10.3) and its verdicts on credentials."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sipha.server.config import RegistrarConfig
from sipha.server.registrar import (
    AuthVerdict,
    Registrar,
    canonical_contact,
    ok_response,
    plan_contacts,
)
from sipha.sip import Request, build_request
from sipha.sip.auth import DigestVerifier, NonceAuthority, build_credentials
from sipha.sip.uri import parse_uri
from sipha.store import Binding, make_user, open_store

POLICY = RegistrarConfig(min_expires=60, max_expires=3600, default_expires=600)
NOW = 1_700_000_000.0


def _register(*headers: tuple[str, str]) -> Request:
    return build_request("REGISTER", "sip:sipha.local", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKr1"),
        ("From", "<sip:bob@sipha.local>;tag=f1"),
        ("To", "<sip:bob@sipha.local>"),
        ("Call-ID", "reg1"),
        ("CSeq", "1 REGISTER"),
        *headers,
    ])


def test_expiry_comes_from_the_contact_then_the_header_then_the_default() -> None:
    plan = plan_contacts(
        _register(("Contact", "<sip:bob@10.0.0.1>;expires=120, <sip:bob@10.0.0.2>"),
                  ("Expires", "300")), POLICY)
    assert plan.error is None
    assert [(c.contact, c.expires) for c in plan.changes] == [
        ("sip:bob@10.0.0.1", 120), ("sip:bob@10.0.0.2", 300)]
    plan = plan_contacts(_register(("Contact", "<sip:bob@10.0.0.1>")), POLICY)
    assert plan.changes[0].expires == 600


def test_too_brief_is_423_with_min_expires_and_too_long_is_clamped() -> None:
    plan = plan_contacts(_register(("Contact", "<sip:bob@10.0.0.1>;expires=59")), POLICY)
    assert plan.error is not None
    assert plan.error.status == 423
    assert plan.error.get("min-expires") == "60"
    plan = plan_contacts(_register(("Contact", "<sip:bob@10.0.0.1>;expires=99999")), POLICY)
    assert plan.changes[0].expires == 3600
    # Zero removes, and is never "too brief".
    plan = plan_contacts(_register(("Contact", "<sip:bob@10.0.0.1>;expires=0")), POLICY)
    assert plan.changes[0].expires == 0


def test_wildcard_needs_expires_zero_and_no_contact_is_a_query() -> None:
    assert plan_contacts(_register(("Contact", "*"), ("Expires", "0")), POLICY).wildcard
    bad = plan_contacts(_register(("Contact", "*")), POLICY)
    assert bad.error is not None
    assert bad.error.status == 400
    assert plan_contacts(_register(), POLICY).query


def test_malformed_contact_is_400_not_an_exception() -> None:
    plan = plan_contacts(_register(("Contact", "<sip:bob@10.0.0.1>;expires=soon")), POLICY)
    assert plan.error is not None
    assert plan.error.status == 400
    plan = plan_contacts(_register(("Contact", "<sip:bob@10.0.0.1")), POLICY)
    assert plan.error is not None
    assert plan.error.status == 400


def test_canonical_contact_ignores_case_and_parameter_order() -> None:
    a = canonical_contact(parse_uri("sip:bob@EXAMPLE.org:5060;transport=UDP;lr"))
    b = canonical_contact(parse_uri("SIP:bob@example.org:5060;lr;Transport=udp"))
    assert a == b == "sip:bob@example.org:5060;lr;transport=udp"
    assert canonical_contact(parse_uri("sip:Bob@example.org")) != a


def test_ok_lists_every_binding_with_remaining_expires() -> None:
    bindings = [
        Binding("bob@sipha.local", "sip:bob@10.0.0.1", NOW + 99.2, "c", 1,
                '"Bob" <sip:bob@10.0.0.1>;expires=100'),
        Binding("bob@sipha.local", "sip:bob@10.0.0.2", NOW + 600, "c", 1, "sip:bob@10.0.0.2"),
    ]
    ok = ok_response(_register(), bindings, NOW)
    assert ok.status == 200
    assert ok.get_all("contact") == ["<sip:bob@10.0.0.1>;expires=100",
                                     "<sip:bob@10.0.0.2>;expires=600"]
    assert ok.to_tag is not None


def _registrar(store_url: str = "sqlite::memory:") -> Registrar:
    verifier = DigestVerifier(NonceAuthority(b"k" * 32), "sipha.local")
    return Registrar(open_store(store_url), verifier, POLICY, "sipha.local")


def _authorized(reg: Registrar, password: str, username: str = "bob") -> Request:
    challenge = reg.verifier.challenge(NOW, salt=b"s")
    creds = build_credentials(challenge, method="REGISTER", uri="sip:sipha.local",
                              username=username, password=password, cnonce="cn")
    return _register(("Authorization", str(creds)), ("Contact", "<sip:bob@10.0.0.1>"))


def test_credential_verdicts(tmp_path: Path) -> None:
    reg = _registrar(f"sqlite:{tmp_path / 's.db'}")
    bob = make_user("bob", "sipha.local", "pw")
    request = _authorized(reg, "pw")
    creds = reg.credentials(request)
    assert reg.judge(request, None, bob, NOW) is AuthVerdict.CHALLENGE
    assert reg.judge(request, creds, None, NOW) is AuthVerdict.UNKNOWN_USER
    assert reg.judge(request, creds, bob, NOW) is AuthVerdict.OK
    # judge is pure: the nonce-count is the store's (test_handle_refuses_a_replayed_register).
    assert reg.judge(request, creds, bob, NOW) is AuthVerdict.OK
    assert reg.judge(_authorized(reg, "pw"), reg.credentials(_authorized(reg, "pw")), bob,
                     NOW + 10_000) is AuthVerdict.STALE
    wrong = _authorized(reg, "nope")
    assert reg.judge(wrong, reg.credentials(wrong), bob, NOW) is AuthVerdict.FORBIDDEN
    other = _authorized(reg, "pw", username="mallory")
    assert reg.judge(other, reg.credentials(other), bob, NOW) is AuthVerdict.FORBIDDEN
    asyncio.run(reg.store.close())


def test_handle_registers_through_the_store(tmp_path: Path) -> None:
    async def main() -> None:
        reg = _registrar(f"sqlite:{tmp_path / 's.db'}")
        await reg.store.add_user(make_user("bob", "sipha.local", "pw"))
        first = await reg.handle(_register(("Contact", "<sip:bob@10.0.0.1>")), NOW, b"s", None)
        assert first.status == 401
        ok = await reg.handle(_authorized(reg, "pw"), NOW, b"s", "udp:10.0.0.1:5060")
        assert ok.status == 200
        (binding,) = await reg.store.get_bindings("bob@sipha.local", NOW)
        assert binding.received == "udp:10.0.0.1:5060"
        assert binding.expires_at == NOW + 600
        await reg.store.close()

    asyncio.run(main())
