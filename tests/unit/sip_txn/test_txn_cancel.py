"""CANCEL (RFC 3261 §9): built by the client layer, answered by the server layer."""

from __future__ import annotations

from txn_link import A, B, Link, events, request

from sip.events import CancelReceived, RequestReceived, ResponseReceived, TransactionTimedOut
from sip.message import Request, make_response
from sip.parser import parse_message
from sip.transaction import ClientTransactionKey, State


def wire_messages(link: Link, prefix: str) -> list[Request]:
    out = []
    for s in link.wire:
        if s.line.startswith(prefix):
            message = parse_message(s.data)
            assert isinstance(message, Request)
            out.append(message)
    return out


def responses(link: Link) -> list[tuple[str, int]]:
    return [
        (e.key.method, e.response.status) for e in events(link.a) if isinstance(e, ResponseReceived)
    ]


def test_cancel_waits_for_a_provisional_then_gets_200_and_the_invite_487() -> None:
    link = Link()
    invite = request("INVITE")
    key = link.a.send_request(invite, B, now=0.0)
    cancel_key = link.a.cancel(key, now=0.0)
    assert cancel_key == ClientTransactionKey(key.branch, "CANCEL")
    (only,) = link.a.datagrams_to_send()  # no CANCEL before a provisional response
    assert only[0].startswith(b"INVITE")
    link.b.receive_datagram(only[0], A, now=0.0)
    link.transfer()
    (cancel,) = wire_messages(link, "CANCEL")
    assert (cancel.uri, cancel.call_id, cancel.cseq.seq) == (invite.uri, "call-1", 1)
    assert cancel.top_via.branch == key.branch and len(cancel.vias) == 1
    assert cancel.headers.get("to") == invite.headers.get("to")
    assert cancel.headers.get("from") == invite.headers.get("from")
    got = events(link.b)
    assert [type(e) for e in got] == [RequestReceived, CancelReceived]
    assert isinstance(got[1], CancelReceived) and got[1].invite_terminated
    assert got[1].invite_key == got[0].key  # type: ignore[union-attr]
    assert sorted(responses(link)) == [("CANCEL", 200), ("INVITE", 100), ("INVITE", 487)]
    (ack,) = wire_messages(link, "ACK")
    assert ack.top_via.branch == key.branch  # the 487 is ACKed inside the transaction
    assert events(link.b) == []


def test_cancel_after_the_final_response_is_too_late() -> None:
    link = Link()
    key = link.a.send_request(request("INVITE"), B, now=0.0)
    link.transfer()
    (got,) = events(link.b)
    assert isinstance(got, RequestReceived)
    link.b.send_response(got.key, make_response(got.request, 486, to_tag="b"), now=0.0)
    link.transfer()
    assert link.a.cancel(key, now=0.0) is None
    assert wire_messages(link, "CANCEL") == []


def test_cancel_after_200_is_answered_200_and_the_invite_is_left_alone() -> None:
    link = Link(drop=lambda s: s.line.startswith("SIP/2.0 200") and s.src == B)
    key = link.a.send_request(request("INVITE"), B, now=0.0)
    link.transfer()
    (got,) = events(link.b)
    assert isinstance(got, RequestReceived)
    link.b.send_response(got.key, make_response(got.request, 200, to_tag="b"), now=0.0)
    link.a.cancel(key, now=0.0)
    link.transfer()
    (cancelled,) = events(link.b)
    assert isinstance(cancelled, CancelReceived) and not cancelled.invite_terminated
    assert link.sent(B, "SIP/2.0 487") == []


def test_cancel_for_no_transaction_gets_481() -> None:
    link = Link()
    link.a.send_request(request("CANCEL"), B, now=0.0)
    link.transfer()
    assert [s.line for s in link.wire][1] == "SIP/2.0 481 Call/Transaction Does Not Exist"
    assert responses(link) == [("CANCEL", 481)]
    assert events(link.b) == []


def test_cancelled_invite_without_final_times_out_64_t1_after_the_cancel() -> None:
    # The peer answers 100 and the CANCEL's 200 but never the 487.
    link = Link(drop=lambda s: s.line.startswith("SIP/2.0 487"))
    key = link.a.send_request(request("INVITE"), B, now=0.0)
    link.run_until(1.0)
    link.a.cancel(key, now=1.0)
    link.run_until(100.0)
    timed_out = [e for e in events(link.a) if isinstance(e, TransactionTimedOut)]
    assert [(e.at, e.key) for e in timed_out] == [(33.0, key)]
    assert link.a.transaction_count == 0
    assert link.sent(A, "CANCEL") == [1.0]
    assert A in {s.src for s in link.wire}


def test_server_state_tells_the_tu_the_invite_was_cancelled() -> None:
    link = Link()
    key = link.a.send_request(request("INVITE"), B, now=0.0)
    link.transfer()
    (got,) = events(link.b)
    assert isinstance(got, RequestReceived)
    assert link.b.server_state(got.key) is State.PROCEEDING
    assert link.a.client_state(key) is State.PROCEEDING
    link.a.cancel(key, now=0.0)
    link.transfer()
    assert link.b.server_state(got.key) is State.CONFIRMED  # 487 sent and ACKed
    assert link.a.client_state(key) is State.COMPLETED
