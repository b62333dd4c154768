"""The results index: every run under a folder in one page, and any two side by side.

`sipha report --index DIR` finds each results folder under DIR (a folder with ``meta.json``, at
most `MAX_DEPTH` levels down), summarises it (the same `summarize` the report uses, so the
figures agree), and writes ``DIR/index.html``: one row per run with its plan, profile, date,
status, verdict and headline figures, linked to its report. Two runs ticked in the table are
compared on the same page: their summaries and verdicts side by side and their figures next to
each other. The summaries are embedded in the page as JSON, so it works from the file system
with no server, and the figures are relative links into the runs' folders.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sipha.report.model import META, ResultsError, load_results
from sipha.report.render import summary_rows
from sipha.report.summary import Summary, summarize

__all__ = ["MAX_DEPTH", "MAX_RUNS", "IndexEntry", "find_runs", "index_html", "render_index"]

MAX_DEPTH = 4
MAX_RUNS = 2000
FIGURES = ("calls_per_second.png", "active_calls.png", "setup_latency.png", "roles.png")


@dataclass(frozen=True)
class IndexEntry:
    folder: Path  # relative to the index's folder
    summary: Summary
    started_at: float


def find_runs(root: Path) -> Iterator[Path]:
    """Results folders under `root` (itself included), in path order; bounded in depth and
    count, and never following symbolic links out of the tree."""
    found = 0

    def walk(folder: Path, depth: int) -> Iterator[Path]:
        nonlocal found
        if found >= MAX_RUNS:
            return
        if (folder / META).is_file():
            found += 1
            yield folder
            return  # a run's own sub-folders (figures) hold no runs
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return
        for child in children:
            yield from walk(child, depth + 1)

    yield from walk(root, 0)


def _entries(root: Path) -> tuple[list[IndexEntry], list[str]]:
    entries: list[IndexEntry] = []
    problems: list[str] = []
    for folder in find_runs(root):
        try:
            results = load_results(folder)
            summary = summarize(results)
        except (ResultsError, ValueError, KeyError) as exc:
            problems.append(f"{folder.relative_to(root)}: {exc}")
            continue
        entries.append(IndexEntry(folder.relative_to(root), summary, results.meta.started_at))
    entries.sort(key=lambda e: (-e.started_at, str(e.folder)))
    return entries, problems


def _verdict(s: Summary) -> str:
    if not s.verdicts:
        return "no criteria"
    return "met" if s.criteria_met else "FAILED"


def _date(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t > 0 else "?"


def _run_json(e: IndexEntry, root: Path) -> dict[str, object]:
    folder = e.folder.as_posix()
    return {
        "folder": folder,
        "title": f"{e.summary.name} [{e.summary.profile}]",
        "rows": [[label, value] for label, value in summary_rows(e.summary)],
        "verdicts": [[v.criterion, v.bound, v.measured, v.passed] for v in e.summary.verdicts],
        "figures": [f"{folder}/figures/{f}" for f in FIGURES
                    if (root / e.folder / "figures" / f).is_file()],
    }


def render_index(root: str | Path) -> Path:
    """Write ``root/index.html`` listing every run under `root`; return its path. Raises
    ResultsError if `root` is not a folder."""
    out = Path(root) / "index.html"
    page = index_html(root)
    out.write_text(page, encoding="utf-8")
    return out


def index_html(root: str | Path) -> str:
    """The index page of every run under `root` (links relative to `root`). Raises
    ResultsError if `root` is not a folder."""
    base = Path(root)
    if not base.is_dir():
        raise ResultsError(f"{base}: not a folder; give the folder `sipha run --out` wrote")
    entries, problems = _entries(base)
    rows = []
    for i, e in enumerate(entries):
        s = e.summary
        takeover = ", ".join(f"{t:.0f}" for t in s.takeover_ms) or "–"
        link = html.escape(f"{e.folder.as_posix()}/report.html")
        rows.append(
            f"<tr class='verdict-{_verdict(s).replace(' ', '-')}' data-run='{i}'>"
            f"<td><input type='checkbox' class='pick' value='{i}'></td>"
            f"<td><a href='{link}'>{html.escape(s.name)}</a></td>"
            f"<td>{html.escape(s.profile)}</td><td>{_date(e.started_at)}</td>"
            f"<td>{html.escape(s.status)}</td><td>{_verdict(s)}</td>"
            f"<td>{s.calls_attempted}</td><td>{s.calls_failed}</td><td>{takeover}</td>"
            f"<td>{s.longest_gap_ms:.0f}</td><td>{html.escape(e.folder.as_posix())}</td></tr>"
        )
    data = json.dumps([_run_json(e, base) for e in entries]).replace("</", "<\\/")
    problem_list = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
    page = _PAGE.format(
        count=len(entries),
        rows="".join(rows) or "<tr><td colspan='11'>no results folder found</td></tr>",
        problems=f"<h2>Not read</h2><ul>{problem_list}</ul>" if problems else "",
        data=data,
    )
    return page


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sipha results</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #ddd;
  padding: .2em .5em; text-align: left; }}
tr.verdict-FAILED td {{ color: #c62828; }} tr.verdict-met td {{ color: #1a7f37; }}
#compare figure {{ display: inline-block; margin: .5em; }} #compare img {{ max-width: 46vw; }}
</style></head><body>
<h1>sipha results ({count} runs)</h1>
<p>Tick two runs to compare them side by side.</p>
<table id="runs"><thead><tr><th></th><th>plan</th><th>profile</th><th>date</th><th>status</th>
<th>verdict</th><th>calls</th><th>failed</th><th>takeover ms</th><th>longest gap ms</th>
<th>folder</th></tr></thead><tbody>{rows}</tbody></table>
{problems}
<section id="compare"></section>
<script id="runs-data" type="application/json">{data}</script>
<script>
"use strict";
const runs = JSON.parse(document.getElementById("runs-data").textContent);
const picked = [];
function cell(tag, text) {{
  const c = document.createElement(tag); c.textContent = text; return c;
}}
function compare() {{
  const box = document.getElementById("compare");
  box.replaceChildren();
  if (picked.length !== 2) return;
  const [a, b] = picked.map((i) => runs[i]);
  box.appendChild(cell("h2", `${{a.title}} vs ${{b.title}}`));
  const table = document.createElement("table");
  table.id = "compare-table";
  const head = document.createElement("tr");
  head.append(cell("th", ""), cell("th", a.title), cell("th", b.title));
  table.appendChild(head);
  const bRows = new Map(b.rows);
  for (const [label, value] of a.rows) {{
    const tr = document.createElement("tr");
    tr.append(cell("th", label), cell("td", value), cell("td", bRows.get(label) ?? "–"));
    table.appendChild(tr);
  }}
  const names = [...new Set([...a.verdicts, ...b.verdicts].map((v) => v[0]))];
  for (const name of names) {{
    const tr = document.createElement("tr");
    const show = (run) => {{
      const v = run.verdicts.find((x) => x[0] === name);
      if (!v) return "–";
      return `${{v[2] ?? "not measured"}} (bound ${{v[1]}}): ${{v[3] ? "met" : "FAILED"}}`;
    }};
    tr.append(cell("th", name), cell("td", show(a)), cell("td", show(b)));
    table.appendChild(tr);
  }}
  box.appendChild(table);
  for (const run of [a, b]) for (const src of run.figures) {{
    const fig = document.createElement("figure");
    const img = document.createElement("img"); img.src = src; img.alt = src;
    fig.append(img, cell("figcaption", `${{run.title}}: ${{src.split("/").pop()}}`));
    box.appendChild(fig);
  }}
}}
for (const box of document.querySelectorAll("input.pick")) {{
  box.addEventListener("change", () => {{
    const i = Number(box.value);
    if (box.checked) {{
      picked.push(i);
      if (picked.length > 2) {{
        const old = picked.shift();
        document.querySelector(`input.pick[value="${{old}}"]`).checked = false;
      }}
    }} else picked.splice(picked.indexOf(i), 1);
    compare();
  }});
}}
</script></body></html>
"""
