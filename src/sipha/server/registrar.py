"""The registrar (RFC 3261 §10.3): digest authentication, then bindings in the shared store.

Theory of operation
-------------------
Processing follows the numbered steps of §10.3. The decisions are pure functions of the request,
the time and the policy (:func:`plan_contacts`, :func:`ok_response`, :meth:`Registrar.judge`);
:meth:`Registrar.handle` is the thin async part doing at most two store round trips (the user's
HA1, then one atomic binding update).

* step 3, authentication: a REGISTER without credentials for our realm gets a 401 whose nonce is
  stateless (:class:`~sipha.sip.auth.NonceAuthority`): every server sharing the secret accepts
  it, so a client may register through any server of the cluster. A wrong password is refused
  with 403; an expired nonce is challenged again with ``stale=true`` (RFC 2617 §3.2.1). The
  digest ``uri`` must be the Request-URI, and the nonce-count goes through the shared store
  (:func:`accept_once`), so a captured REGISTER replayed to any server of the cluster, with
  another Contact or ``Contact: *``, is challenged again, not applied. With
  ``auth_int_register`` the challenge offers only ``qop=auth-int``, whose digest covers the
  body; a REGISTER has none, so what it adds is the refusal of plain ``auth`` answers.
* step 5: an AOR with no user is 404.
* step 6: ``Contact: *`` needs ``Expires: 0`` and no other Contact, else 400.
* step 7: a positive expiry below ``min_expires`` is 423 with Min-Expires (§20.23); above
  ``max_expires`` it is shortened; the store applies the Call-ID/CSeq ordering rule atomically
  and we answer 500 when it refuses (an out-of-order REGISTER).
* step 8: the 200 lists every current binding with its remaining ``expires``.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sipha.server.config import RegistrarConfig
from sipha.sip.auth import Algorithm, AuthResult, DigestVerifier, parse_credentials
from sipha.sip.digest_header import DigestCredentials
from sipha.sip.errors import SipParseError
from sipha.sip.message import Request, Response, build_response
from sipha.sip.uri import SipUri
from sipha.store import Binding, BindingChange, Store, User

log = logging.getLogger(__name__)

__all__ = [
    "AuthVerdict",
    "ContactPlan",
    "Registrar",
    "accept_once",
    "aor_of",
    "canonical_contact",
    "contact_uri_of",
    "ok_response",
    "plan_contacts",
    "verdict_of",
]


def aor_of(uri: object, domain: str) -> str:
    """``user@domain`` for a SIP URI naming one of our users (one domain per server).

    Raises SipParseError (status 404 hint) when the URI is not sip/sips or has no user.
    """
    if not isinstance(uri, SipUri) or not uri.user:
        raise SipParseError("not a SIP URI with a user part", status=404)
    return f"{uri.user}@{domain}"


def canonical_contact(uri: object) -> str:
    """A Contact URI in a form where string equality stands for RFC 3261 §19.1.4 equality
    (case-insensitive scheme/host, parameter order irrelevant), the store's binding key."""
    if not isinstance(uri, SipUri):
        return str(uri)
    params = ";".join(
        k.lower() if v is None else f"{k.lower()}={v.lower()}"
        for k, v in sorted(uri.params.items(), key=lambda kv: kv[0].lower())
    )
    user = f"{uri.user}@" if uri.user is not None else ""
    host = uri.host.lower()
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    port = f":{uri.port}" if uri.port is not None else ""
    return f"{uri.scheme.lower()}:{user}{host}{port}" + (f";{params}" if params else "")


@dataclass(frozen=True, slots=True)
class ContactPlan:
    """What a REGISTER asks of the store, or the error to answer."""

    changes: tuple[BindingChange, ...] = ()
    wildcard: bool = False
    query: bool = False
    error: Response | None = None


