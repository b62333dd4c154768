"""The HTTP API and ``sipha dispatcher ctl`` against a real dispatcher process on loopback:
the bearer token is enforced, servers are listed, reweighted, added, removed and put in
operator states (a bad state is refused naming the allowed ones), reload resets the set to
the configured servers, and /metrics exposes each server's state as a Prometheus gauge.

Probing is off and nothing listens on the servers' ports: these tests are about control, and
a probe could move a server's state under them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from sipha.common.process import free_port, terminate
from tests.dispatcher.cluster import Node, start_dispatcher

TOKEN = "t0ken"
OPERATOR_STATES = ("active", "inactive", "disabled", "draining")


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[tuple[Node, list[str]]]:
    ids = [f"sip:127.0.0.1:{free_port()}" for _ in range(2)]
    node = start_dispatcher(
        tmp_path, [ids[0], f"{ids[1]};weight=2"], "--probe", "off", "--algorithm", "wrr",
        token=TOKEN,
    )
    try:
        yield node, ids
    finally:
        terminate(node.proc, timeout=3)


def ctl(node: Node, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "sipha.cli", "dispatcher", "ctl",
           "--http", f"127.0.0.1:{node.http_port}"]
    if token is not None:
        cmd += ["--token", token]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=30, check=False
    )


def servers(node: Node) -> dict[str, dict[str, object]]:
    status, body = node.call("GET", "/servers", token=TOKEN)
    assert status == 200
    return {s["id"]: s for s in body["servers"]}


def test_bearer_token_is_required_except_for_metrics_and_health(
    dispatcher: tuple[Node, list[str]],
) -> None:
    node, ids = dispatcher
    key = quote(ids[0], safe="")
    for method, path, body in [
        ("GET", "/servers", None),
        ("GET", "/status", None),
        ("POST", f"/servers/{key}/state", {"state": "disabled"}),
        ("POST", f"/servers/{key}/weight", {"weight": 9}),
        ("DELETE", f"/servers/{key}", None),
        ("POST", "/reload", {}),
    ]:
        for token in (None, "wrong"):
            status, answer = node.call(method, path, body, token=token)
            assert status == 401, (method, path, token)
            assert "bearer token" in answer["error"]
    # Nothing changed behind the refusals.
    assert {(k, s["state"], s["weight"]) for k, s in servers(node).items()} == {
        (ids[0], "active", 1), (ids[1], "active", 2)
    }
    assert node.call("GET", "/health")[0] == 200
    assert node.call("GET", "/metrics")[0] == 200
    # ctl without (or with a wrong) token reports the 401 and fails.
    for token in (None, "wrong"):
        done = ctl(node, "list", token=token)
        assert done.returncode == 1
        assert "HTTP 401" in done.stderr


def test_ctl_lists_sets_weight_and_state(dispatcher: tuple[Node, list[str]]) -> None:
    node, ids = dispatcher
    done = ctl(node, "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line, (sid, weight) in zip(lines, [(ids[0], 1), (ids[1], 2)], strict=True):
        assert line.split()[1:5] == [sid, "active", f"w={weight}", "calls=0"], line

    done = ctl(node, "weight", ids[0], "5")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["weight"] == 5
    # By HOST:PORT as well as by id.
    done = ctl(node, "state", ids[1].removeprefix("sip:"), "draining")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "draining"
    s = servers(node)
    assert (s[ids[0]]["weight"], s[ids[0]]["state"]) == (5, "active")
    assert (s[ids[1]]["weight"], s[ids[1]]["state"]) == (2, "draining")

    for state in OPERATOR_STATES:
        done = ctl(node, "state", ids[0], state)
        assert done.returncode == 0, done.stderr
        assert servers(node)[ids[0]]["state"] == state

    # "suspect" is the router's to raise, not an operator's to set.
    done = ctl(node, "state", ids[0], "suspect")
    assert done.returncode == 1
    assert "HTTP 400" in done.stderr
    assert all(state in done.stderr for state in OPERATOR_STATES)
    # A missing argument is a usage error, before any request.
    done = ctl(node, "state", ids[0])
    assert done.returncode == 2
    assert "state ID STATE" in done.stderr
    # An unknown server is a 404.
    done = ctl(node, "weight", "sip:127.0.0.1:1", "3")
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr


def test_api_refuses_bad_states_and_weights_naming_what_is_allowed(
    dispatcher: tuple[Node, list[str]],
) -> None:
    node, ids = dispatcher
    key = quote(ids[0], safe="")
    for bad in ("suspect", "up", None):
        status, body = node.call("POST", f"/servers/{key}/state", {"state": bad}, TOKEN)
        assert status == 400
        assert body["error"] == "state must be one of " + ", ".join(OPERATOR_STATES)
    for bad_weight in (-1, "3", True, 1.5):
        status, body = node.call(
            "POST", f"/servers/{key}/weight", {"weight": bad_weight}, TOKEN
        )
        assert status == 400
        assert "weight must be an integer >= 0" in body["error"]
    assert node.call("POST", f"/servers/{key}/weight", ["not", "an", "object"], TOKEN)[0] == 400
    assert servers(node)[ids[0]]["state"] == "active"
    assert servers(node)[ids[0]]["weight"] == 1


def test_add_remove_and_reload(dispatcher: tuple[Node, list[str]]) -> None:
    node, ids = dispatcher
    extra = f"sip:127.0.0.1:{free_port()}"
    status, body = node.call("POST", "/servers", {"uri": f"{extra};weight=3;maxload=7"}, TOKEN)
    assert status == 201
    assert (body["id"], body["weight"], body["maxload"], body["state"]) == (
        extra, 3, 7, "active"
    )
    assert node.call("POST", "/servers", {"uri": extra}, TOKEN)[0] == 400  # already there
    status, body = node.call("POST", "/servers", {"uri": "not a uri"}, TOKEN)
    assert status == 400
    assert "not a SIP URI" in body["error"]
    assert set(servers(node)) == {*ids, extra}

    status, body = node.call("DELETE", f"/servers/{quote(extra, safe='')}", None, TOKEN)
    assert (status, body) == (200, {"removed": extra})
    assert node.call("DELETE", f"/servers/{quote(extra, safe='')}", None, TOKEN)[0] == 404
    assert set(servers(node)) == set(ids)

    # ctl add, then reload: the set returns to the configured servers (the flag-given ones),
    # and an operator's weight on a configured server goes back to the configured one.
    done = ctl(node, "add", f"{extra};weight=4")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["weight"] == 4
    assert ctl(node, "weight", ids[1], "9").returncode == 0
    done = ctl(node, "reload")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"added": [], "removed": [extra], "reweighted": [ids[1]]}
    assert {(k, s["weight"]) for k, s in servers(node).items()} == {(ids[0], 1), (ids[1], 2)}
    done = ctl(node, "remove", ids[0])
    assert done.returncode == 0, done.stderr
    assert set(servers(node)) == {ids[1]}


def test_metrics_expose_the_server_state_gauge(dispatcher: tuple[Node, list[str]]) -> None:
    node, ids = dispatcher
    key = quote(ids[1], safe="")
    assert node.call("POST", f"/servers/{key}/state", {"state": "disabled"}, TOKEN)[0] == 200
    status, text = node.call("GET", "/metrics")
    assert status == 200
    lines = set(text.splitlines())
    assert "# TYPE sipha_dispatcher_server_state gauge" in lines
    for sid, current in ((ids[0], "active"), (ids[1], "disabled")):
        # One sample per state, including the router's own "suspect"; 1 for the current one.
        for state in (*OPERATOR_STATES, "suspect"):
            value = "1.0" if state == current else "0.0"
            assert f'sipha_dispatcher_server_state{{server="{sid}",state="{state}"}} {value}' in (
                lines
            ), state
        assert f'sipha_dispatcher_server_active_calls{{server="{sid}"}} 0.0' in lines
