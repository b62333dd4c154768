"""A `sipha run PLAN --web` started for a test: its page address and token from the console,
the process group killed when the test ends, also when it fails."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sipha.common.process import free_port


@dataclass
class LiveRun:
    proc: subprocess.Popen[str]
    url: str
    token: str
    out: Path  # the results folder


def page_address(proc: subprocess.Popen[str], deadline: float) -> tuple[str, str]:
    """The live page's URL and token, from the run's first lines on stderr."""
    assert proc.stderr is not None
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(r"live page: (\S+)\s+\(controls token, shown once: (\S+)\)", line)
        if m:
            return m.group(1), m.group(2)
    raise AssertionError(f"sipha run printed no live page address: {''.join(seen)[-2000:]}")


@contextmanager
def live_run(tmp_path: Path, plan_text: str, *, start_timeout: float = 30) -> Iterator[LiveRun]:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text)
    out = tmp_path / "results"
    web = free_port(kind=socket.SOCK_STREAM)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sipha", "run", str(plan), "--out", str(out),
         "--web", f"127.0.0.1:{web}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url, token = page_address(proc, time.monotonic() + start_timeout)
        yield LiveRun(proc, url, token, out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
