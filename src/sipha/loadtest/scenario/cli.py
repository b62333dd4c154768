"""``sipha load scenario``: run a SIPp XML scenario, as client or server.

    sipha load scenario my_call.xml 10.0.0.5:5060 -r 50 -m 1000 --inf users.csv
    sipha load scenario --sn uas --listen 127.0.0.1:5070
    sipha load scenario --sn uac 127.0.0.1:5070 -r 50 -m 50

Only the arguments live here, so that building ``sipha load``'s parser stays cheap;
:mod:`.command` loads, checks, runs and prints.
"""

from __future__ import annotations

import argparse

from sipha.loadtest.scenario.builtin import BUILTINS

__all__ = ["add_arguments", "main"]


def _duration(text: str) -> float:
    from sipha.loadtest.cli import parse_duration

    return parse_duration(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sipha load scenario`` (SIPp's option in each help text)."""
    p.add_argument("operands", nargs="*", metavar="[FILE.xml] [TARGET]",
                   help="the scenario file (unless --sn) and, for a client scenario, "
                   "the target HOST[:PORT]")
    p.add_argument("--sn", choices=BUILTINS, help="a built-in scenario, as SIPp's -sn")
    p.add_argument("--oocsf", metavar="FILE",
                   help="scenario run for requests that belong to no call (SIPp -oocsf)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="address to bind (SIPp's -i/-p; server scenarios answer here)")
    p.add_argument("--local-ip", "-i", default="127.0.0.1",
                   help="local address (SIPp -i); several, comma-separated, spread the calls "
                   "over them in turn (a socket each, or a socket per call with -t un/tn)")
    p.add_argument("--local-port", "-p", type=int, default=0,
                   help="local port (SIPp -p; default: any free port)")
    p.add_argument("--transport", "-t", choices=("u1", "un", "t1", "tn", "udp", "tcp"),
                   default="u1",
                   help="u1/udp: one UDP socket; un: one UDP socket per call; t1/tcp: TCP, "
                   "one connection per peer; tn: one TCP connection per call (SIPp -t; "
                   "default u1)")
    p.add_argument("--max-reconnect", type=int,
                   help="TCP: reopen a lost connection at most this many times, failing the "
                   "calls that were on it (SIPp -max_reconnect; default: reopened on the "
                   "next message, calls kept)")
    p.add_argument("--reconnect-sleep", type=_duration, default=1.0,
                   help="TCP: wait this long before reconnecting (SIPp -reconnect_sleep; "
                   "default 1s)")
    p.add_argument("--reconnect-close", choices=("true", "false"), default="true",
                   help="TCP, with --max-reconnect: fail the calls of a lost connection "
                   "(SIPp -reconnect_close; default true)")
    p.add_argument("--rate", "-r", type=float, default=10.0, help="calls per second (SIPp -r)")
    p.add_argument("--max-calls", "-m", type=int, help="stop after this many calls (SIPp -m)")
    p.add_argument("--rate-period", type=_duration, default=1.0,
                   help="--rate calls every this long (SIPp -rp; default 1s)")
    p.add_argument("--rate-increase", type=float, default=0.0,
                   help="raise the rate by this much every --rate-interval (SIPp -rate_increase)")
    p.add_argument("--rate-interval", type=_duration, default=60.0,
                   help="how often the rate goes up (SIPp -rate_interval; default 60s)")
    p.add_argument("--rate-max", type=float,
                   help="the rate stops at this; the run stops starting calls at the increase "
                   "past it (SIPp -rate_max)")
    p.add_argument("--no-rate-quit", action="store_true",
                   help="keep running at --rate-max instead (SIPp -no_rate_quit)")
    p.add_argument("--timeout", type=_duration,
                   help="end the run after this long, calls in progress or not (SIPp -timeout)")
    p.add_argument("--limit", "-l", type=int, help="calls in progress at most (SIPp -l)")
    p.add_argument("--duration", type=_duration, help="stop starting calls after this long")
    p.add_argument("--users", type=int, default=0,
                   help="closed loop: this many users, each starting its next call when its "
                   "last ends (SIPp -users)")
    p.add_argument("--pause", type=_duration, default=0.0,
                   help="length of a <pause/> without attributes (SIPp -d; default 0)")
    p.add_argument("--service", "-s", default="service", help="[service] (SIPp -s)")
    p.add_argument("--media-ip", default="", help="[media_ip] (SIPp -mi; default: local ip)")
    p.add_argument("--media-port", type=int, default=6000, help="[media_port] (SIPp -mp)")
    p.add_argument("--inf", action="append", default=[], metavar="FILE",
                   help="injection file, repeatable (SIPp -inf)")
    p.add_argument("--infindex", action="append", nargs=2, default=[],
                   metavar=("FILE", "FIELD"), help="index FILE by field FIELD (SIPp -infindex)")
    p.add_argument("--recv-timeout", type=_duration, default=0.0,
                   help="fail a call waiting longer at a recv (SIPp -recv_timeout)")
    p.add_argument("--max-retrans", type=int, default=7,
                   help="UDP retransmissions of non-INVITE messages (SIPp -max_retrans)")
    p.add_argument("--max-invite-retrans", type=int, default=5,
                   help="UDP retransmissions of INVITEs (SIPp -max_invite_retrans)")
    p.add_argument("--base-cseq", type=int, default=1, help="first [cseq] (SIPp -base_cseq)")
    p.add_argument("--auth-user", default="", help="[authentication] user (SIPp -au)")
    p.add_argument("--auth-password", default="password",
                   help="[authentication] password (SIPp -ap)")
    p.add_argument("--default-behaviors", default="all", metavar="LIST",
                   help="SIPp -default_behaviors: all, none, or bye (clean up aborted calls), "
                   "abortunexp (abort calls on unexpected messages), pingreply (answer PING); "
                   "a leading - removes one, e.g. all,-bye (default all)")
    p.add_argument("--no-default-behaviors", action="store_true",
                   help="the same as --default-behaviors none")
    p.add_argument("--auto-answer", "-aa", action="store_true",
                   help="answer unexpected INFO, NOTIFY and UPDATE 200 and go on (SIPp -aa)")
    p.add_argument("--allow-exec", action="store_true",
                   help="allow <exec command=...> (it runs shell commands: off by default)")
    p.add_argument("--drain-timeout", type=_duration, default=40.0,
                   help="after the last call started, how long calls may finish (default 40s)")
    p.add_argument("--csv", metavar="FILE",
                   help="statistics rows with all of SIPp's -trace_stat columns, in its order")
    p.add_argument("--trace-counts", metavar="FILE",
                   help="per-step message counts as SIPp's -trace_counts file")
    p.add_argument("--trace-msg", metavar="FILE",
                   help="every message sent and received (SIPp -trace_msg)")
    p.add_argument("--trace-err", metavar="FILE",
                   help="every unexpected message, with the step expected (SIPp -trace_err)")
    p.add_argument("--trace-rtt", metavar="FILE",
                   help="every rtd sample: Date_ms;response_time_ms;rtd_no (SIPp -trace_rtt)")
    p.add_argument("--trace-screen", metavar="FILE",
                   help="the final screen, written to FILE too (SIPp -trace_screen)")
    p.add_argument("--cid-str", default="%u-%p@%s",
                   help="Call-ID of client calls, with u, p and s after a percent sign for "
                   "the call number, the pid and the local ip (SIPp -cid_str; "
                   "default: number-pid@ip)")
    p.add_argument("--stat-period", type=_duration, default=1.0,
                   help="seconds between statistics rows (SIPp -fd; default 1s)")
    p.add_argument("--agents", type=int, default=0, metavar="K",
                   help="run a client scenario on K local agent processes under a controller: "
                   "the files are shipped to them, the injection rows split between them, "
                   "the statistics merged (default 0: in this process)")
    p.add_argument("--agent-log", metavar="FILE", help="--agents: the agents' log output")
    p.add_argument("--expect", type=int, default=0, metavar="N",
                   help="be the controller of N agents started elsewhere (`sipha load agent "
                   "--controller --bind`); the rate, calls, users and rows are split among them")
    p.add_argument("--bind", default="127.0.0.1:5555", metavar="HOST:PORT",
                   help="--expect: the address the agents connect to (default 127.0.0.1:5555)")
    p.add_argument("--keys", metavar="DIR",
                   help="--expect: CurveZMQ keys from `sipha load keys DIR` (required unless "
                   "--bind is loopback)")
    p.add_argument("--join-timeout", type=_duration, default=60.0,
                   help="--expect: how long to wait for the agents (default 60s)")
    p.add_argument("--jsonl", metavar="FILE",
                   help="--agents/--expect: the merged per-second rows as JSON lines")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: from the OS)")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-step table at the end")


def main(args: argparse.Namespace) -> int:
    from sipha.loadtest.scenario.command import run_command

    return run_command(args)
