"""Injection files (SIPp's ``-inf``): per-call data read from ``;``-separated lines.

The first line names the mode, optionally with PRINTF options::

    SEQUENTIAL,PRINTF=100,PRINTFMULTIPLE=2,PRINTFOFFSET=1000
    user%03d;secret;[authentication username=user%03d password=secret]

* SEQUENTIAL: call *k* uses line *k* modulo the number of lines;
* RANDOM: each call draws a line from the run's seeded generator;
* USER: the call of user *u* (``--users``, numbered from 1) uses line *u - 1*; the run is
  refused if there are more users than lines.

With ``PRINTF=N`` the file stands for N times its lines: virtual line *v* is real line
*v mod lines* with each ``%d`` (``%03d``...) given *v x PRINTFMULTIPLE + PRINTFOFFSET*.
Lines starting with ``#`` and empty lines are skipped.  ``[fieldN]`` reads field *N* of the
call's line; ``-infindex FILE FIELD`` indexes a file by a field for the ``lookup`` action.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from sipha.loadtest.scenario.errors import ScenarioError

__all__ = ["InjectionFile", "InjectionMode", "load_injection", "parse_injection"]

MAX_INJECTION_BYTES = 64 * 1024 * 1024
MAX_VIRTUAL_LINES = 10_000_000
_PRINTF = re.compile(r"%(0?\d*)d")


class InjectionMode(Enum):
    SEQUENTIAL = "SEQUENTIAL"
    RANDOM = "RANDOM"
    USER = "USER"


@dataclass(slots=True)
class InjectionFile:
    name: str
    mode: InjectionMode
    rows: list[str]  # the real lines
    printf: int = 0
    printf_multiple: int = 1
    printf_offset: int = 0
    next_row: int = 0
    index_field: int | None = None
    index: dict[str, int] = field(default_factory=dict)
    overrides: dict[int, str] = field(default_factory=dict)  # replace/insert, by line
    # This agent's share of the lines (see :meth:`share`): line k is whole-file line
    # share_index + k * share_count.
    share_index: int = 0
    share_count: int = 1

    def _whole(self) -> int:
        return len(self.rows) * (self.printf or 1)

    def __len__(self) -> int:
        whole = self._whole()
        mine = (whole - self.share_index + self.share_count - 1) // self.share_count
        return max(0, mine) + max((k + 1 - mine for k in self.overrides if k >= mine), default=0)

    def share(self, index: int, count: int) -> None:
        """Keep only agent ``index``'s share of ``count`` agents: every count-th line from
        ``index``, so that shares are disjoint and together the whole file (SEQUENTIAL and
        USER modes, distributed).  Raises ValueError if the share would be empty."""
        if not 0 <= index < count or index >= self._whole():
            raise ValueError(f"share {index} of {count}: {self.name} has {self._whole()} lines")
        self.share_index, self.share_count = index, count

    def line(self, number: int) -> str:
        """The text of line ``number`` of this share (PRINTF expanded)."""
        if number in self.overrides:
            return self.overrides[number]
        number = self.share_index + number * self.share_count
        real = self.rows[number % len(self.rows)]
        if not self.printf:
            return real
        value = number * self.printf_multiple + self.printf_offset
        return _PRINTF.sub(lambda mt: f"%{mt.group(1)}d" % value, real)

    def fields(self, number: int) -> list[str]:
        return self.line(number).split(";")

    def pick(self, *, rng: random.Random, userid: int) -> int:
        """The line a new call uses (see the module's docstring)."""
        n = len(self)
        if self.mode is InjectionMode.SEQUENTIAL:
            k = self.next_row % n
            self.next_row += 1
            return k
        if self.mode is InjectionMode.RANDOM:
            return rng.randrange(n)
        return (userid - 1) % n

    def build_index(self, field_no: int) -> None:
        self.index_field = field_no
        self.index = {}
        for k in range(len(self)):
            f = self.fields(k)
            if field_no < len(f):
                self.index.setdefault(f[field_no], k)

    def lookup(self, key: str) -> int:
        """The line whose indexed field is ``key``, or -1 (SIPp's answer for a miss)."""
        return self.index.get(key, -1)

    def replace(self, number: int, text: str) -> None:
        self._unindex(number)
        self.overrides[number] = text
        self._reindex(number)

    def insert(self, text: str) -> None:
        number = len(self)
        self.overrides[number] = text
        self._reindex(number)

    def _unindex(self, number: int) -> None:
        if self.index_field is None or not 0 <= number < len(self):
            return
        f = self.fields(number)
        if self.index_field < len(f) and self.index.get(f[self.index_field]) == number:
            del self.index[f[self.index_field]]

    def _reindex(self, number: int) -> None:
        if self.index_field is None:
            return
        f = self.fields(number)
        if self.index_field < len(f):
            self.index[f[self.index_field]] = number


def load_injection(path: str | Path) -> InjectionFile:
    """Read an injection file.  Raises :class:`ScenarioError` naming the file and line."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read injection file: {exc.strerror}", file=name) from None
    return parse_injection(name, data)


def parse_injection(name: str, data: bytes) -> InjectionFile:
    """An injection file from its bytes (as read by :func:`load_injection`, or shipped to an
    agent by its controller).  Raises :class:`ScenarioError` naming ``name`` and the line."""
    if len(data) > MAX_INJECTION_BYTES:
        raise ScenarioError(f"injection file larger than {MAX_INJECTION_BYTES} bytes", file=name)
    lines = data.decode("utf-8", "replace").splitlines()
    if not lines:
        raise ScenarioError("empty injection file: the first line names the mode", file=name)
    head = [s.strip() for s in lines[0].split(",") if s.strip()]
    try:
        mode = InjectionMode(head[0].upper() if head else "")
    except ValueError:
        raise ScenarioError(f"first line {lines[0]!r}: expected SEQUENTIAL, RANDOM or USER",
                            file=name, line=1) from None
    options = {"PRINTF": 0, "PRINTFMULTIPLE": 1, "PRINTFOFFSET": 0}
    for item in head[1:]:
        key, eq, value = item.partition("=")
        key = key.strip().upper()
        if key not in options or not eq:
            raise ScenarioError(f"unknown injection option {item!r} (known: PRINTF=, "
                                "PRINTFMULTIPLE=, PRINTFOFFSET=)", file=name, line=1)
        try:
            options[key] = int(value)
        except ValueError:
            raise ScenarioError(f"{key}={value!r} is not an integer", file=name,
                                line=1) from None
    rows = [s for s in lines[1:] if s.strip() and not s.startswith("#")]
    if not rows:
        raise ScenarioError("injection file has no data lines", file=name, line=1)
    if options["PRINTF"] < 0 or len(rows) * max(1, options["PRINTF"]) > MAX_VIRTUAL_LINES:
        raise ScenarioError(f"PRINTF={options['PRINTF']}: at most {MAX_VIRTUAL_LINES} lines",
                            file=name, line=1)
    return InjectionFile(name=name, mode=mode, rows=rows, printf=options["PRINTF"],
                         printf_multiple=options["PRINTFMULTIPLE"],
                         printf_offset=options["PRINTFOFFSET"])
