"""Configuration: server URIs, TOML with clear errors, Kamailio dispatcher.list."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.common.config import ConfigError
from sipha.dispatcher.config import load_config, read_dispatcher_list, resolve_servers
from sipha.dispatcher.health import HealthState
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


def test_duid_is_stripped_from_the_uri_even_when_id_is_set() -> None:
    s = parse_server("sip:127.0.0.1:5071;id=a;duid=b;transport=tcp")
    assert (s.key(), s.uri) == ("a", "sip:127.0.0.1:5071;transport=tcp")
    s = parse_server("sip:127.0.0.1:5071;duid=b")
    assert (s.key(), s.uri) == ("b", "sip:127.0.0.1:5071")


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


@pytest.mark.parametrize(
    ("flags", "state", "probing"),
    [
        ("", HealthState.ACTIVE, True),  # no flags column: probed, like ds_probing_mode=1
        ("0", HealthState.ACTIVE, False),
        ("1", HealthState.INACTIVE, False),
        ("2", HealthState.ACTIVE, False),  # trying: on Kamailio's way to inactive
        ("4", HealthState.DISABLED, False),
        ("5", HealthState.DISABLED, False),  # the operator's disable wins over inactive
        ("8", HealthState.ACTIVE, True),
        ("9", HealthState.INACTIVE, True),
        ("10", HealthState.ACTIVE, True),
        ("12", HealthState.DISABLED, True),
        ("24", HealthState.ACTIVE, True),  # 16 (no DNS A/AAAA) is ignored
    ],
)
def test_kamailio_flags_set_the_initial_state_and_probing(
    tmp_path: Path, flags: str, state: HealthState, probing: bool
) -> None:
    f = tmp_path / "dispatcher.list"
    f.write_text(f"1 sip:10.0.0.1:5060 {flags}\n")
    [spec] = read_dispatcher_list(f)
    assert (spec.state, spec.probing) == (state, probing)


def test_probe_enabled_false_turns_off_probing_whatever_the_flags(tmp_path: Path) -> None:
    lst = tmp_path / "dispatcher.list"
    lst.write_text("1 sip:10.0.0.1:5060 9\n1 sip:10.0.0.2:5060\n")
    f = tmp_path / "d.toml"
    f.write_text(f'dispatcher_list = "{lst}"\n[probe]\nenabled = false\n')
    specs = resolve_servers(load_config(f))
    assert [(s.state, s.probing) for s in specs] == [
        (HealthState.INACTIVE, False), (HealthState.ACTIVE, False)
    ]


def test_toml_field_and_uri_parameter_must_agree(tmp_path: Path) -> None:
    f = tmp_path / "d.toml"
    f.write_text('[[servers]]\nuri = "sip:127.0.0.1:5071;weight=3"\nweight = 2\n')
    with pytest.raises(ConfigError, match=r"servers\[0\]\.weight: 2 conflicts") as info:
        resolve_servers(load_config(f), source=str(f))
    assert "weight=3" in str(info.value)
    # Even an explicit weight = 1 (the default) is a conflict, not silently ignored.
    f.write_text('[[servers]]\nuri = "sip:127.0.0.1:5071;weight=3"\nweight = 1\n')
    with pytest.raises(ConfigError, match=r"servers\[0\]\.weight"):
        resolve_servers(load_config(f))
    f.write_text('[[servers]]\nuri = "sip:127.0.0.1:5071;id=a"\nid = "b"\n')
    with pytest.raises(ConfigError, match=r"servers\[0\]\.id"):
        resolve_servers(load_config(f))
    # Given once, either way, or twice with one value: accepted.
    f.write_text(
        '[[servers]]\nuri = "sip:127.0.0.1:5071;weight=3"\n'
        '[[servers]]\nuri = "sip:127.0.0.1:5072"\nweight = 2\npriority = 4\n'
        '[[servers]]\nuri = "sip:127.0.0.1:5073;weight=5;duid=c"\nweight = 5\nid = "c"\n'
    )
    specs = resolve_servers(load_config(f))
    assert [(s.key(), s.weight, s.priority) for s in specs] == [
        ("sip:127.0.0.1:5071", 3, 0), ("sip:127.0.0.1:5072", 2, 4), ("c", 5, 0)
    ]


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
