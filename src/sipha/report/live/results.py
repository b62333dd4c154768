"""The results index as pages of a web server: ``/runs/`` lists every run under a results
folder (the page `sipha report --index` writes, with its side-by-side comparison), and
``/runs/FOLDER/...`` serves each run's report, figures and summary.

Served by the live page of `sipha run --web` (the folder that holds the run's ``--out``) and by
`sipha report --index DIR --web HOST:PORT` on its own. Read-only, and narrow on purpose: only
files inside a run's own folder (one `find_runs` lists), only the kinds a report is made of
(never the run's keys, logs or anything else beside the runs), each at most `MAX_FILE` bytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from pathlib import Path, PurePosixPath

from aiohttp import web

from sipha.report.index import find_runs, index_html
from sipha.report.model import ResultsError

__all__ = ["MAX_FILE", "add_results_routes", "serve_results"]

MAX_FILE = 32 * 1024 * 1024
_TYPES = {".html": "text/html", ".png": "image/png", ".csv": "text/csv",
          ".json": "application/json", ".jsonl": "application/x-ndjson"}


def add_results_routes(app: web.Application, root: Path) -> None:
    """``/runs/`` and the runs' files under `root` on `app`."""
    root = root.resolve()

    async def index(request: web.Request) -> web.StreamResponse:
        try:
            page = await asyncio.to_thread(index_html, root)
        except ResultsError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.Response(text=page, content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/runs/")

    async def file(request: web.Request) -> web.StreamResponse:
        path = await asyncio.to_thread(_resolve, root, request.match_info["path"])
        if isinstance(path, str):
            return web.json_response({"error": path}, status=404)
        return web.FileResponse(path, headers={"Content-Type": _TYPES[path.suffix],
                                               "Cache-Control": "no-store"})

    app.router.add_get("/runs", redirect)
    app.router.add_get("/runs/", index)
    app.router.add_get("/runs/{path:.+}", file)


def _resolve(root: Path, asked: str) -> Path | str:
    """The file `asked` names inside a run under `root`, or the reason it is not served."""
    parts = PurePosixPath(asked).parts
    if len(asked) > 1024 or not parts or any(p in ("..", ".") or p.startswith(".")
                                             for p in parts):
        return "not a file of a run"
    path = (root / Path(*parts)).resolve()
    if path.suffix not in _TYPES:
        return f"only {', '.join(sorted(_TYPES))} files of a run are served"
    runs = [r.resolve() for r in find_runs(root)]
    if not any(path.is_relative_to(r) for r in runs):
        return "not inside a run's folder"
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE:
            return "no such file (or too large)"
    except OSError:
        return "no such file"
    return path


def serve_results(root: Path, host: str, port: int) -> int:
    """`sipha report --index DIR --web HOST:PORT`: serve the index until interrupted."""
    app = web.Application()
    add_results_routes(app, root)
    try:
        public = not ipaddress.ip_address(host).is_loopback
    except ValueError:
        public = True
    if public:
        print(f"sipha report: the results on {host} can be read by anyone who reaches it",
              file=sys.stderr)
    print(f"results index: http://{host}:{port}/runs/  (Ctrl-C to stop)", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0
