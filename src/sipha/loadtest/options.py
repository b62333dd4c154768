"""Scenario options: what a load run does beyond rate, duration and hold time.

The controller sends these inside :class:`~sipha.loadtest.protocol.Plan` (field ``options``), so
every agent runs exactly the same scenario; the local runner uses them directly.  They are a
msgspec Struct so they travel typed and validated, like the rest of the plan.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

__all__ = ["SCENARIOS", "AnswerMix", "Scenario", "ScenarioOptions"]

Scenario = Literal["call", "register", "options", "register+call", "uas"]
SCENARIOS: Final[tuple[str, ...]] = ("call", "register", "options", "register+call", "uas")

Prob = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0.0)]
PosFloat = Annotated[float, msgspec.Meta(gt=0.0)]


class AnswerMix(msgspec.Struct, frozen=True, kw_only=True, tag="mix"):
    """How a UAS answers INVITEs: shares of answer (200), busy (``busy_code``, 486 by default)
    and no answer (rings until CANCEL).  Shares need not add up to 1; they are normalised."""

    answer: Prob = 1.0
    busy: Prob = 0.0
    no_answer: Prob = 0.0
    busy_code: Annotated[int, msgspec.Meta(ge=300, le=699)] = 486

    def __post_init__(self) -> None:
        if self.answer + self.busy + self.no_answer <= 0:
            raise ValueError("answer mix: answer + busy + no_answer must be > 0")


class ScenarioOptions(msgspec.Struct, frozen=True, kw_only=True, tag="options"):
    """Everything scenario-specific, with SIPp-like defaults.

    Times are seconds.  ``t1``/``t2`` are RFC 3261 §17.1.1.1's T1 (RTT estimate, 500 ms) and
    T2 (4 s); Timer B/F = 64*T1.  ``call_user`` is the Request-URI user the UAC calls (SIPp's
    ``-s``, default ``service`` as SIPp's); with ``users`` set, ``register+call`` calls those
    users instead.
    """

    arrival: Literal["constant", "poisson"] = "constant"
    t1: PosFloat = 0.5
    t2: PosFloat = 4.0
    ring_timeout: PosFloat = 60.0  # UAC: CANCEL a call still ringing after this long
    # UAC: give up on an answer sooner than Timer B/F (64*T1), like SIPp's -recv_timeout: an
    # INVITE unanswered (or still ringing) this long after it was sent fails ("timeout"), a
    # BYE unanswered this long fails ("bye-failed").  0: the RFC timers alone.
    recv_timeout: NonNegFloat = 0.0
    call_user: str = "service"
    from_user: str = "sipha"
    domain: str = ""  # default: the target host
    local_host: str = "127.0.0.1"
    local_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    uas_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0  # register+call: UAS listener
    register_expires: Annotated[int, msgspec.Meta(ge=1)] = 3600
    sdp: bool = True
    mix: AnswerMix = AnswerMix()
    ring_time: NonNegFloat = 0.0  # UAS: 180 then this long before the final answer
    # After the run, how long in-flight calls may finish: past Timer B/F (64*T1) by default,
    # so every attempted call ends classified.
    drain_timeout: NonNegFloat = 40.0
    # transport tls: the CA the target's certificate must chain to (empty: the system's), and
    # the certificate the UAS listener presents (register+call, uas) and offers as a client
    # certificate to targets that require mutual TLS. Paths on the agent's machine.
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_verify: bool = True
