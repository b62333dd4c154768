"""Parsing of ``redis-sentinel://`` store URLs into :class:`SentinelSettings` (no I/O).

The form is ``redis-sentinel://HOST:PORT,HOST:PORT,HOST:PORT/SERVICE/DB[?options]``: the
Sentinels to ask (port 26379 when omitted; IPv6 as ``[ADDR]:PORT``), the name the Sentinels
monitor the master under (their ``sentinel monitor SERVICE ...`` line), and the database
number (0 when omitted). Options, each at most once:

* ``prefix``: namespace of every key (default ``sipha:``), as for ``redis://``;
* ``replicas``: how many replicas must hold a write before it is acknowledged (``WAIT``;
  default 1; 0 acknowledges writes only the master holds, which a failover can lose);
* ``wait_timeout``: seconds one ``WAIT`` blocks (default 0.5);
* ``hold``: seconds a write keeps retrying while there is no master or no replica has it
  (default 5), before it fails with StoreUnavailable;
* ``cache_ttl``: seconds a value read from the store may be served from this process's
  memory when neither master nor replica answers (default 5; 0: no cache).

Every error is a ValueError naming the bad field and the expected form, as for the other URLs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

__all__ = ["SENTINEL_FORM", "SentinelSettings", "parse_sentinel_url"]

SENTINEL_FORM = "'redis-sentinel://HOST:PORT,HOST:PORT,.../SERVICE/DB[?prefix=P&replicas=1]'"
SCHEME = "redis-sentinel"
DEFAULT_SENTINEL_PORT = 26379
MAX_SENTINELS = 16  # far above any deployment (3 or 5); bounds the work of a typo'd list
_SERVICE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_Bad = Callable[[str], ValueError]
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


@dataclass(frozen=True, slots=True)
class SentinelSettings:
    """What a ``redis-sentinel://`` URL says (see the module docstring)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    prefix: str = "sipha:"
    replicas: int = 1
    wait_timeout: float = 0.5
    hold: float = 5.0
    cache_ttl: float = 5.0

    @property
    def retry_after(self) -> int:
        """Seconds a client is told to wait (``Retry-After``) when a write gave up: one more
        hold, the time a Sentinel election is expected to take at most in this setup."""
        return max(1, math.ceil(self.hold))


# option -> (converter, lowest, highest); bounds keep a typo from meaning "wait an hour".
_NUMERIC: dict[str, tuple[type[int] | type[float], float, float]] = {
    "replicas": (int, 0, 16),
    "wait_timeout": (float, 0.01, 60.0),
    "hold": (float, 0.0, 120.0),
    "cache_ttl": (float, 0.0, 3600.0),
}


def parse_sentinel_url(url: str, forms: str = SENTINEL_FORM) -> SentinelSettings:
    """The settings of a ``redis-sentinel://`` URL.

    Raises ValueError naming the bad field and quoting `forms` (the expected forms).
    """

    def bad(what: str) -> ValueError:
        return ValueError(f"store url {url!r}: {what}; {forms}")

    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != SCHEME:
        raise bad("redis-sentinel needs '//HOST:PORT,...'")
    rest, _, query = rest.partition("?")
    hosts, _, path = rest.partition("/")
    if "@" in hosts:
        raise bad("redis-sentinel passwords are not supported; use a firewall or TLS tunnel")
    sentinels = tuple(_sentinel_address(h, bad) for h in hosts.split(","))
    if len(sentinels) > MAX_SENTINELS:
        raise bad(f"at most {MAX_SENTINELS} sentinels")
    service, _, db_text = path.partition("/")
    if not _SERVICE.fullmatch(service):
        raise bad("redis-sentinel service name is missing or not [A-Za-z0-9._-] (the name in "
                  "the Sentinels' 'sentinel monitor' line)")
    db_text = db_text.rstrip("/")
    if db_text and not (db_text.isdigit() and len(db_text) <= 5):
        raise bad("redis-sentinel db must be an integer")
    try:
        options = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise bad("redis-sentinel options must be name=value pairs joined by '&'") from None
    values: dict[str, str] = {}
    for name, given in options.items():
        if name != "prefix" and name not in _NUMERIC:
            known = ", ".join(["prefix", *_NUMERIC])
            raise bad(f"unknown redis-sentinel option {name!r} (known: {known})")
        if len(given) != 1:
            raise bad(f"give {name} once")
        values[name] = given[0]
    numbers = {name: _number(name, values[name], bad) for name in _NUMERIC if name in values}
    return SentinelSettings(
        sentinels=sentinels,
        service=service,
        db=int(db_text or 0),
        prefix=values.get("prefix", "sipha:"),
        **numbers,  # type: ignore[arg-type]
    )


def _sentinel_address(text: str, bad: _Bad) -> tuple[str, int]:
    host, port_text = text, ""
    if text.startswith("["):
        close = text.find("]")
        host, port_text = text[: close + 1], text[close + 1 :]
        if close < 0 or (port_text and not port_text.startswith(":")):
            raise bad(f"sentinel address {text!r} is not [IPV6]:PORT")
        port_text = port_text[1:]
    elif ":" in text:
        host, _, port_text = text.partition(":")
    if not host:
        raise bad("a sentinel host is empty")
    if not _HOST.fullmatch(host):
        raise bad(f"sentinel host {host!r} is not a host name or address")
    if not port_text:
        return host.strip("[]"), DEFAULT_SENTINEL_PORT
    if not (port_text.isdigit() and len(port_text) <= 5 and 0 < int(port_text) < 65536):
        raise bad(f"sentinel port {port_text!r} must be 1-65535")
    return host.strip("[]"), int(port_text)


def _number(name: str, text: str, bad: _Bad) -> int | float:
    kind, low, high = _NUMERIC[name]
    try:
        value = kind(text)
    except ValueError:
        raise bad(f"redis-sentinel {name} must be a number ({kind.__name__})") from None
    if not (low <= value <= high):  # also refuses nan
        raise bad(f"redis-sentinel {name} must be within {low:g}-{high:g}")
    return value
