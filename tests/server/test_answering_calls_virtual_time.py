"""The answering services on virtual time, in memory: answer after ring_time with the dialog
stored first, 2xx retransmission until the ACK (RFC 3261 §13.3.1.4), the BYE at max_hold,
ring-no-answer, reject, CANCEL while the record is written."""

from __future__ import annotations

from sipha.server.answering_core import Respond, Retransmit, SendBye
from sipha.server.dialplan import Action as DialplanAction
from sipha.server.dialplan import ActionKind
from tests.server.answering_harness import UAC_TCP, AnsweringHarness, answer, invite, ring


def test_answer_rings_stores_the_dialog_then_answers_and_retransmits_until_the_ack() -> None:
    h = AnsweringHarness()
    assert h.invite(answer(ring_time=2.0)) == {"180>uac"}
    assert h.core.unanswered == 1
    assert h.core.next_deadline() == 2.0
    assert h.timer(1.9) == set()
    assert h.timer(2.0) == {"store"}  # the 200 waits for the record (failover of the BYE)
    assert h.stored(2.1) == {"200>uac"}
    ok = [a for a in h.sent if isinstance(a, Respond)][-1].response
    assert ok.get("content-type") == "application/sdp"
    assert ok.to_tag == h.call.local_tag
    assert (h.core.unanswered, h.stats.calls_answered) == (0, 1)
    # T1 doubling up to T2: 0.5, 1, 2, 4, 4 s after the 200.
    fired = []
    for _ in range(5):
        deadline = h.core.next_deadline()
        assert deadline is not None
        if h.timer(deadline) == {"200+>uac"}:
            fired.append(round(deadline - 2.1, 3))
    assert fired == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert h.ack(14.0) == {"verify"}
    assert h.core.next_deadline() == 2.1 + 3600.0  # only the hold timer is left


def test_no_ack_within_64_t1_ends_the_call_with_a_bye() -> None:
    h = AnsweringHarness()
    h.invite(answer())
    h.stored(0.0)
    out: set[str] = set()
    while "BYE>uac" not in out:
        deadline = h.core.next_deadline()
        assert deadline is not None
        assert deadline < 40
        out = h.timer(deadline)
    assert out == {"BYE>uac", "delete"}
    assert h.core.calls == {}
    assert h.stats.calls_ended_by_hold == 0


def test_max_hold_sends_the_bye_along_the_route_set() -> None:
    h = AnsweringHarness()
    request = invite(record_route="<sip:127.0.0.7:5070;lr>")
    h.invite(answer(max_hold=5.0), request=request)
    h.stored(0.0)
    h.ack(0.1)
    assert h.timer(5.0) == {"BYE>uac", "delete"}
    bye = [a for a in h.sent if isinstance(a, SendBye)][-1]
    assert (bye.peer.host, bye.peer.port) == ("127.0.0.7", 5070)  # the first route
    assert bye.bye.from_tag == h.call.local_tag  # we are the UAS: our tag is now From
    assert h.stats.calls_ended_by_hold == 1
    assert h.core.next_deadline() is None


def test_over_tcp_the_2xx_is_not_retransmitted() -> None:
    h = AnsweringHarness()
    h.invite(answer(max_hold=5.0), peer=UAC_TCP)
    h.stored(0.0)
    assert h.core.next_deadline() == 5.0
    assert not any(isinstance(a, Retransmit) for a in h.sent)


def test_ring_no_answer_gives_480_at_ring_timeout_or_487_on_cancel() -> None:
    h = AnsweringHarness()
    h.invite(ring(30.0))
    assert h.timer(29.0) == set()
    assert h.timer(30.0) == {"480>uac"}
    h2 = AnsweringHarness()
    h2.invite(ring(30.0))
    assert h2.cancel(3.0) == {"487>uac"}
    assert h2.timer(30.0) == set()
    assert (h2.core.unanswered, h2.core.calls) == (0, {})


def test_reject_answers_at_once_and_keeps_nothing() -> None:
    h = AnsweringHarness()
    assert h.invite(DialplanAction(ActionKind.REJECT, 486)) == {"486>uac"}
    assert h.core.calls == {}
    assert h.stats.calls_rejected == 1


def test_a_second_invite_for_a_call_id_we_hold_is_refused_482() -> None:
    h = AnsweringHarness()
    h.invite(ring())
    assert h.invite(ring(), request=invite()) == {"482>uac"}


def test_cancel_while_the_record_is_written_answers_487_and_deletes_it_once_written() -> None:
    h = AnsweringHarness()
    assert h.invite(answer()) == {"180>uac", "store"}
    assert h.cancel(0.1) == {"487>uac"}
    assert h.core.calls == {}
    assert h.stored(0.2) == {"delete"}  # no 200 ever leaves
    assert not any(isinstance(a, Respond) and a.response.status == 200 for a in h.sent)
