"""The load controller's HTTP API (``--http HOST:PORT``): Prometheus ``GET /metrics`` (calls
by outcome, failures by reason, setup latency from the exactly merged histograms,
retransmissions, the agents by phase, so a Grafana board can follow a long run) and
``POST /rate {"rate": N}`` (a new total rate, shared among the agents), which needs the
``--token`` (scrapes, as scrapers expect, do not).

Metrics are read on each scrape from the coordinator's merged statistics: nothing is counted
twice.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sipha.common.http import HttpApi, metrics_handler
from sipha.loadtest.coordinator import AgentState
from sipha.loadtest.phases import AgentPhase
from sipha.loadtest.stats import IntervalStats, RunStats, failures_by_reason

__all__ = ["LoadCollector", "serve_metrics"]


class LoadCollector:
    def __init__(self, run: Callable[[], RunStats],
                 agents: Callable[[], dict[str, AgentState]]) -> None:
        self._run = run
        self._agents = agents

    def collect(self) -> Iterator[Metric]:
        run = self._run()
        totals: IntervalStats = run.totals()
        for name, value, text in (
            ("attempted", totals.calls_attempted, "Calls attempted"),
            ("successful", totals.calls_successful, "Calls successful"),
            ("failed", totals.calls_failed, "Calls failed"),
        ):
            c = CounterMetricFamily(f"sipha_load_calls_{name}", text)
            c.add_metric([], float(value))
            yield c
        by_reason = CounterMetricFamily("sipha_load_calls_failed_by_reason",
                                        "Failed calls by reason", labels=["reason"])
        for reason, n in failures_by_reason(totals.failed_by_reason).items():
            by_reason.add_metric([reason], float(n))
        yield by_reason
        retrans = CounterMetricFamily("sipha_load_retransmissions", "Retransmissions sent")
        retrans.add_metric([], float(totals.retransmissions))
        yield retrans
        latency = GaugeMetricFamily("sipha_load_setup_latency_ms",
                                    "INVITE to 200, whole run, from the merged histograms",
                                    labels=["quantile"])
        p = run.percentiles("setup_200") if totals.calls_successful else {}
        for key, q in (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99")):
            latency.add_metric([q], float(p.get(key, math.nan)))
        yield latency
        agents = GaugeMetricFamily("sipha_load_agents", "Agents by phase", labels=["phase"])
        phases = [a.phase for a in self._agents().values()]
        for phase in AgentPhase:
            agents.add_metric([phase.value.lower()], float(phases.count(phase)))
        yield agents


MAX_RATE = 100_000.0


async def serve_metrics(address: str, collector: LoadCollector, *, token: str | None = None,
                        set_rate: Callable[[float], Awaitable[None]] | None = None) -> HttpApi:
    """Serve /metrics (and POST /rate when ``set_rate`` is given) on ``address`` (HOST:PORT);
    raises OSError when it cannot bind."""
    registry = CollectorRegistry()
    registry.register(collector)
    api = HttpApi(address, token=token)
    api.registry = registry
    api.get("/metrics", metrics_handler(registry))
    if set_rate is not None:
        change = set_rate

        async def post_rate(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.json()
            except ValueError:
                body = None
            rate = body.get("rate") if isinstance(body, dict) else None
            if isinstance(rate, bool) or not isinstance(rate, int | float) \
                    or not 0 < rate <= MAX_RATE:
                return web.json_response(
                    {"error": f"body: expected {{\"rate\": calls/s in (0, {MAX_RATE:g}]}}"},
                    status=400)
            try:
                await change(float(rate))
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=409)
            return web.json_response({"rate": float(rate)})

        api.post("/rate", post_rate)
    await api.start()
    return api
