"""A REGISTER retried after a lost answer (the master died after running it) must not turn
into "out of order": the stored binding carrying the request's own Call-ID and CSeq is the
first attempt's. Any other conflict stays a conflict (RFC 3261 §10.3 step 7)."""

from __future__ import annotations

from sipha.store import Binding, UpdateOutcome, UpdateResult
from sipha.store.sentinel import is_own_earlier_attempt


def _binding(contact: str, call_id: str, cseq: int) -> Binding:
    return Binding(
        aor="a@d", contact=contact, expires_at=100.0, call_id=call_id, cseq=cseq,
        raw=f"<{contact}>",
    )


def _conflict(*bindings: Binding, on: str) -> UpdateResult:
    return UpdateResult(UpdateOutcome.OUT_OF_ORDER, bindings, on)


def test_own_first_attempt_is_recognised() -> None:
    stored = _binding("sip:a@h", "cid", 7)
    assert is_own_earlier_attempt(_conflict(stored, on="sip:a@h"), "cid", 7)


def test_a_later_request_or_another_call_id_is_a_real_conflict() -> None:
    assert not is_own_earlier_attempt(_conflict(_binding("sip:a@h", "cid", 8), on="sip:a@h"),
                                    "cid", 7)
    assert not is_own_earlier_attempt(_conflict(_binding("sip:a@h", "other", 7), on="sip:a@h"),
                                    "cid", 7)
    # The conflicting contact is judged, not some other binding of the AOR.
    mixed = _conflict(_binding("sip:a@h", "cid", 9), _binding("sip:b@h", "cid", 7), on="sip:a@h")
    assert not is_own_earlier_attempt(mixed, "cid", 7)


def test_applied_or_unknown_conflict_is_not_a_retry() -> None:
    applied = UpdateResult(UpdateOutcome.APPLIED, (_binding("sip:a@h", "cid", 7),))
    assert not is_own_earlier_attempt(applied, "cid", 7)
    assert not is_own_earlier_attempt(_conflict(on="sip:gone@h"), "cid", 7)
