"""Requests inside a dialog: CSeq, routing, ACK for 2xx, BYE, incoming CSeq order
(RFC 3261 §12.2, §13.2.2.4, §15.1)."""

from __future__ import annotations

import pytest

from sipha.sip.dialog import Dialog, DialogError, DialogId, DialogState
from sipha.sip.message import Request, build_request, build_response
from sipha.sip.parser import parse_message
from tests.messages import sipp_invite

VIA = "SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKnew1"


def _invite(extra: str = "") -> Request:
    msg = parse_message(sipp_invite(extra=extra))
    assert isinstance(msg, Request)
    return msg


def _uac(route_set: list[str] | None = None) -> Dialog:
    return Dialog(
        DialogId("cid@h", "ltag", "rtag"),
        local_seq=1,
        remote_seq=None,
        local_uri="sip:alice@a.example.com",
        remote_uri="sip:bob@b.example.com",
        remote_target="sip:bob@10.0.0.2:5070",
        route_set=route_set or [],
    )


def _roundtrip(request: Request) -> Request:
    parsed = parse_message(bytes(request))
    assert isinstance(parsed, Request)
    return parsed


def test_request_fields_without_route_set() -> None:
    info = _roundtrip(_uac().create_request("INFO", via=VIA, max_forwards=69))
    assert info.method == "INFO"
    assert info.ruri == "sip:bob@10.0.0.2:5070"
    assert info.get("via") == VIA
    assert info.max_forwards == 69
    assert not info.has("route")
    assert str(info.from_.uri) == "sip:alice@a.example.com"
    assert info.from_tag == "ltag"
    assert str(info.to.uri) == "sip:bob@b.example.com"
    assert info.to_tag == "rtag"
    assert info.call_id == "cid@h"
    assert (info.cseq.seq, info.cseq.method) == (2, "INFO")
    assert info.body == b""


def test_cseq_increments_per_request_but_not_for_ack_or_cancel() -> None:
    dialog = _uac()
    seqs = [dialog.create_request(m, via=VIA).cseq.seq for m in ("INFO", "UPDATE", "ACK", "BYE")]
    assert seqs == [2, 3, 3, 4]
    assert dialog.create_request("CANCEL", via=VIA).cseq.seq == 4
    assert dialog.local_seq == 4


def test_uas_first_request_uses_cseq_1() -> None:
    dialog = Dialog.from_uas_request(_invite(), "uas-tag")
    bye = dialog.create_bye(via=VIA)
    assert bye.cseq.seq == 1
    assert bye.ruri == "sip:sipp@127.0.0.1:5061"
    assert bye.from_tag == "uas-tag"
    assert bye.to_tag == "12345SIPpTag001"


def test_loose_routing_keeps_target_and_lists_route_set() -> None:
    routes = ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    req = _roundtrip(_uac(routes).create_request("INFO", via=VIA))
    assert req.ruri == "sip:bob@10.0.0.2:5070"
    assert req.get_all("route") == routes


def test_strict_routing_moves_first_route_into_request_uri() -> None:
    routes = ["<sip:strict.example.com;maddr=10.9.9.9>", "<sip:p2.example.com;lr>"]
    req = _roundtrip(_uac(routes).create_request("INFO", via=VIA))
    assert req.ruri == "sip:strict.example.com;maddr=10.9.9.9"
    assert req.get_all("route") == ["<sip:p2.example.com;lr>", "<sip:bob@10.0.0.2:5070>"]


def test_strict_routing_strips_what_a_request_uri_may_not_carry() -> None:
    req = _uac(["<sip:strict.example.com;method=INVITE?subject=x>"]).create_request("INFO", via=VIA)
    assert req.ruri == "sip:strict.example.com"
    assert req.get_all("route") == ["<sip:bob@10.0.0.2:5070>"]


def test_body_and_extra_headers() -> None:
    req = _uac().create_request(
        "INVITE",
        via=VIA,
        headers=[("Contact", "<sip:alice@10.0.0.1>")],
        body=b"v=0\r\n",
        content_type="application/sdp",
    )
    req = _roundtrip(req)
    assert req.body == b"v=0\r\n"
    assert req.get("content-type") == "application/sdp"
    assert req.content_length == 5
    assert req.get("contact") == "<sip:alice@10.0.0.1>"


def test_ack_for_2xx_fields() -> None:
    extra = "Record-Route: <sip:p1.example.com;lr>\r\nProxy-Authorization: Digest x=1\r\n"
    invite = _invite(extra)
    ok = build_response(
        invite,
        200,
        to_tag="uas",
        headers=[("Contact", "<sip:uas@10.0.0.2>")],
        copy_record_route=True,
    )
    dialog = Dialog.from_uac_response(invite, ok)
    dialog.create_request("INFO", via=VIA)  # a later request must not change the ACK's CSeq
    ack = _roundtrip(dialog.create_ack(invite, ok, via=VIA))
    assert ack.method == "ACK"
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert ack.ruri == "sip:uas@10.0.0.2"
    assert ack.get_all("route") == ["<sip:p1.example.com;lr>"]
    assert ack.to_tag == "uas"
    assert ack.from_tag == "12345SIPpTag001"
    assert ack.call_id == invite.call_id
    assert ack.get("proxy-authorization") == "Digest x=1"
    assert ack.body == b""
    assert dialog.local_seq == 2


