"""End to end: a queued trunk caller asks for a callback (the queue's digit, sent as SIP
INFO), hears the confirmation and is hung up; a SIPp operator registers and answers the
callback offer; the switch then INVITEs the citizen's number through the trunk (here the
address the call came from) and a citizen UAS answers.

Every wait is bounded; every process is ended by PID (acd_helpers.processes).
"""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from acd_helpers import (
    NUMBER,
    Processes,
    events,
    of_kind,
    processes,
    wait_for,
    wait_registered,
    write_config,
)
from caller import SipMessage, TrunkCall, prompt_seconds
from conftest import Switch, need, start_switch, stop_process

pytestmark = pytest.mark.e2e

CITIZEN = "0461777888"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    need("sipp")
    with processes(tmp_path) as p:
        yield p


class CitizenPhone:
    """A UAS on the trunk's address: answers one INVITE with 180 then 200 and SDP."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(addr)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))

    def receive(self, method: str, timeout: float) -> tuple[SipMessage, tuple[str, int]]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            message = SipMessage.parse(data)
            if message is not None and message.method == method:
                return message, source
        raise AssertionError(f"no {method} within {timeout} s")

    def respond(
        self, request: SipMessage, source: tuple[str, int], status: int, body: str = ""
    ) -> None:
        to = request.header("to") or ""
        lines = [f"SIP/2.0 {status} X", *(f"Via: {v}" for v in request.all("via"))]
        lines += [f"From: {request.header('from')}", f"To: {to};tag=citizen1"]
        lines += [f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}"]
        lines += [f"Contact: <sip:{CITIZEN}@127.0.0.1:{self.sock.getsockname()[1]}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines += [f"Content-Length: {len(body.encode())}", "", body]
        self.sock.sendto("\r\n".join(lines).encode(), source)

    def sdp(self) -> str:
        port = self.rtp.getsockname()[1]
        return (
            "v=0\r\no=citizen 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )

    def close(self) -> None:
        self.sock.close()
        self.rtp.close()


def test_callback_keeps_the_place_and_dials_the_citizen_after_the_operator_answers(
    tmp_path: Path, procs: Processes
) -> None:
    config = write_config(
        tmp_path, ring_timeout=5.0, queue_extra={"callback_digit": "5", "callback_attempts": 1}
    )
    switch = start_switch(tmp_path, config)
    try:
        call = TrunkCall(switch.sip_addr, NUMBER, codecs=("PCMU",), caller=CITIZEN)
        assert call.invite().status == 200
        trunk = (call.host, call.port)
        wait_for("queued", lambda: of_kind(events(switch), "queued"), timeout=10)
        assert call.info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n") == 200
        confirmation = prompt_seconds("beep", "goodbye")
        assert call.wait_hung_up(confirmation + 5), switch.log()[-3000:]
        call.close()  # its SIP port becomes the citizen's phone on the trunk's address
        requested = wait_for(
            "callback requested",
            lambda: [e for e in of_kind(events(switch), "queued") if e.data.get("callback")],
            timeout=5,
        )
        assert [e.data for e in requested] == [{"callback": "requested"}]
        assert of_kind(events(switch), "ended") == []  # the call goes on, nobody on the line
        citizen = CitizenPhone(trunk)
        try:
            procs.phone(switch, "1001", ring_ms=300, talk_ms=2000, hangup="operator")
            wait_registered(switch, 1)
            invite, source = citizen.receive("INVITE", timeout=20)
            assert invite.first_line.startswith(f"INVITE sip:{CITIZEN}@127.0.0.1:{trunk[1]} ")
            assert (invite.header("from") or "").startswith(f"<sip:{NUMBER}@")
            citizen.respond(invite, source, 180)
            citizen.respond(invite, source, 200, citizen.sdp())
            ack, _ = citizen.receive("ACK", timeout=5)
            assert ack.header("call-id") == invite.header("call-id")
            # The operator talks 2 s and hangs up: the switch hangs the citizen up.
            bye, source = citizen.receive("BYE", timeout=10)
            citizen.respond(bye, source, 200)
        finally:
            citizen.close()
        wait_for("the end", lambda: of_kind(events(switch), "ended"), timeout=10)
        log = events(switch)
        answered = of_kind(log, "answered")
        assert [(e.call_id, e.operator) for e in answered] == [(call.call_id, "1001")]
        assert answered[0].data.get("callback") == "true"
        (ended,) = of_kind(log, "ended")  # one end per call id, the last of its events
        assert ended.call_id == call.call_id and ended.data.get("by") == "operator"
        own = [e.kind for e in log if e.call_id == call.call_id]
        assert own[-1] == "ended" or own[-2:] == ["ended", "disposition"]
    finally:
        stop_process(switch.process)


def ask_callback(switch: Switch) -> TrunkCall:
    """A trunk caller queues, presses the callback digit (SIP INFO), hears the
    confirmation and is hung up; its SIP port is free again (the citizen's phone)."""
    call = TrunkCall(switch.sip_addr, NUMBER, codecs=("PCMU",), caller=CITIZEN)
    assert call.invite().status == 200
    wait_for("queued", lambda: of_kind(events(switch), "queued"), timeout=10)
    assert call.info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n") == 200
    assert call.wait_hung_up(prompt_seconds("beep", "goodbye") + 5), switch.log()[-3000:]
    call.close()
    wait_for(
        "callback requested",
        lambda: [e for e in of_kind(events(switch), "queued") if e.data.get("callback")],
        timeout=5,
    )
    return call


def test_a_callback_waiting_at_a_restart_keeps_its_place_and_is_called_back(
    tmp_path: Path, procs: Processes
) -> None:
    """SIGTERM with a callback waiting (no operator ever came): it is saved in
    `callbacks.json` (0600: the citizen's number), with a WARNING giving the count, never
    the number; a start that fails (HTTP port taken) after restoring it saves it again;
    the switch started again on the same data folder restores it (the file keeps it
    until it is served), offers it to the operator who registers and dials the citizen. The log
    has one call id with one `arrived` and one `ended`, its last event."""
    config = write_config(
        tmp_path, ring_timeout=5.0, queue_extra={"callback_digit": "5", "callback_attempts": 1}
    )
    switch = start_switch(tmp_path, config)
    try:
        call = ask_callback(switch)
    finally:
        code = stop_process(switch.process)
    first_log = switch.log()
    assert code == 0, first_log[-3000:]
    assert "1 pending callbacks of queue acd saved for the next start" in first_log
    assert CITIZEN not in first_log  # personal data: not at INFO or above
    saved = switch.data_dir / "callbacks.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    (entry,) = json.loads(saved.read_text())["callbacks"]
    assert (entry["call_id"], entry["number"], entry["queue"]) == (call.call_id, CITIZEN, "acd")
    assert [e.kind for e in events(switch) if e.kind in ("ended", "overflowed")] == []
    with socket.socket() as busy:  # a start that fails after restoring saves them again
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        http = f"127.0.0.1:{busy.getsockname()[1]}"
        with pytest.raises(RuntimeError, match="cannot start") as failed:
            start_switch(tmp_path, config, "--http", http)
    assert "1 pending callbacks of queue acd saved for the next start" in str(failed.value)
    (entry,) = json.loads(saved.read_text())["callbacks"]
    assert entry["call_id"] == call.call_id

    switch = start_switch(tmp_path, config)  # the same data folder
    try:
        (entry,) = json.loads(saved.read_text())["callbacks"]  # restored, still pending
        assert entry["call_id"] == call.call_id
        assert "1 pending callbacks of queue acd restored" in switch.log()
        called_back(procs, switch, call)
    finally:
        assert stop_process(switch.process) == 0, switch.log()[-3000:]
    own = [e for e in events(switch) if e.call_id == call.call_id]
    kinds = [e.kind for e in own]
    assert kinds.count("arrived") == 1 and kinds.count("ended") == 1
    assert kinds[-1] == "ended" or kinds[-2:] == ["ended", "disposition"]
    callbacks = [e.data.get("callback") for e in own if e.kind == "queued"]
    assert callbacks == [None, "requested", "restored", "restored"]  # two starts
    (answered,) = [e for e in own if e.kind == "answered"]
    assert (answered.operator, answered.data.get("callback")) == ("1001", "true")
    assert not saved.exists()  # nothing left to save at the second shutdown
    assert CITIZEN not in switch.log()


def test_a_callback_survives_a_crash_of_the_switch(tmp_path: Path, procs: Processes) -> None:
    """kill -9 a second after a callback was requested: the checkpoint kept it, so the
    next start restores it and calls the citizen back once an operator registers; once
    the citizen has answered, the checkpoint no longer holds it."""
    config = write_config(
        tmp_path, ring_timeout=5.0, queue_extra={"callback_digit": "5", "callback_attempts": 1}
    )
    switch = start_switch(tmp_path, config)
    saved = switch.data_dir / "callbacks.json"
    try:
        call = ask_callback(switch)
        wait_for("the checkpoint", saved.exists, timeout=5)
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    finally:
        switch.process.kill()  # no drain, no shutdown save: a crash
        switch.process.wait(10)
    (entry,) = json.loads(saved.read_text())["callbacks"]
    assert (entry["call_id"], entry["number"]) == (call.call_id, CITIZEN)

    switch = start_switch(tmp_path, config)
    try:
        assert "1 pending callbacks of queue acd restored" in switch.log()
        called_back(procs, switch, call)
    finally:
        assert stop_process(switch.process) == 0, switch.log()[-3000:]
    own = [e for e in events(switch) if e.call_id == call.call_id]
    callbacks = [e.data.get("callback") for e in own if e.kind == "queued"]
    assert callbacks == [None, "requested", "restored"]
    (answered,) = [e for e in own if e.kind == "answered"]
    assert (answered.operator, answered.data.get("callback")) == ("1001", "true")
    assert not saved.exists()


def called_back(procs: Processes, switch: Switch, call: TrunkCall) -> None:
    """A restored callback is served: operator 1001 registers and answers its offer, the
    switch dials the citizen (from the number they called), who answers; from then on
    `callbacks.json` no longer holds it; the operator hangs up after a second."""
    saved = switch.data_dir / "callbacks.json"
    citizen = CitizenPhone((call.host, call.port))
    try:
        procs.phone(switch, "1001", ring_ms=300, talk_ms=1000, hangup="operator")
        wait_registered(switch, 1)
        invite, source = citizen.receive("INVITE", timeout=20)
        assert invite.first_line.startswith(f"INVITE sip:{CITIZEN}@127.0.0.1:{call.port} ")
        assert (invite.header("from") or "").startswith(f"<sip:{NUMBER}@")
        citizen.respond(invite, source, 200, citizen.sdp())
        citizen.receive("ACK", timeout=5)
        wait_for("served", lambda: not saved.exists(), timeout=5)
        bye, source = citizen.receive("BYE", timeout=10)
        citizen.respond(bye, source, 200)
    finally:
        citizen.close()
    wait_for("the end", lambda: of_kind(events(switch), "ended"), timeout=10)
