"""A tiny authoritative DNS server for tests (dnspython), on a loopback UDP port in a thread:
it answers from a zone given as (name, type) -> records, NXDOMAIN for every other name, and
counts the queries. ``silent=True`` makes one that never answers (a dead DNS server)."""

from __future__ import annotations

import socket
import threading
from collections import Counter

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

Zone = dict[tuple[str, str], list[str]]


class DnsServer:
    def __init__(self, zone: Zone | None = None, *, silent: bool = False, ttl: int = 60) -> None:
        self.zone = {
            (name.lower().rstrip("."), rdtype): v for (name, rdtype), v in (zone or {}).items()
        }
        self.silent = silent
        self.ttl = ttl
        self.queries: Counter[tuple[str, str]] = Counter()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            question = query.question[0]
            name = question.name.to_text().lower().rstrip(".")
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries[(name, rdtype)] += 1
            if self.silent:
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            records = self.zone.get((name, rdtype))
            if records:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, records)
                )
            elif not any(n == name for n, _ in self.zone):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
