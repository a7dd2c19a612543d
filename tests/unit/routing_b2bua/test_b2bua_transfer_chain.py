"""Call control in virtual time: an operator who took a call by transfer is the call's
operator from then on: their phone shows who transferred it, and they may transfer it on
(to another operator, back to the first, to a referent), hold it and hang it up."""

from __future__ import annotations

from b2bua_harness import Harness, register
from phones import PHONES, answer_sdp, finals, phone_bye, requests, respond
from test_b2bua_hold import CALLER_LEG, OPERATOR_LEG, caller_sdp, direction, phone_request, sdp_of
from test_b2bua_transfer import (
    PHONE_OF,
    TO_1002_LEG,
    data_of,
    notifies,
    sipfrag,
    state_of,
    to_1002,
)

from acd.operator import OperatorState
from metrics.events import EventKind
from sip.message import Message, Request

TO_1003_LEG = "call-1@pbx/transfer-1003"


def taken_by_1002() -> tuple[Harness, Request]:
    """1001 transferred the caller to 1002, who answered: our INVITE to 1002's phone."""
    h, _, _, invite = to_1002()
    respond(h, invite, 200, tag="o2", operator="1002", body=answer_sdp(33000))
    assert state_of(h, "1002") == (OperatorState.ON_CALL, "call-1@pbx")
    return h, invite


def refer_by_1002(h: Harness, invite: Request, target: str, *, cseq: int = 1) -> list[Message]:
    request = phone_request(
        "REFER", invite, cseq=cseq, extra=(f"Refer-To: <{target}>",), tag="o2", operator="1002"
    )
    return h.deliver(request, PHONES["1002"])


def moves(h: Harness) -> list[tuple[object, object]]:
    """(by, data) of every `transferred` fact with a target, in order."""
    return [(d["operator"], d["data"]) for d in data_of(h, EventKind.TRANSFERRED) if d["data"]]


def test_the_target_phone_shows_the_queue_the_choice_and_who_transferred() -> None:
    _, _, offer, invite = to_1002()
    assert invite.headers.get("x-centralino-transferred-by") == "1001"
    assert offer.headers.get("x-centralino-transferred-by") is None
    assert invite.headers.get("x-centralino-queue") == "trentino-in-rete"
    for name in ("service", "queue", "choice", "call-id"):
        header = f"x-centralino-{name}"
        assert invite.headers.get(header) == offer.headers.get(header), header
    assert invite.headers.get("p-asserted-identity") == offer.headers.get("p-asserted-identity")


def test_the_target_transfers_the_call_on_to_a_third_operator() -> None:
    h, invite = taken_by_1002()
    register(h, "1003", "demo1003", phone=PHONES["1003"])
    out = refer_by_1002(h, invite, "sip:1003@127.0.0.1")
    assert [r.status for r in finals(out)] == [202]
    (to_1003,) = requests(out, "INVITE")
    assert [a for m, a in h.sent if m is to_1003] == [PHONE_OF["1003"]]
    assert to_1003.headers.get("x-centralino-transferred-by") == "1002"
    out = respond(h, to_1003, 200, tag="o3", operator="1003", body=answer_sdp(34000))
    assert ("bridge", (CALLER_LEG, TO_1003_LEG)) in h.media.calls
    assert sipfrag(notifies(out)[-1])[0] == "SIP/2.0 200 OK"
    (bye,) = requests(out, "BYE")  # 1002's leg is hung up
    assert bye.call_id == invite.call_id and TO_1002_LEG not in h.media.open
    assert state_of(h, "1002") == (OperatorState.WRAP_UP, None)
    assert state_of(h, "1003") == (OperatorState.ON_CALL, "call-1@pbx")
    assert moves(h) == [
        ("1001", {"to": "operator", "target": "1002"}),
        ("1002", {"to": "operator", "target": "1003"}),
    ]
    assert len(data_of(h, EventKind.ANSWERED)) == 1  # one call, answered once
    out = h.deliver(phone_bye(h, to_1003, tag="o3", operator="1003"), PHONES["1003"])
    assert [r.status for r in finals(out)] == [200]
    assert h.core.active_calls() == 0
    (ended,) = data_of(h, EventKind.ENDED)
    assert (ended["operator"], ended["data"]) == ("1003", {"by": "operator"})


