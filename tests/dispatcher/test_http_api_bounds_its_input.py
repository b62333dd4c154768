"""The dispatcher's HTTP API bounds what it is given: a server URI of a megabyte, a weight
out of range are answered 400 and change nothing (nor fill the log); an API started without
a token says so in the log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.common.process import free_port, terminate
from tests.dispatcher.cluster import Node, start_dispatcher

TOKEN = "t0ken"


@pytest.fixture
def dispatcher(tmp_path: Path) -> Iterator[Node]:
    node = start_dispatcher(tmp_path, [f"sip:127.0.0.1:{free_port()}"], "--probe", "off",
                            token=TOKEN)
    try:
        yield node
    finally:
        terminate(node.proc, timeout=3)


def test_oversized_uris_and_weights_out_of_range_are_refused(dispatcher: Node) -> None:
    node = dispatcher
    before = node.call("GET", "/servers", token=TOKEN)[1]
    huge = "sip:" + "a" * 1_000_000 + ".example:5060"
    status, answer = node.call("POST", "/servers", {"uri": huge}, token=TOKEN)
    assert status == 400
    assert "longer than" in answer["error"]
    status, answer = node.call("POST", "/servers", {"uri": "sip:127.0.0.1:5998;weight=10000001"},
                               token=TOKEN)
    assert (status, "weight" in answer["error"]) == (400, True)
    key = before["servers"][0]["uid"]
    for weight in (-1, 10**9, True, 1.5, "3"):
        status, answer = node.call("POST", f"/servers/{key}/weight", {"weight": weight},
                                   token=TOKEN)
        assert status == 400, weight
    assert node.call("GET", "/servers", token=TOKEN)[1] == before
    assert node.log.stat().st_size < 100_000


def test_an_api_without_a_token_warns(tmp_path: Path) -> None:
    node = start_dispatcher(tmp_path, [f"sip:127.0.0.1:{free_port()}"], "--probe", "off",
                            token="")
    try:
        assert node.call("GET", "/servers")[0] == 200
    finally:
        terminate(node.proc, timeout=3)
    assert "runs without a token" in node.log.read_text()
