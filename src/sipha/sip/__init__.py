"""sipha.sip: the sans-IO SIP core (RFC 3261).

Bytes and events in, messages and actions out; no sockets, no asyncio, no clock. Every node of
sipha (server, dispatcher, load tester) parses and builds its messages with this package.
"""

from .errors import PartialMessage, SipParseError
from .message import Message, Request, Response, build_request, build_response
from .parser import DEFAULT_LIMITS, Limits, StreamParser, parse_message

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "Message",
    "PartialMessage",
    "Request",
    "Response",
    "SipParseError",
    "StreamParser",
    "build_request",
    "build_response",
    "parse_message",
]
