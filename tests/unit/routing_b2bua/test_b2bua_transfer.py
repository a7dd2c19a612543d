"""Call control in virtual time: blind transfer by REFER from the operator's phone
(RFC 3515, sipfrag RFC 3420) to a referent through the trunk, a queue or an operator."""

from __future__ import annotations

import pytest
from b2bua_harness import SWITCH, TRUNK, Harness, in_dialog, register
from phones import (
    PHONES,
    answer,
    answer_sdp,
    dial_feature,
    feature_invite,
    finals,
    offer_to,
    ok_to,
    phone_bye,
    queue_call,
    requests,
    respond,
)
from test_b2bua_hold import (
    CALLER_LEG,
    OPERATOR_LEG,
    bridged,
    caller_sdp,
    in_dialog_response,
    phone_request,
)

from acd.operator import OperatorState
from acd.queue import CallState
from metrics.events import EventKind
from sip.digest import answer_challenge
from sip.message import Message, Request, Response

REFERENT = ("127.0.0.1", 5060)  # the trunk's address, default port
TARGET_LEG = "call-1@pbx/transfer-0461999999"  # the referent's media leg
TO_1002_LEG = "call-1@pbx/transfer-1002"
PHONE_OF = {**PHONES, "1004": ("127.0.0.1", 5094)}


def refer(h: Harness, offer: Request, target: str, *, cseq: int = 1) -> list[Message]:
    """The operator's phone REFERs the caller to `target`."""
    return h.deliver(
        phone_request("REFER", offer, cseq=cseq, extra=(f"Refer-To: <{target}>",)),
        PHONES["1001"],
    )


def notifies(messages: list[Message]) -> list[Request]:
    """NOTIFYs sent, Timer E retransmissions left out (the test phone answers none)."""
    return list({m.top_via.branch: m for m in requests(messages, "NOTIFY")}.values())


def sipfrag(notify: Request) -> tuple[str, str]:
    """The status line a NOTIFY carries and its subscription state."""
    assert notify.headers.get("event") == "refer"
    assert notify.headers.get("content-type") == "message/sipfrag;version=2.0"
    return notify.body.decode().strip(), (notify.headers.get("subscription-state") or "")


def data_of(h: Harness, kind: EventKind) -> list[dict[str, object]]:
    return [fields for k, fields in h.events if k is kind]


def referring() -> tuple[Harness, Response, Request, Request]:
    """A bridged call the operator REFERs to 0461999999: the INVITE to the referent."""
    h, ok, offer = bridged()
    out = refer(h, offer, "sip:0461999999@127.0.0.1")
    (accepted,) = finals(out)
    assert accepted.status == 202
    (trying,) = notifies(out)
    assert sipfrag(trying) == ("SIP/2.0 100 Trying", "active;expires=60")
    assert trying.call_id == offer.call_id
    (invite,) = requests(out, "INVITE")
    return h, ok, offer, invite


def test_refer_to_a_number_dials_the_referent_through_the_trunk() -> None:
    h, ok, _, invite = referring()
    assert invite.uri == "sip:0461999999@127.0.0.1:5060"
    assert [a for m, a in h.sent if m is invite] == [REFERENT]
    assert "Mario Rossi" in (invite.headers.get("p-asserted-identity") or "")
    assert invite.headers.get("x-centralino-call-id") == ok.call_id
    # The caller waits with music, away from the operator.
    assert ("unbridge", CALLER_LEG) in h.media.calls
    assert h.media.plays()[-1] == (CALLER_LEG, ("music-on-hold",), "it", 0, True)


def test_referent_answer_bridges_the_caller_notifies_200_and_byes_the_operator() -> None:
    h, _, offer, invite = referring()
    respond(h, invite, 180, tag="ref", operator="1001")
    out = respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    (ack,) = requests(out, "ACK")
    assert ack.call_id == invite.call_id
    assert ("bridge", (CALLER_LEG, TARGET_LEG)) in h.media.calls
    (done,) = notifies(out)
    assert sipfrag(done) == ("SIP/2.0 200 OK", "terminated;reason=noresource")
    (bye,) = requests(out, "BYE")
    assert bye.call_id == offer.call_id
    sent = [m for m in out if isinstance(m, Request) and m.method in ("NOTIFY", "BYE")]
    assert [m.method for m in sent] == ["NOTIFY", "BYE"]  # the outcome before the hang-up
    assert OPERATOR_LEG not in h.media.open
    (moved,) = [d for d in data_of(h, EventKind.TRANSFERRED) if d["data"]]
    assert moved["data"] == {"to": "referent", "target": "0461999999"}
    assert moved["operator"] == "1001"
    (disposition,) = data_of(h, EventKind.DISPOSITION)
    assert disposition["data"] == {"disposition": "escalated", "explicit": "false"}
    assert h.core.b2bua.acd.operator_state("1001") is OperatorState.WRAP_UP
    assert h.core.active_calls() == 1


