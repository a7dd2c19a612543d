"""End to end: an operator's SIPp phone answers a caller and transfers it blind with
REFER (RFC 3515) to a referent's number; the switch dials the referent through the
trunk (a SIPp UAS, sipp-scenarios/referent.xml) and bridges the caller to it.

The trunk here is 127.0.0.2: the caller calls from there, and the referent listens on
127.0.0.2:5060 (the switch dials referents at the calling trunk's host, port 5060).
Every wait is bounded and every process is ended by PID.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from acd_helpers import (
    PASSWORDS,
    Processes,
    Sipp,
    events,
    of_kind,
    processes,
    wait_for,
    wait_registered,
    write_config,
)
from conftest import (
    SCENARIOS,
    SipPeer,
    SipResponse,
    Switch,
    free_udp_port,
    need,
    start_switch,
    stop_process,
)

pytestmark = pytest.mark.e2e

TRUNK_HOST = "127.0.0.2"
REFERENT_NUMBER = "0461999999"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    need("sipp")
    with processes(tmp_path) as p:
        yield p


def trunk_port_free() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((TRUNK_HOST, 5060))
        except OSError:
            return False
    return True


def serve(tmp: Path) -> Switch:
    """The ACD test configuration with 127.0.0.2 as one more trunk address."""
    path = write_config(tmp, ring_timeout=5.0)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["trunks"][0]["addresses"].append(TRUNK_HOST)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return start_switch(tmp, path)


def sipp_at(procs: Processes, name: str, host: str, port: int, *args: str) -> Sipp:
    """A SIPp bound to `host:port`, ended by PID with the test's other processes."""
    cmd = [need("sipp"), *args, "-i", host, "-p", str(port), "-mp", str(free_udp_port())]
    cmd += ["-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-trace_msg"]
    folder = procs.tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "sipp.out"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    sipp = Sipp(name, proc, log_path)
    procs.started.append(sipp)
    return sipp


def diagnose(switch: Switch, *sipps: Sipp) -> str:
    lines = [f"{e.seq} {e.kind} {e.call_id} {e.operator} {e.data}" for e in events(switch)]
    tails = "".join(f"\n--- {s.name} ---\n{s.output()[-1500:]}" for s in sipps)
    return "\n".join(lines) + f"\n--- switch ---\n{switch.log()[-3000:]}" + tails


def refer_scene(
    procs: Processes,
    switch: Switch,
    *,
    referent_ring_ms: int,
    life_ms: int,
    talk_ms: int,
    wait_ms: int,
) -> tuple[Sipp, Sipp, Sipp]:
    """A referent UAS on the trunk, operator 1001 answering and then REFERring the
    caller to the referent's number, and a trunk caller who hangs up after `wait_ms`."""
    referent = sipp_at(
        procs, "referent", TRUNK_HOST, 5060,
        "-sf", str(SCENARIOS / "referent.xml"), "-m", "1",
        "-key", "ring_ms", str(referent_ring_ms),
    )  # fmt: skip
    phone_args = ["-sf", str(SCENARIOS / "operator.xml")]
    phone_args += ["-oocsf", str(SCENARIOS / "operator-refer.xml"), "-m", "1"]
    phone_args += ["-s", "1001", "-au", "1001", "-ap", PASSWORDS["1001"]]
    phone_args += ["-key", "life_ms", str(life_ms), "-key", "ring_ms", "300"]
    phone_args += ["-key", "talk_ms", str(talk_ms)]
    phone_args += ["-key", "refer_to", f"sip:{REFERENT_NUMBER}@{TRUNK_HOST}"]
    phone = sipp_at(procs, "phone", "127.0.0.1", free_udp_port(), switch.sip, *phone_args)
    wait_registered(switch, 1)
    caller = sipp_at(
        procs, "caller", TRUNK_HOST, free_udp_port(), switch.sip,
        "-sf", str(SCENARIOS / "caller-abandon.xml"), "-s", "800999001", "-m", "1",
        "-key", "wait_ms", str(wait_ms),
    )  # fmt: skip
    return referent, phone, caller


