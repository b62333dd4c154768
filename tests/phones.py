"""Real softphones for the tests: headless baresip (Debian's ``baresip-core``) driven over its
``ctrl_tcp`` JSON interface.

Each `Phone` gets its own config directory, SIP port, control port and RTP port range, all on
127.0.0.1 (``net_interface 127.0.0.1``: baresip would otherwise put the host's first interface in
its Contact and SDP). Audio is a 440 Hz sine from ``ausine`` (which only runs at 48 kHz stereo,
hence ``ausrc_srate``/``ausrc_channels``: baresip resamples to the codec) played into a WAV file
by ``aufile``, so calls negotiate and exchange real RTP with no sound card.

Commands go out as netstrings (``LEN:{json},``) with a token; the reader thread files responses
by token and events in order. Every wait is bounded; the process is killed by PID on `stop`,
also when a test fails (the `phones` context manager).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sipha.common.process import free_port

BARESIP = "baresip"
MODULES = Path("/usr/lib/baresip/modules")

Event = dict[str, object]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def require_baresip() -> str:
    path = shutil.which(BARESIP)
    if path is None:
        raise AssertionError("baresip is missing: `make test` installs Debian's baresip-core")
    return path


_phone_numbers = itertools.count()


def _rtp_base() -> int:
    # A private RTP range per phone (and per test process): phones must not collide on ports.
    return 20000 + (os.getpid() % 100) * 200 + (next(_phone_numbers) % 20) * 10


@dataclass
class Account:
    """One baresip account line: ``<sip:user@domain>;param=...``."""

    user: str
    password: str | None = None
    domain: str = "sipha.local"
    outbound: str | None = None  # e.g. "sip:127.0.0.1:5060;transport=udp"
    regint: int = 60
    answermode: str = "auto"  # auto | manual
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    def line(self) -> str:
        params: dict[str, str] = {"regint": str(self.regint), "answermode": self.answermode}
        if self.password is not None:
            params["auth_pass"] = self.password
        if self.outbound is not None:
            params["outbound"] = f'"{self.outbound}"'
        params.update(self.extra)
        return f"<{self.aor}>;" + ";".join(f"{k}={v}" for k, v in params.items())


class Phone:
    """A running baresip; `command` and `wait_event` are its whole interface."""

    def __init__(self, name: str, account: Account, workdir: Path, *, host: str = "127.0.0.1",
                 transport: str = "udp", contacts: tuple[str, ...] = ()) -> None:
        self.name = name
        self.account = account
        self.dir = workdir / f"phone-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.sip_port = free_port()
        self.ctrl_port = free_port(kind=socket.SOCK_STREAM)
        self.transport = transport
        self.contacts = contacts
        self.log = self.dir / "baresip.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._events: queue.Queue[Event] = queue.Queue()
        self._responses: dict[str, Event] = {}
        self._cond = threading.Condition()
        self._token = 0
        self._reader: threading.Thread | None = None
        self.seen: list[Event] = []
        self._pending: list[Event] = []

    # -- process ------------------------------------------------------------------------------

    def _write_config(self) -> None:
        rtp = _rtp_base()
        listen = f"[{self.host}]:{self.sip_port}" if ":" in self.host else \
            f"{self.host}:{self.sip_port}"
        lines = [
            ("poll_method", "epoll"),
            ("sip_listen", listen),
            ("sip_trans_def", self.transport),
            ("net_interface", self.host),
            ("audio_player", f"aufile,{self.dir / 'received.wav'}"),
            ("audio_source", "ausine,440"),
            ("audio_alert", "aufile,/dev/null"),
            ("ausrc_srate", "48000"), ("ausrc_channels", "2"),
            ("auplay_srate", "48000"), ("auplay_channels", "2"),
            ("rtp_ports", f"{rtp}-{rtp + 9}"),
            ("module_path", str(MODULES)),
            ("module", "g711.so"), ("module", "ausine.so"), ("module", "aufile.so"),
            # The instance id (+sip.instance) an account with sipnat=outbound needs (RFC 5626).
            ("module_tmp", "uuid.so"),
            ("module_app", "account.so"), ("module_app", "contact.so"),
            ("module_app", "menu.so"), ("module_app", "ctrl_tcp.so"),
            ("ctrl_tcp_listen", f"127.0.0.1:{self.ctrl_port}"),
        ]
        (self.dir / "config").write_text("".join(f"{k}\t{v}\n" for k, v in lines))
        (self.dir / "accounts").write_text(self.account.line() + "\n")
        (self.dir / "contacts").write_text("".join(f"<{c}>\n" for c in self.contacts))

    def start(self, timeout: float = 10.0) -> Phone:
        exe = require_baresip()
        self._write_config()
        with self.log.open("wb") as out:
            # -s: the SIP trace goes to the log, which is what one reads when a test fails.
            self.proc = subprocess.Popen([exe, "-f", str(self.dir), "-s"], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip {self.name} exited:\n{self.tail()}")
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"baresip {self.name} control port never opened\n"
                                         f"{self.tail()}") from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read, name=f"baresip-{self.name}",
                                        daemon=True)
        self._reader.start()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- control channel ----------------------------------------------------------------------

    def _read(self) -> None:
        assert self._sock is not None
        buf = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                length = int(buf[:colon])
                if len(buf) < colon + 2 + length:
                    break
                body = buf[colon + 1: colon + 1 + length]
                buf = buf[colon + 2 + length:]
                msg: Event = json.loads(body)
                if msg.get("response"):
                    with self._cond:
                        self._responses[str(msg.get("token"))] = msg
                        self._cond.notify_all()
                elif msg.get("event"):
                    self._events.put(msg)

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> Event:
        """Run a command (``dial``, ``accept``, ``hangup``, ``message``, ``transfer``, ...)."""
        assert self._sock is not None, "phone not started"
        self._token += 1
        token = str(self._token)
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._sock.sendall(str(len(body)).encode() + b":" + body + b",")
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no answer to {command}\n{self.tail()}")
                self._cond.wait(left)
            return self._responses.pop(token)

    def wait_event(self, kind: str, timeout: float = 10.0,
                   where: Callable[[Event], bool] | None = None) -> Event:
        """The oldest event of this type not yet waited for. Events of other types stay
        pending, so the order in which baresip reports, say, RTP and the 200 does not matter."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self._pending):
                if event.get("type") == kind and (where is None or where(event)):
                    return self._pending.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [e.get("type") for e in self.seen]
                raise AssertionError(f"{self.name}: no {kind} within {timeout} s; saw {kinds}\n"
                                     f"{self.tail()}")
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(event)
            self._pending.append(event)

    def forget(self) -> None:
        """Drop the events not waited for: the next wait sees only what happens from now."""
        while True:
            try:
                self.seen.append(self._events.get_nowait())
            except queue.Empty:
                break
        self._pending.clear()

    def registered(self, timeout: float = 10.0) -> None:
        """Wait until the account is registered. Asked with ``reginfo``, not by waiting for
        REGISTER_OK: the first registration may finish before the control connection opens."""
        deadline = time.monotonic() + timeout
        while True:
            info = _ANSI.sub("", str(self.command("reginfo").get("data", "")))
            if re.search(r"\bOK\b", info):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: not registered: {info!r}\n{self.tail()}")
            time.sleep(0.1)


@contextlib.contextmanager
def phones(*made: Phone) -> Iterator[tuple[Phone, ...]]:
    """Start every phone; kill them all at the end, whatever happened."""
    try:
        for phone in made:
            phone.start()
        yield made
    finally:
        for phone in made:
            phone.stop()
