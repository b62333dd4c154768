"""An HTTP API reachable from other hosts needs a bearer token (or the operator's explicit
``--insecure-http``); the rule is checked before anything binds."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sipha.common.http import check_exposure
from sipha.common.process import free_port


@pytest.mark.parametrize("address", ["0.0.0.0:8060", "[::]:8060", "10.1.2.3:8060",
                                     "example.net:8060"])
def test_a_public_address_without_a_token_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="insecure-http"):
        check_exposure(address, None)
    check_exposure(address, "t0ken")
    check_exposure(address, None, insecure=True)


@pytest.mark.parametrize("address", ["127.0.0.1:8060", "127.3.4.5:0", "[::1]:8060",
                                     "localhost:8060"])
def test_loopback_needs_no_token(address: str) -> None:
    check_exposure(address, None)


@pytest.mark.parametrize("node", [
    ["dispatcher", "--listen", "udp:127.0.0.1:{sip}", "--server", "sip:127.0.0.1:5999"],
    ["server", "--listen", "udp:127.0.0.1:{sip}"],
])
def test_nodes_refuse_to_start_an_open_http_api_on_a_public_address(node: list[str]) -> None:
    argv = [a.format(sip=free_port()) for a in node]
    out = subprocess.run(
        [sys.executable, "-m", "sipha.cli", *argv, "--http", f"0.0.0.0:{free_port(kind=1)}"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "without a token" in out.stderr
    assert "--insecure-http" in out.stderr
