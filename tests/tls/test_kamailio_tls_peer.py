"""Kamailio's tls module as a TLS peer of sipha, both ways:

* the load tester registers users at Kamailio (a registrar and proxy listening on TLS) and
  calls them through it, every leg over TLS (Kamailio checks the users' certificates when it
  opens TLS to their contacts);
* Kamailio relays calls for ``service`` to a sipha server over TLS, checking the server's
  certificate against the test CA; the server answers them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sipha.common.certs import CertFiles
from sipha.common.loop import run
from sipha.common.process import free_port, kamailio_modules_dir, wait_sip_options
from sipha.loadtest.api import run_local
from sipha.loadtest.protocol import UserRange
from tests.loadtest.helpers import make_plan
from tests.server.helpers import server

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=2
auto_aliases=no
enable_tls=yes
listen=udp:127.0.0.1:{port}
listen=tls:127.0.0.1:{tls_port}
mpath="{modules}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "tls.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("tls", "config", "{tls_cfg}")
modparam("usrloc", "db_mode", 0)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        # The load tester, like SIPp, sends in-dialog requests to its next hop without a
        # Route set: relay them to their Request-URI (the far end's TLS contact).
        if (!loose_route() && uri == myself) {{ sl_send_reply("404", "Not Here"); exit; }}
        t_relay();
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("OPTIONS") && $rU == $null) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("REGISTER")) {{ if (!save("location")) {{ sl_reply_error(); }} exit; }}
    record_route();
    if ($rU == "service") {{
        $du = "sip:127.0.0.1:{sipha_tls};transport=tls";
        t_relay();
        exit;
    }}
    if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    t_relay();
}}
"""

TLS_CFG = """[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {cert}
private_key = {key}
ca_list = {ca}

[client:default]
method = TLSv1.2+
verify_certificate = yes
require_certificate = yes
ca_list = {ca}
"""


@contextlib.contextmanager
def kamailio_tls(workdir: Path, certs: CertFiles, sipha_tls: int = 0) -> Iterator[int]:
    """Kamailio on free UDP and TLS ports; yields the TLS port. Killed by PID at the end."""
    modules = kamailio_modules_dir()
    if shutil.which("kamailio") is None or modules is None:
        raise AssertionError("kamailio is not installed (make deps installs it)")
    if not Path(modules, "tls.so").exists():
        raise AssertionError("no Kamailio tls module: install kamailio-tls-modules")
    port, tls_port = free_port(), free_port(kind=socket.SOCK_STREAM)
    tls_cfg = workdir / "tls.cfg"
    tls_cfg.write_text(TLS_CFG.format(cert=certs.server_cert, key=certs.server_key,
                                      ca=certs.ca))
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=port, tls_port=tls_port, modules=modules,
                                       tls_cfg=tls_cfg, sipha_tls=sipha_tls))
    log = workdir / "kamailio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["kamailio", "-f", str(cfg), "-m", "64", "-DD", "-E", "-Y", str(workdir)],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
        )
    try:
        try:
            wait_sip_options("127.0.0.1", port, timeout=10)
        except TimeoutError:
            raise AssertionError(f"kamailio did not start:\n{log.read_text()[-3000:]}") from None
        yield tls_port
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # the main process takes its children down
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_users_register_and_are_called_through_kamailio_over_tls(
    tmp_path: Path, certs: CertFiles
) -> None:
    with kamailio_tls(tmp_path, certs) as tls_port:
        users = UserRange(prefix="user", first=1, count=2, domain="127.0.0.1")
        plan = make_plan(tls_port, scenario="register+call", rate=20, max_calls=30,
                         duration=None, users=users, t1=0.1, transport="tls",
                         tls_ca=str(certs.ca), tls_cert=str(certs.server_cert),
                         tls_key=str(certs.server_key))
        totals = run(run_local(plan)).totals
    log = (tmp_path / "kamailio.log").read_text(errors="replace")
    assert totals.transactions_ok == 2, log[-3000:]
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (
        30, 30, 0), (dict(totals.failed_by_reason), log[-3000:])


def test_kamailio_relays_calls_to_a_sipha_server_over_tls(
    tmp_path: Path, certs: CertFiles
) -> None:
    sipha_tls = free_port(kind=socket.SOCK_STREAM)
    flags = ["--listen", f"tls:127.0.0.1:{sipha_tls}", "--tls-cert", str(certs.server_cert),
             "--tls-key", str(certs.server_key), "--tls-ca", str(certs.ca)]
    with server(tmp_path, extra=flags) as srv, \
            kamailio_tls(tmp_path, certs, sipha_tls) as tls_port:
        plan = make_plan(tls_port, rate=20, max_calls=20, duration=None, t1=0.1,
                         transport="tls", tls_ca=str(certs.ca))
        totals = run(run_local(plan)).totals
        status = srv.status()
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (20, 20, 0)
    assert status["calls"]["answered"] == 20  # type: ignore[index]
    assert status["transport"]["tcp_accepted"] >= 1  # type: ignore[index]
