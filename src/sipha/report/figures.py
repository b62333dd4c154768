"""The report's figures, drawn with matplotlib's Agg backend into PNG bytes.

Each ``fig_*`` function takes loaded results and returns PNG bytes (or None when the run has no
data for it), so the HTML report can embed them and the CLI can write them beside it.  Fault
times are drawn as dashed vertical lines on every time axis; when the plan compressed the
paper's time (``time_scale`` > 1) a top axis shows the paper's minutes.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: figures are files (must precede pyplot)

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sipha.report.model import Results
from sipha.report.summary import calls_per_second

__all__ = [
    "FIGURES",
    "fig_active_calls",
    "fig_calls_per_second",
    "fig_compare_active_calls",
    "fig_compare_failed",
    "fig_cpu",
    "fig_latency",
    "fig_roles",
]

_SIZE = (9.0, 3.6)
_ROLE_LEVEL = {"active": 2, "standby": 1, "down": 0, "unknown": 0}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _decorate(ax: Axes, results: Results, *, ylabel: str, title: str) -> None:
    for start, end in results.fault_spans():
        ax.axvspan(start, end, color="crimson", alpha=0.08, linewidth=0)
    for t, label in results.fault_times():
        ax.axvline(t, color="crimson", linestyle="--", linewidth=1)
        ax.annotate(
            label, (t, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
            color="crimson", ha="right", va="top",
        )
    ax.set_xlabel("run time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10, pad=24 if results.meta.time_scale > 1 else 6)
    ax.grid(True, alpha=0.3)
    scale = results.meta.time_scale
    if scale > 1:
        def to_paper(x: Any) -> Any:
            return x * scale / 60.0

        def to_run(m: Any) -> Any:
            return m * 60.0 / scale

        top = ax.secondary_xaxis("top", functions=(to_paper, to_run))
        top.set_xlabel(f"paper time (min), time scale x{scale:g}", fontsize=8)


def _title(results: Results, what: str) -> str:
    return f"{results.meta.name} [{results.meta.profile}]: {what}"


def fig_active_calls(results: Results) -> bytes | None:
    """Active calls per server over time (the paper's Figures 6 and 7)."""
    if not results.servers:
        return None
    series: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for s in results.servers:
        series[s.node].append((s.t, s.active_calls if s.up else 0))
    fig, ax = plt.subplots(figsize=_SIZE)
    for node in sorted(series):
        pts = sorted(series[node])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=node, linewidth=1.2)
    ax.legend(loc="upper left", fontsize=8, ncol=max(1, len(series) // 4))
    _decorate(ax, results, ylabel="active calls", title=_title(results, "active calls per server"))
    return _png(fig)


def fig_calls_per_second(results: Results) -> bytes | None:
    """Attempted, successful and failed calls per second (the paper's Figures 8 and 9)."""
    merged = calls_per_second(results.calls)
    if not merged:
        return None
    xs = sorted(merged)
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(xs, [merged[x].attempted for x in xs], label="attempted", color="tab:blue")
    ax.plot(xs, [merged[x].successful for x in xs], label="successful", color="tab:green")
    ax.bar(xs, [merged[x].failed for x in xs], width=0.9, label="failed", color="tab:red")
    ax.legend(loc="upper left", fontsize=8)
    _decorate(ax, results, ylabel="calls / s", title=_title(results, "calls per second"))
    return _png(fig)


def fig_latency(results: Results) -> bytes | None:
    """Setup latency (INVITE -> 200) percentiles per second, per tester source."""
    rows = [c for c in results.calls if c.setup_ms]
    if not rows:
        return None
    by_source: dict[str, list[tuple[float, dict[str, float]]]] = defaultdict(list)
    for c in rows:
        by_source[c.source].append((c.t, c.setup_ms))
    fig, ax = plt.subplots(figsize=_SIZE)
    for source in sorted(by_source):
        pts = sorted(by_source[source], key=lambda p: p[0])
        labels = [k for k in ("p50", "p90", "p99", "mean") if any(k in p[1] for p in pts)]
        for label in labels:
            xs = [p[0] for p in pts if label in p[1]]
            ys = [p[1][label] for p in pts if label in p[1]]
            ax.plot(xs, ys, label=f"{source} {label}", linewidth=1)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    _decorate(ax, results, ylabel="setup latency (ms)", title=_title(results, "setup latency"))
    return _png(fig)


def fig_cpu(results: Results) -> bytes | None:
    """CPU % and memory per node over time (the paper's "CPU loading")."""
    if not results.nodes:
        return None
    cpu: dict[str, list[tuple[float, float]]] = defaultdict(list)
    rss: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for n in results.nodes:
        cpu[n.node].append((n.t, n.cpu_percent))
        rss[n.node].append((n.t, n.rss_bytes / 2**20))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9.0, 6.0), sharex=True)
    for node in sorted(cpu):
        pts = sorted(cpu[node])
        ax1.plot([p[0] for p in pts], [p[1] for p in pts], label=node, linewidth=1)
        pts2 = sorted(rss[node])
        ax2.plot([p[0] for p in pts2], [p[1] for p in pts2], label=node, linewidth=1)
    ax1.legend(loc="upper left", fontsize=7, ncol=4)
    _decorate(ax1, results, ylabel="CPU %", title=_title(results, "CPU and memory per node"))
    _decorate(ax2, results, ylabel="RSS (MiB)", title="")
    return _png(fig)