def test_referent_bye_ends_the_call_and_caller_bye_hangs_up_the_referent() -> None:
    h, ok, _, invite = referring()
    respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    (bye,) = requests(out, "BYE")
    assert bye.call_id == invite.call_id and bye.to.tag == "ref"
    assert h.media.open == set() and h.core.active_calls() == 0
    ok_to(h, bye, source=REFERENT)
    assert len(h.core.b2bua.transfers) == 0


def test_referent_who_does_not_answer_sends_the_call_back_to_the_operator() -> None:
    h, _, offer, invite = referring()
    respond(h, invite, 180, tag="ref", operator="1001")
    before = len(h.media.calls)
    assert requests(h.advance(19.9), "CANCEL") == []
    out = h.advance(0.1)  # transfer_timeout: 20 s from the REFER
    (cancel,) = requests(out, "CANCEL")
    assert cancel.call_id == invite.call_id
    (failed,) = [n for n in notifies(out) if b"100 Trying" not in n.body]
    assert sipfrag(failed) == ("SIP/2.0 408 Request Timeout", "terminated;reason=noresource")
    assert failed.call_id == offer.call_id
    assert ("bridge", (CALLER_LEG, OPERATOR_LEG)) in h.media.calls[before:]
    assert TARGET_LEG not in h.media.open
    assert data_of(h, EventKind.TRANSFERRED) == []
    # The 487 for our CANCEL changes nothing more.
    respond(h, invite, 487, tag="ref", operator="1001")
    assert h.core.active_calls() == 1
    assert h.core.b2bua.acd.operator_state("1001") is OperatorState.ON_CALL


def test_busy_referent_is_notified_and_the_operator_gets_the_caller_back() -> None:
    h, _, _, invite = referring()
    out = respond(h, invite, 486, tag="ref", operator="1001")
    (failed,) = notifies(out)
    assert sipfrag(failed)[0] == "SIP/2.0 486 X"
    assert h.media.calls[-1] == ("bridge", (CALLER_LEG, OPERATOR_LEG))


def test_operator_gone_and_referent_failing_requeues_with_the_first_entry_time() -> None:
    h, _, offer, invite = referring()
    queued_at = data_of(h, EventKind.QUEUED)[0]["at"]
    assert isinstance(queued_at, float)
    h.advance(3.0)
    out = h.deliver(phone_request("BYE", offer, cseq=2), PHONES["1001"])
    assert [r.status for r in finals(out)] == [200]
    assert h.core.active_calls() == 1  # the caller is still ringing the referent
    assert h.core.b2bua.acd.operator_state("1001") is OperatorState.WRAP_UP
    out = respond(h, invite, 480, tag="ref", operator="1001")
    assert notifies(out) == []  # nobody left to tell
    acd = h.core.b2bua.acd
    assert acd.call_queue("call-1@pbx") == "trentino-in-rete"
    snapshot = acd.queue_snapshot("trentino-in-rete", now=h.now)
    assert snapshot.longest_wait == h.now - queued_at >= 3  # Tm counts from the first entry


def test_refer_to_a_queue_requeues_the_caller_and_hangs_up_the_operator() -> None:
    h, _, offer = bridged()
    out = refer(h, offer, "sip:queue-mepat@127.0.0.1")
    assert [r.status for r in finals(out)] == [202]
    trying, done = notifies(out)
    assert sipfrag(trying)[0] == "SIP/2.0 100 Trying"
    assert sipfrag(done) == ("SIP/2.0 200 OK", "terminated;reason=noresource")
    (bye,) = requests(out, "BYE")
    assert bye.call_id == offer.call_id
    assert h.core.b2bua.acd.call_queue("call-1@pbx") == "mepat"
    moved = [d for d in data_of(h, EventKind.TRANSFERRED) if d["data"]]
    assert [d["data"] for d in moved] == [{"to": "queue", "target": "mepat"}]
    assert data_of(h, EventKind.DISPOSITION) == []  # a queue is not the second level
    assert h.media.plays()[-1] == (CALLER_LEG, ("music-on-hold",), "it", 0, True)


