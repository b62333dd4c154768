"""A scenario that cannot run is refused before any call, naming the file, line and element."""

from __future__ import annotations

import pytest

from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.loader import load_scenario, load_scenario_text

SEND = """<send><![CDATA[
  OPTIONS sip:[service]@[remote_ip] SIP/2.0
  Call-ID: [call_id]
  CSeq: 1 OPTIONS
  Content-Length: 0
]]></send>"""


def _error(xml: str, **kw: bool) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(xml, file="bad.xml", **kw)
    return info.value


def test_bad_xml_names_the_line() -> None:
    err = _error('<scenario>\n<send>\n</scenario>')
    assert (err.file, err.line) == ("bad.xml", 3)
    assert "malformed XML: mismatched tag" in str(err)


def test_unknown_action_is_named() -> None:
    err = _error(f'<scenario>\n{SEND}\n<recv response="200">\n<action>\n'
                 '  <frobnicate assign_to="x"/>\n</action></recv></scenario>')
    assert (err.line, err.element) == (10, "frobnicate")
    assert str(err) == "bad.xml:10: <frobnicate> unknown action <frobnicate>"


def test_variable_used_but_never_assigned() -> None:
    xml = SEND.replace("Content-Length: 0", "X-User: [$who]\n  Content-Length: 0")
    err = _error(f"<scenario>\n{xml}\n</scenario>")
    assert (err.line, err.element) == (6, "send")
    assert "variable $who is used but never assigned" in str(err)


def test_jump_to_a_missing_label() -> None:
    err = _error(f'<scenario>\n{SEND}\n<recv response="200" next="nowhere"/>\n</scenario>')
    assert (err.line, err.element) == (8, "recv")
    assert "jump to a missing label 'nowhere'" in str(err)
    err = _error(f'<scenario>\n{SEND}\n<nop><action><jump value="end"/></action></nop>'
                 '</scenario>')
    assert "jump to a missing label 'end'" in str(err)


@pytest.mark.parametrize(("snippet", "message"), [
    ("<sendCmd><![CDATA[x]]></sendCmd>", "3PCC (sendCmd) is not supported by sipha"),
    ("<recvCmd/>", "3PCC (recvCmd) is not supported by sipha"),
    ('<nop><action><exec command="touch /tmp/x"/></action></nop>',
     "exec command= runs shell commands: allowed only with --allow-exec"),
    ('<nop><action><exec play_pcap_audio="a.pcap"/></action></nop>',
     "unknown attribute 'play_pcap_audio' of action <exec>"),
    ('<recv response="200" bogus="1"/>', "unknown attribute 'bogus'"),
    ('<recv response="200" condexec="x"/>', "attribute 'condexec' is not supported by sipha"),
    ("<send><![CDATA[\nINVITE sip:[tdmmap] SIP/2.0\n]]></send>",
     "[tdmmap] (TDM circuit maps) is not supported by sipha"),
    ("<send><![CDATA[\nINVITE sip:[no_such_thing] SIP/2.0\n]]></send>",
     "unknown keyword [no_such_thing]"),
    ('<pause distribution="zipf" value="1"/>', "unknown distribution 'zipf'"),
    ("<dance/>", "unknown element <dance>"),
    ('<recv response="2000"/>', "response='2000' is not a status code"),
])
def test_unsupported_parts_are_named_never_ignored(snippet: str, message: str) -> None:
    err = _error(f"<scenario>\n{SEND}\n{snippet}\n</scenario>")
    assert message in str(err), str(err)
    assert err.line >= 8


def test_exec_loads_with_allow_exec() -> None:
    s = load_scenario_text(f'<scenario>{SEND}<nop><action><exec command="true"/></action>'
                           "</nop></scenario>", file="ok.xml", allow_exec=True)
    assert len(s.steps) == 2


def test_missing_file_and_entity_bombs() -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario("/nonexistent/scenario.xml")
    err = _error('<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaa">]><scenario/>')
    assert "entity declaration 'a' refused" in str(err)


def test_every_keyword_the_loader_accepts_has_a_renderer() -> None:
    from sipha.loadtest.scenario.context import _SIMPLE
    from sipha.loadtest.scenario.template import KEYWORDS

    assert set(_SIMPLE) == set(KEYWORDS)
