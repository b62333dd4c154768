"""SIPp's -oocsf: a request for no call of a client scenario runs the out-of-call scenario
(here: answer OPTIONS 200); without one it is discarded and counted; responses for no call
are always discarded."""

from __future__ import annotations

from sipha.loadtest.scenario.loader import load_scenario_text
from tests.loadtest.scenario.helpers import B, engine
from tests.loadtest.scenario.test_interpreter_paths_and_timings_virtual_time import INVITE

CLIENT = f"<scenario>{INVITE}<recv response='200'/></scenario>"
OOC = """<scenario name="answer pings">
  <recv request="OPTIONS"/>
  <send><![CDATA[
    SIP/2.0 200 OK
    [last_Via:]
    [last_From:]
    [last_To:];tag=ooc[call_number]
    [last_Call-ID:]
    [last_CSeq:]
    Content-Length: 0
  ]]></send>
</scenario>"""
OPTIONS = (b"OPTIONS sip:sipha@127.0.0.1 SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKo\r\n"
           b"From: <sip:probe@x>;tag=p\r\nTo: <sip:sipha@127.0.0.1>\r\nCall-ID: ping-1\r\n"
           b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def test_requests_for_no_call_run_the_out_of_call_scenario() -> None:
    ooc = load_scenario_text(OOC, file="ooc.xml")
    e = engine(CLIENT)
    e = type(e)(e.scenario, e.config, rng=e.rng, out_of_call=ooc)
    e.start_call(0.0)
    e.take_outgoing()
    e.receive(OPTIONS, B, 0.1)
    out = e.take_outgoing()
    assert len(out) == 1
    assert out[0].data.startswith(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5062")
    assert b"To: <sip:sipha@127.0.0.1>;tag=ooc2\r\n" in out[0].data
    assert out[0].dest == B
    assert e.ooc_stats is not None
    assert (e.ooc_stats.created, e.ooc_stats.successful) == (1, 1)
    assert (e.stats.created, e.stats.out_of_call) == (1, 0)  # the main call is untouched
    assert e.current_calls == 1


def test_without_one_they_are_discarded_and_counted() -> None:
    e = engine(CLIENT)
    e.receive(OPTIONS, B, 0.1)
    e.receive(OPTIONS.replace(b"OPTIONS sip:sipha@127.0.0.1 SIP/2.0", b"SIP/2.0 200 OK"), B, 0.2)
    assert e.take_outgoing() == []
    assert e.stats.out_of_call == 2