def refused_to(h: Harness, offer: Request, operator: str, *, cseq: int) -> None:
    """1001 REFERs call-1 to `operator`, who cannot take it: NOTIFY 480, the caller is
    back with 1001, nothing rings `operator` for call-1 and their state is unchanged."""
    before = state_of(h, operator)
    out = refer(h, offer, f"sip:{operator}@127.0.0.1", cseq=cseq)
    assert [r.status for r in finals(out)] == [202]
    assert sipfrag(notifies(out)[-1])[0] == "SIP/2.0 480 Temporarily Unavailable"
    assert "call-1@pbx" not in invited(h, operator)
    assert h.media.calls[-1] == ("bridge", (CALLER_LEG, OPERATOR_LEG))
    assert state_of(h, operator) == before


def test_refer_to_an_operator_who_cannot_take_it_is_refused() -> None:
    """Not registered, rung by another transfer, on a call, paused: refused as before
    the ACD knew of transfers, and a target reserved by a transfer is not available."""
    h, _, offer = bridged()
    register(h, "1003", "demo1003", phone=PHONES["1003"])
    queue_call(h, "call-2@pbx")
    answer(h, "1003", tag="b3")  # 1003 talks with call-2
    refused_to(h, offer, "1002", cseq=1)  # not registered
    register(h, "1002", "demo1002", phone=PHONES["1002"])
    to_1002 = "Refer-To: <sip:1002@127.0.0.1>"
    by_1003 = phone_request(
        "REFER", offer_to(h, "1003"), cseq=1, extra=(to_1002,), tag="b3", operator="1003"
    )
    (invite,) = requests(h.deliver(by_1003, PHONES["1003"]), "INVITE")
    refused_to(h, offer, "1002", cseq=2)  # rung by 1003's transfer of call-2
    respond(h, invite, 200, tag="o2", operator="1002", body=answer_sdp(33000))
    refused_to(h, offer, "1002", cseq=3)  # talking with call-2
    register(h, "1004", "demo1004", phone=PHONE_OF["1004"])
    h.core.b2bua.acd.operator_pause("1004", now=h.now)
    refused_to(h, offer, "1004", cseq=4)
    assert invited(h, "1002") == ["call-2@pbx"]


def test_refer_to_another_operator_rings_their_phone() -> None:
    h, _, offer = bridged()
    register(h, "1002", "demo1002", phone=PHONES["1002"])
    out = refer(h, offer, "sip:1002@127.0.0.1")
    (invite,) = requests(out, "INVITE")
    assert [a for m, a in h.sent if m is invite] == [PHONES["1002"]]
    out = respond(h, invite, 200, tag="o2", operator="1002", body=answer_sdp(33000))
    assert ("bridge", (CALLER_LEG, TO_1002_LEG)) in h.media.calls
    moved = [d for d in data_of(h, EventKind.TRANSFERRED) if d["data"]]
    assert [d["data"] for d in moved] == [{"to": "operator", "target": "1002"}]
    assert offer_to(h, "1001").call_id == offer.call_id


# -- to another operator, through the ACD (acd.transfer) ---------------------------------


def to_1002() -> tuple[Harness, Response, Request, Request]:
    """A caller talking to 1001, who REFERs them to 1002: our INVITE to 1002's phone."""
    h, ok, offer = bridged()
    register(h, "1002", "demo1002", phone=PHONES["1002"])
    (invite,) = requests(refer(h, offer, "sip:1002@127.0.0.1"), "INVITE")
    assert [a for m, a in h.sent if m is invite] == [PHONES["1002"]]
    return h, ok, offer, invite


def invited(h: Harness, operator: str) -> list[str]:
    """The callers' call ids the switch INVITEd `operator`'s phone for, in order."""
    return [
        m.headers.get("x-centralino-call-id") or ""
        for m, a in h.sent
        if isinstance(m, Request) and m.method == "INVITE" and a == PHONE_OF[operator]
    ]


def state_of(h: Harness, operator: str) -> tuple[OperatorState, str | None]:
    snap = h.core.b2bua.acd.operator_snapshot(operator, now=h.now)
    return snap.state, snap.call_id


