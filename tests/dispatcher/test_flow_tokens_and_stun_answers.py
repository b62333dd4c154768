"""Flow tokens round-trip and refuse forgeries; STUN binding requests get the mapped address
back (RFC 5389) and nothing else gets an answer."""

from __future__ import annotations

import ipaddress
import os
import struct

from hypothesis import given
from hypothesis import strategies as st

from sipha.dispatcher.flows import MAX_FLOW_TOKEN, read_flow_token, write_flow_token
from sipha.transport import Peer
from sipha.transport.stun import MAGIC_COOKIE, binding_response, looks_like_stun

SECRET = b"pair-secret-0123"

hosts = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str),
)
peers = st.builds(Peer, st.sampled_from(["udp", "tcp", "tls"]), hosts,
                  st.integers(min_value=0, max_value=65535))


@given(peers)
def test_a_token_names_its_flow_and_fits_a_uri_user_part(peer: Peer) -> None:
    token = write_flow_token(peer, SECRET)
    assert len(token) <= MAX_FLOW_TOKEN
    assert token.isalnum()
    assert token == token.lower()
    assert read_flow_token(token, SECRET) == peer


BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


@given(peers, st.integers(min_value=0, max_value=40), st.sampled_from(BASE32))
def test_a_changed_character_or_another_secret_is_refused(peer: Peer, at: int, char: str) -> None:
    token = write_flow_token(peer, SECRET)
    assert read_flow_token(token, b"another-secret-0") is None
    i = at % len(token)
    forged = token[:i] + char + token[i + 1:]
    if forged != token:
        # base32's last character may carry unused bits: a change there can decode alike.
        assert read_flow_token(forged, SECRET) in (None, peer)


@given(st.text(max_size=80))
def test_any_text_reads_as_a_flow_or_none_without_raising(text: str) -> None:
    assert read_flow_token(text, SECRET) is None


def _request(txid: bytes, attrs: bytes = b"") -> bytes:
    return struct.pack("!HHI12s", 1, len(attrs), MAGIC_COOKIE, txid) + attrs


def _mapped(answer: bytes, txid: bytes) -> tuple[str, int]:
    kind, length, cookie, tx = struct.unpack_from("!HHI12s", answer)
    assert (kind, cookie, tx) == (0x0101, MAGIC_COOKIE, txid)
    assert length == len(answer) - 20
    atype, alen = struct.unpack_from("!HH", answer, 20)
    assert atype == 0x0020
    family, xport = struct.unpack_from("!xBH", answer, 24)
    port = xport ^ (MAGIC_COOKIE >> 16)
    raw = answer[28: 28 + (4 if family == 1 else 16)]
    mask = struct.pack("!I", MAGIC_COOKIE) + (b"" if family == 1 else txid)
    ip = bytes(a ^ b for a, b in zip(raw, mask, strict=True))
    assert struct.unpack_from("!H", answer, 24 + alen)[0] == 0x8028  # FINGERPRINT last
    return str(ipaddress.ip_address(ip)), port


@given(hosts, st.integers(min_value=1, max_value=65535), st.binary(min_size=12, max_size=12))
def test_a_binding_request_learns_the_address_it_came_from(host: str, port: int,
                                                           txid: bytes) -> None:
    answer = binding_response(_request(txid), host, port)
    assert answer is not None
    assert _mapped(answer, txid) == (str(ipaddress.ip_address(host)), port)


def test_software_attribute_is_fine_but_unknown_required_ones_and_junk_get_nothing() -> None:
    txid = os.urandom(12)
    software = struct.pack("!HH", 0x8022, 7) + b"baresip\x00"
    assert binding_response(_request(txid, software), "127.0.0.1", 5060) is not None
    username = struct.pack("!HH", 0x0006, 4) + b"user"
    assert binding_response(_request(txid, username), "127.0.0.1", 5060) is None
    assert binding_response(_request(txid)[:-1], "127.0.0.1", 5060) is None
    response = struct.pack("!HHI12s", 0x0101, 0, MAGIC_COOKIE, txid)
    assert binding_response(response, "127.0.0.1", 5060) is None  # never answer an answer
    assert not looks_like_stun(b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    assert binding_response(_request(txid, b"\x80\x22\x00\x10" + b"x" * 600), "::1", 1) is None


@given(st.binary(max_size=200))
def test_any_datagram_is_answered_or_not_without_raising(data: bytes) -> None:
    answer = binding_response(data, "127.0.0.1", 5060)
    assert answer is None or len(answer) <= len(data) + 32
