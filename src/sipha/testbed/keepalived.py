"""The pair with Debian's keepalived moving the service address (``[dispatchers] ha =
"keepalived"``, netns mode).

Theory of operation
-------------------
Each dispatcher runs in HA ``external`` mode: it never moves the address itself and follows
``/ha/promote`` and ``/ha/demote``.  On its host (namespace) a keepalived runs one VRRP
instance (VRRPv3, unicast between the two hosts, ``advert_int`` = the plan's heartbeat
interval, ``nopreempt`` for sticky failback) holding the service address; on every state
change keepalived's notify calls contrib's ``sipha-notify.sh``, which POSTs to the local
dispatcher's API with curl and the run's token.  A backup declares the master down after
three missed adverts plus its skew (VRRP's Master_Down_Interval), so keepalived's takeover is
its own token, about 3.5 x ``advert_int``.

keepalived and the dispatcher are one node for the run: the node's command starts keepalived
in the background (``-n``: it stays in the node's process group; once the dispatcher's API
answers, so no notify is lost) and then execs the dispatcher, so a process fault on the node
(kill, stop, cont, start) acts on both together, as a host crash or hang would; SIGKILL
leaves keepalived no time for a priority-0 goodbye.

Everything is written into the run's config folder: the configuration, the notify wrapper
(which holds the token: readable by root only, as the configuration) and keepalived's pid
files.
"""

from __future__ import annotations

import shlex
from pathlib import Path

__all__ = ["NOTIFY_SCRIPT", "keepalived_conf", "wrap_with_keepalived"]

NOTIFY_SCRIPT = Path(__file__).resolve().parents[3] / "contrib" / "keepalived" / "sipha-notify.sh"
_VRID = 61


def keepalived_conf(
    config_dir: Path, *, node: str, own: str, peer: str, priority: int, vip: str, http: str,
    token: str, advert_int: float, preempt: bool,
) -> Path:
    """Write ``<node>-keepalived.conf`` and its notify wrapper; returns the configuration.

    Raises ValueError for an ``advert_int`` VRRPv3 cannot carry (centiseconds, 0.01-40.95)."""
    if not 0.01 <= advert_int <= 40.95:
        raise ValueError(f"advert_int {advert_int} s is outside VRRPv3's 0.01-40.95 s")
    notify = config_dir / f"{node}-notify.sh"
    log = config_dir / f"{node}-notify.log"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in (
        ("SIPHA_HTTP", http), ("SIPHA_TOKEN", token), ("SIPHA_NOTIFY_VIA", "curl"),
        ("SIPHA_NOTIFY_LOCK", str(config_dir / f"{node}-notify.lock"))))
    notify.write_text(f'#!/bin/sh\n{env} exec sh {shlex.quote(str(NOTIFY_SCRIPT))} "$1" '
                      f">>{shlex.quote(str(log))} 2>&1\n")
    notify.chmod(0o700)
    family = "/128" if ":" in vip else "/32"
    conf = config_dir / f"{node}-keepalived.conf"
    conf.write_text(f"""# written by sipha run: the pair's address moved by keepalived (netns mode)
global_defs {{
    router_id sipha_{node}
    script_user root
}}
vrrp_instance SIPHA {{
    state BACKUP
    {"" if preempt else "nopreempt"}
    interface eth0
    virtual_router_id {_VRID}
    priority {priority}
    advert_int {advert_int:g}
    version 3
    unicast_src_ip {own}
    unicast_peer {{
        {peer}
    }}
    virtual_ipaddress {{
        {vip}{family} dev eth0
    }}
    notify_master "{notify} master"
    notify_backup "{notify} backup"
    notify_fault "{notify} fault"
    notify_stop "{notify} stop"
}}
""")
    conf.chmod(0o600)
    return conf


def wrap_with_keepalived(argv: list[str], conf: Path, config_dir: Path, node: str,
                         http: str) -> list[str]:
    """``argv`` (the dispatcher) exec'd by a shell that also starts keepalived in the
    background, in the same process group (see the module docstring). keepalived starts once
    the dispatcher's API at ``http`` answers: a notify sent earlier would be lost."""
    keepalived = shlex.join([
        "keepalived", "-n", "-l", "-D", "-P", "-f", str(conf),
        "-p", str(config_dir / f"{node}-keepalived.pid"),
        "-r", str(config_dir / f"{node}-vrrp.pid"),
    ])
    # Any HTTP answer (401 included) means the API listens; give up after about a minute.
    ready = (f"n=0; until curl -s -o /dev/null -m 1 {shlex.quote('http://' + http + '/')}; "
             "do n=$((n+1)); [ $n -gt 1200 ] && exit 1; sleep 0.05; done")
    return ["sh", "-c", f'({ready}; exec {keepalived}) & exec "$@"', "sh", *argv]