def test_operator_refers_the_caller_to_a_referent_through_the_trunk(
    tmp_path: Path, procs: Processes
) -> None:
    if not trunk_port_free():
        pytest.skip(f"{TRUNK_HOST}:5060 is taken")
    switch = serve(tmp_path)
    try:
        referent, phone, caller = refer_scene(
            procs, switch, referent_ring_ms=500, life_ms=30000, talk_ms=1000, wait_ms=6000
        )
        assert caller.wait(30) == 0, diagnose(switch, caller, phone, referent)
        assert referent.wait(15) == 0, diagnose(switch, caller, phone, referent)
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        log = events(switch)
        moved = [e for e in of_kind(log, "transferred") if e.data.get("to")]
        assert [e.data for e in moved] == [{"to": "referent", "target": REFERENT_NUMBER}]
        assert moved[0].operator == "1001"
        dispositions = [e.data.get("disposition") for e in of_kind(log, "disposition")]
        assert dispositions == ["escalated"], diagnose(switch)
        (ended,) = of_kind(log, "ended")
        assert ended.data == {"by": "caller"}
        # The phone saw the whole REFER exchange, in order (its SIPp message trace).
        (trace,) = (tmp_path / "phone").glob("*_messages.log")
        assert in_order(
            trace.read_text(errors="replace"),
            "REFER sip:", "SIP/2.0 202 Accepted",
            "NOTIFY sip:", "active;expires=60", "SIP/2.0 100 Trying",
            "NOTIFY sip:", "terminated;reason=noresource", "SIP/2.0 200 OK",
            "BYE sip:",
        ), trace.read_text(errors="replace")[-4000:]  # fmt: skip
    finally:
        stop_process(switch.process)
        for sipp in (s for s in procs.started if s.process.poll() is None):
            stop_process(sipp.process)


def in_order(text: str, *parts: str) -> bool:
    """Each part occurs in `text` after the previous one."""
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return True


def test_a_referent_who_does_not_answer_sends_the_caller_back_to_the_operator(
    tmp_path: Path, procs: Processes
) -> None:
    """transfer_timeout is 20 s: the referent rings on, gets our CANCEL, the operator a
    NOTIFY 408 and the caller back; the caller hangs up later, which BYEs the operator."""
    if not trunk_port_free():
        pytest.skip(f"{TRUNK_HOST}:5060 is taken")
    switch = serve(tmp_path)
    try:
        referent, phone, caller = refer_scene(
            procs, switch, referent_ring_ms=40000, life_ms=45000, talk_ms=500, wait_ms=26000
        )
        assert caller.wait(45) == 0, diagnose(switch, caller, phone, referent)
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        log = events(switch)
        assert [e for e in of_kind(log, "transferred") if e.data] == [], diagnose(switch)
        assert [e.data for e in of_kind(log, "ended")] == [{"by": "caller"}]
        (trace,) = (tmp_path / "phone").glob("*_messages.log")
        text = trace.read_text(errors="replace")
        assert in_order(
            text, "SIP/2.0 202 Accepted", "SIP/2.0 100 Trying",
            "terminated;reason=noresource", "SIP/2.0 408 Request Timeout", "BYE sip:",
        ), text[-4000:]  # fmt: skip
        (ref_trace,) = (tmp_path / "referent").glob("*_messages.log")
        assert "CANCEL sip:" in ref_trace.read_text(errors="replace")
    finally:
        stop_process(switch.process)
        for sipp in (s for s in procs.started if s.process.poll() is None):
            stop_process(sipp.process)


