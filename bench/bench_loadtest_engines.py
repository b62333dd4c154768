"""The load tester's call logic alone: a UAC engine calling a UAS engine in memory.

No sockets, no SIPp, virtual time: the CPU seconds the agent's sans-IO engines spend per call
(INVITE, 180, 200, ACK, BYE, 200; both sides), so a change to the call tables can be compared
before and after without the noise of processes and the kernel. The wall-clock figures of the
real agent against SIPp are `bench_loadtest.py`'s.

Run: ``.venv/bin/python bench/bench_loadtest_engines.py [--calls 20000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from sipha.loadtest.options import AnswerMix, ScenarioOptions
from sipha.loadtest.protocol import HoldTime, Plan
from sipha.loadtest.uac import UacEngine
from sipha.loadtest.uas import UasEngine

_UAS_ADDR = ("127.0.0.1", 5080)
_UAC_ADDR = ("127.0.0.1", 5070)


def run(calls: int, rate: float) -> float:
    """CPU seconds per call of one run of ``calls`` calls placed at ``rate`` per second."""
    options = ScenarioOptions(mix=AnswerMix(answer=1.0), ring_time=0.0)
    plan = Plan(
        run_id="bench", scenario="call", target_host="127.0.0.1", target_port=5080,
        transport="udp", rate=rate, duration=None, start_at=0.0, seed=1, max_calls=calls,
        hold=HoldTime(mean=0.0), options=options,
    )
    uac = UacEngine(plan, options, local_host="127.0.0.1", local_port=5070, t0=0.0,
                    rng=random.Random(1))
    uas = UasEngine(options, transport="udp", local_host="127.0.0.1", local_port=5080, t0=0.0,
                    rng=random.Random(2))
    t = 0.0
    step = 0.001
    start = time.process_time()
    while not uac.finished:
        t += step
        uac.advance(t)
        uas.advance(t)
        # Deliver until quiet: each side's output is the other's input, at the same instant.
        while uac.out or uas.replies:
            out, uac.out = uac.out, []
            for data in out:
                uas.on_message(data, _UAC_ADDR, t)
            replies, uas.replies = uas.replies, []
            for data, _peer in replies:
                uac.on_message(data, _UAS_ADDR, t)
            uac.replies.clear()
    cpu = time.process_time() - start
    uac.flush_partial_second()
    ok = sum(s.calls_successful for _, s in uac.reports)
    if ok != calls:
        raise SystemExit(f"{calls - ok} of {calls} calls did not succeed")
    return cpu / calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    per_call = [run(args.calls, args.rate) for _ in range(args.repeats)]
    us = sorted(x * 1e6 for x in per_call)
    print(f"UAC + UAS engines, {args.calls} calls x {args.repeats}: "
          f"min {us[0]:.1f} us, median {statistics.median(us):.1f} us per call (both sides)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
