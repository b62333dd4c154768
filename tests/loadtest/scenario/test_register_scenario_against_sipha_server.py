"""A REGISTER scenario with per-user credentials from an injection file, against a sipha
server holding those users: every REGISTER is challenged (401) and the scenario answers with
``[authentication]`` from its line; SEQUENTIAL and USER modes, no authentication failure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.injection import load_injection
from sipha.loadtest.scenario.loader import load_scenario_text
from sipha.loadtest.scenario.runner import RunBounds, run_scenario
from tests.server.helpers import add_user, server

REGISTER = """<send retrans="500"><![CDATA[
  REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
  Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
  From: <sip:[field0]@[remote_ip]>;tag=[call_number]
  To: <sip:[field0]@[remote_ip]>
  Call-ID: [call_id]
  CSeq: [cseq] REGISTER
  Contact: <sip:[field0]@[local_ip]:[local_port]>
  {auth}
  Expires: 60
  Content-Length: 0
]]></send>"""
SCENARIO = f"""<scenario name="register with digest">
  {REGISTER.format(auth="")}
  <recv response="401" auth="true"/>
  {REGISTER.format(auth="[authentication username=[field0] password=[field1]]")}
  <recv response="200" rtd="true"/>
</scenario>"""
USERS = {"alice": "a-secret", "bob": "b-secret", "carol": "c-secret"}


@pytest.mark.parametrize(("mode", "users", "calls"), [("SEQUENTIAL", 0, 6), ("USER", 3, 6)])
def test_register_with_injected_credentials(tmp_path: Path, mode: str, users: int,
                                            calls: int) -> None:
    store = f"sqlite:{tmp_path / 'users.db'}"
    for name, password in USERS.items():
        add_user(store, name, password)
    inf = tmp_path / "users.csv"
    inf.write_text(mode + "\n" + "".join(f"{n};{p}\n" for n, p in USERS.items()))
    scenario = load_scenario_text(SCENARIO, file="register.xml")
    with server(tmp_path, store=store) as srv:

        async def go() -> ScenarioEngine:
            async with asyncio.timeout(60):
                return await run_scenario(
                    scenario, RunConfig(remote_port=srv.port, users=users),
                    RunBounds(rate=20, max_calls=calls), files=[load_injection(inf)], seed=5)

        engine = asyncio.run(go())
        status = srv.status()
    s = engine.stats
    assert (s.created, s.successful, s.failed_calls) == (calls, calls, 0), s.failed
    assert [st.messages for st in s.steps] == [calls] * 4  # each REGISTER challenged once
    registrar = status["registrar"]
    assert registrar["registrations"] == calls  # type: ignore[index]
    assert registrar["auth_failures"] == 0  # type: ignore[index]
