"""Reload re-reads every source the dispatcher started from: the Kamailio list or TOML file,
the flags that override it, and the ``--server`` flags -- a flag-given server survives a
reload. Kamailio flags set a listed server's initial state, and bit 8 its probing: a real
sipha server flagged inactive + probing is probed back to active and then takes the calls,
while one flagged inactive without probing stays out.
"""

from __future__ import annotations

import time
from pathlib import Path

from sipha.common.process import free_port, terminate
from tests.dispatcher.cluster import Node, spawn_server, start_dispatcher, wait_server
from tests.sipp import run_uac

TOKEN = "t0ken"


def _servers(node: Node) -> dict[str, dict[str, object]]:
    return {s["id"]: s for s in node.get("/servers", TOKEN)["servers"]}


def _reload(node: Node) -> dict[str, list[str]]:
    status, body = node.call("POST", "/reload", {}, TOKEN)
    assert status == 200, body
    return {k: sorted(v) for k, v in body.items()}


def test_reload_with_a_dispatcher_list_keeps_the_server_flags(tmp_path: Path) -> None:
    a, b, c, d = (f"sip:127.0.0.1:{free_port()}" for _ in range(4))
    lst = tmp_path / "dispatcher.list"
    lst.write_text(f"1 {a} 0\n1 {b} 1\n2 {d} 0\n")  # set 2 is not ours
    node = start_dispatcher(
        tmp_path, [f"{c};weight=2"], "--dispatcher-list", str(lst), "--probe", "off",
        token=TOKEN,
    )
    try:
        got = _servers(node)
        assert {k: (s["state"], s["weight"]) for k, s in got.items()} == {
            a: ("active", 1), b: ("inactive", 1), c: ("active", 2)
        }
        lst.write_text(f"1 {a} 0 0 weight=4\n1 {d} 4\n")  # b gone, d added disabled
        assert _reload(node) == {"added": [d], "removed": [b], "reweighted": [a]}
        got = _servers(node)
        assert {k: (s["state"], s["weight"]) for k, s in got.items()} == {
            a: ("active", 4), c: ("active", 2), d: ("disabled", 1)
        }
        # Reloading the same sources again changes nothing.
        assert _reload(node) == {"added": [], "removed": [], "reweighted": []}
        # A broken file is refused with the line, and the running set is left as it was.
        lst.write_text("1\n")
        status, body = node.call("POST", "/reload", {}, TOKEN)
        assert status == 400
        assert "line 1" in body["error"]
        assert set(_servers(node)) == {a, c, d}
    finally:
        terminate(node.proc, timeout=3)


def test_reload_with_a_config_file_keeps_flag_servers_and_flag_overrides(
    tmp_path: Path,
) -> None:
    a, b, c, e = (f"sip:127.0.0.1:{free_port()}" for _ in range(4))
    lst = tmp_path / "dispatcher.list"
    lst.write_text(f"1 {b}\n")
    toml = tmp_path / "dispatcher.toml"
    toml.write_text(f'[probe]\nenabled = false\n[[servers]]\nuri = "{a}"\n')
    # --dispatcher-list is a flag over the file, so a reload must read that list too.
    node = start_dispatcher(
        tmp_path, [c], "--config", str(toml), "--dispatcher-list", str(lst), token=TOKEN
    )
    try:
        assert set(_servers(node)) == {a, b, c}
        toml.write_text(
            f'[probe]\nenabled = false\n[[servers]]\nuri = "{a}"\nweight = 3\n'
            f'[[servers]]\nuri = "{e}"\n'
        )
        assert _reload(node) == {"added": [e], "removed": [], "reweighted": [a]}
        got = _servers(node)
        assert {k: s["weight"] for k, s in got.items()} == {a: 3, b: 1, c: 1, e: 1}
        assert not any(s["probing"] for s in got.values())
    finally:
        terminate(node.proc, timeout=3)


def test_flagged_inactive_probed_server_comes_back_and_takes_the_calls(
    tmp_path: Path,
) -> None:
    server = spawn_server(tmp_path, 0)
    node: Node | None = None
    try:
        wait_server(server)
        silent = f"sip:127.0.0.1:{free_port()}"
        lst = tmp_path / "dispatcher.list"
        # 9 = inactive + probing: probed back; 1 = inactive, not probed: stays out.
        lst.write_text(f"1 {server.uri} 9\n1 {silent} 1\n")
        node = start_dispatcher(
            tmp_path, [], "--dispatcher-list", str(lst), "--algorithm", "rr", "--probe", "on",
            token=TOKEN,
        )
        got = _servers(node)
        assert (got[silent]["state"], got[silent]["probing"]) == ("inactive", False)
        assert got[server.uri]["probing"] is True
        deadline = time.monotonic() + 10  # inactive_threshold (2) probes, 0.5 s apart
        while _servers(node)[server.uri]["state"] != "active":
            assert time.monotonic() < deadline, node.log.read_text()[-2000:]
            time.sleep(0.1)
        result = run_uac(f"127.0.0.1:{node.sip_port}", rate=50, calls=20, timeout=30)
        assert (result.successful, result.failed) == (20, 0), result.stdout
        got = _servers(node)
        assert got[server.uri]["calls_total"] == 20
        assert (got[silent]["state"], got[silent]["calls_total"]) == ("inactive", 0)
    finally:
        if node is not None:
            terminate(node.proc, timeout=3)
        server.kill()
