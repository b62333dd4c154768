"""Plan checks of the store, the scenarios and the SSH hosts (:mod:`.plan` calls them from
``validate``): what a Sentinel store's options may be, what register+call needs, where each
node of an ssh-mode plan runs, and why servers on several hosts cannot share a SQLite file."""

from __future__ import annotations

import re

from sipha.testbed.plan import _NAME, Err, Plan, node_names, server_names

__all__ = ["placement", "validate_hosts_and_store"]


def validate_hosts_and_store(plan: Plan, err: Err) -> None:
    """Raise ``err(field, problem, fix)`` for the first problem found."""
    _validate_store_and_scenarios(plan, err)
    _validate_ssh_hosts(plan, err)


def _validate_store_and_scenarios(plan: Plan, err: Err) -> None:
    st = plan.store
    if st.kind == "redis-sentinel" and st.url and not st.url.startswith("redis-sentinel://"):
        raise err("store.url", f"{st.url!r} is not a redis-sentinel:// URL",
                  "write redis-sentinel://H:P,H:P,H:P/SERVICE/0, or leave url out to have the "
                  "test bed start the Sentinels")
    if st.options and (st.kind != "redis-sentinel" or st.url or not re.fullmatch(
            r"[a-z_]+=[0-9a-z_:.]+(&[a-z_]+=[0-9a-z_:.]+)*", st.options)):
        raise err("store.options", f"{st.options!r} is not usable here",
                  'with kind = "redis-sentinel" (and no url) write the URL query, e.g. '
                  '"hold=5&cache_ttl=5"')
    for i, p in enumerate(plan.phases):
        if p.scenario != "register+call":
            continue
        sipha = sum(t.engine == "sipha" for t in plan.testers)
        if sipha != len(plan.testers):
            raise err(f"phases[{i}].scenario", "register+call runs on sipha's testers only",
                      'give every tester engine = "sipha"')
        if plan.servers.users.count < sipha:
            raise err("servers.users.count", f"register+call needs users to register, at "
                      f"least one per tester ({sipha})", "set servers.users.count")


def placement(plan: Plan) -> dict[str, str]:
    """Node (or tester) name -> the ``[[hosts.ssh]]`` host it runs on (ssh mode; the nodes
    not named run on the runner's machine)."""
    if plan.hosts.mode != "ssh":
        return {}
    return {node: h.name for h in plan.hosts.ssh for node in h.nodes}


def _validate_ssh_hosts(plan: Plan, err: Err) -> None:
    h = plan.hosts
    if h.mode != "ssh":
        if h.ssh or h.block:
            raise err("hosts.ssh", "SSH hosts in a plan that does not run over SSH",
                      'set [hosts] mode = "ssh", or remove them')
        return
    if not h.ssh:
        raise err("hosts.ssh", "ssh mode without a host",
                  'add [[hosts.ssh]] with name, address, key, known_hosts and nodes')
    if (h.block and not re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})", h.block)) or any(
            int(x) > 255 for x in h.block.split(".") if x.isdigit()):
        raise err("hosts.block", f"{h.block!r} is not A.B.C", 'e.g. block = "10.0.0"')
    placeable = {*node_names(plan), "controller", *(t.name for t in plan.testers)}
    names: set[str] = set()
    placed: dict[str, str] = {}
    for i, host in enumerate(h.ssh):
        at = f"hosts.ssh[{i}]"
        if not _NAME.fullmatch(host.name) or host.name in names:
            raise err(f"{at}.name", f"{host.name!r} is not a usable, unique name",
                      "use a-z0-9- and a name per host")
        names.add(host.name)
        if not host.key or not host.known_hosts:
            raise err(f"{at}.key", "a host needs a key file and a known_hosts file",
                      "set key = PATH and known_hosts = PATH (host keys are always checked)")
        if not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", host.user):
            raise err(f"{at}.user", f"{host.user!r} is not a user name", 'e.g. user = "sipha"')
        if host.workdir and not host.workdir.startswith("/"):
            raise err(f"{at}.workdir", "not an absolute path", 'e.g. workdir = "/var/tmp/run"')
        for node in host.nodes:
            if node not in placeable:
                raise err(f"{at}.nodes", f"unknown node {node!r}",
                          f"name some of {', '.join(sorted(placeable))}")
            if node in placed:
                raise err(f"{at}.nodes", f"{node!r} is also placed on {placed[node]}",
                          "place each node on one host")
            placed[node] = host.name
    servers_on = {placed.get(s, "") for s in server_names(plan)}
    if plan.store.kind == "sqlite" and len(servers_on) > 1:
        raise err("store.kind", "the servers run on several hosts and a SQLite store is a "
                  "file of one host (its locks do not work across hosts, not even over NFS)",
                  'use kind = "redis-sentinel" (or "redis"), or place every server on one host')
