"""End to end: an operator's SIPp phone answers a caller and transfers it blind with
REFER (RFC 3515) to a referent's number; the switch dials the referent through the
trunk (a SIPp UAS, sipp-scenarios/referent.xml) and bridges the caller to it.

The trunk here is 127.0.0.2: the caller calls from there, and the referent listens on
127.0.0.2:5060 (the switch dials referents at the calling trunk's host, port 5060).

A REFER to another operator (`Refer-To: <sip:1002@switch>`) goes through the ACD:
1001's phone (operator-refer-first.xml) transfers, 1002's (operator-answer-rtp.xml,
operator-answer.xml or operator-noanswer.xml) rings; the HTTP API and the event log
show the ACD's side.
Every wait is bounded and every process is ended by PID.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from acd_helpers import (
    NUMBER,
    PASSWORDS,
    QUEUE,
    SERVICE,
    Event,
    Processes,
    Sipp,
    events,
    of_kind,
    operator_states,
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
    sipp_media_port,
    start_switch,
    stop_process,
)

pytestmark = pytest.mark.e2e

TRUNK_HOST = "127.0.0.2"
REFERENT_NUMBER = "0461999999"
T = TypeVar("T")
AUDIO_PCAP = Path("/usr/share/sip-tester/g711a.pcap")


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
    cmd = [need("sipp"), *args, "-i", host, "-p", str(port), "-mp", str(sipp_media_port())]
    cmd += ["-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-trace_msg"]
    folder = procs.tmp / name
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "sipp.out"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    sipp = Sipp(name, proc, log_path)
    procs.started.append(sipp)
    return sipp


def skip_unless_bound(referent: Sipp) -> None:
    """Skip when another process on this machine took the trunk's port 5060 between
    `trunk_port_free` and the referent's bind (SIPp then exits at once)."""
    if referent.process.poll() is not None and "Unable to bind main socket" in referent.output():
        pytest.skip(f"{TRUNK_HOST}:5060 was taken by another process")


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
        caller_rc = caller.wait(30)
        skip_unless_bound(referent)
        assert caller_rc == 0, diagnose(switch, caller, phone, referent)
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
        caller_rc = caller.wait(45)
        skip_unless_bound(referent)
        assert caller_rc == 0, diagnose(switch, caller, phone, referent)
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


# -- blind transfer to another operator, through the ACD ---------------------------------