def test_ack_refuses_foreign_responses() -> None:
    invite = _invite()
    ok = build_response(invite, 200, to_tag="uas", headers=[("Contact", "<sip:u@h>")])
    dialog = Dialog.from_uac_response(invite, ok)
    other = build_response(invite, 200, to_tag="fork2", headers=[("Contact", "<sip:u@h>")])
    with pytest.raises(DialogError):
        dialog.create_ack(invite, other, via=VIA)
    with pytest.raises(DialogError):
        dialog.create_ack(invite, build_response(invite, 486, to_tag="uas"), via=VIA)
    later = build_request(
        "INVITE",
        "sip:u@h",
        [(n, v) for n, v in invite.headers if n.lower() != "cseq"] + [("CSeq", "7 INVITE")],
    )
    with pytest.raises(DialogError):
        dialog.create_ack(later, ok, via=VIA)


def test_bye_and_its_final_response_terminate() -> None:
    dialog = _uac(["<sip:p1.example.com;lr>"])
    bye = _roundtrip(dialog.create_bye(via=VIA))
    assert bye.method == "BYE"
    assert (bye.cseq.seq, bye.cseq.method) == (2, "BYE")
    assert bye.get_all("route") == ["<sip:p1.example.com;lr>"]
    assert dialog.state.name == "CONFIRMED"
    dialog.on_response(build_response(bye, 200))
    assert dialog.state is DialogState.TERMINATED
    with pytest.raises(DialogError):
        dialog.create_request("INFO", via=VIA)


@pytest.mark.parametrize("status", [408, 481])
def test_408_or_481_terminates(status: int) -> None:
    dialog = _uac()
    info = dialog.create_request("INFO", via=VIA)
    dialog.on_response(build_response(info, status))
    assert dialog.state is DialogState.TERMINATED


def test_2xx_to_reinvite_refreshes_target() -> None:
    dialog = _uac()
    reinvite = dialog.create_request("INVITE", via=VIA, headers=[("Contact", "<sip:a@h>")])
    dialog.on_response(build_response(reinvite, 200, headers=[("Contact", "<sip:bob@10.0.0.9>")]))
    assert dialog.remote_target == "sip:bob@10.0.0.9"
    info = dialog.create_request("INFO", via=VIA)
    dialog.on_response(build_response(info, 200, headers=[("Contact", "<sip:x@y>")]))
    assert dialog.remote_target == "sip:bob@10.0.0.9"  # INFO is no target refresh


# -- incoming requests (§12.2.2) ---------------------------------------------------------------


def _in_dialog(method: str, seq: int, contact: str | None = None) -> Request:
    headers = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-x"),
        ("From", "<sip:sipp@127.0.0.1:5061>;tag=12345SIPpTag001"),
        ("To", "<sip:service@127.0.0.1:5060>;tag=uas-tag"),
        ("Call-ID", "1-12345@127.0.0.1"),
        ("CSeq", f"{seq} {method}"),
    ]
    if contact is not None:
        headers.append(("Contact", contact))
    return build_request(method, "sip:service@127.0.0.1:5060", headers)


def test_out_of_order_cseq_refused() -> None:
    dialog = Dialog.from_uas_request(_invite(), "uas-tag")
    assert dialog.on_request(_in_dialog("INFO", 5)) is True  # gaps are allowed
    assert dialog.remote_seq == 5
    assert dialog.on_request(_in_dialog("INFO", 4)) is False
    assert dialog.on_request(_in_dialog("INFO", 5)) is False
    assert dialog.remote_seq == 5


def test_ack_and_cancel_do_not_move_remote_seq() -> None:
    dialog = Dialog.from_uas_request(_invite(), "uas-tag")
    assert dialog.on_request(_in_dialog("ACK", 1)) is True
    assert dialog.on_request(_in_dialog("CANCEL", 1)) is True
    assert dialog.remote_seq == 1


def test_empty_remote_seq_accepts_any() -> None:
    dialog = _uac()
    assert dialog.on_request(_in_dialog("INFO", 1)) is True
    assert dialog.remote_seq == 1


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_target_refresh_moves_remote_target(method: str) -> None:
    dialog = Dialog.from_uas_request(_invite(), "uas-tag")
    assert dialog.on_request(_in_dialog(method, 2, "<sip:sipp@192.0.2.7:5999>"))
    assert dialog.remote_target == "sip:sipp@192.0.2.7:5999"
    assert dialog.on_request(_in_dialog(method, 3))  # no Contact: target unchanged
    assert dialog.remote_target == "sip:sipp@192.0.2.7:5999"


def test_non_refresh_contact_ignored_and_refused_refresh_ignored() -> None:
    dialog = Dialog.from_uas_request(_invite(), "uas-tag")
    dialog.on_request(_in_dialog("INFO", 2, "<sip:evil@h>"))
    assert dialog.remote_target == "sip:sipp@127.0.0.1:5061"
    assert dialog.on_request(_in_dialog("INVITE", 2, "<sip:evil@h>")) is False
    assert dialog.remote_target == "sip:sipp@127.0.0.1:5061"


def test_incoming_bye_terminates() -> None:
    dialog = Dialog.from_uas_request(_invite(), "uas-tag")
    assert dialog.on_request(_in_dialog("BYE", 2)) is True
    assert dialog.state is DialogState.TERMINATED
