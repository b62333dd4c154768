"""hash-* , dh and sh: sticky, weighted, and minimally disruptive (rendezvous hashing).

When a server leaves, its keys spread over *all* remaining servers and no other key moves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from sipha.dispatcher.schedulers import Destination, RequestKey
from sipha.dispatcher.schedulers.stablehash import stable_hash64
from tests.dispatcher._scheduler_helpers import dests, key, make

N_KEYS = 20_000
HASHERS = ["hash-callid", "hash-from", "hash-to", "hash-ruri", "hash-authuser", "dh", "sh"]


def _key_for(name: str) -> Callable[[int], RequestKey]:
    if name == "hash-authuser":
        return lambda i: key(i, auth_user=f"user{i}")
    if name == "sh":
        # sh hashes the host only; give every key a distinct host.
        return lambda i: RequestKey(
            "c", "f", "t", "r", "u", None, (f"10.0.{i >> 8}.{i & 255}", 5060)
        )
    return key


def mapping(name: str, ds: list[Destination], **opts: object) -> dict[int, str]:
    sched = make(name, ds, options=opts)
    mk = _key_for(name)
    out = {}
    for i in range(N_KEYS):
        d = sched.pick(key=mk(i), now=0.0)
        assert d is not None
        out[i] = d.id
    return out


@pytest.mark.parametrize("name", HASHERS)
def test_same_key_same_server(name: str) -> None:
    ds = dests(1, 1, 1, 1, 1)
    a, b = make(name, ds, seed=1), make(name, ds, seed=99)
    mk = _key_for(name)
    for i in range(500):
        assert a.pick(key=mk(i), now=0.0) is b.pick(key=mk(i), now=float(i))


@pytest.mark.parametrize("name", HASHERS)
def test_equal_weights_share_evenly(name: str) -> None:
    counts = Counter(mapping(name, dests(1, 1, 1, 1, 1)).values())
    for c in counts.values():
        assert abs(c / N_KEYS - 0.2) < 0.015


@pytest.mark.parametrize("name", HASHERS)
def test_removed_server_spreads_over_all_others_and_nothing_else_moves(name: str) -> None:
    ds = dests(1, 1, 1, 1, 1)
    before = mapping(name, ds)
    after = mapping(name, [d for d in ds if d.id != "C"])
    moved = Counter(after[k] for k, v in before.items() if v == "C")
    assert set(moved) == {"A", "B", "D", "E"}
    total = sum(moved.values())
    for c in moved.values():
        assert 0.20 < c / total < 0.30
    assert all(after[k] == v for k, v in before.items() if v != "C")


def test_unusable_and_excluded_server_moves_keys_like_removal() -> None:
    ds = dests(1, 1, 1, 1, 1)
    removed = mapping("hash-callid", [d for d in ds if d.id != "C"])
    sched = make("hash-callid", ds)
    for i in range(2000):
        d = sched.pick(key=key(i), now=0.0, exclude=frozenset("C"))
        assert d is not None
        assert d.id == removed[i]
    ds[2].usable = False
    sched.on_health_change(dest=ds[2], usable=False)
    for i in range(2000):
        assert sched.pick(key=key(i), now=0.0).id == removed[i]  # type: ignore[union-attr]


def test_weights_give_proportional_shares() -> None:
    counts = Counter(mapping("hash-callid", dests(1, 2, 3, 4)).values())
    for sid, expected in zip("ABCD", (0.1, 0.2, 0.3, 0.4), strict=True):
        assert abs(counts[sid] / N_KEYS - expected) < 0.015


def test_added_server_only_takes_keys_and_gets_its_share() -> None:
    ds = dests(1, 1, 1, 1)
    before = mapping("hash-callid", ds)
    after = mapping("hash-callid", [*ds, Destination("E", weight=1)])
    changed = [k for k in before if before[k] != after[k]]
    assert all(after[k] == "E" for k in changed)
    assert abs(len(changed) / N_KEYS - 0.2) < 0.015


def test_raising_a_weight_only_moves_keys_onto_that_server() -> None:
    ds = dests(1, 1, 1, 1)
    before = mapping("hash-callid", ds)
    ds[0].weight = 3
    after = mapping("hash-callid", ds)
    assert all(after[k] == "A" for k in before if before[k] != after[k])
    assert abs(Counter(after.values())["A"] / N_KEYS - 0.5) < 0.015


def test_each_algorithm_hashes_its_own_field() -> None:
    ds = dests(1, 1, 1, 1, 1, 1, 1, 1)
    base = key(1, auth_user="alice")
    fields = {
        "hash-callid": "call_id",
        "hash-from": "from_user",
        "hash-to": "to_user",
        "hash-ruri": "ruri",
        "hash-authuser": "auth_user",
        "dh": "ruri_user",
    }
    for name, field in fields.items():
        sched = make(name, ds)
        target = sched.pick(key=base, now=0.0)
        others: dict[str, Any] = {
            f: (f"x-{i}" if f != "source" else ("192.0.2.9", 1))
            for i, f in enumerate(RequestKey.__slots__)
            if f != field
        }
        varied = RequestKey(**{**others, field: getattr(base, field)})
        # Everything but the hashed field changed: same destination.
        assert sched.pick(key=varied, now=0.0) is target, name
        # Only the hashed field changes: the destination varies across values.
        seen = {
            sched.pick(key=RequestKey(**{**others, field: f"v{i}"}), now=0.0).id  # type: ignore[union-attr]
            for i in range(200)
        }
        assert len(seen) == 8, name


def test_authuser_without_credentials_falls_back_to_call_id() -> None:
    ds = dests(1, 1, 1, 1, 1)
    auth, callid = make("hash-authuser", ds), make("hash-callid", ds)
    for i in range(300):
        assert auth.pick(key=key(i), now=0.0) is callid.pick(key=key(i), now=0.0)


def test_sh_port_option_includes_the_source_port() -> None:
    ds = dests(1, 1, 1, 1)
    host_only, with_port = make("sh", ds), make("sh", ds, port=True)
    ks = [RequestKey("c", "f", "t", "r", "u", None, ("10.0.0.1", p)) for p in range(200)]
    assert len({host_only.pick(key=k, now=0.0).id for k in ks}) == 1  # type: ignore[union-attr]
    assert len({with_port.pick(key=k, now=0.0).id for k in ks}) == 4  # type: ignore[union-attr]


def test_hashing_is_stable_across_processes() -> None:
    code = (
        "from sipha.dispatcher.schedulers.stablehash import stable_hash64;"
        "print([stable_hash64(f'k{i}') for i in range(20)])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str([stable_hash64(f"k{i}") for i in range(20)])


def test_wire_strings_with_lone_surrogates_hash() -> None:
    assert stable_hash64("bad\udcff") != stable_hash64("bad")
