"""Server configuration: TOML plus flags, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.common.config import ConfigError
from sipha.server.config import load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(text)
    return path


def test_file_values_and_flag_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, """
server_id = "s1"
domain = "example.org"
listen = ["udp:127.0.0.1:5070"]
store = "sqlite:/tmp/x.db"
[registrar]
min_expires = 30
[[answer]]
pattern = "service"
action = "busy"
""")
    cfg = load_config(path)
    assert cfg.server_id == "s1"
    assert cfg.effective_realm == "example.org"
    assert cfg.registrar.min_expires == 30
    assert cfg.answer[0].action == "busy"
    cfg = load_config(path, {"listen": ["tcp:127.0.0.1:6000"], "store": None, "http": "1.2.3.4:8"})
    assert cfg.listen == ["tcp:127.0.0.1:6000"]
    assert cfg.store == "sqlite:/tmp/x.db"  # None leaves the file's value
    assert cfg.http == "1.2.3.4:8"


def test_nonce_key_is_the_configured_secret_or_none_never_derived_from_the_realm() -> None:
    # None: the server takes the cluster's random key from the store (see
    # test_nonce_key_shared_through_the_store.py); nothing here may depend on the realm.
    assert load_config(None, {"domain": "d.example"}).nonce_key is None
    assert load_config(None, {"nonce_secret": "x" * 16}).nonce_key == b"x" * 16


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('listen = ["udp:127.0.0.1"]', "listen[0]"),
        ('listen = "udp:127.0.0.1:5060"', "listen"),
        ("record_route = 3", "record_route"),
        ('domain = "a b"', "domain"),
        ('http = "nohost"', "http"),
        ("lisen = []", "lisen"),
        ("[registrar]\nmin_expires = 0", "registrar.min_expires"),
        ("[registrar]\nmin_expires = 100\nmax_expires = 50", "registrar.min_expires"),
        ("[registrar]\ndefault_expires = 5", "registrar.default_expires"),
        ('auth = "maybe"', "auth"),
        ('auth_methods = ["ACK"]', "auth_methods[0]"),
        ('trusted = ["10.0.0.0/33"]', "trusted[0]"),
        ('trusted = ["gw.example.com"]', "trusted[0]"),
        ('aliases = ["vip:99999"]', "aliases[0]"),
        ('aliases = ["a b"]', "aliases[0]"),
        ('dns_servers = ["127.0.0.1"]', "dns_servers[0]"),
        ("dns_timeout = 0", "dns_timeout"),
        ('[[answer]]\npattern = "("', "answer[0].pattern"),
        ('[[answer]]\npattern = "s"\n[[answer]]\npattern = "t"\naction = "hangup"',
         "answer[1].action"),
        ('[[answer]]\npattern = "s"\nmax_hold = 0', "answer[0].max_hold"),
        ("[[answer]]\naction = \"busy\"", "answer[0].pattern"),
        ("[timers]\nt1 = 5.0\nt2 = 1.0", "timers"),
        ('nonce_secret = "short"', "nonce_secret"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == field
    assert str(path) in str(info.value)


def test_bad_flag_is_reported_as_such() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"listen": ["sctp:127.0.0.1:5060"]})
    assert info.value.field == "listen[0]"
    assert info.value.source == "flags"