def operators_config(tmp: Path, *, wrapup: float, transfer_timeout: float = 20.0) -> Path:
    """The ACD test configuration with `skill-level`: 1001 (level 3) gets the first free
    call before 1003 (2) and 1002 (1); `calls.transfer_timeout` as given."""
    path = write_config(tmp, ring_timeout=5.0, strategy="skill-level", wrapup=wrapup)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    levels = {"1001": 3, "1003": 2, "1002": 1}
    for op in config["operators"]:
        op["skills"] = {QUEUE: levels.get(op["id"], 1)}
    config.setdefault("calls", {})["transfer_timeout"] = transfer_timeout
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def rtp_1001() -> Iterator[socket.socket]:
    """Where operator 1001's phone receives its RTP (the port its 200s answer with)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def transferring_phone(
    procs: Processes, switch: Switch, rtp: socket.socket, *, talk_ms: int
) -> Sipp:
    """Operator 1001's phone: answers, talks `talk_ms`, REFERs the first call to 1002;
    its RTP goes to `rtp`."""
    args = ["-sf", str(SCENARIOS / "operator.xml"), "-m", "1", "-trace_msg"]
    args += ["-key", "rtp_port", str(rtp.getsockname()[1])]
    args += ["-oocsf", str(SCENARIOS / "operator-refer-first.xml")]
    args += ["-s", "1001", "-au", "1001", "-ap", PASSWORDS["1001"]]
    args += ["-key", "life_ms", "60000", "-key", "ring_ms", "300"]
    args += ["-key", "talk_ms", str(talk_ms), "-key", "refer_to", f"sip:1002@{switch.sip}"]
    return procs.sipp("phone-1001", switch.sip, *args)


def caller(procs: Processes, switch: Switch, name: str, wait_ms: int | None = None) -> Sipp:
    """A trunk caller who talks until the switch hangs up, or hangs up after `wait_ms`."""
    scenario = "caller-wait.xml" if wait_ms is None else "caller-abandon.xml"
    args = ["-sf", str(SCENARIOS / scenario), "-s", NUMBER, "-m", "1", "-trace_msg"]
    if wait_ms is not None:
        args += ["-key", "wait_ms", str(wait_ms)]
    return procs.sipp(name, switch.sip, *args, timeout=60)


@dataclass(frozen=True)
class Message:
    """One SIP message of a SIPp `-trace_msg` log."""

    sent: bool
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    def header(self, name: str) -> str | None:
        for line in self.text.split("\n\n", 1)[0].splitlines()[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def body(self) -> str:
        return self.text.split("\n\n", 1)[1].strip() if "\n\n" in self.text else ""


def trace(tmp: Path, name: str) -> list[Message]:
    """The SIP messages SIPp `name` sent and received, in order."""
    (path,) = (tmp / name).glob("*_messages.log")
    text = path.read_text(errors="replace").replace("\r\n", "\n")
    messages = []
    for block in re.split(r"^-{10,}.*$", text, flags=re.MULTILINE):
        head, _, message = block.strip("\n").partition("\n\n")
        if "message sent" in head or "message received" in head:
            messages.append(Message("message sent" in head, message.strip("\n") + "\n"))
    return messages


def received(messages: list[Message], method: str) -> list[Message]:
    return [m for m in messages if not m.sent and m.first_line.startswith(f"{method} ")]


def pcap_audio(path: Path) -> bytes:
    """The RTP payloads of a pcap of Ethernet/IPv4/UDP/RTP packets, end to end."""
    data, audio, at = path.read_bytes(), bytearray(), 24  # after the global header
    while at + 16 <= len(data):
        length = struct.unpack_from("<I", data, at + 8)[0]
        packet = data[at + 16 : at + 16 + length]
        at += 16 + length
        ip = packet[14:]
        udp = ip[(ip[0] & 0x0F) * 4 :]
        audio += rtp_split(udp[8:])[1]
    return bytes(audio)


def rtp_split(packet: bytes) -> tuple[int, bytes]:
    """(payload type, payload) of an RTP packet (RFC 3550 §5.1: CSRCs, extension)."""
    start = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        start += 4 + 4 * struct.unpack_from("!H", packet, start + 2)[0]
    return packet[1] & 0x7F, packet[start:]


def rtp_payloads(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Every RTP packet waiting on `sock` (it is read once the call is over)."""
    sock.setblocking(False)
    got = []
    while True:
        try:
            got.append(rtp_split(sock.recv(2048)))
        except BlockingIOError:
            return got


def sent_from(messages: list[Message]) -> str:
    """The From (name and URI, no tag) of the first INVITE a caller sent."""
    invite = next(m for m in messages if m.sent and m.first_line.startswith("INVITE "))
    return (invite.header("From") or "").split(";tag=")[0]


def operator_api(switch: Switch, operator: str) -> dict[str, Any]:
    status, body = switch.http_get(f"/api/operators/{operator}")
    assert status == 200, body
    return dict(json.loads(body))


def subsequence(items: list[T], *wanted: T) -> bool:
    """`wanted` occur in `items` in this order (others may come in between)."""
    it = iter(items)
    return all(any(item == want for item in it) for want in wanted)


def states(log: list[Event], operator: str) -> list[str]:
    return [state for state, _ in operator_states(log, operator)]


def stop_all(switch: Switch, procs: Processes) -> None:
    stop_process(switch.process)
    procs.stop_all()


