"""End to end: a call transferred twice through the ACD, operator to operator.

A trunk caller (caller-talk.xml, speaking A-law until the switch hangs up) is answered
by operator 1001, whose phone (operator-refer-first.xml) REFERs them blind to 1002
(RFC 3515); 1002's phone, the same scenario, answers and REFERs them on to 1003, whose
phone (operator-answer-rtp.xml) answers, talks and hangs up. Once they answer, each
target is the call's operator in the ACD and in call control: 1002's REFER is taken
(202, NOTIFY sipfrag 200, RFC 3420), not refused. Each target's phone gets the first
offer's screen pop plus `X-Centralino-Transferred-By`, and its own media leg.

Every wait is bounded and every process is ended by PID.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from acd_helpers import (
    PASSWORDS,
    QUEUE,
    SERVICE,
    Processes,
    Sipp,
    events,
    of_kind,
    processes,
    wait_for,
    wait_registered,
)
from conftest import SCENARIOS, Switch, need, start_switch
from test_transfers import (
    AUDIO_PCAP,
    Message,
    api_state,
    diagnose,
    operator_api,
    operators_config,
    pcap_audio,
    received,
    rtp_payloads,
    sent_from,
    states,
    stop_all,
    subsequence,
    trace,
)

pytestmark = pytest.mark.e2e

OPERATORS = ("1001", "1002", "1003")
SCREEN_POP = ("Service", "Queue", "Choice", "Call-Id")  # X-Centralino-...


@pytest.fixture
def rtp() -> Iterator[dict[str, socket.socket]]:
    """Where each operator's phone receives its RTP (the port its 200s answer with)."""
    with ExitStack() as stack:
        socks = {}
        for op in OPERATORS:
            socks[op] = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            socks[op].bind(("127.0.0.1", 0))
        yield socks


def phone(
    procs: Processes, switch: Switch, operator: str, scenario: str, **keys: int | str
) -> Sipp:
    """`operator`'s SIPp phone: registers (operator.xml), answers with `scenario`;
    `keys` are its SIPp `-key`s on top of a life of 60 s."""
    args = ["-sf", str(SCENARIOS / "operator.xml"), "-oocsf", str(SCENARIOS / scenario)]
    args += ["-m", "1", "-trace_msg", "-s", operator, "-au", operator]
    args += ["-ap", PASSWORDS[operator]]
    for key, value in {"life_ms": 60000, **keys}.items():
        args += ["-key", key, str(value)]
    return procs.sipp(f"phone-{operator}", switch.sip, *args)


def refers_on(messages: list[Message]) -> list[str]:
    """A phone's transfer, in order: the REFER and BYE it sent or received (as "sent
    REFER", "got BYE"), the responses to its REFER and the NOTIFYs' sipfrag bodies."""
    seen = []
    for m in messages:
        if (
            not m.sent
            and m.first_line.startswith("SIP/2.0")
            and "REFER" in (m.header("CSeq") or "")
        ):
            seen.append(m.first_line)
        elif not m.sent and m.first_line.startswith("NOTIFY "):
            seen.append(m.body)
        elif m.first_line.startswith("BYE ") or m.first_line.startswith("REFER "):
            seen.append(("sent " if m.sent else "got ") + m.first_line.split()[0])
    return seen


def speech(sock: socket.socket) -> tuple[int, int]:
    """(RTP packets waiting on `sock`, how many of them carry the caller's A-law)."""
    spoken = pcap_audio(AUDIO_PCAP) * 2
    heard = rtp_payloads(sock)
    same = sum(1 for pt, data in heard if pt == 8 and len(data) >= 80 and data in spoken)
    return len(heard), same


