"""Loopback addresses of a run: one 127.A.B.0/24 block per run, one address per node.

Linux routes all of 127.0.0.0/8 to ``lo``, so every node can have its own address with the
same well-known ports (SIP 5060, HTTP 8080), as the paper's machines had their own IPs.  The
block is picked at random (``127.0.0.0/16`` left alone: that is where everything else binds)
and checked free, so two runs on one host, or a run and the unit tests, never clash.

Host numbers inside the block::

    .10        the service address (the pair's virtual IP)
    .11 .12    dispatchers d1, d2 (own address: HTTP API, heartbeats)
    .21 ...    servers s1, s2, ...
    .5         redis
    .99        the load controller
    .101 ...   testers
"""

from __future__ import annotations

import random
import socket
from dataclasses import dataclass
from typing import Final

__all__ = ["HTTP_PORT", "NETNS_BLOCK", "REDIS_PORT", "SIP_PORT", "AddressBlock", "allocate_block"]

SIP_PORT: Final = 5060
HTTP_PORT: Final = 8080
HA_PORT: Final = 5999
REDIS_PORT: Final = 6379
CONTROLLER_PORT: Final = 5557


@dataclass(frozen=True, slots=True)
class AddressBlock:
    """{first}.{a}.{b}.0/24 for one run: 127.A.B.0/24 on loopback; in netns mode
    10.213.0.0/24, which exists only inside the run's namespaces (see :mod:`.netns`)."""

    a: int
    b: int
    first: int = 127

    def host(self, n: int) -> str:
        if not 1 <= n <= 254:
            raise ValueError(f"host number {n} outside 1..254")
        return f"{self.first}.{self.a}.{self.b}.{n}"

    @property
    def service(self) -> str:
        return self.host(10)

    def dispatcher(self, i: int) -> str:
        return self.host(10 + i)

    def server(self, i: int) -> str:
        return self.host(20 + i)

    @property
    def redis(self) -> str:
        return self.host(5)

    @property
    def controller(self) -> str:
        return self.host(99)

    def tester(self, i: int) -> str:
        return self.host(100 + i)


NETNS_BLOCK: Final = AddressBlock(213, 0, first=10)


def _free(block: AddressBlock) -> bool:
    # Something bound on the service address or a server address means another run lives here.
    for host in (block.service, block.server(1), block.dispatcher(1)):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind((host, SIP_PORT))
                except OSError:
                    return False
    return True


def allocate_block(rng: random.Random | None = None, *, tries: int = 50) -> AddressBlock:
    """A random free block; raises RuntimeError if none of ``tries`` candidates is free."""
    rng = rng or random.Random()
    for _ in range(tries):
        block = AddressBlock(rng.randint(1, 254), rng.randint(0, 254))
        if _free(block):
            return block
    raise RuntimeError("no free 127.A.B.0/24 loopback block found")
