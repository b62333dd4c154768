"""Dialogs (RFC 3261 §12): the state two user agents share between INVITE and BYE.

Theory of operation
-------------------
A dialog is identified by Call-ID plus the two tags (§12); which tag is "local" depends on which
side we are. It is created from the request/response pair that establishes it:

* as UAC, from the INVITE we sent and a 18x carrying a To tag (early) or a 2xx (confirmed),
  :meth:`Dialog.from_uac_response` (§12.1.2);
* as UAS, from the INVITE we received and the To tag we chose, :meth:`Dialog.from_uas_request`
  (§12.1.1).

The route set is the Record-Route list, reversed for the UAC so that, for either side, the first
entry is the next hop. Requests inside the dialog are built by :meth:`Dialog.create_request`
(§12.2.1.1): the CSeq is the local sequence number plus one, the Request-URI is the remote
target and Route carries the route set -- unless the first hop is a strict router (no ``lr``),
in which case its URI becomes the Request-URI and the remote target is appended as the last
Route, so that the strict router can put it back.

Incoming in-dialog requests go through :meth:`Dialog.on_request` (§12.2.2): a CSeq lower than
(or equal to) the remote sequence number is out of order and must be answered 500; a target
refresh with a Contact moves the remote target. Responses to our requests go through
:meth:`Dialog.on_response` (§12.2.1.2, §13.2.2.4).

Nothing here does I/O or picks random values: the caller passes the Via (with its branch) and
the tags.

State machine (``state`` x input -> next state; every pair not listed keeps the state):

================  =========================================  ==============
state             input                                      next state
================  =========================================  ==============
EARLY             2xx to the INVITE                          CONFIRMED
EARLY             >= 300 to the INVITE                       TERMINATED
EARLY, CONFIRMED  481 or 408 to an in-dialog request          TERMINATED
EARLY, CONFIRMED  final response to our BYE                   TERMINATED
EARLY, CONFIRMED  BYE accepted by :meth:`on_request`          TERMINATED
any               :meth:`terminate`                           TERMINATED
================  =========================================  ==============
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Final

from .address import parse_name_addr
from .message import Request, Response, build_request
from .uri import SipUri

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .message import Message

__all__ = [
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogError",
    "DialogId",
    "DialogState",
    "dialog_id_of",
]

# RFC 3261 §12.2 (re-INVITE), RFC 3311 §5.1 (UPDATE), RFC 6665 §4.1.2.3/§4.2.1 (SUBSCRIBE,
# NOTIFY), RFC 3515 §2.4.1 (REFER, via RFC 6665).
TARGET_REFRESH_METHODS: Final = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})

# Methods that do not take a new CSeq number: ACK and CANCEL reuse the one of the request they
# belong to (RFC 3261 §13.2.2.4, §9.1).
_SAME_CSEQ: Final = frozenset({"ACK", "CANCEL"})

# Headers the ACK for a 2xx copies from its INVITE (RFC 3261 §13.2.2.4: credentials).
_ACK_COPIED: Final = ("authorization", "proxy-authorization")


class DialogError(Exception):
    """Misuse of the dialog API (wrong response kind, mismatched ACK, terminated dialog)."""


class DialogState(Enum):
    """RFC 3261 §12: a dialog is early until a 2xx arrives, then confirmed."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID, local tag, remote tag (RFC 3261 §12). A missing tag is ``""``."""

    call_id: str
    local_tag: str
    remote_tag: str


def dialog_id_of(message: Message, *, uac: bool) -> DialogId:
    """The dialog id of ``message`` as seen by the UAC (``uac=True``) or the UAS of its
    transaction (RFC 3261 §12: the UAC's local tag is the From tag, the UAS's the To tag).

    Raises SipParseError when Call-ID, From or To is missing or malformed.
    """
    from_tag = message.from_tag or ""
    to_tag = message.to_tag or ""
    if uac:
        return DialogId(message.call_id, from_tag, to_tag)
    return DialogId(message.call_id, to_tag, from_tag)


def _contact_uri(message: Message) -> str | None:
    contacts = message.contacts
    if contacts == "*" or not contacts:
        return None
    return str(contacts[0].uri)


def _is_sips(ruri: str) -> bool:
    return ruri[:5].lower() == "sips:"


