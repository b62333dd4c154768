"""The one error a scenario or injection file raises when it cannot be run: where and why."""

from __future__ import annotations

__all__ = ["ScenarioError"]


class ScenarioError(Exception):
    """A scenario (or injection file) that cannot be run, named by file, line and element.

    Raised while loading and checking, before any call is made; never while calls run.
    ``str()`` reads ``FILE:LINE: <element>: message``, as a compiler would say it.
    """

    def __init__(self, message: str, *, file: str, line: int = 0, element: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.element = element
        where = f"{file}:{line}" if line else file
        what = f" <{element}>" if element else ""
        super().__init__(f"{where}:{what} {message}")
