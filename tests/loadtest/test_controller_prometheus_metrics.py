"""`--http HOST:PORT` on a controller: a distributed run's Prometheus metrics, scraped while it
runs (calls by outcome, setup latency from the merged histograms, agents by phase), and
POST /rate with the token (refused without)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from sipha.common.process import free_port
from tests import sipp

pytestmark = pytest.mark.timeout(90)


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _value(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert m, f"{name} not in\n{text}"
    return float(m.group(1))


def test_distributed_run_serves_prometheus_metrics() -> None:
    port = free_port(kind=socket.SOCK_STREAM)
    with sipp.uas() as (sip_port, _):
        proc = subprocess.Popen(
            [sys.executable, "-m", "sipha", "load", "call", f"127.0.0.1:{sip_port}",
             "--agents", "2", "--rate", "40", "--duration", "8s", "--hold", "0", "--quiet",
             "--http", f"127.0.0.1:{port}", "--token", "tok"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            seen_running = False
            deadline = time.monotonic() + 40
            text = None
            while proc.poll() is None and time.monotonic() < deadline:
                text = _scrape(port)
                if text and _value(text, 'sipha_load_agents{phase="running"}') == 2 \
                        and _value(text, "sipha_load_calls_attempted_total") > 0:
                    seen_running = True
                    break
                time.sleep(0.3)
            assert seen_running, text
            assert 'sipha_load_setup_latency_ms{quantile="0.99"}' in (text or "")
            assert _post_rate(port, 60, None) == 401
            assert _post_rate(port, -5, "tok") == 400
            assert _post_rate(port, 60, "tok") == 200
            _out, err = proc.communicate(timeout=40)
            assert proc.returncode == 0, err[-2000:]
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _post_rate(port: int, rate: float, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/rate", method="POST",
                                 data=json.dumps({"rate": rate}).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_http_without_a_controller_or_on_a_public_address_without_token_is_refused() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sipha", "load", "call", "127.0.0.1:9", "--rate", "1",
         "--duration", "1s", "--http", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--http is served by a controller" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "sipha", "load", "call", "127.0.0.1:9", "--rate", "1",
         "--duration", "1s", "--agents", "1", "--http", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "without a token" in out.stderr
