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

# -- the rest of §3.1 --------------------------------------------------------------------------
_SDP_1 = _SDP.replace("192.0.2.3", "192.0.2.1").replace("192.0.2.4", "192.0.2.1")
_LONG = "long" * 20
VALID.update({
    # §3.1.1.5 Use of % When It Is Not an Escape: an unknown method, an unknown header
    "esc02": _crlf(
        "RE%47IST%45R sip:registrar.example.com SIP/2.0\n"
        'To: "%Z%45" <sip:resource@example.com>\n'
        'From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23\n'
        "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\n"
        "Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234\n"
        "CSeq: 29344 RE%47IST%45R\n"
        "Max-Forwards: 70\n"
        "Contact: <sip:alias1@host1.example.com>\n"
        "C%6Fntact: <sip:alias2@host2.example.com>\n"
        "Contact: <sip:alias3@host3.example.com>\n"
        "l: 0\n\n"
    ),
    # §3.1.1.7 Long Values in Header Fields (34 Vias, compact and odd-case names)
    "longreq": _crlf(
        "INVITE sip:user@example.com SIP/2.0\n"
        'To: "I have a user name of ' + "extreme" * 10 + ' proportion"'
        "<sip:user@example.com:6000;unknownparam1=very" + _LONG + "value;"
        "longparam" + "name" * 25 + "=shortvalue;very" + "long" * 25 + "ParameterNameWithNoValue>\n"
        "F: sip:" + "amazinglylongcallername" * 5 + "@example.net;tag=12" + "982" * 50
        + "424;unknownheaderparam" + "name" * 20 + "=unknowheaderparam" + "value" * 15
        + ";unknownValueless" + "paramname" * 10 + "\n"
        "Call-ID: longreq.one" + "really" * 20 + "longcallid\n"
        "CSeq: 3882340 INVITE\n"
        "Unknown-" + "Long" * 20 + "-Name: unknown-" + "long" * 20 + "-value; unknown-"
        + "long" * 20 + "-parameter-name = unknown-" + "long" * 20 + "-parameter-value\n"
        "Via: SIP/2.0/TCP sip33.example.com\n"
        "v: SIP/2.0/TCP sip32.example.com\n"
        "V: SIP/2.0/TCP sip31.example.com\n"
        "Via: SIP/2.0/TCP sip30.example.com\n"
        "ViA: SIP/2.0/TCP sip29.example.com\n"
        "VIa: SIP/2.0/TCP sip28.example.com\n"
        "VIA: SIP/2.0/TCP sip27.example.com\n"
        "via: SIP/2.0/TCP sip26.example.com\n"
        "viA: SIP/2.0/TCP sip25.example.com\n"
        "vIa: SIP/2.0/TCP sip24.example.com\n"
        "vIA: SIP/2.0/TCP sip23.example.com\n"
        "V :  SIP/2.0/TCP sip22.example.com\n"
        "v :  SIP/2.0/TCP sip21.example.com\n"
        "V  : SIP/2.0/TCP sip20.example.com\n"
        "v  : SIP/2.0/TCP sip19.example.com\n"
        "Via : SIP/2.0/TCP sip18.example.com\n"
        "Via  : SIP/2.0/TCP sip17.example.com\n"
        + "".join(f"Via: SIP/2.0/TCP sip{n}.example.com\n" for n in range(16, 0, -1))
        + "Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very" + "long" * 50
        + "branchvalue\n"
        "Max-Forwards: 70\n"
        "Contact: <sip:" + "amazinglylongcallername" * 5 + "@host5.example.net>\n"
        "Content-Type: application/sdp\n"
        "l: 150\n\n" + _SDP_1
    ),
})

# §3.1.1.8 Extra Trailing Octets in a UDP Datagram: the REGISTER is the message, the INVITE
# after its Content-Length is discarded (RFC 3261 §18.3). Not in VALID: bytes(msg) is shorter.
DBLREQ = _crlf(
    "REGISTER sip:example.com SIP/2.0\n"
    "To: sip:j.user@example.com\n"
    "From: sip:j.user@example.com;tag=43251j3j324\n"
    "Max-Forwards: 8\n"
    "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n"
    "Contact: sip:j.user@host.example.com\n"
    "CSeq: 8 REGISTER\n"
    "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\n"
    "Content-Length: 0\n\n"
    "INVITE sip:joe@example.com SIP/2.0\n"
    "t: sip:joe@example.com\n"
    "From: sip:caller@example.net;tag=141334\n"
    "Max-Forwards: 8\n"
    "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\n"
    "CSeq: 8 INVITE\n"
    "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\n"
    "Content-Type: application/sdp\n"
    "Content-Length: 150\n\n"
    + _SDP_1.replace("192.0.2.1", "192.0.2.15").replace("m=video", "m =video")
)

