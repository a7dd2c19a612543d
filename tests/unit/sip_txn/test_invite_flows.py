"""INVITE transactions end to end over the in-memory link (RFC 3261 §17, §13, RFC 6026)."""

from __future__ import annotations

import pytest
from txn_link import A, B, Link, events, request

from sip.errors import LocalProtocolError
from sip.events import (
    AckReceived,
    AckTimedOut,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
)
from sip.header_fields import Headers
from sip.message import Request, Response, make_response
from sip.parser import parse_message
from sip.transaction import ClientTransactionKey


def invite_received(link: Link) -> RequestReceived:
    link.transfer()
    got = [e for e in events(link.b) if isinstance(e, RequestReceived)]
    assert len(got) == 1
    return got[0]


def statuses(link: Link) -> list[int]:
    return [e.response.status for e in events(link.a) if isinstance(e, ResponseReceived)]


def ack_for(response: Response, invite: Request) -> Request:
    """The UAC core's ACK for a 2xx (§13.2.2.4): new transaction, same CSeq number."""
    headers = Headers.of(
        ("Max-Forwards", "70"),
        ("From", invite.headers.get("from") or ""),
        ("To", response.headers.get("to") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} ACK"),
    )
    return Request("ACK", invite.uri, headers)


def answer(link: Link, status: int, *, at: float = 0.0) -> tuple[RequestReceived, Response]:
    got = invite_received(link)
    response = make_response(got.request, status, to_tag="bob-tag")
    link.b.send_response(got.key, response, now=at)
    return got, response


def test_server_sends_100_at_once_and_passes_the_invite_up() -> None:
    link = Link()
    link.a.send_request(request("INVITE"), B, now=0.0)
    got = invite_received(link)
    assert got.request.method == "INVITE" and got.addr == A
    assert [s.line for s in link.wire] == [
        "INVITE sip:bob@10.0.0.2:5060 SIP/2.0",
        "SIP/2.0 100 Trying",
    ]


def test_success_reaches_accepted_ack_is_end_to_end_and_timers_l_m_end_both() -> None:
    link = Link()
    invite = request("INVITE")
    link.a.send_request(invite, B, now=0.0)
    _, ok = answer(link, 200)
    link.transfer()
    assert statuses(link) == [100, 200]
    link.a.send_request(ack_for(ok, invite), B, now=0.0)
    link.transfer()
    acks = events(link.b)
    assert len(acks) == 1 and isinstance(acks[0], AckReceived)
    link.run_until(31.9)
    assert link.sent(B, "SIP/2.0 200") == [0.0]  # the ACK stopped the retransmission
    assert link.a.transaction_count == 1 and link.b.transaction_count == 1  # Accepted
    link.run_until(32.0)
    assert link.a.transaction_count == 0 and link.b.transaction_count == 0  # Timers L and M


def test_accepted_state_absorbs_invite_retransmissions_and_passes_2xx_retransmissions() -> None:
    # The 200 is lost once: B's core retransmits it, A's Accepted state passes it up.
    link = Link(drop=lambda s: s.line.startswith("SIP/2.0 200") and s.at == 0.0)
    invite = request("INVITE")
    link.a.send_request(invite, B, now=0.0)
    answer(link, 200)
    link.run_until(0.5)
    assert statuses(link) == [100, 200]
    (invite_bytes,) = [s.data for s in link.wire if s.line.startswith("INVITE")]
    link.b.receive_datagram(invite_bytes, A, now=0.6)  # a late retransmission
    assert link.b.datagrams_to_send() == [] and events(link.b) == []


def test_2xx_is_retransmitted_until_the_ack_then_stops() -> None:
    link = Link(drop=lambda s: s.line.startswith("ACK") and s.at < 3.0)
    invite = request("INVITE")
    link.a.send_request(invite, B, now=0.0)
    _, ok = answer(link, 200)
    link.transfer()
    statuses(link)
    link.a.send_request(ack_for(ok, invite), B, now=0.0)
    link.run_until(40.0)
    # T1, 2*T1, 4*T1 capped at T2; the ACK resent for the 3.5 s copy gets through.
    assert link.sent(B, "SIP/2.0 200") == [0.0, 0.5, 1.5, 3.5]
    assert link.sent(A, "ACK") == [0.0, 0.5, 1.5, 3.5]
    assert statuses(link) == []  # retransmitted 2xx answered by the layer, not the TU
    assert [type(e) for e in events(link.b)] == [AckReceived]


