"""Dialogs (RFC 3261 §12, §13.2.2.4, §14) over two transaction layers in virtual time."""

from __future__ import annotations

import pytest
from dialog_link import ALICE, BOB, Endpoint, fractions, invite, transfer

from sip.dialog import Dialog, DialogId, DialogState, ReinviteRetryDue, Rejection, Role
from sip.errors import LocalProtocolError
from sip.events import AckReceived, RequestReceived, ResponseReceived
from sip.message import Request, Response, make_response
from sip.parser import parse_message

RR = ("<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>")


def received(ep: Endpoint) -> RequestReceived:
    got = [e for e in ep.events() if isinstance(e, RequestReceived)]
    assert len(got) == 1
    return got[0]


def final_responses(ep: Endpoint) -> list[Response]:
    return [
        e.response
        for e in ep.events()
        if isinstance(e, ResponseReceived) and e.response.status >= 200
    ]


def answer(
    ep: Endpoint, got: RequestReceived, status: int, *, contact: str | None = None
) -> Response:
    extra = [("Record-Route", rr) for rr in got.request.headers.values("record-route")]
    if contact:
        extra.append(("Contact", contact))
    tag = "bobtag" if got.request.to.tag is None else None
    response = make_response(got.request, status, to_tag=tag, extra=tuple(extra))
    ep.layer.send_response(got.key, response, now=0.0)
    ep.dialogs.response_sent(got.request, response)
    return response


def call() -> tuple[Endpoint, Endpoint, Dialog, Dialog, Request]:
    """Alice calls Bob through two (pretend) record-routing proxies; Bob answers 200."""
    alice, bob = Endpoint(ALICE, "alice"), Endpoint(BOB, "bob")
    request = invite(alice, bob, record_route=RR)
    alice.layer.send_request(request, BOB, now=0.0)
    transfer(alice, bob)
    got = received(bob)
    answer(bob, got, 200, contact="<sip:bob@10.0.0.2:5060>")
    transfer(alice, bob)
    (ok,) = final_responses(alice)
    uac = alice.dialogs.receive_response(request, ok, now=0.0)
    uas = bob.dialogs.get(bob_id(got.request))
    assert uac is not None and uas is not None
    return alice, bob, uac, uas, request


def bob_id(request: Request) -> DialogId:
    return DialogId(request.call_id, "bobtag", request.from_.tag or "")


def test_2xx_creates_confirmed_dialogs_on_both_sides_with_the_rfc_route_sets() -> None:
    _, _, uac, uas, request = call()
    assert uac.state is uas.state is DialogState.CONFIRMED
    assert (uac.role, uas.role) == (Role.UAC, Role.UAS)
    assert uac.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]  # reversed
    assert uas.route_set == list(RR)
    assert uac.remote_target == "sip:bob@10.0.0.2:5060"
    assert uas.remote_target == "sip:alice@10.0.0.1:5060"
    assert uac.id.local_tag == uas.id.remote_tag == request.from_.tag
    assert uac.id.remote_tag == uas.id.local_tag == "bobtag"
    assert (uac.local_cseq, uac.remote_cseq, uas.remote_cseq, uas.local_cseq) == (1, None, 1, None)


def test_ack_for_2xx_has_a_new_branch_and_the_invite_cseq_and_reaches_the_uas_dialog() -> None:
    alice, bob, uac, uas, request = call()
    ack = uac.create_ack(request.cseq.seq)
    alice.layer.send_request(ack, BOB, now=0.0)
    transfer(alice, bob)
    (got,) = bob.events()
    assert isinstance(got, AckReceived)
    assert got.request.cseq.seq == 1 and got.request.cseq.method == "ACK"
    assert got.request.top_via.branch != request.top_via.branch
    assert got.request.uri == "sip:bob@10.0.0.2:5060"
    assert [str(r) for r in got.request.headers.values("route")] == uac.route_set
    assert bob.dialogs.receive_request(got.request) is uas
    assert bob.layer.get_timer() == 32.0  # only Timer L remains: the 2xx retransmission stopped


def test_bye_in_dialog_terminates_both_dialogs() -> None:
    alice, bob, uac, uas, _ = call()
    bye = uac.create_request("BYE")
    assert bye.cseq.seq == 2 and bye.to.tag == "bobtag" and "contact" not in bye.headers
    key = alice.layer.send_request(bye, BOB, now=1.0)
    transfer(alice, bob, now=1.0)
    got = received(bob)
    assert bob.dialogs.receive_request(got.request) is uas
    assert uas.state is DialogState.TERMINATED and len(bob.dialogs) == 0
    bob.layer.send_response(got.key, make_response(got.request, 200), now=1.0)
    transfer(alice, bob, now=1.0)
    (ok,) = [e for e in alice.events() if isinstance(e, ResponseReceived)]
    assert ok.key == key
    alice.dialogs.receive_response(bye, ok.response, now=1.0)
    assert uac.state is DialogState.TERMINATED and len(alice.dialogs) == 0


@pytest.mark.parametrize("method", ["INFO", "REFER", "NOTIFY"])
def test_in_dialog_requests_carry_tags_route_and_contact_for_target_refreshes(method: str) -> None:
    _, _, _, uas, _ = call()
    request = uas.create_request(method, extra=(("Event", "refer"),))
    assert request.uri == "sip:alice@10.0.0.1:5060"
    assert request.from_.tag == "bobtag" and request.cseq.seq == 1  # UAS local CSeq was empty
    assert request.headers.values("route") == list(RR)
    assert ("contact" in request.headers) == (method != "INFO")
    assert request.headers.get("event") == "refer"


