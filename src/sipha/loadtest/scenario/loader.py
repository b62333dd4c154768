"""Loading a SIPp XML scenario into the checked model of :mod:`.model`.

Theory of operation
-------------------
Two passes over the element tree.  The first numbers the steps (``send``, ``recv``,
``pause``, ``timewait``, ``nop``: SIPp's "messages") and records each ``label``'s index.  The
second builds each step, resolving ``next``/``ontimeout``/``jump`` to indexes and compiling
message texts (:mod:`.template`).  Last, variables are checked: one used (``[$x]``,
``test="x"``, ``variable="x"``) but assigned by no action is an error, as in SIPp.

Everything SIPp has and sipha does not support (3PCC ``sendCmd``/``recvCmd``, media actions,
``condexec``) is refused by name: a scenario never runs with a part silently left out.
Every error is a :class:`~.errors.ScenarioError` naming the file, line and element.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.template import compile_message, compile_text
from sipha.loadtest.scenario.xmlread import Node, parse_xml

__all__ = ["DISTRIBUTIONS", "load_scenario", "load_scenario_text"]

_STEP_TAGS = ("send", "recv", "pause", "timewait", "nop")
_COMMON = {"next", "test", "chance", "counter", "display", "crlf", "rtd", "start_rtd",
           "repeat_rtd", "hide"}
_ATTRS: dict[str, set[str]] = {
    "send": _COMMON | {"retrans", "lost", "start_txn", "ack_txn"},
    "recv": _COMMON | {"response", "request", "optional", "rrs", "auth", "timeout",
                       "ontimeout", "regexp_match", "response_txn", "lost"},
    "pause": _COMMON | {"milliseconds", "variable", "distribution", "value", "min", "max",
                        "mean", "stdev", "lambda", "k", "x_m", "theta", "p", "n",
                        "sanity_check"},
    "timewait": _COMMON | {"milliseconds"},
    "nop": _COMMON,
}
# name -> parameter names, in the order :mod:`.distributions` takes them.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "fixed": ("value",),
    "uniform": ("min", "max"),
    "normal": ("mean", "stdev"),
    "lognormal": ("mean", "stdev"),
    "exponential": ("mean",),
    "weibull": ("lambda", "k"),
    "pareto": ("k", "x_m"),
    "gamma": ("k", "theta"),
    "negbin": ("p", "n"),
}
_UNSUPPORTED = {
    "sendCmd": "3PCC (sendCmd) is not supported by sipha",
    "recvCmd": "3PCC (recvCmd) is not supported by sipha",
    "play_pcap_audio": "media (pcap play) is not supported by sipha",
    "play_pcap_image": "media (pcap play) is not supported by sipha",
    "play_pcap_video": "media (pcap play) is not supported by sipha",
    "rtp_stream": "media (rtp_stream) is not supported by sipha",
    "rtp_echo": "media (rtp_echo) is not supported by sipha",
    "setdest_orig": "setdest_orig is not supported by sipha",
    "trim": "the trim action is not supported by sipha",
    "urldecode": "the urldecode action is not supported by sipha",
    "urlencode": "the urlencode action is not supported by sipha",
}
_MAX_STEPS = 10_000


def load_scenario(path: str | Path, *, allow_exec: bool = False) -> m.Scenario:
    """Load and check the scenario file at ``path``.  Raises :class:`ScenarioError`."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return load_scenario_text(data, file=str(path), allow_exec=allow_exec)


