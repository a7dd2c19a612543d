"""The `centralino` command as an operator runs it: check-config, serve's refusals,
SIGTERM draining, and the HTTP endpoints."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    BUNDLED_CONFIG,
    CENTRALINO,
    ROOT,
    SipPeer,
    free_tcp_port,
    free_udp_port,
    start_switch,
    stop_process,
    write_config,
)

pytestmark = pytest.mark.e2e

Edit = Callable[[dict[str, Any]], None]


def centralino(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CENTRALINO), *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_check_config_bundled_file_is_valid() -> None:
    done = centralino("check-config", str(BUNDLED_CONFIG))
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_check_config_default_path_is_the_bundled_file() -> None:
    done = centralino("check-config")
    assert done.returncode == 0, done.stderr


def _unknown_key(data: dict[str, Any]) -> None:
    data["sip"]["bogus_knob"] = 1


def _unknown_prompt(data: dict[str, Any]) -> None:
    data["services"]["trentino-digitale"]["ivr"]["welcome"]["prompts"] = ["no-such-prompt"]


def _unknown_queue(data: dict[str, Any]) -> None:
    data["services"]["trentino-digitale"]["ivr"]["mepat"]["queue"] = "no-such-queue"


def _unreachable_node(data: dict[str, Any]) -> None:
    data["services"]["trentino-digitale"]["ivr"]["orphan"] = {
        "type": "hangup",
        "reason": "closed",
        "prompts": ["goodbye"],
    }


def _mysql_dsn(data: dict[str, Any]) -> None:
    data["events"] = {"dsn": "mysql://cc:s3cret@db/centralino"}


# (edit, fragments the key must contain, fragment of the reason)
BROKEN: dict[str, tuple[Edit, tuple[str, ...], str]] = {
    "unknown-key": (_unknown_key, ("sip", "bogus_knob"), "xtra"),
    "unknown-prompt": (_unknown_prompt, ("trentino-digitale", "welcome"), "no-such-prompt"),
    "unknown-queue": (_unknown_queue, ("trentino-digitale", "mepat"), "no-such-queue"),
    "unreachable-node": (_unreachable_node, ("trentino-digitale", "orphan"), "unreachable"),
    "not-a-postgresql-dsn": (_mysql_dsn, ("events", "dsn"), "postgresql://"),
}


def problem_lines(stderr: str, path: Path) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{path}:")]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_config_names_file_key_and_reason(tmp_path: Path, case: str) -> None:
    edit, key_parts, reason = BROKEN[case]
    path = write_config(tmp_path, edit)
    done = centralino("check-config", str(path))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = problem_lines(done.stderr, path)
    assert any(
        all(part in line.split(": ")[1] for part in key_parts) and reason in line for line in lines
    ), done.stderr


def test_check_config_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sip:\n  listen: [127.0.0.1\nhttp: {\n", encoding="utf-8")
    done = centralino("check-config", str(path))
    assert done.returncode == 2
    (line,) = problem_lines(done.stderr, path)
    assert "YAML" in line and "line" in line, line


def test_check_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    done = centralino("check-config", str(path))
    assert done.returncode == 2
    assert problem_lines(done.stderr, path), done.stderr


def test_serve_refuses_a_bad_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, _unknown_queue)
    done = centralino("serve", "--config", str(path), *listen_args(tmp_path))
    assert done.returncode == 2
    assert any("no-such-queue" in line for line in problem_lines(done.stderr, path))


def test_serve_stops_when_the_event_database_is_unreachable(tmp_path: Path) -> None:
    """A DSN nobody answers: a clear one-line reason, exit 1, and no password anywhere."""
    port = free_tcp_port()  # nothing listens there

    def unreachable(data: dict[str, Any]) -> None:
        data["events"] = {"dsn": f"postgresql://cc:s3cret@127.0.0.1:{port}/centralino"}

    path = write_config(tmp_path, unreachable)
    done = centralino("serve", "--config", str(path), *listen_args(tmp_path))
    assert done.returncode == 1, done.stderr
    output = done.stdout + done.stderr
    assert f"cannot connect to postgresql://cc:***@127.0.0.1:{port}/centralino" in output
    assert "s3cret" not in output and "Traceback" not in output


def listen_args(tmp: Path, host: str = "127.0.0.1") -> list[str]:
    return [
        "--sip",
        f"{host}:{free_udp_port()}",
        "--http",
        f"127.0.0.1:{free_tcp_port()}",
        "--data",
        str(tmp / "var"),
    ]


def test_serve_refuses_demo_credentials_on_a_public_address(tmp_path: Path) -> None:
    done = centralino("serve", *listen_args(tmp_path, "0.0.0.0"))
    assert done.returncode == 2
    assert "demo" in done.stderr and "--allow-demo-credentials" in done.stderr


def test_serve_allows_demo_credentials_when_told(tmp_path: Path) -> None:
    """With the flag it starts on 0.0.0.0, answers OPTIONS on loopback, exits 0."""
    args = [str(CENTRALINO), "serve", *listen_args(tmp_path, "0.0.0.0")]
    args += ["--allow-demo-credentials"]
    sip_port = int(args[args.index("--sip") + 1].rsplit(":", 1)[1])
    log = tmp_path / "public.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        answered = False
        deadline = time.monotonic() + 20
        while not answered and time.monotonic() < deadline and proc.poll() is None:
            with SipPeer(("127.0.0.1", sip_port)) as peer:
                response = peer.options(timeout=0.5)
            answered = response is not None and response.status == 200
        assert answered, log.read_text()
    finally:
        assert stop_process(proc) == 0, log.read_text()


def test_sigterm_exits_0_within_the_drain_bound(tmp_path: Path) -> None:
    drain = 2.0
    sw = start_switch(tmp_path, None, "--drain-seconds", str(drain))
    started = time.monotonic()
    sw.process.send_signal(signal.SIGTERM)
    try:
        code = sw.process.wait(timeout=drain + 8)
    finally:
        stop_process(sw.process, signal.SIGKILL)
    assert code == 0, sw.log()
    assert time.monotonic() - started < drain + 8
    assert "Traceback" not in sw.log()


def test_sigint_exits_0(tmp_path: Path) -> None:
    sw = start_switch(tmp_path)
    sw.process.send_signal(signal.SIGINT)
    try:
        code = sw.process.wait(timeout=15)
    finally:
        stop_process(sw.process, signal.SIGKILL)
    assert code == 0, sw.log()


def test_healthz_and_metrics(tmp_path: Path) -> None:
    sw = start_switch(tmp_path)
    try:
        status, body = sw.http_get("/healthz")
        assert status == 200
        health = json.loads(body)
        assert health["status"] == "ok"
        assert health["registrations"] == 0
        with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
            assert peer.options() is not None
        status, body = sw.http_get("/metrics")
        assert status == 200
        text = body.decode()
        assert "# TYPE" in text and "# HELP" in text
        assert sw.http_get("/no-such-page")[0] == 404
    finally:
        assert stop_process(sw.process) == 0


SDP = (
    "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def place_call(peer: SipPeer, port: int) -> None:
    """An INVITE from the trunk to a service number, answered and ACKed (§13.2.2.4)."""
    uri = f"sip:800228040@127.0.0.1:{port}"
    call_id, data = peer.request("INVITE", uri, "Content-Type: application/sdp", body=SDP)
    peer.send(data)
    ok = peer.final_for(call_id, timeout=5)
    assert ok is not None and ok.status == 200, ok
    target = (ok.header("Contact") or f"<{uri}>").strip("<>")
    _, ack = peer.request("ACK", target, call_id=call_id, cseq_method="ACK")
    head = data.split(b"\r\n")
    cseq = next(line for line in head if line.startswith(b"CSeq:")).split()[1]
    ack = re.sub(rb"CSeq: \d+ ACK", b"CSeq: " + cseq + b" ACK", ack)
    ack = re.sub(rb"\r\nTo: [^\r]*", ("\r\nTo: " + (ok.header("To") or "")).encode(), ack)
    peer.send(ack)


def datagrams(peer: SipPeer) -> list[bytes]:
    """Everything already waiting on the peer's socket."""
    got: list[bytes] = []
    peer.sock.settimeout(0.5)
    try:
        while True:
            got.append(peer.sock.recv(65535))
    except TimeoutError:
        return got


