"""Running a step's ``<action>`` list against one call.

Actions change the call's variables and injection files; a few ask the engine for more
(a jump, a log line, a command, stopping the call or the run): those come back as an
:class:`Outcome`.  A failed ``ereg`` with ``check_it`` fails the call, as in SIPp.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.context import (
    CallState,
    RegexValue,
    Renderer,
    text_of,
    to_float,
)
from sipha.loadtest.scenario.distributions import sample
from sipha.loadtest.scenario.sipmsg import Received
from sipha.sip.auth import compute_ha1, compute_response
from sipha.sip.digest_header import Algorithm, parse_credentials
from sipha.sip.errors import SipParseError

__all__ = ["Outcome", "run_actions"]


@dataclass(slots=True)
class Outcome:
    jump: int | None = None
    failed: str = ""  # a failure reason, "" if the actions passed
    logs: list[tuple[bool, str]] = field(default_factory=list)  # (warning, text)
    commands: list[str] = field(default_factory=list)
    stop_call: bool = False
    stop_run: str = ""  # "", "gracefully" or "now"
    dest: tuple[str, int] | None = None


def run_actions(actions: tuple[m.Action, ...], call: CallState, *, msg: Received | None,
                r: Renderer, rng: random.Random, now: float) -> Outcome:
    out = Outcome()
    v = call.variables
    for a in actions:
        if isinstance(a, m.Ereg):
            failed = _ereg(a, call, msg)
            if failed:
                out.failed = failed
                return out
        elif isinstance(a, m.Log):
            out.logs.append((a.warning, r.render(a.message, call, now=now)))
        elif isinstance(a, m.Assign):
            v[a.assign_to] = a.value if a.value is not None else to_float(v.get(a.variable))
        elif isinstance(a, m.AssignStr):
            v[a.assign_to] = r.render(a.value, call, now=now)
        elif isinstance(a, m.Add | m.Multiply | m.Divide):
            operand = a.value if a.value is not None else to_float(v.get(a.variable))
            cur = to_float(v.get(a.assign_to))
            if isinstance(a, m.Add):
                v[a.assign_to] = cur + operand
            elif isinstance(a, m.Multiply):
                v[a.assign_to] = cur * operand
            else:
                v[a.assign_to] = cur / operand if operand else 0.0
        elif isinstance(a, m.Sample):
            v[a.assign_to] = sample(a.distribution, rng)
        elif isinstance(a, m.ToDouble):
            v[a.assign_to] = to_float(v.get(a.variable))
        elif isinstance(a, m.Test):
            left = to_float(v.get(a.variable))
            right = a.value if a.value is not None else to_float(v.get(a.variable2))
            v[a.assign_to] = _compare(a.compare, left, right)
        elif isinstance(a, m.Strcmp):
            left_s = text_of(v.get(a.variable))
            right_s = (r.render(a.value, call, now=now) if a.value is not None
                       else text_of(v.get(a.variable2)))
            v[a.assign_to] = float((left_s > right_s) - (left_s < right_s))
        elif isinstance(a, m.Jump):
            out.jump = a.target if a.target is not None else int(to_float(v.get(a.variable)))
        elif isinstance(a, m.GetTimeOfDay):
            wall = now + r.config.wall_offset
            v[a.assign_to[0]] = float(int(wall))
            if len(a.assign_to) > 1:
                v[a.assign_to[1]] = float(int((wall - int(wall)) * 1e6))
        elif isinstance(a, m.Lookup):
            f = r.file(a.file)
            v[a.assign_to] = float(f.lookup(r.render(a.key, call, now=now))) if f else -1.0
        elif isinstance(a, m.Insert):
            f = r.file(a.file)
            if f is not None:
                f.insert(r.render(a.value, call, now=now))
        elif isinstance(a, m.Replace):
            f = r.file(a.file)
            if f is not None:
                try:
                    line = int(float(r.render(a.line, call, now=now)))
                except ValueError:
                    line = -1
                if 0 <= line < len(f):
                    f.replace(line, r.render(a.value, call, now=now))
        elif isinstance(a, m.SetDest):
            host = r.render(a.host, call, now=now)
            try:
                port = int(r.render(a.port, call, now=now))
            except ValueError:
                out.failed = "setdest"
                return out
            out.dest = (host, port)
        elif isinstance(a, m.VerifyAuth):
            v[a.assign_to] = _verify(msg, r.render(a.username, call, now=now),
                                     r.render(a.password, call, now=now))
        elif a.command is not None:  # exec command=
            out.commands.append(r.render(a.command, call, now=now))
        elif a.int_cmd == "stop_call":
            out.stop_call = True
        else:
            out.stop_run = "now" if a.int_cmd == "stop_now" else "gracefully"
    return out


def _compare(op: m.Compare, left: float, right: float) -> bool:
    if op is m.Compare.EQUAL:
        return left == right
    if op is m.Compare.NOT_EQUAL:
        return left != right
    if op is m.Compare.GREATER_THAN:
        return left > right
    if op is m.Compare.LESS_THAN:
        return left < right
    if op is m.Compare.GREATER_THAN_EQUAL:
        return left >= right
    return left <= right


def _ereg(a: m.Ereg, call: CallState, msg: Received | None) -> str:
    """Match and assign; the failure reason if the call must fail (check_it), else ""."""
    if a.search_in == "var":
        text = text_of(call.variables.get(a.variable))
    elif msg is None:
        text = ""
    elif a.search_in == "hdr":
        values = msg.values(a.header)
        text = values[min(a.occurrence, len(values)) - 1] if values else ""
        if a.occurrence == 1:
            text = msg.header(a.header)
    elif a.search_in == "body":
        text = msg.body
    else:
        text = msg.text
    if a.start_line and msg is not None and a.search_in != "var":
        text = text.split("\r\n", 1)[0]
    found = None
    for k, mt in enumerate(a.regexp.finditer(text), start=1):
        if k == a.occurrence or a.search_in == "hdr":
            found = mt
            break
    for i, name in enumerate(a.assign_to):
        if found is None:
            call.variables[name] = RegexValue("", False)
        else:
            group = found.group(i) if i <= (a.regexp.groups or 0) else None
            call.variables[name] = RegexValue(group or "", True)
    if a.check_it and found is None:
        if a.search_in == "hdr" and msg is not None and not msg.values(a.header):
            return "regexp_hdr_not_found"
        return "regexp_doesnt_match"
    if a.check_it_inverse and found is not None:
        return "regexp_shouldnt_match"
    return ""


def _verify(msg: Received | None, username: str, password: str) -> bool:
    """Whether the request ``msg`` carries digest credentials right for these (RFC 2617)."""
    if msg is None or not msg.method:
        return False
    raw = msg.header("authorization") or msg.header("proxy-authorization")
    if not raw:
        return False
    try:
        creds = parse_credentials(raw)
        algorithm = creds.algorithm
        if not isinstance(algorithm, Algorithm) or creds.username != username:
            return False
        ha1 = compute_ha1(username, creds.realm, password, algorithm)
        want = compute_response(algorithm=algorithm, ha1=ha1, nonce=creds.nonce,
                                method=msg.method, uri=creds.uri, qop=creds.qop, nc=creds.nc,
                                cnonce=creds.cnonce, body=msg.body.encode())
    except (SipParseError, ValueError):
        return False
    return want == creds.response
