"""RFC 4475 (SIP torture test messages), as byte strings with the verdict for each.

``VALID`` are §3.1.1's well-formed messages: every element must accept them, and every header
a node reads must read. ``INVALID`` are §3.1.2's: (name, bytes, the status a server answers,
whether that answer can be built at parse time) for those the parser rejects, the same shape
as ``malformed_corpus.CORPUS``; ``INVALID_LAZY`` are rejected when the damaged header is read
(the node then answers 400, as the RFC asks). Line breaks are CRLF as on the wire.
"""

from __future__ import annotations


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


_SDP = (
    "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.3\ns=-\nc=IN IP4 192.0.2.4\nt=0 0\n"
    "m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"
)

# §3.1.1.1 A Short Tortuous INVITE: folding everywhere (CSeq and Via included), LWS around
# every separator, compact and long forms mixed, escaped quotes, leading zeros.
WSINV = _crlf(
    "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n"
    "TO :\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n"
    'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\n  ;\n  tag = 98asjd8\n'
    "MaX-fOrWaRdS: 0068\n"
    "Call-ID: wsinv.ndaksdj@192.0.2.1\n"
    "Content-Length   : 150\n"
    "cseq: 0009\n  INVITE\n"
    "Via  : SIP  /   2.0\n /UDP\n    192.0.2.2;branch=390skdjuw\n"
    "s :\n"
    "NewFangledHeader:   newfangled value\n continued newfangled value\n"
    "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
    "Content-Type: application/sdp\n"
    "Route:\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
    "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n  branch  =   z9hG4bK9ikj8  ,\n"
    " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n z9hG4bK30239\n"
    'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\n      newvalue ;\n'
    "  secondparam ; q = 0.33\n"
    "\n" + _SDP
)

# §3.1.1.2 Wide Range of Valid Characters: token characters in the method, the branch, the
# tag; quoted-pairs of BEL, NUL and DEL in a quoted string; UTF-8 in values.
INTMETH = _crlf(
    "!interesting-Method0123456789_*+`.%indeed'~ "
    "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
    "(doesn't-it)@example.com SIP/2.0\n"
    "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n"
    'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" '
    "<sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n"
    "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>"
    ";fromParam''~+*_!.-%=\"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439\""
    ";tag=_token~1'+`*%!-.\n"
    "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n"
    "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n"
    "Max-Forwards: 255\n"
    "extensionHeader-!.%*+_`'~:\ufeff\u5927\u505c\u96fb\n"
    "Content-Length: 0\n\n"
)

_OPTIONS_TAIL = (
    "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw\n"
    "Max-Forwards: 70\n"
    "From: <sip:caller@example.org>;tag=323\n"
    "Call-ID: {call_id}\n"
    "CSeq: 1 OPTIONS\n"
    "l: 0\n\n"
)

VALID: dict[str, bytes] = {
    "wsinv": WSINV,
    "intmeth": INTMETH,
    # §3.1.1.3 Valid Use of the % Escaping Mechanism
    "esc01": _crlf(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\n"
        "To: sip:%75se%72@example.com\n"
        "From: <sip:I%20have%20spaces@example.net>;tag=938\n"
        "Max-Forwards: 87\n"
        "i: esc01.239409asdfakjkn23onasd0-3234\n"
        "CSeq: 234234 INVITE\n"
        "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\n"
        "C: application/sdp\n"
        "Contact:\n  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n"
        "Content-Length: 150\n\n" + _SDP
    ),
    # §3.1.1.4 Escaped Nulls in URIs
    "escnull": _crlf(
        "REGISTER sip:example.com SIP/2.0\n"
        "To: sip:null-%00-null@example.com\n"
        "From: sip:null-%00-null@example.com;tag=839923423\n"
        "Max-Forwards: 70\n"
        "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\n"
        "CSeq: 14398234 REGISTER\n"
        "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\n"
        "Contact: <sip:%00@host5.example.com>\n"
        "Contact: <sip:%00%00@host5.example.com>\n"
        "L:0\n\n"
    ),
    # §3.1.1.6 Message with No LWS between Display Name and <
    "lwsdisp": _crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: caller<sip:caller@example.com>;tag=323\n"
        "Max-Forwards: 70\n"
        "Call-ID: lwsdisp.1234abcd@funky.example.com\n"
        "CSeq: 60 OPTIONS\n"
        "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\n"
        "l: 0\n\n"
    ),
    # §3.1.1.9 Semicolon-Separated Parameters in URI User Part
    "semiuri": _crlf(
        "OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\n"
        "To: sip:j_user@example.com\n"
        + _OPTIONS_TAIL.format(call_id="semiuri.0ha0isndaksdj")
    ),
    # §3.1.1.10 Varied and Unknown Transport Types
    "transports": _crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n"
        "To: sip:user@example.com\n"
        "From: <sip:caller@example.com>;tag=323\n"
        "Max-Forwards: 70\n"
        "Call-ID:  transports.kijh4akdnaqjkwendsasfdj\n"
        "Accept: application/sdp\n"
        "CSeq: 60 OPTIONS\n"
        "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\n"
        "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\n"
        "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\n"
        "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\n"
        "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\n"
        "l: 0\n\n"
    ),
    # §3.1.1.12 Unusual Reason Phrase
    "unreason": _crlf(
        "SIP/2.0 200 = 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e "
        "\u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e "
        "\u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435\n"
        "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
        "Call-ID: unreason.1234ksdfak3j2erwedfsASdf\n"
        "CSeq: 35 INVITE\n"
        "From: sip:user@example.com;tag=11141343\n"
        "To: sip:user@example.edu;tag=2229\n"
        "Content-Length: 0\n\n"
    ),
    # §3.1.1.13 Empty Reason Phrase
    "noreason": _crlf(
        "SIP/2.0 100 \n"
        "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n"
        "Call-ID: noreason.asndj203insdf99223ndf\n"
        "CSeq: 35 INVITE\n"
        "From: <sip:user@example.com>;tag=39ansfi3\n"
        "To: <sip:user@example.edu>;tag=902jndnke3\n"
        "Content-Length: 0\n\n"
    ),
}

