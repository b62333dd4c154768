"""``host_port``: a hostport as SIP headers write it, IPv6 addresses as IPv6references."""

from __future__ import annotations

import pytest

from sipha.sip.uri import host_port, parse_uri


@pytest.mark.parametrize(("host", "port", "text"), [
    ("127.0.0.1", 5060, "127.0.0.1:5060"),
    ("::1", 5060, "[::1]:5060"),
    ("[::1]", 5060, "[::1]:5060"),
    ("2001:db8::5", None, "[2001:db8::5]"),
    ("sip.example.com", 5061, "sip.example.com:5061"),
])
def test_host_port(host: str, port: int | None, text: str) -> None:
    assert host_port(host, port) == text
    uri = parse_uri(f"sip:{text}")
    assert str(uri) == f"sip:{text}"