class Dialog:
    """The state of one dialog (RFC 3261 §12.1).

    ``route_set`` holds Route values (name-addr strings, parameters included), next hop first.
    ``local_seq`` is 0 when no request has been sent yet by a UAS ("empty", §12.1.1); the first
    request then carries CSeq 1. ``remote_seq`` is ``None`` while empty.
    """

    __slots__ = (
        "id",
        "local_seq",
        "local_uri",
        "remote_seq",
        "remote_target",
        "remote_uri",
        "route_set",
        "secure",
        "state",
    )

    def __init__(
        self,
        id: DialogId,
        *,
        local_seq: int,
        remote_seq: int | None,
        local_uri: str,
        remote_uri: str,
        remote_target: str,
        route_set: list[str],
        secure: bool = False,
        state: DialogState = DialogState.CONFIRMED,
    ) -> None:
        self.id = id
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.remote_target = remote_target
        self.route_set = route_set
        self.secure = secure
        self.state = state

    def __repr__(self) -> str:
        return (
            f"<Dialog {self.state.name} {self.id.call_id!r} local={self.id.local_tag!r} "
            f"remote={self.id.remote_tag!r} seq={self.local_seq}/{self.remote_seq}>"
        )

    # -- creation -----------------------------------------------------------------------------
    @classmethod
    def from_uac_response(cls, request: Request, response: Response) -> Dialog:
        """The UAC side of the dialog created by ``response`` to ``request`` (RFC 3261 §12.1.2).

        A 101-199 with a To tag makes an early dialog, a 2xx a confirmed one (a 2xx without a
        To tag, from an RFC 2543 peer, gets an empty remote tag). Raises DialogError for any
        other response; SipParseError for malformed headers.
        """
        status = response.status
        to_tag = response.to_tag
        if 200 <= status < 300:
            state = DialogState.CONFIRMED
        elif 101 <= status < 200 and to_tag:
            state = DialogState.EARLY
        else:
            raise DialogError(f"a {status} response does not create a dialog")
        records = response.get_all("record-route")
        records.reverse()  # §12.1.2: the UAC's route set is the Record-Route list reversed
        return cls(
            DialogId(request.call_id, request.from_tag or "", to_tag or ""),
            local_seq=request.cseq.seq,
            remote_seq=None,
            local_uri=str(request.from_.uri),
            remote_uri=str(request.to.uri),
            remote_target=_contact_uri(response) or request.ruri,
            route_set=records,
            secure=_is_sips(request.ruri),
            state=state,
        )

    @classmethod
    def from_uas_request(
        cls,
        request: Request,
        local_tag: str,
        *,
        state: DialogState = DialogState.CONFIRMED,
        local_seq: int = 0,
    ) -> Dialog:
        """The UAS side of the dialog ``request`` creates, answered with To tag ``local_tag``
        (RFC 3261 §12.1.1). Pass ``state=EARLY`` when answering with a 1xx first.

        Raises SipParseError for malformed headers.
        """
        return cls(
            DialogId(request.call_id, local_tag, request.from_tag or ""),
            local_seq=local_seq,
            remote_seq=request.cseq.seq,
            local_uri=str(request.to.uri),
            remote_uri=str(request.from_.uri),
            remote_target=_contact_uri(request) or str(request.from_.uri),
            route_set=request.get_all("record-route"),  # §12.1.1: in order
            secure=_is_sips(request.ruri),
            state=state,
        )

    # -- state ----------------------------------------------------------------------------------
    def terminate(self) -> None:
        """Mark the dialog terminated (BYE answered, session timer, local policy)."""
        self.state = DialogState.TERMINATED

    def on_request(self, request: Request) -> bool:
        """Apply an incoming in-dialog request (RFC 3261 §12.2.2).

        Returns False when the request is out of order: its CSeq is not above the remote
        sequence number, and the UAS answers 500. Equal counts as out of order: a new request
        always takes a higher number (§12.2.1.1) and retransmissions are absorbed by the
        server transaction before they reach the dialog. ACK and CANCEL carry the number of
        the request they belong to and are always accepted without changing it.

        On acceptance, updates the remote sequence number, moves the remote target on a target
        refresh carrying a Contact, and terminates the dialog on BYE. The caller answers 481
        for requests that match no (live) dialog before calling this. Raises SipParseError for
        malformed headers.
        """
        method = request.method
        if method in _SAME_CSEQ:
            return True
        seq = request.cseq.seq
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        if method in TARGET_REFRESH_METHODS:
            target = _contact_uri(request)
            if target is not None:
                self.remote_target = target
        elif method == "BYE":
            self.state = DialogState.TERMINATED
        return True

    def on_response(self, response: Response) -> None:
        """Apply a response to a request we sent in (or to establish) this dialog.

        * 2xx to the INVITE of an early dialog: confirmed, route set recomputed from its
          Record-Route (RFC 3261 §13.2.2.4) and remote target from its Contact;
        * 2xx to a target refresh: remote target from its Contact (§12.2.1.2);
        * >= 300 to the INVITE of an early dialog: terminated (§12.3);
        * 481 or 408 to an in-dialog request: terminated (§12.2.1.2);
        * any final response to BYE: terminated (§15.1.1).

        Raises SipParseError for malformed headers.
        """
        status = response.status
        if status < 200:
            return
        method = response.method
        if self.state is DialogState.EARLY and method == "INVITE":
            if status >= 300:
                self.state = DialogState.TERMINATED
                return
            records = response.get_all("record-route")
            records.reverse()
            self.route_set = records
            self.state = DialogState.CONFIRMED
        if status in (408, 481) or method == "BYE":
            self.state = DialogState.TERMINATED
            return
        if status < 300 and method in TARGET_REFRESH_METHODS:
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target

    # -- building requests ----------------------------------------------------------------------
    def _routing(self) -> tuple[str, list[str]]:
        """(Request-URI, Route values) per RFC 3261 §12.2.1.1."""
        routes = self.route_set
        if not routes:
            return self.remote_target, []
        first = parse_name_addr(routes[0]).uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, list(routes)
        # Strict router: its URI becomes the Request-URI, minus what a Request-URI may not
        # carry (§19.1.1 table 1: the method parameter and headers).
        if isinstance(first, SipUri) and (first.headers or "method" in first.params):
            params = {k: v for k, v in first.params.items() if k != "method"}
            first = first.with_(params=params, headers={})
        return str(first), [*routes[1:], f"<{self.remote_target}>"]

    def _address_headers(self) -> list[tuple[str, str]]:
        dialog_id = self.id
        to = f"<{self.remote_uri}>"
        if dialog_id.remote_tag:
            to += f";tag={dialog_id.remote_tag}"
        return [
            ("From", f"<{self.local_uri}>;tag={dialog_id.local_tag}"),
            ("To", to),
            ("Call-ID", dialog_id.call_id),
        ]

    def _build(
        self,
        method: str,
        seq: int,
        *,
        via: str,
        max_forwards: int,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> Request:
        ruri, routes = self._routing()
        lines: list[tuple[str, str]] = [("Via", via), ("Max-Forwards", str(max_forwards))]
        lines.extend(("Route", route) for route in routes)
        lines.extend(self._address_headers())
        lines.append(("CSeq", f"{seq} {method}"))
        lines.extend(headers)
        if content_type is not None:
            lines.append(("Content-Type", content_type))
        return build_request(method, ruri, lines, body)

    def create_request(
        self,
        method: str,
        *,
        via: str,
        max_forwards: int = 70,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """Build an in-dialog request (RFC 3261 §12.2.1.1).

        ``via`` is the complete Via value, branch included. The local sequence number is
        incremented first, except for ACK and CANCEL, which reuse it. ``headers`` are appended
        after CSeq (Contact for target refreshes, Supported, ...). Raises DialogError on a
        terminated dialog; SipParseError when the first Route value is malformed.
        """
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"cannot send {method} in a terminated dialog")
        if method not in _SAME_CSEQ:
            self.local_seq += 1
        return self._build(
            method,
            self.local_seq,
            via=via,
            max_forwards=max_forwards,
            headers=headers,
            body=body,
            content_type=content_type,
        )

    def create_ack(
        self,
        invite: Request,
        response_2xx: Response,
        *,
        via: str,
        max_forwards: int = 70,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """Build the ACK for a 2xx to ``invite`` (RFC 3261 §13.2.2.4).

        The CSeq number is the INVITE's, the method ACK; Request-URI and Route follow the
        route set like any in-dialog request; credentials are copied from the INVITE. ``via``
        must carry a new branch (the ACK for a 2xx is its own transaction, §17.1.1.3). Apply
        the 2xx with :meth:`on_response` (or create the dialog from it) first.

        Raises DialogError when the response does not answer ``invite`` with a 2xx in this
        dialog.
        """
        if not 200 <= response_2xx.status < 300:
            raise DialogError("create_ack is for 2xx responses; non-2xx ACK is hop-by-hop")
        seq = invite.cseq.seq
        cseq = response_2xx.cseq
        if cseq.method != "INVITE" or cseq.seq != seq:
            raise DialogError("the response does not answer this INVITE")
        if (response_2xx.to_tag or "") != self.id.remote_tag:
            raise DialogError("the response belongs to another dialog")
        copied = [(name, value) for name in _ACK_COPIED for value in invite.get_all(name)]
        return self._build(
            "ACK",
            seq,
            via=via,
            max_forwards=max_forwards,
            headers=[*copied, *headers],
            body=body,
            content_type=content_type,
        )

    def create_bye(
        self,
        *,
        via: str,
        max_forwards: int = 70,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Request:
        """Build a BYE (RFC 3261 §15.1.1). The dialog stays as it is until the final response
        is applied with :meth:`on_response`."""
        return self.create_request("BYE", via=via, max_forwards=max_forwards, headers=headers)
