"""``sipha report RESULTS_DIR [RESULTS_DIR ...]``: render the report of one or more runs.

With ``--index DIR``: ``DIR/index.html``, every run under DIR (see `sipha.report.index`).
With one folder: summary.json, calls.csv, figures/*.png and report.html in that folder.  With
several (the same plan run in both profiles): each folder's report, plus a side-by-side
comparison page (``--compare PATH``, default ``compare.html`` in the folders' common parent).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sipha.report.index import render_index
from sipha.report.live.results import serve_results
from sipha.report.model import ResultsError
from sipha.report.render import render_comparison, render_report

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="*", metavar="RESULTS_DIR",
                        help="results folder(s) written by `sipha run`")
    parser.add_argument("--index", metavar="DIR", default=None,
                        help="write DIR/index.html: every run under DIR with its verdict and "
                             "headline figures; tick two to compare them side by side")
    parser.add_argument("--web", metavar="HOST:PORT", default=None,
                        help="with --index DIR: serve the index (and every run's report) at "
                             "http://HOST:PORT/runs/ until Ctrl-C, read-only")
    parser.add_argument("--compare", metavar="PATH", default=None,
                        help="with several folders: where to write the side-by-side page")


def main(args: argparse.Namespace) -> int:
    folders = [Path(r) for r in args.results]
    if not folders and args.index is None:
        sys.stderr.write("sipha report: give RESULTS_DIR(s) or --index DIR\n")
        return 2
    if args.web is not None:
        if args.index is None or folders:
            sys.stderr.write("sipha report: --web serves an index: give --index DIR alone\n")
            return 2
        host, _, port = args.web.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            sys.stderr.write(f"sipha report: --web {args.web!r}: expected HOST:PORT\n")
            return 2
        if not Path(args.index).is_dir():
            sys.stderr.write(f"sipha report: --index {args.index}: not a folder\n")
            return 2
        return serve_results(Path(args.index), host.strip("[]"), int(port))
    try:
        if args.index is not None:
            sys.stdout.write(f"index: {render_index(args.index)}\n")
        for f in folders:
            path = render_report(f)
            sys.stdout.write(f"report: {path}\n")
        if len(folders) > 1:
            target = Path(args.compare) if args.compare else (
                Path(os.path.commonpath([f.resolve() for f in folders])) / "compare.html"
            )
            sys.stdout.write(f"comparison: {render_comparison(folders, target)}\n")
    except ResultsError as exc:
        sys.stderr.write(f"sipha report: {exc}\n")
        return 2
    return 0
