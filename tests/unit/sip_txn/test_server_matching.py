"""Server-side matching (§17.2.3 incl. RFC 2543), responses' address (§18.2.2, RFC 3581),
non-INVITE server retransmissions and stateless answers to malformed requests."""

from __future__ import annotations

from txn_link import A, B, Link, events, request

from sip.events import (
    AckReceived,
    MalformedRequestAnswered,
    MessageDropped,
    RequestReceived,
    TransportFailed,
)
from sip.ids import CounterIds
from sip.message import make_response
from sip.parser import parse_message
from sip.transaction import State
from sip.transaction_layer import TransactionLayer

LEGACY_INVITE = (
    b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060\r\n"
    b"From: <sip:old@10.0.0.1>;tag=old-1\r\n"
    b"To: <sip:bob@10.0.0.2>\r\n"
    b"Call-ID: legacy-1\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def uas() -> TransactionLayer:
    return TransactionLayer(local_host="10.0.0.2", local_port=5060, ids=CounterIds("b"))


def lines(ep: TransactionLayer) -> list[tuple[str, tuple[str, int]]]:
    return [(d.split(b"\r\n")[0].decode(), addr) for d, addr in ep.datagrams_to_send()]


def test_rfc2543_retransmission_matches_and_ack_for_the_failure_is_absorbed() -> None:
    ep = uas()
    ep.receive_datagram(LEGACY_INVITE, A, now=0.0)
    (got,) = events(ep)
    assert isinstance(got, RequestReceived)
    ep.send_response(got.key, make_response(got.request, 486, to_tag="bt"), now=0.0)
    ep.datagrams_to_send()
    ep.receive_datagram(LEGACY_INVITE, A, now=0.2)
    assert lines(ep) == [("SIP/2.0 486 Busy Here", A)]
    ack = LEGACY_INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"7 INVITE", b"7 ACK")
    ack = ack.replace(b"To: <sip:bob@10.0.0.2>", b"To: <sip:bob@10.0.0.2>;tag=bt")
    ep.receive_datagram(ack, A, now=0.3)
    assert events(ep) == []
    ep.handle_timer(now=5.3)  # Timer I: Confirmed ends T4 after the ACK
    assert ep.transaction_count == 0 and lines(ep) == []


def test_rfc2543_request_with_another_from_tag_is_a_new_transaction() -> None:
    ep = uas()
    ep.receive_datagram(LEGACY_INVITE, A, now=0.0)
    ep.receive_datagram(LEGACY_INVITE.replace(b"tag=old-1", b"tag=old-2"), A, now=0.1)
    assert [type(e) for e in events(ep)] == [RequestReceived, RequestReceived]
    assert ep.transaction_count == 2


def test_rfc2543_ack_with_another_to_tag_does_not_match() -> None:
    ep = uas()
    ep.receive_datagram(LEGACY_INVITE, A, now=0.0)
    (got,) = events(ep)
    assert isinstance(got, RequestReceived)
    ep.send_response(got.key, make_response(got.request, 486, to_tag="bt"), now=0.0)
    ack = LEGACY_INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"7 INVITE", b"7 ACK")
    ep.receive_datagram(ack.replace(b"bob@10.0.0.2>\r\n", b"bob@10.0.0.2>;tag=zz\r\n"), A, now=0.1)
    assert [type(e) for e in events(ep)] == [AckReceived]  # passed up, not absorbed


def test_same_branch_from_another_sent_by_is_another_transaction() -> None:
    link = Link()
    options = request("OPTIONS")
    link.a.send_request(options, B, now=0.0)
    link.transfer()
    other = options.to_bytes().replace(b"10.0.0.1:5060;branch", b"10.0.0.9:5060;branch")
    link.b.receive_datagram(other, ("10.0.0.9", 5060), now=0.1)
    assert [type(e) for e in events(link.b)] == [RequestReceived, RequestReceived]


