"""SIPp's matching of a received message to a step, checked as properties over random step
lists: what ``locate`` answers is what the rules in :mod:`matching`'s docstring imply."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.matching import Located, locate, matches
from sipha.loadtest.scenario.sipmsg import Received

W = m.Where("t.xml", 1, "recv")


def _send(i: int, method: str) -> m.Send:
    mt = m.MessageTemplate(m.Template((f"{method} sip:x SIP/2.0",)), (), (), method, 0)
    return m.Send(index=i, where=W, message=mt)


@st.composite
def steps(draw: st.DrawFn) -> list[m.Step]:
    out: list[m.Step] = []
    for i in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["recv", "recv", "send", "ack", "pause"]))
        if kind == "recv":
            optional = draw(st.booleans())
            out.append(m.Recv(index=i, where=W, response=draw(st.sampled_from([100, 180, 200])),
                              cseq_method="INVITE", optional=optional,
                              optional_global=optional and draw(st.booleans())))
        elif kind in ("send", "ack"):
            out.append(_send(i, "ACK" if kind == "ack" else "INVITE"))
        else:
            out.append(m.Pause(index=i, where=W, milliseconds=0))
    return out


def _response(status: int) -> Received:
    return Received("", f"SIP/2.0 {status} X", "", status, "", [], "", "c", 1, "INVITE")


def _optional(s: m.Step) -> bool:
    return isinstance(s, m.Recv) and s.optional


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps(), st.integers(0, 8), st.sampled_from([100, 180, 200, 486]))
def test_locate_follows_sipps_rules(seq: list[m.Step], current: int, status: int) -> None:
    current = min(current, len(seq))
    msg = _response(status)
    where, i = locate(seq, current, msg, {})
    # The forward window: from the current step through the first non-optional one.
    window: list[int] = []
    for j in range(current, len(seq)):
        window.append(j)
        if not _optional(seq[j]):
            break
    first_forward = next((j for j in window if matches(seq[j], msg, {})), None)
    if first_forward is not None:
        assert (where, i) == (Located.FOUND, first_forward)
        return
    backward = [j for j in range(current - 1, -1, -1) if matches(seq[j], msg, {})]
    contiguous = [j for j in backward if all(_optional(s) for s in seq[j:current])
                  or (isinstance(seq[j], m.Recv) and seq[j].optional_global)]  # type: ignore[union-attr]
    acks = [j + 1 for j in backward if j not in contiguous and j + 1 < len(seq)
            and isinstance(seq[j + 1], m.Send) and seq[j + 1].message is not None
            and seq[j + 1].message.method == "ACK"]  # type: ignore[union-attr]
    if contiguous:
        assert (where, i) == (Located.FOUND, contiguous[0])
    elif acks:
        assert (where, i) == (Located.ACK_AGAIN, acks[0])
    else:
        assert (where, i) == (Located.UNEXPECTED, -1)