_INVITE_HEAD = (
    "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK{n}\n"
    "Max-Forwards: 70\n"
    "To: sip:j.user@example.com\n"
    "From: sip:caller@example.net;tag=134161461246\n"
    "Call-ID: {n}.0ha0isnda977644900765@192.0.2.15\n"
)

INVALID: list[tuple[str, bytes, int, bool]] = [
    # §3.1.2.2 Content Length Larger Than Message
    ("rfc4475-clerr", _crlf(
        "INVITE sip:user@example.com SIP/2.0\n" + _INVITE_HEAD.format(n="clerr")
        + "CSeq: 8 INVITE\nContent-Type: application/sdp\nContent-Length: 9999\n\n" + _SDP
    ), 400, True),
    # §3.1.2.3 Negative Content-Length
    ("rfc4475-ncl", _crlf(
        "INVITE sip:user@example.com SIP/2.0\n" + _INVITE_HEAD.format(n="ncl")
        + "CSeq: 8 INVITE\nContent-Type: application/sdp\nContent-Length: -999\n\n" + _SDP
    ), 400, True),
    # §3.1.2.4 Request Scalar Fields with Overlarge Values
    ("rfc4475-scalar02", _crlf(
        "REGISTER sip:example.com SIP/2.0\n" + _INVITE_HEAD.format(n="scalar02")
        + "CSeq: 36893488147419103232 REGISTER\nContact: <sip:user@host129.example.com>\n"
        "Expires: 10\nContent-Length: 0\n\n"
    ), 400, True),
    # §3.1.2.5 Response Scalar Fields with Overlarge Values
    ("rfc4475-scalarlg", _crlf(
        "SIP/2.0 503 Service Unavailable\n"
        "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129\n"
        "To: <sip:user@example.com>\nFrom: <sip:other@example.net>;tag=2easdjfejw\n"
        "CSeq: 9292394834772304023312 OPTIONS\n"
        "Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\n"
        "Retry-After: 949302838503028349304023988\nWarning: 1812 overture \"In Progress\"\n"
        "Content-Length: 0\n\n"
    ), 400, False),  # a response: never answered, dropped
    # §3.1.2.7 <> Enclosing Request-URI
    ("rfc4475-ltgtruri", _crlf(
        "INVITE <sip:user@example.com> SIP/2.0\n" + _INVITE_HEAD.format(n="ltgtruri")
        + "CSeq: 1 INVITE\nContent-Length: 0\n\n"
    ), 400, True),
    # §3.1.2.8 Malformed SIP Request-URI (embedded LWS)
    ("rfc4475-lwsruri", _crlf(
        "INVITE sip:user@example.com; lr SIP/2.0\n" + _INVITE_HEAD.format(n="lwsruri")
        + "CSeq: 1 INVITE\nContent-Length: 0\n\n"
    ), 400, False),
    # §3.1.2.9 Multiple SP Separating Request-Line Elements
    ("rfc4475-lwsstart", _crlf(
        "INVITE  sip:user@example.com  SIP/2.0\n" + _INVITE_HEAD.format(n="lwsstart")
        + "CSeq: 1 INVITE\nContent-Length: 0\n\n"
    ), 400, False),
    # §3.1.2.16 Unknown Protocol Version
    ("rfc4475-badvers", _crlf(
        "OPTIONS sip:t.watson@example.org SIP/7.0\n" + _INVITE_HEAD.format(n="badvers")
        + "CSeq: 1 OPTIONS\nl: 0\n\n"
    ), 505, True),
    # §3.1.2.17 Start Line and CSeq Method Mismatch
    ("rfc4475-mismatch01", _crlf(
        "OPTIONS sip:user@example.com SIP/2.0\n" + _INVITE_HEAD.format(n="mismatch01")
        + "CSeq: 1 INVITE\nl: 0\n\n"
    ), 400, True),
    # §3.1.2.18 Unknown Method with CSeq Method Mismatch
    ("rfc4475-mismatch02", _crlf(
        "NEWMETHOD sip:user@example.com SIP/2.0\n" + _INVITE_HEAD.format(n="mismatch02")
        + "CSeq: 3 INVITE\nContent-Type: application/sdp\nl: 0\n\n"
    ), 400, True),
    # §3.1.2.19 Overlarge Response Code
    ("rfc4475-bigcode", _crlf(
        "SIP/2.0 4294967301 better not break the receiver\n"
        "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n"
        "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\n"
        "CSeq: 353494 INVITE\nFrom: <sip:user@example.com>;tag=39ansfi3\n"
        "To: <sip:user@example.edu>;tag=902jndnke3\nContent-Length: 0\n\n"
    ), 400, False),
]

# Parsed; the damaged header raises SipParseError when read (attribute named).
INVALID_LAZY: list[tuple[str, bytes, str]] = [
    # §3.1.2.6 Unterminated Quoted String in Display Name
    ("rfc4475-quotbal", _crlf(
        "INVITE sip:user@example.com SIP/2.0\n"
        'To: "Mr. J. User <sip:j.user@example.com>\n'
        "From: sip:caller@example.net;tag=93334\nMax-Forwards: 10\n"
        "Call-ID: quotbal.aksdj\nContact: <sip:caller@host59.example.net>\n"
        "CSeq: 8 INVITE\nVia: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\n"
        "Content-Length: 0\n\n"
    ), "to"),
]
