"""The interpreter on virtual time: ereg + strcmp/test + next jumps + pause distributions +
rtd give the path and timings the scenario's text implies; retransmissions, recv timeouts and
unexpected messages end calls as SIPp ends them."""

from __future__ import annotations

from pathlib import Path

from sipha.loadtest.scenario.injection import load_injection
from tests.loadtest.scenario.helpers import B, engine, pump

INVITE = """<send retrans="500"><![CDATA[
  INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
  Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
  From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]
  To: <sip:[service]@[remote_ip]:[remote_port]>
  Call-ID: [call_id]
  CSeq: [cseq] INVITE
  Content-Length: 0
]]></send>"""

REQ = """<send{attrs}><![CDATA[
  {method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
  Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
  From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]
  To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
  Call-ID: [call_id]
  CSeq: {cseq} {method}
  Content-Length: 0
]]></send>"""

CLIENT = f"""<scenario name="paths">
  {INVITE}
  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="plan=([a-z]+)" search_in="hdr" header="X-Plan:" check_it="true"
            assign_to="all,plan"/>
      <strcmp assign_to="cmp" variable="plan" value="gold"/>
      <test assign_to="gold" variable="cmp" compare="equal" value="0"/>
    </action>
  </recv>
  {REQ.format(attrs="", method="ACK", cseq="[cseq]")}
  <nop next="gold_path" test="gold" counter="gold_calls"/>
  <pause milliseconds="1000"/>
  <nop next="hangup"/>
  <label id="gold_path"/>
  <pause distribution="uniform" min="2000" max="3000"/>
  <label id="hangup"/>
  {REQ.format(attrs=' retrans="500" start_rtd="bye"', method="BYE", cseq="[cseq]")}
  <recv response="100" optional="true" rtd="bye"/>
  <recv response="200" rtd="total" crlf="true"/>
  <ResponseTimeRepartition value="1500, 3100"/>
</scenario>"""

RESPONSE = """<send><![CDATA[
  SIP/2.0 {code}
  [last_Via:]
  [last_From:]
  [last_To:];tag=srv[call_number]
  [last_Call-ID:]
  [last_CSeq:]
  X-Plan: plan=[field0]
  Content-Length: 0
]]></send>"""

SERVER = f"""<scenario name="plans">
  <recv request="INVITE"/>
  {RESPONSE.format(code="100 Trying")}
  {RESPONSE.format(code="200 OK")}
  <recv request="ACK"/>
  <recv request="BYE"/>
  {RESPONSE.format(code="200 OK")}
</scenario>"""


def test_the_path_follows_the_regexp_and_the_timings_follow_the_pauses(tmp_path: Path) -> None:
    plans = tmp_path / "plans.csv"
    plans.write_text("SEQUENTIAL\ngold\nsilver\ngold\n")
    client = engine(CLIENT)
    server = engine(SERVER, port=5062, remote=5061, files=[load_injection(plans)])
    for _ in range(3):
        client.start_call(0.0)
    pump(client, server, until=4.0)
    s = client.stats
    assert (s.created, s.successful, s.failed_calls) == (3, 3, 0), s.failed
    counts = [st.messages for st in s.steps]
    # INVITE 100 200 ACK nop(gold?) pause-1s nop pause-uniform BYE 200
    assert counts == [3, 3, 3, 3, 3, 1, 1, 2, 3, 0, 3]
    assert s.counters["gold_calls"] == 3
    total = s.rtd["total"]
    assert total.count == 3
    assert 1.0 <= total.low <= 1.05  # the silver call: INVITE, 1 s pause, BYE
    assert 2.0 <= total.high <= 3.05  # the gold calls: a uniform 2-3 s pause
    assert total.buckets == [1, 2, 0]  # <1500 ms, <3100 ms, more
    assert "bye" not in s.rtd  # its stop (an optional 100 to the BYE) never came
    assert server.stats.successful == 3


def test_unanswered_invite_is_retransmitted_then_times_out() -> None:
    client = engine(f"<scenario>{INVITE}<recv response='200'/></scenario>")
    client.start_call(0.0)
    sent_at: list[float] = []
    now = 0.0
    while now < 40.0:
        client.advance(now)
        if client.take_outgoing():
            sent_at.append(now)
        now = round(now + 0.01, 6)
    assert sent_at == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5]  # Timer A doubling, 5 resends
    st = client.stats
    assert (st.steps[0].messages, st.steps[0].retrans, st.steps[0].timeouts) == (1, 5, 1)
    assert dict(st.failed) == {"max_udp_retrans": 1}


