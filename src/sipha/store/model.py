"""Records the store keeps: users, registrar bindings, dialogs.

All records are frozen slotted dataclasses so that the server can pass them around freely and
both backends serialise them the same way (see `binding_to_json` and friends). Times are float
unix seconds supplied by the caller (`now`), never read here.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sipha.sip.auth import Algorithm, compute_ha1

__all__ = [
    "Binding",
    "BindingChange",
    "DialogRecord",
    "UpdateOutcome",
    "UpdateResult",
    "User",
    "check_nonce_count",
    "make_user",
]


def _check_aor(aor: str) -> None:
    user, at, domain = aor.rpartition("@")
    if not at or not user or not domain or ":" in user or any(c.isspace() for c in aor):
        raise ValueError(f"aor must be 'user@domain' without a scheme, got {aor!r}")


MAX_NONCE_LENGTH = 256


def check_nonce_count(nonce: str, nc: int, expires_at: float, now: float) -> None:
    """Validate the arguments of ``Store.advance_nonce_count``; raise ValueError."""
    if not nonce or len(nonce) > MAX_NONCE_LENGTH:
        raise ValueError("nonce must be 1..256 characters")
    if not 0 < nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce-count out of range: {nc}")
    if not (math.isfinite(expires_at) and math.isfinite(now)) or expires_at <= now:
        raise ValueError("expires_at must be after now")


@dataclass(frozen=True, slots=True)
class User:
    """A subscriber: digest credentials only, never the password.

    Raises ValueError if `aor` is not ``user@domain`` (no ``sip:`` scheme).
    """

    aor: str
    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str

    def __post_init__(self) -> None:
        _check_aor(self.aor)

    def ha1_for(self, algorithm: Algorithm) -> str:
        """The stored HA1 for a digest `algorithm` (a -sess variant uses its base hash's)."""
        return self.ha1_sha256 if algorithm.hash_name == "sha256" else self.ha1_md5


def make_user(username: str, domain: str, password: str, realm: str | None = None) -> User:
    """Build a `User` for ``username@domain``, hashing `password` for MD5 and SHA-256 digest.

    `realm` defaults to `domain` (the usual choice, RFC 3261 §22.1). Raises ValueError on an
    empty username/domain.
    """
    if not username or not domain:
        raise ValueError("username and domain must not be empty")
    realm = domain if realm is None else realm
    return User(
        aor=f"{username}@{domain}",
        username=username,
        realm=realm,
        # One HA1 per hash: the -sess variants derive from the same HA1 (RFC 7616 §3.4.2).
        ha1_md5=compute_ha1(username, realm, password, Algorithm.MD5),
        ha1_sha256=compute_ha1(username, realm, password, Algorithm.SHA256),
    )


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an AOR (RFC 3261 §10.3).

    `contact` is the key within the AOR: the caller must give it in a canonical form so that
    string equality stands for the URI comparison of RFC 3261 §19.1.4. `raw` is the Contact
    header value as received, echoed back in the 200 (RFC 3261 §10.3 step 8).
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    raw: str
    q: float | None = None
    path: tuple[str, ...] = ()
    received: str | None = None
    instance: str | None = None

    def expires_in(self, now: float) -> int:
        """Seconds left, rounded up, as the `expires` param of the 200's Contact."""
        return max(0, math.ceil(self.expires_at - now))


@dataclass(frozen=True, slots=True)
class BindingChange:
    """One Contact of a REGISTER, after the server resolved its expiry.

    `expires` is in seconds (already clamped by the server's min/max policy); 0 removes the
    binding (RFC 3261 §10.3 step 7).
    """

    contact: str
    expires: int
    raw: str
    q: float | None = None
    path: tuple[str, ...] = ()
    received: str | None = None
    instance: str | None = None


class UpdateOutcome(enum.Enum):
    APPLIED = "applied"
    # RFC 3261 §10.3 steps 6-7: same Call-ID with a CSeq not higher than the stored one: the
    # update is aborted as a whole; the server answers 500 (a retransmission or a reordered
    # REGISTER from the same UA).
    OUT_OF_ORDER = "out_of_order"


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What a REGISTER did: the outcome and the AOR's current bindings afterwards.

    On OUT_OF_ORDER nothing was written; `bindings` are the unchanged current ones and
    `conflict` is the contact whose stored CSeq was not lower.
    """

    outcome: UpdateOutcome
    bindings: tuple[Binding, ...]
    conflict: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is UpdateOutcome.APPLIED


@dataclass(frozen=True, slots=True)
class DialogRecord:
    """A dialog answered by some server, recorded so that any server can end it."""

    call_id: str
    local_tag: str
    remote_tag: str
    owner: str
    created_at: float
    expires_at: float
    data: Mapping[str, str] = field(default_factory=dict)


# --- serialisation shared by the backends --------------------------------------------------


def binding_to_json(b: Binding) -> str:
    return json.dumps(
        {
            "contact": b.contact,
            "expires_at": b.expires_at,
            "call_id": b.call_id,
            "cseq": b.cseq,
            "raw": b.raw,
            "q": b.q,
            "path": list(b.path),
            "received": b.received,
            "instance": b.instance,
        },
        separators=(",", ":"),
    )


def binding_from_json(aor: str, text: str | bytes) -> Binding:
    d: dict[str, Any] = json.loads(text)
    return Binding(
        aor=aor,
        contact=d["contact"],
        expires_at=float(d["expires_at"]),
        call_id=d["call_id"],
        cseq=int(d["cseq"]),
        raw=d["raw"],
        q=None if d["q"] is None else float(d["q"]),
        path=tuple(d["path"]),
        received=d["received"],
        instance=d["instance"],
    )


def dialog_to_json(r: DialogRecord) -> str:
    return json.dumps(
        {
            "call_id": r.call_id,
            "local_tag": r.local_tag,
            "remote_tag": r.remote_tag,
            "owner": r.owner,
            "created_at": r.created_at,
            "expires_at": r.expires_at,
            "data": dict(r.data),
        },
        separators=(",", ":"),
    )


def dialog_from_json(text: str | bytes) -> DialogRecord:
    d: dict[str, Any] = json.loads(text)
    return DialogRecord(
        call_id=d["call_id"],
        local_tag=d["local_tag"],
        remote_tag=d["remote_tag"],
        owner=d["owner"],
        created_at=float(d["created_at"]),
        expires_at=float(d["expires_at"]),
        data=dict(d["data"]),
    )


def sort_bindings(bindings: Iterable[Binding]) -> list[Binding]:
    """Highest q first (an absent q counts as 1.0, the usual reading), then by contact."""
    return sorted(bindings, key=lambda b: (-(1.0 if b.q is None else b.q), b.contact))