def test_a_transfer_reserves_the_target_so_no_queue_call_rings_them_meanwhile() -> None:
    h, _, _, invite = to_1002()
    assert state_of(h, "1002") == (OperatorState.OFFERED, "call-1@pbx")
    respond(h, invite, 180, tag="o2", operator="1002")
    queue_call(h, "call-2@pbx")  # the same queue, while 1002's phone rings
    assert invited(h, "1002") == ["call-1@pbx"]
    acd = h.core.b2bua.acd
    assert acd.call_state("call-2@pbx") is CallState.WAITING
    respond(h, invite, 200, tag="o2", operator="1002", body=answer_sdp(33000))
    # 1002 talks, 1001 wraps up: call-2 still waits, then goes to 1001 after wrap-up.
    assert state_of(h, "1002") == (OperatorState.ON_CALL, "call-1@pbx")
    assert state_of(h, "1001") == (OperatorState.WRAP_UP, None)
    assert invited(h, "1002") == ["call-1@pbx"]
    h.advance(9.9)
    assert invited(h, "1001") == ["call-1@pbx"]
    h.advance(0.1)  # the queue's wrap-up: 10 s
    assert invited(h, "1001") == ["call-1@pbx", "call-2@pbx"]
    assert invited(h, "1002") == ["call-1@pbx"]


def test_the_target_owns_the_call_its_hang_up_wrap_up_and_disposition() -> None:
    h, _, _, invite = to_1002()
    respond(h, invite, 200, tag="o2", operator="1002", body=answer_sdp(33000))
    changes = [(d["operator"], d["data"]["state"]) for d in data_of(h, EventKind.OPERATOR_STATE)]  # type: ignore[index]
    assert changes[-3:] == [("1002", "offered"), ("1001", "wrap_up"), ("1002", "on_call")]
    assert len(data_of(h, EventKind.ANSWERED)) == 1  # one call, answered once
    (moved,) = [d for d in data_of(h, EventKind.TRANSFERRED) if d["data"]]
    assert moved["data"] == {"to": "operator", "target": "1002"} and moved["operator"] == "1001"
    out = h.deliver(phone_bye(h, invite, tag="o2", operator="1002"), PHONES["1002"])
    assert [r.status for r in finals(out)] == [200]
    assert h.core.active_calls() == 0
    (ended,) = data_of(h, EventKind.ENDED)
    assert (ended["operator"], ended["data"]) == ("1002", {"by": "operator"})
    assert state_of(h, "1002") == (OperatorState.WRAP_UP, None)
    assert dial_feature(h, "*45", "1002", "demo1002", call_id="f5@phone").status == 200
    (disposition,) = data_of(h, EventKind.DISPOSITION)
    assert disposition["operator"] == "1002" and disposition["call_id"] == "call-1@pbx"
    assert disposition["data"] == {"disposition": "resolved", "explicit": "true"}
    h.advance(9.9)
    assert state_of(h, "1002")[0] is OperatorState.WRAP_UP
    h.advance(0.1)  # wrap-up from the hang-up
    assert state_of(h, "1002") == (OperatorState.AVAILABLE, None)


def test_a_busy_target_is_released_and_the_caller_goes_back() -> None:
    h, _, _, invite = to_1002()
    assert state_of(h, "1002")[0] is OperatorState.OFFERED
    out = respond(h, invite, 486, tag="o2", operator="1002")
    assert sipfrag(notifies(out)[0])[0] == "SIP/2.0 486 X"
    assert h.media.calls[-1] == ("bridge", (CALLER_LEG, OPERATOR_LEG))
    assert state_of(h, "1002") == (OperatorState.AVAILABLE, None)
    assert state_of(h, "1001") == (OperatorState.ON_CALL, "call-1@pbx")
    # Busy: skipped for the queue's busy_delay (10 s), as after a refused offer.
    h.advance(5.0)
    queue_call(h, "call-2@pbx")
    assert invited(h, "1002") == ["call-1@pbx"]
    h.advance(5.0)
    assert invited(h, "1002") == ["call-1@pbx", "call-2@pbx"]