def test_operator_hold_and_unhold_reach_the_caller_as_our_reinvites(
    tmp_path: Path, procs: Processes
) -> None:
    """The operator's phone holds (sendonly) and resumes (sendrecv); the trunk caller gets
    our re-INVITEs (sendonly, then sendrecv) in between, then the switch's BYE."""
    switch = start_switch(tmp_path, write_config(tmp_path, ring_timeout=5.0))
    try:
        phone_args = ["-sf", str(SCENARIOS / "operator.xml")]
        phone_args += ["-oocsf", str(SCENARIOS / "operator-hold.xml"), "-m", "1"]
        phone_args += ["-s", "1001", "-au", "1001", "-ap", PASSWORDS["1001"]]
        phone_args += ["-key", "life_ms", "30000", "-key", "ring_ms", "300"]
        phone_args += ["-key", "talk_ms", "700", "-key", "hold_ms", "1000"]
        phone = sipp_at(procs, "phone", "127.0.0.1", free_udp_port(), switch.sip, *phone_args)
        wait_registered(switch, 1)
        caller = sipp_at(
            procs, "caller", "127.0.0.1", free_udp_port(), switch.sip,
            "-sf", str(SCENARIOS / "operator-hold-caller.xml"), "-s", "800999001", "-m", "1",
        )  # fmt: skip
        assert caller.wait(30) == 0, diagnose(switch, caller, phone)
        (trace,) = (tmp_path / "phone").glob("*_messages.log")
        text = trace.read_text(errors="replace")
        assert in_order(
            text, "a=sendonly", "SIP/2.0 200", "a=recvonly", "a=sendrecv", "SIP/2.0 200",
            "a=sendrecv", "BYE sip:",
        ), text[-4000:]  # fmt: skip
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        assert [e.data for e in of_kind(events(switch), "ended")] == [{"by": "operator"}]
    finally:
        stop_process(switch.process)
        for sipp in (s for s in procs.started if s.process.poll() is None):
            stop_process(sipp.process)


def in_dialog_from(peer: SipPeer, ok: SipResponse, method: str, cseq: int, body: str = "") -> bytes:
    """A request from the caller's side of the dialog `ok` (a 200 to its INVITE) made."""
    me = f"{peer.host}:{peer.port}"
    lines = [
        f"{method} sip:centralino@{peer.target[0]}:{peer.target[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {me};branch=z9hG4bK-late-{method}-{cseq};rport",
        "Max-Forwards: 70",
        f"From: {ok.header('From')}",
        f"To: {ok.header('To')}",
        f"Call-ID: {ok.call_id}",
        f"CSeq: {cseq} {method}",
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body)}",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def test_an_invite_without_sdp_gets_our_offer_and_the_ack_answer_starts_the_ivr(
    tmp_path: Path,
) -> None:
    switch = start_switch(tmp_path, write_config(tmp_path, ring_timeout=5.0))
    try:
        with SipPeer(switch.sip_addr) as trunk:
            uri = f"sip:800999001@{switch.sip}"
            call_id, data = trunk.request(
                "INVITE", uri, f"Contact: <sip:pbx@{trunk.host}:{trunk.port}>"
            )
            trunk.send(data)
            ok = trunk.final_for(call_id, 5)
            assert ok is not None and ok.status == 200, ok
            assert ok.header("Content-Type") == "application/sdp"
            offer = ok.raw.split(b"\r\n\r\n", 1)[1].decode()
            assert "m=audio" in offer and "a=sendrecv" in offer
            port = free_udp_port()
            answer = (
                f"v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            )
            # The ACK repeats the INVITE's CSeq number (§13.2.2.4); the BYE goes above it
            # (§12.2.1.1) — the peer's counter runs across tests, so read it back.
            invite_cseq = int((ok.header("CSeq") or "1").split()[0])
            trunk.send(in_dialog_from(trunk, ok, "ACK", invite_cseq, answer))
            wait_for("the IVR", lambda: of_kind(events(switch), "ivr_entered"), 10)
            trunk.send(in_dialog_from(trunk, ok, "BYE", invite_cseq + 1))
            bye_ok = trunk.final_for(call_id, 5)
            for _ in range(5):
                # 200 retransmissions to the INVITE may still cross our ACK (§13.3.1.4).
                if bye_ok is None or "INVITE" not in (bye_ok.header("CSeq") or ""):
                    break
                bye_ok = trunk.final_for(call_id, 5)
            assert bye_ok is not None and bye_ok.status == 200
            assert (bye_ok.header("CSeq") or "").endswith("BYE")
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        assert [e.data for e in of_kind(events(switch), "ended")] == [{"by": "caller"}]
    finally:
        stop_process(switch.process)
