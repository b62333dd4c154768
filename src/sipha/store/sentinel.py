"""The Redis store behind Redis Sentinel: a master that may change, writes confirmed by a
replica, and reads that survive the election.

Theory of operation
-------------------
The Sentinels (``redis-sentinel``, quorum of them agreeing) watch one master and its replicas
and promote a replica when the master is down. redis-py's Sentinel support
(:mod:`redis.asyncio.sentinel`) asks them for the master's address whenever it opens a
connection, so the store follows a failover without code of its own for discovery.

Durability. A write is acknowledged to the caller only once ``replicas`` replicas hold it:
the write (a Lua script, as in :class:`~sipha.store.redis_store.RedisStore`) and then
``WAIT replicas wait_timeout`` run on one connection, because WAIT counts the replication of
*this connection's* writes. A promoted replica therefore holds every acknowledged
registration, user and dialog record.

Writes while there is no master (the election) or no replica confirmed them are *held*: the
write is retried on a fresh connection until it is confirmed or ``hold`` seconds have passed,
then StoreUnavailable is raised (the registrar answers ``503`` with ``Retry-After``). Holding
fails nothing when the election is shorter than ``hold``; refusing at once would turn every
REGISTER of the election into a failure the UA must retry. A retried write may have reached
the master the first time (the connection died before the answer): the §10.3 update is
idempotent for this (a stored binding carrying the request's own Call-ID and CSeq is the
first attempt's, so the retry reports it applied); the other writes are replaces or SET NX.

Reads go to the master, then to a replica when the master does not answer (a replica holds
every acknowledged write, so it lags only by writes not yet acknowledged), then, for users
and bindings, to a :class:`~sipha.store.read_cache.ReadCache` of values this process read at
most ``cache_ttl`` seconds ago. So calls to registered users keep being routed during the
election, and the staleness of an answer is bounded by that setting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sipha.store.errors import StoreUnavailable
from sipha.store.model import (
    Binding,
    BindingChange,
    DialogRecord,
    UpdateOutcome,
    UpdateResult,
    User,
)
from sipha.store.read_cache import ReadCache
from sipha.store.redis_store import RedisStore
from sipha.store.sentinel_url import SentinelSettings

__all__ = ["SentinelStore", "is_own_earlier_attempt"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Master gone, election running, replica gone: what "the store cannot answer now" looks like
# (MasterNotFoundError and SlaveNotFoundError are ConnectionErrors).
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
# Pause between write attempts while held, doubling up to the cap: a held write notices the
# new master within ~0.5 s, and hundreds of held REGISTERs do not flood the Sentinels.
_RETRY_PAUSE = 0.05
_RETRY_PAUSE_MAX = 0.5
_CONNECT_TIMEOUT = 0.5  # loopback or LAN; a dead host must not stall a read for long
_MAX_CONNECTIONS = 2000  # per pool (master, replicas) of one server process


class SentinelStore(RedisStore):
    """`Store` on a Redis master found through Sentinels (see module docstring).

    Connects lazily. Reads and writes that cannot be served raise StoreUnavailable; other
    Redis errors surface as `redis.exceptions.RedisError`. Methods not overridden here run on
    the master as in RedisStore (no WAIT, no hold).
    """

    def __init__(self, settings: SentinelSettings) -> None:
        self.settings = settings
        # WAIT blocks server-side for wait_timeout: the socket must outlast it.
        timeout = settings.wait_timeout + 2.0
        common: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": _CONNECT_TIMEOUT,
            # No retries inside redis-py: a retried script is the hold loop's decision.
            "retry": Retry(NoBackoff(), 0),
            # redis-py's pool refuses a 101st connection ("Too many connections"); during an
            # election every held write and every read waiting for a refused master holds one,
            # and at 100 calls/s a server has hundreds in flight.  Redis's own limit is 10000.
            "max_connections": _MAX_CONNECTIONS,
        }
        self._sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]
            list(settings.sentinels),
            # No retries either: redis-py's default (3, backing off up to 10 s) per dead
            # Sentinel would stall every lookup for tens of seconds; the next one is asked.
            sentinel_kwargs={
                "socket_timeout": 1.0,
                "socket_connect_timeout": _CONNECT_TIMEOUT,
                "retry": Retry(NoBackoff(), 0),
                # Each new connection to the master asks a Sentinel first: a burst of them
                # ran out of the default 100 and read "no master" with the master alive.
                "max_connections": _MAX_CONNECTIONS,
            },
        )
        master = self._sentinel.master_for(
            settings.service, db=settings.db, decode_responses=True, **common
        )
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in settings.sentinels)
        super().__init__(
            f"redis-sentinel://{hosts}/{settings.service}/{settings.db}",
            prefix=settings.prefix,
            client=master,
        )
        self._master: aioredis.Redis = master
        replica = self._sentinel.slave_for(
            settings.service, db=settings.db, decode_responses=True, **common
        )
        self._replica = RedisStore(self.url, prefix=settings.prefix, client=replica)
        self._bindings: ReadCache[list[Binding]] = ReadCache(settings.cache_ttl)
        self._users: ReadCache[User | None] = ReadCache(settings.cache_ttl)

    def _unavailable(self, what: str, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"{what}: {exc}", retry_after=self.settings.retry_after)

    # --- reads: master, else a replica, else (users, bindings) the bounded cache -----------
    async def _read(self, what: str, op: Callable[[RedisStore], Awaitable[T]]) -> T:
        try:
            return await self._read_on(self, op)  # RedisStore's methods, on the master client
        except _UNREACHABLE as exc:
            log.debug("%s: master unreachable (%s), reading a replica", what, exc)
        try:
            return await self._read_on(self._replica, op)
        except _UNREACHABLE as exc:
            raise self._unavailable(f"{what}: no master and no replica answered", exc) from exc

    @staticmethod
    async def _read_on(store: RedisStore, op: Callable[[RedisStore], Awaitable[T]]) -> T:
        """``op`` on ``store``; once more on fresh connections if the first try found a
        connection closed.  A failover ends with Sentinel's ``CLIENT KILL TYPE normal`` on the
        promoted node, so every idle pooled connection to it is dead at once; without this the
        first read on each (master and replica pools alike) failed after the election."""
        try:
            return await op(store)
        except _UNREACHABLE:
            pool = store._r.connection_pool
            await pool.disconnect(inuse_connections=False)  # idle ones: reconnected on use
            return await op(store)

    async def get_user(self, aor: str) -> User | None:
        try:
            user = await self._read("get_user", lambda s: RedisStore.get_user(s, aor))
        except StoreUnavailable:
            cached = self._users.get(aor, time.monotonic())
            if cached is None:
                raise
            return cached.value
        self._users.put(aor, user, time.monotonic())
        return user

    async def get_bindings(self, aor: str, now: float) -> list[Binding]:
        try:
            found = await self._read("get_bindings", lambda s: RedisStore.get_bindings(s, aor, now))
        except StoreUnavailable:
            cached = self._bindings.get(aor, time.monotonic())
            if cached is None:
                raise
            return [b for b in cached.value if b.expires_at > now]
        self._bindings.put(aor, found, time.monotonic())
        return found

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        return await self._read(
            "list_users", lambda s: RedisStore.list_users(s, limit=limit, offset=offset)
        )

    async def count_users(self) -> int:
        return await self._read("count_users", RedisStore.count_users)

    async def get_dialog(self, call_id: str) -> DialogRecord | None:
        return await self._read("get_dialog", lambda s: RedisStore.get_dialog(s, call_id))

    # --- writes: on the master, confirmed by WAIT, held through an election ----------------
    async def _write(self, what: str, op: Callable[[RedisStore, int], Awaitable[T]]) -> T:
        """Run ``op(store_on_one_connection, attempt)`` until ``replicas`` replicas hold its
        writes, retrying for up to ``hold`` seconds. Raises StoreUnavailable after that."""
        s = self.settings
        deadline = time.monotonic() + s.hold
        attempt = 0
        while True:
            conn = self._master.client()  # one connection: WAIT counts its own writes
            try:
                result = await op(RedisStore(self.url, prefix=s.prefix, client=conn), attempt)
                while s.replicas:
                    acked = int(await conn.wait(s.replicas, round(s.wait_timeout * 1000)))
                    if acked >= s.replicas:
                        break
                    if time.monotonic() >= deadline:
                        raise StoreUnavailable(
                            f"{what}: {acked} of {s.replicas} replicas confirmed the write "
                            f"within {s.hold:g} s; not acknowledged",
                            retry_after=s.retry_after,
                        )
                return result
            except _UNREACHABLE as exc:
                if time.monotonic() >= deadline:
                    raise self._unavailable(f"{what}: no master within {s.hold:g} s", exc) from exc
                log.info("%s: master unreachable (%s); retrying", what, exc)
            finally:
                await conn.aclose()
            pause = min(_RETRY_PAUSE * 2 ** min(attempt, 8), _RETRY_PAUSE_MAX)
            await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            attempt += 1

    async def add_users(self, users: Iterable[User]) -> int:
        batch = list(users)  # replayed whole if the master changes mid-import
        return await self._write("add_users", lambda st, _: RedisStore.add_users(st, batch))

    async def delete_user(self, aor: str) -> bool:
        self._users.forget(aor)
        return await self._write("delete_user", lambda st, _: RedisStore.delete_user(st, aor))

    async def update_bindings(
        self,
        aor: str,
        *,
        changes: Sequence[BindingChange],
        call_id: str,
        cseq: int,
        now: float,
    ) -> UpdateResult:
        async def op(st: RedisStore, attempt: int) -> UpdateResult:
            result = await RedisStore.update_bindings(
                st, aor, changes=changes, call_id=call_id, cseq=cseq, now=now
            )
            if attempt and is_own_earlier_attempt(result, call_id, cseq):
                return UpdateResult(UpdateOutcome.APPLIED, result.bindings)
            return result

        result = await self._write("update_bindings", op)
        if result.ok:
            self._bindings.put(aor, list(result.bindings), time.monotonic())
        return result

    async def remove_all(self, aor: str, *, call_id: str, cseq: int, now: float) -> UpdateResult:
        async def op(st: RedisStore, attempt: int) -> UpdateResult:
            return await RedisStore.remove_all(st, aor, call_id=call_id, cseq=cseq, now=now)

        result = await self._write("remove_all", op)
        if result.ok:
            self._bindings.put(aor, list(result.bindings), time.monotonic())
        return result

    async def put_dialog(self, call_id: str, record: DialogRecord, ttl: float) -> None:
        await self._write(
            "put_dialog", lambda st, _: RedisStore.put_dialog(st, call_id, record, ttl)
        )

    async def delete_dialog(self, call_id: str) -> bool:
        # A retry after a lost answer may find the dialog already taken by the first attempt
        # and report False: the record is gone either way, which is what the callers need.
        return await self._write(
            "delete_dialog", lambda st, _: RedisStore.delete_dialog(st, call_id)
        )

    async def advance_nonce_count(
        self, nonce: str, nc: int, *, expires_at: float, now: float
    ) -> bool:
        # Replicated like every write: a count lost in a failover would let a replay in once
        # more. A retry after a lost answer may find its own first attempt recorded and say
        # "replay": the UA is challenged once more, never let in twice.
        return await self._write(
            "advance_nonce_count",
            lambda st, _: RedisStore.advance_nonce_count(
                st, nonce, nc, expires_at=expires_at, now=now
            ),
        )

    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        return await self._write(
            "shared_secret", lambda st, _: RedisStore.shared_secret(st, name, candidate)
        )

    # --- lifecycle ---------------------------------------------------------------------------
    async def close(self) -> None:
        try:
            await self._replica.close()
            await super().close()
        finally:
            await self._sentinel.aclose()

    async def __aenter__(self) -> SentinelStore:
        return self


def is_own_earlier_attempt(result: UpdateResult, call_id: str, cseq: int) -> bool:
    """An OUT_OF_ORDER answer to a retried REGISTER caused by the stored result of its own
    first attempt (same Call-ID, same CSeq: RFC 3261 §10.3 makes that pair one request)."""
    if result.ok:
        return False
    conflicting = [b for b in result.bindings if b.contact == result.conflict]
    return bool(conflicting) and all(b.call_id == call_id and b.cseq == cseq for b in conflicting)
