"""The live view of a run in the terminal (rich), or plain lines when output is not a terminal.

The runner hands a :class:`Snapshot` once a second; this module only draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

__all__ = ["Progress", "Snapshot"]


@dataclass
class Snapshot:
    name: str
    profile: str
    t: float
    duration: float
    stage: str
    nodes: list[tuple[str, str, str]] = field(default_factory=list)  # name, state, detail
    attempted: int = 0
    successful: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)


def _render(s: Snapshot) -> Group:
    head = Text.assemble(
        (f"{s.name} ", "bold"), (f"[{s.profile}] ", "cyan"), f"{s.stage}  ",
        f"t = {s.t:6.1f} / {s.duration:.0f} s",
    )
    bar = ProgressBar(total=max(s.duration, 1e-9), completed=min(max(s.t, 0.0), s.duration),
                      width=60)
    calls = Text.assemble(
        "calls: ", (f"{s.attempted} attempted", "blue"), ", ",
        (f"{s.successful} successful", "green"), ", ",
        (f"{s.failed} failed", "red" if s.failed else "green"),
        f"  {s.failed_by_reason}" if s.failed_by_reason else "",
    )
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    table.add_column("node")
    table.add_column("state")
    table.add_column("")
    for name, state, detail in s.nodes:
        style = {"running": "green", "stopped": "yellow", "exited": "red"}.get(state, "")
        table.add_row(name, Text(state, style=style), detail)
    events = Text("\n".join(s.events[-6:]), style="dim")
    return Group(head, bar, calls, table, events)


class Progress:
    """Draws snapshots: a rich Live panel on a terminal, a line every ``every`` s otherwise."""

    def __init__(self, console: Console | None = None, *, every: float = 5.0) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._every = every
        self._last_line = -1e9

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, snap: Snapshot) -> None:
        if self._live is not None:
            self._live.update(_render(snap))
            return
        if snap.t - self._last_line >= self._every or snap.stage != "load":
            self._last_line = snap.t
            self.console.print(
                f"[{snap.name} {snap.profile}] {snap.stage} t={snap.t:.1f}/{snap.duration:.0f}s "
                f"attempted={snap.attempted} successful={snap.successful} failed={snap.failed}",
                highlight=False, markup=False,
            )

    def log(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)
