"""Running real SIPp (Debian's sip-tester) from tests: started on loopback, killed by PID.

SIPp's own counters are the referee: ``run_uac`` returns the cumulative columns of its
``-trace_stat`` file (SuccessfulCall(C), FailedCall(C), ...) as SIPp wrote them.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sipha.common.process import free_port

SIPP = "sipp"


def _need_sipp() -> None:
    if shutil.which(SIPP) is None:
        raise AssertionError("sipp is not installed: Debian's sip-tester (make deps installs it)")
# Loop limits SIPp needs to keep up with a few hundred calls/s (its defaults starve the scheduler).
FAST = ["-max_recv_loops", "10000", "-max_sched_loops", "10000"]


@dataclass
class SippResult:
    exit_code: int
    stats: dict[str, str] = field(default_factory=dict)
    stdout: str = ""

    def count(self, column: str) -> int:
        value = self.stats.get(column, "0") or "0"
        return int(float(value))

    @property
    def successful(self) -> int:
        return self.count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self.count("FailedCall(C)")

    @property
    def created(self) -> int:
        return self.count("TotalCallCreated")


def _last_row(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def run_uac(
    target: str,
    *,
    rate: float,
    calls: int,
    scenario: Sequence[str] = ("-sn", "uac"),
    extra: Sequence[str] = (),
    local_ip: str = "127.0.0.1",
    timeout: float = 120.0,
    transport: str = "u1",
) -> SippResult:
    """Run a SIPp client to completion (bounded by ``calls`` and ``timeout``)."""
    _need_sipp()
    with tempfile.TemporaryDirectory(prefix="sipha-sipp-") as tmp:
        stat = Path(tmp) / "stat.csv"
        port = free_port(local_ip)
        cmd = [
            SIPP, *scenario, target, "-i", local_ip, "-p", str(port), "-t", transport,
            "-r", str(rate), "-m", str(calls), "-nostdin", "-trace_stat", "-stf", str(stat),
            "-fd", "1", *FAST, *extra,
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        text = out.decode(errors="replace")
        stats = _last_row(stat) if stat.exists() else {}
        return SippResult(proc.returncode, stats, text[-4000:])


@contextlib.contextmanager
def uas(
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    scenario: Sequence[str] = ("-sn", "uas"),
    extra: Sequence[str] = (),
    transport: str = "u1",
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A SIPp server in the background for the duration of the block; yields its port."""
    _need_sipp()
    port = port or free_port(host)
    with tempfile.TemporaryDirectory(prefix="sipha-sipp-uas-") as tmp:
        cmd = [SIPP, *scenario, "-i", host, "-p", str(port), "-t", transport, "-nostdin",
               *FAST, *extra]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        try:
            yield port, proc
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