def test_non_invite_server_resends_its_final_on_retransmission_until_timer_j() -> None:
    link = Link(drop=lambda s: s.src == B)
    options = request("OPTIONS")
    link.a.send_request(options, B, now=0.0)
    link.transfer()
    (got,) = events(link.b)
    assert isinstance(got, RequestReceived)
    link.b.send_response(got.key, make_response(got.request, 200, to_tag="x"), now=0.0)
    link.run_until(40.0)
    assert link.sent(A, "OPTIONS") == link.sent(B, "SIP/2.0 200")
    assert len(link.sent(B, "SIP/2.0 200")) == 11
    assert events(link.b) == []  # retransmissions never reach the TU again
    assert link.b.transaction_count == 0  # Timer J at 32 s


def test_rport_sends_the_response_to_the_source_port_and_stamps_the_via() -> None:
    ep = uas()
    data = request("OPTIONS").to_bytes()
    data = data.replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKx;rport\r\nMax-Forwards"
    )
    ep.receive_datagram(data, ("203.0.113.5", 40000), now=0.0)
    (got,) = events(ep)
    assert isinstance(got, RequestReceived) and got.addr == ("203.0.113.5", 40000)
    ep.send_response(got.key, make_response(got.request, 200, to_tag="t"), now=0.0)
    ((out, addr),) = ep.datagrams_to_send()
    assert addr == ("203.0.113.5", 40000)
    via = parse_message(out).top_via
    assert via.params["received"] == "203.0.113.5" and via.params["rport"] == "40000"


def test_without_rport_a_different_source_gets_received_and_the_via_port() -> None:
    ep = uas()
    data = request("OPTIONS").to_bytes()
    data = data.replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP pc.example.org:5070;branch=z9hG4bKy\r\nMax-Forwards"
    )
    ep.receive_datagram(data, ("198.51.100.7", 6000), now=0.0)
    (got,) = events(ep)
    assert isinstance(got, RequestReceived)
    ep.send_response(got.key, make_response(got.request, 200, to_tag="t"), now=0.0)
    ((out, addr),) = ep.datagrams_to_send()
    assert addr == ("198.51.100.7", 5070)
    assert "rport" not in parse_message(out).top_via.params


def test_garbage_is_dropped_with_an_event() -> None:
    ep = uas()
    ep.receive_datagram(b"\x00\xffhello", A, now=1.0)
    (dropped,) = events(ep)
    assert isinstance(dropped, MessageDropped) and dropped.addr == A and dropped.at == 1.0
    assert ep.datagrams_to_send() == []


def test_unsupported_version_gets_505_with_the_reason_in_a_warning() -> None:
    ep = uas()
    data = request("OPTIONS").to_bytes().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1)
    data = data.replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKv\r\nMax-Forwards"
    )
    ep.receive_datagram(data, A, now=0.0)
    (answered,) = events(ep)
    assert isinstance(answered, MalformedRequestAnswered) and answered.status == 505
    ((out, addr),) = ep.datagrams_to_send()
    response = parse_message(out)
    assert addr == A and response.status == 505  # type: ignore[union-attr]
    assert "SIP/7.0" in (response.headers.get("warning") or "")
    assert response.to.tag is not None


def test_cseq_method_mismatch_gets_400_and_missing_call_id_is_dropped() -> None:
    ep = uas()
    base = request("OPTIONS").to_bytes()
    base = base.replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKm\r\nMax-Forwards"
    )
    ep.receive_datagram(base.replace(b"1 OPTIONS", b"1 INFO"), A, now=0.0)
    ep.receive_datagram(base.replace(b"Call-ID: call-1\r\n", b""), A, now=0.0)
    got = events(ep)
    assert [type(e) for e in got] == [MalformedRequestAnswered, MessageDropped]
    assert [d.split(b"\r\n")[0] for d, _ in ep.datagrams_to_send()] == [b"SIP/2.0 400 Bad Request"]


