"""Command lines and configuration files of every node a plan starts.

The test bed drives nodes as an operator would: a TOML file per node in ``RESULTS/config/``
and the node's own command line (``sipha server``, ``sipha dispatcher``, ``sipha load``,
``sipp``, ``redis-server``).  Keeping every flag and config key in this one module is what
lets the runner stay ignorant of the nodes' internals.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sipha.testbed.addresses import (
    CONTROLLER_PORT,
    HA_PORT,
    HTTP_PORT,
    REDIS_PORT,
    SIP_PORT,
    AddressBlock,
)
from sipha.testbed.keepalived import keepalived_conf, wrap_with_keepalived
from sipha.testbed.plan import Phase, Plan, Tester, dispatcher_names, server_names
from sipha.testbed.scenario_testers import (
    scenario_controller_argv,
    sipha_scenario,
    sipp_scenario_args,
)

__all__ = [
    "NodeCommand",
    "dispatcher_command",
    "redis_command",
    "server_command",
    "sipha_argv",
    "sipp_command",
    "store_url",
    "to_toml",
    "users_command",
]

# SIPp's default loop limits starve its scheduler above a few dozen calls/s.
SIPP_FAST = ("-max_recv_loops", "10000", "-max_sched_loops", "10000")


@dataclass(frozen=True, slots=True)
class NodeCommand:
    name: str
    kind: str
    argv: list[str]
    address: str
    sip: tuple[str, int] | None = None  # where it answers OPTIONS when healthy
    http: str = ""  # HOST:PORT of its HTTP API


def sipha_argv(*args: str) -> list[str]:
    """``sipha ARGS`` with the interpreter running this test bed (no PATH lookup)."""
    script = Path(sys.executable).with_name("sipha")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from sipha.cli import main; sys.exit(main())",
            *args]


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as a TOML value")


def to_toml(data: Mapping[str, object], _prefix: str = "") -> str:
    """A small TOML writer for config files: scalars, lists, tables, arrays of tables."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, object]]] = []
    arrays: list[tuple[str, Sequence[Mapping[str, object]]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(x, Mapping) for x in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        name = f"{_prefix}{key}"
        lines += ["", f"[{name}]", to_toml(table, name + ".").rstrip("\n")]
    for key, items in arrays:
        name = f"{_prefix}{key}"
        for item in items:
            lines += ["", f"[[{name}]]", to_toml(item, name + ".").rstrip("\n")]
    return "\n".join(line for line in lines if line is not None) + "\n"


def store_url(plan: Plan, block: AddressBlock, results: Path) -> str:
    if plan.store.kind == "redis":
        return plan.store.url or f"redis://{block.redis}:{REDIS_PORT}/0"
    return f"sqlite:{results / 'store.db'}"


def redis_command(block: AddressBlock, results: Path) -> NodeCommand:
    argv = ["redis-server", "--bind", block.redis, "--port", str(REDIS_PORT), "--save", "",
            "--appendonly", "no", "--dir", str(results)]
    if not block.redis.startswith("127."):
        # netns mode: the servers reach it from their own hosts, over the run's bridge, whose
        # addresses exist only inside the run's namespaces.
        argv += ["--protected-mode", "no"]
    return NodeCommand("redis", "redis", argv, block.redis)


def users_command(plan: Plan, url: str) -> list[str]:
    u = plan.servers.users
    return sipha_argv("users", "--store", url, "generate", "--count", str(u.count),
                      "--prefix", u.prefix, "--password", u.password, "--domain", u.domain)


def server_command(
    plan: Plan, index: int, block: AddressBlock, config_dir: Path, url: str, *,
    token: str = "",
) -> NodeCommand:
    """Server s<index> (1-based): its TOML config written into ``config_dir``."""
    name = f"s{index}"
    host = block.server(index)
    s = plan.servers
    cfg: dict[str, object] = {
        "server_id": name,
        "domain": s.users.domain,
        "listen": [f"udp:{host}:{SIP_PORT}", f"tcp:{host}:{SIP_PORT}"],
        "store": url,
        "http": f"{host}:{HTTP_PORT}",
        # The run's token: off loopback (netns hosts) an API without one refuses to start.
        "http_token": token,
        "answer": [{"pattern": p, "action": "answer", "max_hold": s.max_hold} for p in s.answer],
        # The paper's servers shared users, not calls: a call dies with its server.
        "share_dialogs": plan.profile != "paper",
    }
    expires = min((p.expires for p in plan.phases if p.scenario == "register+call"), default=0)
    if 0 < expires < 60:  # the registrar's default floor (423 Interval Too Brief below it)
        cfg["registrar"] = {"min_expires": expires}
    path = config_dir / f"{name}.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    argv = sipha_argv("server", "--config", str(path), *s.extra_args)
    return NodeCommand(name, "server", argv, host, (host, SIP_PORT), f"{host}:{HTTP_PORT}")


def dispatcher_command(
    plan: Plan, index: int, block: AddressBlock, config_dir: Path, *, fence_command: str = "",
    token: str = "",
) -> NodeCommand:
    """Dispatcher d<index> of the pair: its TOML config written into ``config_dir``.

    With a pair, the service address is the pair's: the active binds it (HA ``local`` mode).
    With ``fence_command`` (netns mode: each dispatcher on a host of its own) the pair runs in
    ``ip`` mode: the active adds the address to its ``eth0`` and announces it with gratuitous
    ARP, the standby fences the peer with the command before taking it.
    A single dispatcher binds the service address itself.
    """
    name = f"d{index}"
    d = plan.dispatchers
    own = block.dispatcher(index)
    service = block.service
    weights = plan.servers.weights or [1] * plan.servers.count
    servers = [
        {"uri": f"sip:{block.server(i)}:{SIP_PORT}", "weight": w, "id": sname}
        for i, (sname, w) in enumerate(zip(server_names(plan), weights, strict=True), 1)
    ]
    cfg: dict[str, object] = {
        "listen": [f"udp:{service}:{SIP_PORT}", f"tcp:{service}:{SIP_PORT}"],
        "advertise": f"{service}:{SIP_PORT}",
        "algorithm": d.scheduler,
        "http": f"{own}:{HTTP_PORT}",
        "token": token,
        "failover_timeout": d.failover_timeout,
        "max_attempts": 3 if d.failover else 1,
        "dialog_aware": d.failover,
        "probe": {
            "enabled": True,
            "interval": d.probe.interval,
            "timeout": d.probe.timeout,
            "probing_threshold": d.probe.probing_threshold,
            "inactive_threshold": d.probe.inactive_threshold,
        },
        "servers": servers,
    }
    extra: list[str] = []
    if d.count == 2:
        peers = [p for p in dispatcher_names(plan) if p != name]
        peer_index = int(peers[0][1:])
        ha: dict[str, object] = {
            "node_id": name,
            "priority": 200 if index == 1 else 100,
            "mode": d.ha_mode,
            "vip": service,
            "listen": f"{own}:{HA_PORT}",
            "peer": f"{block.dispatcher(peer_index)}:{HA_PORT}",
            "failback": d.failback,
            "heartbeat_interval": d.heartbeat_interval,
            "token": d.token,
            "key": f"sipha-testbed-{plan.name}",
            # Pacemaker moved only the address: the standby knew nothing of the calls, and
            # corosync on another host noticed the dead peer only when its token ran out.
            "replicate": plan.profile != "paper",
            "watch_pid": plan.profile != "paper",
        }
        if fence_command:
            # Across hosts a PID cannot be watched: the replication stream's end or the
            # heartbeat token decides (or keepalived, which then moves the address).
            ha.update({"mode": "external" if d.ha == "keepalived" else "ip",
                       "interface": "eth0", "fence_command": fence_command,
                       "watch_pid": False})
        ha_path = config_dir / f"{name}-ha.toml"
        ha_path.write_text(to_toml(ha), encoding="utf-8")
        extra = ["--ha-config", str(ha_path)]
    path = config_dir / f"{name}.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    argv = sipha_argv("dispatcher", "--config", str(path), "--log-level", "WARNING",
                      *extra, *d.extra_args)
    if fence_command and d.count == 2 and d.ha == "keepalived":
        peer_address = block.dispatcher(2 if index == 1 else 1)
        conf = keepalived_conf(
            config_dir, node=name, own=own, peer=peer_address,
            priority=200 if index == 1 else 100, vip=service, http=f"{own}:{HTTP_PORT}",
            token=token, advert_int=d.heartbeat_interval, preempt=d.failback == "preempt")
        argv = wrap_with_keepalived(argv, conf, config_dir, name, f"{own}:{HTTP_PORT}")
    return NodeCommand(name, "dispatcher", argv, own, None, f"{own}:{HTTP_PORT}")


def sipp_command(
    plan: Plan, tester: Tester, index: int, phase: Phase, block: AddressBlock, stat_path: Path,
) -> NodeCommand:
    """A SIPp process running its built-in ``uac`` at this tester's rate for one phase.

    ``-m`` bounds the calls to what the phase asks for (SIPp has no duration flag); the
    ramp uses SIPp's own ``-rate_increase``/``-rate_interval``/``-rate_max``.
    """
    host = block.tester(index)
    calls = _planned_calls(phase)
    argv = [
        "sipp", *sipp_scenario_args(tester), f"{block.service}:{SIP_PORT}",
        "-s", phase.call_user,
        "-i", host, "-p", str(SIP_PORT), "-t", "u1" if tester.transport == "udp" else "t1",
        "-r", f"{phase.rate:g}", "-rp", "1000", "-m", str(calls),
        "-d", str(round(phase.hold * 1000)), "-nostdin",
        "-trace_stat", "-stf", str(stat_path), "-fd", "1", *SIPP_FAST,
    ]
    if phase.recv_timeout > 0:
        argv += ["-recv_timeout", str(round(phase.recv_timeout * 1000))]
    if phase.ramp_step > 0 and phase.ramp_max is not None:
        argv += ["-rate_increase", f"{phase.ramp_step:g}",
                 "-rate_interval", f"{phase.ramp_interval:g}",
                 "-rate_max", f"{phase.ramp_max:g}"]
    return NodeCommand(tester.name, "tester", argv, host)


def _planned_calls(phase: Phase) -> int:
    """Calls a phase asks of one tester: the integral of its (ramped) rate over the phase."""
    if phase.ramp_step <= 0 or phase.ramp_max is None:
        return max(1, round(phase.rate * phase.duration))
    total, t, rate = 0.0, 0.0, phase.rate
    while t < phase.duration:
        span = min(phase.ramp_interval, phase.duration - t)
        total += rate * span
        t += span
        rate = min(rate + phase.ramp_step, phase.ramp_max)
    return max(1, round(total))


def controller_address(block: AddressBlock) -> str:
    return f"{block.controller}:{CONTROLLER_PORT}"


def sipha_controller_command(
    plan: Plan, agents: int, phase: Phase, block: AddressBlock, jsonl: Path, name: str,
    *, http_port: int | None = None, token: str = "", keys: Path | None = None,
) -> NodeCommand:
    """The load controller of the sipha-engine testers for one phase: it waits for ``agents``
    agents, gives each its share of the rate (``phase.rate`` per tester, so the total is
    ``rate * agents``), merges their seconds exactly and writes JSON lines to ``jsonl``.  When
    the sipha testers name a scenario, it is ``sipha load scenario`` shipping it to them."""
    xml = sipha_scenario(plan)
    if xml is not None:
        argv = sipha_argv(*scenario_controller_argv(
            xml, agents, phase, target=f"{block.service}:{SIP_PORT}",
            bind=controller_address(block), local_ip=block.tester(1),
            transport=_sipha_transport(plan), jsonl=jsonl, drain=plan.drain))
        if keys is not None:
            argv += ["--keys", str(keys)]
        return NodeCommand(name, "controller", argv, block.controller)
    argv = sipha_argv(
        "load", "controller", phase.scenario, f"{block.service}:{SIP_PORT}",
        "--bind", controller_address(block), "--expect", str(agents), "--join-timeout", "20s",
        "--rate", f"{phase.rate * agents:g}", "--duration", f"{phase.duration:g}s",
        "--hold", f"{phase.hold:g}s", "--call-user", phase.call_user,
        "--local-ip", block.tester(1), "--transport", _sipha_transport(plan),
        "--jsonl", str(jsonl), "--csv", str(jsonl.with_suffix(".csv")), "--quiet",
        "--drain-timeout", f"{max(plan.drain, 1.0):g}s",
    )
    if phase.recv_timeout > 0:
        argv += ["--recv-timeout", f"{phase.recv_timeout:g}s"]
    if phase.scenario == "register+call":
        # The agents split the plan's users; each agent's UAS registers its share.
        u = plan.servers.users
        argv += ["--users", str(u.count), "--user-prefix", u.prefix, "--password", u.password,
                 "--domain", u.domain, "--expires", str(phase.expires)]
    if phase.ramp_step > 0 and phase.ramp_max is not None:
        argv += ["--ramp", f"{phase.ramp_step * agents:g}/{phase.ramp_interval:g}s",
                 "--max-rate", f"{phase.ramp_max * agents:g}"]
    if keys is not None:
        # CurveZMQ: only the run's agents join (required off loopback, in netns mode).
        argv += ["--keys", str(keys)]
    if http_port is not None:
        # The live page changes the rate through it (POST /rate with the run's token).
        # --token=VALUE: a random token may start with "-", which argparse would take for a flag.
        argv += ["--http", f"{block.controller}:{http_port}", f"--token={token}"]
    return NodeCommand(name, "controller", argv, block.controller)


def sipha_agent_command(tester: Tester, index: int, block: AddressBlock, name: str, *,
                        keys: Path | None = None) -> NodeCommand:
    """One sipha load agent (a tester of the plan) joining the controller (with its CurveZMQ
    key pair named after the tester, from ``keys``)."""
    argv = sipha_argv("load", "agent", "--controller", controller_address(block),
                      "--id", tester.name)
    if keys is not None:
        argv += ["--keys", str(keys), "--key", tester.name]
    return NodeCommand(name, "tester", argv, block.tester(index))


def _sipha_transport(plan: Plan) -> str:
    kinds = {t.transport for t in plan.testers if t.engine == "sipha"}
    return "tcp" if kinds == {"tcp"} else "udp"
