"""Controller <-> agent messages of the distributed load tester.

Theory of operation
-------------------
Every frame is a msgpack array ``[version, message]``: the protocol version first, then one
tagged msgspec Struct (``{"type": "hello", ...}``).  :func:`decode` checks the version *before*
looking at the message, so a peer of another version gets :class:`VersionMismatch` (carrying
the peer's version) instead of a confusing field error.  The one exception is
:class:`Refused`, whose shape is frozen forever: a refusal from a controller of any version can
always be read, so an agent learns *why* it was turned away.

Conversation (transport comes later; the shape is ZeroMQ DEALER agents <-> ROUTER controller):

    agent                         controller
    Hello(version, ...)  ------>  negotiate() -> Welcome | Refused
                         <------  Welcome / Refused
                         <------  Plan (start_at = common unix start time)
    Heartbeat (every ~1 s) ---->  liveness
    StatsReport (each second) ->  RunStats.add(agent_id, second, ...)
                         <------  Stop(reason)
    Done(totals)         ------>

Bad bytes of any kind raise only :class:`ProtocolError` (one error contract per boundary).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from sipha.loadtest.options import ScenarioOptions
from sipha.loadtest.scenario.wire import ScenarioSnapshot, XmlScenario
from sipha.loadtest.stats import IntervalSnapshot

__all__ = [
    "PROTOCOL_VERSION",
    "Done",
    "Heartbeat",
    "Hello",
    "HoldTime",
    "Message",
    "Plan",
    "ProtocolError",
    "Ramp",
    "Refused",
    "ScenarioSnapshot",
    "StatsReport",
    "Stop",
    "UserRange",
    "VersionMismatch",
    "Welcome",
    "XmlScenario",
    "decode",
    "encode",
    "negotiate",
]

PROTOCOL_VERSION: Final = 1
MAX_SECOND: Final = 10 * 365 * 86400  # a schema bound; the plan's bound is much tighter

NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]
PosFloat = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
AgentId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
HostName = Annotated[str, msgspec.Meta(max_length=255)]  # RFC 1035 §2.3.4


class ProtocolError(Exception):
    """A frame could not be decoded: not msgpack, wrong shape, invalid field, unknown type."""


class VersionMismatch(ProtocolError):
    """The peer speaks another protocol version.  ``peer_version`` is what it sent."""

    def __init__(self, peer_version: int) -> None:
        self.peer_version = peer_version
        super().__init__(
            f"protocol version mismatch: peer speaks version {peer_version}, "
            f"this side speaks version {PROTOCOL_VERSION}; run the same sipha on every node"
        )


class _Msg(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every message: frozen, keyword-only, tagged by ``type``."""


# -- handshake ----------------------------------------------------------------------------------


class Hello(_Msg, frozen=True, tag="hello"):
    """Agent -> controller, first message: who I am and what I can do."""

    agent_id: AgentId
    version: int
    host: HostName
    pid: NonNegInt
    cores: Annotated[int, msgspec.Meta(ge=1, le=65536)]


class Welcome(_Msg, frozen=True, tag="welcome"):
    """Controller -> agent: accepted into run ``run_id``; heartbeat every
    ``heartbeat_interval`` seconds."""

    agent_id: AgentId
    version: int
    run_id: str
    heartbeat_interval: PosFloat = 1.0


class Refused(_Msg, frozen=True, tag="refused"):
    """Controller -> agent: not accepted.  Frozen shape: readable by every protocol version."""

    reason: str


# -- the plan -----------------------------------------------------------------------------------


class Ramp(_Msg, frozen=True, tag="ramp"):
    """Rate ramp: start at ``start`` calls/s, add ``step`` every ``interval`` s up to ``max``.

    Rates are this agent's share, already divided by the controller."""

    start: NonNegFloat
    step: NonNegFloat
    interval: PosFloat
    max: NonNegFloat

    def __post_init__(self) -> None:
        # Raised inside msgspec decoding this becomes a ValidationError -> ProtocolError.
        if self.max < self.start:
            raise ValueError(f"ramp max {self.max} is below its start {self.start}")


class HoldTime(_Msg, frozen=True, tag="hold"):
    """How long an answered call stays up before the UAC sends BYE."""

    distribution: Literal["fixed", "exponential"] = "fixed"
    mean: NonNegFloat = 0.0


class UserRange(_Msg, frozen=True, tag="users"):
    """Users ``{prefix}{first}`` .. ``{prefix}{first + count - 1}`` at ``domain``."""

    prefix: str
    first: NonNegInt
    count: NonNegInt
    domain: str
    password: str = ""


