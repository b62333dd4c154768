"""The one error contract of the SIP core.

Any bytes handed to the parser, and any lazily parsed header value, either parse or raise
:class:`SipParseError`. Nothing else escapes (no ``ValueError`` from ``int()``, no
``IndexError`` from a ``split()``): the transport boundary catches this one type, answers 400
when it can and counts the drop otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PartialMessage:
    """What could be salvaged from a malformed message: enough to answer it with 400.

    Header values are raw strings (already unfolded); ``None`` when absent or unreadable.
    ``method`` is set for requests whose start line could be read.
    """

    method: str | None = None
    vias: tuple[str, ...] = ()
    from_: str | None = None
    to: str | None = None
    call_id: str | None = None
    cseq: str | None = None

    @property
    def answerable(self) -> bool:
        """True when a 400 can be built (RFC 3261 §8.2.6 needs Via, From, To, Call-ID, CSeq)."""
        return (
            self.method is not None
            and self.method != "ACK"
            and bool(self.vias)
            and self.from_ is not None
            and self.to is not None
            and self.call_id is not None
            and self.cseq is not None
        )


class SipParseError(Exception):
    """Malformed SIP input.

    ``reason`` is human readable and safe to put in a reason phrase or a Warning header;
    ``status`` is the response code a server should answer with (400, or 413/414/513 for
    oversized input); ``partial`` carries what was salvaged to build that response.
    """

    def __init__(
        self, reason: str, *, status: int = 400, partial: PartialMessage | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial

    def with_partial(self, partial: PartialMessage) -> SipParseError:
        """Return a copy of this error carrying ``partial`` (the parser adds it at the top)."""
        return SipParseError(self.reason, status=self.status, partial=partial)
