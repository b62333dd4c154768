"""A user's registration + call scenario (``data/register_call_auth.xml``: REGISTER answered
401, INVITE answered 407, both with ``[authentication]`` from the injection file's line) run
by ``sipha load scenario --agents 2`` against a sipha server holding those users: in
SEQUENTIAL and in USER mode, every call succeeds, and the server's location store shows each
user registered exactly once, from one agent: the agents took disjoint rows, together all
of them.  The merged per-step statistics add up to both agents' calls."""

from __future__ import annotations

import csv
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sipha.common.process import terminate
from tests.server.helpers import add_user, server

DATA = Path(__file__).parent / "data"
USERS = {f"user{n}": f"pw-{n}" for n in range(1, 7)}


def _bindings(db: Path) -> dict[str, list[str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT aor, contact FROM bindings").fetchall()
    out: dict[str, list[str]] = {}
    for aor, contact in rows:
        out.setdefault(aor.split("@")[0], []).append(contact)
    return out


@pytest.mark.parametrize(("mode", "extra"), [("SEQUENTIAL", []), ("USER", ["--users", "6"])])
def test_two_agents_use_disjoint_rows(tmp_path: Path, mode: str, extra: list[str]) -> None:
    db = tmp_path / "users.db"
    store = f"sqlite:{db}"
    for name, password in USERS.items():
        add_user(store, name, password)
    inf = tmp_path / "users.csv"
    inf.write_text(mode + "\n" + "".join(f"{n};{p}\n" for n, p in USERS.items()))
    stat = tmp_path / "stat.csv"
    with server(tmp_path, store=store, config="auth_invite = true\n") as srv:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sipha", "load", "scenario",
             str(DATA / "register_call_auth.xml"), srv.target, "--inf", str(inf),
             "-r", "20", "-m", "6", "--agents", "2", "--seed", "3", "--csv", str(stat),
             "--agent-log", str(tmp_path / "agents.log"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=60)
        finally:
            terminate(proc)
        status = srv.status()
    assert proc.returncode == 0, out
    assert "agents 2: created 6 successful 6 failed 0" in out
    # Per step, merged over the agents: each of the 6 calls sent and received every message.
    counts = [int(m) for m in re.findall(r"-{10}>?\s+(?:[EB]-RTD[a-z]+)?(\d+)", out)]
    assert len(counts) == 15, out
    optional = {5, 9, 10}  # the 100s and the 180
    assert [n for i, n in enumerate(counts) if i not in optional] == [6] * 12, out
    registrar, calls = status["registrar"], status["calls"]
    assert registrar == {"registrations": 6, "unregistrations": 0, "auth_failures": 0}
    assert calls["answered"] == 6  # type: ignore[index]
    assert status["requests"]["INVITE"] == 12  # type: ignore[index]  # each challenged once
    bindings = _bindings(db)
    assert sorted(bindings) == sorted(USERS)  # every row used ...
    assert all(len(c) == 1 for c in bindings.values()), bindings  # ... once
    ports = {user: re.search(r":(\d+);", c[0]).group(1)  # type: ignore[union-attr]
             for user, c in bindings.items()}
    # Agent 1 of 2 took rows 1, 3, 5; agent 2 rows 2, 4, 6: one local port each.
    assert ports["user1"] == ports["user3"] == ports["user5"]
    assert ports["user2"] == ports["user4"] == ports["user6"] != ports["user1"]
    with stat.open(newline="") as f:
        last = list(csv.DictReader(f, delimiter=";"))[-1]
    assert (last["OutgoingCall(C)"], last["SuccessfulCall(C)"]) == ("6", "6")
