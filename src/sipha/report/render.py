"""Rendering a results folder: summary.json, calls.csv, figures/*.png and report.html.

The HTML embeds every figure as a base64 data URI and carries its own CSS, so the one file
opens offline, mailed or archived without its folder.  :func:`render_comparison` puts several
runs of one plan (the ``paper`` and ``default`` profiles) side by side.
"""

from __future__ import annotations

import base64
import csv
import html
from collections.abc import Sequence
from pathlib import Path

import msgspec

from sipha.common.expect import CRITERIA, Verdict
from sipha.report.figures import FIGURES, fig_compare_active_calls, fig_compare_failed
from sipha.report.interactive import interactive_section
from sipha.report.model import Results, load_results
from sipha.report.summary import Summary, calls_per_second, summarize

__all__ = ["render_comparison", "render_report", "summary_rows", "verdict_cells",
           "write_calls_csv"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3;text-align:left} td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee;margin:.3em 0} .bad{color:#b00;font-weight:bold}
.ok{color:#070;font-weight:bold} figure{margin:1em 0} figcaption{font-size:.9em;color:#555}
"""


def _fmt_ms(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.0f} ms" for v in values) if values else "no switch"


def summary_rows(s: Summary) -> list[tuple[str, str]]:
    """The summary table as (label, value) rows, shared by the report and the comparison."""
    failed_cls = "bad" if s.calls_failed else "ok"
    shares = ", ".join(
        f"{n} {s.calls_per_server[n]} ({s.share_per_server.get(n, 0.0):.1%})"
        for n in s.calls_per_server
    )
    reasons = ", ".join(f"{k}: {v}" for k, v in s.failed_by_reason.items()) or "none"
    return [
        ("profile", s.profile),
        ("status", s.status + (f" ({s.status_detail})" if s.status_detail else "")),
        ("time scale", f"x{s.time_scale:g} (1 run second = {s.time_scale:g} paper seconds)"),
        ("calls attempted", str(s.calls_attempted)),
        ("calls successful", str(s.calls_successful)),
        ("calls failed", f'<span class="{failed_cls}">{s.calls_failed}</span>'),
        ("calls unfinished at the end", str(s.calls_unfinished)),
        ("failed by reason", html.escape(reasons)),
        (f"calls per server ({s.share_basis})", html.escape(shares) or "no sample"),
        ("takeover time", _fmt_ms(s.takeover_ms)),
        ("longest gap without a call answered",
         f"{s.longest_gap_ms:.0f} ms (resolution {s.longest_gap_resolution_ms:.0f} ms)"),
        ("setup p99 (INVITE to 200, whole run, sipha's testers)",
         "not measured" if s.setup_p99_ms is None else f"{s.setup_p99_ms:.1f} ms"),
        ("peak concurrent calls", str(s.peak_concurrent)),
        ("retransmissions by the testers", str(s.retransmissions)),
        *([("registrations failed (after retries)", str(s.failed_registrations))]
          if s.failed_registrations is not None else []),
        *([("store failover time", _fmt_ms(s.store_failover_ms))] if s.store_failover_ms
          else []),
        ("faults", html.escape("; ".join(s.faults)) or "none"),
    ]


def _value(v: float | None) -> str:
    if v is None:
        return "not measured"
    return f"{v:.0f}" if v.is_integer() else f"{v:.4g}"


def verdict_cells(v: Verdict) -> tuple[str, str, str]:
    """(measured, bound, verdict) of one criterion, as HTML cells' contents."""
    side = "&le;" if CRITERIA[v.criterion].side == "max" else "&ge;"
    verdict = '<span class="ok">met</span>' if v.passed else '<span class="bad">FAILED</span>'
    return _value(v.measured), f"{side} {_value(v.bound)}", verdict


def _verdict_table(s: Summary) -> str:
    if not s.verdicts:
        return "<p>No criteria: the plan has no [expect] for this profile.</p>"
    head = "<tr><th>criterion</th><th>measured</th><th>bound</th><th>verdict</th></tr>"
    body = "".join(
        f"<tr><th>{html.escape(v.criterion)}</th>"
        + "".join(f'<td class="n">{c}</td>' for c in verdict_cells(v)) + "</tr>"
        for v in s.verdicts
    )
    return f"<table>{head}{body}</table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_calls_csv(results: Results, path: Path) -> None:
    """Calls per second merged over testers, plus failures by reason, as CSV."""
    merged = calls_per_second(results.calls)
    reasons: dict[int, dict[str, int]] = {}
    keys: set[str] = set()
    for c in results.calls:
        r = reasons.setdefault(int(c.t // 1), {})
        for k, n in c.failed_by_reason.items():
            r[k] = r.get(k, 0) + n
            keys.add(k)
    cols = sorted(keys)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["second", "attempted", "successful", "failed", "concurrent",
                    "retransmissions", *(f"failed_{k}" for k in cols)])
        for sec in sorted(merged):
            m = merged[sec]
            w.writerow([sec, m.attempted, m.successful, m.failed, m.concurrent,
                        m.retransmissions, *(reasons.get(sec, {}).get(k, 0) for k in cols)])


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_report(folder: str | Path) -> Path:
    """Write summary.json, calls.csv, figures/*.png and report.html into ``folder``; return the
    report's path.  Raises ResultsError if the folder is not a results folder."""
    f = Path(folder)
    results = load_results(f)
    summary = summarize(results)
    (f / "summary.json").write_bytes(
        msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n"
    )
    write_calls_csv(results, f / "calls.csv")
    figdir = f / "figures"
    figdir.mkdir(exist_ok=True)
    parts = [
        f"<h1>sipha run: {html.escape(summary.name)} [{html.escape(summary.profile)}]</h1>",
        _plan_note(results),
        "<h2>Summary</h2>",
        _table(summary_rows(summary)),
        "<h2>Criteria</h2>",
        _verdict_table(summary),
        interactive_section(results),
        "<h2>Figures</h2>",
    ]
    for filename, (caption, draw) in FIGURES.items():
        png = draw(results)
        if png is None:
            continue
        (figdir / filename).write_bytes(png)
        parts.append(
            f"<figure>{_img(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("<h2>Nodes</h2>")
    parts.append(_table([(n.name, html.escape(f"{n.kind} {n.address}")) for n in
                         results.meta.nodes]))
    if results.events:
        parts.append("<h2>Events</h2>")
        parts.append(_table([
            (f"{e.t:8.2f} s", html.escape(f"{e.kind} {e.node} {e.detail}".strip()
                                          + (f" ({e.ms:.0f} ms)" if e.ms is not None else "")))
            for e in results.events
        ]))
    out = f / "report.html"
    out.write_text(_page(f"sipha report: {summary.name}", "\n".join(parts)), encoding="utf-8")
    return out


def _plan_note(results: Results) -> str:
    desc = results.meta.plan.get("description", "")
    return f"<p>{html.escape(str(desc))}</p>" if desc else ""


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def _verdict_comparison(summaries: Sequence[Summary], header: str) -> str:
    """One row per criterion any run has; each run's cell: measured, bound, verdict (a run
    whose profile does not bound that criterion shows a dash)."""
    names = [n for n in CRITERIA if any(v.criterion == n for s in summaries for v in s.verdicts)]
    if not names:
        return "<p>No criteria: the plan has no [expect].</p>"
    rows = []
    for name in names:
        cells = []
        for s in summaries:
            v = next((v for v in s.verdicts if v.criterion == name), None)
            if v is None:
                cells.append("<td>&ndash;</td>")
                continue
            measured, bound, verdict = verdict_cells(v)
            cells.append(f"<td>{measured} (bound {bound}): {verdict}</td>")
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th></th>{header}</tr>{''.join(rows)}</table>"


def render_comparison(folders: Sequence[str | Path], out: str | Path) -> Path:
    """One HTML page putting several runs (e.g. ``paper`` and ``default``) side by side:
    both summary tables in one, and the failed-calls and active-calls figures of each run next
    to each other.  Writes ``out`` (an .html path) and PNGs beside it; returns ``out``."""
    runs = [load_results(f) for f in folders]
    summaries = [summarize(r) for r in runs]
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    header = "".join(f"<th>{html.escape(s.name)} [{html.escape(s.profile)}]</th>"
                     for s in summaries)
    all_rows = [summary_rows(s) for s in summaries]
    body_rows = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f"<td>{rows[i][1]}</td>" for rows in all_rows)
        + "</tr>"
        for i, (label, _) in enumerate(all_rows[0])
    )
    parts = [
        "<h1>sipha: profiles side by side</h1>",
        f"<table><tr><th></th>{header}</tr>{body_rows}</table>",
        "<h2>Criteria</h2>",
        _verdict_comparison(summaries, header),
    ]
    for stem, draw, caption in (
        ("compare_failed", fig_compare_failed, "Successful and failed calls per second"),
        ("compare_active_calls", fig_compare_active_calls, "Active calls per server"),
    ):
        png = draw(runs)
        if png is None:
            continue
        # Named after the page: several plans' comparisons may share one folder.
        name = f"{out_path.stem}-{stem.removeprefix('compare_').replace('_', '-')}.png"
        (out_path.parent / name).write_bytes(png)
        parts.append(f"<figure>{_img(png, caption)}<figcaption>{caption}</figcaption></figure>")
    out_path.write_text(_page("sipha comparison", "\n".join(parts)), encoding="utf-8")
    return out_path