def test_a_target_who_does_not_answer_in_time_is_paused_like_after_an_offer() -> None:
    h, _, _, invite = to_1002()
    respond(h, invite, 180, tag="o2", operator="1002")
    h.advance(19.9)
    assert state_of(h, "1002")[0] is OperatorState.OFFERED
    out = h.advance(0.1)  # transfer_timeout
    assert [c.call_id for c in requests(out, "CANCEL")] == [invite.call_id]
    snap = h.core.b2bua.acd.operator_snapshot("1002", now=h.now)
    assert (snap.state, snap.reason, snap.call_id) == (OperatorState.PAUSED, "no answer", None)
    assert state_of(h, "1001") == (OperatorState.ON_CALL, "call-1@pbx")
    assert data_of(h, EventKind.TRANSFERRED) == []


def test_the_target_pausing_while_ringing_cancels_the_transfer() -> None:
    h, _, offer, invite = to_1002()
    respond(h, invite, 180, tag="o2", operator="1002")
    assert dial_feature(h, "*42", "1002", "demo1002", call_id="f2@phone").status == 200
    (cancel,) = [m for m, _ in h.sent if isinstance(m, Request) and m.method == "CANCEL"]
    assert cancel.call_id == invite.call_id
    (failed,) = [n for n, _ in h.sent if isinstance(n, Request) and b"480" in n.body]
    assert failed.method == "NOTIFY" and failed.call_id == offer.call_id
    assert h.media.calls[-1] == ("bridge", (CALLER_LEG, OPERATOR_LEG))
    assert state_of(h, "1002") == (OperatorState.PAUSED, None)
    assert state_of(h, "1001") == (OperatorState.ON_CALL, "call-1@pbx")


def test_the_caller_hanging_up_while_the_target_rings_releases_the_target() -> None:
    h, ok, _, invite = to_1002()
    respond(h, invite, 180, tag="o2", operator="1002")
    assert state_of(h, "1002") == (OperatorState.OFFERED, "call-1@pbx")
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    assert [c.call_id for c in requests(out, "CANCEL")] == [invite.call_id]
    assert state_of(h, "1002") == (OperatorState.AVAILABLE, None)
    assert state_of(h, "1001") == (OperatorState.WRAP_UP, None)
    assert h.core.b2bua.acd.call_ids() == []


def test_transferring_operator_gone_and_target_refusing_requeues_the_caller() -> None:
    h, _, offer, invite = to_1002()
    out = h.deliver(phone_request("BYE", offer, cseq=2), PHONES["1001"])
    assert [r.status for r in finals(out)] == [200]
    assert state_of(h, "1001") == (OperatorState.WRAP_UP, None)
    assert state_of(h, "1002") == (OperatorState.OFFERED, "call-1@pbx")  # still ringing
    respond(h, invite, 603, tag="o2", operator="1002")
    acd = h.core.b2bua.acd
    assert acd.call_queue("call-1@pbx") == "trentino-in-rete"
    assert acd.call_state("call-1@pbx") is CallState.WAITING  # decline: 1002 skipped 5 s
    assert state_of(h, "1002") == (OperatorState.AVAILABLE, None)
    h.advance(5.0)
    assert invited(h, "1002") == ["call-1@pbx", "call-1@pbx"]


def test_refers_that_cannot_be_served_are_refused() -> None:
    h, ok, offer = bridged()
    unknown = refer(h, offer, "sip:nobody@127.0.0.1")
    attended = refer(h, offer, "sip:0461999999@127.0.0.1?Replaces=abc%3Bto-tag%3Dx", cseq=2)
    from_caller = h.deliver(
        in_dialog("REFER", ok, cseq=2, source=TRUNK).replace(
            "Content-Length", "Refer-To: <sip:0461999999@127.0.0.1>\r\nContent-Length"
        ),
        TRUNK,
    )
    statuses = [[r.status for r in finals(out)] for out in (unknown, attended, from_caller)]
    assert statuses == [[404], [481], [403]]  # no such consultation to replace
    assert requests(unknown + attended + from_caller, "INVITE") == []
    assert h.media.calls[-1] == ("bridge", (CALLER_LEG, OPERATOR_LEG))  # still talking


