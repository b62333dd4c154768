"""SIPp uac -> dispatcher -> four sipha servers answering `service`: every call succeeds and
the scheduler's shares hold (rr exact to one call, wlc by weight)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.dispatcher.cluster import cluster
from tests.sipp import run_uac


def _answered(c: object) -> list[int]:
    from tests.dispatcher.cluster import Cluster

    assert isinstance(c, Cluster)
    return [int(s.get("/status")["calls"]["answered"]) for s in c.servers]


def test_rr_2000_calls_none_failed_counts_differ_by_at_most_one(tmp_path: Path) -> None:
    with cluster(tmp_path, [1, 1, 1, 1], "--algorithm", "rr", "--probe", "on") as c:
        result = run_uac(c.target, rate=400, calls=2000, timeout=60)
        assert (result.successful, result.failed) == (2000, 0), result.stdout
        counts = _answered(c)
        assert sum(counts) == 2000
        assert max(counts) - min(counts) <= 1, counts
        api = c.api_servers()
        assert sorted(s["calls_total"] for s in api.values()) == sorted(counts)
        assert all(s["state"] == "active" for s in api.values())
        assert all(s["probe_latency_ms"] is not None for s in api.values())
        time.sleep(0.2)
        assert all(s["active_calls"] == 0 for s in c.api_servers().values())


def test_wlc_weights_1_1_2_2_shares_within_5_percent(tmp_path: Path) -> None:
    with cluster(tmp_path, [1, 1, 2, 2], "--algorithm", "wlc", "--probe", "on") as c:
        # A hold time keeps calls open, so "least connections" has connections to weigh.
        result = run_uac(c.target, rate=400, calls=2000, timeout=60, extra=["-d", "1000"])
        assert (result.successful, result.failed) == (2000, 0), result.stdout
        counts = _answered(c)
        assert sum(counts) == 2000
        for got, share in zip(counts, [1 / 6, 1 / 6, 1 / 3, 1 / 3], strict=True):
            assert abs(got / 2000 - share) <= 0.05 * share, counts
