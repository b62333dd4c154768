"""The live screen of a scenario run on a terminal: SIPp's scenario screen, redrawn in place
every statistics period (rich's Live), gone when the run ends (the final screen is printed)."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.text import Text

from sipha.loadtest.scenario.model import Scenario
from sipha.loadtest.scenario.stats import ScenarioStats, format_screen

__all__ = ["LiveScreen"]


class LiveScreen:
    def __init__(self, scenario: Scenario, *, pause_ms: float, target: str,
                 console: Console | None = None) -> None:
        self.scenario = scenario
        self.pause_ms = pause_ms
        self.target = target
        self.live = Live(Text(""), console=console, auto_refresh=False, transient=True)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.stop()

    def update(self, stats: ScenarioStats, elapsed: float) -> None:
        head = (f"  {self.scenario.name or self.scenario.file}   {self.target}   "
                f"Total-time {elapsed:.2f} s   Total-calls {stats.created}\n"
                f"  {stats.current} calls (peak {stats.peak})   successful {stats.successful}"
                f"   failed {stats.failed_calls}\n\n")
        self.live.update(Text(head + format_screen(self.scenario, stats,
                                                   pause_ms=self.pause_ms)), refresh=True)
