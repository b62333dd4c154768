"""The typed model of a loaded SIPp scenario: steps, actions and message templates.

The loader (:mod:`.loader`) builds it from XML and checks it; the interpreter (:mod:`.call`)
runs it.  Everything here is frozen: one scenario is shared by every call.  Jump targets
(``next``, ``ontimeout``, ``jump``) are resolved to step indexes at load time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "Action",
    "Add",
    "Assign",
    "AssignStr",
    "Distribution",
    "Divide",
    "Ereg",
    "Exec",
    "GetTimeOfDay",
    "Insert",
    "Jump",
    "Keyword",
    "Log",
    "Lookup",
    "MessageTemplate",
    "Multiply",
    "Nop",
    "Pause",
    "Recv",
    "Replace",
    "Sample",
    "Scenario",
    "Send",
    "SetDest",
    "Step",
    "Strcmp",
    "Template",
    "Test",
    "ToDouble",
    "VerifyAuth",
    "Where",
]


@dataclass(frozen=True, slots=True)
class Where:
    """Where an element was written: for errors and for the statistics screen."""

    file: str
    line: int
    element: str


@dataclass(frozen=True, slots=True)
class Keyword:
    """One ``[keyword]`` in a message or an action's text.

    ``name`` is the keyword without offset or parameters (``cseq``, ``last_Via:``, ``$user``,
    ``field3``); ``offset`` the ``+N``/``-N`` of ``[cseq+1]`` or ``[branch-2]``; ``params``
    the ``name=value`` pairs of ``[field0 file=users.csv]`` or ``[authentication ...]``, whose
    values are templates themselves (``username=[field0]``).
    """

    name: str
    offset: int = 0
    params: tuple[tuple[str, Template], ...] = ()
    line: int = 0

    def param(self, name: str) -> Template | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Template:
    """Literal text and keywords, in order.  ``literal`` is the text if there is no keyword
    (rendering it is then free), else None."""

    parts: tuple[str | Keyword, ...]
    literal: str | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        text = None
        if all(isinstance(p, str) for p in self.parts):
            text = "".join(p for p in self.parts if isinstance(p, str))
        object.__setattr__(self, "literal", text)

    def keywords(self) -> list[Keyword]:
        out: list[Keyword] = []
        for p in self.parts:
            if isinstance(p, Keyword):
                out.append(p)
                for _, sub in p.params:
                    out.extend(sub.keywords())
        return out


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A ``<send>``'s message: the start line, header lines and body, each a template.

    The text has been cleaned as SIPp cleans it: blank lines around the message dropped, each
    line's leading blanks removed, lines joined with CRLF, the first blank line separating
    the headers from the body.  A header line that renders empty (``[routes]`` with no route
    set) is left out of the message.
    """

    start_line: Template
    headers: tuple[Template, ...]
    body: tuple[Template, ...]
    method: str  # the request's method, "" for a response
    status: int  # the response's status, 0 for a request


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ereg:
    regexp: re.Pattern[str]
    search_in: str  # msg | hdr | body | var
    header: str  # lower-cased header name for hdr
    variable: str  # source variable for var
    check_it: bool
    check_it_inverse: bool
    assign_to: tuple[str, ...]
    occurrence: int
    start_line: bool
    where: Where


@dataclass(frozen=True, slots=True)
class Log:
    message: Template
    warning: bool
    where: Where


@dataclass(frozen=True, slots=True)
class Assign:
    assign_to: str
    value: float | None
    variable: str
    where: Where


@dataclass(frozen=True, slots=True)
class AssignStr:
    assign_to: str
    value: Template
    where: Where


@dataclass(frozen=True, slots=True)
class Add:
    assign_to: str
    value: float | None
    variable: str
    where: Where


@dataclass(frozen=True, slots=True)
class Multiply:
    assign_to: str
    value: float | None
    variable: str
    where: Where


@dataclass(frozen=True, slots=True)
class Divide:
    assign_to: str
    value: float | None
    variable: str
    where: Where


@dataclass(frozen=True, slots=True)
class Distribution:
    """A SIPp pause/sample distribution; parameters in milliseconds where they are times."""

    kind: str
    params: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Sample:
    assign_to: str
    distribution: Distribution
    where: Where


