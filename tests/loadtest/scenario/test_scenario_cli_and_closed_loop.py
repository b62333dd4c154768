"""``sipha load scenario`` end to end on loopback: a refused scenario exits 2 naming the line;
the built-in uac against the built-in uas with ``--users`` holds the concurrency at the number
of users and writes SIPp's statistics files."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipha.cli import main
from sipha.common.process import free_port


def test_a_refused_scenario_exits_2_naming_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<scenario>\n  <nop>\n    <action><sing/></action>\n  </nop>\n</scenario>\n")
    assert main(["load", "scenario", str(bad), "127.0.0.1:5060"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: <sing> unknown action <sing>" in err


def test_a_client_scenario_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "scenario", "--sn", "uac"]) == 2
    assert "a client scenario needs a TARGET" in capsys.readouterr().err


def test_closed_loop_uac_against_uas_processes(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    server = subprocess.Popen(
        [sys.executable, "-m", "sipha", "load", "scenario", "--sn", "uas", "--listen",
         f"127.0.0.1:{port}", "--timeout", "30s", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)
        stat, counts = tmp_path / "stat.csv", tmp_path / "counts.csv"
        msgs = tmp_path / "messages.log"
        rtt, screen = tmp_path / "rtt.csv", tmp_path / "screen.log"
        client = subprocess.run(
            [sys.executable, "-m", "sipha", "load", "scenario", "--sn", "uac",
             f"127.0.0.1:{port}", "--users", "4", "--pause", "200ms", "--duration", "1.5s",
             "--csv", str(stat), "--trace-counts", str(counts), "--trace-msg", str(msgs),
             "--cid-str", "call-%u@%s", "--trace-rtt", str(rtt), "--trace-screen", str(screen)],
            capture_output=True, text=True, timeout=60, check=False)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert client.returncode == 0, client.stdout + client.stderr
    assert "peak 4 " in client.stdout  # never more calls than users
    with stat.open(newline="") as f:
        last = list(csv.DictReader(f, delimiter=";"))[-1]
    created = int(last["OutgoingCall(C)"])
    # 4 users, each call about 200 ms long, for 1.5 s: about 30 calls; wide margins for CI.
    assert 8 <= created <= 40
    assert last["SuccessfulCall(C)"] == str(created)
    assert last["FailedCall(C)"] == "0"
    assert counts.read_text().splitlines()[0].startswith("CurrentTime;ElapsedTime;0_INVITE_Sent")
    log = msgs.read_text()
    assert "UDP message sent" in log
    assert "UDP message received" in log
    assert "Call-ID: call-1@127.0.0.1\n" in log
    rtts = rtt.read_text().splitlines()
    assert rtts[0] == "Date_ms;response_time_ms;rtd_no"
    assert len(rtts) == created + 1  # one rtd sample per call (the uac's 200 to INVITE)
    assert all(r.endswith(";1") for r in rtts[1:])
    assert "         200 <----------  E-RTD1 " + str(created) in screen.read_text()


def test_live_screen_draws_sipps_table() -> None:
    import io

    from rich.console import Console

    from sipha.loadtest.scenario.builtin import builtin_text
    from sipha.loadtest.scenario.live import LiveScreen
    from sipha.loadtest.scenario.loader import load_scenario_text
    from sipha.loadtest.scenario.stats import ScenarioStats, StepStats

    uac = load_scenario_text(builtin_text("uac"), file="uac")
    out = io.StringIO()
    live = LiveScreen(uac, pause_ms=0, target="127.0.0.1:5060",
                      console=Console(file=out, force_terminal=True, width=120))
    live.start()
    stats = ScenarioStats(steps=[StepStats(messages=7) for _ in uac.steps], created=7)
    live.update(stats, 1.5)
    live.stop()
    text = out.getvalue()
    assert "Total-calls 7" in text
    assert "      INVITE ---------->         7" in text
