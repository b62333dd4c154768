"""SIPp uac -> dispatcher (probing off) -> four SIPp uas, 2,000 calls: no call fails and every
ACK and BYE (sent by SIPp's uac to the service address, without Route) reaches the uas that
answered the INVITE -- each uas completes exactly the calls it was given and sees nothing
unexpected.

The algorithm is `rr`, which would send a request without affinity to the *next* server: only
the dispatcher's Call-ID affinity table can carry the ACK and the BYE to the one that answered
(with hash-callid the hash alone would get them there)."""

from __future__ import annotations

import contextlib
import csv
import time
from pathlib import Path

from tests.dispatcher.cluster import start_dispatcher
from tests.sipp import run_uac, uas

CALLS = 2000


def _stats(path: Path) -> dict[str, str]:
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False))


def test_every_bye_reaches_the_uas_that_answered_its_invite(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        ports = []
        for i in range(4):
            stat = tmp_path / f"uas{i}.csv"
            port, _ = stack.enter_context(
                uas(extra=["-trace_stat", "-stf", str(stat), "-fd", "1"])
            )
            ports.append((port, stat))
        d = start_dispatcher(
            tmp_path, [f"sip:127.0.0.1:{p}" for p, _ in ports], "--probe", "off",
            "--algorithm", "rr",
        )
        try:
            result = run_uac(f"127.0.0.1:{d.sip_port}", rate=300, calls=CALLS, timeout=90)
            assert (result.successful, result.failed) == (CALLS, 0), result.stdout
            api = {s["id"]: s for s in d.get("/servers", "t0ken")["servers"]}
            time.sleep(5.2)  # a uas counts a call successful 4 s after its BYE (timewait)
            total = 0
            for port, stat in ports:
                s = _stats(stat)
                given = api[f"sip:127.0.0.1:{port}"]["calls_total"]
                assert int(s["SuccessfulCall(C)"]) == given, (port, s)
                assert int(s["FailedCall(C)"]) == 0
                assert int(s["FailedUnexpectedMessage(C)"]) == 0
                assert int(s["IncomingCall(C)"]) == given
                total += given
            assert total == CALLS
            # rr spread the calls over all four, so affinity had to route most ACKs and BYEs
            # somewhere other than where rr would have sent them next.
            assert all(v["calls_total"] > CALLS // 8 for v in api.values()), api
            assert all(v["active_calls"] == 0 for v in api.values())
        finally:
            d.kill()
