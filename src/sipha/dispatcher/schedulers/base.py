"""What every dispatcher scheduler shares: the destination record, the request key, the
`Scheduler` protocol and the registry of algorithms by name.

Theory of operation
-------------------
The dispatcher owns one `Destination` per SIP server and keeps its mutable fields current
(`usable` from health probing, `active_calls` from dialog tracking, `latency_ms` from probe
RTTs). A scheduler only *reads* destinations: given a `RequestKey` it returns the destination
to try next, or None. Failover is the dispatcher's loop: after a failed attempt it calls
`pick()` again with the ids already tried in `exclude`, so every algorithm also defines "the
next one".

Common rules, true for every registered algorithm:

* a destination is *eligible* when `usable` is true, `weight > 0` and its id is not in
  `exclude`. Weight 0 means quiesced, as in IPVS: configured but given no new calls, in every
  algorithm including the serial ones (`prio`, `fo`);
* when nothing is eligible, `pick()` returns None (the dispatcher answers 503);
* ties are broken by configuration order, so results are deterministic;
* randomness comes only from the injected `random.Random`.

Hooks are keyword-only (STYLE rule 6). The dispatcher updates `Destination` fields itself and
then tells the scheduler: `on_health_change` after flipping `usable`, and
`on_destinations_changed` after adding, removing or reweighting servers. Schedulers with
derived state (round-robin cursors, Maglev tables) rebuild it there.

A scheduler declares what it needs, and the dispatcher gives it that and no more, without
naming any algorithm: `key_fields` (the `RequestKey` fields `pick` reads: the Call-ID and
the source address cost nothing, From/To/Request-URI/credentials are parsed only for a
scheduler that names them) and `wants_call_events` (whether `on_call_started` /
`on_call_ended` are called: once for every call counted on a destination, once for every
call that stops counting there, so a scheduler counting from its hooks always agrees with
`active_calls`; the load-based algorithms just read `active_calls` and leave it False).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

__all__ = [
    "CHEAP_KEY_FIELDS",
    "CallEvents",
    "Destination",
    "RequestKey",
    "Scheduler",
    "SchedulerBase",
    "ServerView",
    "available",
    "create",
    "register",
]


@runtime_checkable
class ServerView(Protocol):
    """The read-only view of a destination that a scheduler may use."""

    @property
    def id(self) -> str: ...
    @property
    def weight(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def maxload(self) -> int: ...
    @property
    def active_calls(self) -> int: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def usable(self) -> bool: ...


@dataclass(slots=True, eq=False)
class Destination:
    """One SIP server behind the dispatcher; owned and updated by the dispatcher.

    Identity is the object (eq=False): two destinations with equal fields are still two
    servers, and schedulers compare by `id` where they need a stable key.
    """

    id: str
    """Unique and stable, e.g. ``"sip:127.0.0.1:5071"``; hash seeds derive from it."""
    weight: int = 1
    """>= 0; 0 = quiesced (never picked)."""
    priority: int = 0
    """Kamailio's ``priority`` column: `prio` tries the highest value first (as Kamailio's
    algorithm 8 does); `srv` prefers the lowest, as DNS SRV does."""
    maxload: int = 0
    """Call-load limit for `cl`; 0 = unlimited (Kamailio's ``maxload`` attribute)."""
    active_calls: int = 0
    """Active dialogs plus pending INVITEs, kept by the dispatcher."""
    latency_ms: float | None = None
    """Smoothed probe round-trip time; None until measured."""
    usable: bool = True
    """Active state: not probed down, not disabled, not draining."""


@dataclass(frozen=True, slots=True)
class RequestKey:
    """The parts of a request the scheduling algorithms hash or look at."""

    call_id: str
    from_user: str
    to_user: str
    ruri: str
    ruri_user: str
    auth_user: str | None
    source: tuple[str, int]


CHEAP_KEY_FIELDS = frozenset({"call_id", "source"})
"""`RequestKey` fields the dispatcher fills without parsing headers; a scheduler whose
`key_fields` go beyond them gets the parsed From/To/Request-URI/credentials."""


class CallEvents(Protocol):
    """The call hooks, as the dispatcher's load accounting calls them."""

    def on_call_started(self, *, dest: Destination) -> None: ...

    def on_call_ended(self, *, dest: Destination) -> None: ...


@runtime_checkable
class Scheduler(Protocol):
    """A destination-selection algorithm (one per dispatcher set)."""

    name: ClassVar[str]

    @property
    def key_fields(self) -> frozenset[str]:
        """The `RequestKey` fields `pick` reads (the dispatcher fills only those cheaply)."""
        ...

    @property
    def wants_call_events(self) -> bool:
        """Whether the dispatcher calls `on_call_started` / `on_call_ended`."""
        ...

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        """Return the destination to try for `key`, skipping ids in `exclude`, or None."""
        ...

    def on_call_started(self, *, dest: Destination) -> None:
        """A call now counts on ``dest`` (its ``active_calls`` already rose)."""
        ...

    def on_call_ended(self, *, dest: Destination) -> None:
        """A call no longer counts on ``dest`` (its ``active_calls`` already fell)."""
        ...

    def on_health_change(self, *, dest: Destination, usable: bool) -> None: ...

    def on_destinations_changed(self, *, destinations: Sequence[Destination]) -> None: ...


_NO_OPTIONS: Mapping[str, object] = {}


class SchedulerBase:
    """Convenience base: stores destinations and rng, validates options, no-op hooks.

    Subclasses set `name`, optionally `option_names`, implement `pick` and override
    `_rebuild()` when they keep state derived from the destinations.
    """

    __slots__ = ("_dests", "_rng")

    name: ClassVar[str] = ""
    option_names: ClassVar[frozenset[str]] = frozenset()
    KEY_FIELDS: ClassVar[frozenset[str]] = frozenset()
    """The `RequestKey` fields this algorithm reads; none for the load/weight-based ones."""
    CALL_EVENTS: ClassVar[bool] = False
    """Whether this algorithm is told of every call started and ended on a destination."""

    def __init__(
        self,
        destinations: Sequence[Destination],
        *,
        rng: random.Random,
        options: Mapping[str, object] | None = None,
    ) -> None:
        opts = _NO_OPTIONS if options is None else options
        unknown = sorted(set(opts) - self.option_names)
        if unknown:
            allowed = ", ".join(sorted(self.option_names)) or "none"
            raise ValueError(
                f"scheduler {self.name!r}: unknown option(s) {', '.join(unknown)}"
                f" (allowed: {allowed})"
            )
        self._rng = rng
        self._dests: tuple[Destination, ...] = tuple(destinations)
        _check_unique_ids(self._dests)
        self._configure(opts)
        self._rebuild()

    def _configure(self, options: Mapping[str, object]) -> None:
        """Read validated options; called once before the first `_rebuild()`."""

    def _rebuild(self) -> None:
        """Recompute state derived from `self._dests` (weights, health, membership)."""

    @property
    def key_fields(self) -> frozenset[str]:
        return self.KEY_FIELDS

    @property
    def wants_call_events(self) -> bool:
        return self.CALL_EVENTS

    @property
    def destinations(self) -> tuple[Destination, ...]:
        return self._dests

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        raise NotImplementedError

    def on_call_started(self, *, dest: Destination) -> None:
        """No-op: called only with ``CALL_EVENTS``; the dispatcher keeps `active_calls`."""

    def on_call_ended(self, *, dest: Destination) -> None:
        """No-op: called only with ``CALL_EVENTS``; the dispatcher keeps `active_calls`."""

    def on_health_change(self, *, dest: Destination, usable: bool) -> None:
        self._rebuild()

    def on_destinations_changed(self, *, destinations: Sequence[Destination]) -> None:
        dests = tuple(destinations)
        _check_unique_ids(dests)
        self._dests = dests
        self._rebuild()


def eligible(dests: Iterable[Destination], exclude: frozenset[str]) -> list[Destination]:
    """Destinations that may receive a new call (see module docstring), in order."""
    return [d for d in dests if d.usable and d.weight > 0 and d.id not in exclude]


def _check_unique_ids(dests: Sequence[Destination]) -> None:
    ids = [d.id for d in dests]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate destination id(s): {', '.join(dupes)}")


def option_bool(options: Mapping[str, object], name: str, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"option {name!r} must be a bool, got {value!r}")
    return value


def option_int(options: Mapping[str, object], name: str, default: int) -> int:
    value = options.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"option {name!r} must be an int, got {value!r}")
    return value


# --- registry ------------------------------------------------------------------------------

_S = TypeVar("_S", bound=type[SchedulerBase])

_REGISTRY: dict[str, type[SchedulerBase]] = {}


def register(cls: _S) -> _S:
    """Class decorator: make `cls` available to `create()` under `cls.name`.

    Raises ValueError if the name is empty or already taken by another class.
    """
    name = cls.name
    if not name:
        raise ValueError(f"{cls.__qualname__} has no scheduler name")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"scheduler name {name!r} already registered by {existing.__qualname__}")
    _REGISTRY[name] = cls
    return cls


def available() -> list[str]:
    """Registered algorithm names, sorted."""
    return sorted(_REGISTRY)


def create(
    name: str,
    destinations: Sequence[Destination],
    *,
    rng: random.Random,
    options: Mapping[str, object] | None = None,
) -> Scheduler:
    """Instantiate the scheduler registered as `name`.

    Raises ValueError for an unknown name (the message lists the known ones), an unknown or
    ill-typed option, or duplicate destination ids.
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(available())}")
    scheduler: Scheduler = cls(destinations, rng=rng, options=options)
    return scheduler