def plan_contacts(
    request: Request, policy: RegistrarConfig, *, received: str | None = None
) -> ContactPlan:
    """Steps 6 and 7 of §10.3 for ``request`` (already authenticated).

    Never raises: a malformed Contact or Expires becomes a 400 in ``error``.
    """
    try:
        contacts = request.contacts
        header_expires = request.expires
    except SipParseError as err:
        return ContactPlan(error=build_response(request, 400, f"Bad Request ({err.reason})"))
    if contacts == "*":
        # §10.3 step 6: only with Expires: 0.
        if header_expires != 0:
            return ContactPlan(error=build_response(request, 400, "Bad Request (Contact: *)"))
        return ContactPlan(wildcard=True)
    if not contacts:
        return ContactPlan(query=True)
    changes: list[BindingChange] = []
    for contact in contacts:
        try:
            expires = contact.expires
            q = contact.q
        except SipParseError as err:
            return ContactPlan(error=build_response(request, 400, f"Bad Request ({err.reason})"))
        if expires is None:
            expires = header_expires if header_expires is not None else policy.default_expires
        if 0 < expires < policy.min_expires:
            # §10.3 step 7 / §20.23: too brief; tell the UA the minimum.
            return ContactPlan(
                error=build_response(
                    request, 423, headers=[("Min-Expires", str(policy.min_expires))]
                )
            )
        expires = min(expires, policy.max_expires)
        instance = contact.params.get("+sip.instance")
        changes.append(
            BindingChange(
                contact=canonical_contact(contact.uri),
                expires=expires,
                raw=str(contact),
                q=q,
                path=tuple(request.get_all("path")),
                received=received,
                instance=instance.strip('"<>') if instance else None,
            )
        )
    return ContactPlan(changes=tuple(changes))


def ok_response(
    request: Request, bindings: tuple[Binding, ...] | list[Binding], now: float
) -> Response:
    """The 200 of §10.3 step 8: every current binding with its remaining expires."""
    headers = [
        ("Contact", f"<{contact_uri_of(b.raw)}>;expires={b.expires_in(now)}") for b in bindings
    ]
    if request.method == "REGISTER" and _supports_path(request):
        # RFC 3327 §5.3: the Path stored is echoed to a UA that supports it.
        headers += [("Path", value) for value in request.get_all("path")]
    if request.method == "REGISTER" and _outbound(request):
        headers.append(("Require", "outbound"))
    return build_response(request, 200, to_tag=_tag(request), headers=headers)


def _outbound(request: Request) -> bool:
    """RFC 5626 §6: the registration uses outbound when a Contact has a reg-id and an
    instance id and the edge said it supports outbound (``ob`` in the first Path), or the
    UA is our direct neighbour (no Path). The phone then starts its keepalives."""
    if not any("reg-id" in c and "+sip.instance" in c for c in request.get_all("contact")):
        return False
    paths = request.get_all("path")
    return not paths or ";ob" in paths[0].partition(">")[0]


def _supports_path(request: Request) -> bool:
    return any(
        token.strip().lower() == "path"
        for value in request.get_all("supported")
        for token in value.split(",")
    )


def contact_uri_of(raw: str) -> str:
    # The raw value as received may be name-addr (with display name and params) or addr-spec;
    # the URI alone is echoed with our expires.
    start, end = raw.find("<"), raw.find(">")
    if 0 <= start < end:
        return raw[start + 1 : end]
    return raw.split(";", 1)[0].strip()


def _tag(request: Request) -> str:
    # A registrar's To tag: deterministic per request, so retransmissions get the same one.
    return f"r{abs(hash((request.call_id, request.cseq.seq))) & 0xFFFFFFFF:x}"


async def accept_once(
    store: Store, verifier: DigestVerifier, creds: DigestCredentials, now: float
) -> bool:
    """Record the nonce-count of authentic ``creds`` in the shared store: True the first time
    in the whole cluster, False for a replay (RFC 2617 §3.2.2). Credentials without qop have
    no count; the verifiers here always offer qop, so they never get this far.

    Raises what the store raises when it cannot be reached.
    """
    if creds.qop is None or creds.nc is None:
        return True
    expires_at = verifier.authority.expires_at(creds.nonce)
    if expires_at is None:
        return False
    # The record lives as long as the nonce may be answered, skew included.
    until = max(expires_at + verifier.authority.max_skew, now + 1.0)
    return await store.advance_nonce_count(creds.nonce, creds.nc, expires_at=until, now=now)


class AuthVerdict(enum.Enum):
    OK = "ok"
    CHALLENGE = "challenge"  # no usable credentials: 401 (fresh nonce)
    STALE = "stale"  # right password, old nonce: 401 stale=true
    FORBIDDEN = "forbidden"  # wrong password or another user's AOR: 403
    UNKNOWN_USER = "unknown_user"  # 404


def verdict_of(result: AuthResult) -> AuthVerdict:
    """What the server answers for a verifier's result (before the replay check)."""
    if result is AuthResult.OK:
        return AuthVerdict.OK
    if result is AuthResult.STALE:
        return AuthVerdict.STALE
    if result in (AuthResult.BAD_RESPONSE, AuthResult.URI_MISMATCH):
        return AuthVerdict.FORBIDDEN
    return AuthVerdict.CHALLENGE


