"""Redis backend: the store shared by the SIP servers of several hosts.

Theory of operation
-------------------
Key layout (every key starts with `prefix`, default ``sipha:``):

* ``user:<aor>``        hash username/realm/ha1_md5/ha1_sha256
* ``users``             sorted set of AORs, all score 0, so ZRANGE lists them in AOR order
* ``reg:<aor>``         hash contact -> binding JSON; key TTL = the latest binding's expiry,
                        so an AOR whose UAs all vanished disappears on its own
* ``regexp``            sorted set "<aor>\\n<contact>" scored by expires_at, the index that
                        `purge_expired` walks to drop single stale contacts of live AORs
* ``dlg:<call-id>``     hash owner/rec (DialogRecord JSON), key TTL = the dialog's ttl
* ``dlgs``, ``dlgs:owner:<owner>``  sorted sets call-id -> purge time (Redis clock, ms)
* ``secret:<name>``     a cluster secret, hex; no TTL (created once with SET NX)

Every write that depends on what is stored runs as one Lua script, which Redis executes
atomically: the RFC 3261 §10.3 Call-ID/CSeq checks and the writes they guard cannot interleave
with another server's REGISTER. Scripts build a few key names from `prefix`, which is fine on a
single Redis (or a primary with replicas) but not on Redis Cluster.

Binding times are the caller's `now`; the key TTL is set relative to that `now`, so a clock
offset between a server and Redis does not shorten a registration. Dialog retention uses the
Redis clock (TIME), as nothing else compares against it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis

from sipha.store.model import (
    Binding,
    BindingChange,
    DialogRecord,
    UpdateOutcome,
    UpdateResult,
    User,
    binding_from_json,
    binding_to_json,
    check_nonce_count,
    dialog_from_json,
    dialog_to_json,
    sort_bindings,
)

__all__ = ["RedisStore"]

_SEP = "\n"  # between AOR and contact in the `regexp` index; neither may contain a newline
_BULK_CHUNK = 1000
_PURGE_BATCH = 1000
# Extra life for a `reg:` key past its latest binding, so a binding is never lost to the key
# TTL before get_bindings' own `now` filter says it is expired.
_REG_TTL_GRACE_MS = 5000

# Shared prologue: drop this AOR's expired bindings and load the live ones into `stored`.
_LOAD_LIVE = """
local reg, idx = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local call_id = ARGV[2]
local cseq = tonumber(ARGV[3])
local aor = ARGV[4]
local stored = {}
local all = redis.call('HGETALL', reg)
for i = 1, #all, 2 do
  local b = cjson.decode(all[i + 1])
  if b.expires_at <= now then
    redis.call('HDEL', reg, all[i])
    redis.call('ZREM', idx, aor .. '\\n' .. all[i])
  else
    stored[all[i]] = b
  end
end
-- RFC 3261 §10.3 steps 6-7: same Call-ID and a CSeq not higher than stored -> abort.
local function out_of_order(contact)
  local b = stored[contact]
  return b ~= nil and b.call_id == call_id and tonumber(b.cseq) >= cseq
end
"""

# ARGV: now, call_id, cseq, aor, n, then n x (contact, expires_at or 0 to remove, blob).
_UPDATE = (
    _LOAD_LIVE
    + """
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  local contact = ARGV[6 + 3 * i]
  if out_of_order(contact) then
    return {0, contact, redis.call('HVALS', reg)}
  end
end
for i = 0, n - 1 do
  local contact = ARGV[6 + 3 * i]
  local expires_at = tonumber(ARGV[7 + 3 * i])
  if expires_at == 0 then
    redis.call('HDEL', reg, contact)
    redis.call('ZREM', idx, aor .. '\\n' .. contact)
  else
    redis.call('HSET', reg, contact, ARGV[8 + 3 * i])
    redis.call('ZADD', idx, expires_at, aor .. '\\n' .. contact)
  end
end
local vals = redis.call('HVALS', reg)
local latest = now
for _, v in ipairs(vals) do
  local e = cjson.decode(v).expires_at
  if e > latest then latest = e end
end
if #vals == 0 then
  redis.call('DEL', reg)
