"""Each action does what SIPp's reference says, seen through the message a scenario sends
afterwards (variables rendered with ``[$name]``) and the engine's logs and commands."""

from __future__ import annotations

import re
from pathlib import Path

from sipha.loadtest.scenario.injection import load_injection
from tests.loadtest.scenario.helpers import engine

SEND = """<send><![CDATA[
  OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
  Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
  From: <sip:a@b>;tag=[call_number]
  To: <sip:[service]@[remote_ip]>
  Call-ID: [call_id]
  CSeq: [cseq] OPTIONS
  {headers}
  Content-Length: [len]
]]></send>"""


def _sent_headers(xml_actions: str, headers: str, *, files: list[object] | None = None,
                  **config: object) -> tuple[dict[str, str], object]:
    xml = f"<scenario><nop><action>{xml_actions}</action></nop>" \
          f"{SEND.format(headers=headers)}</scenario>"
    e = engine(xml, files=files, **config)  # type: ignore[arg-type]
    e.start_call(12.5)
    out = e.take_outgoing()
    assert len(out) == 1, e.stats.failed
    lines = out[0].data.decode().split("\r\n")
    return {k: v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}, e


def test_arithmetic_and_conversions() -> None:
    h, _ = _sent_headers(
        """<assign assign_to="a" value="6"/>
           <add assign_to="a" value="4"/>
           <multiply assign_to="a" value="3"/>
           <divide assign_to="a" value="4"/>
           <assignstr assign_to="s" value="7.25"/>
           <todouble assign_to="d" variable="s"/>
           <add assign_to="d" variable="a"/>
           <assign assign_to="copy" variable="d"/>""",
        "X-A: [$a]\n  X-D: [$d]\n  X-Copy: [$copy]\n  X-S: [$s]")
    assert (h["X-A"], h["X-D"], h["X-Copy"], h["X-S"]) == ("7.500000", "14.750000",
                                                            "14.750000", "7.25")


def test_test_and_strcmp_give_conditions() -> None:
    h, _ = _sent_headers(
        """<assign assign_to="n" value="5"/>
           <test assign_to="small" variable="n" compare="less_than" value="10"/>
           <test assign_to="big" variable="n" compare="greater_than_equal" value="10"/>
           <assignstr assign_to="x" value="abc"/>
           <strcmp assign_to="same" variable="x" value="abc"/>
           <strcmp assign_to="after" variable="x" value="abb"/>""",
        "X-Small: [$small]\n  X-Big: [$big]\n  X-Same: [$same]\n  X-After: [$after]")
    assert (h["X-Small"], h["X-Big"], h["X-Same"], h["X-After"]) == (
        "true", "false", "0.000000", "1.000000")


def test_ereg_on_a_variable_with_groups() -> None:
    h, _ = _sent_headers(
        """<assignstr assign_to="uri" value="sip:alice@example.com:5070"/>
           <ereg regexp="sip:([a-z]+)@([a-z.]+)" search_in="var" variable="uri"
                 assign_to="all,user,host"/>""",
        "X-User: [$user]\n  X-Host: [$host]\n  X-All: [$all]")
    assert (h["X-User"], h["X-Host"], h["X-All"]) == ("alice", "example.com",
                                                      "sip:alice@example.com")


def test_ereg_check_it_fails_the_call() -> None:
    xml = """<scenario><nop><action>
        <assignstr assign_to="v" value="nothing here"/>
        <ereg regexp="[0-9]+" search_in="var" variable="v" check_it="true" assign_to="n"/>
      </action></nop></scenario>"""
    e = engine(xml)
    e.start_call(0.0)
    assert dict(e.stats.failed) == {"regexp_doesnt_match": 1}