def test_a_caller_held_by_the_operator_is_taken_off_hold_when_the_referent_answers() -> None:
    h, ok, offer = bridged()
    hold = caller_sdp("sendonly", 9).replace("40000", "30000")
    out = h.deliver(phone_request("INVITE", offer, cseq=1, body=hold), PHONES["1001"])
    (held,) = requests(out, "INVITE")
    h.deliver(in_dialog_response(held, 200, caller_sdp("recvonly", 2)), TRUNK)
    out = refer(h, offer, "sip:0461999999@127.0.0.1", cseq=2)
    (invite,) = requests(out, "INVITE")
    out = respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    (unhold,) = [m for m in requests(out, "INVITE") if m.call_id == ok.call_id]
    assert "a=sendrecv" in unhold.body.decode()


def test_caller_hanging_up_while_the_referent_rings_cancels_it_and_frees_everything() -> None:
    h, ok, offer, invite = referring()
    respond(h, invite, 180, tag="ref", operator="1001")
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    (cancel,) = requests(out, "CANCEL")
    assert cancel.call_id == invite.call_id
    (bye,) = requests(out, "BYE")
    assert bye.call_id == offer.call_id
    respond(h, invite, 487, tag="ref", operator="1001")
    assert h.media.open == set() and h.core.active_calls() == 0
    assert len(h.core.b2bua.transfers) == 0
    assert data_of(h, EventKind.ENDED)[-1]["data"] == {"by": "caller"}


def test_referent_answering_after_the_timeout_is_acked_and_hung_up() -> None:
    h, _, _, invite = referring()
    respond(h, invite, 180, tag="ref", operator="1001")
    h.advance(20.0)
    out = respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    (ack,) = requests(out, "ACK")
    (bye,) = requests(out, "BYE")
    assert ack.call_id == bye.call_id == invite.call_id
    assert TARGET_LEG not in h.media.open
    assert h.media.calls[-1] != ("bridge", (CALLER_LEG, TARGET_LEG))
    assert data_of(h, EventKind.TRANSFERRED) == []


# -- attended transfer: a consultation call, then REFER with Replaces (RFC 3891) ---------

CONSULT = "consult-1@phone"


def consulting() -> tuple[Harness, Response, Request, Response, Request]:
    """A bridged call whose operator dials 0461999999 through us: our 200 to the phone
    and our INVITE to the referent through the trunk."""
    h, ok, offer = bridged()
    out = h.deliver(
        feature_invite("0461999999", "1001", call_id=CONSULT, body=answer_sdp(31000)),
        PHONES["1001"],
    )
    (challenge,) = finals(out)  # like a feature code: nothing dialed before the digest
    assert challenge.status == 401 and requests(out, "INVITE") == []
    auth = answer_challenge(
        challenge.headers.get("www-authenticate") or "", "INVITE",
        f"sip:0461999999@{SWITCH[0]}", "1001", "demo1001", cnonce="c1", nc=1,
    )  # fmt: skip
    again = feature_invite(
        "0461999999", "1001", call_id=CONSULT, cseq=2, auth=auth, body=answer_sdp(31000)
    )
    out = h.deliver(again, PHONES["1001"])
    (answered,) = finals(out)
    assert answered.status == 200 and b"m=audio" in answered.body
    (invite,) = requests(out, "INVITE")
    assert invite.uri == "sip:0461999999@127.0.0.1:5060"
    assert [a for m, a in h.sent if m is invite] == [REFERENT]
    return h, ok, offer, answered, invite


def refer_replacing(
    h: Harness, offer: Request, answered: Response, *, cseq: int = 1
) -> list[Message]:
    """REFER on the caller's operator leg naming the consultation dialog."""
    replaces = f"{CONSULT};to-tag={answered.to.tag};from-tag=f2"  # the authenticated INVITE
    escaped = replaces.replace("@", "%40").replace(";", "%3B").replace("=", "%3D")
    return refer(h, offer, f"sip:0461999999@127.0.0.1?Replaces={escaped}", cseq=cseq)


@pytest.mark.parametrize(("user", "password"), [("1001", "wrong-password"), ("1002", "demo1002")])
def test_a_consultation_with_wrong_credentials_dials_nothing(user: str, password: str) -> None:
    h, _, _ = bridged()
    (challenge,) = finals(h.deliver(feature_invite("0461999999", "1001"), PHONES["1001"]))
    auth = answer_challenge(
        challenge.headers.get("www-authenticate") or "", "INVITE",
        f"sip:0461999999@{SWITCH[0]}", user, password, cnonce="c1", nc=1,
    )  # fmt: skip
    out = h.deliver(feature_invite("0461999999", "1001", cseq=2, auth=auth), PHONES["1001"])
    assert [r.status for r in finals(out)] == [403]
    assert requests(out, "INVITE") == [] and len(h.core.b2bua.consultations) == 0


