"""Configuration: server URIs, TOML with clear errors, Kamailio dispatcher.list."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.common.config import ConfigError
from sipha.dispatcher.config import load_config, read_dispatcher_list, resolve_servers
from sipha.dispatcher.servers import parse_server


def test_server_uri_attributes_are_read_and_stripped() -> None:
    s = parse_server("sip:127.0.0.1:5071;weight=2;maxload=9;probe=off;transport=tcp")
    assert (s.host, s.port, s.weight, s.maxload, s.probing, s.transport) == (
        "127.0.0.1", 5071, 2, 9, False, "tcp"
    )
    assert s.uri == "sip:127.0.0.1:5071;transport=tcp"
    assert s.key() == "sip:127.0.0.1:5071"
    with pytest.raises(ValueError, match="weight"):
        parse_server("sip:127.0.0.1:5071;weight=x")


def test_kamailio_dispatcher_list(tmp_path: Path) -> None:
    f = tmp_path / "dispatcher.list"
    f.write_text(
        "# setid destination flags priority attrs\n"
        "1 sip:10.0.0.1:5060 0 5 weight=3;maxload=20;duid=a\n"
        "2 sip:10.0.0.9:5060\n"
        "1 sip:10.0.0.2:5070 2 0 duid=b\n"
    )
    specs = read_dispatcher_list(f, setid=1)
    assert [(s.key(), s.weight, s.priority, s.maxload) for s in specs] == [
        ("a", 3, 5, 20), ("b", 1, 0, 0)
    ]
    f.write_text("1\n")
    with pytest.raises(ConfigError, match="line 1"):
        read_dispatcher_list(f)


def test_toml_errors_name_the_field(tmp_path: Path) -> None:
    f = tmp_path / "d.toml"
    f.write_text('algorithm = "rr"\n[[servers]]\nuri = "sip:127.0.0.1:5071"\nweigth = 2\n')
    with pytest.raises(ConfigError, match=r"servers\[0\]\.weigth"):
        load_config(f)
    f.write_text('failover_timeout = 0\n')
    with pytest.raises(ConfigError, match="failover_timeout"):
        load_config(f)
    f.write_text('[probe]\nenabled = false\n[[servers]]\nuri = "sip:127.0.0.1:5071"\nweight = 4\n')
    cfg = load_config(f)
    [spec] = resolve_servers(cfg)
    assert (spec.weight, spec.probing) == (4, False)
