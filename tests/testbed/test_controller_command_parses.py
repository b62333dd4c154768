"""The load controller's command line as the test bed writes it parses, whatever the run's
random token looks like (a token_urlsafe may start with "-": once one did, and argparse took it
for a flag; the controller exited 2 and the run had no sipha tester)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.cli import build_parser
from sipha.testbed import commands
from sipha.testbed.addresses import allocate_block
from sipha.testbed.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("token", ["-starts-with-a-dash", "--double", "plain_Token-9"])
def test_controller_argv_parses_with_any_token(token: str, tmp_path: Path) -> None:
    plan = load_plan(ROOT / "plans" / "smoke.toml")
    block = allocate_block()
    cmd = commands.sipha_controller_command(
        plan, 1, plan.phases[0], block, tmp_path / "sipha.jsonl", "controller",
        http_port=8090, token=token, keys=tmp_path / "keys")
    argv = cmd.argv[cmd.argv.index("load"):]
    args = build_parser("load").parse_args(argv)
    assert args.token == token
    assert args.keys == str(tmp_path / "keys")
    assert args.http.endswith(":8090")
