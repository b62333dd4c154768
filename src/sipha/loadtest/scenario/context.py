"""What a running call knows, and the rendering of keywords against it.

:class:`RunConfig` is the run's fixed settings (addresses, service, timers); :class:`CallState`
one call's variables, last received message, route set, injection lines and counters.
:func:`render` turns a template into text for that call.  Rendering never raises for data a
peer sent: a missing header renders empty, as in SIPp.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sipha.loadtest.scenario.injection import InjectionFile
from sipha.loadtest.scenario.model import Keyword, Template
from sipha.loadtest.scenario.sipmsg import Received, canonical
from sipha.sip.auth import build_credentials
from sipha.sip.digest_header import parse_challenge
from sipha.sip.errors import SipParseError

__all__ = [
    "BEHAVIORS",
    "CallState",
    "RegexValue",
    "Renderer",
    "RunConfig",
    "Value",
    "parse_behaviors",
    "text_of",
    "to_float",
    "truthy",
]

SIPHA_VERSION = "sipha-0.1.0"
BEHAVIORS = ("bye", "abortunexp", "pingreply")


def parse_behaviors(text: str) -> frozenset[str]:
    """SIPp's -default_behaviors value: ``all``, ``none`` or names, ``-name`` removing one
    (``all,-bye``).  Raises ValueError naming an unknown behaviour."""
    chosen: set[str] = set(BEHAVIORS)
    first = True
    for item in (s.strip() for s in text.split(",") if s.strip()):
        remove = item.startswith("-")
        name = item.lstrip("-")
        if name == "all":
            chosen = set() if remove else set(BEHAVIORS)
        elif name == "none":
            chosen = set(BEHAVIORS) if remove else set()
        elif name in BEHAVIORS:
            if first and not remove:
                chosen = set()
            (chosen.discard if remove else chosen.add)(name)
        else:
            raise ValueError(f"unknown default behaviour {name!r} (known: all, none, "
                             f"{', '.join(BEHAVIORS)})")
        first = False
    return frozenset(chosen)


@dataclass(frozen=True, slots=True)
class RunConfig:
    local_ip: str = "127.0.0.1"
    local_port: int = 5060
    remote_ip: str = "127.0.0.1"
    remote_port: int = 5060
    transport: str = "UDP"
    service: str = "service"
    media_ip: str = ""
    media_port: int = 6000
    pid: int = 0
    users: int = 0
    pause_ms: float = 0.0  # SIPp's -d: the length of a <pause/> without attributes
    recv_timeout: float = 0.0  # seconds; 0: wait forever (SIPp's -recv_timeout)
    max_retrans_invite: int = 5
    max_retrans: int = 7
    t2: float = 4.0
    base_cseq: int = 1
    auth_username: str = ""
    auth_password: str = "password"
    # SIPp's -default_behaviors: bye (clean up aborted calls), abortunexp (abort a call on an
    # unexpected message, answering a BYE or CANCEL 200), pingreply (answer PING 200).
    behaviors: frozenset[str] = frozenset(BEHAVIORS)
    auto_answer: bool = False  # SIPp's -aa: answer unexpected INFO, NOTIFY, UPDATE 200
    wall_offset: float = 0.0  # add to ``now`` for the wall clock ([timestamp], gettimeofday)
    start: float = 0.0  # the run's start on the ``now`` clock ([clock_tick])
    cid_str: str = "%u-%p@%s"  # SIPp's -cid_str: %u call number, %p pid, %s local ip

    def call_id(self, number: int) -> str:
        """The Call-ID of client call ``number`` from ``cid_str`` (SIPp's -cid_str)."""
        out: list[str] = []
        i, s = 0, self.cid_str
        while i < len(s):
            if s[i] == "%" and i + 1 < len(s):
                c = s[i + 1]
                out.append({"u": str(number), "p": str(self.pid), "s": self.local_ip,
                            "%": "%"}.get(c, "%" + c))
                i += 2
            else:
                out.append(s[i])
                i += 1
        return "".join(out)


@dataclass(slots=True)
class RegexValue:
    """An ``ereg`` result: the text matched and whether the regexp matched at all."""

    text: str
    matched: bool

    def __str__(self) -> str:
        return self.text


Value = str | float | bool | RegexValue


def truthy(value: Value | None) -> bool:
    """A variable as a condition (``test=``): a test's answer, a regexp's match, non-zero."""
    if value is None:
        return False
    if isinstance(value, RegexValue):
        return value.matched
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value != 0.0
    return bool(value)


def to_float(value: Value | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    try:
        return float(str(value).strip())
    except ValueError:
        return 0.0


def text_of(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:f}"  # SIPp prints doubles with %lf
    return str(value)


@dataclass(slots=True)
class CallState:
    number: int
    call_id: str
    userid: int
    dest: tuple[str, int]
    started: float
    variables: dict[str, Value] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # injection file name -> line
    last: Received | None = None
    challenge: Received | None = None
    peer_tag: str = ""
    routes: list[str] = field(default_factory=list)
    next_url: str = ""
    cseq: int = 0
    txns: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (method, branch)
    local: tuple[str, int] | None = None  # the call's own socket; None: the run's


@dataclass(slots=True)  # not frozen: made for every template rendered, frozen init is slow
class _Ctx:
    """What rendering one message knows beyond the call."""

    now: float
    step: int
    length: int
    method: str
    uri: str
    branch_txn: str


def _branch(c: RunConfig, call: CallState, k: Keyword, x: _Ctx) -> str:
    if x.branch_txn and x.branch_txn in call.txns:
        return call.txns[x.branch_txn][1]
    return f"z9hG4bK-{c.pid}-{call.number}-{x.step + k.offset}"


def _timestamp(c: RunConfig, _call: CallState, _k: Keyword, x: _Ctx) -> str:
    stamp = dt.datetime.fromtimestamp(x.now + c.wall_offset, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")


def _ip_type(ip: str) -> str:
    return "6" if ":" in ip else "4"


_KeywordFn = Callable[[RunConfig, CallState, Keyword, _Ctx], str]
# Keywords with a fixed name; [$var], [last_*], [fieldN] and [authentication] are matched apart.
_SIMPLE: dict[str, _KeywordFn] = {
    "service": lambda c, call, k, x: c.service,
    "remote_ip": lambda c, call, k, x: call.dest[0],
    "remote_host": lambda c, call, k, x: call.dest[0],
    "remote_port": lambda c, call, k, x: str(call.dest[1] + k.offset),
    # A call with its own socket (-t un/tn, several local addresses) has its own address.
    "local_ip": lambda c, call, k, x: call.local[0] if call.local else c.local_ip,
    "server_ip": lambda c, call, k, x: call.local[0] if call.local else c.local_ip,
    "local_ip_type": lambda c, call, k, x: _ip_type(call.local[0] if call.local
                                                    else c.local_ip),
    "local_port": lambda c, call, k, x: str((call.local[1] if call.local else c.local_port)
                                            + k.offset),
    "transport": lambda c, call, k, x: c.transport,
    "media_ip": lambda c, call, k, x: c.media_ip or c.local_ip,
    "media_ip_type": lambda c, call, k, x: _ip_type(c.media_ip or c.local_ip),
    "media_port": lambda c, call, k, x: str(c.media_port + k.offset),
    "auto_media_port": lambda c, call, k, x: str(
        c.media_port + k.offset + 2 * (call.number % 10000)),
    "call_id": lambda c, call, k, x: call.call_id,
    "call_number": lambda c, call, k, x: str(call.number + k.offset),
    "cseq": lambda c, call, k, x: str(call.cseq + k.offset),
    "branch": _branch,
    "pid": lambda c, call, k, x: str(c.pid),
    "len": lambda c, call, k, x: str(x.length),
    "peer_tag_param": lambda c, call, k, x: f";tag={call.peer_tag}" if call.peer_tag else "",
    "routes": lambda c, call, k, x: "Route: " + ", ".join(call.routes) if call.routes else "",
    "next_url": lambda c, call, k, x: call.next_url,
    "clock_tick": lambda c, call, k, x: str(int((x.now - c.start) * 1000)),
    "timestamp": _timestamp,
    "users": lambda c, call, k, x: str(c.users),
    "userid": lambda c, call, k, x: str(call.userid),
    "sipp_version": lambda c, call, k, x: SIPHA_VERSION,
    "ipv6": lambda c, call, k, x: "",
    "last_Request_URI": lambda c, call, k, x: call.last.request_uri if call.last else "",
    "last_cseq_number": lambda c, call, k, x: str(call.last.cseq_num + k.offset)
    if call.last else "",
    "last_message": lambda c, call, k, x: call.last.text if call.last else "",
}


@dataclass(slots=True)
class Renderer:
    """Renders templates for calls: the run's config, files and random source."""

    config: RunConfig
    files: dict[str, InjectionFile]
    default_file: str
    rng: random.Random

    def file(self, name: str) -> InjectionFile | None:
        if not name:
            return self.files.get(self.default_file)
        if name in self.files:
            return self.files[name]
        for f in self.files.values():
            if f.name.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]:
                return f
        return None

    def render(self, t: Template, call: CallState, *, now: float, step: int = 0,
               length: int = 0, method: str = "", uri: str = "", branch_txn: str = "") -> str:
        lit = t.literal
        if lit is not None:
            return lit
        ctx = _Ctx(now, step, length, method, uri, branch_txn)
        keyword = self.keyword
        return "".join([p if p.__class__ is str else keyword(p, call, ctx)  # type: ignore[arg-type]
                        for p in t.parts])

    def keyword(self, k: Keyword, call: CallState, ctx: _Ctx) -> str:
        fn = _SIMPLE.get(k.name)
        if fn is not None:
            return fn(self.config, call, k, ctx)
        name = k.name
        if name[0] == "$":
            return text_of(call.variables.get(name[1:]))
        if name.startswith("last_"):
            return self._last(name[5:], call)
        if name.startswith("field"):
            return self._field(k, call, ctx.now)
        if name == "authentication":
            return self._auth(k, call, now=ctx.now, method=ctx.method, uri=ctx.uri)
        raise AssertionError(f"keyword [{name}] passed the loader but has no renderer")

    def _last(self, spec: str, call: CallState) -> str:
        if call.last is None:
            return ""
        header, colon, rest = spec.partition(":")
        name = canonical(header)
        if colon and rest.strip().lower() == "value":
            return call.last.header(name)
        return "\r\n".join(call.last.lines(name))

    def _field(self, k: Keyword, call: CallState, now: float) -> str:
        file_t = k.param("file")
        fname = self.render(file_t, call, now=now) if file_t else ""
        f = self.file(fname)
        if f is None:
            return ""
        line_t = k.param("line")
        if line_t is not None:
            try:
                line = int(float(self.render(line_t, call, now=now)))
            except ValueError:
                return ""
            if not 0 <= line < len(f):
                return ""
        else:
            line = call.rows.get(f.name, 0)
        fields = f.fields(line)
        n = int(k.name[5:])
        return fields[n] if n < len(fields) else ""

    def _auth(self, k: Keyword, call: CallState, *, now: float, method: str, uri: str) -> str:
        msg = call.challenge or call.last
        if msg is None:
            return ""
        if msg.status == 407:
            raw, header = msg.header("proxy-authenticate"), "Proxy-Authorization"
        else:
            raw, header = msg.header("www-authenticate"), "Authorization"
        user_t, pass_t = k.param("username"), k.param("password")
        username = self.render(user_t, call, now=now) if user_t else (
            self.config.auth_username or self.config.service)
        password = self.render(pass_t, call, now=now) if pass_t else self.config.auth_password
        if not raw:
            return ""
        try:
            creds = build_credentials(parse_challenge(raw), method=method, uri=uri,
                                      username=username, password=password,
                                      cnonce=f"{self.rng.getrandbits(48):012x}")
        except (SipParseError, ValueError):
            return ""
        return f"{header}: {creds}"