def test_unknown_dialog_gets_481_and_lower_cseq_gets_500() -> None:
    _, bob, uac, uas, _ = call()
    info = uac.create_request("INFO")
    stray = parse_message(info.to_bytes().replace(b"tag=bobtag", b"tag=nobody"))
    assert isinstance(stray, Request)
    rejection = bob.dialogs.receive_request(stray)
    assert rejection == Rejection(status=481, reason="no such dialog")
    assert rejection.response(stray).status == 481
    assert bob.dialogs.receive_request(info) is uas
    old = parse_message(info.to_bytes().replace(b"CSeq: 2 INFO", b"CSeq: 1 INFO"))
    assert isinstance(old, Request)
    assert bob.dialogs.receive_request(old) == Rejection(status=500, reason="CSeq out of order")
    assert uas.remote_cseq == 2


def test_hold_reinvite_refreshes_the_target_and_unhold_follows() -> None:
    alice, bob, uac, uas, _ = call()
    for direction, at in (("sendonly", 1.0), ("sendrecv", 2.0)):
        reinvite = uac.create_request("INVITE", body=f"a={direction}\r\n".encode())
        alice.layer.send_request(reinvite, BOB, now=at)
        transfer(alice, bob, now=at)
        got = received(bob)
        assert bob.dialogs.receive_request(got.request) is uas
        assert got.request.body == f"a={direction}\r\n".encode()
        answer(bob, got, 200, contact="<sip:bob@192.0.2.9:5062>")
        transfer(alice, bob, now=at)
        (ok,) = final_responses(alice)
        alice.dialogs.receive_response(reinvite, ok, now=at)
        alice.layer.send_request(uac.create_ack(reinvite.cseq.seq), BOB, now=at)
    assert uac.remote_target == "sip:bob@192.0.2.9:5062"
    assert (uac.local_cseq, uas.remote_cseq) == (3, 3)
    assert not uac.invite_pending and not uas.remote_invite_pending


def test_reinvite_glare_gets_491_and_retries_after_the_rfc_back_off() -> None:
    alice, bob, uac, uas, _ = call()
    alice.draws = fractions(0.0)  # owner of the Call-ID: 2.1 s at the lowest draw
    bob.draws = fractions(0.25)  # not the owner: 0-2 s in 10 ms steps, here 0.5 s
    mine, theirs = uac.create_request("INVITE"), uas.create_request("INVITE")
    assert bob.dialogs.receive_request(mine) == Rejection(status=491, reason="re-INVITE glare")
    assert alice.dialogs.receive_request(theirs) == Rejection(status=491, reason="re-INVITE glare")
    alice.dialogs.receive_response(mine, make_response(mine, 491), now=10.0)
    bob.dialogs.receive_response(theirs, make_response(theirs, 491), now=10.0)
    assert alice.dialogs.get_timer() == pytest.approx(12.1)
    assert bob.dialogs.get_timer() == pytest.approx(10.5)
    bob.dialogs.handle_timer(now=10.5)
    assert bob.dialogs.next_event() == ReinviteRetryDue(at=10.5, dialog_id=uas.id)
    assert bob.dialogs.get_timer() is None
    retry = uas.create_request("INVITE")
    assert alice.dialogs.receive_request(retry) is uac  # no longer glare


def test_glare_delay_ranges() -> None:
    _, _, uac, uas, _ = call()
    owner = [uac.glare_delay(f / 100) for f in range(100)] + [uac.glare_delay(0.999999)]
    other = [uas.glare_delay(f / 100) for f in range(100)] + [uas.glare_delay(0.999999)]
    assert min(owner) == 2.1 and max(owner) == 4.0
    assert min(other) == 0.0 and max(other) == 2.0
    assert all(round(d * 100) == pytest.approx(d * 100) for d in owner + other)


def test_second_remote_invite_while_one_is_pending_gets_500_with_retry_after() -> None:
    _, _, uac, uas, _ = call()
    first = uac.create_request("INVITE")
    assert uas.receive_request(first) is None
    uac.invite_pending = False  # pretend Alice gave up waiting and sent another
    second = uac.create_request("INVITE")
    rejection = uas.receive_request(second)
    assert rejection is not None and rejection.status == 500
    assert rejection.response(second).headers.get("retry-after") == "1"


def test_our_reinvite_cannot_overlap_a_pending_one() -> None:
    _, _, uac, _, _ = call()
    uac.create_request("INVITE")
    with pytest.raises(LocalProtocolError):
        uac.create_request("INVITE")
    with pytest.raises(LocalProtocolError):
        uac.create_request("ACK")


def test_481_to_an_in_dialog_request_terminates_the_dialog() -> None:
    alice, _, uac, _, _ = call()
    info = uac.create_request("INFO")
    alice.dialogs.receive_response(info, make_response(info, 481), now=0.0)
    assert uac.state is DialogState.TERMINATED and len(alice.dialogs) == 0
    with pytest.raises(LocalProtocolError):
        uac.create_request("BYE")
