"""baresip (Debian's baresip-core, headless) as a phone over TLS: it registers with digest
authentication and calls the answering service, then hangs up when it quits; every one of its
requests (REGISTER, INVITE, ACK, BYE) goes over TLS:

* straight to a sipha server that requires a client certificate (mutual TLS);
* through a dispatcher that terminates TLS on its own port in front of a server on UDP: the
  dispatcher's double Record-Route brings the phone's ACK and BYE back over TLS.

baresip 1.0 does not check the server's certificate itself (its ``sip_cafile`` only loads the
CA); the certificate checks are tested with sipha's own clients and Kamailio.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from sipha.common.certs import CertFiles
from sipha.common.process import free_port, terminate
from tests.dispatcher.cluster import Node, spawn_server, start_dispatcher, wait_server
from tests.server.helpers import add_user

CONFIG = """poll_method\tepoll
sip_listen\t127.0.0.1:0
sip_certificate\t{cert}
sip_cafile\t{ca}
audio_player\taubridge,nil
audio_source\taubridge,nil
audio_alert\taubridge,nil
module_path\t/usr/lib/baresip/modules
module\tg711.so
module\taubridge.so
module_tmp\tuuid.so
module_tmp\taccount.so
module_app\tmenu.so
"""


def _baresip(workdir: Path, certs: CertFiles, tls_port: int) -> str:
    """Register alice at 127.0.0.1:tls_port over TLS, call ``service``, quit after 3 s (the
    call ends with a BYE); return baresip's output with its SIP trace."""
    if shutil.which("baresip") is None:
        raise AssertionError("baresip is not installed (Debian baresip-core)")
    home = workdir / "baresip"
    home.mkdir()
    combined = home / "cert.pem"  # baresip wants the certificate and its key in one file
    combined.write_bytes(certs.client_cert.read_bytes() + certs.client_key.read_bytes())
    (home / "config").write_text(CONFIG.format(cert=combined, ca=certs.ca))
    (home / "accounts").write_text(
        f"<sip:alice@127.0.0.1:{tls_port};transport=tls>;auth_pass=secret;regint=600\n"
    )
    (home / "contacts").write_text("")
    done = subprocess.run(  # bounded; killed by subprocess.run on timeout
        ["baresip", "-s", "-f", str(home), "-e", "/dial service", "-t", "3"],
        capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL,
    )
    out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    (workdir / "baresip.log").write_text(out)
    return out


# A module's own log line, e.g. "aubridge: thread start: 8000 Hz, 1 channels, format=S16LE".
_CHATTER = re.compile(r"[a-z_]+: [^\n#]*?(?:thread start|Hz)[^\n]*\n")


def _assert_call_over_tls(out: str, tls_port: int, server: Node) -> None:
    assert "Call established" in out, out[-3000:]
    assert re.search(r"Call with sip:service@\S+ terminated", out), out[-3000:]
    for method in ("REGISTER", "INVITE", "ACK", "BYE"):
        # baresip's trace writes "#", then "TLS 127.0.0.1:PORT -> 127.0.0.1:PORT", then each
        # request it sends; its audio thread's log lines may land in between.
        # Log lines can even land inside the trace's address line (stdout is unbuffered
        # across threads): take them out before reading it.
        heads = [_CHATTER.sub("", out[out.rfind("#", 0, m.start()) : m.start()])
                 for m in re.finditer(rf"^{method} sip:", out, re.M)]
        assert heads, (method, out[-3000:])
        for head in heads:
            assert re.search(r"\bTLS 127\.0\.0\.1:\d+", head), (method, head)
            assert f"127.0.0.1:{tls_port}\n" in head, (method, head)
    status = server.get("/status")
    assert status["calls"]["answered"] == 1
    assert status["registrar"]["registrations"] == 1
    assert status["requests"]["BYE"] == 1
    assert status["active_calls"] == 0


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    add_user(f"sqlite:{tmp_path / 'cluster.db'}", "alice", "secret", domain="127.0.0.1")
    return tmp_path


def _tls_flags(certs: CertFiles) -> list[str]:
    return ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
            "--tls-ca", str(certs.ca)]


def test_baresip_registers_and_calls_a_server_over_mutual_tls(
    store_dir: Path, certs: CertFiles
) -> None:
    tls_port = free_port(kind=socket.SOCK_STREAM)
    server = spawn_server(store_dir, 0, [
        "--domain", "127.0.0.1", "--listen", f"tls:127.0.0.1:{tls_port}", *_tls_flags(certs),
        "--tls-require-client-cert",
    ])
    try:
        wait_server(server)
        out = _baresip(store_dir, certs, tls_port)
        _assert_call_over_tls(out, tls_port, server)
        assert server.get("/status")["transport"]["tcp_accepted"] == 1  # one connection
    finally:
        server.kill()


def test_baresip_calls_through_a_dispatcher_terminating_tls(
    store_dir: Path, certs: CertFiles
) -> None:
    server = spawn_server(store_dir, 0, ["--domain", "127.0.0.1"])
    dispatcher = None
    try:
        wait_server(server)
        tls_port = free_port(kind=socket.SOCK_STREAM)
        dispatcher = start_dispatcher(
            store_dir, [server.uri], "--listen", f"tls:127.0.0.1:{tls_port}", *_tls_flags(certs),
        )
        out = _baresip(store_dir, certs, tls_port)
        _assert_call_over_tls(out, tls_port, server)
        # The phone saw the dispatcher's two Record-Routes: UDP towards the server, TLS (on
        # the TLS listener's port) towards itself, both with its flow token.
        assert re.search(rf"<sip:ds1-[a-z2-7]+@127\.0\.0\.1:{tls_port};transport=tls;lr>", out)
    finally:
        if dispatcher is not None:
            terminate(dispatcher.proc, timeout=3)
        server.kill()