def test_consultation_is_bridged_to_the_referent_when_it_answers() -> None:
    h, _, _, _, invite = consulting()
    out = respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    assert len(requests(out, "ACK")) == 1
    assert ("bridge", (f"{CONSULT}/operator", f"{CONSULT}/referent")) in h.media.calls


def test_refer_with_replaces_hands_the_caller_to_the_consulted_referent() -> None:
    h, ok, offer, answered, invite = consulting()
    respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    out = refer_replacing(h, offer, answered)
    assert [r.status for r in finals(out)] == [202]
    trying, done = notifies(out)
    assert sipfrag(trying)[0] == "SIP/2.0 100 Trying"
    assert sipfrag(done) == ("SIP/2.0 200 OK", "terminated;reason=noresource")
    byes = requests(out, "BYE")
    assert sorted(b.call_id for b in byes) == sorted([CONSULT, offer.call_id])
    assert ("bridge", (CALLER_LEG, f"{CONSULT}/referent")) in h.media.calls
    assert f"{CONSULT}/operator" not in h.media.open and OPERATOR_LEG not in h.media.open
    moved = [d for d in data_of(h, EventKind.TRANSFERRED) if d["data"]]
    assert [d["data"] for d in moved] == [{"to": "referent", "target": "0461999999"}]
    # The caller and the referent talk on; the caller's BYE reaches the referent.
    out = h.deliver(in_dialog("BYE", ok, cseq=2, source=TRUNK), TRUNK)
    (bye,) = requests(out, "BYE")
    assert bye.call_id == invite.call_id
    assert h.media.open == set() and h.core.active_calls() == 0


def test_refer_before_the_referent_answers_is_semi_attended() -> None:
    h, _, offer, answered, invite = consulting()
    respond(h, invite, 180, tag="ref", operator="1001")
    out = refer_replacing(h, offer, answered)
    (bye,) = requests(out, "BYE")
    assert bye.call_id == CONSULT  # only the consultation leg so far
    assert h.media.plays()[-1] == (CALLER_LEG, ("music-on-hold",), "it", 0, True)
    out = respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    assert ("bridge", (CALLER_LEG, f"{CONSULT}/referent")) in h.media.calls
    (done,) = [n for n in notifies(out) if b"200 OK" in n.body]
    assert done.call_id == offer.call_id
    assert [b.call_id for b in requests(out, "BYE")] == [offer.call_id]


def test_a_refused_consultation_is_hung_up_with_the_reason() -> None:
    h, _, _, _, invite = consulting()
    out = respond(h, invite, 486, tag="ref", operator="1001")
    (bye,) = requests(out, "BYE")
    assert bye.call_id == CONSULT and bye.headers.get("reason") == "SIP;cause=486"
    assert f"{CONSULT}/operator" not in h.media.open
    assert f"{CONSULT}/referent" not in h.media.open
    assert len(h.core.b2bua.consultations) == 0


def test_operator_ending_the_consultation_hangs_up_the_referent() -> None:
    h, _, _, answered, invite = consulting()
    respond(h, invite, 200, tag="ref", operator="1001", body=answer_sdp(32000))
    source = PHONES["1001"]
    bye_from_phone = (
        f"BYE sip:centralino@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK-consult-bye\r\n"
        f"Max-Forwards: 70\r\nFrom: {answered.headers.get('from')}\r\n"
        f"To: {answered.headers.get('to')}\r\nCall-ID: {CONSULT}\r\n"
        "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    out = h.deliver(bye_from_phone, source)
    assert [r.status for r in finals(out)] == [200]
    (bye,) = requests(out, "BYE")
    assert bye.call_id == invite.call_id
    assert len(h.core.b2bua.consultations) == 0
    assert h.core.active_calls() == 1  # the caller still talks to the operator


def test_refer_replacing_an_unknown_dialog_gets_481() -> None:
    h, _, offer, answered, _ = consulting()
    fake = Response(200, "OK", answered.headers.copy())
    fake.headers.set("To", "<sip:0461999999@127.0.0.1>;tag=nobody")
    out = refer_replacing(h, offer, fake)
    assert [r.status for r in finals(out)] == [481]
    assert len(h.core.b2bua.consultations) == 1
