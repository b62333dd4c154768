"""Digest authentication for SIP: client answers, stateless server nonces, verification.

Theory of operation
-------------------
Hashes follow RFC 2617 §3.2.2 with the algorithms of RFC 7616 §3.4 (SHA-256 in SIP: RFC 8760)::

    HA1      = H(username ":" realm ":" password)          what a store keeps, never passwords
    HA1-sess = H(HA1 ":" nonce ":" cnonce)                   for the -sess algorithms
    HA2      = H(method ":" uri)                             qop=auth or no qop
               H(method ":" uri ":" H(body))                 qop=auth-int
    response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)   with qop
               H(HA1 ":" nonce ":" HA2)                              without (RFC 2069)

Server nonces are stateless: ``base64url(timestamp || salt || HMAC-SHA256(secret, timestamp ||
salt)[:16])``. Any node holding the secret verifies any other node's nonce without a shared
table, which is what lets a cluster behind a load balancer accept a nonce issued by a sibling.
The timestamp gives staleness (RFC 2617 §3.2.1 ``stale``: the password was right, only the
nonce aged, so the UA retries silently); the salt (injected randomness) makes nonces unique.

Replay protection is the one piece of state: the highest nonce-count accepted per nonce
(RFC 2617 §3.2.2 ``nc``). :meth:`DigestVerifier.authenticate` checks everything else and leaves
the count to the caller, who keeps it where the whole cluster sees it (the server: its shared
store, atomically, expiring at :meth:`NonceAuthority.expires_at`), so a request is accepted once
in the cluster; :meth:`DigestVerifier.verify` keeps it in a bounded per-process LRU instead.
Responses without qop carry no nc, so nothing could be checked for them: a verifier offering
qop (the default) refuses them. The digest ``uri`` must be the Request-URI (RFC 2617 §3.2.2.5),
else captured credentials would serve any other request with the same method.

No clock and no randomness in here: ``now`` and ``cnonce``/``salt`` come from the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import struct
from collections import OrderedDict
from collections.abc import Iterable
from enum import Enum

from sipha.sip.digest_header import (
    Algorithm,
    DigestChallenge,
    DigestCredentials,
    parse_challenge,
    parse_credentials,
)
from sipha.sip.errors import SipParseError

__all__ = [
    "Algorithm",
    "AuthResult",
    "DigestChallenge",
    "DigestCredentials",
    "DigestVerifier",
    "NonceAuthority",
    "NonceStatus",
    "build_credentials",
    "compute_ha1",
    "compute_response",
    "parse_challenge",
    "parse_credentials",
]

SUPPORTED_QOP = ("auth", "auth-int")
_STAMP = struct.Struct(">Q")  # microseconds since the epoch of ``now``
_MAC_LEN = 16  # truncated HMAC-SHA256: 128 bits is plenty against forgery
MAX_SALT = 32
_MAX_NONCE_CHARS = 4 * (_STAMP.size + MAX_SALT + _MAC_LEN) // 3 + 4
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _h(algorithm: Algorithm, data: bytes) -> str:
    return hashlib.new(algorithm.hash_name, data).hexdigest()


def compute_ha1(
    username: str, realm: str, password: str, algorithm: Algorithm = Algorithm.MD5
) -> str:
    """Return hex ``H(username:realm:password)`` (RFC 2617 §3.2.2.2).

    For the ``-sess`` algorithms this is the same value as for their base hash: the session
    key is derived per nonce/cnonce at authentication time, so a store needs one HA1 per hash
    (``algorithm.hash_name``), not per algorithm.
    """
    return _h(algorithm, f"{username}:{realm}:{password}".encode())


def compute_response(
    *,
    algorithm: Algorithm,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: int | None,
    cnonce: str | None,
    body: bytes = b"",
) -> str:
    """Return the hex request-digest (RFC 2617 §3.2.2.1).

    Raises ValueError when qop/nc/cnonce are inconsistent (qop needs nc and cnonce, the
    -sess algorithms need cnonce) or qop is not ``auth``/``auth-int``.
    """
    key = ha1.lower()
    if algorithm.is_session:
        if cnonce is None:
            raise ValueError(f"{algorithm} needs a cnonce")
        key = _h(algorithm, f"{key}:{nonce}:{cnonce}".encode())  # RFC 2617 §3.2.2.2
    if qop == "auth-int":
        ha2 = _h(algorithm, f"{method}:{uri}:{_h(algorithm, body)}".encode())
    elif qop in (None, "auth"):
        ha2 = _h(algorithm, f"{method}:{uri}".encode())
    else:
        raise ValueError(f"unsupported qop {qop!r}")
    if qop is None:
        return _h(algorithm, f"{key}:{nonce}:{ha2}".encode())  # RFC 2069 compatibility
    if nc is None or cnonce is None:
        raise ValueError("qop needs nc and cnonce")
    return _h(algorithm, f"{key}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}".encode())


# --- client --------------------------------------------------------------------------------


def build_credentials(
    challenge: DigestChallenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str | None = None,
    ha1: str | None = None,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
    qop: str | None = None,
) -> DigestCredentials:
    """Answer ``challenge`` for a request ``method uri`` (RFC 3261 §22.2-22.3).

    Give exactly one of ``password`` or ``ha1`` (as from :func:`compute_ha1` with the
    challenge's hash). ``cnonce`` is caller-supplied randomness; ``nc`` counts requests made
    with this nonce, starting at 1. ``qop`` forces a choice among the offered options;
    by default ``auth`` is preferred over ``auth-int``. ``body`` matters only for auth-int.

    Raises SipParseError when the challenge cannot be answered (unknown algorithm, no
    supported qop: see ``challenge.is_supported``) and ValueError on misuse.
    """
    if (password is None) == (ha1 is None):
        raise ValueError("give exactly one of password or ha1")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce-count out of range: {nc}")
    algorithm = challenge.algorithm
    if not isinstance(algorithm, Algorithm):
        raise SipParseError(f"unsupported digest algorithm {algorithm[:40]!r}")
    chosen = _choose_qop(challenge.qop, qop)
    if password is not None:
        ha1 = compute_ha1(username, challenge.realm, password, algorithm)
    assert ha1 is not None  # one of the two was given, checked above
    # RFC 2617 §3.2.2: cnonce goes with qop; the -sess algorithms need it regardless.
    sent_cnonce = cnonce if chosen is not None or algorithm.is_session else None
    sent_nc = nc if chosen is not None else None
    response = compute_response(
        algorithm=algorithm,
        ha1=ha1,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=chosen,
        nc=sent_nc,
        cnonce=sent_cnonce,
        body=body,
    )
    return DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=algorithm,
        cnonce=sent_cnonce,
        opaque=challenge.opaque,  # RFC 2617 §3.2.1: returned unchanged
        qop=chosen,
        nc=sent_nc,
    )


def _choose_qop(offered: tuple[str, ...], wanted: str | None) -> str | None:
    if not offered:
        if wanted is not None:
            raise ValueError(f"qop {wanted!r} requested but the challenge offers none")
        return None
    if wanted is not None:
        if wanted not in offered or wanted not in SUPPORTED_QOP:
            raise ValueError(f"qop {wanted!r} not offered or not supported")
        return wanted
    for option in SUPPORTED_QOP:
        if option in offered:
            return option
    raise SipParseError("digest challenge offers no supported qop")


# --- server --------------------------------------------------------------------------------


class NonceStatus(Enum):
    """What :meth:`NonceAuthority.check_nonce` found."""

    VALID = "valid"
    STALE = "stale"  # authentic but older than the lifetime
    INVALID = "invalid"  # not ours: forged, corrupted, another secret, or from the future


class AuthResult(Enum):
    """Verdict of :meth:`DigestVerifier.verify`; only OK lets the request through.

    STALE: right password, expired nonce: re-challenge with ``stale=True`` (RFC 2617 §3.2.1)
    so the UA retries without asking its user. The others: re-challenge (401/407) and count.
    """

    OK = "ok"
    STALE = "stale"
    BAD_RESPONSE = "bad_response"
    BAD_NONCE = "bad_nonce"
    REPLAY = "replay"
    REALM_MISMATCH = "realm_mismatch"
    URI_MISMATCH = "uri_mismatch"  # the digest uri is not the Request-URI
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"


class NonceAuthority:
    """Issues and checks stateless nonces from a secret shared by every node of a cluster.

    ``max_skew`` tolerates nonces stamped slightly in the future by a sibling whose clock
    runs ahead. Raises ValueError for a secret shorter than 16 bytes.
    """

    __slots__ = ("_secret", "lifetime", "max_skew")

    def __init__(self, secret: bytes, lifetime: float = 300.0, *, max_skew: float = 5.0) -> None:
        if len(secret) < 16:
            raise ValueError("nonce secret must be at least 16 bytes")
        if not lifetime > 0:
            raise ValueError("nonce lifetime must be positive")
        self._secret = secret
        self.lifetime = lifetime
        self.max_skew = max_skew

    def _mac(self, signed: bytes) -> bytes:
        return hmac.new(self._secret, signed, hashlib.sha256).digest()[:_MAC_LEN]

    def make_nonce(self, now: float, salt: bytes = b"") -> str:
        """Return a nonce stamped ``now``; ``salt`` (up to 32 bytes, e.g. random) makes it unique.

        Raises ValueError for a negative or non-finite ``now`` or an oversized salt.
        """
        if not math.isfinite(now) or now < 0:
            raise ValueError(f"bad timestamp {now!r}")
        if len(salt) > MAX_SALT:
            raise ValueError(f"salt longer than {MAX_SALT} bytes")
        signed = _STAMP.pack(int(now * 1_000_000)) + salt
        return base64.urlsafe_b64encode(signed + self._mac(signed)).rstrip(b"=").decode("ascii")

    def _stamp(self, nonce: str) -> float | None:
        """The issue time of an authentic nonce of ours, or None. Never raises."""
        if len(nonce) > _MAX_NONCE_CHARS or not _B64URL.fullmatch(nonce):
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        # Only the canonical spelling is ours: otherwise two strings would name one nonce.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != nonce:
            return None
        if len(raw) < _STAMP.size + _MAC_LEN:
            return None
        signed, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
        if not hmac.compare_digest(self._mac(signed), mac):
            return None
        (stamp,) = _STAMP.unpack_from(signed)
        return float(stamp) / 1_000_000

    def check_nonce(self, nonce: str, now: float) -> NonceStatus:
        """Classify ``nonce`` at time ``now``; never raises for any string."""
        stamp = self._stamp(nonce)
        if stamp is None:
            return NonceStatus.INVALID
        age = now - stamp
        if age < -self.max_skew:
            return NonceStatus.INVALID
        if age > self.lifetime:
            return NonceStatus.STALE
        return NonceStatus.VALID

    def expires_at(self, nonce: str) -> float | None:
        """When an authentic ``nonce`` goes stale (its stamp plus the lifetime), or None for
        a nonce that is not ours: how long its nonce-count must be remembered. Never raises."""
        stamp = self._stamp(nonce)
        return None if stamp is None else stamp + self.lifetime


class DigestVerifier:
    """Server side of Digest for one realm: issues challenges and verifies credentials.

    ``qop`` is what challenges offer; empty means RFC 2069 style (no qop, no replay check).
    ``algorithms`` is what ``verify`` accepts (drop MD5 here to refuse it). Keeps an LRU of
    ``replay_window`` nonces with the highest nonce-count accepted for each.
    """

    __slots__ = ("_highest_nc", "algorithms", "authority", "qop", "realm", "replay_window")

    def __init__(
        self,
        authority: NonceAuthority,
        realm: str,
        *,
        replay_window: int = 100_000,
        qop: tuple[str, ...] = ("auth",),
        algorithms: Iterable[Algorithm] = tuple(Algorithm),
    ) -> None:
        if replay_window < 1:
            raise ValueError("replay_window must be at least 1")
        unknown = [q for q in qop if q not in SUPPORTED_QOP]
        if unknown:
            raise ValueError(f"unsupported qop {unknown}")
        self.authority = authority
        self.realm = realm
        self.replay_window = replay_window
        self.qop = qop
        self.algorithms = frozenset(algorithms)
        self._highest_nc: OrderedDict[str, int] = OrderedDict()

    def challenge(
        self,
        now: float,
        *,
        stale: bool = False,
        algorithm: Algorithm = Algorithm.MD5,
        salt: bytes = b"",
        qop: tuple[str, ...] | None = None,
    ) -> DigestChallenge:
        """Return a fresh challenge for a 401/407 (RFC 3261 §22.1).

        Pass random bytes as ``salt``: two challenges in the same microsecond with the same
        salt share a nonce, and then their nonce-counts collide in the replay check.
        ``qop`` replaces the verifier's options for this challenge (e.g. ``("auth-int",)``).
        Raises ValueError for an algorithm this verifier does not accept or an unknown qop.
        """
        if qop is not None and any(q not in SUPPORTED_QOP for q in qop):
            raise ValueError(f"unsupported qop {qop}")
        if algorithm not in self.algorithms:
            raise ValueError(f"{algorithm} is not accepted by this verifier")
        return DigestChallenge(
            realm=self.realm,
            nonce=self.authority.make_nonce(now, salt),
            algorithm=algorithm,
            qop=self.qop if qop is None else qop,
            stale=stale,
        )

    def authenticate(
        self,
        creds: DigestCredentials,
        *,
        method: str,
        ha1: str,
        now: float,
        body: bytes = b"",
        request_uri: str | None = None,
        qop: tuple[str, ...] | None = None,
    ) -> AuthResult:
        """Check ``creds`` for a request with ``method`` (and ``body``, for auth-int), all but
        the nonce-count: the caller records ``creds.nc`` for ``creds.nonce`` where replays are
        caught (OK means "authentic, now check the count"; see :meth:`verify`).

        ``ha1`` is the stored ``compute_ha1(username, realm, password, creds.algorithm)`` for
        ``creds.username``. ``request_uri``, when given, must equal the digest ``uri``
        (RFC 2617 §3.2.2.5). ``qop`` overrides the offered qop options for this request (e.g.
        ``("auth-int",)`` for REGISTER). Never raises for any creds.
        """
        if creds.realm != self.realm:
            return AuthResult.REALM_MISMATCH
        algorithm = creds.algorithm
        if not isinstance(algorithm, Algorithm) or algorithm not in self.algorithms:
            return AuthResult.UNSUPPORTED_ALGORITHM
        nonce_status = self.authority.check_nonce(creds.nonce, now)
        if nonce_status is NonceStatus.INVALID:
            return AuthResult.BAD_NONCE
        if not self._qop_acceptable(creds, self.qop if qop is None else qop):
            return AuthResult.BAD_RESPONSE
        if request_uri is not None and creds.uri != request_uri:
            return AuthResult.URI_MISMATCH
        try:
            expected = compute_response(
                algorithm=algorithm,
                ha1=ha1,
                nonce=creds.nonce,
                method=method,
                uri=creds.uri,
                qop=creds.qop,
                nc=creds.nc,
                cnonce=creds.cnonce,
                body=body,
            )
        except ValueError:
            return AuthResult.BAD_RESPONSE
        if not hmac.compare_digest(expected.encode(), creds.response.lower().encode()):
            return AuthResult.BAD_RESPONSE
        if nonce_status is NonceStatus.STALE:
            return AuthResult.STALE
        return AuthResult.OK

    def verify(
        self,
        creds: DigestCredentials,
        *,
        method: str,
        ha1: str,
        now: float,
        body: bytes = b"",
        request_uri: str | None = None,
    ) -> AuthResult:
        """:meth:`authenticate`, then the nonce-count in this process's LRU (REPLAY when it
        does not increase). Only a correct response is recorded, so garbage cannot poison the
        replay table. Never raises for any creds."""
        result = self.authenticate(
            creds, method=method, ha1=ha1, now=now, body=body, request_uri=request_uri
        )
        if result is not AuthResult.OK:
            return result
        if creds.qop is not None and not self._advance_nc(creds.nonce, creds.nc or 0):
            return AuthResult.REPLAY
        return AuthResult.OK

    @staticmethod
    def _qop_acceptable(creds: DigestCredentials, offered: tuple[str, ...]) -> bool:
        # RFC 2617 §3.2.2: a qop offered must be used, and only one that was offered.
        if not offered:
            return creds.qop is None
        return (
            creds.qop in offered
            and creds.nc is not None
            and 0 <= creds.nc <= 0xFFFFFFFF
            and creds.cnonce is not None
        )

    def _advance_nc(self, nonce: str, nc: int) -> bool:
        """Record ``nc`` for ``nonce`` if it is higher than any seen; False means replay."""
        seen = self._highest_nc.get(nonce, 0)
        if nc <= seen:
            return False
        self._highest_nc[nonce] = nc
        self._highest_nc.move_to_end(nonce)
        if len(self._highest_nc) > self.replay_window:
            self._highest_nc.popitem(last=False)
        return True

    @property
    def tracked_nonces(self) -> int:
        """Number of nonces currently tracked for replay."""
        return len(self._highest_nc)
