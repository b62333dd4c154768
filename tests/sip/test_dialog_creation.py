"""Dialog creation as UAC and UAS from SIPp-like INVITE / 1xx / 2xx (RFC 3261 §12.1)."""

from __future__ import annotations

import pytest

from sipha.sip.dialog import Dialog, DialogError, DialogId, DialogState, dialog_id_of
from sipha.sip.message import Request, Response, build_response
from sipha.sip.parser import parse_message
from tests.messages import sipp_invite, sipp_ok

RR = (
    "Record-Route: <sip:p1.example.com;lr>\r\n"
    "Record-Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr;ftag=x>\r\n"
)


def _invite(extra: str = "") -> Request:
    msg = parse_message(sipp_invite(extra=extra))
    assert isinstance(msg, Request)
    return msg


def _answer(invite: Request, status: int = 200, *, to_tag: str | None = "uas-tag") -> Response:
    contact = [("Contact", "<sip:uas@10.0.0.2:5070;transport=udp>")]
    return build_response(invite, status, to_tag=to_tag, headers=contact, copy_record_route=True)


def test_uac_dialog_from_sipp_200() -> None:
    invite = _invite()
    ok = parse_message(sipp_ok())
    assert isinstance(ok, Response)
    dialog = Dialog.from_uac_response(invite, ok)
    assert dialog.id == DialogId("1-12345@127.0.0.1", "12345SIPpTag001", "67890SIPpTag011")
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.local_seq == 1
    assert dialog.remote_seq is None
    assert dialog.local_uri == "sip:sipp@127.0.0.1:5061"
    assert dialog.remote_uri == "sip:service@127.0.0.1:5060"
    assert dialog.remote_target == "sip:127.0.0.1:5060;transport=UDP"
    assert dialog.route_set == []
    assert dialog.secure is False


def test_uac_route_set_is_record_route_reversed() -> None:
    invite = _invite(RR)
    dialog = Dialog.from_uac_response(invite, _answer(invite))
    assert dialog.route_set == [
        "<sip:p3.example.com;lr;ftag=x>",
        "<sip:p2.example.com;lr>",
        "<sip:p1.example.com;lr>",
    ]


def test_uas_route_set_is_record_route_in_order() -> None:
    invite = _invite(RR)
    dialog = Dialog.from_uas_request(invite, "uas-tag")
    assert dialog.route_set == [
        "<sip:p1.example.com;lr>",
        "<sip:p2.example.com;lr>",
        "<sip:p3.example.com;lr;ftag=x>",
    ]


def test_uas_dialog_fields() -> None:
    invite = _invite()
    dialog = Dialog.from_uas_request(invite, "uas-tag")
    assert dialog.id == DialogId("1-12345@127.0.0.1", "uas-tag", "12345SIPpTag001")
    assert dialog.remote_seq == 1
    assert dialog.local_seq == 0  # "empty": the first request goes out with CSeq 1
    assert dialog.local_uri == "sip:service@127.0.0.1:5060"
    assert dialog.remote_uri == "sip:sipp@127.0.0.1:5061"
    assert dialog.remote_target == "sip:sipp@127.0.0.1:5061"
    assert dialog.state is DialogState.CONFIRMED
    early = Dialog.from_uas_request(invite, "t", state=DialogState.EARLY)
    assert early.state is DialogState.EARLY


def test_uac_and_uas_ids_mirror_each_other() -> None:
    invite = _invite()
    ok = _answer(invite)
    uac = Dialog.from_uac_response(invite, ok)
    uas = Dialog.from_uas_request(invite, "uas-tag")
    assert uac.id.call_id == uas.id.call_id
    assert uac.id.local_tag == uas.id.remote_tag
    assert uac.id.remote_tag == uas.id.local_tag
    assert dialog_id_of(ok, uac=True) == uac.id
    assert dialog_id_of(ok, uac=False) == uas.id


def test_dialog_id_of_request_without_to_tag() -> None:
    invite = _invite()
    assert dialog_id_of(invite, uac=False) == DialogId("1-12345@127.0.0.1", "", "12345SIPpTag001")
    assert dialog_id_of(invite, uac=True) == DialogId("1-12345@127.0.0.1", "12345SIPpTag001", "")


def test_180_with_tag_makes_early_dialog() -> None:
    invite = _invite()
    dialog = Dialog.from_uac_response(invite, _answer(invite, 180))
    assert dialog.state is DialogState.EARLY
    assert dialog.id.remote_tag == "uas-tag"


@pytest.mark.parametrize(("status", "to_tag"), [(180, None), (100, "t"), (486, "t"), (302, "t")])
def test_responses_that_create_no_dialog(status: int, to_tag: str | None) -> None:
    invite = _invite()
    with pytest.raises(DialogError):
        Dialog.from_uac_response(invite, _answer(invite, status, to_tag=to_tag))


def test_2xx_without_to_tag_gets_empty_remote_tag() -> None:
    invite = _invite()
    dialog = Dialog.from_uac_response(invite, _answer(invite, to_tag=None))
    assert dialog.id.remote_tag == ""
    bye = dialog.create_bye(via="SIP/2.0/UDP h;branch=z9hG4bKb")
    assert bye.to.tag is None


def test_sips_request_uri_makes_secure_dialog() -> None:
    raw = sipp_invite().replace(b"INVITE sip:service", b"INVITE sips:service")
    invite = parse_message(raw)
    assert isinstance(invite, Request)
    assert Dialog.from_uas_request(invite, "t").secure is True
    assert Dialog.from_uac_response(invite, _answer(invite)).secure is True


def test_early_dialog_confirmed_by_2xx_recomputes_route_set_and_target() -> None:
    invite = _invite(RR)
    early = Dialog.from_uac_response(invite, _answer(invite, 183))
    ok = build_response(
        invite,
        200,
        to_tag="uas-tag",
        headers=[("Record-Route", "<sip:only.example.com;lr>"), ("Contact", "<sip:new@h>")],
    )
    early.on_response(ok)
    assert early.state is DialogState.CONFIRMED
    assert early.route_set == ["<sip:only.example.com;lr>"]
    assert early.remote_target == "sip:new@h"


def test_early_dialog_terminated_by_error_response() -> None:
    invite = _invite()
    early = Dialog.from_uac_response(invite, _answer(invite, 180))
    early.on_response(_answer(invite, 486))
    assert early.state is DialogState.TERMINATED
