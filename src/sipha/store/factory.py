"""`open_store(url)`: the one place that maps a configuration string to a backend."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from sipha.store.base import Store
from sipha.store.sentinel_url import SCHEME as SENTINEL_SCHEME
from sipha.store.sentinel_url import SENTINEL_FORM, parse_sentinel_url

__all__ = ["open_store"]

_FORMS = (
    "expected 'sqlite:PATH', a plain file path, 'redis://HOST:PORT/DB[?prefix=P]' or "
    f"{SENTINEL_FORM}"
)


def open_store(url: str) -> Store:
    """Open the store named by `url`.

    * ``sqlite:PATH``, ``sqlite:///abs/path`` or a plain path: a SQLite file (created if
      missing; its directory must exist). Opening creates/migrates the schema, blocking
      briefly: call it at startup.
    * ``redis://[:password@]HOST[:PORT][/DB][?prefix=P]`` (or ``rediss://`` for TLS): Redis,
      connected lazily; `prefix` (default ``sipha:``) namespaces every key.
    * ``redis-sentinel://HOST:PORT,HOST:PORT,.../SERVICE/DB[?options]``: the Redis master the
      Sentinels name for SERVICE, followed through failovers, writes confirmed by a replica
      (options in :mod:`sipha.store.sentinel_url`).

    Raises ValueError naming the bad field and the expected form; sqlite3.Error if the SQLite
    file cannot be opened.
    """
    if not url or not url.strip():
        raise ValueError(f"store url: empty; {_FORMS}")
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if sep and scheme in ("redis", "rediss"):
        return _open_redis(url)
    if sep and scheme == SENTINEL_SCHEME:
        settings = parse_sentinel_url(url, _FORMS)
        from sipha.store.sentinel import SentinelStore

        return SentinelStore(settings)
    if sep and scheme == "sqlite":
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise ValueError(f"store url {url!r}: sqlite path is empty; {_FORMS}")
        return _open_sqlite(path)
    if "://" in url:
        raise ValueError(f"store url {url!r}: unknown scheme {scheme!r}; {_FORMS}")
    return _open_sqlite(url)


def _open_sqlite(path: str) -> Store:
    from sipha.store.sqlite import SqliteStore

    return SqliteStore(path)


def _open_redis(url: str) -> Store:
    parts = urlsplit(url)
    if not url.split(":", 1)[1].startswith("//"):
        raise ValueError(f"store url {url!r}: redis needs '//HOST'; {_FORMS}")
    if not parts.hostname:
        raise ValueError(f"store url {url!r}: redis host is empty; {_FORMS}")
    try:
        port = parts.port  # urllib raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        raise ValueError(f"store url {url!r}: redis port must be 0-65535; {_FORMS}") from None
    if port == 0:
        raise ValueError(f"store url {url!r}: redis port must be 1-65535; {_FORMS}")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"store url {url!r}: redis db must be an integer; {_FORMS}")
    query = parse_qs(parts.query, keep_blank_values=True)
    prefixes = query.pop("prefix", ["sipha:"])
    if len(prefixes) != 1:
        raise ValueError(f"store url {url!r}: give prefix once; {_FORMS}")
    from sipha.store.redis_store import RedisStore

    rest = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    return RedisStore(rest, prefix=prefixes[0])