@dataclass(frozen=True, slots=True)
class ToDouble:
    assign_to: str
    variable: str
    where: Where


class Compare(Enum):
    EQUAL = "equal"
    NOT_EQUAL = "not_equal"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"
    GREATER_THAN_EQUAL = "greater_than_equal"
    LESS_THAN_EQUAL = "less_than_equal"


@dataclass(frozen=True, slots=True)
class Test:
    assign_to: str
    variable: str
    compare: Compare
    value: float | None
    variable2: str
    where: Where


@dataclass(frozen=True, slots=True)
class Strcmp:
    assign_to: str
    variable: str
    value: Template | None
    variable2: str
    where: Where


@dataclass(frozen=True, slots=True)
class Jump:
    target: int | None  # a step index, resolved at load; None: read ``variable``
    variable: str
    where: Where


@dataclass(frozen=True, slots=True)
class GetTimeOfDay:
    assign_to: tuple[str, ...]  # seconds[, microseconds]
    where: Where


@dataclass(frozen=True, slots=True)
class Lookup:
    assign_to: str
    file: str
    key: Template
    where: Where


@dataclass(frozen=True, slots=True)
class Insert:
    file: str
    value: Template
    where: Where


@dataclass(frozen=True, slots=True)
class Replace:
    file: str
    line: Template
    value: Template
    where: Where


@dataclass(frozen=True, slots=True)
class SetDest:
    host: Template
    port: Template
    protocol: str
    where: Where


@dataclass(frozen=True, slots=True)
class VerifyAuth:
    assign_to: str
    username: Template
    password: Template
    where: Where


@dataclass(frozen=True, slots=True)
class Exec:
    """``command`` runs a shell command (only with --allow-exec); ``int_cmd`` is internal."""

    command: Template | None
    int_cmd: str  # stop_call | stop_gracefully | stop_now | ""
    where: Where


Action = (
    Ereg | Log | Assign | AssignStr | Add | Multiply | Divide | Sample | ToDouble | Test
    | Strcmp | Jump | GetTimeOfDay | Lookup | Insert | Replace | SetDest | VerifyAuth | Exec
)


# --- steps ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Common:
    index: int
    where: Where
    next: int | None = None  # resolved step index of ``next=`` (len(steps) = end)
    test: str = ""
    chance: float | None = None
    counter: str = ""
    display: str = ""
    hide: bool = False  # left out of the screen (SIPp's hide="true")
    crlf: bool = False
    rtd: str = ""  # rtd this step stops
    start_rtd: str = ""
    repeat_rtd: bool = False
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True)
class Send(_Common):
    message: MessageTemplate | None = None
    retrans: float = 0.0  # seconds; 0: none
    lost: float = 0.0  # percent
    start_txn: str = ""
    ack_txn: str = ""


@dataclass(frozen=True, slots=True)
class Recv(_Common):
    response: int = 0
    request: str = ""
    request_regexp: re.Pattern[str] | None = None
    cseq_method: str = ""  # a response must answer this method ("" = any)
    response_txn: str = ""
    optional: bool = False
    optional_global: bool = False
    rrs: bool = False
    auth: bool = False
    timeout: float = 0.0  # seconds; 0: the global --recv-timeout
    ontimeout: int | None = None
    lost: float = 0.0


@dataclass(frozen=True, slots=True)
class Pause(_Common):
    milliseconds: float | None = None
    variable: str = ""
    distribution: Distribution | None = None
    timewait: bool = False


@dataclass(frozen=True, slots=True)
class Nop(_Common):
    pass


Step = Send | Recv | Pause | Nop


@dataclass(frozen=True, slots=True)
class Scenario:
    """A loaded, checked scenario."""

    name: str
    file: str
    steps: tuple[Step, ...]
    response_time_repartition: tuple[float, ...] = ()
    call_length_repartition: tuple[float, ...] = ()
    variables: frozenset[str] = field(default_factory=frozenset)

    @property
    def client(self) -> bool:
        """True unless the first step is a recv: calls are then started at a rate (SIPp's
        client mode); a scenario starting with a recv answers calls (server mode)."""
        return bool(self.steps) and not isinstance(self.steps[0], Recv)
