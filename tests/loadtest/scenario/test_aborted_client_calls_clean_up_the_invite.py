"""A client call aborted on an unexpected message cleans up its INVITE as SIPp does: ACK for a
final error, CANCEL while ringing, ACK + BYE for an answered call; the call fails
``unexpected``."""

from __future__ import annotations

from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.sipmsg import read_message
from tests.loadtest.scenario.helpers import B, engine
from tests.loadtest.scenario.test_interpreter_paths_and_timings_virtual_time import INVITE


def _answer(invite: bytes, status: str, *, tag: str = ";tag=peer", extra: str = "") -> bytes:
    msg = read_message(invite)
    assert msg is not None
    lines = [f"SIP/2.0 {status}", *msg.lines("via"), *msg.lines("from"),
             msg.lines("to")[0] + tag, *msg.lines("call-id"), *msg.lines("cseq")]
    if extra:
        lines.append(extra)
    return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()


def _start(xml: str) -> tuple[ScenarioEngine, bytes]:
    e = engine(xml)
    e.start_call(0.0)
    return e, e.take_outgoing()[0].data


def _first_line_and_cseq(data: bytes) -> tuple[str, str]:
    msg = read_message(data)
    assert msg is not None
    return msg.start_line.split(" ")[0], f"{msg.cseq_num} {msg.cseq_method}"


def test_a_final_error_is_acknowledged_in_its_transaction() -> None:
    e, invite = _start(f"<scenario>{INVITE}<recv response='200'/></scenario>")
    e.receive(_answer(invite, "486 Busy Here"), B, 0.1)
    out = e.take_outgoing()
    assert [_first_line_and_cseq(o.data) for o in out] == [("ACK", "1 ACK")]
    ack = read_message(out[0].data)
    sent = read_message(invite)
    assert ack is not None
    assert sent is not None
    assert ack.values("via") == sent.values("via")[:1]  # same branch: the INVITE's transaction
    assert ack.tag("to") == "peer"
    assert dict(e.stats.failed) == {"unexpected": 1}
    assert e.errors == [f"Aborting call on unexpected message for Call-Id '{ack.call_id}': "
                        "while expecting '200' (index 1), received 'SIP/2.0 486 Busy Here'"]


def test_a_ringing_invite_is_cancelled() -> None:
    e, invite = _start(f"<scenario>{INVITE}<recv response='200'/></scenario>")
    e.receive(_answer(invite, "180 Ringing"), B, 0.1)
    out = e.take_outgoing()
    assert [_first_line_and_cseq(o.data) for o in out] == [("CANCEL", "1 CANCEL")]


def test_an_answered_call_is_acked_and_hung_up() -> None:
    xml = f"""<scenario>{INVITE}<recv response="200"/><pause milliseconds="5000"/>
    </scenario>"""
    e, invite = _start(xml)
    e.receive(_answer(invite, "200 OK", extra="Contact: <sip:peer@127.0.0.1:5062>"), B, 0.1)
    assert e.take_outgoing() == []
    info = _answer(invite, "200 OK").replace(b"SIP/2.0 200 OK", b"INFO sip:a@b SIP/2.0")
    info = info.replace(b"CSeq: 1 INVITE", b"CSeq: 7 INFO")
    e.receive(info, B, 0.2)
    out = e.take_outgoing()
    assert [_first_line_and_cseq(o.data) for o in out] == [("ACK", "1 ACK"), ("BYE", "2 BYE")]
    assert all(o.data.split(b" ")[1] == b"sip:peer@127.0.0.1:5062" for o in out)


def test_no_default_behaviors_ignores_the_message() -> None:
    e = engine(f"<scenario>{INVITE}<recv response='200'/></scenario>",
               behaviors=frozenset())
    e.start_call(0.0)
    invite = e.take_outgoing()[0].data
    e.receive(_answer(invite, "486 Busy Here"), B, 0.1)
    assert e.take_outgoing() == []
    assert dict(e.stats.failed) == {}  # SIPp: "Continuing call on unexpected message"
    assert e.stats.steps[1].unexpected == 1
    assert e.current_calls == 1


def test_without_bye_the_call_fails_silently() -> None:
    e = engine(f"<scenario>{INVITE}<recv response='200'/></scenario>",
               behaviors=frozenset({"abortunexp"}))
    e.start_call(0.0)
    invite = e.take_outgoing()[0].data
    e.receive(_answer(invite, "486 Busy Here"), B, 0.1)
    assert e.take_outgoing() == []
    assert dict(e.stats.failed) == {"unexpected": 1}


def test_ping_and_auto_answer_keep_the_call() -> None:
    e = engine(f"<scenario>{INVITE}<recv response='200'/></scenario>", auto_answer=True)
    e.start_call(0.0)
    invite = e.take_outgoing()[0].data
    for method in ("PING", "INFO", "NOTIFY", "UPDATE"):
        req = _answer(invite, "x").replace(b"SIP/2.0 x", f"{method} sip:a SIP/2.0".encode())
        e.receive(req.replace(b"1 INVITE", f"3 {method}".encode()), B, 0.1)
        out = e.take_outgoing()
        assert len(out) == 1
        assert out[0].data.startswith(b"SIP/2.0 200 OK\r\n")
        assert f"CSeq: 3 {method}".encode() in out[0].data
    assert e.stats.auto_answered == 4
    assert (e.stats.failed_calls, e.current_calls) == (0, 1)
