"""The authorization table (policy.py) over every combination of its inputs, the dialog token,
and the judgement of a request relayed by the cluster's edge (by the client it names)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sipha.server.policy import (
    Cause,
    Source,
    Target,
    TrustedPeers,
    Verdict,
    decide,
    dialog_token,
    dialog_token_valid,
    originating_addresses,
)
from sipha.sip import Request, parse_message
from sipha.sip.uri import SipUri, parse_uri

SECRET = b"k" * 32


def _all() -> list[tuple[Source, Target, bool, bool, bool]]:
    return list(itertools.product(Source, Target, (False, True), (False, True), (False, True)))


def test_every_combination_has_an_answer_with_a_cause() -> None:
    for source, target, dialog, auth, from_local in _all():
        d = decide(source=source, target=target, dialog=dialog, auth=auth, from_local=from_local)
        assert isinstance(d.verdict, Verdict)
        assert isinstance(d.cause, Cause)
        # Who authorised it is always named, and only an ALLOW names an authority.
        allowing = {Cause.TRUSTED_PEER, Cause.CLUSTER, Cause.DIALOG, Cause.AUTH_OFF}
        assert (d.verdict is Verdict.ALLOW) == (d.cause in allowing)


def test_nobody_relays_to_a_foreign_host_unauthorised() -> None:
    for _, target, dialog, auth, from_local in _all():
        d = decide(source=Source.OUTSIDE, target=target, dialog=dialog, auth=auth,
                   from_local=from_local)
        if target is Target.FOREIGN and not dialog:
            # Never forwarded as is: a challenge at most (then the From user's digest).
            assert d.verdict is not Verdict.ALLOW
            if not (auth and from_local):
                assert d == decide(source=Source.OUTSIDE, target=target, dialog=False,
                                   auth=False, from_local=False)
                assert d.verdict is Verdict.FORBID


def test_trusted_peers_and_dialogs_pass_and_authentication_guards_local_users() -> None:
    for source, target, dialog, auth, from_local in _all():
        d = decide(source=source, target=target, dialog=dialog, auth=auth, from_local=from_local)
        if source is not Source.OUTSIDE or dialog:
            assert d.verdict is Verdict.ALLOW
        elif target is Target.LOCAL:
            assert d.verdict is (Verdict.CHALLENGE if auth else Verdict.ALLOW)


def _bye(route: str, from_tag: str = "caller", to_tag: str = "callee") -> Request:
    raw = (
        "BYE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
        f"Route: {route}\r\nFrom: <sip:a@x>;tag={from_tag}\r\nTo: <sip:b@y>;tag={to_tag}\r\n"
        "Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    msg = parse_message(raw.encode())
    assert isinstance(msg, Request)
    return msg


def _route(ftag: str, token: str) -> str:
    return f"<sip:192.0.2.1:5060;lr;ftag={ftag};sphd={token}>"


def test_dialog_token_both_directions_and_nothing_else() -> None:
    token = dialog_token(SECRET, "call-1", "caller")
    for request in (_bye(_route("caller", token)),  # the caller's requests
                    _bye(_route("caller", token), from_tag="callee", to_tag="caller")):
        uri = request.routes[0].uri
        assert isinstance(uri, SipUri)
        assert dialog_token_valid(SECRET, request, uri)
    for bad in (
        _bye(_route("caller", token), from_tag="other", to_tag="x"),  # another dialog's tags
        _bye(_route("caller", dialog_token(b"o" * 32, "call-1", "caller"))),  # another key
        _bye(_route("caller", token[:-1] + "0" if token[-1] != "0" else token[:-1] + "1")),
        _bye("<sip:192.0.2.1:5060;lr>"),
    ):
        uri = bad.routes[0].uri
        assert isinstance(uri, SipUri)
        assert not dialog_token_valid(SECRET, bad, uri)


@given(st.text(max_size=40), st.text(max_size=40))
def test_dialog_token_never_raises_for_any_parameters(ftag: str, token: str) -> None:
    uri = parse_uri("sip:192.0.2.1;lr")
    assert isinstance(uri, SipUri)
    forged = SipUri(scheme=uri.scheme, user=None, host=uri.host, port=None,
                    params={"lr": None, "ftag": ftag, "sphd": token})
    assert not dialog_token_valid(SECRET, _bye("<sip:192.0.2.1;lr>"), forged) or (
        token == dialog_token(SECRET, "call-1", ftag)
    )


def test_a_client_behind_the_edge_is_judged_by_the_addresses_the_edge_stamped() -> None:
    trusted = TrustedPeers(["10.0.0.0/24"])
    head = "MESSAGE sip:b@y SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKedge\r\n"
    tail = ("From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n"
            "Content-Length: 0\r\n\r\n")

    def client(via: str | None) -> tuple[str, ...] | None:
        raw = head + (f"Via: {via}\r\n" if via else "") + tail
        msg = parse_message(raw.encode())
        assert isinstance(msg, Request)
        return originating_addresses(msg)

    assert client(None) is None  # the edge's own request
    honest = client("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKc")
    assert honest == ("10.0.0.5",)
    assert all(a in trusted for a in honest)
    # A forged received cannot hide the real source; a forged sent-by is overwritten by the
    # edge's received: either way one address is untrusted.
    for via in ("SIP/2.0/UDP 198.51.100.7;received=10.0.0.5;branch=z9hG4bKc",
                "SIP/2.0/UDP 10.0.0.5;received=198.51.100.7;branch=z9hG4bKc"):
        addresses = client(via)
        assert addresses is not None
        assert not all(a in trusted for a in addresses)
    assert "example.com" not in trusted  # names are never trusted
