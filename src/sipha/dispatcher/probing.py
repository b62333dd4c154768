"""OPTIONS probing of the servers (Kamailio's ``ds_ping_interval``), on virtual time.

Each probed server gets one OPTIONS every `interval` seconds. A probe has its own timeout
(default 0.5 s), never the 32 s of an OPTIONS transaction: a server that cannot answer in half a
second is not one to send calls to. A probe fails when it times out or is answered with a code
outside `accepted_codes` (``ds_ping_reply_codes``; by default any 2xx, plus 404/405/481 which
prove a live SIP stack). Retransmissions are not sent; the next probe is the retry.

The branch of a probe carries the token ``p<uid>`` so its response is recognised before any
table lookup; the outstanding table maps branch -> (server, sent time) to measure the RTT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sipha.sip.branch import make_branch

from .health import HealthState
from .messages import options_probe
from .state import Server

__all__ = ["DEFAULT_ACCEPTED_CODES", "ProbeResult", "ProbeSettings", "Prober"]

DEFAULT_ACCEPTED_CODES = frozenset({404, 405, 481})


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    interval: float = 0.5
    timeout: float = 0.5
    accepted_codes: frozenset[int] = field(default_factory=lambda: DEFAULT_ACCEPTED_CODES)
    """Non-2xx codes that still count as alive (2xx always does)."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    server: Server
    ok: bool
    detail: str
    rtt_ms: float | None


class Prober:
    """Decides when to probe whom and judges the answers."""

    __slots__ = ("_next", "_outstanding", "_seq", "from_uri", "secret", "settings", "via_host")

    def __init__(self, settings: ProbeSettings, *, secret: bytes, via_host: str, from_uri: str):
        self.settings = settings
        self.secret = secret
        self.via_host = via_host
        self.from_uri = from_uri
        self._outstanding: dict[str, tuple[Server, float]] = {}
        self._next: dict[int, float] = {}
        self._seq = 0

    def next_deadline(self) -> float:
        soonest = min(self._next.values(), default=float("inf"))
        timeout = self.settings.timeout
        for _, sent in self._outstanding.values():
            soonest = min(soonest, sent + timeout)
        return soonest

    def timeout_due(self, now: float) -> bool:
        """True when an outstanding probe has run out of time (its server is judged now)."""
        limit = now - self.settings.timeout
        return any(sent <= limit for _, sent in self._outstanding.values())

    def forget(self, server: Server) -> None:
        self._next.pop(server.uid, None)
        for branch, (s, _) in list(self._outstanding.items()):
            if s is server:
                del self._outstanding[branch]

    def probe_soon(self, server: Server, now: float) -> None:
        """Probe ``server`` at the next tick (a suspect is confirmed or cleared at once)."""
        if server.probing:
            self._next[server.uid] = now

    def tick(
        self, servers: Iterable[Server], now: float
    ) -> tuple[list[ProbeResult], list[tuple[Server, bytes]]]:
        """Time out overdue probes and send the ones that are due."""
        failures: list[ProbeResult] = []
        timeout = self.settings.timeout
        for branch, (server, sent) in list(self._outstanding.items()):
            if now >= sent + timeout:
                del self._outstanding[branch]
                failures.append(
                    ProbeResult(server, False, f"no answer within {timeout:g} s", None)
                )
        sends: list[tuple[Server, bytes]] = []
        nxt = self._next
        for server in servers:
            if not server.probing or server.state is HealthState.DISABLED or server.removed:
                nxt.pop(server.uid, None)
                continue
            due = nxt.get(server.uid)
            if due is None or now >= due:
                nxt[server.uid] = now + self.settings.interval if due is None else max(
                    due + self.settings.interval, now
                )
                sends.append((server, self._probe(server, now)))
        return failures, sends

    def _probe(self, server: Server, now: float) -> bytes:
        self._seq += 1
        seq = self._seq
        branch = make_branch(f"p{server.token}", f"probe{seq}".encode(), self.secret)
        self._outstanding[branch] = (server, now)
        return options_probe(
            uri=server.uri,
            via=f"SIP/2.0/{server.peer.transport.upper()} {self.via_host};branch={branch};rport",
            from_uri=self.from_uri,
            tag=f"p{seq}",
            call_id=f"probe-{server.uid}-{seq}@{self.via_host}",
            cseq=seq,
        )

    def on_response(self, branch: str, status: int, now: float) -> ProbeResult | None:
        """Judge a response to a probe; None for a provisional or an unknown branch."""
        if status < 200:
            return None
        entry = self._outstanding.pop(branch, None)
        if entry is None:
            return None
        server, sent = entry
        rtt = (now - sent) * 1000.0
        if 200 <= status < 300 or status in self.settings.accepted_codes:
            return ProbeResult(server, True, f"answered {status}", rtt)
        return ProbeResult(server, False, f"answered {status}, not an accepted code", rtt)
