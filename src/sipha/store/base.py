"""The one interface the SIP server talks to, whatever the backend.

Theory of operation
-------------------
The store holds four kinds of shared state for the SIP servers of a cluster:

* users (digest credentials, HA1 only), read on every authenticated request;
* registrar bindings (RFC 3261 §10.3), written by whichever server got the REGISTER and read
  by every server routing to that AOR;
* dialogs answered by a server, so that another server can end them if the owner dies;
* digest nonce-counts, so a request authenticated once is refused everywhere when replayed;
* cluster secrets, such as the key of the stateless digest nonces: a nonce issued by one
  server is answered to another (through the dispatcher), so they must share the key, and it
  must be unguessable, so it is random, made once by whichever server asks first.

Every write that depends on what is stored (the §10.3 Call-ID/CSeq checks, the dialog "take")
is one atomic step inside the backend: a `BEGIN IMMEDIATE` transaction on SQLite, a Lua script
on Redis. The server never does read-modify-write itself, so two servers racing on one AOR
cannot lose a binding.

Time: binding times are the caller's `now` (float unix seconds), so registrar logic can be
tested on virtual time. Dialog retention (`ttl`) is wall-clock, kept by the backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from sipha.store.model import Binding, BindingChange, DialogRecord, UpdateResult, User

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """Users, registrations and dialogs shared by the SIP servers."""

    # --- users -------------------------------------------------------------------------------
    async def add_user(self, user: User) -> None:
        """Insert or replace `user` (keyed by its AOR)."""

    async def add_users(self, users: Iterable[User]) -> int:
        """Insert or replace many users in bulk; returns how many were written."""

    async def get_user(self, aor: str) -> User | None:
        """The user for ``user@domain``, or None."""

    async def delete_user(self, aor: str) -> bool:
        """Remove a user; True if it existed."""

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        """Users ordered by AOR, `limit` of them starting at `offset`."""

    async def count_users(self) -> int:
        """How many users are stored."""

    # --- registrations (RFC 3261 §10.3) ------------------------------------------------------
    async def update_bindings(
        self,
        aor: str,
        *,
        changes: Sequence[BindingChange],
        call_id: str,
        cseq: int,
        now: float,
    ) -> UpdateResult:
        """Apply one REGISTER's Contacts atomically (RFC 3261 §10.3 step 7).

        For each change: an existing binding with the same Call-ID and a stored CSeq >= `cseq`
        aborts the whole request (UpdateOutcome.OUT_OF_ORDER, nothing written); expires 0
        removes the binding; anything else inserts or refreshes it. Returns the AOR's
        unexpired bindings afterwards.
        """

    async def remove_all(self, aor: str, *, call_id: str, cseq: int, now: float) -> UpdateResult:
        """``Contact: *`` with ``Expires: 0`` (RFC 3261 §10.3 step 6): remove every binding.

        Aborted as a whole (OUT_OF_ORDER) if a binding has the same Call-ID and a CSeq >= `cseq`.
        """

    async def get_bindings(self, aor: str, now: float) -> list[Binding]:
        """The AOR's bindings not yet expired at `now`, highest q first."""

    def get_bindings_now(self, aor: str, now: float) -> list[Binding] | None:
        """`get_bindings` without awaiting, when the backend can answer on the caller's
        thread at once (SQLite's WAL readers never wait); None when it cannot (a network
        round trip): then use `get_bindings`. Every proxied INVITE does this lookup, and an
        asyncio task per INVITE cost more than the lookup itself."""

    async def purge_expired(self, now: float) -> int:
        """Delete bindings expired at `now`; returns how many were deleted."""

    # --- digest replay protection (RFC 2617 §3.2.2 nonce-count) -------------------------------
    async def advance_nonce_count(
        self, nonce: str, nc: int, *, expires_at: float, now: float
    ) -> bool:
        """Accept nonce-count ``nc`` for ``nonce`` if it is higher than any accepted before,
        in one atomic step for the whole cluster; False means a replay.

        The record expires with the nonce (``expires_at``, unix seconds; the caller's ``now``
        and the backend's clock decide the same way). Raises ValueError for an empty or
        oversized nonce, an nc outside 1..2**32-1 or ``expires_at <= now``.
        """

    # --- dialogs -----------------------------------------------------------------------------
    async def put_dialog(self, call_id: str, record: DialogRecord, ttl: float) -> None:
        """Record (or replace) a dialog, kept for `ttl` seconds of wall-clock time.

        Raises ValueError if `call_id` differs from `record.call_id` or `ttl` <= 0.
        """

    async def get_dialog(self, call_id: str) -> DialogRecord | None:
        """The recorded dialog, or None if absent or past its ttl."""

    async def delete_dialog(self, call_id: str) -> bool:
        """Remove a dialog; True for exactly one caller if several race (an atomic take)."""

    async def count_dialogs(self, owner: str | None = None) -> int:
        """Live dialogs, all or only those of server `owner`."""

    # --- cluster secrets ---------------------------------------------------------------------
    async def shared_secret(self, name: str, candidate: bytes) -> bytes:
        """The secret called `name`, created from `candidate` if there is none yet.

        Atomic get-or-create: of servers racing on a fresh store, one stores its candidate and
        every one gets those same bytes back. The caller draws `candidate` at random (the
        store itself has no randomness). Raises ValueError for an empty `candidate`.
        """

    # --- lifecycle ---------------------------------------------------------------------------
    async def close(self) -> None:
        """Release connections/threads; the store is unusable afterwards."""
