"""Dialplan: ordered rules, full-match regexes, actions parsed from their names."""

from __future__ import annotations

import pytest

from sipha.server.config import AnswerRule, parse_action
from sipha.server.dialplan import ActionKind, Dialplan


def test_first_full_match_wins_and_unmatched_users_are_subscribers() -> None:
    plan = Dialplan([
        AnswerRule(pattern="service", action="answer", max_hold=30),
        AnswerRule(pattern="busy[0-9]+", action="busy"),
        AnswerRule(pattern="ring.*", action="ring-no-answer", ring_timeout=5),
        AnswerRule(pattern="9.*", action="reject 603"),
        AnswerRule(pattern=".*", action="reject 404"),
    ])
    service = plan.match("service")
    assert service is not None
    assert (service.kind, service.status, service.max_hold) == (ActionKind.ANSWER, 200, 30)
    busy = plan.match("busy42")
    assert busy is not None
    assert (busy.kind, busy.status) == (ActionKind.REJECT, 486)
    ring = plan.match("ringing")
    assert ring is not None
    assert (ring.kind, ring.ring_timeout) == (ActionKind.RING, 5)
    decline = plan.match("900")
    assert decline is not None
    assert decline.status == 603
    other = plan.match("servicex")  # full match: "service" does not cover "servicex"
    assert other is not None
    assert other.status == 404
    assert plan.match(None) is None  # a Request-URI without a user is the server itself


def test_no_rules_means_everybody_is_a_subscriber() -> None:
    plan = Dialplan([AnswerRule(pattern="service")])
    assert plan.match("alice") is None
    assert plan.match("service") is not None
    assert plan.match("alice") is None  # cached verdicts stay right


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("answer", ("answer", 200)),
        ("busy", ("reject", 486)),
        (" Reject  480 ", ("reject", 480)),
        ("ring-no-answer", ("ring", 180)),
    ],
)
def test_actions_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_action(text) == expected


@pytest.mark.parametrize("text", ["", "hangup", "reject", "reject 200", "reject 700", "reject x"])
def test_bad_actions_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match="answer, busy, reject CODE"):
        parse_action(text)
