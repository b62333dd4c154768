"""``redis-sentinel://`` store URLs: every part parsed, every mistake named with its fix.
(No process: the store connects lazily.)"""

from __future__ import annotations

import asyncio

import pytest

from sipha.store import Store, open_store
from sipha.store.sentinel import SentinelStore
from sipha.store.sentinel_url import SentinelSettings, parse_sentinel_url


def test_full_url_with_every_option() -> None:
    settings = parse_sentinel_url(
        "redis-sentinel://10.0.0.1:26379,sentinel-b:26380,[::1]:26381/sipha-store/3"
        "?prefix=p:&replicas=2&wait_timeout=0.25&hold=8&cache_ttl=2.5"
    )
    assert settings == SentinelSettings(
        sentinels=(("10.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26381)),
        service="sipha-store", db=3, prefix="p:", replicas=2, wait_timeout=0.25, hold=8.0,
        cache_ttl=2.5,
    )
    assert settings.retry_after == 8


def test_defaults_and_scheme_case() -> None:
    settings = parse_sentinel_url("REDIS-SENTINEL://a,b,c/mymaster")
    assert settings.sentinels == (("a", 26379), ("b", 26379), ("c", 26379))
    assert (settings.service, settings.db, settings.prefix) == ("mymaster", 0, "sipha:")
    assert (settings.replicas, settings.hold, settings.cache_ttl) == (1, 5.0, 5.0)
    assert parse_sentinel_url("redis-sentinel://a/m?hold=0").retry_after == 1


def test_open_store_gives_a_sentinel_store_that_is_a_store() -> None:
    store = open_store("redis-sentinel://127.0.0.1:1,127.0.0.1:2/svc/1?prefix=x:")
    try:
        assert isinstance(store, SentinelStore)
        assert isinstance(store, Store)
        assert store.prefix == "x:"
        assert store.url == "redis-sentinel://127.0.0.1:1,127.0.0.1:2/svc/1"
    finally:
        asyncio.run(store.close())


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("redis-sentinel:a/m", "//HOST"),
        ("redis-sentinel:///m", "host is empty"),
        ("redis-sentinel://a,,b/m", "host is empty"),
        ("redis-sentinel://a:0/m", "port"),
        ("redis-sentinel://a:x/m", "port"),
        ("redis-sentinel://a:99999/m", "port"),
        ("redis-sentinel://[::1/m", "IPV6"),
        ("redis-sentinel://a b/m", "sentinel host"),
        ("redis-sentinel://:pw@a/m", "password"),
        ("redis-sentinel://" + ",".join(["a"] * 17) + "/m", "at most 16"),
        ("redis-sentinel://a", "service"),
        ("redis-sentinel://a/", "service"),
        ("redis-sentinel://a/m m", "service"),
        ("redis-sentinel://a/m/x", "db"),
        ("redis-sentinel://a/m/0?colour=red", "unknown redis-sentinel option 'colour'"),
        ("redis-sentinel://a/m/0?prefix=a&prefix=b", "prefix once"),
        ("redis-sentinel://a/m/0?replicas=1.5", "replicas must be a number"),
        ("redis-sentinel://a/m/0?replicas=17", "replicas must be within 0-16"),
        ("redis-sentinel://a/m/0?hold=nan", "hold must be within"),
        ("redis-sentinel://a/m/0?hold=-1", "hold must be within"),
        ("redis-sentinel://a/m/0?wait_timeout=0", "wait_timeout must be within"),
        ("redis-sentinel://a/m/0?cache_ttl=1e9", "cache_ttl must be within"),
        ("redis-sentinel://a/m/0?&&", "name=value"),
    ],
)
def test_bad_urls_name_the_field_and_the_expected_forms(url: str, field: str) -> None:
    with pytest.raises(ValueError, match="redis-sentinel://HOST:PORT,HOST:PORT") as exc:
        open_store(url)
    assert field in str(exc.value)
    assert "expected 'sqlite:PATH'" in str(exc.value)  # the other forms, too
