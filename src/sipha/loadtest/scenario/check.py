"""Checks that need the run's settings as well as the scenario: injection files and users.

Run before any call, so a ``[field3]`` on a two-field file, a ``file=`` naming no ``--inf``
file, or USER mode without ``--users`` is an error naming the scenario line.
"""

from __future__ import annotations

from sipha.loadtest.scenario import model as m
from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.injection import InjectionFile, InjectionMode

__all__ = ["check_injections"]


def _templates(step: m.Step) -> list[tuple[m.Template, m.Where]]:
    out: list[tuple[m.Template, m.Where]] = []
    if isinstance(step, m.Send) and step.message is not None:
        msg = step.message
        out += [(t, step.where) for t in (msg.start_line, *msg.headers, *msg.body)]
    for a in step.actions:
        for name in ("message", "value", "key", "line", "username", "password", "command",
                     "host", "port"):
            t = getattr(a, name, None)
            if isinstance(t, m.Template):
                out.append((t, a.where))
    return out


def _find(files: list[InjectionFile], name: str) -> InjectionFile | None:
    for f in files:
        if name in (f.name, f.name.rsplit("/", 1)[-1]):
            return f
    return None


def check_injections(scenario: m.Scenario, files: list[InjectionFile], *, users: int) -> None:
    """Raise :class:`ScenarioError` if the scenario reads data the files cannot give."""
    for f in files:
        if f.mode is InjectionMode.USER:
            if users <= 0:
                raise ScenarioError("USER mode needs --users (SIPp's -users)", file=f.name,
                                    line=1)
            if users > len(f):
                raise ScenarioError(f"USER mode: {users} users but {len(f)} lines",
                                    file=f.name, line=1)
    for step in scenario.steps:
        for a in step.actions:
            if isinstance(a, m.Lookup | m.Insert | m.Replace) and _find(files, a.file) is None:
                raise ScenarioError(f"file {a.file!r} is not an --inf file", file=scenario.file,
                                    line=a.where.line, element=a.where.element)
            found = _find(files, a.file) if isinstance(a, m.Lookup) else None
            if isinstance(a, m.Lookup) and found is not None and found.index_field is None:
                raise ScenarioError(f"lookup in {a.file!r} needs --infindex {a.file} FIELD",
                                    file=scenario.file, line=a.where.line,
                                    element=a.where.element)
        for t, where in _templates(step):
            for kw in t.keywords():
                if not kw.name.startswith("field"):
                    continue
                file_t = kw.param("file")
                fname = file_t.literal if file_t is not None else ""
                inj = _find(files, fname) if fname else (files[0] if files else None)
                if inj is None:
                    what = f"file {fname!r} is not an --inf file" if fname else (
                        f"[{kw.name}] needs an injection file (--inf)")
                    raise ScenarioError(what, file=scenario.file, line=kw.line or where.line,
                                        element=where.element)
                n = int(kw.name[5:])
                if all(n >= len(inj.fields(k)) for k in range(min(len(inj.rows), 1000))):
                    raise ScenarioError(f"[{kw.name}]: no line of {inj.name} has {n + 1} fields",
                                        file=scenario.file, line=kw.line or where.line,
                                        element=where.element)
