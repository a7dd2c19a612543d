"""The SIP endpoint policy of a running `centralino serve`, seen from the wire: SIPp
REGISTER/unregister/OPTIONS scenarios, and who may talk to the switch at all."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    TRACEBACK,
    Registration,
    SipPeer,
    SipResponse,
    Switch,
    need_ipv6,
    run_sipp,
    start_switch,
    stop_process,
)

pytestmark = pytest.mark.e2e

SERVICE_NUMBER = "800228040"  # agenzia-lavoro in config/trentino.yaml
UNKNOWN_NUMBER = "999000111"
SDP = (
    "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switch]:
    switch = start_switch(tmp_path_factory.mktemp("endpoint"))
    yield switch
    alive = switch.process.poll() is None
    code = stop_process(switch.process)
    assert alive, f"the switch died (exit {code}):\n{switch.log()[-4000:]}"
    assert not TRACEBACK.search(switch.log()), switch.log()[-4000:]


def registrations(switch: Switch) -> int:
    status, body = switch.http_get("/healthz")
    assert status == 200, body
    return int(json.loads(body)["registrations"])


def sipp_ok(switch: Switch, scenario: str, *args: str) -> tuple[int, str]:
    done = run_sipp(scenario, switch.sip, "-m", "1", *args, timeout=20)
    return done.returncode, done.stdout.decode(errors="replace")


# -- SIPp ---------------------------------------------------------------------------------


def test_sipp_options_gets_200_with_allow(sw: Switch) -> None:
    code, out = sipp_ok(sw, "options.xml")
    assert code == 0, out


def test_sipp_register_401_then_200_and_unregister(sw: Switch) -> None:
    before = registrations(sw)
    code, out = sipp_ok(sw, "register.xml", "-s", "1001", "-au", "1001", "-ap", "demo1001")
    assert code == 0, out
    assert registrations(sw) == before + 1
    code, out = sipp_ok(sw, "unregister.xml", "-s", "1001", "-au", "1001", "-ap", "demo1001")
    assert code == 0, out
    assert registrations(sw) == before


def test_sipp_wrong_password_never_gets_200(sw: Switch) -> None:
    before = registrations(sw)
    code, out = sipp_ok(
        sw, "register-wrong-password.xml", "-s", "1003", "-au", "1003", "-ap", "wrong"
    )
    assert code == 0, out
    assert registrations(sw) == before


def test_sipp_wrong_password_scenario_fails_on_a_200(sw: Switch) -> None:
    """The scenario is able to fail: with the right password the 200 is unexpected."""
    code, out = sipp_ok(
        sw, "register-wrong-password.xml", "-s", "1004", "-au", "1004", "-ap", "demo1004"
    )
    assert code != 0, out
    sipp_ok(sw, "unregister.xml", "-s", "1004", "-au", "1004", "-ap", "demo1004")


# -- who may talk to the switch -------------------------------------------------------------


def final(peer: SipPeer, data: bytes, call_id: str) -> tuple[SipResponse | None, list[int]]:
    """Send `data`; its final response and every status seen for its Call-ID."""
    peer.send(data)
    response = peer.final_for(call_id, timeout=3.0)
    late = [r.status for r in peer.receive(0.3) if r.call_id == call_id]
    return response, ([response.status] if response else []) + late


def invite(peer: SipPeer, sw: Switch, number: str, *extra: str) -> tuple[str, bytes]:
    uri = f"sip:{number}@127.0.0.1:{sw.sip_port}"
    return peer.request("INVITE", uri, "Content-Type: application/sdp", *extra, body=SDP)


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS", "BYE", "MESSAGE"])
def test_stranger_gets_403(sw: Switch, method: str) -> None:
    """127.0.0.2: loopback, but neither a configured trunk nor a registered phone."""
    with SipPeer(("127.0.0.1", sw.sip_port), source="127.0.0.2") as peer:
        uri = f"sip:{SERVICE_NUMBER}@127.0.0.1:{sw.sip_port}"
        call_id, data = peer.request(method, uri, body=SDP if method == "INVITE" else "")
        response, statuses = final(peer, data, call_id)
    assert response is not None and response.status == 403, statuses
    assert 200 not in statuses and 401 not in statuses and 407 not in statuses


def test_stranger_register_is_challenged_not_accepted(sw: Switch) -> None:
    """REGISTER is the one request a stranger may send: it gets the challenge."""
    with SipPeer(("127.0.0.1", sw.sip_port), source="127.0.0.2") as peer:
        uri = f"sip:127.0.0.1:{sw.sip_port}"
        call_id, data = peer.request("REGISTER", uri, "Expires: 60")
        data = data.replace(b"To: <sip:127", b"To: <sip:1001@127")
        response, _ = final(peer, data, call_id)
    assert response is not None and response.status == 401
    assert 'realm="' in (response.header("WWW-Authenticate") or "")


def test_unknown_number_from_trunk_gets_404(sw: Switch) -> None:
    with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
        call_id, data = invite(peer, sw, UNKNOWN_NUMBER)
        response, statuses = final(peer, data, call_id)
    assert response is not None and response.status == 404, statuses


@pytest.mark.parametrize("value", ["0", "00", "000"])
def test_max_forwards_zero_invite_gets_483(sw: Switch, value: str) -> None:
    """§20.22: Max-Forwards is a number; "00" is zero too (RFC 4475 wsinv has "0068")."""
    with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
        call_id, data = invite(peer, sw, SERVICE_NUMBER)
        data = data.replace(b"Max-Forwards: 70", b"Max-Forwards: " + value.encode())
        response, statuses = final(peer, data, call_id)
    assert response is not None and response.status == 483, statuses
    assert 200 not in statuses


def test_max_forwards_zero_options_gets_200(sw: Switch) -> None:
    """RFC 3261 §11 / RFC 4475 §3.3.11: an endpoint answers OPTIONS with Max-Forwards 0."""
    with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
        call_id, data = peer.request("OPTIONS", f"sip:127.0.0.1:{sw.sip_port}")
        response, _ = final(peer, data.replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), call_id)
    assert response is not None and response.status == 200


def test_require_foo_gets_420_with_unsupported(sw: Switch) -> None:
    with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
        call_id, data = invite(peer, sw, SERVICE_NUMBER, "Require: foo")
        response, statuses = final(peer, data, call_id)
    assert response is not None and response.status == 420, statuses
    assert (response.header("Unsupported") or "").replace(" ", "") == "foo"


@pytest.mark.parametrize("header", ["Content-Encoding: gzip", "e: deflate"])
def test_unknown_content_encoding_gets_415(sw: Switch, header: str) -> None:
    """§8.2.3: a body in a coding we cannot read gets 415 with Accept-Encoding."""
    with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
        call_id, data = invite(peer, sw, SERVICE_NUMBER, header)
        response, statuses = final(peer, data, call_id)
    assert response is not None and response.status == 415, statuses
    assert response.header("Accept-Encoding") == "identity"
    assert 200 not in statuses


def test_unknown_content_type_gets_415_with_one_accept(sw: Switch) -> None:
    """RFC 4475 §3.3.6 (invut): 415 listing what we accept, once."""
    with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
        uri = f"sip:{SERVICE_NUMBER}@127.0.0.1:{sw.sip_port}"
        call_id, data = peer.request("INVITE", uri, "Content-Type: text/x-unknown", body="hi")
        response, _ = final(peer, data, call_id)
    assert response is not None and response.status == 415
    accepts = [v for k, v in response.headers if k.lower() == "accept"]
    assert accepts == ["application/sdp"], response.raw


def test_options_capabilities(sw: Switch) -> None:
    """§11.2: Allow, Accept and Supported in the 200; Allow names what we serve."""
    with SipPeer(("127.0.0.1", sw.sip_port)) as peer:
        response = peer.options()
    assert response is not None and response.status == 200
    allow = set(re.split(r"\s*,\s*", response.header("Allow") or ""))
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER"} <= allow
    assert "application/sdp" in (response.header("Accept") or "")
    assert any(k.lower() == "supported" for k, _ in response.headers)


def test_ipv6_options_and_unknown_number(tmp_path: Path) -> None:
    """SIP over IPv6 (issue 2, §3): from ::1, the trunk's IPv6 address, OPTIONS gets 200
    and an INVITE to an unknown number 404, like over IPv4."""
    need_ipv6()
    switch = start_switch(tmp_path, sip_host="::1")
    try:
        with SipPeer(switch.sip_addr, source="::1") as peer:
            response = peer.options()
            assert response is not None and response.status == 200
            via = response.header("Via") or ""
            assert f"rport={peer.port}" in via, via
            uri = f"sip:{UNKNOWN_NUMBER}@{switch.sip}"
            call_id, data = peer.request("INVITE", uri, "Content-Type: application/sdp", body=SDP)
            refused, statuses = final(peer, data, call_id)
            assert refused is not None and refused.status == 404, statuses
    finally:
        stop_process(switch.process)
    assert not TRACEBACK.search(switch.log()), switch.log()[-3000:]


# -- the registrar's checks (RFC 3261 §10.3) -------------------------------------------------


def unregister_all(sw: Switch, user: str, source: str = "127.0.0.1") -> None:
    with SipPeer(sw.sip_addr, source=source) as peer:
        done = Registration(peer, user).authenticated(
            "Expires: 0", contact="*", user=user, password=f"demo{user}"
        )
    assert done is not None and done.status == 200


def test_register_below_min_expires_gets_423(sw: Switch) -> None:
    with SipPeer(sw.sip_addr) as peer:
        response = Registration(peer, "1002").authenticated(
            "Expires: 5", user="1002", password="demo1002"
        )
    assert response is not None and response.status == 423
    assert response.header("Min-Expires") == "60"  # sip.min_expires in trentino.yaml


def test_register_wildcard_with_nonzero_expires_gets_400(sw: Switch) -> None:
    """§10.3 step 6: `Contact: *` is only allowed with Expires 0."""
    with SipPeer(sw.sip_addr) as peer:
        response = Registration(peer, "1002").authenticated(
            "Expires: 60", contact="*", user="1002", password="demo1002"
        )
    assert response is not None and response.status == 400


def test_register_for_another_operator_is_refused(sw: Switch) -> None:
    """§10.3 step 4: 1002's credentials never bind 1001's address-of-record."""
    before = registrations(sw)
    with SipPeer(sw.sip_addr) as peer:
        response = Registration(peer, "1001").authenticated(user="1002", password="demo1002")
    assert response is not None and response.status == 403
    assert registrations(sw) == before


def test_refresh_keeps_one_binding_and_replayed_credentials_fail(sw: Switch) -> None:
    """A refresh (same Call-ID, higher CSeq) keeps one binding; the same nonce-count
    sent again in a new request is a replay (RFC 7616 §3.4) and is not accepted."""
    before = registrations(sw)
    with SipPeer(sw.sip_addr) as peer:
        reg = Registration(peer, "1002")
        first = reg.authenticated("Expires: 60", user="1002", password="demo1002")
        assert first is not None and first.status == 200
        assert registrations(sw) == before + 1
        again = reg.authenticated("Expires: 60", user="1002", password="demo1002")
        assert again is not None and again.status == 200
        assert registrations(sw) == before + 1
        replay = reg.send("Expires: 60", auth=reg.last_auth)
        assert replay is not None and replay.status == 401, replay
    assert "registration 1002 refreshed" in sw.log()
    unregister_all(sw, "1002")
    assert registrations(sw) == before


def test_registered_phone_is_let_in_but_not_to_call_unauthenticated(sw: Switch) -> None:
    """A registered phone's address (127.0.0.2 here) may talk to the switch: its OPTIONS
    is answered. Its INVITE is never answered 2xx without credentials: challenged (407,
    as README.md says) or refused (403: routing/b2bua.py serves no operator-originated
    calls yet). Once unregistered, the address is a stranger again."""
    with SipPeer(sw.sip_addr, source="127.0.0.2") as phone:
        reg = Registration(phone, "1003")
        done = reg.authenticated("Expires: 60", user="1003", password="demo1003")
        assert done is not None and done.status == 200
        pong = phone.options()
        assert pong is not None and pong.status == 200
        call_id, data = invite(phone, sw, SERVICE_NUMBER)
        response, statuses = final(phone, data, call_id)
        assert response is not None and response.status in (403, 407), statuses
        assert not any(200 <= s < 300 for s in statuses)
    unregister_all(sw, "1003", source="127.0.0.2")
    with SipPeer(sw.sip_addr, source="127.0.0.2") as stranger:
        pong = stranger.options()
    assert pong is not None and pong.status == 403
