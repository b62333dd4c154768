"""Where a run's merged seconds go: RunStats, the CSV and JSON-lines files, the live view.

:class:`ResultsSink` is shared by the local runner and the controller: they hand it each
merged second in order and it keeps :class:`~sipha.loadtest.stats.RunStats`, appends a row to
each output file (flushed, so a crash loses at most the current second) and updates the view.
``events`` (agent lost, agent joined, ...) go to the view and to ``events.jsonl`` beside the
CSV when a results folder is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from sipha.loadtest.stats import IntervalStats, RunStats
from sipha.loadtest.stats_output import StatCsvWriter, StatJsonlWriter
from sipha.loadtest.view import LiveView

__all__ = ["ResultsSink"]


class ResultsSink:
    """Collects merged seconds; writes ``csv_path`` / ``jsonl_path`` as it goes (either may be
    None).  ``start_time`` is the unix time of second 0."""

    def __init__(
        self,
        *,
        start_time: float,
        csv_path: str | Path | None = None,
        jsonl_path: str | Path | None = None,
        events_path: str | Path | None = None,
        view: LiveView | None = None,
        seal_after: int = 120,
        run: RunStats | None = None,
    ) -> None:
        self.start_time = start_time
        self.run = run if run is not None else RunStats()  # the controller's coordinator owns it
        self.view = view
        self.seal_after = seal_after
        self.events: list[dict[str, object]] = []
        self._files: list[TextIO] = []
        self._csv: StatCsvWriter | None = None
        self._jsonl: StatJsonlWriter | None = None
        self._events_file: TextIO | None = None
        self._last = -1
        self.cumulative = IntervalStats()
        if csv_path is not None:
            f = self._open(csv_path)
            self._csv = StatCsvWriter(f, start_time=start_time)
        if jsonl_path is not None:
            self._jsonl = StatJsonlWriter(self._open(jsonl_path), start_time=start_time)
        if events_path is not None:
            self._events_file = self._open(events_path)

    def _open(self, path: str | Path) -> TextIO:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        f = p.open("w", encoding="utf-8", newline="")
        self._files.append(f)
        return f

    def add(self, agent_id: str, second: int, stats: IntervalStats) -> None:
        """Merge one agent's second into the run (before it is written)."""
        self.run.add(agent_id, second, stats)

    def write(self, second: int, *, target_rate: float = 0.0) -> IntervalStats:
        """Write the merged row of ``second`` (added before with :meth:`add`); returns it.
        Seconds at or before the last written one are skipped (already out)."""
        stats = self.run.interval(second)
        if second <= self._last:
            return stats
        self._last = second
        self.cumulative.extend(stats)
        if self._csv is not None:
            self._csv.write(second, stats, target_rate=target_rate)
        if self._jsonl is not None:
            self._jsonl.write(second, stats)
        if self.view is not None:
            self.view.second(second, stats, self.cumulative, target_rate)
        if second > self.seal_after:
            self.run.seal_through(second - self.seal_after)
        return stats

    @property
    def last_written(self) -> int:
        return self._last

    def event(self, kind: str, *, at: float, **fields: object) -> None:
        """Record a run event (``kind`` like "agent-lost") at unix time ``at``."""
        record: dict[str, object] = {"type": "event", "event": kind, "time": at} | fields
        self.events.append(record)
        if self._events_file is not None:
            self._events_file.write(json.dumps(record) + "\n")
            self._events_file.flush()
        if self.view is not None:
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            self.view.event(f"{kind} {detail}".strip())

    def close(self, *, duration: float | None = None) -> None:
        """Write the JSON summary line and close every file and the view."""
        if self._jsonl is not None:
            self._jsonl.write_summary(self.run, duration=duration)
        for f in self._files:
            f.close()
        self._files.clear()
        if self.view is not None:
            self.view.close()