def test_a_blind_transfer_to_another_operator_hands_them_the_call(
    tmp_path: Path, procs: Processes, rtp_1001: socket.socket
) -> None:
    """1001 answers, REFERs to 1002, whose phone rings and answers: 1002 gets the
    caller's identity, screen pop and speech (caller-talk.xml's A-law RTP, read at the
    port 1002's phone answered with), owns the call in the ACD and ends it."""
    if not AUDIO_PCAP.exists():
        pytest.skip(f"{AUDIO_PCAP} missing (sip-tester installs it)")
    switch = start_switch(tmp_path, operators_config(tmp_path, wrapup=2.0))
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        media.bind(("127.0.0.1", 0))
        phone_1001 = transferring_phone(procs, switch, rtp_1001, talk_ms=1000)
        args = ["-sf", str(SCENARIOS / "operator.xml"), "-m", "1", "-trace_msg"]
        args += ["-oocsf", str(SCENARIOS / "operator-answer-rtp.xml")]
        args += ["-s", "1002", "-au", "1002", "-ap", PASSWORDS["1002"], "-key", "life_ms", "60000"]
        args += ["-key", "ring_ms", "1000", "-key", "talk_ms", "3000", "-key", "hangup", "operator"]
        args += ["-key", "rtp_port", str(media.getsockname()[1])]
        phone_1002 = procs.sipp("phone-1002", switch.sip, *args)
        wait_registered(switch, 2)
        talk = ["-sf", str(SCENARIOS / "caller-talk.xml"), "-s", NUMBER, "-m", "1", "-trace_msg"]
        citizen = procs.sipp("caller", switch.sip, *talk, "-key", "audio_pcap", str(AUDIO_PCAP))
        wait_for("1002 on call", lambda: api_state(switch, "1002", "on_call"), 20)
        (answered,) = wait_for("answered", lambda: of_kind(events(switch), "answered"), 5)
        assert operator_api(switch, "1002")["call_id"] == answered.call_id
        assert citizen.wait(30) == 0, diagnose(switch, citizen, phone_1001, phone_1002)
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        log = events(switch)
        call_id = answered.call_id
        assert answered.operator == "1001"
        assert {e.call_id for e in log if e.call_id} == {call_id}, diagnose(switch)
        moved = [e for e in of_kind(log, "transferred") if e.data.get("to")]
        assert [(e.operator, e.data) for e in moved] == [
            ("1001", {"to": "operator", "target": "1002"})
        ], diagnose(switch)
        assert len(of_kind(log, "transferred")) == 1, diagnose(switch)
        assert [e.operator for e in of_kind(log, "answered")] == ["1001"], diagnose(switch)
        (ended,) = of_kind(log, "ended")
        assert (ended.operator, ended.data) == ("1002", {"by": "operator"}), diagnose(switch)
        assert subsequence(states(log, "1002"), "offered", "on_call", "wrap_up"), diagnose(switch)
        assert subsequence(states(log, "1001"), "on_call", "wrap_up"), diagnose(switch)
        # 1002's phone: one INVITE, with the caller's identity and the screen pop.
        (invite,) = received(trace(tmp_path, "phone-1002"), "INVITE")
        identity = sent_from(trace(tmp_path, "caller"))
        assert (invite.header("From") or "").startswith(f"{identity};tag="), invite.text
        assert invite.header("P-Asserted-Identity") == identity, invite.text
        assert invite.header("X-Centralino-Service") == SERVICE, invite.text
        assert invite.header("X-Centralino-Call-Id") == call_id, invite.text
        # 1001's phone: 202, NOTIFY 100 then 200 (sipfrag), then our BYE.
        messages = trace(tmp_path, "phone-1001")
        notifies = received(messages, "NOTIFY")
        assert [n.body for n in notifies] == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]
        assert "terminated" in (notifies[-1].header("Subscription-State") or "")
        assert [m.first_line for m in messages if m.sent and "REFER" in m.first_line]
        assert len(received(messages, "BYE")) == 1, [m.first_line for m in messages]
        assert not [m for m in messages if m.sent and m.first_line.startswith("BYE ")]
        # The caller's speech reached 1002's phone, byte for byte (A-law both sides).
        heard = rtp_payloads(media)
        spoken = pcap_audio(AUDIO_PCAP) * 2
        assert len(heard) >= 50, f"{len(heard)} RTP packets reached 1002"
        assert {pt for pt, _ in heard} == {8}
        same = sum(1 for _, payload in heard if len(payload) >= 80 and payload in spoken)
        assert same >= 0.9 * len(heard), f"{same} of {len(heard)} packets are the caller's"
    finally:
        media.close()
        stop_all(switch, procs)


