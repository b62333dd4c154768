"""The nemesis: network faults between the hosts of a netns run.

Theory of operation
-------------------
A network fault acts on *directed pairs* of hosts for a while:

    target                          pairs
    a node X                        X -> every other host, every other host -> X
    a group (servers, ...)          the same for each member
    a link [X, Y]                   X -> Y, Y -> X
    partition groups [[A..], [B..]] every a -> b and b -> a across two different groups
    split_pair                      d1 -> d2, d2 -> d1 (both still reach everyone else)

:class:`Nemesis` is pure.  It keeps the faults active now (started at ``at``, healed after
``duration`` or by a ``heal``), answers ``due(now)`` with what starts and ends, and
:meth:`Nemesis.desired` turns the active set into what each host's kernel must hold:

* **netem** (loss, delay with jitter and correlation, duplicate, reorder, corrupt, rate): for
  each source host, the netem parameters per destination address, merged over every active
  fault on that pair.  Installed on the source's ``eth0`` as an HTB tree: one class per distinct
  setting (its rate for ``rate``, a netem leaf for the rest), chosen by a u32 filter on the
  destination address; traffic to anyone else (the runner's polls at the bridge address among
  them) goes through the unlimited default class untouched.  A kernel without sch_netem (some
  VM kernels) gets loss and duplication from nftables (``numgen random``), rate from HTB, and
  delay, jitter, reorder and corruption from a bump in the wire (:mod:`.wire`, a process
  carrying the frames of the hosts that such a fault names).
* **nftables** (partition, split_pair): for each host, the addresses it may neither send to nor
  receive from on ``eth0``, as one table ``ip sipha_nemesis``.

A dispatcher is also reached at the service address it may hold, so its addresses include it.
The runner applies a host's configuration only when it changed (:func:`tc_commands`,
:func:`nft_script` build the commands; :class:`Applier` runs them inside the namespaces).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sipha.testbed.plan import NETEM_ACTIONS, PARTITION_ACTIONS, Fault

__all__ = [
    "Applier",
    "Desired",
    "Nemesis",
    "Transition",
    "kernel_has_netem",
    "netem_args",
    "nft_script",
    "pairs_of",
    "split_params",
    "tc_commands",
]

_NFT_TABLE = "sipha_nemesis"
Pair = tuple[str, str]


def pairs_of(fault: Fault, *, hosts: Sequence[str], groups: Mapping[str, Sequence[str]],
             dispatchers: Sequence[str]) -> set[Pair]:
    """The directed host pairs ``fault`` acts on (hosts named as in ``hosts``)."""

    def members(name: str) -> list[str]:
        return list(groups.get(name, [name]))

    if fault.action == "split_pair":
        a, b = dispatchers[0], dispatchers[1]
        return {(a, b), (b, a)}
    if fault.action == "partition":
        sides = [[m for name in g for m in members(name)] for g in fault.groups]
        out: set[Pair] = set()
        for i, side in enumerate(sides):
            for other in sides[i + 1:]:
                for x in side:
                    for y in other:
                        if x != y:
                            out |= {(x, y), (y, x)}
        return out
    if fault.link:
        x, y = fault.link
        return {(x, y), (y, x)}
    out = set()
    for x in members(fault.target):
        for y in hosts:
            if y != x:
                out |= {(x, y), (y, x)}
    return out


def netem_args(params: Mapping[str, float]) -> list[str]:
    """``tc ... netem`` arguments for merged parameters (see :func:`_params_of`)."""
    args: list[str] = []
    delay = params.get("delay_ms", 0.0)
    if "reorder" in params and delay <= 0:
        delay = 10.0  # netem reorders by sending some packets at once, the rest delayed
    if delay > 0:
        args += ["delay", f"{delay:g}ms"]
        if params.get("jitter_ms", 0.0) > 0:
            args.append(f"{params['jitter_ms']:g}ms")
            if params.get("delay_correlation", 0.0) > 0:
                args.append(f"{params['delay_correlation']:g}%")
    for name in ("loss", "duplicate", "reorder", "corrupt"):
        if name in params:
            args += [name, f"{params[name]:g}%"]
            if params.get(f"{name}_correlation", 0.0) > 0:
                args.append(f"{params[f'{name}_correlation']:g}%")
    if "rate_kbit" in params:
        args += ["rate", f"{params['rate_kbit']:g}kbit"]
    return args


def _params_of(fault: Fault) -> dict[str, float]:
    a = fault.action
    if a == "delay":
        return {"delay_ms": fault.delay_ms, "jitter_ms": fault.jitter_ms,
                "delay_correlation": fault.correlation}
    if a == "rate":
        return {"rate_kbit": fault.kbit}
    return {a: fault.percent, f"{a}_correlation": fault.correlation}


@dataclass(frozen=True, slots=True)
class Transition:
    """A fault that starts (``started``) or ends at ``at`` run seconds."""

    at: float
    index: int
    fault: Fault
    started: bool


@dataclass
class Desired:
    """What the kernel of each host should hold: netem parameters per destination address,
    addresses cut off."""

    netem: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    blocked: dict[str, frozenset[str]] = field(default_factory=dict)


_INJECTED_BASE = 1_000_000  # indices of faults injected while the run goes


class Nemesis:
    """The network faults of a plan on the run clock.  ``addresses`` maps each host to the
    addresses it is reached at; ``groups`` names groups of hosts (``servers``...)."""

    def __init__(self, faults: Sequence[Fault], *, addresses: Mapping[str, Sequence[str]],
                 groups: Mapping[str, Sequence[str]], dispatchers: Sequence[str]) -> None:
        self.addresses = {h: list(a) for h, a in addresses.items()}
        self._groups = groups
        self._dispatchers = list(dispatchers)
        self._active: dict[int, Fault] = {}
        self._pending: list[Transition] = []
        self._injected: list[Fault] = []
        names = {f.name: i for i, f in enumerate(faults) if f.name}
        for i, f in enumerate(faults):
            if f.action in NETEM_ACTIONS or f.action in PARTITION_ACTIONS:
                self._pending.append(Transition(f.at, i, f, True))
                if f.duration > 0:
                    self._pending.append(Transition(f.at + f.duration, i, f, False))
            elif f.action == "heal":
                healed = [names[f.target]] if f.target else [
                    j for j, g in enumerate(faults)
                    if j < i and (g.action in NETEM_ACTIONS or g.action in PARTITION_ACTIONS)]
                for j in healed:
                    self._pending.append(Transition(f.at, j, faults[j], False))
        # Ends before starts at the same instant, so a heal and a new fault can meet.
        self._pending.sort(key=lambda t: (t.at, t.started, t.index))

    def due(self, now: float) -> list[Transition]:
        """Transitions with ``at <= now`` not returned before; the active set follows."""
        out: list[Transition] = []
        while self._pending and self._pending[0].at <= now:
            t = self._pending.pop(0)
            if t.started:
                self._active[t.index] = t.fault
            elif self._active.pop(t.index, None) is None:
                continue  # healed already (a heal after its own duration ran out)
            out.append(t)
        return out

    def next_deadline(self) -> float | None:
        return self._pending[0].at if self._pending else None

    def inject(self, fault: Fault, now: float) -> None:
        """Start ``fault`` now (a control of the live page), ended after its duration; due on
        the next :meth:`due`."""
        index = len(self._injected) + _INJECTED_BASE  # never an index of the plan's faults
        self._injected.append(fault)
        self._pending.append(Transition(now, index, fault, True))
        if fault.duration > 0:
            self._pending.append(Transition(now + fault.duration, index, fault, False))
        self._pending.sort(key=lambda t: (t.at, t.started, t.index))

    def heal_now(self, now: float) -> int:
        """End every active network fault on the next :meth:`due`; how many there were."""
        active = sorted(self._active)
        self._pending.extend(Transition(now, i, self._active[i], False) for i in active)
        self._pending.sort(key=lambda t: (t.at, t.started, t.index))
        return len(active)

    @property
    def active(self) -> list[Fault]:
        return [self._active[i] for i in sorted(self._active)]

    def desired(self) -> Desired:
        d = Desired(netem={h: {} for h in self.addresses},
                    blocked={h: frozenset() for h in self.addresses})
        blocked: dict[str, set[str]] = {h: set() for h in self.addresses}
        for i in sorted(self._active):
            f = self._active[i]
            pairs = pairs_of(f, hosts=list(self.addresses), groups=self._groups,
                             dispatchers=self._dispatchers)
            for src, dst in sorted(pairs):
                if src not in self.addresses or dst not in self.addresses:
                    continue
                if f.action in PARTITION_ACTIONS:
                    blocked[src] |= set(self.addresses[dst])
                    continue
                for address in self.addresses[dst]:
                    d.netem[src].setdefault(address, {}).update(_params_of(f))
        # A host never blocks itself (a dispatcher and its peer share the service address).
        d.blocked = {h: frozenset(b - set(self.addresses[h])) for h, b in blocked.items()}
        return d


# Parameters nftables can apply itself (``numgen random``): used where the kernel has no
# sch_netem (some VM kernels); rate always goes to an HTB class.
NFT_PARAMS: Final = frozenset({"loss", "duplicate"})
_FAST = "10gbit"


def tc_commands(per_destination: Mapping[str, Mapping[str, float]],
                device: str = "eth0") -> list[list[str]]:
    """``tc`` argument lists (without ``tc -n NS``) that replace ``device``'s root qdisc: an
    HTB tree whose default class is unlimited, plus one class per distinct setting (its rate,
    if limited, and a netem leaf, if any netem parameter remains) chosen by a u32 filter on
    the destination address; an empty mapping just removes ours."""
    cmds: list[list[str]] = [["qdisc", "del", "dev", device, "root"]]
    if not per_destination:
        return cmds
    by_params: dict[tuple[str, ...], list[str]] = {}
    rates: dict[tuple[str, ...], str] = {}
    for address, params in sorted(per_destination.items()):
        args = tuple(netem_args({k: v for k, v in params.items() if k != "rate_kbit"}))
        rate = f"{params['rate_kbit']:g}kbit" if "rate_kbit" in params else _FAST
        key = (rate, *args)
        by_params.setdefault(key, []).append(address)
        rates[key] = rate
    cmds.append(["qdisc", "add", "dev", device, "root", "handle", "1:", "htb", "default", "1"])
    cmds.append(["class", "add", "dev", device, "parent", "1:", "classid", "1:1", "htb",
                 "rate", _FAST])
    for n, (key, addresses) in enumerate(by_params.items(), start=2):
        cmds.append(["class", "add", "dev", device, "parent", "1:", "classid", f"1:{n}", "htb",
                     "rate", rates[key], "ceil", rates[key]])
        if key[1:]:
            cmds.append(["qdisc", "add", "dev", device, "parent", f"1:{n}",
                         "handle", f"{n}0:", "netem", *key[1:]])
        for address in addresses:
            cmds.append(["filter", "add", "dev", device, "parent", "1:", "protocol", "ip",
                         "prio", "1", "u32", "match", "ip", "dst", f"{address}/32",
                         "flowid", f"1:{n}"])
    return cmds


def nft_script(blocked: frozenset[str], device: str = "eth0", *,
               random: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """An ``nft -f`` script replacing our table: drop to and from ``blocked`` on ``device``;
    ``random`` (destination -> {loss, duplicate: percent}) drops or duplicates that share of
    the packets sent there (the fallback for a kernel without netem)."""
    text = f"table ip {_NFT_TABLE}\ndelete table ip {_NFT_TABLE}\n"
    rules: list[str] = []
    for address, params in sorted((random or {}).items()):
        for name, verdict in (("duplicate", f"dup to {address} device \"{device}\""),
                              ("loss", "drop")):
            if params.get(name, 0.0) > 0:
                share = round(params[name] * 100)  # per ten thousand
                chance = f"numgen random mod 10000 < {share} " if share < 10000 else ""
                rules.append(f'oifname "{device}" ip daddr {address} {chance}{verdict}')
    if blocked:
        addrs = ", ".join(sorted(blocked))
        rules.append(f'oifname "{device}" ip daddr {{ {addrs} }} drop')
    if not rules:
        return text
    inbound = ""
    if blocked:
        inbound = (f"  chain input {{\n    type filter hook input priority 0; policy accept;\n"
                   f'    iifname "{device}" ip saddr {{ {", ".join(sorted(blocked))} }} drop\n'
                   f"  }}\n")
    body = "".join(f"    {r}\n" for r in rules)
    return text + (
        f"table ip {_NFT_TABLE} {{\n{inbound}"
        f"  chain output {{\n    type filter hook output priority 0; policy accept;\n"
        f"{body}  }}\n}}\n"
    )


def kernel_has_netem(ns: str) -> bool:
    """Whether this kernel offers sch_netem: tried on a throw-away veth in namespace ``ns``
    (one of the run's own)."""
    def run(*argv: str) -> bool:
        return subprocess.run(list(argv), capture_output=True, timeout=10,
                              check=False).returncode == 0

    run("ip", "-n", ns, "link", "add", "nmprobe0", "type", "veth", "peer", "name", "nmprobe1")
    try:
        return run("tc", "-n", ns, "qdisc", "add", "dev", "nmprobe0", "root", "netem",
                   "delay", "1ms")
    finally:
        run("ip", "-n", ns, "link", "del", "nmprobe0")


def split_params(params: Mapping[str, float], *, netem: bool) -> tuple[dict[str, float],
                                                                       dict[str, float]]:
    """(what tc applies, what nftables applies) of one destination's parameters."""
    if netem:
        return dict(params), {}
    to_nft = {k: v for k, v in params.items() if k in NFT_PARAMS}
    return {k: v for k, v in params.items() if k not in NFT_PARAMS
            and not k.endswith("_correlation")}, to_nft


# What a bump in the wire (:mod:`.wire`) applies where the kernel has no netem.
WIRE_PARAMS: Final = frozenset({"delay_ms", "jitter_ms", "reorder", "corrupt"})


class Applier:
    """Applies :class:`Desired` to the namespaces (``ns_of`` maps host -> namespace), touching
    only the hosts whose configuration changed.  With ``netem=False`` (a kernel without
    sch_netem) loss and duplication go to nftables, rate to HTB, delay, jitter, reorder and
    corruption to the bump in the wire of either end of the pair (``wires``: host -> (PID,
    rules file); ``addresses``: host -> its addresses); a pair with neither end wired is
    reported as an error.  Blocking: run it off the event loop."""

    def __init__(self, ns_of: Mapping[str, str], *, netem: bool = True,
                 wires: Mapping[str, tuple[int, Path]] | None = None,
                 addresses: Mapping[str, Sequence[str]] | None = None) -> None:
        self._ns_of = dict(ns_of)
        self._netem_ok = netem
        self._wires = dict(wires or {})
        self._addresses = {h: list(a) for h, a in (addresses or {}).items()}
        self._host_of = {a: h for h, addrs in self._addresses.items() for a in addrs[:1]}
        self._tc: dict[str, dict[str, dict[str, float]]] = {}
        self._nft: dict[str, str] = {}
        self._wire: dict[str, str] = {}

    def apply(self, desired: Desired) -> list[str]:
        """Returns the errors (empty when every command succeeded)."""
        errors: list[str] = []
        wire: dict[str, dict[str, dict[str, dict[str, float]]]] = {
            h: {"egress": {}, "ingress": {}} for h in self._wires}
        for host in sorted(desired.netem.keys() | desired.blocked.keys()):
            tc: dict[str, dict[str, float]] = {}
            nft: dict[str, dict[str, float]] = {}
            for address, params in desired.netem.get(host, {}).items():
                t, n = split_params(params, netem=self._netem_ok)
                if not self._netem_ok:
                    w = {k: v for k, v in t.items() if k in WIRE_PARAMS}
                    t = {k: v for k, v in t.items() if k not in WIRE_PARAMS}
                    if w and not self._to_wire(wire, host, address, w):
                        errors.append(f"{host}: this kernel has no sch_netem and neither end "
                                      f"of {host} -> {address} has a bump in the wire; only "
                                      "loss, duplicate and rate can be applied")
                if t:
                    tc[address] = t
                if n:
                    nft[address] = n
            if self._tc.get(host, {}) != tc:
                self._tc[host] = tc
                for i, argv in enumerate(tc_commands(tc)):
                    proc = subprocess.run(["tc", "-n", self._ns_of[host], *argv],
                                          capture_output=True, text=True, timeout=10,
                                          check=False)
                    if proc.returncode != 0 and i > 0:  # deleting no root qdisc is fine
                        errors.append(f"{host}: tc {' '.join(argv)}: {proc.stderr.strip()}")
            script = nft_script(desired.blocked.get(host, frozenset()), random=nft)
            if self._nft.get(host, "") != script:
                self._nft[host] = script
                proc = subprocess.run(
                    ["ip", "netns", "exec", self._ns_of[host], "nft", "-f", "-"],
                    input=script, capture_output=True, text=True, timeout=10, check=False)
                if proc.returncode != 0:
                    errors.append(f"{host}: nft: {proc.stderr.strip()}")
        for host, rules in wire.items():
            text = json.dumps(rules, sort_keys=True)
            if self._wire.get(host, "{}") == text:
                continue
            self._wire[host] = text
            pid, path = self._wires[host]
            try:
                path.write_text(text)
                os.kill(pid, signal.SIGHUP)
            except OSError as exc:
                errors.append(f"{host}: bump in the wire: {exc}")
        return errors

    def _to_wire(self, wire: dict[str, dict[str, dict[str, dict[str, float]]]], src: str,
                 address: str, params: dict[str, float]) -> bool:
        """Give src -> address to the source's wire (by destination) or else to the
        destination's (by source); False if neither end has one."""
        if src in wire:
            wire[src]["egress"][address] = params
            return True
        dst = self._host_of.get(address)
        if dst in wire:
            for a in self._addresses.get(src, []):
                wire[dst]["ingress"][a] = params
            return True
        return False