else
  redis.call('PEXPIRE', reg, math.ceil((latest - now) * 1000) + tonumber(ARGV[#ARGV]))
end
return {1, '', vals}
"""
)

# ARGV: now, call_id, cseq, aor.
_REMOVE_ALL = (
    _LOAD_LIVE
    + """
for contact, _ in pairs(stored) do
  if out_of_order(contact) then
    return {0, contact, redis.call('HVALS', reg)}
  end
end
for contact, _ in pairs(stored) do
  redis.call('ZREM', idx, aor .. '\\n' .. contact)
end
redis.call('DEL', reg)
return {1, '', {}}
"""
)

# KEYS: regexp index; ARGV: now, reg key prefix, batch size. Returns how many it removed.
_PURGE = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(gone) do
  local cut = string.find(m, '\\n', 1, true)
  redis.call('HDEL', ARGV[2] .. string.sub(m, 1, cut - 1), string.sub(m, cut + 1))
  redis.call('ZREM', KEYS[1], m)
end
return #gone
"""

_DLG_NOW = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: dlg key, dlgs; ARGV: call_id, owner, record JSON, ttl ms, owner-set key prefix.
_PUT_DIALOG = (
    _DLG_NOW
    + """
local old = redis.call('HGET', KEYS[1], 'owner')
if old and old ~= ARGV[2] then redis.call('ZREM', ARGV[5] .. old, ARGV[1]) end
local until_ms = now_ms + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'rec', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
for _, z in ipairs({KEYS[2], ARGV[5] .. ARGV[2]}) do
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now_ms)
  redis.call('ZADD', z, until_ms, ARGV[1])
  local top = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', z, top[2])
end
"""
)

# KEYS: dlg key, dlgs; ARGV: call_id, owner-set key prefix. 1 for the one caller that took it.
_DELETE_DIALOG = """
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[2] .. owner, ARGV[1])
return 1
"""

# KEYS: a dlgs sorted set.
_COUNT_DIALOGS = (
    _DLG_NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
return redis.call('ZCARD', KEYS[1])
"""
)

# KEYS: the nonce's nc key; ARGV: nc, ttl ms. 1 when nc is higher than the stored count.
_ADVANCE_NC = """
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_USER_FIELDS = ("username", "realm", "ha1_md5", "ha1_sha256")


class RedisStore:
    """`Store` on Redis (see module docstring). Connects lazily on first use.

    Redis errors surface as `redis.exceptions.RedisError` (e.g. ConnectionError).
    """

    def __init__(
        self, url: str, *, prefix: str = "sipha:", client: aioredis.Redis | None = None
    ) -> None:
        """`client` (decoding replies to str) replaces the one made from `url`: the
        Sentinel store passes its master's, a replica's or a single connection's."""
        self.url = url
        self.prefix = prefix
        self._r: aioredis.Redis = (
            client if client is not None else aioredis.Redis.from_url(url, decode_responses=True)
        )
        self._update = self._r.register_script(_UPDATE)
        self._remove_all = self._r.register_script(_REMOVE_ALL)
        self._purge = self._r.register_script(_PURGE)
        self._put_dialog = self._r.register_script(_PUT_DIALOG)
        self._delete_dialog = self._r.register_script(_DELETE_DIALOG)
        self._count_dialogs = self._r.register_script(_COUNT_DIALOGS)
        self._advance_nc = self._r.register_script(_ADVANCE_NC)

    def _k(self, *parts: str) -> str:
        return self.prefix + "".join(parts)

    # --- users -------------------------------------------------------------------------------
    async def add_user(self, user: User) -> None:
        await self.add_users((user,))

    async def add_users(self, users: Iterable[User]) -> int:
        count = 0
        # Pipelined, not MULTI: a bulk import need not be all-or-nothing, and chunks bound
        # the memory of one round trip.
        pipe = self._r.pipeline(transaction=False)
        for u in users:
            pipe.hset(
                self._k("user:", u.aor),
                mapping={f: getattr(u, f) for f in _USER_FIELDS},
            )
            pipe.zadd(self._k("users"), {u.aor: 0})
            count += 1
            if count % _BULK_CHUNK == 0:
                await pipe.execute()
        await pipe.execute()
        return count

    def _user(self, aor: str, h: dict[str, str]) -> User | None:
        if not h:
            return None
        return User(aor, *(h[f] for f in _USER_FIELDS))

    async def get_user(self, aor: str) -> User | None:
        h = cast("dict[str, str]", await self._r.hgetall(self._k("user:", aor)))
        return self._user(aor, h)

    async def delete_user(self, aor: str) -> bool:
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(self._k("user:", aor))
        pipe.zrem(self._k("users"), aor)
        deleted, _ = await pipe.execute()
        return int(deleted) > 0

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        if limit <= 0:
            return []
        aors = cast("list[str]", await self._r.zrange(self._k("users"), offset, offset + limit - 1))
        pipe = self._r.pipeline(transaction=False)
        for aor in aors:
            pipe.hgetall(self._k("user:", aor))
        hashes = await pipe.execute()
        return [u for aor, h in zip(aors, hashes, strict=True) if (u := self._user(aor, h))]

    async def count_users(self) -> int:
        return int(await self._r.zcard(self._k("users")))

    # --- registrations -----------------------------------------------------------------------
    def _result(self, aor: str, reply: list[Any]) -> UpdateResult:
        status, conflict, blobs = reply
        bindings = tuple(sort_bindings(binding_from_json(aor, b) for b in blobs))
        if int(status) == 1:
            return UpdateResult(UpdateOutcome.APPLIED, bindings)
        return UpdateResult(UpdateOutcome.OUT_OF_ORDER, bindings, conflict)

    async def update_bindings(
        self,
        aor: str,
        *,
        changes: Sequence[BindingChange],
        call_id: str,
        cseq: int,
        now: float,
    ) -> UpdateResult:
        args: list[str | int | float] = [repr(now), call_id, cseq, aor, len(changes)]
        for c in changes:
            if _SEP in c.contact or _SEP in aor:
                raise ValueError("aor and contact must not contain a newline")
            if c.expires <= 0:
                args += [c.contact, 0, ""]
                continue
            b = Binding(
                aor=aor,
                contact=c.contact,
                expires_at=now + c.expires,
                call_id=call_id,
                cseq=cseq,
                raw=c.raw,
                q=c.q,
                path=c.path,
                received=c.received,
                instance=c.instance,
            )
            args += [c.contact, repr(b.expires_at), binding_to_json(b)]
        args.append(_REG_TTL_GRACE_MS)
        reply = await self._update(keys=[self._k("reg:", aor), self._k("regexp")], args=args)
        return self._result(aor, reply)

    async def remove_all(self, aor: str, *, call_id: str, cseq: int, now: float) -> UpdateResult:
        reply = await self._remove_all(
            keys=[self._k("reg:", aor), self._k("regexp")], args=[repr(now), call_id, cseq, aor]
        )
        return self._result(aor, reply)

    async def get_bindings(self, aor: str, now: float) -> list[Binding]:
        blobs = cast("list[str]", await self._r.hvals(self._k("reg:", aor)))
        live = (b for b in (binding_from_json(aor, x) for x in blobs) if b.expires_at > now)
        return sort_bindings(live)

    def get_bindings_now(self, aor: str, now: float) -> list[Binding] | None:
        return None  # a network round trip: only get_bindings

    async def purge_expired(self, now: float) -> int:
        # Batches keep each script short: a script blocks the whole Redis while it runs.
        total = 0
        while True:
            n = int(
                await self._purge(
                    keys=[self._k("regexp")], args=[repr(now), self._k("reg:"), _PURGE_BATCH]
                )
            )
            total += n
            if n < _PURGE_BATCH:
                return total

    # --- digest replay protection -------------------------------------------------------------
    async def advance_nonce_count(
        self, nonce: str, nc: int, *, expires_at: float, now: float
    ) -> bool:
        check_nonce_count(nonce, nc, expires_at, now)
        # Redis expires the key with the nonce: nothing to purge.
        ttl_ms = max(1, math.ceil((expires_at - now) * 1000))
        took = await self._advance_nc(keys=[self._k("nc:", nonce)], args=[nc, ttl_ms])
        return int(took) == 1

    # --- dialogs -----------------------------------------------------------------------------
    async def put_dialog(self, call_id: str, record: DialogRecord, ttl: float) -> None:
        if call_id != record.call_id:
            raise ValueError(f"call_id {call_id!r} differs from record.call_id {record.call_id!r}")
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl}")
        await self._put_dialog(
            keys=[self._k("dlg:", call_id), self._k("dlgs")],
            args=[
                call_id,
                record.owner,
                dialog_to_json(record),
                max(1, math.ceil(ttl * 1000)),
                self._k("dlgs:owner:"),
            ],
        )

    async def get_dialog(self, call_id: str) -> DialogRecord | None:
        rec = cast("str | None", await self._r.hget(self._k("dlg:", call_id), "rec"))
        return None if rec is None else dialog_from_json(rec)

    async def delete_dialog(self, call_id: str) -> bool:
        took = await self._delete_dialog(
            keys=[self._k("dlg:", call_id), self._k("dlgs")],
            args=[call_id, self._k("dlgs:owner:")],
        )
        return int(took) == 1

    async def count_dialogs(self, owner: str | None = None) -> int:
        key = self._k("dlgs") if owner is None else self._k("dlgs:owner:", owner)
        return int(await self._count_dialogs(keys=[key]))

    # --- cluster secrets ---------------------------------------------------------------------
    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        if not candidate:
            raise ValueError("candidate secret is empty")
        key = self._k("secret:", name)
        # SET NX keeps the first writer's value; hex, as the client decodes replies to str.
        await self._r.set(key, candidate.hex(), nx=True)
        value = cast("str | None", await self._r.get(key))
        if value is None:
            raise RuntimeError(f"secret {key!r} vanished right after it was set")
        return bytes.fromhex(value)

    # --- lifecycle ---------------------------------------------------------------------------
    async def close(self) -> None:
        await self._r.aclose()

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
