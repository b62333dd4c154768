"""What the operator sees while a run goes: a rich live view on a terminal, log lines otherwise.

Both views take the same calls: ``second(...)`` once per merged second, ``event(text)`` for
things like a lost agent, ``close()`` at the end.  Neither reads the clock.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol, TextIO

from sipha.loadtest.stats import IntervalStats, failures_by_reason

if TYPE_CHECKING:
    from rich.console import Group

__all__ = ["LiveView", "PlainView", "RichView", "make_view"]


class LiveView(Protocol):
    def second(
        self, second: int, stats: IntervalStats, totals: IntervalStats, target_rate: float
    ) -> None: ...

    def event(self, text: str) -> None: ...

    def close(self) -> None: ...


def _failures(stats: IntervalStats) -> str:
    reasons = failures_by_reason(stats.failed_by_reason)
    return " ".join(f"{k}:{n}" for k, n in reasons.items()) or "-"


class PlainView:
    """One line per second on ``stream`` (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, *, duration: float | None = None) -> None:
        self.stream = stream or sys.stdout
        self.duration = duration

    def second(
        self, second: int, stats: IntervalStats, totals: IntervalStats, target_rate: float
    ) -> None:
        p99 = stats.percentiles("setup_200")["p99"]
        self.stream.write(
            f"[{second + 1:>5}s] rate {stats.calls_attempted}/s (target {target_rate:g}) "
            f"ok {stats.calls_successful} failed {stats.calls_failed} "
            f"concurrent {stats.concurrent_calls} retrans {stats.retransmissions} "
            f"p99 {p99:.1f} ms | total ok {totals.calls_successful} "
            f"failed {totals.calls_failed} ({_failures(totals)})\n"
        )
        self.stream.flush()

    def event(self, text: str) -> None:
        self.stream.write(f"*** {text}\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class RichView:
    """A rich ``Live`` panel: progress over the planned duration, rate, outcomes, p99."""

    def __init__(self, *, duration: float | None, title: str = "sipha load") -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console()
        self.title = title
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(), console=self.console,
        )
        self.task = self.progress.add_task(title, total=duration or None)
        self.events: list[str] = []
        self.live = Live(self._render(None, None, 0.0), console=self.console,
                         refresh_per_second=4, transient=False)
        self.live.start()

    def _render(
        self, stats: IntervalStats | None, totals: IntervalStats | None, target: float
    ) -> Group:
        from rich.console import Group
        from rich.table import Table

        table = Table(show_header=True, header_style="bold")
        for col in ("", "this second", "total"):
            table.add_column(col, justify="right")
        if stats is not None and totals is not None:
            table.add_row("attempts", f"{stats.calls_attempted}/s (target {target:g})",
                          str(totals.calls_attempted))
            table.add_row("successful", str(stats.calls_successful), str(totals.calls_successful))
            table.add_row("failed", str(stats.calls_failed), str(totals.calls_failed))
            table.add_row("failures by reason", _failures(stats), _failures(totals))
            table.add_row("concurrent", str(stats.concurrent_calls), "")
            table.add_row("retransmissions", str(stats.retransmissions),
                          str(totals.retransmissions))
            table.add_row(
                "setup p99 (ms)",
                f"{stats.percentiles('setup_200')['p99']:.1f}",
                f"{totals.percentiles('setup_200')['p99']:.1f}",
            )
        return Group(self.progress, table, *self.events[-5:])

    def second(
        self, second: int, stats: IntervalStats, totals: IntervalStats, target_rate: float
    ) -> None:
        self.progress.update(self.task, completed=second + 1)
        self.live.update(self._render(stats, totals, target_rate))

    def event(self, text: str) -> None:
        self.events.append(text)

    def close(self) -> None:
        self.live.stop()
        for text in self.events:
            self.console.print(text)


def make_view(*, duration: float | None, quiet: bool = False) -> LiveView | None:
    """A rich view when stdout is a terminal, plain lines otherwise; None when ``quiet``."""
    if quiet:
        return None
    if sys.stdout.isatty():
        return RichView(duration=duration)
    return PlainView(duration=duration)
