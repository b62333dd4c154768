"""Reading scenario XML into a small element tree that remembers each element's line.

``xml.etree`` forgets line numbers; errors must name them, so this reads with expat
directly.  Entity declarations are refused (a scenario has no use for them, and they are how
XML bombs expand), and the file size is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

from sipha.loadtest.scenario.errors import ScenarioError

__all__ = ["MAX_SCENARIO_BYTES", "Node", "parse_xml"]

MAX_SCENARIO_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class Node:
    tag: str
    attrs: dict[str, str]
    line: int
    children: list[Node] = field(default_factory=list)
    text: str = ""
    text_line: int = 0


def parse_xml(data: bytes, *, file: str) -> Node:
    """The root element of ``data``.  Raises :class:`ScenarioError` for malformed XML."""
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"larger than {MAX_SCENARIO_BYTES} bytes", file=file)
    parser = expat.ParserCreate()
    stack: list[Node] = []
    root: list[Node] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = Node(tag, dict(attrs), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            node = stack[-1]
            if not node.text:
                node.text_line = parser.CurrentLineNumber
            node.text += text

    def entity(name: str, *_args: object) -> None:
        raise ScenarioError(f"entity declaration {name!r} refused", file=file,
                            line=parser.CurrentLineNumber)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ScenarioError(f"malformed XML: {expat.errors.messages[exc.code]}", file=file,
                            line=exc.lineno) from None
    if not root:
        raise ScenarioError("no root element", file=file)
    return root[0]