# §3.1.1.11 Multipart MIME Message: a binary part (here a stand-in of every byte value, the
# RFC's is a CMS blob) inside a body the parser carries untouched, Content-Length in octets.
_MPART_BINARY = bytes(range(256)) * 2
_MPART_BODY = (
    b"--7a9cbec02ceef655\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n"
    b"\r\nHello\r\n--7a9cbec02ceef655\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n" + _MPART_BINARY
    + b"\r\n--7a9cbec02ceef655--\r\n"
)
VALID["mpart01"] = _crlf(
    "MESSAGE sip:kumiko@example.org SIP/2.0\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport\n"
    "Max-Forwards: 70\n"
    "Route: <sip:127.0.0.1:5080>\n"
    "Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813g"
    "vYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=\n"
    "Contact: <sip:fluffy@127.0.0.1:5070>\n"
    "To: <sip:kumiko@example.org>\n"
    "From: <sip:fluffy@example.com>;tag=2fb0dcc9\n"
    "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..\n"
    "CSeq: 1 MESSAGE\n"
    "Content-Transfer-Encoding: binary\n"
    "Content-Type: multipart/mixed;boundary=7a9cbec02ceef655\n"
    "Date: Sat, 15 Oct 2005 04:44:56 GMT\n"
    "User-Agent: SIPimp.org/0.2.5 (curses)\n"
    f"Content-Length: {len(_MPART_BODY)}\n\n"
) + _MPART_BODY

INVALID += [
    # §3.1.2.10 SP Characters at End of Request-Line: refused (dropped: the line is unread)
    ("rfc4475-trws", _crlf(
        "OPTIONS sip:remote-target@example.com SIP/2.0  \n"
        "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK299342093\n"
        "To: <sip:remote-target@example.com>\n"
        "From: <sip:local-resource@example.com>;tag=329429089\n"
        "Call-ID: trws.oicu34958239neffasdhr2345r\nAccept: application/sdp\n"
        "CSeq: 238923 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n"
    ), 400, False),
    # §3.1.2.11 Escaped Headers in SIP Request-URI: 400 (a proxy must never forward them)
    ("rfc4475-escruri", _crlf(
        "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\n"
        "To: sip:user@example.com\nFrom: sip:caller@example.net;tag=341518\nMax-Forwards: 7\n"
        "Contact: <sip:caller@host39923.example.net>\n"
        "Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\n"
        "CSeq: 149209342 INVITE\n"
        "Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw\n"
        "Content-Type: application/sdp\nContent-Length: 150\n\n" + _SDP_1
    ), 400, True),
]

INVALID_LAZY += [
    # §3.1.2.1 Extraneous Header Field Separators: the Via (and Contact) refuse to read
    ("rfc4475-badinv01", _crlf(
        "INVITE sip:user@example.com SIP/2.0\n"
        "To: sip:j.user@example.com\nFrom: sip:caller@example.net;tag=134161461246\n"
        "Max-Forwards: 7\nCall-ID: badinv01.0ha0isndaksdjasdf3234nas\nCSeq: 8 INVITE\n"
        "Via: SIP/2.0/UDP 192.0.2.15;;,;,,\n"
        'Contact: "Joe" <sip:joe@example.org>;;;;\n'
        "Content-Length: 152\nContent-Type: application/sdp\n\n"
        + _SDP_1.replace("192.0.2.1", "192.0.2.15")
    ), "via"),
    # §3.1.2.13 Failure to Enclose name-addr URI in <>: a bare Contact with ?headers
    ("rfc4475-regbadct", _crlf(
        "REGISTER sip:example.com SIP/2.0\n"
        "To: sip:user@example.com\nFrom: sip:user@example.com;tag=998332\nMax-Forwards: 70\n"
        "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1\nCSeq: 1 REGISTER\n"
        "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\n"
        "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\n"
        "l: 0\n\n"
    ), "contacts"),
    # §3.1.2.14 Spaces within addr-spec
    ("rfc4475-badaspec", _crlf(
        "OPTIONS sip:user@example.org SIP/2.0\n"
        "Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234\n"
        "Max-Forwards: 70\n"
        'From: "Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423\n'
        'To: "Watson, Thomas" < sip:t.watson@example.org >\n'
        "Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\n"
        "Accept: application/sdp\nCSeq: 3923239 OPTIONS\nl: 0\n\n"
    ), "to"),
    # §3.1.2.15 Non-token Characters in Display Name
    ("rfc4475-baddn", _crlf(
        "OPTIONS sip:t.watson@example.org SIP/2.0\n"
        "Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\n"
        "Max-Forwards:      70\n"
        "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\n"
        "To:      Watson, Thomas <sip:t.watson@example.org>\n"
        "Call-ID: baddn.31415@c.example.com\n"
        "Accept: application/sdp\nCSeq:    3923239 OPTIONS\nl: 0\n\n"
    ), "from_"),
]

# §3.1.2.12 Invalid Time Zone in Date Header Field: a node that does not use Date may ignore
# it (the RFC: reject only when the Date matters to the processing). Nothing here reads Date.
BADDATE = _crlf(
    "INVITE sip:user@example.com SIP/2.0\n"
    "To: sip:user@example.com\nFrom: sip:caller@example.net;tag=2234923\nMax-Forwards: 70\n"
    "Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234\nCSeq: 1392934 INVITE\n"
    "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\n"
    "Date: Fri, 01 Jan 2010 16:00:00 EST\n"
    "Contact: <sip:caller@host5.example.net>\n"
    "Content-Type: application/sdp\nContent-Length: 150\n\n"
    + _SDP_1.replace("192.0.2.1", "192.0.2.5")
)