def test_a_refused_second_transfer_gives_the_caller_back_to_the_target() -> None:
    h, invite = taken_by_1002()
    register(h, "1003", "demo1003", phone=PHONES["1003"])
    (to_1003,) = requests(refer_by_1002(h, invite, "sip:1003@127.0.0.1"), "INVITE")
    out = respond(h, to_1003, 486, tag="o3", operator="1003")
    assert sipfrag(notifies(out)[-1])[0] == "SIP/2.0 486 X"
    assert h.media.calls[-1] == ("bridge", (CALLER_LEG, TO_1002_LEG))
    assert state_of(h, "1002") == (OperatorState.ON_CALL, "call-1@pbx")
    assert state_of(h, "1003") == (OperatorState.AVAILABLE, None)
    out = h.deliver(phone_bye(h, invite, tag="o2", operator="1002", cseq=2), PHONES["1002"])
    assert [r.status for r in finals(out)] == [200]
    (ended,) = data_of(h, EventKind.ENDED)
    assert (ended["operator"], ended["data"]) == ("1002", {"by": "operator"})


def test_the_call_goes_back_to_the_first_operator_once_their_wrap_up_is_over() -> None:
    h, invite = taken_by_1002()
    refused = refer_by_1002(h, invite, "sip:1001@127.0.0.1")  # 1001 is in wrap-up
    assert sipfrag(notifies(refused)[-1])[0].startswith("SIP/2.0 480")
    h.advance(10.0)  # the queue's wrap-up
    assert state_of(h, "1001") == (OperatorState.AVAILABLE, None)
    (back,) = requests(refer_by_1002(h, invite, "sip:1001@127.0.0.1", cseq=2), "INVITE")
    assert [a for m, a in h.sent if m is back] == [PHONES["1001"]]
    respond(h, back, 200, tag="o4", operator="1001", body=answer_sdp(35000))
    assert ("bridge", (CALLER_LEG, "call-1@pbx/transfer-1001")) in h.media.calls
    assert OPERATOR_LEG not in h.media.open
    assert state_of(h, "1001") == (OperatorState.ON_CALL, "call-1@pbx")


def test_the_target_transfers_to_a_referent_and_the_call_counts_as_escalated() -> None:
    h, invite = taken_by_1002()
    (to_referent,) = requests(refer_by_1002(h, invite, "sip:0461999999@127.0.0.1"), "INVITE")
    assert to_referent.headers.get("x-centralino-transferred-by") is None  # outside
    out = respond(h, to_referent, 200, tag="ref", operator="1002", body=answer_sdp(36000))
    assert ("bridge", (CALLER_LEG, "call-1@pbx/transfer-0461999999")) in h.media.calls
    assert [b.call_id for b in requests(out, "BYE")] == [invite.call_id]
    assert state_of(h, "1002") == (OperatorState.WRAP_UP, None)
    assert moves(h)[-1] == ("1002", {"to": "referent", "target": "0461999999"})
    (disposition,) = data_of(h, EventKind.DISPOSITION)
    assert disposition["data"] == {"disposition": "escalated", "explicit": "false"}


def test_a_retransmitted_answer_of_the_target_changes_nothing() -> None:
    h, invite = taken_by_1002()
    out = respond(h, invite, 200, tag="o2", operator="1002", body=answer_sdp(33000))
    assert [m.method for m in out if isinstance(m, Request)] == ["ACK"]
    assert state_of(h, "1002") == (OperatorState.ON_CALL, "call-1@pbx")
    assert h.core.active_calls() == 1
    assert h.media.calls[-1] != ("unbridge", CALLER_LEG)


def test_the_target_holds_the_caller_like_any_operator() -> None:
    h, invite = taken_by_1002()
    before = len(h.media.calls)
    body = caller_sdp("sendonly", 9).replace("40000", "33000")
    hold = phone_request("INVITE", invite, cseq=1, body=body, tag="o2", operator="1002")
    out = h.deliver(hold, PHONES["1002"])
    (reply,) = finals(out)
    assert reply.status == 200 and direction(sdp_of(reply)) == "recvonly"
    changes = h.media.calls[before:]
    assert ("unbridge", TO_1002_LEG) in changes
    assert ("play", (CALLER_LEG, ("music-on-hold",), "it", 0, True)) in changes
    (reoffer,) = requests(out, "INVITE")
    assert reoffer.call_id == "call-1@pbx" and direction(sdp_of(reoffer)) == "sendonly"