def test_sigterm_drains_calls_then_exits_0(tmp_path: Path) -> None:
    """A call in progress holds the switch up to --drain-seconds; meanwhile /healthz says
    draining (503) and a new INVITE gets 503; then the call gets a BYE and it exits 0."""
    drain = 4.0
    sw = start_switch(tmp_path, None, "--drain-seconds", str(drain))
    try:
        with SipPeer(("127.0.0.1", sw.sip_port)) as caller:
            place_call(caller, sw.sip_port)
            assert json.loads(sw.http_get("/healthz")[1])["calls"] == 1
            started = time.monotonic()
            sw.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            status, body = sw.http_get("/healthz")
            assert status == 503 and json.loads(body)["status"] == "draining", body
            with SipPeer(("127.0.0.1", sw.sip_port)) as late:
                uri = f"sip:800228040@127.0.0.1:{sw.sip_port}"
                call_id, data = late.request(
                    "INVITE", uri, "Content-Type: application/sdp", body=SDP
                )
                late.send(data)
                refused = late.final_for(call_id, timeout=3)
            assert refused is not None and refused.status == 503
            code = sw.process.wait(timeout=drain + 8)
            # The call still up when the drain ran out was hung up, not abandoned.
            assert any(d.startswith(b"BYE ") for d in datagrams(caller)), sw.log()
        assert code == 0, sw.log()
        assert time.monotonic() - started < drain + 8
    finally:
        stop_process(sw.process)
    assert "Traceback" not in sw.log()
