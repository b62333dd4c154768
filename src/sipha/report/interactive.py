"""Interactive charts for report.html: the same data as the PNG figures, drawn in the browser
with uPlot so one can drag to zoom (a takeover down to the millisecond on the roles chart) and
hover for values. The PNGs stay beside them for documents.

The report must open offline from the file system, so uPlot's script and style are inlined
from the vendored copy (`sipha/report/live/static`) and the data is embedded as JSON; faults,
takeovers and control actions are drawn as vertical lines on every chart.
"""

from __future__ import annotations

import json
from collections import defaultdict
from importlib import resources
from typing import Any

from sipha.report.model import Results
from sipha.report.summary import calls_per_second

__all__ = ["interactive_section"]

_ROLE_LEVEL = {"active": 2.0, "standby": 1.0, "down": 0.0, "unknown": None}
_EVENT_KINDS = frozenset({"fault", "takeover", "control"})


def _static(name: str) -> str:
    return resources.files("sipha.report.live").joinpath("static", name).read_text("utf-8")


def _aligned(series: dict[str, dict[float, float | None]]) -> tuple[list[str], list[Any]]:
    """uPlot wants one x array and one y array per series, aligned: nulls where a series has
    no sample at that x."""
    names = sorted(series)
    xs = sorted({t for values in series.values() for t in values})
    return names, [xs, *[[series[n].get(t) for t in xs] for n in names]]


def _charts(results: Results) -> list[dict[str, object]]:
    charts: list[dict[str, object]] = []
    merged = calls_per_second(results.calls)
    if merged:
        xs = sorted(merged)
        charts.append({
            "id": "calls", "title": "Calls per second", "y": "calls / s",
            "names": ["attempted", "successful", "failed"],
            "data": [xs, [merged[x].attempted for x in xs], [merged[x].successful for x in xs],
                     [merged[x].failed for x in xs]],
        })
    active: dict[str, dict[float, float | None]] = defaultdict(dict)
    for s in results.servers:
        active[s.node][round(s.t, 3)] = float(s.active_calls) if s.up else None
    if active:
        names, data = _aligned(active)
        charts.append({"id": "active", "title": "Active calls per server", "y": "calls",
                       "names": names, "data": data})
    latency: dict[str, dict[float, float | None]] = defaultdict(dict)
    for c in results.calls:
        for key in ("p50", "p90", "p99"):
            if key in c.setup_ms:
                latency[f"{c.source} {key}"][round(c.t, 3)] = c.setup_ms[key]
    if latency:
        names, data = _aligned(latency)
        charts.append({"id": "latency", "title": "Setup latency (INVITE to 200)", "y": "ms",
                       "names": names, "data": data})
    roles: dict[str, dict[float, float | None]] = defaultdict(dict)
    for r in results.roles:
        roles[r.node][round(r.t, 3)] = _ROLE_LEVEL.get(r.role)
    if roles:
        names, data = _aligned(roles)
        charts.append({"id": "roles", "title": "Dispatcher roles (2 active, 1 standby, 0 down)",
                       "y": "role", "names": names, "data": data, "stepped": True})
    return charts


def interactive_section(results: Results) -> str:
    """The HTML of the interactive charts (empty when there is nothing to draw)."""
    charts = _charts(results)
    if not charts:
        return ""
    events = [
        {"t": e.t, "label": f"{e.kind} {e.node}".strip()
         + (f" {e.ms:.0f} ms" if e.ms is not None else "")}
        for e in results.events if e.kind in _EVENT_KINDS
    ]
    data = json.dumps({"charts": charts, "events": events}).replace("</", "<\\/")
    divs = "".join(f"<h3>{c['title']}</h3><div class='uplot-chart' id='chart-{c['id']}'></div>"
                   for c in charts)
    return (
        "<h2>Interactive charts</h2><p>Drag across a chart to zoom in (double-click to zoom "
        "out); hover for values. Dashed lines: faults and takeovers.</p>"
        f"<style>{_static('uPlot.min.css')}</style>{divs}"
        f"<script>{_static('uPlot.iife.min.js')}</script>"
        f"<script id='report-data' type='application/json'>{data}</script>"
        f"<script>{_SCRIPT}</script>"
    )


_SCRIPT = """
"use strict";
(() => {
  const report = JSON.parse(document.getElementById("report-data").textContent);
  const palette = ["#1565c0", "#2e7d32", "#c62828", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037"];
  function marks(u) {
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = "#ef6c00";
    ctx.fillStyle = "#ef6c00";
    ctx.setLineDash([4, 3]);
    report.events.forEach((ev, i) => {
      const x = u.valToPos(ev.t, "x", true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.fillText(ev.label, x + 3, u.bbox.top + 10 + (i % 4) * 12);  // near events stagger
    });
    ctx.restore();
  }
  for (const chart of report.charts) {
    const el = document.getElementById(`chart-${chart.id}`);
    const paths = chart.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
    const series = [{ label: "t (s)", value: (u, v) => v == null ? "-" : v.toFixed(3) },
      ...chart.names.map((name, i) => ({ label: name, stroke: palette[i % palette.length],
        width: 1.5, spanGaps: true, paths }))];
    const u = new uPlot({ width: Math.min(1050, window.innerWidth - 60), height: 260,
      scales: { x: { time: false } }, axes: [{ label: "s" }, { label: chart.y }],
      series, hooks: { draw: [marks] } }, chart.data, el);
    el.dataset.points = String(chart.data[0].length);
    el.uplot = u;
  }
})();
"""
