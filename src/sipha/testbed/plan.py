"""Test plans: the test bed and the test, in one TOML file.

A plan names the cluster (store, SIP servers, the dispatcher pair), the testers, the load
phases and the faults, and where the results go.  :func:`load_plan` decodes it into the
structs below (unknown fields are refused, so a typo is caught) and :func:`validate` checks
what types cannot say (a weight per server, faults inside the run, a known node name); every
problem is a :class:`~sipha.common.config.ConfigError` naming the field and the fix.

Times in a plan are *run* seconds.  ``time_scale`` records how much the paper's experiment was
compressed (``time_scale = 120``: one run second stands for two minutes of the paper's run); it
is written into the results and the report, never applied to the numbers.

Two profiles (:func:`apply_profile`): ``default`` runs the plan as written, with everything sipha
adds (dialog-aware failover inside the transaction, state replication between the pair, fast
probes, sticky failback); ``paper`` rewrites the dispatcher section into the paper's setup:
IPVS-like scheduling (the plan's scheduler when IPVS has it -- the paper ran both rr and wlc --
else round robin) with no failover inside the transaction, slow ldirectord-style health checks,
and a recovered dispatcher that preempts the address.

``[expect]`` holds the run's criteria (:mod:`sipha.common.expect`): keys directly in it apply to
both profiles, and ``[expect.default]`` / ``[expect.paper]`` override them key by key for one
profile (the paper's setup is expected to lose calls that sipha's must not).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from sipha.common.config import ConfigError, convert, load_toml
from sipha.common.expect import CRITERIA, Criteria, fix_for, merged

__all__ = [
    "ACTIVE_DISPATCHER",
    "GROUPS",
    "NETEM_ACTIONS",
    "NETWORK_ACTIONS",
    "PARTITION_ACTIONS",
    "PROCESS_ACTIONS",
    "PROFILES",
    "STANDBY_DISPATCHER",
    "DispatcherPair",
    "Expect",
    "Fault",
    "FaultAction",
    "Hosts",
    "Phase",
    "Plan",
    "Probe",
    "Profile",
    "Servers",
    "SshHost",
    "Store",
    "Tester",
    "Users",
    "apply_profile",
    "dispatcher_names",
    "expect_for",
    "load_plan",
    "node_names",
    "parse_plan",
    "plan_to_dict",
    "server_names",
    "store_node_names",
    "validate",
    "with_hosts",
]

PosFloat = Annotated[float, msgspec.Meta(gt=0.0)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0.0)]
PosInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]

Profile = Literal["default", "paper"]
PROFILES: Final[tuple[str, ...]] = ("default", "paper")
FaultAction = Literal[
    "kill", "stop", "cont", "start", "restart",  # the node's process
    "loss", "delay", "duplicate", "reorder", "corrupt", "rate",  # tc netem on its links
    "partition", "split_pair", "heal",  # nftables between hosts
    "cpu_hog",  # stress-ng on its host
]
PROCESS_ACTIONS: Final = frozenset({"kill", "stop", "cont", "start", "restart"})
NETEM_ACTIONS: Final = frozenset({"loss", "delay", "duplicate", "reorder", "corrupt", "rate"})
PARTITION_ACTIONS: Final = frozenset({"partition", "split_pair"})
NETWORK_ACTIONS: Final = NETEM_ACTIONS | PARTITION_ACTIONS | {"heal"}
# Groups of hosts a network fault may name instead of one node.
GROUPS: Final = ("servers", "dispatchers", "testers")

# Fault targets resolved when the fault fires, from the roles the dispatchers report.
ACTIVE_DISPATCHER: Final = "active-dispatcher"
STANDBY_DISPATCHER: Final = "standby-dispatcher"

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Store(_Section):
    """Where users, registrations and dialogs live (shared by every server process).

    ``sqlite``: one file in the results folder.  ``redis``: the test bed starts its own
    ``redis-server`` on a loopback address, unless ``url`` names one already running.
    ``redis-sentinel``: a master (node ``redis``), ``replicas`` replicas (``redis-r1``..) and
    three Sentinels (``sentinel1``..``sentinel3``, quorum 2) as nodes of the run (see
    :mod:`.redisnodes`); ``options`` is the query of the servers' ``redis-sentinel://`` URL.
    """

    kind: Literal["sqlite", "redis", "redis-sentinel"] = "sqlite"
    url: str = ""
    replicas: Annotated[int, msgspec.Meta(ge=1, le=4)] = 2
    down_after_ms: Annotated[int, msgspec.Meta(ge=100, le=60_000)] = 500
    options: str = ""


class Users(_Section):
    """Users provisioned with ``sipha users generate`` before the load starts."""

    count: NonNegInt = 0
    prefix: str = "user"
    password: str = "secret"
    domain: str = "sipha.test"


class Servers(_Section):
    """The SIP servers: ``count`` processes named s1..sN, one weight each (or none: all 1)."""

    count: PosInt = 2
    weights: list[PosInt] = msgspec.field(default_factory=list)
    answer: list[str] = msgspec.field(default_factory=lambda: ["service"])
    max_hold: PosFloat = 3600.0
    users: Users = msgspec.field(default_factory=Users)
    extra_args: list[str] = msgspec.field(default_factory=list)


class Probe(_Section):
    """SIP OPTIONS health probing of the servers (Kamailio's dispatcher vocabulary)."""

    interval: PosFloat = 0.5
    timeout: PosFloat = 0.5
    probing_threshold: PosInt = 2  # failed probes before a server is set inactive
    inactive_threshold: PosInt = 1  # good probes before an inactive server is active again


class DispatcherPair(_Section):
    """The dispatcher pair d1 (priority 2, starts active) and d2 (standby).

    ``count = 1`` runs a single dispatcher without HA.  ``failover`` is the in-transaction
    retry on the next server after ``failover_timeout`` (sipha's dialog-aware failover).
    """

    count: Annotated[int, msgspec.Meta(ge=1, le=2)] = 2
    scheduler: str = "wlc"
    ha_mode: Literal["local"] = "local"
    ha: Literal["ip", "keepalived"] = "ip"
    """netns mode: the pair moves the address itself (ip) or Debian's keepalived does."""
    failback: Literal["sticky", "preempt"] = "sticky"
    heartbeat_interval: PosFloat = 0.1
    token: PosFloat = 0.3
    failover: bool = True
    failover_timeout: PosFloat = 0.2
    probe: Probe = msgspec.field(default_factory=Probe)
    extra_args: list[str] = msgspec.field(default_factory=list)


class Tester(_Section):
    """One load tester: sipha's own agent (default) or a real SIPp process."""

    name: str
    engine: Literal["sipha", "sipp"] = "sipha"
    transport: Literal["udp", "tcp"] = "udp"
    # A SIPp XML scenario and its injection files instead of the built-in call, paths relative
    # to the plan file (see sipha.testbed.scenario_testers).
    scenario: str = ""
    inf: list[str] = msgspec.field(default_factory=list)


class Phase(_Section):
    """A stretch of load.  ``rate`` is calls/s *per tester*, as the paper's SIPp testers each
    generated their own rate; ``ramp_step`` adds that much every ``ramp_interval`` seconds up to
    ``ramp_max`` (the paper's Case B: "+10 every 10 minutes")."""

    duration: PosFloat
    rate: NonNegFloat
    # register+call (sipha testers): each agent's UAS registers its share of the plan's users
    # (``expires`` asked, refreshed at 90 %) and its UAC calls them in turn, through the pair.
    scenario: Literal["call", "register+call"] = "call"
    expires: PosInt = 3600
    hold: NonNegFloat = 1.0
    ramp_step: NonNegFloat = 0.0
    ramp_interval: PosFloat = 10.0
    ramp_max: NonNegFloat | None = None
    call_user: str = "service"
    # Seconds a tester waits for the answer to an INVITE or BYE before counting the call failed
    # (SIPp's -recv_timeout; both engines): a failure then shows near the fault that caused it,
    # not a Timer B (32 s) later.  0: the RFC timers alone.
    recv_timeout: NonNegFloat = 0.0


class Fault(_Section):
    """At ``at`` run seconds, do ``action`` to node ``target`` (s1.., d1, d2, the aliases
    active-dispatcher / standby-dispatcher, or redis).

    Network faults (netns mode, see :mod:`.nemesis`) act on a node's links (``target``, also a
    group: servers, dispatchers, testers), on one ``link = [X, Y]``, or between ``groups``
    (``partition``); they last ``duration`` seconds, or until a ``heal`` (of the fault called
    ``target``, or of all earlier ones).  ``cpu_hog`` runs stress-ng for ``duration`` s.
    """

    at: NonNegFloat
    action: FaultAction
    target: str = ""
    name: str = ""
    duration: NonNegFloat = 0.0
    link: list[str] = msgspec.field(default_factory=list)
    groups: list[list[str]] = msgspec.field(default_factory=list)
    percent: NonNegFloat = 0.0  # loss, duplicate, reorder, corrupt
    delay_ms: NonNegFloat = 0.0
    jitter_ms: NonNegFloat = 0.0
    correlation: NonNegFloat = 0.0  # percent
    kbit: NonNegFloat = 0.0  # rate
    workers: PosInt = 1  # cpu_hog


class SshHost(_Section):
    """A machine the runner reaches over SSH (``[[hosts.ssh]]``, see :mod:`.ssh`): key
    authentication only, its host key checked against ``known_hosts``; ``nodes`` names the
    nodes (s1, d1, redis, sentinel1, controller, a tester...) that run on it."""

    name: str
    address: str
    key: str
    known_hosts: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 22
    user: str = "root"
    sipha: str = "sipha"  # the sipha command on that host
    workdir: str = ""  # where its nodes run; default /tmp/sipha-<plan name>
    nodes: list[str] = msgspec.field(default_factory=list)


class Hosts(_Section):
    """Where the nodes live: ``loopback`` (one 127.A.B.0/24 block on this host's lo),
    ``netns`` (a network namespace per node on one bridge; needs root; the pair runs in
    ``ip`` mode, moving the address with gratuitous ARP) or ``ssh`` (nodes placed on the
    machines of ``[[hosts.ssh]]``, the others on this one).  ``block`` (ssh mode) gives the
    node addresses as A.B.C: each node binds its own address of A.B.C.0/24 (the same numbers
    as on loopback), which the operator puts on the machine the node is placed on."""

    mode: Literal["loopback", "netns", "ssh"] = "loopback"
    block: str = ""
    ssh: list[SshHost] = msgspec.field(default_factory=list)


class Expect(Criteria):
    """``[expect]``: criteria for both profiles, and per-profile tables overriding them."""

    default: Criteria | None = None
    paper: Criteria | None = None


class Plan(_Section):
    name: str
    description: str = ""
    out: str = ""  # results folder; default results/<name>-<profile>
    time_scale: PosFloat = 1.0
    profile: Profile = "default"
    settle: NonNegFloat = 0.5  # seconds between healthy cluster and the first call
    drain: NonNegFloat = 5.0  # seconds after the last phase for calls in flight to end
    on_node_crash: Literal["abort", "continue"] = "abort"
    hosts: Hosts = msgspec.field(default_factory=Hosts)
    store: Store = msgspec.field(default_factory=Store)
    servers: Servers = msgspec.field(default_factory=Servers)
    dispatchers: DispatcherPair = msgspec.field(default_factory=DispatcherPair)
    testers: list[Tester] = msgspec.field(default_factory=list)
    phases: list[Phase] = msgspec.field(default_factory=list)
    faults: list[Fault] = msgspec.field(default_factory=list)
    expect: Expect = msgspec.field(default_factory=Expect)

    @property
    def load_duration(self) -> float:
        """Seconds of load: the phases back to back."""
        return sum(p.duration for p in self.phases)


def server_names(plan: Plan) -> list[str]:
    return [f"s{i}" for i in range(1, plan.servers.count + 1)]


def dispatcher_names(plan: Plan) -> list[str]:
    return [f"d{i}" for i in range(1, plan.dispatchers.count + 1)]


def node_names(plan: Plan) -> list[str]:
    """Every node a fault may name (testers are not nodes of the cluster)."""
    names = server_names(plan) + dispatcher_names(plan)
    if plan.store.kind == "redis" and not plan.store.url:
        names.append("redis")
    return names + store_node_names(plan)


def store_node_names(plan: Plan) -> list[str]:
    """The Sentinel store's nodes the test bed starts (none for the other stores)."""
    if plan.store.kind != "redis-sentinel" or plan.store.url:
        return []
    return ["redis", *(f"redis-r{i}" for i in range(1, plan.store.replicas + 1)),
            *(f"sentinel{i}" for i in range(1, 4))]


def expect_for(plan: Plan, profile: Profile | None = None) -> Criteria:
    """The criteria a run of ``plan`` in ``profile`` (default: the plan's own) must meet."""
    e = plan.expect
    base = Criteria(**{name: getattr(e, name) for name in CRITERIA})
    return merged(base, e.paper if (profile or plan.profile) == "paper" else e.default)


# A fault that makes the pair switch, so a takeover time can be measured.
_SWITCHING = frozenset({"kill", "stop", "restart"})


def _validate_expect(plan: Plan, err: Callable[[str, str, str], ConfigError]) -> None:
    profiles: tuple[Profile, ...] = ("default", "paper")
    for profile in profiles:
        criteria = expect_for(plan, profile)
        table = getattr(plan.expect, profile)

        def field(name: str, table: Criteria | None = table, profile: str = profile) -> str:
            own = table is not None and getattr(table, name) is not None
            return f"expect.{profile}.{name}" if own else f"expect.{name}"

        switches = plan.dispatchers.count == 2 and any(
            (f.action in _SWITCHING and f.target in (*dispatcher_names(plan), ACTIVE_DISPATCHER))
            or f.action == "split_pair" for f in plan.faults)
        if criteria.max_takeover_ms is not None and not switches:
            raise err(field("max_takeover_ms"),
                      "no fault in this plan makes the dispatcher pair switch, so no takeover "
                      "can be measured",
                      "add a kill or stop of active-dispatcher (with dispatchers.count = 2), "
                      "or remove the criterion")
        if criteria.max_setup_p99_ms is not None and not any(
                t.engine == "sipha" for t in plan.testers):
            raise err(field("max_setup_p99_ms"),
                      "setup percentiles come from sipha's testers (SIPp's files hold only a "
                      "mean) and this plan has none",
                      'add a tester with engine = "sipha", or remove the criterion')


def host_names(plan: Plan) -> list[str]:
    """Every host a network fault may name: the nodes, the load controller, the testers."""
    return [*node_names(plan), "controller", *(t.name for t in plan.testers)]


def group_members(plan: Plan) -> dict[str, list[str]]:
    return {"servers": server_names(plan), "dispatchers": dispatcher_names(plan),
            "testers": ["controller", *(t.name for t in plan.testers)]}


Err = Callable[[str, str, str], ConfigError]


def _validate_process_fault(plan: Plan, i: int, f: Fault, err: Err) -> None:
    names = node_names(plan)
    if f.target not in names and f.target not in (ACTIVE_DISPATCHER, STANDBY_DISPATCHER):
        raise err(
            f"faults[{i}].target",
            f"unknown node {f.target!r}",
            f"name one of {', '.join(names)}, {ACTIVE_DISPATCHER}, {STANDBY_DISPATCHER}",
        )
    if f.target in (ACTIVE_DISPATCHER, STANDBY_DISPATCHER) and plan.dispatchers.count < 2:
        raise err(f"faults[{i}].target", "no dispatcher pair", "set dispatchers.count = 2")
    if f.duration:
        raise err(f"faults[{i}].duration", f"a {f.action} fault has no duration",
                  "remove duration, or add a later fault (e.g. cont after stop)")


_PERCENT_ACTIONS = frozenset({"loss", "duplicate", "reorder", "corrupt"})


def _validate_network_fault(plan: Plan, i: int, f: Fault, err: Err) -> None:
    at = f"faults[{i}]"
    hosts = host_names(plan)
    known = [*hosts, *GROUPS]
    if f.action != "cpu_hog" and plan.hosts.mode != "netns":
        raise err(f"{at}.action", f"{f.action} is a network fault and needs hosts of their own",
                  'set [hosts] mode = "netns" (or run with --hosts netns, as root)')
    if f.action == "cpu_hog":
        if f.target not in hosts:
            raise err(f"{at}.target", f"unknown host {f.target!r}",
                      f"name one of {', '.join(hosts)}")
        if f.duration <= 0:
            raise err(f"{at}.duration", "a CPU hog must end", "set duration = SECONDS")
        return
    if f.action == "heal":
        earlier = [g.name for g in plan.faults[:i] if g.name and g.action in NETWORK_ACTIONS]
        if f.target and f.target not in earlier:
            raise err(f"{at}.target", f"no earlier network fault named {f.target!r}",
                      "name one (its `name`), or leave target empty to heal every fault")
        return
    if f.action == "split_pair":
        if plan.dispatchers.count != 2:
            raise err(f"{at}.action", "split_pair needs the dispatcher pair",
                      "set dispatchers.count = 2")
    elif f.action == "partition":
        if len(f.groups) < 2 or not all(f.groups):
            raise err(f"{at}.groups", "a partition needs two or more non-empty groups",
                      'e.g. groups = [["s1"], ["d1", "d2"]]')
        seen: set[str] = set()
        for g, group in enumerate(f.groups):
            for member in group:
                if member not in known:
                    raise err(f"{at}.groups[{g}]", f"unknown host {member!r}",
                              f"name hosts or groups: {', '.join(known)}")
                if member in seen:
                    raise err(f"{at}.groups[{g}]", f"{member!r} is in two groups",
                              "put each host in one group")
                seen.add(member)
    elif f.link:
        if len(f.link) != 2 or f.link[0] == f.link[1] or any(h not in hosts for h in f.link):
            raise err(f"{at}.link", f"{f.link!r} is not a link between two hosts",
                      f"write link = [X, Y] with two of {', '.join(hosts)}")
        if f.target:
            raise err(f"{at}.target", "both a target and a link",
                      "give one: target (all its links) or link = [X, Y]")
    elif f.target not in known:
        raise err(f"{at}.target", f"unknown host {f.target!r}",
                  f"name one of {', '.join(known)}, or give link = [X, Y]")
    if f.action in _PERCENT_ACTIONS and not 0 < f.percent <= 100:
        raise err(f"{at}.percent", f"{f.action} needs a percentage in (0, 100]",
                  "e.g. percent = 5")
    if f.action == "delay" and f.delay_ms <= 0:
        raise err(f"{at}.delay_ms", "a delay needs delay_ms > 0",
                  "e.g. delay_ms = 20, jitter_ms = 10")
    if f.action == "rate" and f.kbit <= 0:
        raise err(f"{at}.kbit", "a rate limit needs kbit > 0", "e.g. kbit = 512")
    if f.correlation > 100:
        raise err(f"{at}.correlation", "a correlation is a percentage", "use 0..100")


def with_hosts(plan: Plan, mode: str | None, *, source: str = "plan") -> Plan:
    """``plan`` with ``[hosts] mode`` set to ``mode`` (``--hosts``), validated again."""
    if mode is None or mode == plan.hosts.mode:
        return plan
    if mode not in ("loopback", "netns"):
        raise ConfigError(source, "hosts.mode", f"unknown mode {mode!r}",
                          "write loopback or netns")
    changed = msgspec.structs.replace(plan, hosts=Hosts(mode=mode))  # type: ignore[arg-type]
    return validate(changed, source=source)


def validate(plan: Plan, *, source: str = "plan") -> Plan:
    """Check what the types cannot; raise ConfigError naming the field and the fix."""

    def err(field: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(source, field, problem, fix)

    if not _NAME.fullmatch(plan.name):
        raise err("name", f"{plan.name!r} is not a usable name", "use lowercase letters, digits, -")
    s = plan.servers
    if s.weights and len(s.weights) != s.count:
        raise err(
            "servers.weights",
            f"{len(s.weights)} weights for {s.count} servers",
            f"give exactly {s.count} weights, or none for equal weights",
        )
    for i, pattern in enumerate(s.answer):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise err(
                f"servers.answer[{i}]", f"not a regular expression: {exc}", "fix the regex"
            ) from None
    if not plan.testers:
        raise err("testers", "no tester", 'add [[testers]] with name = "t1"')
    seen: set[str] = set()
    for i, t in enumerate(plan.testers):
        if not _NAME.fullmatch(t.name):
            raise err(f"testers[{i}].name", f"{t.name!r} is not a usable name", "use a-z0-9-")
        if t.name in seen:
            raise err(f"testers[{i}].name", f"duplicate tester {t.name!r}", "rename it")
        seen.add(t.name)
    if plan.hosts.mode == "netns":
        taken = {*node_names(plan), "controller", "br"}
        for i, t in enumerate(plan.testers):
            if t.name in taken:
                raise err(f"testers[{i}].name", f"{t.name!r} also names a host of the run",
                          "rename the tester (each tester is a host in netns mode)")
    if not plan.phases:
        raise err("phases", "no load phase", "add [[phases]] with duration and rate")
    for i, p in enumerate(plan.phases):
        if p.ramp_max is not None and p.ramp_max < p.rate:
            raise err(
                f"phases[{i}].ramp_max",
                f"ramp_max {p.ramp_max} is below the start rate {p.rate}",
                "raise ramp_max or lower rate",
            )
        if p.ramp_step > 0 and p.ramp_max is None:
            raise err(f"phases[{i}].ramp_max", "a ramp needs a ceiling", "set ramp_max")
    d = plan.dispatchers
    if d.ha == "keepalived" and (plan.hosts.mode != "netns" or d.count != 2):
        raise err("dispatchers.ha", "keepalived moves the address between hosts of a pair",
                  'use it with count = 2 and [hosts] mode = "netns" (or --hosts netns)')
    if d.token <= d.heartbeat_interval:
        raise err(
            "dispatchers.token",
            f"token {d.token} s is not longer than the heartbeat interval {d.heartbeat_interval} s",
            "make token at least 2-3 heartbeat intervals",
        )
    if plan.store.kind == "redis" and plan.store.url and not plan.store.url.startswith("redis"):
        raise err("store.url", f"{plan.store.url!r} is not a redis:// URL", "write redis://H:P/0")
    from sipha.testbed.plan_hosts import validate_hosts_and_store  # it imports this module

    validate_hosts_and_store(plan, err)
    end = plan.load_duration + plan.drain
    for i, f in enumerate(plan.faults):
        if f.at > end:
            raise err(
                f"faults[{i}].at",
                f"{f.at} s is after the run ends ({end:g} s)",
                "move the fault inside the load phases",
            )
        if f.action in PROCESS_ACTIONS:
            _validate_process_fault(plan, i, f, err)
        else:
            _validate_network_fault(plan, i, f, err)
    _validate_expect(plan, err)
    from sipha.testbed.scenario_testers import check_scenario_testers  # it imports this module

    check_scenario_testers(plan, err)
    return plan


# Choices of the Literal fields, by field name, for "Invalid enum value" errors.
_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "action": ("kill", "stop", "cont", "start", "restart", "loss", "delay", "duplicate",
               "reorder", "corrupt", "rate", "partition", "split_pair", "heal", "cpu_hog"),
    "mode": ("loopback", "netns", "ssh"),
    "engine": ("sipha", "sipp"),
    "transport": ("udp", "tcp"),
    "kind": ("sqlite", "redis", "redis-sentinel"),
    "profile": PROFILES,
    "failback": ("sticky", "preempt"),
    "scenario": ("call", "register+call"),
    "on_node_crash": ("abort", "continue"),
    "ha_mode": ("local",),
    "ha": ("ip", "keepalived"),
}


def _with_choices(exc: ConfigError) -> ConfigError:
    last = exc.field.rsplit(".", 1)[-1]
    if exc.field.startswith("expect."):
        # msgspec's own wording ("Expected `int | null`") says nothing of what to write.
        fix = fix_for(last)
        if last not in CRITERIA and exc.field.count(".") == 1:
            fix += ", or a profile table [expect.default] / [expect.paper]"
        return ConfigError(exc.source, exc.field, exc.problem, fix)
    choices = _CHOICES.get(last)
    if exc.fix or choices is None or not exc.problem.startswith("Invalid enum value"):
        return exc
    return ConfigError(exc.source, exc.field, exc.problem, f"write one of: {', '.join(choices)}")


def parse_plan(data: dict[str, object], *, source: str = "plan") -> Plan:
    """Validate already-parsed TOML data into a Plan; raise ConfigError."""
    try:
        plan = convert(data, Plan, source=source)
    except ConfigError as exc:
        raise _with_choices(exc) from None
    return validate(plan, source=source)


def load_plan(path: str | Path) -> Plan:
    """Read, decode and validate a plan file; raise ConfigError naming the field and the fix."""
    from sipha.testbed.scenario_testers import with_scenario_paths

    try:
        plan = load_toml(path, Plan)
    except ConfigError as exc:
        raise _with_choices(exc) from None
    return validate(with_scenario_paths(plan, Path(path).parent), source=str(path))


IPVS_SCHEDULERS: Final = frozenset(
    {"rr", "wrr", "lc", "wlc", "sed", "nq", "dh", "sh", "mh", "fo", "ovf", "twos"}
)
"""The schedulers ipvsadm offers: the paper profile keeps one of these as the plan names it."""


def apply_profile(plan: Plan, profile: Profile | None = None) -> Plan:
    """The plan as run in ``profile`` (default: the plan's own).

    ``paper`` models ldirectord + IPVS behind Pacemaker: the plan's scheduler if IPVS has it
    (the paper's Case A ran both rr and wlc), else round robin, with no retry on another
    server; health checks every ``max(5 s / time_scale, 1 s)`` with a 3-failure threshold
    (ldirectord's checkinterval scaled, but never faster than a second); the recovered node
    takes the address back (preempt).
    """
    profile = profile or plan.profile
    if profile == "default":
        return msgspec.structs.replace(plan, profile="default")
    d = plan.dispatchers
    slow = max(5.0 / plan.time_scale, 1.0)
    paper = msgspec.structs.replace(
        d,
        scheduler=d.scheduler if d.scheduler in IPVS_SCHEDULERS else "rr",
        failover=False,
        failback="preempt",
        probe=Probe(interval=slow, timeout=slow, probing_threshold=3, inactive_threshold=1),
    )
    return msgspec.structs.replace(plan, profile="paper", dispatchers=paper)


def plan_to_dict(plan: Plan) -> dict[str, object]:
    """The plan as plain data, for summary.json."""
    out: dict[str, object] = msgspec.to_builtins(plan)
    return out