def test_a_call_transferred_twice_belongs_to_each_operator_who_answers(
    tmp_path: Path, rtp: dict[str, socket.socket]
) -> None:
    """1001 → 1002 → 1003: one answer, two `transferred` facts, 1003 ends the call."""
    need("sipp")
    if not AUDIO_PCAP.exists():
        pytest.skip(f"{AUDIO_PCAP} missing (sip-tester installs it)")
    switch = start_switch(tmp_path, operators_config(tmp_path, wrapup=2.0))
    with processes(tmp_path) as procs:
        try:
            refer = "operator-refer-first.xml"
            phones = [
                phone(
                    procs, switch, "1001", refer, ring_ms=300, talk_ms=1000,
                    refer_to=f"sip:1002@{switch.sip}", rtp_port=rtp["1001"].getsockname()[1],
                ),
                phone(
                    procs, switch, "1002", refer, ring_ms=500, talk_ms=2000,
                    refer_to=f"sip:1003@{switch.sip}", rtp_port=rtp["1002"].getsockname()[1],
                ),
                phone(
                    procs, switch, "1003", "operator-answer-rtp.xml", ring_ms=500,
                    talk_ms=3000, hangup="operator", rtp_port=rtp["1003"].getsockname()[1],
                ),
            ]  # fmt: skip
            wait_registered(switch, 3)
            talk = ["-sf", str(SCENARIOS / "caller-talk.xml"), "-s", "800999001", "-m", "1"]
            talk += ["-trace_msg", "-key", "audio_pcap", str(AUDIO_PCAP)]
            citizen = procs.sipp("caller", switch.sip, *talk, timeout=60)
            every = (citizen, *phones)
            # The API follows the call from operator to operator while it is theirs.
            wait_for("1002 on call", lambda: api_state(switch, "1002", "on_call"), 20)
            (answered,) = wait_for("answered", lambda: of_kind(events(switch), "answered"), 5)
            call_id = answered.call_id
            assert operator_api(switch, "1002")["call_id"] == call_id, diagnose(switch, *every)
            wait_for("1003 on call", lambda: api_state(switch, "1003", "on_call"), 20)
            assert operator_api(switch, "1003")["call_id"] == call_id, diagnose(switch, *every)
            assert citizen.wait(40) == 0, diagnose(switch, *every)
            wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
            wait_for("1003's wrap-up", lambda: "wrap_up" in states(events(switch), "1003"), 10)
            log = events(switch)
            assert {e.call_id for e in log if e.call_id} == {call_id}, diagnose(switch)
            assert [e.operator for e in of_kind(log, "answered")] == ["1001"], diagnose(switch)
            assert [(e.operator, e.data) for e in of_kind(log, "transferred")] == [
                ("1001", {"to": "operator", "target": "1002"}),
                ("1002", {"to": "operator", "target": "1003"}),
            ], diagnose(switch)
            (ended,) = of_kind(log, "ended")
            assert (ended.operator, ended.data) == ("1003", {"by": "operator"}), diagnose(switch)
            assert subsequence(states(log, "1001"), "on_call", "wrap_up"), diagnose(switch)
            for op in ("1002", "1003"):
                assert subsequence(states(log, op), "offered", "on_call", "wrap_up"), op
            wrap_ups = {
                e.operator: e.seq
                for e in of_kind(log, "operator_state")
                if e.data.get("state") == "wrap_up"
            }
            assert wrap_ups["1001"] < wrap_ups["1002"] < wrap_ups["1003"], diagnose(switch)
            # Screen pops: each target's INVITE repeats 1001's offer and names the
            # operator who transferred; the caller's identity goes along.
            invites = {op: received(trace(tmp_path, f"phone-{op}"), "INVITE") for op in OPERATORS}
            assert [len(v) for v in invites.values()] == [1, 1, 1], invites
            offer = invites["1001"][0]
            pop = {name: offer.header(f"X-Centralino-{name}") for name in SCREEN_POP}
            choice = pop["Choice"]  # the IVR's choice, whatever it is: carried on unchanged
            assert choice is not None, offer.text
            assert pop == {"Service": SERVICE, "Queue": QUEUE, "Choice": choice, "Call-Id": call_id}
            assert offer.header("X-Centralino-Transferred-By") is None, offer.text
            identity = sent_from(trace(tmp_path, "caller"))
            for target, by in (("1002", "1001"), ("1003", "1002")):
                (invite,) = invites[target]
                assert invite.header("X-Centralino-Transferred-By") == by, invite.text
                for name, value in pop.items():
                    assert invite.header(f"X-Centralino-{name}") == value, (name, invite.text)
                assert invite.header("P-Asserted-Identity") == identity, invite.text
            # Signalling: both REFERs taken (202, NOTIFY 100 then 200), and the switch
            # hung each transferring phone up; 1003's phone hung up itself.
            for op in ("1001", "1002"):
                assert refers_on(trace(tmp_path, f"phone-{op}")) == [
                    "sent REFER",
                    "SIP/2.0 202 Accepted",
                    "SIP/2.0 100 Trying",
                    "SIP/2.0 200 OK",
                    "got BYE",
                ], (op, diagnose(switch, *every))
            assert refers_on(trace(tmp_path, "phone-1003")) == ["sent BYE"]
            # Media: each target has its own leg, and the caller's speech reached it.
            for op, least in (("1002", 20), ("1003", 50)):
                count, same = speech(rtp[op])
                assert same >= least and same >= 0.9 * count, (op, count, same)
        finally:
            stop_all(switch, procs)
