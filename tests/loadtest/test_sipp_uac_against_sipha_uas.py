"""A real SIPp ``uac`` against ``sipha load uas``: 2,000 calls, all successful per SIPp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sipha.common.process import free_port, terminate, wait_sip_options
from tests.sipp import run_uac


def test_sipp_uac_2000_calls_to_sipha_uas_all_succeed(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "uas.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sipha", "load", "uas", "--listen", f"127.0.0.1:{port}",
             "--duration", "60s", "--quiet", "--results", str(tmp_path / "uas")],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_sip_options("127.0.0.1", port, timeout=15)
        result = run_uac(f"127.0.0.1:{port}", rate=500, calls=2000, timeout=60)
    finally:
        terminate(proc)
    assert result.created == 2000, result.stdout
    assert (result.successful, result.failed) == (2000, 0), result.stdout