def fig_roles(results: Results) -> bytes | None:
    """Each dispatcher's role over time: who held the service address when."""
    if not results.roles:
        return None
    series: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for r in results.roles:
        series[r.node].append((r.t, _ROLE_LEVEL.get(r.role, 0)))
    fig, ax = plt.subplots(figsize=(9.0, 2.4))
    for i, node in enumerate(sorted(series)):
        pts = sorted(series[node])
        ax.step([p[0] for p in pts], [p[1] + i * 0.06 for p in pts], where="post", label=node)
    ax.set_yticks([0, 1, 2], ["down", "standby", "active"])
    ax.legend(loc="center left", fontsize=8)
    _decorate(ax, results, ylabel="role", title=_title(results, "dispatcher roles"))
    return _png(fig)


def _compare(
    runs: Sequence[Results], title: str, ylabel: str,
    draw: Callable[[Axes, Results], None],
) -> bytes | None:
    if not runs:
        return None
    # Constrained layout keeps the figure title clear of each panel's own title and its
    # paper-time axis on top.
    fig, axes = plt.subplots(1, len(runs), figsize=(6.0 * len(runs), 4.0), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, r in zip(axes[0], runs, strict=True):
        draw(ax, r)
        _decorate(ax, r, ylabel=ylabel, title=f"{r.meta.name} [{r.meta.profile}]")
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(title, fontsize=11)
    return _png(fig)


def fig_compare_failed(runs: Sequence[Results]) -> bytes | None:
    """Failed and successful calls per second of several runs, side by side."""

    def draw(ax: Axes, r: Results) -> None:
        merged = calls_per_second(r.calls)
        xs = sorted(merged)
        ax.plot(xs, [merged[x].successful for x in xs], color="tab:green", label="successful")
        ax.bar(xs, [merged[x].failed for x in xs], width=0.9, color="tab:red", label="failed")

    return _compare(runs, "successful and failed calls per second", "calls / s", draw)


def fig_compare_active_calls(runs: Sequence[Results]) -> bytes | None:
    """Active calls per server of several runs, side by side."""

    def draw(ax: Axes, r: Results) -> None:
        series: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for s in r.servers:
            series[s.node].append((s.t, s.active_calls if s.up else 0))
        for node in sorted(series):
            pts = sorted(series[node])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=node, linewidth=1)

    return _compare(runs, "active calls per server", "active calls", draw)


# Figure file name -> (caption, renderer): the report draws them in this order.
FIGURES: dict[str, tuple[str, Callable[[Results], bytes | None]]] = {
    "active_calls.png": ("Active calls per server (paper Figures 6, 7)", fig_active_calls),
    "calls_per_second.png": (
        "Attempted, successful and failed calls per second, faults marked (Figures 8, 9)",
        fig_calls_per_second,
    ),
    "setup_latency.png": ("Setup latency percentiles (INVITE to 200)", fig_latency),
    "cpu.png": ("CPU and memory per node", fig_cpu),
    "roles.png": ("Dispatcher roles", fig_roles),
}