def test_recv_timeout_jumps_to_ontimeout() -> None:
    xml = f"""<scenario>{INVITE}
      <recv response="200" timeout="2000" ontimeout="gone"/>
      <nop display="answered"/>
      <label id="gone"/>
      <nop display="timed out"/>
    </scenario>"""
    client = engine(xml)
    client.start_call(0.0)
    now = 0.0
    while now < 3.0:
        client.advance(now)
        client.take_outgoing()
        now = round(now + 0.01, 6)
    st = client.stats
    assert st.successful == 1
    assert [s.messages for s in st.steps] == [1, 0, 0, 1]
    assert st.steps[1].timeouts == 1
    assert st.steps[0].retrans == 2  # at 0.5 s and 1.5 s, before the 2 s timeout


def test_unexpected_bye_is_answered_and_fails_the_call() -> None:
    client = engine(f"<scenario>{INVITE}<recv response='200'/></scenario>",
                    transport="TCP")
    client.start_call(0.0)
    invite = client.take_outgoing()[0].data.decode()
    call_id = next(ln for ln in invite.split("\r\n") if ln.startswith("Call-ID:"))
    bye = (f"BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKb\r\n"
           f"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\n{call_id}\r\nCSeq: 9 BYE\r\n"
           "Content-Length: 0\r\n\r\n")
    client.receive(bye.encode(), B, 0.1)
    out = client.take_outgoing()
    assert len(out) == 1
    assert out[0].data.startswith(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP")
    assert b"CSeq: 9 BYE" in out[0].data
    assert dict(client.stats.failed) == {"unexpected": 1}
    assert client.stats.steps[1].unexpected == 1
    # A late message for the ended call is discarded and counted, never raised.
    client.receive(bye.encode(), B, 0.2)
    assert client.stats.dead_messages == 1


def test_server_resends_its_last_answer_to_a_retransmitted_request() -> None:
    server = engine(SERVER.replace("X-Plan: plan=[field0]", "X-Plan: none"), port=5062,
                    remote=5061)
    client = engine(f"<scenario>{INVITE}<recv response='100' optional='true'/>"
                    "<recv response='200'/></scenario>", transport="TCP")
    client.start_call(0.0)
    invite = client.take_outgoing()[0].data
    server.receive(invite, B, 0.0)
    assert len(server.take_outgoing()) == 2  # 100, 200
    server.receive(invite, B, 0.5)
    again = server.take_outgoing()
    assert len(again) == 1
    assert again[0].data.startswith(b"SIP/2.0 200 OK")
    assert server.stats.steps[0].retrans == 1


def test_chance_takes_the_jump_in_its_share_of_calls() -> None:
    xml = f"""<scenario>{INVITE.replace(' retrans="500"', '')}
      <nop next="lucky" chance="0.3"/>
      <nop display="unlucky"/>
      <label id="lucky"/>
    </scenario>"""
    client = engine(xml, seed=42)
    for _ in range(2000):
        client.start_call(0.0)
    unlucky = client.stats.steps[2].messages
    assert client.stats.successful == 2000
    assert 0.65 * 2000 <= unlucky <= 0.75 * 2000


def test_a_late_retransmitted_200_gets_the_ack_again() -> None:
    xml = f"""<scenario>{INVITE}
      <recv response="200"/>
      {REQ.format(attrs="", method="ACK", cseq="1")}
      <recv request="INFO"/>
      <pause milliseconds="5000"/>
    </scenario>"""
    client = engine(xml, transport="TCP")
    client.start_call(0.0)
    invite = client.take_outgoing()[0].data.decode()
    head = invite.split("\r\n")
    via, frm, to, cid = head[1], head[2], head[3], head[4]
    ok = f"SIP/2.0 200 OK\r\n{via}\r\n{frm}\r\n{to};tag=x\r\n{cid}\r\nCSeq: 1 INVITE\r\n" \
         "Content-Length: 0\r\n\r\n"
    client.receive(ok.encode(), B, 0.1)
    ack = client.take_outgoing()
    assert [o.data.split(b" ")[0] for o in ack] == [b"ACK"]
    # The peer's request: its From is our To (with its tag), its To our From.
    info = f"INFO sip:a SIP/2.0\r\n{via}\r\nFrom:{to[3:]};tag=x\r\nTo:{frm[5:]}\r\n{cid}\r\n" \
           "CSeq: 5 INFO\r\nContent-Length: 0\r\n\r\n"
    client.receive(info.encode(), B, 0.2)
    client.receive(ok.encode(), B, 0.3)  # not the last message received: matched backward
    again = client.take_outgoing()
    assert [o.data for o in again] == [ack[0].data]
    st = client.stats
    assert st.steps[2].retrans == 1
    assert (st.failed_calls, st.current) == (0, 1)
