"""REGISTER with digest auth succeeds against a sipha server and against Kamailio 5.6 with a
password check; a wrong password counts as failed with the registrar's status code."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sipha.common.loop import run
from sipha.common.process import free_port, kamailio_modules_dir, wait_sip_options
from sipha.loadtest.api import run_local
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.stats import IntervalStats
from tests.loadtest.helpers import make_plan
from tests.server.helpers import add_user, server

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
mpath="{modules}/"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "pv.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
request_route {{
    if (is_method("REGISTER")) {{
        # Every user's password is "{password}" (flag 0: a plain password, not HA1).
        if (!pv_www_authenticate("$td", "{password}", "0")) {{
            www_challenge("$td", "1");
            exit;
        }}
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    sl_send_reply("404", "Not Found");
}}
"""


# Debian puts the modules under the multiarch triplet (x86_64-linux-gnu, aarch64-linux-gnu...);
# other builds use lib/ or lib64/.
def kamailio_modules() -> str:
    """Kamailio's modules directory, wherever this machine's package put it."""
    path = kamailio_modules_dir()
    if path is None:
        raise AssertionError("no Kamailio modules directory: install kamailio (make deps does)")
    return path


@contextlib.contextmanager
def kamailio(workdir: Path, password: str) -> Iterator[int]:
    if shutil.which("kamailio") is None:
        raise AssertionError("kamailio is not installed (make deps installs it)")
    port = free_port()
    cfg = workdir / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=port, password=password, modules=kamailio_modules()))
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
            raise AssertionError(f"kamailio did not start:\n{log.read_text()[-2000:]}") from None
        yield port
    finally:
        # The main process takes its children down on SIGTERM.
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def register(port: int, password: str, *, domain: str = "") -> IntervalStats:
    users = UserRange(prefix="user", first=1, count=3, domain=domain or "127.0.0.1",
                      password=password)
    plan = make_plan(port, scenario="register", rate=20, max_calls=3, duration=None,
                     users=users, t1=0.1)
    return run(run_local(plan)).totals


def test_register_against_kamailio_with_a_password_check(tmp_path: Path) -> None:
    with kamailio(tmp_path, "s3cret") as port:
        good = register(port, "s3cret")
        bad = register(port, "wrong")
    assert (good.calls_successful, good.calls_failed, good.transactions_ok) == (3, 0, 3)
    assert bad.calls_successful == 0
    assert bad.failed_by_reason == {"401": 3}
    assert bad.transactions_failed == 3


def test_register_against_a_sipha_server(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'users.db'}"
    for n in (1, 2, 3):
        add_user(store, f"user{n}", "pw")
    with server(tmp_path, store=store) as srv:
        good = register(srv.port, "pw")
        bad = register(srv.port, "nope")
    assert (good.calls_successful, good.calls_failed) == (3, 0)
    # The sipha registrar refuses a wrong password with 403 (no new challenge).
    assert bad.calls_successful == 0
    assert bad.failed_by_reason == {"403": 3}
