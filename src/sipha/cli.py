"""The ``sipha`` command: parses arguments and calls into the parts, nothing more.

Each part owns its sub-command in a ``cli`` module with ``add_arguments(parser)`` and
``main(args) -> int``; they are imported only when their command runs, so ``sipha users``
does not pay for loading the load tester.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sipha import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "server": ("sipha.server.cli", "run a SIP server node (registrar, proxy, answering services)"),
    "users": ("sipha.store.cli", "manage users in the store: add, del, list, import, generate"),
    # sipha.ha.cli adds the --ha-* flags to the dispatcher's and runs it as an HA pair member.
    "dispatcher": ("sipha.ha.cli", "run a SIP load balancer, or control one (ctl)"),
    "load": ("sipha.loadtest.cli", "generate SIP load: calls, registrations, options"),
    "run": ("sipha.testbed.cli", "run a test plan: cluster + load + faults, then a report"),
    "report": ("sipha.report.cli", "render the report of a results folder"),
    "certs": ("sipha.common.certs_cli", "write a test CA and TLS certificates for demos and tests"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sipha",
        description="A highly available SIP cluster and a distributed SIP load tester.",
    )
    # `sipha run` over SSH compares this with the runner's before it starts anything.
    parser.add_argument("--version", action="version", version=f"sipha {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            p.set_defaults(_module=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    only = command if command in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    module_name = args._module
    if module_name == "sipha.loadtest.cli" and getattr(args, "web", None):
        # The live page lives in the report layer, above the load tester: it wraps the run.
        module_name = "sipha.report.live.loadcmd"
    module = importlib.import_module(module_name)
    return int(module.main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