class Registrar:
    """REGISTER handling for one domain/realm over a :class:`~sipha.store.Store`."""

    __slots__ = ("domain", "policy", "qop", "store", "verifier")

    def __init__(
        self,
        store: Store,
        verifier: DigestVerifier,
        policy: RegistrarConfig,
        domain: str,
        *,
        auth_int: bool = False,
    ) -> None:
        self.store = store
        self.verifier = verifier
        self.policy = policy
        self.domain = domain
        # The qop offered to and required of REGISTER; None: the verifier's own.
        self.qop: tuple[str, ...] | None = ("auth-int",) if auth_int else None

    def credentials(
        self, request: Request, header: str = "authorization"
    ) -> DigestCredentials | None:
        """The Digest credentials for our realm in ``header``, or None (§22.4)."""
        for value in request.get_all(header):
            try:
                creds = parse_credentials(value)
            except SipParseError:
                continue
            if creds.realm == self.verifier.realm:
                return creds
        return None

    def judge(
        self,
        request: Request,
        creds: DigestCredentials | None,
        user: User | None,
        now: float,
    ) -> AuthVerdict:
        """Step 3-5 verdict on already-fetched credentials and user (pure)."""
        if creds is None:
            return AuthVerdict.CHALLENGE
        if user is None:
            return AuthVerdict.UNKNOWN_USER
        if creds.username != user.username:
            return AuthVerdict.FORBIDDEN  # §10.3 step 4: not authorized for this AOR
        algorithm = creds.algorithm
        # An unknown algorithm (a plain str) is refused by verify() whatever the HA1.
        ha1 = user.ha1_for(algorithm) if isinstance(algorithm, Algorithm) else ""
        result = self.verifier.authenticate(
            creds,
            method=request.method,
            ha1=ha1,
            now=now,
            body=request.body,
            request_uri=request.ruri,
            qop=self.qop if request.method == "REGISTER" else None,
        )
        return verdict_of(result)

    def challenge(
        self, request: Request, now: float, salt: bytes, *, stale: bool = False, proxy: bool = False
    ) -> Response:
        """401 with WWW-Authenticate (or 407 with Proxy-Authenticate when ``proxy``)."""
        qop = self.qop if request.method == "REGISTER" else None
        challenge = self.verifier.challenge(now, stale=stale, salt=salt, qop=qop)
        if proxy:
            return build_response(
                request, 407, to_tag=_tag(request), headers=[("Proxy-Authenticate", str(challenge))]
            )
        return build_response(
            request, 401, to_tag=_tag(request), headers=[("WWW-Authenticate", str(challenge))]
        )

    async def handle(
        self, request: Request, now: float, salt: bytes, received: str | None
    ) -> Response:
        """The response to a REGISTER; ``now`` is wall-clock (binding expiry times)."""
        try:
            aor = aor_of(request.to.uri, self.domain)
        except SipParseError as err:
            return build_response(request, 404 if err.status == 404 else 400, to_tag=_tag(request))
        creds = self.credentials(request)
        if creds is None:
            return self.challenge(request, now, salt)
        user = await self.store.get_user(aor)
        verdict = self.judge(request, creds, user, now)
        if verdict is AuthVerdict.CHALLENGE:
            return self.challenge(request, now, salt)
        if verdict is AuthVerdict.STALE:
            return self.challenge(request, now, salt, stale=True)
        if verdict is AuthVerdict.UNKNOWN_USER:
            return build_response(request, 404, to_tag=_tag(request))
        if verdict is AuthVerdict.FORBIDDEN:
            return build_response(request, 403, to_tag=_tag(request))
        if not await accept_once(self.store, self.verifier, creds, now):
            log.info("replayed REGISTER credentials for %s refused", aor)
            return self.challenge(request, now, salt)
        plan = plan_contacts(request, self.policy, received=received)
        if plan.error is not None:
            return plan.error
        call_id, cseq = request.call_id, request.cseq.seq
        if plan.query:
            return ok_response(request, await self.store.get_bindings(aor, now), now)
        if plan.wildcard:
            result = await self.store.remove_all(aor, call_id=call_id, cseq=cseq, now=now)
        else:
            result = await self.store.update_bindings(
                aor, changes=plan.changes, call_id=call_id, cseq=cseq, now=now
            )
        if not result.ok:
            # §10.3 step 7: an older or repeated CSeq for the same Call-ID aborts the request.
            return build_response(
                request, 500, "Server Internal Error (out of order CSeq)", to_tag=_tag(request)
            )
        return ok_response(request, result.bindings, now)
