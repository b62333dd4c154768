"""The live page of a run or a load: a `Board` of what to show, a `LiveServer` that serves it
(WebSocket pushes every second, token-guarded controls). The charts use uPlot, vendored in
``static/`` at a pinned version with its licence, so the page works offline."""

from sipha.report.live.board import Board, Event
from sipha.report.live.server import ControlRefused, Controls, LiveServer

__all__ = ["Board", "ControlRefused", "Controls", "Event", "LiveServer"]
