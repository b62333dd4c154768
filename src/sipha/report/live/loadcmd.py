"""`sipha load ... --web HOST:PORT`: the load tester's run with its live page beside it.

The load tester may not import the report layer, so the top-level command sends a load with
``--web`` here; this module builds the page and hands the load tester `WebHooks` (its
`LiveHooks`): a view that feeds the page, and the stop and rate controls bound to the run's
loop once it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Callable

from sipha.common.http import parse_host_port
from sipha.loadtest import cli as load_cli
from sipha.loadtest.protocol import Plan
from sipha.loadtest.view import LiveView
from sipha.report.live.board import Board
from sipha.report.live.bridge import LateControls, LivePage, LoadView, RunControls

__all__ = ["WebHooks", "add_arguments", "main"]

add_arguments = load_cli.add_arguments


class WebHooks:
    """The load tester's `LiveHooks` backed by a `LivePage`."""

    def __init__(self, address: str, title: str, *, token: str | None = None) -> None:
        self.host, self.port = parse_host_port(address, what="--web")
        self.board = Board(title, kind="load")
        self.controls = LateControls()
        self.page = LivePage(self.board, self.controls, host=self.host, port=self.port,
                             token=token)

    def start(self) -> None:
        """Bind the page and print where it is, and its token, once. Raises OSError."""
        self.page.start()
        try:
            public = not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            public = True
        if public:
            print(f"sipha load: the live page on {self.host} can be read by anyone who reaches "
                  "it; its controls need the token", file=sys.stderr)
        print(f"live page: {self.page.url}  (controls token, shown once: {self.page.token})",
              file=sys.stderr)

    def wrap_view(self, view: LiveView | None, plan: Plan) -> LiveView:
        return LoadView(self.page, view)

    def attach(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event,
               set_rate: Callable[[float], str] | None) -> None:
        async def do_stop() -> str:
            stop.set()
            return "stopping: no new calls, the calls in flight drain"

        do_rate = None
        if set_rate is not None:
            rate_change = set_rate

            async def change(rate: float) -> str:
                return rate_change(rate)

            do_rate = change
        self.controls.bound = RunControls(loop, set_rate=do_rate, stop=do_stop)
        names = self.controls.bound.names
        self.page.update(lambda board: board.set_controls(names))

    def close(self) -> None:
        self.page.close()


def main(args: argparse.Namespace) -> int:
    target = getattr(args, "target", None) or getattr(args, "listen", None) or ""
    if isinstance(target, tuple):
        target = ":".join(str(part) for part in target)
    hooks = WebHooks(args.web, f"sipha load {args.load_command} {target}".strip())
    try:
        hooks.start()
    except (OSError, ValueError) as exc:
        print(f"sipha load: --web {args.web}: {exc}", file=sys.stderr)
        return 2
    return load_cli.main(args, live=hooks)
