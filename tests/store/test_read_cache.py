"""The outage read cache on virtual time: an entry is served for `ttl` seconds after the store
last confirmed it and never after; the size stays bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipha.store.read_cache import ReadCache


def test_served_until_ttl_after_confirmation_then_dropped() -> None:
    cache: ReadCache[str] = ReadCache(ttl=5.0)
    cache.put("a", "v1", now=100.0)
    entry = cache.get("a", now=105.0)
    assert entry is not None
    assert (entry.value, entry.confirmed_at) == ("v1", 100.0)
    cache.put("a", "v2", now=104.0)  # re-confirmed: the clock restarts
    assert cache.get("a", now=109.0) is not None
    assert cache.get("a", now=109.001) is None
    assert len(cache) == 0  # a stale entry is dropped, not kept
    assert cache.get("missing", now=0.0) is None


def test_none_is_a_value_not_a_miss() -> None:
    cache: ReadCache[str | None] = ReadCache(ttl=1.0)
    cache.put("no-such-user", None, now=0.0)
    entry = cache.get("no-such-user", now=0.5)
    assert entry is not None
    assert entry.value is None


def test_ttl_zero_caches_nothing_and_forget_removes() -> None:
    off: ReadCache[int] = ReadCache(ttl=0.0)
    off.put("a", 1, now=0.0)
    assert off.get("a", now=0.0) is None
    cache: ReadCache[int] = ReadCache(ttl=1.0)
    cache.put("a", 1, now=0.0)
    cache.forget("a")
    cache.forget("a")
    assert cache.get("a", now=0.0) is None


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="ttl"):
        ReadCache(ttl=-1.0)
    with pytest.raises(ValueError, match="max_entries"):
        ReadCache(ttl=1.0, max_entries=0)


@given(
    ops=st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.floats(0, 1000, allow_nan=False)),
        max_size=60,
    ),
    ask=st.floats(0, 1100, allow_nan=False),
)
def test_bounded_size_and_exact_staleness_bound(ops: list[tuple[str, float]], ask: float) -> None:
    """Against a model: the newest put per key, kept among the 4 most recently put keys,
    served exactly while ask - confirmed_at <= ttl."""
    cache: ReadCache[float] = ReadCache(ttl=10.0, max_entries=4)
    model: dict[str, float] = {}
    order: list[str] = []
    for key, t in ops:
        cache.put(key, t, now=t)
        model[key] = t
        order = [k for k in order if k != key] + [key]
        assert len(cache) <= 4
    kept = set(order[-4:])
    for key in "abcdefgh":
        entry = cache.get(key, now=ask)
        expected = key in kept and ask - model[key] <= 10.0
        assert (entry is not None) == expected
        if entry is not None:
            assert entry.value == model[key]