def api_state(switch: Switch, operator: str, state: str) -> bool:
    return bool(operator_api(switch, operator)["state"] == state)


def test_an_operator_ringing_for_a_transfer_gets_no_queue_call_meanwhile(
    tmp_path: Path, procs: Processes, rtp_1001: socket.socket
) -> None:
    """While 1002's phone rings 6 s for 1001's transfer, a second caller queues and is
    not offered to 1002; once the transfer is answered, 1001 (free after a 1 s wrap-up)
    takes the waiting caller."""
    switch = start_switch(tmp_path, operators_config(tmp_path, wrapup=1.0))
    try:
        phone_1001 = transferring_phone(procs, switch, rtp_1001, talk_ms=1000)
        phone_1002 = procs.phone(switch, "1002", ring_ms=6000, talk_ms=2000)
        wait_registered(switch, 2)
        first = caller(procs, switch, "caller")
        wait_for("1002 ringing", lambda: api_state(switch, "1002", "offered"), 20)
        (answered,) = wait_for("1001 answered", lambda: of_kind(events(switch), "answered"), 5)
        second = caller(procs, switch, "second-caller", wait_ms=14000)

        def second_queued() -> list[Event]:
            return [e for e in of_kind(events(switch), "queued") if e.call_id != answered.call_id]

        (queued,) = wait_for("the second caller queued", second_queued, 10)
        # The second caller waits: 1002 still rings for the transfer, nobody else is free.
        still = operator_api(switch, "1002")
        assert (still["state"], still["call_id"]) == ("offered", answered.call_id), still
        assert api_state(switch, "1001", "on_call")
        served = wait_for(
            "the second caller answered",
            lambda: [e for e in of_kind(events(switch), "answered") if e.call_id == queued.call_id],
            15,
        )
        assert [e.operator for e in served] == ["1001"], diagnose(switch, phone_1001, phone_1002)
        assert first.wait(30) == 0, diagnose(switch, first, phone_1001, phone_1002)
        assert second.wait(30) == 0, diagnose(switch, second, phone_1001, phone_1002)
        wait_for("both ends", lambda: len(of_kind(events(switch), "ended")) == 2, 10)
        log = events(switch)
        offers = [(e.call_id, e.operator) for e in of_kind(log, "offered")]
        assert offers == [(answered.call_id, "1001"), (queued.call_id, "1001")], diagnose(switch)
        (moved,) = of_kind(log, "transferred")
        assert moved.seq < served[0].seq, diagnose(switch)
        ends = {e.call_id: (e.operator, e.data) for e in of_kind(log, "ended")}
        assert ends == {
            answered.call_id: ("1002", {"by": "operator"}),
            queued.call_id: ("1001", {"by": "caller"}),  # the operator they talked to
        }, diagnose(switch)
        # 1002's phone was rung once (the transfer); 1001's REFERred only the first call.
        assert len(received(trace(tmp_path, "phone-1002"), "INVITE")) == 1
        messages = trace(tmp_path, "phone-1001")
        assert len(received(messages, "INVITE")) == 2
        assert len([m for m in messages if m.sent and m.first_line.startswith("REFER ")]) == 1
    finally:
        stop_all(switch, procs)