def test_gettimeofday_sample_log_and_warning() -> None:
    h, e = _sent_headers(
        """<gettimeofday assign_to="sec,usec"/>
           <sample assign_to="delay" distribution="fixed" value="250"/>
           <log message="call [call_number] delay [$delay]"/>
           <warning message="careful"/>""",
        "X-Sec: [$sec]\n  X-Usec: [$usec]\n  X-Delay: [$delay]", wall_offset=1000.0)
    assert (h["X-Sec"], h["X-Usec"], h["X-Delay"]) == ("1012.000000", "500000.000000",
                                                       "250.000000")
    assert e.logs == ["call 1 delay 250.000000", "warning: careful"]  # type: ignore[attr-defined]
    assert e.stats.warnings == 1  # type: ignore[attr-defined]


def test_setdest_sends_the_next_message_elsewhere() -> None:
    xml = f"""<scenario><nop><action><setdest host="127.0.0.9" port="5099" protocol="udp"/>
      </action></nop>{SEND.format(headers="")}</scenario>"""
    e = engine(xml)
    e.start_call(0.0)
    out = e.take_outgoing()
    assert out[0].dest == ("127.0.0.9", 5099)
    assert out[0].data.startswith(b"OPTIONS sip:service@127.0.0.9:5099 SIP/2.0")


def test_insert_replace_and_lookup_on_an_injection_file(tmp_path: Path) -> None:
    f = tmp_path / "db.csv"
    f.write_text("SEQUENTIAL\nalice;1\nbob;2\n")
    inj = load_injection(f)
    inj.build_index(0)
    h, _ = _sent_headers(
        f"""<insert file="{f}" value="carol;3"/>
            <replace file="{f}" line="0" value="alice;10"/>
            <lookup assign_to="row" file="{f}" key="carol"/>
            <lookup assign_to="none" file="{f}" key="dave"/>""",
        f"X-Row: [$row]\n  X-None: [$none]\n  X-Carol: [field1 file={f} line=2]\n"
        f"  X-Alice: [field1 file={f} line=0]", files=[inj])
    assert (h["X-Row"], h["X-None"], h["X-Carol"], h["X-Alice"]) == (
        "2.000000", "-1.000000", "3", "10")


def test_keywords_of_a_call() -> None:
    h, _ = _sent_headers("", "X-Cseq: [cseq] [cseq+1]\n  X-Branch: [branch] [branch-1]\n"
                         "  X-Num: [call_number] [call_id]\n  X-Tick: [clock_tick]\n"
                         "  X-Types: [local_ip_type] [media_ip]:[media_port] [transport]\n"
                         "  X-Users: [users] [userid] [pid]", users=0)
    assert h["X-Cseq"] == "1 2"
    assert h["X-Branch"] == "z9hG4bK-7-1-1 z9hG4bK-7-1-0"
    assert h["X-Num"] == "1 1-7@127.0.0.1"
    assert h["X-Tick"] == "12500"  # ms since the run's start (0) at the call's now
    assert h["X-Types"] == "4 127.0.0.1:6000 UDP"
    assert h["X-Users"] == "0 0 7"
    assert re.fullmatch(r"\d+", h["Content-Length"])


def test_exec_runs_commands_only_when_allowed(tmp_path: Path) -> None:
    import asyncio

    from sipha.loadtest.scenario.context import RunConfig
    from sipha.loadtest.scenario.loader import load_scenario_text
    from sipha.loadtest.scenario.runner import RunBounds, run_scenario

    marker = tmp_path / "ran"
    xml = f'<scenario><nop><action><exec command="echo [call_number] >> {marker}"/>' \
          "</action></nop></scenario>"
    scenario = load_scenario_text(xml, file="exec.xml", allow_exec=True)
    assert scenario.client  # a scenario not starting with a recv places calls

    async def go() -> None:
        async with asyncio.timeout(30):
            await run_scenario(scenario, RunConfig(), RunBounds(rate=50, max_calls=3))

    asyncio.run(go())
    assert sorted(marker.read_text().split()) == ["1", "2", "3"]
