"""Injection files: SEQUENTIAL and USER modes, PRINTF expansion, ``lookup`` through
``--infindex``; a REGISTER scenario answers a 401 with ``[authentication]`` built from the
user's line, and the server side checks it with ``verifyauth``."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from sipha.loadtest.scenario.check import check_injections
from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.injection import InjectionMode, load_injection
from tests.loadtest.scenario.helpers import engine, pump, scenario

REGISTER = """<send retrans="500"><![CDATA[
  REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
  Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
  From: <sip:[field0]@example.com>;tag=[call_number]
  To: <sip:[field0]@example.com>
  Call-ID: [call_id]
  CSeq: [cseq] REGISTER
  Contact: <sip:[field0]@[local_ip]:[local_port]>
  {auth}
  Expires: 60
  Content-Length: 0
]]></send>"""

CLIENT = f"""<scenario name="register with digest">
  {REGISTER.format(auth="")}
  <recv response="401" auth="true"/>
  {REGISTER.format(auth="[authentication username=[field0] password=[field1]]")}
  <recv response="200"/>
</scenario>"""

ANSWER = """<send><![CDATA[
  SIP/2.0 {status}
  [last_Via:]
  [last_From:]
  [last_To:];tag=reg[call_number]
  [last_Call-ID:]
  [last_CSeq:]
  {extra}
  Content-Length: 0
]]></send>"""

SERVER = f"""<scenario name="registrar">
  <recv request="REGISTER"/>
  {ANSWER.format(status="401 Unauthorized",
                 extra='WWW-Authenticate: Digest realm="example.com", nonce="n[call_number]"')}
  <recv request="REGISTER">
    <action>
      <ereg regexp="sip:([a-z0-9]+)@" search_in="hdr" header="To" assign_to="to,user"/>
      <lookup assign_to="row" file="secrets.csv" key="[$user]"/>
      <verifyauth assign_to="ok" username="[$user]"
                  password="[field1 file=secrets.csv line=[$row]]"/>
    </action>
  </recv>
  <nop next="accept" test="ok"/>
  {ANSWER.format(status="403 Forbidden", extra="")}
  <nop next="end"/>
  <label id="accept"/>
  {ANSWER.format(status="200 OK", extra="")}
  <label id="end"/>
</scenario>"""


def _users(path: Path, mode: str) -> Path:
    path.write_text(f"{mode}\n# user;password\nalice;a-secret\nbob;b-secret\ncarol;c-secret\n")
    return path


def _sent_users(sent: list[bytes]) -> list[str]:
    return [m.group(1).decode() for d in sent
            if (m := re.search(rb"From: <sip:([a-z]+)@", d)) and d.startswith(b"REGISTER")]


def _run(client_files: list[Path], server_file: Path, *, users: int, calls: int,
         wrong: bool = False) -> tuple[list[str], int, int, dict[str, int]]:
    srv_file = load_injection(server_file)
    if wrong:
        srv_file.replace(1, "bob;not-b-secret")
    srv_file.build_index(0)
    files = [load_injection(p) for p in client_files]
    client = engine(CLIENT, files=files, users=users)
    check_injections(client.scenario, files, users=users)
    server = engine(SERVER, port=5062, remote=5061, files=[srv_file])
    registers: list[bytes] = []
    for _ in range(calls):
        assert client.start_call(0.0)
        for o in client.take_outgoing():
            registers.append(o.data)
            server.receive(o.data, ("127.0.0.1", 5061), 0.0)
        pump(client, server, until=0.05)
    return (_sent_users(registers), client.stats.successful, server.stats.successful,
            dict(client.stats.failed))


def test_sequential_rows_in_order_and_digest_accepted(tmp_path: Path) -> None:
    users = _users(tmp_path / "users.csv", "SEQUENTIAL")
    secrets = _users(tmp_path / "secrets.csv", "SEQUENTIAL")
    first, ok, server_ok, failed = _run([users], secrets, users=0, calls=4)
    assert first == ["alice", "bob", "carol", "alice"]
    assert (ok, server_ok, failed) == (4, 4, {})


def test_wrong_password_takes_the_403_path(tmp_path: Path) -> None:
    users = _users(tmp_path / "users.csv", "SEQUENTIAL")
    secrets = _users(tmp_path / "secrets.csv", "SEQUENTIAL")
    first, ok, server_ok, failed = _run([users], secrets, users=0, calls=3, wrong=True)
    assert first == ["alice", "bob", "carol"]
    assert (ok, failed) == (2, {"unexpected": 1})  # bob got a 403 where 200 was expected
    assert server_ok == 3


def test_user_mode_gives_each_user_its_line(tmp_path: Path) -> None:
    users = _users(tmp_path / "users.csv", "USER")
    secrets = _users(tmp_path / "secrets.csv", "SEQUENTIAL")
    first, ok, _, failed = _run([users], secrets, users=3, calls=3)
    assert first == ["alice", "bob", "carol"]  # users 1, 2, 3 -> lines 0, 1, 2
    assert (ok, failed) == (3, {})
    # Closed loop: user 1's call ended first, so user 1 places the next call.
    first, ok, _, _ = _run([users], secrets, users=3, calls=5)
    assert first == ["alice", "bob", "carol", "alice", "bob"]


def test_user_mode_needs_users_and_enough_lines(tmp_path: Path) -> None:
    f = load_injection(_users(tmp_path / "u.csv", "USER"))
    assert f.mode is InjectionMode.USER
    with pytest.raises(ScenarioError, match="USER mode needs --users"):
        check_injections(scenario(CLIENT), [f], users=0)
    with pytest.raises(ScenarioError, match="USER mode: 4 users but 3 lines"):
        check_injections(scenario(CLIENT), [f], users=4)


def test_field_beyond_the_line_is_refused_before_the_run(tmp_path: Path) -> None:
    f = tmp_path / "one.csv"
    f.write_text("SEQUENTIAL\nalice\n")
    with pytest.raises(ScenarioError, match=r"\[field1\]: no line of .* has 2 fields") as e:
        check_injections(scenario(CLIENT), [load_injection(f)], users=0)
    assert e.value.line == 23  # the line of [authentication ... password=[field1]]


def test_printf_expands_virtual_lines(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("RANDOM,PRINTF=100,PRINTFMULTIPLE=2,PRINTFOFFSET=1000\nuser%04d;pw%d\n")
    inj = load_injection(f)
    assert len(inj) == 100
    assert inj.fields(0) == ["user1000", "pw1000"]
    assert inj.fields(99) == ["user1198", "pw1198"]
    rng = random.Random(3)
    picks = {inj.pick(rng=rng, userid=0) for _ in range(2000)}
    assert picks == set(range(100))


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty injection file"),
    ("ORDERED\na;b\n", "expected SEQUENTIAL, RANDOM or USER"),
    ("SEQUENTIAL,PRINTF=x\na\n", "PRINTF='x' is not an integer"),
    ("SEQUENTIAL,COLOR=3\na\n", "unknown injection option 'COLOR=3'"),
    ("SEQUENTIAL\n", "no data lines"),
])
def test_malformed_injection_files(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_injection(f)