def load_scenario_text(data: bytes | str, *, file: str, allow_exec: bool = False) -> m.Scenario:
    """Load and check a scenario given as text; ``file`` names it in errors."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _Loader(file, allow_exec).load(parse_xml(raw, file=file))


class _Loader:
    def __init__(self, file: str, allow_exec: bool) -> None:
        self.file = file
        self.allow_exec = allow_exec
        self.labels: dict[str, int] = {}
        self.nsteps = 0
        self.assigned: set[str] = set()
        self.used: list[tuple[str, int, str]] = []  # (variable, line, element)

    def err(self, message: str, node: Node, line: int = 0) -> ScenarioError:
        return ScenarioError(message, file=self.file, line=line or node.line, element=node.tag)

    def fail_for(self, node: Node) -> Callable[[str, int], Exception]:
        return lambda message, line: self.err(message, node, line)

    # --- driver ---

    def load(self, root: Node) -> m.Scenario:
        if root.tag != "scenario":
            raise self.err("the root element must be <scenario>", root)
        for child in root.children:
            if child.tag in _STEP_TAGS:
                self.nsteps += 1
                if self.nsteps > _MAX_STEPS:
                    raise self.err(f"more than {_MAX_STEPS} steps", child)
            elif child.tag == "label":
                lid = child.attrs.get("id", "")
                if not lid:
                    raise self.err("a label needs an id", child)
                if lid in self.labels:
                    raise self.err(f"label {lid!r} defined twice", child)
                self.labels[lid] = self.nsteps
        steps: list[m.Step] = []
        rtr: tuple[float, ...] = ()
        clr: tuple[float, ...] = ()
        last_method = ""
        for child in root.children:
            tag = child.tag
            if tag in _UNSUPPORTED:
                raise self.err(_UNSUPPORTED[tag], child)
            if tag in _STEP_TAGS:
                step = self.step(child, len(steps), last_method)
                if (isinstance(step, m.Send) and step.message and step.message.method
                        and step.message.method != "ACK"):
                    last_method = step.message.method
                steps.append(step)
            elif tag == "label":
                continue
            elif tag in ("ResponseTimeRepartition", "CallLengthRepartition"):
                values = self.numbers(child, child.attrs.get("value", ""))
                if tag == "ResponseTimeRepartition":
                    rtr = values
                else:
                    clr = values
            elif tag in ("Reference", "Global", "User"):
                names = child.attrs.get("variables", "")
                for name in filter(None, (s.strip() for s in names.split(","))):
                    if tag != "Reference":
                        self.assigned.add(name)
            else:
                raise self.err(f"unknown element <{tag}>", child)
        if not steps:
            raise self.err("the scenario has no send, recv, pause or nop", root)
        for name, line, element in self.used:
            if name not in self.assigned:
                raise ScenarioError(f"variable ${name} is used but never assigned",
                                    file=self.file, line=line, element=element)
        return m.Scenario(
            name=root.attrs.get("name", ""), file=self.file, steps=tuple(steps),
            response_time_repartition=rtr, call_length_repartition=clr,
            variables=frozenset(self.assigned),
        )

    # --- attribute readers ---

    def numbers(self, node: Node, text: str) -> tuple[float, ...]:
        try:
            return tuple(float(v) for v in text.replace(" ", "").split(",") if v)
        except ValueError:
            raise self.err(f"expected comma-separated numbers, got {text!r}", node) from None

    def number(self, node: Node, name: str, default: float | None = None) -> float:
        text = node.attrs.get(name)
        if text is None:
            if default is None:
                raise self.err(f"attribute {name!r} is required", node)
            return default
        try:
            return float(text)
        except ValueError:
            raise self.err(f"{name}={text!r} is not a number", node) from None

    def flag(self, node: Node, name: str) -> bool:
        text = node.attrs.get(name, "false").lower()
        if text not in ("true", "false", "global", "1", "0"):
            raise self.err(f"{name}={text!r}: expected true or false", node)
        return text in ("true", "global", "1")

    def target(self, node: Node, label: str) -> int:
        if label in self.labels:
            return self.labels[label]
        raise self.err(f"jump to a missing label {label!r}", node)

    def use(self, name: str, node: Node, line: int = 0) -> None:
        self.used.append((name, line or node.line, node.tag))

    def template(self, node: Node, text: str) -> m.Template:
        t = compile_text(text, line=node.line, fail=self.fail_for(node))
        self.use_keywords(t, node)
        return t

    def use_keywords(self, t: m.Template, node: Node) -> None:
        for kw in t.keywords():
            if kw.name.startswith("$"):
                self.use(kw.name[1:], node, kw.line)

    def where(self, node: Node) -> m.Where:
        return m.Where(self.file, node.line, node.tag)

    # --- steps ---

    def step(self, node: Node, index: int, last_method: str) -> m.Step:
        tag = node.tag
        for attr in node.attrs:
            if attr not in _ATTRS[tag]:
                if attr in ("condexec", "condexec_inverse"):
                    raise self.err(f"attribute {attr!r} is not supported by sipha", node)
                raise self.err(f"unknown attribute {attr!r}", node)
        a = node.attrs
        common: dict[str, Any] = {"index": index, "where": self.where(node)}
        if "next" in a:
            common["next"] = self.target(node, a["next"])
        if "test" in a:
            common["test"] = a["test"]
            self.use(a["test"], node)
        if "chance" in a:
            chance = self.number(node, "chance")
            if not 0.0 <= chance <= 1.0:
                raise self.err(f"chance={chance} is not a probability in [0, 1]", node)
            common["chance"] = chance
        common["counter"] = a.get("counter", "")
        common["display"] = a.get("display", "")
        common["crlf"] = self.flag(node, "crlf") if "crlf" in a else False
        common["hide"] = self.flag(node, "hide") if "hide" in a else False
        for name in ("rtd", "start_rtd"):
            if name in a:
                value = a[name]
                common[name] = "1" if value.lower() == "true" else value
        common["repeat_rtd"] = self.flag(node, "repeat_rtd") if "repeat_rtd" in a else False
        actions: tuple[m.Action, ...] = ()
        for child in node.children:
            if child.tag == "action":
                if tag == "pause" or tag == "timewait":
                    raise self.err("a pause has no actions", child)
                actions += tuple(self.action(c) for c in child.children)
            elif child.tag in _UNSUPPORTED:
                raise self.err(_UNSUPPORTED[child.tag], child)
            else:
                raise self.err(f"unknown element <{child.tag}> inside <{tag}>", child)
        common["actions"] = actions
        if tag == "send":
            return self.send(node, common)
        if tag == "recv":
            return self.recv(node, common, last_method)
        if tag in ("pause", "timewait"):
            return self.pause(node, common)
        return m.Nop(**common)

    def send(self, node: Node, common: dict[str, Any]) -> m.Send:
        if not node.text.strip():
            raise self.err("a send needs a message (CDATA)", node)
        msg = compile_message(node.text, line=node.text_line or node.line,
                              fail=self.fail_for(node))
        for t in (msg.start_line, *msg.headers, *msg.body):
            self.use_keywords(t, node)
        retrans = self.number(node, "retrans", 0.0) / 1000.0
        lost = self.number(node, "lost", 0.0)
        if not 0 <= lost <= 100:
            raise self.err(f"lost={lost}: a percentage in [0, 100]", node)
        return m.Send(**common, message=msg, retrans=retrans, lost=lost,
                      start_txn=node.attrs.get("start_txn", ""),
                      ack_txn=node.attrs.get("ack_txn", ""))

    def recv(self, node: Node, common: dict[str, Any], last_method: str) -> m.Recv:
        a = node.attrs
        if ("response" in a) == ("request" in a):
            raise self.err("a recv needs exactly one of response= or request=", node)
        response, request, rx = 0, "", None
        if "response" in a:
            text = a["response"]
            if not (text.isdigit() and 100 <= int(text) <= 699):
                raise self.err(f"response={text!r} is not a status code", node)
            response = int(text)
        else:
            request = a["request"]
            if self.flag(node, "regexp_match"):
                try:
                    rx = re.compile(request)
                except re.error as exc:
                    raise self.err(f"request regexp {request!r}: {exc}", node) from None
        optional = a.get("optional", "false").lower()
        if optional not in ("true", "false", "global"):
            raise self.err(f"optional={optional!r}: expected true, false or global", node)
        ontimeout = self.target(node, a["ontimeout"]) if "ontimeout" in a else None
        return m.Recv(
            **common, response=response, request=request, request_regexp=rx,
            cseq_method=last_method if response and "response_txn" not in a else "",
            response_txn=a.get("response_txn", ""), optional=optional != "false",
            optional_global=optional == "global", rrs=self.flag(node, "rrs"),
            auth=self.flag(node, "auth"), timeout=self.number(node, "timeout", 0.0) / 1000.0,
            ontimeout=ontimeout, lost=self.number(node, "lost", 0.0),
        )

    def pause(self, node: Node, common: dict[str, Any]) -> m.Pause:
        a = node.attrs
        timewait = node.tag == "timewait"
        if "variable" in a:
            self.use(a["variable"], node)
            return m.Pause(**common, variable=a["variable"], timewait=timewait)
        if "distribution" in a:
            kind = a["distribution"]
            if kind not in DISTRIBUTIONS:
                raise self.err(f"unknown distribution {kind!r} (known: "
                               f"{', '.join(DISTRIBUTIONS)})", node)
            params = tuple(self.number(node, p) for p in DISTRIBUTIONS[kind])
            return m.Pause(**common, distribution=m.Distribution(kind, params),
                           timewait=timewait)
        if "milliseconds" in a:
            ms = self.number(node, "milliseconds")
            if ms < 0:
                raise self.err("milliseconds must not be negative", node)
            return m.Pause(**common, milliseconds=ms, timewait=timewait)
        return m.Pause(**common, timewait=timewait)  # the run's --pause (SIPp's -d)

    # --- actions ---

    def action(self, node: Node) -> m.Action:
        from sipha.loadtest.scenario.action_loader import build_action

        if node.tag in _UNSUPPORTED:
            raise self.err(_UNSUPPORTED[node.tag], node)
        return build_action(self, node)
