"""The scenario interpreter: every call of a run, sans-IO, driven on ``now``.

Theory of operation
-------------------
Each call walks the scenario's steps from index 0 (SIPp's ``msg_index``):

* ``send`` renders the message and queues it (``lost`` drops a share on purpose); with
  ``retrans`` over UDP the message is resent after 0.5 s, 1 s, 2 s ... (doubled each time, capped
  at T2 except for INVITE) until a message of the call is matched, and the call fails after
  ``max_retrans`` resends (5 for INVITE, 7 otherwise, as SIPp);
* ``pause``/``timewait`` waits; ``nop`` runs its actions; ``recv`` waits for a message.

A received message is matched as SIPp matches it: first forward from the current step, over
optional ``recv``s, stopping at the first mandatory step; then backward over earlier optional
``recv``s (contiguous ones, or ``optional="global"``).  A retransmission of the last received
message (same bytes) makes the call resend its last message.  A matched mandatory ``recv`` (or
one with ``next``) moves the call past it; a matched optional one does not.  An unmatched
message is unexpected: the call fails, counted on the step it was at; an unexpected BYE or
CANCEL is first answered 200 (SIPp's default behaviours).  A call that passes its last step is
successful.

After each step ``next`` jumps when ``test``'s variable is true and ``chance`` draws in favour.

Incoming messages find their call by Call-ID.  In server mode (the scenario starts with a
``recv``) a request with an unknown Call-ID starts a call; messages for calls ended in the last
``dead_call_wait`` seconds, and any other unknown ones, are discarded and counted.

The engine reads no clock and does no I/O: feed it :meth:`receive` and :meth:`advance`, take
:meth:`take_outgoing`, and sleep until :meth:`next_deadline`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.abort import InviteDialog, abort_messages
from sipha.loadtest.scenario.actions import run_actions
from sipha.loadtest.scenario.context import CallState, Renderer, RunConfig, to_float, truthy
from sipha.loadtest.scenario.distributions import sample
from sipha.loadtest.scenario.injection import InjectionFile
from sipha.loadtest.scenario.matching import Located, locate
from sipha.loadtest.scenario.sipmsg import Received, read_message
from sipha.loadtest.scenario.stats import RtdStats, ScenarioStats, StepStats

__all__ = ["CallPhase", "Outgoing", "ScenarioEngine"]

Address = tuple[str, int]
MAX_CALLS = 200_000
DEAD_CALL_WAIT = 33.0  # SIPp's -deadcall_wait default


class CallPhase(Enum):
    RUNNING = "running"
    WAITING = "waiting"  # at a recv
    PAUSED = "paused"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Outgoing:
    data: bytes
    dest: Address
    source: Address | None = None  # the call's own socket (-t un/tn); None: the run's


@dataclass(slots=True)
class _Call:
    state: CallState
    scenario: m.Scenario  # the main scenario, or the out-of-call one (-oocsf)
    stats: ScenarioStats  # the engine's stats, or its out-of-call stats
    idx: int = 0
    phase: CallPhase = CallPhase.RUNNING
    wait_until: float | None = None  # pause end or recv timeout
    retrans_msg: bytes = b""
    retrans_at: float | None = None
    retrans_interval: float = 0.0
    retrans_count: int = 0
    retrans_invite: bool = False
    retrans_step: int = 0
    last_recv_hash: bytes = b""
    last_recv_index: int = -1
    last_sent: bytes = b""
    rtd_start: dict[str, float] = field(default_factory=dict)
    rtd_done: set[str] = field(default_factory=set)
    dialog: InviteDialog | None = None  # a client call's INVITE, for aborting it cleanly

    def deadline(self) -> float | None:
        times = [t for t in (self.wait_until, self.retrans_at) if t is not None]
        return min(times) if times else None


class ScenarioEngine:
    """Runs a scenario's calls.  See the module docstring for the rules."""

    def __init__(self, scenario: m.Scenario, config: RunConfig, *, rng: random.Random,
                 files: list[InjectionFile] | None = None,
                 out_of_call: m.Scenario | None = None) -> None:
        self.scenario = scenario
        self.ooc = out_of_call  # SIPp's -oocsf: runs for requests that belong to no call
        self.ooc_stats = (ScenarioStats(steps=[StepStats() for _ in out_of_call.steps])
                          if out_of_call is not None else None)
        self.config = config
        self.rng = rng
        files = files or []
        self.files = {f.name: f for f in files}
        self.renderer = Renderer(config, self.files, files[0].name if files else "", rng)
        self.stats = ScenarioStats(steps=[StepStats() for _ in scenario.steps])
        self.calls: dict[str, _Call] = {}
        self.dead: OrderedDict[str, float] = OrderedDict()
        self._timers: list[tuple[float, int, str]] = []
        self._seq = 0
        self._out: list[Outgoing] = []
        self.logs: list[str] = []
        self.commands: list[str] = []
        self.errors: list[str] = []  # unexpected messages, for --trace-err (the runner drains)
        self.record_rtt = False  # keep each rtd sample for --trace-rtt (the runner drains)
        self.rtt_samples: list[tuple[float, float, str]] = []  # (now, seconds, rtd name)
        self.stop_requested = ""  # "", "gracefully", "now"
        self._next_number = 1
        self.free_users: deque[int] = deque(range(1, config.users + 1))
        # -t un/tn, several local addresses: the runner gives each client call its socket
        # (bind_call(call number) -> local address) and closes those of ended calls (released).
        self.bind_call: Callable[[int], Address | None] | None = None
        self.released: list[Address] = []
        self._jumped = False

    # --- the engine's surface ---

    def take_outgoing(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        while self._timers:
            t, _, cid = self._timers[0]
            call = self.calls.get(cid)
            if call is not None and call.deadline() == t:
                return t
            heapq.heappop(self._timers)
        return None

    def start_call(self, now: float) -> bool:
        """Start one client call; False if none can start (no free user, or too many)."""
        if len(self.calls) >= MAX_CALLS:
            return False
        userid = 0
        if self.config.users:
            if not self.free_users:
                return False
            userid = self.free_users.popleft()
        number = self._next_number
        self._next_number += 1
        cid = self.config.call_id(number)
        call = self._create(cid, number, userid, (self.config.remote_ip, self.config.remote_port),
                            now)
        self._run(call, now)
        return True

    def receive(self, data: bytes, source: Address, now: float) -> None:
        """A datagram arrived from ``source``."""
        msg = read_message(data)
        if msg is None:
            self.stats.malformed += 1
            return
        call = self.calls.get(msg.call_id)
        if call is None:
            if msg.call_id in self.dead:
                self.stats.dead_messages += 1
                return
            if msg.method == "PING" and "pingreply" in self.config.behaviors:
                self._answer_200(msg, source, self.stats)
                return
            if not msg.method or msg.method == "ACK" or len(self.calls) >= MAX_CALLS:
                self.stats.out_of_call += 1
                return
            number = self._next_number
            self._next_number += 1
            if self.scenario.client:
                if self.ooc is None:
                    self.stats.out_of_call += 1
                    return
                call = self._create(msg.call_id, number, 0, source, now, out_of_call=True)
            else:
                userid = self.free_users.popleft() if self.free_users else 0
                call = self._create(msg.call_id, number, userid, source, now)
        self._on_message(call, msg, now)

    def advance(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        while self._timers and self._timers[0][0] <= now:
            t, _, cid = heapq.heappop(self._timers)
            call = self.calls.get(cid)
            if call is None or call.deadline() != t:
                continue
            self._on_timer(call, now)
        while self.dead and next(iter(self.dead.values())) <= now:
            self.dead.popitem(last=False)

    @property
    def current_calls(self) -> int:
        return len(self.calls)

    # --- calls ---

    def _create(self, cid: str, number: int, userid: int, dest: Address, now: float, *,
                out_of_call: bool = False) -> _Call:
        st = CallState(number=number, call_id=cid, userid=userid, dest=dest, started=now,
                       cseq=self.config.base_cseq - 1)
        if self.bind_call is not None and self.scenario.client and not out_of_call:
            st.local = self.bind_call(number)
        if out_of_call:
            assert self.ooc is not None
            assert self.ooc_stats is not None
            call = _Call(st, self.ooc, self.ooc_stats)
        else:
            for f in self.files.values():
                st.rows[f.name] = f.pick(rng=self.rng, userid=userid or number)
            call = _Call(st, self.scenario, self.stats)
        for step in call.scenario.steps:
            if step.rtd:
                call.rtd_start[step.rtd] = now
        self.calls[cid] = call
        call.stats.created += 1
        call.stats.current += 1
        call.stats.peak = max(call.stats.peak, call.stats.current)
        return call

    def _arm(self, call: _Call) -> None:
        t = call.deadline()
        if t is not None:
            self._seq += 1
            heapq.heappush(self._timers, (t, self._seq, call.state.call_id))

    def _end(self, call: _Call, now: float, reason: str = "") -> None:
        call.phase = CallPhase.ENDED
        cid = call.state.call_id
        self.calls.pop(cid, None)
        self.dead[cid] = now + DEAD_CALL_WAIT
        call.stats.current -= 1
        if reason:
            call.stats.failed[reason] += 1
        else:
            call.stats.successful += 1
            call.stats.call_length.add(now - call.state.started,
                                       call.scenario.call_length_repartition)
        if call.state.userid and self.config.users and call.stats is self.stats:
            self.free_users.append(call.state.userid)
        if call.state.local is not None:
            self.released.append(call.state.local)

    def fail_calls_to(self, dest: Address, reason: str, now: float) -> int:
        """End every call talking to ``dest`` as failed with ``reason`` (a TCP connection to
        it was lost and SIPp's -reconnect_close is on); returns how many."""
        doomed = [c for c in self.calls.values() if c.state.dest == dest]
        for call in doomed:
            self._end(call, now, reason)
        return len(doomed)

    def _send(self, call: _Call, data: bytes) -> None:
        call.last_sent = data
        self._out.append(Outgoing(data, call.state.dest, call.state.local))

    def _advance_from(self, call: _Call, step: m.Step) -> None:
        """Move past ``step``: its ``next`` (if ``test`` and ``chance`` allow) or the next."""
        if step.next is not None and (not step.test or truthy(
                call.state.variables.get(step.test))) and (
                step.chance is None or self.rng.random() < step.chance):
            call.idx = step.next
        else:
            call.idx = step.index + 1

    def _rtd(self, call: _Call, step: m.Step, now: float) -> None:
        if step.start_rtd:
            call.rtd_start[step.start_rtd] = now
            call.rtd_done.discard(step.start_rtd)
        if step.rtd and (step.repeat_rtd or step.rtd not in call.rtd_done):
            start = call.rtd_start.get(step.rtd, call.state.started)
            call.stats.rtd.setdefault(step.rtd, RtdStats()).add(
                now - start, call.scenario.response_time_repartition)
            call.rtd_done.add(step.rtd)
            if self.record_rtt and len(self.rtt_samples) < 100_000:
                self.rtt_samples.append((now, now - start, step.rtd))
        if step.counter:
            call.stats.counters[step.counter] += 1

    def _actions(self, call: _Call, step: m.Step, msg: Received | None, now: float) -> bool:
        """Run the step's actions; False if the call ended."""
        if not step.actions:
            return True
        out = run_actions(step.actions, call.state, msg=msg, r=self.renderer, rng=self.rng,
                          now=now)
        if len(self.logs) < 10_000:  # the runner drains them every tick
            self.logs.extend(("warning: " if w else "") + text for w, text in out.logs)
        call.stats.warnings += sum(1 for w, _ in out.logs if w)
        if len(self.commands) < 1_000:
            self.commands.extend(out.commands)
        if out.stop_run:
            self.stop_requested = out.stop_run
        if out.dest is not None:
            call.state.dest = out.dest
        if out.failed:
            self._end(call, now, out.failed)
            return False
        if out.stop_call:
            self._end(call, now, "stopped")
            return False
        if out.jump is not None:
            call.idx = max(0, min(out.jump, len(call.scenario.steps)))
            call.phase = CallPhase.RUNNING
            self._jumped = True
        return True

    def _run(self, call: _Call, now: float) -> None:
        steps = call.scenario.steps
        call.phase = CallPhase.RUNNING
        call.wait_until = None
        budget = 10_000  # a scenario looping on nop/next without waiting must not hang us
        while call.phase is CallPhase.RUNNING:
            budget -= 1
            if budget <= 0:
                self._end(call, now, "loop")
                return
            if call.idx >= len(steps):
                self._end(call, now)
                return
            step = steps[call.idx]
            if isinstance(step, m.Recv):
                call.phase = CallPhase.WAITING
                timeout = step.timeout or self.config.recv_timeout
                call.wait_until = now + timeout if timeout else None
                break
            if isinstance(step, m.Pause):
                call.phase = CallPhase.PAUSED
                call.wait_until = now + self._pause_seconds(call, step)
                call.stats.steps[step.index].messages += 1
                break
            self._jumped = False
            if isinstance(step, m.Send):
                self._do_send(call, step, now)
            else:
                call.stats.steps[step.index].messages += 1
            self._rtd(call, step, now)
            if not self._actions(call, step, None, now):
                return
            if not self._jumped:
                self._advance_from(call, step)
        self._arm(call)

    def _pause_seconds(self, call: _Call, step: m.Pause) -> float:
        if step.milliseconds is not None:
            ms = step.milliseconds
        elif step.variable:
            ms = to_float(call.state.variables.get(step.variable))
        elif step.distribution is not None:
            ms = sample(step.distribution, self.rng)
        else:
            ms = self.config.pause_ms
        return max(0.0, ms) / 1000.0

    def _render(self, call: _Call, step: m.Send, now: float) -> tuple[bytes, str, list[str]]:
        """The message of ``step`` for ``call``: bytes, method ("" for a response), lines."""
        msg = step.message
        assert msg is not None  # the loader gives every send a message
        st = call.state
        r = self.renderer
        start = r.render(msg.start_line, st, now=now, step=step.index, branch_txn=step.ack_txn)
        words = start.split(" ")
        method = words[0] if msg.method else ""
        uri = words[1] if msg.method and len(words) > 1 else ""
        body = "".join(r.render(t, st, now=now, step=step.index) + "\r\n" for t in msg.body)
        length = len(body.encode())
        lines = [start]
        for t in msg.headers:
            text = r.render(t, st, now=now, step=step.index, length=length, method=method,
                            uri=uri, branch_txn=step.ack_txn)
            if text.strip():
                lines.append(text)
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode(), method, lines

    def _do_send(self, call: _Call, step: m.Send, now: float) -> None:
        msg = step.message
        assert msg is not None
        st = call.state
        if msg.method and msg.method not in ("ACK", "CANCEL"):
            st.cseq += 1
        data, method, lines = self._render(call, step, now)
        if step.start_txn:
            branch = ""
            for line in lines:
                if line.lower().startswith("via:") and "branch=" in line:
                    branch = line.split("branch=", 1)[1].split(";")[0].strip()
                    break
            st.txns[step.start_txn] = (method, branch)
        if call.scenario.client and method == "INVITE":
            sent = read_message(data)
            call.dialog = InviteDialog(sent) if sent is not None else None
        elif method == "ACK" and call.dialog is not None:
            call.dialog.acked = True
        stats = call.stats.steps[step.index]
        if step.lost and self.rng.random() * 100 < step.lost:
            stats.lost += 1
            call.last_sent = data
        else:
            stats.messages += 1
            self._send(call, data)
        if step.retrans and self.config.transport == "UDP":
            call.retrans_msg = data
            call.retrans_interval = step.retrans
            call.retrans_at = now + step.retrans
            call.retrans_count = 0
            call.retrans_invite = method == "INVITE"
            call.retrans_step = step.index

    def _on_timer(self, call: _Call, now: float) -> None:
        if call.retrans_at is not None and call.retrans_at <= now:
            limit = (self.config.max_retrans_invite if call.retrans_invite
                     else self.config.max_retrans)
            if call.retrans_count >= limit:
                call.stats.steps[call.retrans_step].timeouts += 1
                self._end(call, now, "max_udp_retrans")
                return
            call.retrans_count += 1
            call.stats.steps[call.retrans_step].retrans += 1
            self._out.append(Outgoing(call.retrans_msg, call.state.dest, call.state.local))
            call.retrans_interval *= 2
            if not call.retrans_invite:
                call.retrans_interval = min(call.retrans_interval, self.config.t2)
            call.retrans_at = now + call.retrans_interval
        if call.wait_until is not None and call.wait_until <= now:
            step = call.scenario.steps[call.idx]
            call.wait_until = None
            if call.phase is CallPhase.PAUSED:
                self._advance_from(call, step)
                self._run(call, now)
                return
            if call.phase is CallPhase.WAITING and isinstance(step, m.Recv):
                call.stats.steps[step.index].timeouts += 1
                if step.ontimeout is not None:
                    call.idx = step.ontimeout
                    self._run(call, now)
                    return
                self._end(call, now, "recv_timeout")
                return
        self._arm(call)

    # --- received messages ---

    def _on_message(self, call: _Call, msg: Received, now: float) -> None:
        steps = call.scenario.steps
        if call.dialog is not None:
            call.dialog.observe(msg)
        digest = hashlib.blake2b(msg.text.encode(), digest_size=16).digest()
        if digest == call.last_recv_hash and call.last_recv_index >= 0:
            call.stats.steps[call.last_recv_index].retrans += 1
            if call.last_sent:
                self._out.append(Outgoing(call.last_sent, call.state.dest, call.state.local))
            return
        where, found = locate(steps, call.idx, msg, call.state.txns)
        if where is Located.ACK_AGAIN:
            ack = steps[found]
            assert isinstance(ack, m.Send)
            call.stats.steps[found].retrans += 1
            self._out.append(Outgoing(self._render(call, ack, now)[0], call.state.dest,
                                      call.state.local))
            return
        if where is Located.UNEXPECTED:
            self._unexpected(call, msg, now)
            return
        step = steps[found]
        assert isinstance(step, m.Recv)
        if step.lost and self.rng.random() * 100 < step.lost:
            call.stats.steps[found].lost += 1
            return
        call.retrans_at = None  # any matched message ends our retransmissions (as SIPp)
        call.stats.steps[found].messages += 1
        call.last_recv_hash, call.last_recv_index = digest, found
        st = call.state
        st.last = msg
        tag = msg.tag("to") if msg.status else msg.tag("from")
        if tag:
            st.peer_tag = tag
        if step.auth or msg.status in (401, 407):
            st.challenge = msg
        if step.rrs:
            rr = [v.strip() for value in msg.values("record-route") for v in value.split(",")]
            st.routes = list(reversed(rr)) if msg.status else rr
            contact = msg.header("contact")
            st.next_url = contact[contact.find("<") + 1:contact.find(">")] if "<" in contact \
                else contact.split(";")[0].strip()
        self._rtd(call, step, now)
        self._jumped = False
        if not self._actions(call, step, msg, now):
            return
        if self._jumped:
            self._run(call, now)
        elif not step.optional or step.next is not None:
            self._advance_from(call, step)
            self._run(call, now)
        else:
            self._arm(call)

    def _answer_200(self, msg: Received, dest: Address, stats: ScenarioStats,
                    source: Address | None = None) -> None:
        lines = ["SIP/2.0 200 OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            lines.extend(msg.lines(name))
        lines.append("Content-Length: 0")
        self._out.append(Outgoing(("\r\n".join(lines) + "\r\n\r\n").encode(), dest, source))
        stats.auto_answered += 1

    def _unexpected(self, call: _Call, msg: Received, now: float) -> None:
        """A message of the call that no step expects (SIPp's default behaviours)."""
        behaviors = self.config.behaviors
        if (msg.method == "PING" and "pingreply" in behaviors) or (
                self.config.auto_answer and msg.method in ("INFO", "NOTIFY", "UPDATE")):
            self._answer_200(msg, call.state.dest, call.stats, call.state.local)  # call goes on
            return
        call.stats.steps[min(call.idx, len(call.stats.steps) - 1)].unexpected += 1
        if "abortunexp" not in behaviors:
            return  # SIPp: "Continuing call on unexpected message"
        if len(self.errors) < 1000:
            steps = call.scenario.steps
            step = steps[call.idx] if call.idx < len(steps) else None
            expecting = (f"while expecting '{step.request or step.response}' (index {call.idx})"
                         if isinstance(step, m.Recv) else f"at index {call.idx}")
            self.errors.append(f"Aborting call on unexpected message for Call-Id "
                               f"'{call.state.call_id}': {expecting}, received "
                               f"'{msg.start_line}'")
        if msg.method in ("BYE", "CANCEL"):
            self._answer_200(msg, call.state.dest, call.stats, call.state.local)
        elif "bye" in behaviors and call.dialog is not None:
            branch = f"z9hG4bK-{self.config.pid}-{call.state.number}-abort"
            for data in abort_messages(call.dialog, unexpected=msg, new_branch=branch):
                self._out.append(Outgoing(data, call.state.dest, call.state.local))
        self._end(call, now, "unexpected")