def test_2xx_retransmission_gives_up_after_64_t1_with_an_event() -> None:
    link = Link(drop=lambda s: s.src == B and s.at > 0)
    link.a.send_request(request("INVITE"), B, now=0.0)
    got, _ = answer(link, 200)
    link.run_until(100.0)
    expected = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert link.sent(B, "SIP/2.0 200") == expected
    timed_out = [e for e in events(link.b) if isinstance(e, AckTimedOut)]
    assert timed_out == [AckTimedOut(at=32.0, key=got.key, call_id="call-1", cseq=1)]


def test_failure_is_acked_by_the_client_transaction_with_the_same_branch() -> None:
    link = Link()
    key = link.a.send_request(request("INVITE"), B, now=0.0)
    answer(link, 486)
    link.transfer()
    assert statuses(link) == [100, 486]
    (ack_bytes,) = [s.data for s in link.wire if s.line.startswith("ACK")]
    ack = parse_message(ack_bytes)
    assert ack.top_via.branch == key.branch and ack.to.tag == "bob-tag"
    assert ack.cseq.method == "ACK" and len(ack.vias) == 1
    assert events(link.b) == []  # absorbed by the server transaction (Confirmed)


def test_timer_g_retransmits_the_failure_and_timer_h_times_out() -> None:
    link = Link(drop=lambda s: s.line.startswith("ACK"))
    link.a.send_request(request("INVITE"), B, now=0.0)
    got, _ = answer(link, 603)
    link.run_until(100.0)
    expected = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert link.sent(B, "SIP/2.0 603") == expected
    assert link.sent(A, "ACK") == expected  # ACK resent for each retransmission
    assert events(link.b) == [TransactionTimedOut(at=32.0, key=got.key, method="INVITE")]
    assert statuses(link) == [100, 603]  # the TU sees the failure once


def test_timer_i_ends_confirmed_after_t4_and_timer_d_ends_completed_after_32s() -> None:
    link = Link()
    link.a.send_request(request("INVITE"), B, now=0.0)
    answer(link, 480)
    link.run_until(4.9)
    assert link.b.transaction_count == 1
    link.run_until(5.0)
    assert link.b.transaction_count == 0
    link.run_until(31.9)
    assert link.a.transaction_count == 1
    link.run_until(32.0)
    assert link.a.transaction_count == 0


def test_retransmitted_invite_gets_the_last_provisional_again() -> None:
    link = Link(drop=lambda s: s.src == B and s.at > 0)
    invite = request("INVITE")
    link.a.send_request(invite, B, now=0.0)
    got = invite_received(link)
    link.now = 1.0
    link.b.send_response(got.key, make_response(got.request, 180, to_tag="t"), now=1.0)
    link.transfer()
    link.b.receive_datagram(invite.to_bytes(), A, now=2.0)
    assert [d.split(b"\r\n")[0] for d, _ in link.b.datagrams_to_send()] == [b"SIP/2.0 180 Ringing"]


def test_tu_cannot_send_a_second_final_response() -> None:
    link = Link()
    link.a.send_request(request("INVITE"), B, now=0.0)
    got, _ = answer(link, 486)
    with pytest.raises(LocalProtocolError):
        link.b.send_response(got.key, make_response(got.request, 200, to_tag="x"), now=0.0)


def test_unknown_server_key_is_a_local_error() -> None:
    link = Link()
    with pytest.raises(LocalProtocolError):
        link.a.cancel(ClientTransactionKey("z9hG4bKnone", "INVITE"), now=0.0)
    with pytest.raises(LocalProtocolError):
        link.b.send_response(request("OPTIONS"), Response(200), now=0.0)
