"""REGISTER through a real server: SIPp with digest auth, and the RFC 3261 §10.3 rules."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import SCENARIOS, SipClient, add_user, server
from tests.sipp import run_uac


def _sipp_register(target: str, user: str, password: str, contact_port: int) -> tuple[int, int]:
    result = run_uac(
        target,
        rate=10,
        calls=1,
        scenario=("-sf", str(SCENARIOS / "register_auth.xml")),
        extra=("-s", user, "-au", user, "-ap", password,
               "-set", "cip", "127.0.0.1", "-set", "cport", str(contact_port)),
        timeout=20,
    )
    return result.successful, result.failed


def test_sipp_register_with_digest_succeeds_and_wrong_password_is_refused(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'users.db'}"
    add_user(store, "alice", "secret")
    with server(tmp_path, store=store) as srv:
        assert _sipp_register(srv.target, "alice", "secret", 5999) == (1, 0)
        assert _sipp_register(srv.target, "alice", "wrong", 5999) == (0, 1)
        status = srv.status()
        assert status["registrar"] == {  # type: ignore[comparison-overlap]
            "registrations": 1, "unregistrations": 0, "auth_failures": 1,
        }
        # The other 403: SIPp ends its failed scenario with a BYE in no dialog of ours, a relay
        # that nobody authorised.
        assert status["security"] == {"relay_forbidden": 1}, status
        assert status["responses"]["403"] == 2  # type: ignore[index]
        # The stored data holds HA1 hashes, never the password.
        assert b"secret" not in (tmp_path / "users.db").read_bytes()


def test_registrar_rules(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'users.db'}"
    add_user(store, "bob", "pw")
    config = "[registrar]\nmin_expires = 60\nmax_expires = 600\ndefault_expires = 300\n"
    with server(tmp_path, store=store, config=config) as srv, SipClient(srv.port) as ua:
        # No credentials: 401 with a digest challenge for our realm.
        ua.request("REGISTER", f"sip:127.0.0.1:{srv.port}", to="<sip:bob@127.0.0.1>",
                   from_user="bob", headers=["Contact: <sip:bob@127.0.0.1:7000>"])
        challenge = ua.recv_final()
        assert challenge.status == 401
        assert 'realm="sipha.local"' in (challenge.get("www-authenticate") or "")

        # Too brief: 423 with Min-Expires (§10.3 step 7).
        r = ua.register("bob", "pw", contact="<sip:bob@127.0.0.1:7000>", expires=10)
        assert r.status == 423
        assert r.get("min-expires") == "60"

        # Two contacts; the longer expiry is clamped to max_expires; 200 lists both.
        ok = ua.register("bob", "pw", contact="<sip:bob@127.0.0.1:7000>;expires=100",
                         expires=3600, call_id="reg-bob", cseq=10)
        assert ok.status == 200
        ok = ua.register("bob", "pw", contact="<sip:bob@127.0.0.1:7001>", expires=3600,
                         call_id="reg-bob", cseq=20)
        contacts = sorted(ok.get_all("contact"))
        assert len(contacts) == 2
        assert contacts[0].startswith("<sip:bob@127.0.0.1:7000>;expires=")
        assert 95 <= int(contacts[0].rsplit("=", 1)[1]) <= 100
        assert contacts[1] == "<sip:bob@127.0.0.1:7001>;expires=600"

        # An existing binding refreshed with an older CSeq on its Call-ID: 500 (§10.3 step 7).
        stale = ua.register("bob", "pw", contact="<sip:bob@127.0.0.1:7001>", call_id="reg-bob",
                            cseq=5)
        assert stale.status == 500

        # Contact: * with Expires: 0 removes every binding; without Expires: 0 it is a 400.
        bad = ua.register("bob", "pw", contact="*", expires=300, call_id="reg-bob", cseq=30)
        assert bad.status == 400
        gone = ua.register("bob", "pw", contact="*", expires=0, call_id="reg-bob", cseq=40)
        assert gone.status == 200
        assert gone.get_all("contact") == []

        # Unknown user: 404; another user's credentials for this AOR: 403.
        assert ua.register("nobody", "pw").status == 404
        add_user(store, "carol", "pw2")
        assert ua.register("carol", "bad").status == 403
