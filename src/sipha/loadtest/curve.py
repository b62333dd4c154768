"""CurveZMQ for the load controller and its agents: keys on disk, sockets, the gatekeeper.

Theory of operation
-------------------
The plan a controller hands out carries the users' digest password, and the agents' reports
become the run's results, so only known agents may talk to it (CurveZMQ, ZeroMQ RFC 26,
through pyzmq's ``zmq.auth``).  The controller's ROUTER is a CURVE *server* with a key pair;
every agent is a CURVE *client* with its own key pair and the controller's public key.  A ZAP
handler (:class:`Gatekeeper`, pyzmq's ``AsyncioAuthenticator`` with a callback) admits a connection
only if the client's public key is in the controller's allowed set: an unknown agent never
completes the handshake, so it can neither read a Plan nor send a frame.  Every socket also
carries ``ZMQ_MAXMSGSIZE``: libzmq drops a connection announcing a bigger frame before
allocating it.

Files (``sipha load keys DIR``, :func:`create_keys`), in pyzmq's certificate format::

    DIR/controller.key           the controller's public key    (copy to every agent host)
    DIR/controller.key_secret    the controller's key pair      (controller host only)
    DIR/agents/NAME.key          agent NAME's public key        (the controller's allowed set)
    DIR/agents/NAME.key_secret   agent NAME's key pair          (agent NAME's host only)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import zmq
import zmq.asyncio
import zmq.auth
from zmq.auth.asyncio import AsyncioAuthenticator

log = logging.getLogger(__name__)

__all__ = [
    "MAX_FRAME",
    "AgentKeys",
    "ControllerKeys",
    "Gatekeeper",
    "KeyFileError",
    "create_keys",
    "load_agent_keys",
    "load_controller_keys",
    "secure_client",
    "secure_server",
]

MAX_FRAME: Final = 1 << 20
"""Largest frame either side accepts (a Plan or a report with two full histograms is tens
of KB)."""

CONTROLLER: Final = "controller"
AGENTS: Final = "agents"
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_REFUSED_KEYS: Final = 16


class KeyFileError(ValueError):
    """Key files missing, unreadable or malformed; the message names the file."""


@dataclasses.dataclass(frozen=True, slots=True)
class ControllerKeys:
    """The controller's key pair (z85) and the public keys (z85) of the agents it admits."""

    public: bytes
    secret: bytes
    allowed: frozenset[bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class AgentKeys:
    """An agent's key pair (z85) and the public key (z85) of the controller it trusts."""

    public: bytes
    secret: bytes
    controller: bytes


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise KeyFileError(f"agent key name {name!r}: letters, digits, '.', '_' and '-' only")
    return name


def create_keys(directory: str | Path, agents: Sequence[str]) -> list[Path]:
    """Write the controller's key pair and one per agent name under ``directory`` (created
    0700; secret files 0600); returns the files written.  Raises ``OSError`` if the files
    cannot be written and :class:`KeyFileError` for a bad agent name."""
    names = [_check_name(a) for a in agents]
    root = Path(directory)
    (root / AGENTS).mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    written: list[Path] = []
    old = os.umask(0o077)
    try:
        for folder, name in [(root, CONTROLLER), *((root / AGENTS, n) for n in names)]:
            public, secret = zmq.auth.create_certificates(folder, name)
            written += [Path(public), Path(secret)]
    finally:
        os.umask(old)
    return written


def _load(path: Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public, secret_key = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read CurveZMQ key {path}: {exc}") from None
    if secret and secret_key is None:
        raise KeyFileError(f"{path} holds no secret key")
    return public, secret_key


def load_controller_keys(directory: str | Path) -> ControllerKeys:
    """The controller's keys from a :func:`create_keys` folder: its key pair and every
    ``agents/*.key``.  Raises :class:`KeyFileError` if they are missing or malformed."""
    root = Path(directory)
    public, secret = _load(root / f"{CONTROLLER}.key_secret", secret=True)
    assert secret is not None
    allowed = frozenset(
        _load(p, secret=False)[0] for p in sorted((root / AGENTS).glob("*.key"))
    )
    if not allowed:
        raise KeyFileError(f"no agent public keys in {root / AGENTS}")
    return ControllerKeys(public=public, secret=secret, allowed=allowed)


def load_agent_keys(directory: str | Path, name: str | None = None) -> AgentKeys:
    """Agent ``name``'s keys from a :func:`create_keys` folder (``name`` None: the only
    ``agents/*.key_secret`` there).  Raises :class:`KeyFileError` if they are missing,
    malformed or ``name`` is ambiguous."""
    root = Path(directory)
    if name is None:
        found = sorted((root / AGENTS).glob("*.key_secret"))
        if len(found) != 1:
            raise KeyFileError(f"{root / AGENTS} holds {len(found)} agent key pairs: name one")
        path = found[0]
    else:
        path = root / AGENTS / f"{_check_name(name)}.key_secret"
    public, secret = _load(path, secret=True)
    assert secret is not None
    controller, _ = _load(root / f"{CONTROLLER}.key", secret=False)
    return AgentKeys(public=public, secret=secret, controller=controller)


def secure_server(sock: zmq.asyncio.Socket, keys: ControllerKeys | None) -> None:
    """Bound frames on the controller's socket; with ``keys``, make it a CURVE server."""
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
    if keys is not None:
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)


def secure_client(sock: zmq.asyncio.Socket, keys: AgentKeys | None) -> None:
    """Bound frames on an agent's socket; with ``keys``, make it a CURVE client."""
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
    if keys is not None:
        sock.setsockopt(zmq.CURVE_SERVERKEY, keys.controller)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)


class Gatekeeper:
    """The ZAP handler of one context: admits CURVE clients whose public key is allowed,
    counts the others (``refused``, with the first few keys in ``refused_keys``)."""

    def __init__(self, ctx: zmq.asyncio.Context, allowed: frozenset[bytes]) -> None:
        self.allowed = allowed
        self.refused = 0
        self.refused_keys: list[str] = []
        self._auth = AsyncioAuthenticator(ctx)

    def callback(self, domain: str, key: bytes) -> bool:
        """pyzmq's credentials-provider hook: ``key`` is the client's z85 public key."""
        if key in self.allowed:
            return True
        self.refused += 1
        if len(self.refused_keys) < _MAX_REFUSED_KEYS:
            self.refused_keys.append(key.decode("ascii", "replace"))
        log.warning("refused a CurveZMQ client with an unknown key %r", key)
        return False

    def start(self) -> None:
        """Start answering ZAP requests (before the socket binds); needs a running loop."""
        self._auth.start()
        self._auth.configure_curve_callback("*", credentials_provider=self)

    def stop(self) -> None:
        self._auth.stop()
