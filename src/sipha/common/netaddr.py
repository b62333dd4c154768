"""Small address predicates shared by the nodes' control planes."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback literals (127.0.0.0/8, ::1), brackets allowed.

    Anything else, including ``0.0.0.0``, ``::`` and names, counts as reachable from outside:
    a control plane bound there must be authenticated."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
