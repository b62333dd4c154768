"""Registrar bindings (RFC 3261 §10.3) on every backend: upsert, expiry, removal, `*`,
out-of-order rejection, and a model check against a reference implementation of §10.3."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipha.store import Binding, BindingChange, Store, UpdateOutcome
from tests.store.helpers import run_with

AOR = "alice@example.com"
T0 = 1_700_000_000.0


def change(
    contact: str,
    expires: int,
    *,
    q: float | None = None,
    path: tuple[str, ...] = (),
    received: str | None = None,
    instance: str | None = None,
) -> BindingChange:
    return BindingChange(
        contact=contact,
        expires=expires,
        raw=f"<{contact}>;expires={expires}",
        q=q,
        path=path,
        received=received,
        instance=instance,
    )


def test_register_stores_every_field_and_refresh_updates(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        c = change(
            "sip:alice@10.0.0.1:5060",
            3600,
            q=0.7,
            path=("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"),
            received="udp:192.0.2.1:5060",
            instance='"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
        )
        r = await store.update_bindings(AOR, changes=[c], call_id="cid1", cseq=1, now=T0)
        assert r.ok
        expected = Binding(
            aor=AOR,
            contact=c.contact,
            expires_at=T0 + 3600,
            call_id="cid1",
            cseq=1,
            raw=c.raw,
            q=0.7,
            path=c.path,
            received="udp:192.0.2.1:5060",
            instance=c.instance,
        )
        assert r.bindings == (expected,)
        assert await store.get_bindings(AOR, T0 + 1) == [expected]
        assert expected.expires_in(T0 + 0.5) == 3600

        # Refresh from the same UA: higher CSeq, new expiry, q dropped.
        r = await store.update_bindings(
            AOR, changes=[change(c.contact, 60)], call_id="cid1", cseq=2, now=T0 + 10
        )
        assert r.ok
        (b,) = await store.get_bindings(AOR, T0 + 10)
        assert (b.expires_at, b.cseq, b.q, b.path) == (T0 + 70, 2, None, ())
        assert await store.get_bindings("bob@example.com", T0) == []

    run_with(store_url, scenario)


def test_bindings_expire_and_are_purged(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60), change("sip:a@h2", 120)], call_id="c", cseq=1,
            now=T0,
        )
        await store.update_bindings(
            "bob@example.com", changes=[change("sip:b@h", 30)], call_id="d", cseq=1, now=T0
        )
        assert [b.contact for b in await store.get_bindings(AOR, T0 + 59.9)] == [
            "sip:a@h1",
            "sip:a@h2",
        ]
        # Expiry is exclusive at expires_at.
        assert [b.contact for b in await store.get_bindings(AOR, T0 + 60)] == ["sip:a@h2"]
        assert await store.get_bindings(AOR, T0 + 120) == []
        assert await store.purge_expired(T0 + 60) == 2
        assert await store.purge_expired(T0 + 60) == 0
        assert [b.contact for b in await store.get_bindings(AOR, T0 + 61)] == ["sip:a@h2"]
        assert await store.purge_expired(T0 + 1000) == 1

    run_with(store_url, scenario)


def test_expires_zero_removes_only_that_contact(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60), change("sip:a@h2", 60)], call_id="c", cseq=1,
            now=T0,
        )
        r = await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 0)], call_id="c", cseq=2, now=T0 + 1
        )
        assert r.ok
        assert [b.contact for b in r.bindings] == ["sip:a@h2"]
        # Removing an unknown contact is not an error.
        r = await store.update_bindings(
            AOR, changes=[change("sip:a@nope", 0)], call_id="c", cseq=3, now=T0 + 1
        )
        assert r.ok
        assert [b.contact for b in r.bindings] == ["sip:a@h2"]

    run_with(store_url, scenario)


def test_bindings_sorted_by_q_descending(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        r = await store.update_bindings(
            AOR,
            changes=[
                change("sip:a@low", 60, q=0.1),
                change("sip:a@none", 60),
                change("sip:a@mid", 60, q=0.5),
            ],
            call_id="c",
            cseq=1,
            now=T0,
        )
        assert [b.contact for b in r.bindings] == ["sip:a@none", "sip:a@mid", "sip:a@low"]

    run_with(store_url, scenario)


@pytest.mark.parametrize("stale_cseq", [5, 4])
def test_same_call_id_with_cseq_not_higher_aborts_the_whole_request(
    store_url: str, stale_cseq: int
) -> None:
    async def scenario(store: Store) -> None:
        await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60)], call_id="c", cseq=5, now=T0
        )
        r = await store.update_bindings(
            AOR,
            # The new contact must not be added either: the request fails as a whole.
            changes=[change("sip:a@h2", 60), change("sip:a@h1", 0)],
            call_id="c",
            cseq=stale_cseq,
            now=T0 + 1,
        )
        assert r.outcome is UpdateOutcome.OUT_OF_ORDER
        assert not r.ok
        assert r.conflict == "sip:a@h1"
        assert [b.contact for b in r.bindings] == ["sip:a@h1"]
        assert [b.cseq for b in await store.get_bindings(AOR, T0 + 1)] == [5]

    run_with(store_url, scenario)


def test_other_call_id_may_use_any_cseq(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60)], call_id="c", cseq=5, now=T0
        )
        # RFC 3261 §10.3 step 7: a different Call-ID updates regardless of CSeq (UA reboot).
        r = await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 90)], call_id="other", cseq=1, now=T0 + 1
        )
        assert r.ok
        assert [(b.call_id, b.cseq) for b in r.bindings] == [("other", 1)]

    run_with(store_url, scenario)


def test_expired_binding_does_not_block_a_low_cseq(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60)], call_id="c", cseq=5, now=T0
        )
        r = await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60)], call_id="c", cseq=1, now=T0 + 61
        )
        assert r.ok

    run_with(store_url, scenario)


def test_remove_all_star(store_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60)], call_id="c1", cseq=5, now=T0
        )
        await store.update_bindings(
            AOR, changes=[change("sip:a@h2", 60)], call_id="c2", cseq=7, now=T0
        )
        await store.update_bindings(
            "bob@example.com", changes=[change("sip:b@h", 60)], call_id="c3", cseq=1, now=T0
        )
        # RFC 3261 §10.3 step 6: same Call-ID as h2 with CSeq not higher -> abort, keep all.
        r = await store.remove_all(AOR, call_id="c2", cseq=7, now=T0 + 1)
        assert r.outcome is UpdateOutcome.OUT_OF_ORDER
        assert r.conflict == "sip:a@h2"
        assert len(await store.get_bindings(AOR, T0 + 1)) == 2
        r = await store.remove_all(AOR, call_id="c2", cseq=8, now=T0 + 1)
        assert r.ok
        assert r.bindings == ()
        assert await store.get_bindings(AOR, T0 + 1) == []
        assert len(await store.get_bindings("bob@example.com", T0 + 1)) == 1
        # `*` on an AOR without bindings is fine.
        assert (await store.remove_all(AOR, call_id="x", cseq=1, now=T0 + 2)).ok
        # All gone, nothing left for purge to count.
        assert await store.purge_expired(T0 + 30) == 0

    run_with(store_url, scenario)


# --- model check ----------------------------------------------------------------------------


@dataclass
class _Ref:
    """RFC 3261 §10.3 steps 6-7 written as plainly as possible."""

    bindings: dict[str, tuple[float, str, int]]

    def live(self, now: float) -> dict[str, tuple[float, str, int]]:
        return {c: v for c, v in self.bindings.items() if v[0] > now}

    def register(
        self, changes: list[tuple[str, int]], call_id: str, cseq: int, now: float
    ) -> bool:
        self.bindings = self.live(now)
        for contact, _ in changes:
            prev = self.bindings.get(contact)
            if prev is not None and prev[1] == call_id and prev[2] >= cseq:
                return False
        for contact, expires in changes:
            if expires == 0:
                self.bindings.pop(contact, None)
            else:
                self.bindings[contact] = (now + expires, call_id, cseq)
        return True

    def star(self, call_id: str, cseq: int, now: float) -> bool:
        self.bindings = self.live(now)
        if any(cid == call_id and seq >= cseq for _, cid, seq in self.bindings.values()):
            return False
        self.bindings = {}
        return True


_contacts = st.sampled_from(["sip:a@h1", "sip:a@h2", "sip:a@h3"])
_Op = tuple[str, list[tuple[str, int]], str, int, int]
_op: st.SearchStrategy[_Op] = st.one_of(
    st.tuples(
        st.just("reg"),
        st.lists(st.tuples(_contacts, st.sampled_from([0, 5, 30])), min_size=1, max_size=3),
        st.sampled_from(["c1", "c2"]),
        st.integers(1, 6),
        st.integers(0, 20),
    ),
    st.tuples(st.just("star"), st.just([]), st.sampled_from(["c1", "c2"]), st.integers(1, 6),
              st.integers(0, 20)),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(_op, max_size=12))
def test_update_bindings_matches_reference_model(
    store_url: str, ops: list[_Op]
) -> None:
    aor = f"m{uuid.uuid4().hex}@example.com"  # the store is shared across examples

    async def scenario(store: Store) -> None:
        ref = _Ref({})
        now = T0
        for kind, changes, call_id, cseq, dt in ops:
            now += dt
            if kind == "reg":
                r = await store.update_bindings(
                    aor, changes=[change(c, e) for c, e in changes], call_id=call_id,
                    cseq=cseq, now=now,
                )
                expected_ok = ref.register(changes, call_id, cseq, now)
            else:
                r = await store.remove_all(aor, call_id=call_id, cseq=cseq, now=now)
                expected_ok = ref.star(call_id, cseq, now)
            assert r.ok is expected_ok
            got = {b.contact: (b.expires_at, b.call_id, b.cseq) for b in r.bindings}
            assert got == ref.live(now)
            stored = await store.get_bindings(aor, now)
            assert {b.contact for b in stored} == set(ref.live(now))

    run_with(store_url, scenario)


def test_redis_aor_key_lives_until_its_latest_binding(redis_url: str) -> None:
    import redis as sync_redis

    async def scenario(store: Store) -> None:
        await store.update_bindings(
            AOR, changes=[change("sip:a@h1", 60), change("sip:a@h2", 300)], call_id="c",
            cseq=1, now=T0,
        )

    run_with(f"{redis_url}?prefix=regttl:", scenario)
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    try:
        # 300 s plus the grace that keeps the key a little past the last binding.
        assert 300_000 < r.pttl(f"regttl:reg:{AOR}") <= 305_000
    finally:
        r.close()


def test_bindings_now_agree_with_the_awaited_read_or_defer_to_it(store_url: str) -> None:
    # The proxy reads bindings on its own thread when the backend can answer at once (SQLite);
    # a backend behind a network round trip says None and the proxy awaits get_bindings.
    async def scenario(store: Store) -> None:
        await store.update_bindings(AOR, changes=[change("sip:alice@10.0.0.1", 60)],
                                    call_id="c", cseq=1, now=T0)
        now = store.get_bindings_now(AOR, T0 + 1)
        if store_url.startswith("redis"):
            assert now is None
        else:
            assert now == await store.get_bindings(AOR, T0 + 1)
            assert store.get_bindings_now(AOR, T0 + 61) == []

    run_with(store_url, scenario)
