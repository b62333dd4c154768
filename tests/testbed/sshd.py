"""A private sshd for tests: Debian's openssh-server on a free loopback port, with a host key
and a user key generated for the test, key login only, for the user running the tests.
Its whole process group (the listener and every per-connection child) is killed at the end."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sipha.common.process import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    key: Path  # the user's private key
    known_hosts: Path  # holds the server's host key for [127.0.0.1]:port
    log: Path


def _keygen(path: Path) -> None:
    subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   timeout=30)


@contextlib.contextmanager
def private_sshd(folder: Path) -> Iterator[Sshd]:
    """Start sshd, wait until it accepts connections, yield how to reach it; kill it after."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    _keygen(folder / "host_key")
    _keygen(folder / "user_key")
    (folder / "authorized_keys").write_bytes((folder / "user_key.pub").read_bytes())
    port = free_port(kind=socket.SOCK_STREAM)
    host_pub = (folder / "host_key.pub").read_text().split()
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "Subsystem sftp internal-sftp\nLogLevel VERBOSE\nMaxStartups 50\nMaxSessions 100\n"
    )
    # sshd refuses to start without its privilege separation directory (Debian makes it at
    # boot through systemd, which a container does not run).
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10.0
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"sshd exited {proc.returncode}: {log.read_text()[-1000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd did not listen: {log.read_text()[-1000:]}")
            time.sleep(0.05)
        yield Sshd(port, getpass.getuser(), folder / "user_key", known, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
