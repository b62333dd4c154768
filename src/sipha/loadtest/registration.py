"""How long a registrar kept our binding: the expiry a UA refreshes against.

RFC 3261 §10.2.4: the 200 to a REGISTER lists every current binding of the address-of-record;
the UA finds the Contact it created (URI comparison by §19.1.4) and takes that Contact's
``expires`` parameter, else the response's Expires header.  A registrar may shorten what was
asked (§10.3 step 7: ``max_expires``), so refreshing at a fraction of the *requested* expiry
lets the binding lapse between refreshes.

The 200 goes through the SIP core's parser here, not :func:`sipha.loadtest.wire.scan`: scan
keeps only the first Contact, and a REGISTER answer is rare enough (one per refresh) that the
full parse costs nothing that matters.
"""

from __future__ import annotations

from sipha.sip import SipParseError, parse_message
from sipha.sip.address import parse_name_addr
from sipha.sip.uri import uri_equal

__all__ = ["granted_expiry"]


def granted_expiry(response: bytes, *, contact: str, requested: int) -> int:
    """The expiry in seconds the registrar granted to ``contact`` in the 2xx ``response``.

    Our binding's ``expires`` parameter, else the Expires header, else ``requested`` (a
    registrar that says nothing keeps what was asked).  A response that cannot be read, or a
    zero (a 2xx that removed a binding we asked to keep makes no sense to refresh at once),
    also gives ``requested``.  Never raises for bad bytes.
    """
    try:
        msg = parse_message(response)
        ours = parse_name_addr(contact).uri
        contacts = msg.contacts
        granted: int | None = None
        if contacts != "*":
            for c in contacts:
                if uri_equal(c.uri, ours):
                    granted = c.expires
                    break
        if granted is None:
            granted = msg.expires
    except SipParseError:
        return requested
    if not granted:
        return requested
    return granted