def test_a_colleague_who_does_not_answer_a_transfer_is_paused_and_the_caller_returns(
    tmp_path: Path, procs: Processes, rtp_1001: socket.socket
) -> None:
    """`calls.transfer_timeout` 3 s: 1002's phone rings on and gets our CANCEL, 1002 is
    paused "no answer", 1001 gets NOTIFY 408 and the caller's speech again."""
    if not AUDIO_PCAP.exists():
        pytest.skip(f"{AUDIO_PCAP} missing (sip-tester installs it)")
    switch = start_switch(tmp_path, operators_config(tmp_path, wrapup=1.0, transfer_timeout=3))
    try:
        phone_1001 = transferring_phone(procs, switch, rtp_1001, talk_ms=1000)
        phone_1002 = procs.phone(switch, "1002", kind="noanswer")
        wait_registered(switch, 2)
        talk = ["-sf", str(SCENARIOS / "caller-talk-hangup.xml"), "-s", NUMBER, "-m", "1"]
        talk += ["-key", "audio_pcap", str(AUDIO_PCAP), "-key", "hold_ms", "9000"]
        citizen = procs.sipp("caller", switch.sip, *talk)
        wait_for("1002 ringing", lambda: api_state(switch, "1002", "offered"), 20)
        wait_for("1002 paused", lambda: api_state(switch, "1002", "paused"), 10)
        rtp_payloads(rtp_1001)  # what 1001 heard before the transfer failed
        assert operator_api(switch, "1002")["reason"] == "no answer"
        (answered,) = of_kind(events(switch), "answered")
        back = operator_api(switch, "1001")
        assert (back["state"], back["call_id"]) == ("on_call", answered.call_id), back
        assert citizen.wait(30) == 0, diagnose(switch, citizen, phone_1001, phone_1002)
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        log = events(switch)
        assert of_kind(log, "transferred") == [], diagnose(switch)
        (ended,) = of_kind(log, "ended")
        assert ended.data == {"by": "caller"}, diagnose(switch)
        assert subsequence(
            operator_states(log, "1002"), ("offered", ""), ("paused", "no answer")
        ), diagnose(switch)
        # 1001 stays on the call until the caller hangs up, and only then wraps up.
        wrapups = [e for e in of_kind(log, "operator_state") if e.data.get("state") == "wrap_up"]
        assert [(e.operator, e.seq > ended.seq) for e in wrapups] == [("1001", True)], diagnose(
            switch
        )
        assert len(received(trace(tmp_path, "phone-1002"), "CANCEL")) == 1
        messages = trace(tmp_path, "phone-1001")
        notifies = received(messages, "NOTIFY")
        assert [n.body for n in notifies] == ["SIP/2.0 100 Trying", "SIP/2.0 408 Request Timeout"]
        # The caller is bridged to 1001 again: their speech, then their BYE, reach 1001.
        assert len(received(messages, "BYE")) == 1
        spoken = pcap_audio(AUDIO_PCAP)
        heard = rtp_payloads(rtp_1001)
        again = [payload for _, payload in heard if len(payload) >= 80 and payload in spoken]
        assert len(again) >= 20, f"{len(again)} packets of the caller's speech after the 408"
    finally:
        stop_all(switch, procs)


