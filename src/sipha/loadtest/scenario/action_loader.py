"""Building the ``<action>`` children of a step: one function per SIPp action.

Each action's attributes are checked (unknown ones are errors), variables it assigns and
reads are declared to the loader for the used-but-never-assigned check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.xmlread import Node

__all__ = ["ACTIONS", "build_action"]

# The loader (``loader._Loader``): its err/number/flag/target/use/template/where helpers.
Loader = Any


def _check(ld: Loader, node: Node, allowed: set[str]) -> None:
    for attr in node.attrs:
        if attr not in allowed:
            raise ld.err(f"unknown attribute {attr!r} of action <{node.tag}>", node)


def _need(ld: Loader, node: Node, name: str) -> str:
    value = node.attrs.get(name, "")
    if not value:
        raise ld.err(f"action <{node.tag}> needs {name}=", node)
    return value


def _assign(ld: Loader, node: Node) -> str:
    name = _need(ld, node, "assign_to")
    ld.assigned.add(name)
    return name


def _var(ld: Loader, node: Node, attr: str = "variable") -> str:
    name = node.attrs.get(attr, "")
    if name:
        ld.use(name, node)
    return name


def _value_or_var(ld: Loader, node: Node) -> tuple[float | None, str]:
    if "value" in node.attrs:
        return ld.number(node, "value"), ""
    if "variable" in node.attrs:
        return None, _var(ld, node)
    raise ld.err(f"action <{node.tag}> needs value= or variable=", node)


def _ereg(ld: Loader, node: Node) -> m.Ereg:
    _check(ld, node, {"regexp", "search_in", "header", "check_it", "check_it_inverse",
                      "assign_to", "case_indep", "occurrence", "start_line", "variable"})
    pattern = _need(ld, node, "regexp")
    flags = re.IGNORECASE if ld.flag(node, "case_indep") else 0
    try:
        # SIPp uses POSIX extended regexps: translate the character classes Python lacks.
        rx = re.compile(_posix_classes(pattern), flags)
    except re.error as exc:
        raise ld.err(f"regexp {pattern!r}: {exc}", node) from None
    search_in = node.attrs.get("search_in", "msg")
    if search_in not in ("msg", "hdr", "body", "var"):
        raise ld.err(f"search_in={search_in!r}: expected msg, hdr, body or var", node)
    header = node.attrs.get("header", "").strip().rstrip(":").strip().lower()
    if search_in == "hdr" and not header:
        raise ld.err("search_in=hdr needs header=", node)
    variable = _var(ld, node) if search_in == "var" else ""
    if search_in == "var" and not variable:
        raise ld.err("search_in=var needs variable=", node)
    names = tuple(s.strip() for s in node.attrs.get("assign_to", "").split(",") if s.strip())
    ld.assigned.update(names)
    occurrence = int(ld.number(node, "occurrence", 1))
    return m.Ereg(regexp=rx, search_in=search_in, header=header, variable=variable,
                  check_it=ld.flag(node, "check_it"),
                  check_it_inverse=ld.flag(node, "check_it_inverse"), assign_to=names,
                  occurrence=max(1, occurrence), start_line=ld.flag(node, "start_line"),
                  where=ld.where(node))


_POSIX = {"[:alnum:]": "a-zA-Z0-9", "[:alpha:]": "a-zA-Z", "[:digit:]": "0-9",
          "[:space:]": r"\s", "[:upper:]": "A-Z", "[:lower:]": "a-z", "[:xdigit:]": "0-9a-fA-F",
          "[:punct:]": r"!-/:-@\[-`{-~", "[:blank:]": r" \t"}


def _posix_classes(pattern: str) -> str:
    for k, v in _POSIX.items():
        pattern = pattern.replace(k, v)
    return pattern


def _log(ld: Loader, node: Node) -> m.Log:
    _check(ld, node, {"message"})
    return m.Log(ld.template(node, _need(ld, node, "message")), node.tag == "warning",
                 ld.where(node))


def _assign_action(ld: Loader, node: Node) -> m.Assign:
    _check(ld, node, {"assign_to", "value", "variable"})
    value, variable = _value_or_var(ld, node)
    return m.Assign(_assign(ld, node), value, variable, ld.where(node))


def _assignstr(ld: Loader, node: Node) -> m.AssignStr:
    _check(ld, node, {"assign_to", "value"})
    return m.AssignStr(_assign(ld, node), ld.template(node, _need(ld, node, "value")),
                       ld.where(node))


def _arith(cls: Any) -> Callable[[Loader, Node], m.Action]:
    def build(ld: Loader, node: Node) -> m.Action:
        _check(ld, node, {"assign_to", "value", "variable"})
        value, variable = _value_or_var(ld, node)
        name = _assign(ld, node)
        ld.use(name, node)  # it reads the variable it writes
        if cls is m.Divide and value == 0:
            raise ld.err("divide by zero", node)
        return cls(name, value, variable, ld.where(node))  # type: ignore[no-any-return]
    return build


def _sample(ld: Loader, node: Node) -> m.Sample:
    from sipha.loadtest.scenario.loader import DISTRIBUTIONS

    kind = _need(ld, node, "distribution")
    if kind not in DISTRIBUTIONS:
        raise ld.err(f"unknown distribution {kind!r}", node)
    _check(ld, node, {"assign_to", "distribution", *DISTRIBUTIONS[kind]})
    params = tuple(ld.number(node, p) for p in DISTRIBUTIONS[kind])
    return m.Sample(_assign(ld, node), m.Distribution(kind, params), ld.where(node))


def _todouble(ld: Loader, node: Node) -> m.ToDouble:
    _check(ld, node, {"assign_to", "variable"})
    return m.ToDouble(_assign(ld, node), _var(ld, node) or _need(ld, node, "variable"),
                      ld.where(node))


def _test(ld: Loader, node: Node) -> m.Test:
    _check(ld, node, {"assign_to", "variable", "compare", "value", "variable2"})
    compare_text = node.attrs.get("compare", "equal")
    try:
        compare = m.Compare(compare_text)
    except ValueError:
        raise ld.err(f"compare={compare_text!r} (known: "
                     f"{', '.join(c.value for c in m.Compare)})", node) from None
    variable = _var(ld, node) or _need(ld, node, "variable")
    variable2 = _var(ld, node, "variable2")
    value = ld.number(node, "value") if not variable2 else None
    return m.Test(_assign(ld, node), variable, compare, value, variable2, ld.where(node))


def _strcmp(ld: Loader, node: Node) -> m.Strcmp:
    _check(ld, node, {"assign_to", "variable", "value", "variable2"})
    variable = _var(ld, node) or _need(ld, node, "variable")
    variable2 = _var(ld, node, "variable2")
    value = ld.template(node, node.attrs["value"]) if "value" in node.attrs else None
    if value is None and not variable2:
        raise ld.err("action <strcmp> needs value= or variable2=", node)
    return m.Strcmp(_assign(ld, node), variable, value, variable2, ld.where(node))


def _jump(ld: Loader, node: Node) -> m.Jump:
    _check(ld, node, {"value", "variable"})
    if "variable" in node.attrs:
        return m.Jump(None, _var(ld, node), ld.where(node))
    value = _need(ld, node, "value")
    if value in ld.labels:
        return m.Jump(ld.labels[value], "", ld.where(node))
    try:
        target = int(float(value))
    except ValueError:
        raise ld.err(f"jump to a missing label {value!r}", node) from None
    if not 0 <= target <= ld.nsteps:
        raise ld.err(f"jump to step {target}: the scenario has {ld.nsteps} steps", node)
    return m.Jump(target, "", ld.where(node))


def _gettimeofday(ld: Loader, node: Node) -> m.GetTimeOfDay:
    _check(ld, node, {"assign_to"})
    names = tuple(s.strip() for s in _need(ld, node, "assign_to").split(",") if s.strip())
    if not 1 <= len(names) <= 2:
        raise ld.err("gettimeofday assigns to one or two variables (seconds, microseconds)",
                     node)
    ld.assigned.update(names)
    return m.GetTimeOfDay(names, ld.where(node))


def _lookup(ld: Loader, node: Node) -> m.Lookup:
    _check(ld, node, {"assign_to", "file", "key"})
    return m.Lookup(_assign(ld, node), _need(ld, node, "file"),
                    ld.template(node, _need(ld, node, "key")), ld.where(node))


def _insert(ld: Loader, node: Node) -> m.Insert:
    _check(ld, node, {"file", "value"})
    return m.Insert(_need(ld, node, "file"), ld.template(node, _need(ld, node, "value")),
                    ld.where(node))


def _replace(ld: Loader, node: Node) -> m.Replace:
    _check(ld, node, {"file", "line", "value"})
    return m.Replace(_need(ld, node, "file"), ld.template(node, _need(ld, node, "line")),
                     ld.template(node, _need(ld, node, "value")), ld.where(node))


def _setdest(ld: Loader, node: Node) -> m.SetDest:
    _check(ld, node, {"host", "port", "protocol"})
    protocol = _need(ld, node, "protocol").lower()
    if protocol != "udp":
        raise ld.err(f"setdest protocol {protocol!r}: sipha's scenarios run over udp", node)
    return m.SetDest(ld.template(node, _need(ld, node, "host")),
                     ld.template(node, _need(ld, node, "port")), protocol, ld.where(node))


def _verifyauth(ld: Loader, node: Node) -> m.VerifyAuth:
    _check(ld, node, {"assign_to", "username", "password"})
    return m.VerifyAuth(_assign(ld, node), ld.template(node, _need(ld, node, "username")),
                        ld.template(node, _need(ld, node, "password")), ld.where(node))


def _exec(ld: Loader, node: Node) -> m.Exec:
    _check(ld, node, {"command", "int_cmd"})
    if "command" in node.attrs:
        if not ld.allow_exec:
            raise ld.err("exec command= runs shell commands: allowed only with --allow-exec",
                         node)
        return m.Exec(ld.template(node, node.attrs["command"]), "", ld.where(node))
    cmd = _need(ld, node, "int_cmd")
    if cmd not in ("stop_call", "stop_gracefully", "stop_now"):
        raise ld.err(f"int_cmd={cmd!r} (known: stop_call, stop_gracefully, stop_now)", node)
    return m.Exec(None, cmd, ld.where(node))


ACTIONS: dict[str, Callable[[Loader, Node], m.Action]] = {
    "ereg": _ereg,
    "log": _log,
    "warning": _log,
    "assign": _assign_action,
    "assignstr": _assignstr,
    "add": _arith(m.Add),
    "multiply": _arith(m.Multiply),
    "divide": _arith(m.Divide),
    "sample": _sample,
    "todouble": _todouble,
    "test": _test,
    "strcmp": _strcmp,
    "jump": _jump,
    "gettimeofday": _gettimeofday,
    "lookup": _lookup,
    "insert": _insert,
    "replace": _replace,
    "setdest": _setdest,
    "verifyauth": _verifyauth,
    "exec": _exec,
}


def build_action(ld: Loader, node: Node) -> m.Action:
    """The action ``node`` describes.  Raises the loader's ScenarioError for unknown ones."""
    build = ACTIONS.get(node.tag)
    if build is None:
        raise ld.err(f"unknown action <{node.tag}>", node)
    return build(ld, node)