def test_too_many_headers_gets_513_and_a_malformed_ack_is_never_answered() -> None:
    ep = uas()
    base = request("OPTIONS").to_bytes()
    base = base.replace(
        b"Max-Forwards", b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKh\r\nMax-Forwards"
    )
    ep.receive_datagram(
        base.replace(b"\r\n\r\n", b"\r\n" + b"X-A: 1\r\n" * 600 + b"\r\n"), A, now=0.0
    )
    assert [d.split(b"\r\n")[0] for d, _ in ep.datagrams_to_send()] == [
        b"SIP/2.0 513 Message Too Large"
    ]
    ack = base.replace(b"OPTIONS", b"ACK").replace(b"1 ACK", b"1 INFO")
    ep.receive_datagram(ack, A, now=0.0)
    assert ep.datagrams_to_send() == []
    assert [type(e) for e in events(ep)] == [MalformedRequestAnswered, MessageDropped]


def test_stray_response_is_dropped() -> None:
    ep = uas()
    response = make_response(parse_message(LEGACY_INVITE), 200, to_tag="x")  # type: ignore[arg-type]
    ep.receive_datagram(response.to_bytes(), A, now=0.0)
    (dropped,) = events(ep)
    assert isinstance(dropped, MessageDropped) and "stray" in dropped.reason


def test_transport_error_fails_the_transactions_towards_that_address() -> None:
    link = Link()
    key = link.a.send_request(request("OPTIONS"), B, now=0.0)
    link.a.send_request(
        request("OPTIONS", call_id="other", to=("10.9.9.9", 5060)), ("10.9.9.9", 5060), now=0.0
    )
    link.a.report_transport_error(B, now=0.2)
    assert events(link.a) == [TransportFailed(at=0.2, key=key, method="OPTIONS", addr=B)]
    assert link.a.transaction_count == 1


def test_the_layer_adds_a_via_with_a_fresh_branch_rport_and_ipv6_sent_by() -> None:
    ep = TransactionLayer(local_host="2001:db8::1", local_port=5070, ids=CounterIds("v"))
    first = request("OPTIONS")
    second = request("OPTIONS", call_id="call-2")
    k1 = ep.send_request(first, B, now=0.0)
    k2 = ep.send_request(second, B, now=0.0)
    assert first.headers.values("via") == [
        f"SIP/2.0/UDP [2001:db8::1]:5070;branch={k1.branch};rport"
    ]
    assert k1.branch.startswith("z9hG4bK") and k1.branch != k2.branch


def test_rfc2543_cancel_matches_its_invite() -> None:
    ep = uas()
    ep.receive_datagram(LEGACY_INVITE, A, now=0.0)
    cancel = LEGACY_INVITE.replace(b"INVITE sip", b"CANCEL sip").replace(b"7 INVITE", b"7 CANCEL")
    ep.receive_datagram(cancel, A, now=0.1)
    sent = [line for line, _ in lines(ep)]
    assert sent == ["SIP/2.0 100 Trying", "SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    assert [type(e).__name__ for e in events(ep)] == ["RequestReceived", "CancelReceived"]


def test_transport_error_fails_a_server_transaction_waiting_for_its_ack() -> None:
    ep = uas()
    ep.receive_datagram(LEGACY_INVITE, A, now=0.0)
    (got,) = events(ep)
    assert isinstance(got, RequestReceived)
    ep.send_response(got.key, make_response(got.request, 486, to_tag="bt"), now=0.0)
    ep.report_transport_error(A, now=0.7)
    assert events(ep) == [TransportFailed(at=0.7, key=got.key, method="INVITE", addr=A)]
    assert ep.transaction_count == 0 and ep.get_timer() is None


def test_rfc2543_clash_is_dropped_without_orphaning_the_live_transaction() -> None:
    ep = uas()
    ep.receive_datagram(LEGACY_INVITE, A, now=0.0)
    clash = LEGACY_INVITE.replace(b"To: <sip:bob@10.0.0.2>", b"To: <sip:bob@10.0.0.2>;tag=zz")
    ep.receive_datagram(clash, A, now=0.1)
    first, second = events(ep)
    assert isinstance(first, RequestReceived) and isinstance(second, MessageDropped)
    ep.send_response(first.key, make_response(first.request, 200, to_tag="ok"), now=0.2)
    assert ep.server_state(first.key) is State.ACCEPTED