def post(switch: Switch, path: str, body: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{switch.http_port}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


@pytest.mark.parametrize("colleague", ["unregistered", "paused"])
def test_a_transfer_to_a_colleague_who_cannot_take_it_is_refused_with_480(
    tmp_path: Path, procs: Processes, rtp_1001: socket.socket, colleague: str
) -> None:
    """1002 has no phone registered, or is paused: the ACD refuses the reservation,
    1001 gets NOTIFY 480 and keeps the caller; 1002's state does not move."""
    switch = start_switch(tmp_path, operators_config(tmp_path, wrapup=1.0))
    try:
        phone_1001 = transferring_phone(procs, switch, rtp_1001, talk_ms=1000)
        if colleague == "paused":
            procs.phone(switch, "1002")
            wait_registered(switch, 2)
            assert post(switch, "/api/operators/1002/pause", {"reason": "riunione"}) == 200
        else:
            wait_registered(switch, 1)
        before = operator_api(switch, "1002")["state"]
        citizen = caller(procs, switch, "caller", wait_ms=5000)
        assert citizen.wait(30) == 0, diagnose(switch, citizen, phone_1001)
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        log = events(switch)
        assert of_kind(log, "transferred") == [], diagnose(switch)
        assert [e.data for e in of_kind(log, "ended")] == [{"by": "caller"}]
        assert operator_api(switch, "1002")["state"] == before
        assert "offered" not in states(log, "1002"), diagnose(switch)
        messages = trace(tmp_path, "phone-1001")
        notifies = received(messages, "NOTIFY")
        assert [n.body for n in notifies] == [
            "SIP/2.0 100 Trying",
            "SIP/2.0 480 Temporarily Unavailable",
        ], diagnose(switch)
        assert len(received(messages, "BYE")) == 1  # the caller's hang-up, relayed
        if colleague == "paused":
            assert received(trace(tmp_path, "phone-1002"), "INVITE") == []
    finally:
        stop_all(switch, procs)


@pytest.mark.parametrize("colleague", ["answers", "does not answer"])
def test_the_transferring_operator_may_hang_up_while_the_colleague_rings(
    tmp_path: Path, procs: Processes, colleague: str
) -> None:
    """1001 REFERs to 1002 and hangs up at once: 1001 wraps up (30 s) while 1002's
    phone rings on. If 1002 answers the call is theirs; if not (transfer_timeout 3 s),
    the caller is queued again and 1003, the one free operator, takes them."""
    config = operators_config(tmp_path, wrapup=30.0, transfer_timeout=3)
    switch = start_switch(tmp_path, config)
    try:
        args = ["-sf", str(SCENARIOS / "operator.xml"), "-m", "1", "-trace_msg"]
        args += ["-oocsf", str(SCENARIOS / "operator-refer-leave.xml")]
        args += ["-s", "1001", "-au", "1001", "-ap", PASSWORDS["1001"]]
        args += ["-key", "life_ms", "60000", "-key", "ring_ms", "300", "-key", "talk_ms", "1000"]
        phone_1001 = procs.sipp(
            "phone-1001", switch.sip, *args, "-key", "refer_to", f"sip:1002@{switch.sip}"
        )
        kind = "answer" if colleague == "answers" else "noanswer"
        phone_1002 = procs.phone(switch, "1002", kind=kind, ring_ms=2000, talk_ms=1000)
        wait_registered(switch, 2)
        citizen = caller(procs, switch, "caller")
        wait_for("1002 ringing", lambda: api_state(switch, "1002", "offered"), 20)
        wait_for("1001 in wrap-up", lambda: api_state(switch, "1001", "wrap_up"), 5)
        assert api_state(switch, "1002", "offered"), diagnose(switch, phone_1001, phone_1002)
        phone_1003 = procs.phone(switch, "1003", talk_ms=1000)
        wait_registered(switch, 3)
        assert citizen.wait(30) == 0, diagnose(switch, citizen, phone_1001, phone_1002, phone_1003)
        wait_for("the call's end", lambda: of_kind(events(switch), "ended"), 10)
        log = events(switch)
        sent = [m.first_line for m in trace(tmp_path, "phone-1001") if m.sent]
        assert [line.split()[0] for line in sent if line.split()[0] in ("REFER", "BYE")] == [
            "REFER",
            "BYE",
        ]
        (answered, *later) = of_kind(log, "answered")
        call_id = answered.call_id
        ends = [(e.call_id, e.operator, e.data) for e in of_kind(log, "ended")]
        moved = [(e.operator, e.data) for e in of_kind(log, "transferred")]
        if colleague == "answers":
            assert moved == [("1001", {"to": "operator", "target": "1002"})], diagnose(switch)
            assert later == [], diagnose(switch)
            assert ends == [(call_id, "1002", {"by": "operator"})], diagnose(switch)
            assert subsequence(states(log, "1002"), "offered", "on_call"), diagnose(switch)
            assert "offered" not in states(log, "1003"), diagnose(switch)
        else:
            assert moved == [], diagnose(switch)
            assert [e.call_id for e in of_kind(log, "queued")] == [call_id, call_id]
            assert [(e.call_id, e.operator) for e in later] == [(call_id, "1003")]
            assert ends == [(call_id, "1003", {"by": "operator"})], diagnose(switch)
            assert subsequence(
                operator_states(log, "1002"), ("offered", ""), ("paused", "no answer")
            ), diagnose(switch)
    finally:
        stop_all(switch, procs)
