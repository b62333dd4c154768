"""Whatever arrives on the socket, the engine counts it and never raises; whatever XML a user
writes, the loader raises only ScenarioError."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipha.loadtest.scenario.builtin import builtin_text
from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.loader import load_scenario_text
from tests.loadtest.scenario.helpers import B, engine

HEADERS = st.sampled_from([
    "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1", "From: <sip:a@b>;tag=1", "To: <sip:c@d>",
    "Call-ID: 1-7@127.0.0.1", "Call-ID: other", "i: 1-7@127.0.0.1", "CSeq: 1 INVITE",
    "CSeq: x", "CSeq: 2 BYE", "Content-Length: 5", "Record-Route: <sip:p;lr>", "X: [$1]",
    "WWW-Authenticate: Digest realm=\"r\"", "Contact: <sip:x@y>", " folded", "no colon",
])
START = st.sampled_from(["SIP/2.0 200 OK", "SIP/2.0 100 Trying", "SIP/2.0 2000 X",
                         "BYE sip:x SIP/2.0", "ACK sip:x SIP/2.0", "INVITE sip:x SIP/2.0",
                         "CANCEL sip:x SIP/2.0", "garbage", ""])


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    lines = [draw(START), *draw(st.lists(HEADERS, max_size=8))]
    body = draw(st.text(max_size=20))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Raw bytes drawn as integers: hypothesis's cache compares the choices of one_of's branches,
# and bytes against int is an error under python -bb.
@given(st.lists(st.one_of(messages(), st.lists(st.integers(0, 255), max_size=200).map(bytes)),
                max_size=6),
       st.sampled_from(["uac", "uas", "regexp", "branchc", "branchs"]))
def test_engine_never_raises_on_received_bytes(datagrams: list[bytes], name: str) -> None:
    e = engine(builtin_text(name).decode())
    if e.scenario.client:
        e.start_call(0.0)
    now = 0.0
    for data in datagrams:
        now += 0.1
        e.receive(data, B, now)
        e.advance(now)
    e.advance(100.0)
    s = e.stats
    assert s.created == s.successful + s.failed_calls + e.current_calls


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_loader_raises_only_scenario_error(text: str) -> None:
    xml = f"<scenario><send><![CDATA[\nINVITE sip:x SIP/2.0\n{text}\n]]></send>{text}</scenario>"
    with contextlib.suppress(ScenarioError):
        load_scenario_text(xml, file="fuzz.xml")