class Plan(_Msg, frozen=True, tag="plan"):
    """Controller -> agent: what to run.  Limits set to None are unbounded."""

    run_id: str
    scenario: str
    target_host: Annotated[str, msgspec.Meta(min_length=1)]
    target_port: Port
    transport: Literal["udp", "tcp", "tls"]
    rate: NonNegFloat  # calls (or transactions) per second: this agent's share
    duration: PosFloat | None
    start_at: float  # unix time at which every agent starts, so seconds line up
    seed: int
    ramp: Ramp | None = None
    max_calls: NonNegInt | None = None
    max_concurrent: NonNegInt | None = None
    hold: HoldTime = HoldTime()
    users: UserRange | None = None
    # Scenario details (timers, answer mix, arrival process, ...): sipha.loadtest.options.
    options: ScenarioOptions = ScenarioOptions()
    # A SIPp XML scenario and its injection files (scenario "xml"): sipha.loadtest.scenario.wire.
    xml: XmlScenario | None = None

    @property
    def target(self) -> str:
        """``host:port`` (IPv6 literals bracketed)."""
        host = self.target_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.target_port}"


# -- during the run -----------------------------------------------------------------------------


class StatsReport(_Msg, frozen=True, tag="stats"):
    """Agent -> controller: the stats of one second (0 = the second starting at ``start_at``).

    The controller bounds ``second`` and the counters by the plan (:mod:`admission`)."""

    agent_id: AgentId
    second: Annotated[int, msgspec.Meta(ge=0, le=MAX_SECOND)]
    interval: IntervalSnapshot
    scenario: ScenarioSnapshot | None = None  # an XML scenario's per-step statistics so far


class Heartbeat(_Msg, frozen=True, tag="heartbeat"):
    """Either direction: liveness; ``sent_at`` is the sender's unix time."""

    agent_id: AgentId
    seq: NonNegInt
    sent_at: float


class Stop(_Msg, frozen=True, tag="stop"):
    """Controller -> agent: stop starting calls, finish the ones in progress, report Done."""

    reason: str


class SetRate(_Msg, frozen=True, tag="rate"):
    """Controller -> agent: from now on, ``rate`` calls/s (this agent's share of an operator's
    change; the ramp, if any, ends)."""

    rate: NonNegFloat


class Done(_Msg, frozen=True, tag="done"):
    """Agent -> controller: finished; ``totals`` over its whole run (and, for an XML
    scenario, its per-step statistics)."""

    agent_id: AgentId
    totals: IntervalSnapshot
    scenario: ScenarioSnapshot | None = None


Message = Hello | Welcome | Refused | Plan | StatsReport | Heartbeat | Stop | SetRate | Done


class _Frame(msgspec.Struct, array_like=True, frozen=True):
    version: int
    message: msgspec.Raw


_encoder: Final = msgspec.msgpack.Encoder()
_frame_decoder: Final = msgspec.msgpack.Decoder(_Frame)
_message_decoder: Final = msgspec.msgpack.Decoder(Message)
_refused_decoder: Final = msgspec.msgpack.Decoder(Refused)


def encode(msg: Message) -> bytes:
    """One frame: ``[PROTOCOL_VERSION, msg]`` as msgpack."""
    return _encoder.encode(_Frame(PROTOCOL_VERSION, msgspec.Raw(_encoder.encode(msg))))


def decode(data: bytes) -> Message:
    """Decode a frame made by :func:`encode`.

    Raises :class:`VersionMismatch` if the frame's version differs (unless it is a
    :class:`Refused`, which every version can read) and :class:`ProtocolError` for any other
    bad input: not msgpack, not a frame, unknown message type, missing or invalid field.
    """
    try:
        frame = _frame_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"not a sipha protocol frame: {exc}") from exc
    if frame.version != PROTOCOL_VERSION:
        try:
            refused: Refused = _refused_decoder.decode(frame.message)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise VersionMismatch(frame.version) from None
        return refused
    try:
        msg: Message = _message_decoder.decode(frame.message)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"invalid protocol message: {exc}") from exc
    return msg


def negotiate(hello: Hello, *, run_id: str, heartbeat_interval: float = 1.0) -> Welcome | Refused:
    """The controller's answer to a Hello: Welcome if the agent speaks our version, else a
    Refused that says which versions are involved."""
    if hello.version != PROTOCOL_VERSION:
        return Refused(
            reason=(
                f"agent {hello.agent_id!r} speaks protocol version {hello.version}, "
                f"controller speaks version {PROTOCOL_VERSION}"
            )
        )
    return Welcome(
        agent_id=hello.agent_id,
        version=PROTOCOL_VERSION,
        run_id=run_id,
        heartbeat_interval=heartbeat_interval,
    )
