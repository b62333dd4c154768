"""The live page in a real browser (Debian's Chromium through Playwright), fed by a synthetic
run in a thread of its own: counters and charts advance each second, a control clicked with
the token acts (and lands on the timeline), without the token every control is refused."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from sipha.report.live.board import Board, Event
from sipha.report.live.server import ControlRefused, LiveServer
from tests.browser import browser_page

pytestmark = pytest.mark.timeout(90)


@dataclass
class FakeRun:
    """A run in the same process: `rate` calls each second, spread over the up servers;
    controls change the rate and kill nodes. Every call succeeds."""

    board: Board
    rate: float = 20.0
    actions: list[str] = field(default_factory=list)
    second: int = 0

    async def set_rate(self, rate: float) -> str:
        self.rate = rate
        self.actions.append(f"rate {rate:g}")
        return f"target rate {rate:g} calls/s"

    async def stop(self) -> str:
        self.actions.append("stop")
        self.board.finish()
        return "stopping"

    async def fault(self, action: str, node: str) -> str:
        if self.board.nodes[node]["state"] == "killed" and action == "kill":
            raise ControlRefused(f"{node} is already killed")
        self.actions.append(f"{action} {node}")
        self.board.set_node(node, state="killed" if action == "kill" else "up", kind="server")
        return f"SIGKILL to {node}" if action == "kill" else action

    async def server_state(self, server: str, state: str) -> str:
        self.actions.append(f"{server} {state}")
        return f"{server} {state}"

    async def network(self, kind: str, node: str, params: Mapping[str, float]) -> str:
        self.actions.append(f"{kind} {node} {dict(sorted(params.items()))}")
        return f"{kind} {node}"

    def tick(self) -> None:
        self.second += 1
        up = [n for n, v in self.board.nodes.items() if v["state"] == "up"]
        n = int(self.rate)
        self.board.add_row(self.second, {
            "attempted": n, "successful": n, "failed": 0, "p50_ms": 2.0, "p90_ms": 3.0,
            "p99_ms": 5.0, "retransmissions": 0,
            "active_per_server": {s: n // max(1, len(up)) for s in up}})


@pytest.fixture
def live() -> Iterator[tuple[LiveServer, FakeRun]]:
    board = Board("synthetic run", kind="run", controls=("rate", "stop", "fault", "server_state",
                                                            "network"))
    for name in ("s1", "s2"):
        board.set_node(name, state="up", kind="server")
    board.set_criteria([{"name": "max_failed_calls", "bound": 0, "measured": 0, "met": True}])
    run = FakeRun(board)
    ready = threading.Event()
    done = threading.Event()
    holder: dict[str, LiveServer] = {}

    async def main() -> None:
        server = LiveServer(board, run, host="127.0.0.1", port=0)
        await server.start()
        holder["server"] = server
        ready.set()
        while not done.is_set():
            run.tick()
            await asyncio.sleep(1.0)  # the synthetic run's own second, not a test wait
        await server.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield holder["server"], run
    finally:
        done.set()
        thread.join(10)


def _post(url: str, body: object, token: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url + "api/control", data=json.dumps(body).encode(),
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_page_advances_and_controls_act_with_the_token(live: tuple[LiveServer, FakeRun]) -> None:
    server, run = live
    with browser_page() as page:
        page.goto(server.url)
        page.wait_for_function("document.getElementById('status').textContent === 'live'")
        first = int(page.inner_text("#attempted-total"))
        points = int(page.get_attribute("#chart-calls", "data-points") or 0)
        # Counters and the chart's last point move on within a few pushes (1 s each).
        page.wait_for_function(f"Number(document.getElementById('attempted-total')"
                               f".textContent) > {first}", timeout=8000)
        page.wait_for_function(f"Number(document.getElementById('chart-calls')"
                               f".dataset.points) > {points}", timeout=8000)

        # Without the token: refused, nothing done.
        page.click("#inject")
        page.wait_for_function("document.getElementById('control-result').dataset.status"
                               " === '401'")
        assert run.actions == []

        page.fill("#token", server.token)
        page.select_option("#fault-node", "s2")
        page.select_option("#fault-action", "kill")
        page.click("#inject")
        page.wait_for_function("document.getElementById('control-result').dataset.status"
                               " === '200'")
        assert run.actions == ["kill s2"]
        page.wait_for_selector("#nodes tr[data-name='s2'].state-killed", timeout=5000)
        page.wait_for_selector("#events li.control", timeout=5000)
        assert "kill s2" in page.inner_text("#events")

        # The rate: the attempted calls per second follow within 2 s.
        page.fill("#rate", "55")
        page.click("#set-rate")
        page.wait_for_function("document.getElementById('rate-now').textContent === '55'",
                               timeout=4000)
        assert run.actions[-1] == "rate 55"

        page.click("#stop")
        page.wait_for_function("document.getElementById('status').textContent === 'finished'")


def test_controls_refused_without_token_and_bad_input_gets_4xx(
        live: tuple[LiveServer, FakeRun]) -> None:
    server, run = live
    url = server.url
    assert _post(url, {"action": "stop"}, None)[0] == 401
    assert _post(url, {"action": "stop"}, "wrong-token")[0] == 401
    assert _post(url, {"action": "rate", "rate": -1}, server.token)[0] == 400
    assert _post(url, {"action": "rate", "rate": 1e9}, server.token)[0] == 400
    assert _post(url, {"action": "fault", "node": "nope", "state": "kill"}, server.token)[0] == 400
    assert _post(url, {"action": "fault", "node": "s1", "state": "rm -rf"}, server.token)[0] == 400
    assert _post(url, {"action": "launch"}, server.token)[0] == 400
    assert _post(url, {"action": "stop", "extra": 1}, server.token)[0] == 400
    assert _post(url, ["not", "an", "object"], server.token)[0] == 400
    status, _ = _post(url, {"action": "x" * 10_000}, server.token)
    assert status in (400, 413)
    token = server.token
    assert _post(url, {"action": "network", "kind": "flood", "node": "s1"}, token)[0] == 400
    assert _post(url, {"action": "network", "kind": "loss", "node": "x"}, token)[0] == 400
    assert _post(url, {"action": "network", "kind": "loss", "node": "s1", "percent": 0},
                 token)[0] == 400
    assert _post(url, {"action": "network", "kind": "delay", "node": "s1", "delay_ms": 1e6},
                 token)[0] == 400
    assert _post(url, {"action": "network", "kind": "loss", "node": "s1", "duration": 9999},
                 token)[0] == 400
    assert _post(url, {"action": "network", "kind": "loss", "node": "s1", "percent": True},
                 token)[0] == 400
    assert run.actions == []
    assert _post(url, {"action": "network", "kind": "loss", "node": "s2", "percent": 20,
                       "duration": 5}, token)[0] == 200
    assert _post(url, {"action": "network", "kind": "heal"}, token)[0] == 200
    assert run.actions == ["loss s2 {'duration': 5.0, 'percent': 20.0}", "heal  {}"]
    run.actions.clear()
    assert _post(url, {"action": "fault", "node": "s1", "state": "kill"}, server.token)[0] == 200
    assert _post(url, {"action": "fault", "node": "s1", "state": "kill"}, server.token)[0] == 409
    with urllib.request.urlopen(url + "api/state", timeout=5) as r:
        state = json.loads(r.read())
    assert [e["what"] for e in state["events"]] == ["loss", "heal", "kill"]
    assert {e["source"] for e in state["events"]} == {"control"}
    assert server.token not in json.dumps(state)


def test_board_bounds_what_it_keeps() -> None:
    board = Board("b")
    for t in range(5000):
        board.add_row(t, {"attempted": 1, "failed_by_reason": {f"r{i}": 1 for i in range(500)}})
    assert len(board.rows) == 3600
    assert len(board.rows[-1]["failed_by_reason"]) == 64
    for t in range(1500):
        board.add_event(Event(t, "kill" * 100, "s1"))
    assert len(board.events) == 1000
    assert len(board.events[-1].what) == 64
    update = board.update_since(4990, 1490)
    assert [r["t"] for r in update["rows"]] == [float(t) for t in range(4990, 5000)]
    assert len(update["events"]) == 10
    board.add_row(1, {"attempted": float("nan"), "p99_ms": True})
    assert "attempted" not in board.rows[-1]
    assert "p99_ms" not in board.rows[-1]
    with pytest.raises(ValueError, match="node state"):
        board.set_node("s1", state="exploded")
