"""Operators' feature codes from their softphones, in virtual time: digest
authentication with the registrar's credentials, the ACD changed at once, 200 with a
confirmation tone, then BYE (routing.feature_codes_glue)."""

from __future__ import annotations

from b2bua_harness import Harness, make_harness, register
from phones import (
    PHONES,
    answer,
    dial_feature,
    feature_invite,
    finals,
    offer_to,
    ok_to,
    phone_bye,
    queue_call,
    requests,
)

from acd.operator import OperatorState
from metrics.events import EventKind
from routing.media_plane import PlaybackFinished


def registered() -> Harness:
    h = make_harness()
    register(h, "1001", "demo1001", phone=PHONES["1001"])
    register(h, "1002", "demo1002", phone=PHONES["1002"])
    return h


def state(h: Harness, operator: str) -> OperatorState:
    return h.core.b2bua.acd.operator_state(operator)


def ack_for(final_call_id: str, operator: str, tag: str) -> str:
    phone = PHONES[operator]
    branch = f"z9hG4bK-ack-{final_call_id.replace('@', '.')}"
    return (
        f"ACK sip:centralino@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {phone[0]}:{phone[1]};branch={branch}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{operator}@127.0.0.1>;tag=f2\r\n"
        f"To: <sip:*42@127.0.0.1>;tag={tag}\r\nCall-ID: {final_call_id}\r\n"
        f"CSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n"
    )


def test_pause_code_is_challenged_applied_answered_and_hung_up() -> None:
    h = registered()
    ok = dial_feature(h, "*42", "1001", "demo1001")
    assert ok.status == 200
    assert ok.headers.get("content-type") == "application/sdp" and b"m=audio" in ok.body
    assert state(h, "1001") is OperatorState.PAUSED  # applied before the answer
    assert h.core.b2bua.acd.operator_snapshot("1001", now=h.now).reason == "paused"
    leg = "feat-1@phone/feature"
    assert (leg, ("beep",), "it", 1, False) in h.media.plays()
    h.deliver(ack_for("feat-1@phone", "1001", ok.to.tag or ""), PHONES["1001"])
    out = h.media_event(PlaybackFinished(at=h.now, leg=leg, play_id=1))
    (bye,) = requests(out, "BYE")
    assert bye.call_id == "feat-1@phone" and bye.to.tag == "f2"
    assert leg not in h.media.open
    ok_to(h, bye, source=PHONES["1001"])
    assert len(h.core.b2bua.dialogs) == 0


def test_ready_after_pause_and_logout_then_login() -> None:
    h = registered()
    assert dial_feature(h, "*42", "1001", "demo1001", call_id="f1@p").status == 200
    assert dial_feature(h, "*43", "1001", "demo1001", call_id="f2@p").status == 200
    assert state(h, "1001") is OperatorState.AVAILABLE
    assert dial_feature(h, "*40", "1001", "demo1001", call_id="f3@p").status == 200
    assert state(h, "1001") is OperatorState.LOGGED_OUT
    assert dial_feature(h, "%2A41%23", "1001", "demo1001", call_id="f4@p").status == 200
    assert state(h, "1001") is OperatorState.AVAILABLE


def test_pause_with_a_reason_code() -> None:
    h = registered()
    assert dial_feature(h, "*421", "1001", "demo1001").status == 200
    assert h.core.b2bua.acd.operator_snapshot("1001", now=h.now).reason == "code 1"


def test_wrong_password_is_refused_and_never_applied() -> None:
    h = registered()
    refused = dial_feature(h, "*42", "1001", "not-the-password")
    assert refused.status == 403
    assert state(h, "1001") is OperatorState.AVAILABLE
    assert h.media.open == set()


def test_another_operators_credentials_are_refused() -> None:
    h = registered()
    refused = dial_feature(h, "*40", "1001", "demo1002", user="1002")
    assert refused.status == 403
    assert state(h, "1001") is OperatorState.AVAILABLE
    assert state(h, "1002") is OperatorState.AVAILABLE


def test_without_credentials_only_a_challenge() -> None:
    h = registered()
    (challenge,) = finals(h.deliver(feature_invite("*40", "1001"), PHONES["1001"]))
    assert challenge.status == 401
    assert 'realm="centralino"' in (challenge.headers.get("www-authenticate") or "")
    assert state(h, "1001") is OperatorState.AVAILABLE


def test_unregistered_address_is_refused_by_the_endpoint() -> None:
    h = registered()
    stranger = ("10.9.9.9", 5060)
    message = feature_invite("*40", "1001", source=stranger)
    (refused,) = finals(h.deliver(message, stranger))
    assert refused.status == 403
    assert state(h, "1001") is OperatorState.AVAILABLE


def test_control_the_state_forbids_gets_403_with_the_reason() -> None:
    h = registered()
    assert dial_feature(h, "*40", "1001", "demo1001", call_id="f1@p").status == 200
    refused = dial_feature(h, "*42", "1001", "demo1001", call_id="f2@p")  # pause, logged out
    assert refused.status == 403
    warning = refused.headers.get("warning") or ""
    assert warning.startswith("399 centralino") and "logged_out" in warning
    assert state(h, "1001") is OperatorState.LOGGED_OUT
    assert "f2@p/feature" not in h.media.open


def test_disposition_before_any_answered_call_is_refused() -> None:
    h = registered()
    refused = dial_feature(h, "*45", "1001", "demo1001")
    assert refused.status == 403
    assert "answered no call" in (refused.headers.get("warning") or "")
    assert EventKind.DISPOSITION not in h.kinds()


def test_offer_without_sdp_gets_488_and_is_not_applied() -> None:
    h = registered()
    refused = dial_feature(h, "*42", "1001", "demo1001", body=b"")
    assert refused.status == 488
    assert state(h, "1001") is OperatorState.AVAILABLE
    assert h.media.open == set()


def test_confirmation_that_never_ends_is_hung_up_after_five_seconds() -> None:
    h = registered()
    ok = dial_feature(h, "*42", "1001", "demo1001")
    h.deliver(ack_for("feat-1@phone", "1001", ok.to.tag or ""), PHONES["1001"])
    assert requests(h.advance(4.9), "BYE") == []
    assert len(requests(h.advance(0.2), "BYE")) == 1
    assert h.media.open == set()


def test_operator_hanging_up_during_the_tone() -> None:
    h = registered()
    ok = dial_feature(h, "*42", "1001", "demo1001", call_id="f2@p")
    h.deliver(ack_for("f2@p", "1001", ok.to.tag or ""), PHONES["1001"])
    bye = (
        f"BYE sip:centralino@127.0.0.1:5060 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5091;branch=z9hG4bK-fbye\r\nMax-Forwards: 70\r\n"
        f"From: <sip:1001@127.0.0.1>;tag=f2\r\nTo: <sip:*42@127.0.0.1>;tag={ok.to.tag}\r\n"
        f"Call-ID: f2@p\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    out = h.deliver(bye, PHONES["1001"])
    assert [r.status for r in finals(out)] == [200]
    assert requests(h.advance(6.0), "BYE") == []
    assert h.media.open == set()
    assert len(h.core.b2bua.dialogs) == 0


def test_resolved_sets_the_disposition_of_the_last_answered_call() -> None:
    h = registered()
    queue_call(h)
    answer(h, "1001", tag="a1")
    h.deliver(phone_bye(h, offer_to(h, "1001"), tag="a1", operator="1001"), PHONES["1001"])
    assert dial_feature(h, "*45", "1001", "demo1001").status == 200
    dispositions = [f for k, f in h.events if k is EventKind.DISPOSITION]
    assert dispositions[-1]["call_id"] == "call-1@pbx"
    assert dispositions[-1]["data"] == {"disposition": "resolved", "explicit": "true"}


def test_a_registration_refresh_does_not_undo_a_logout() -> None:
    h = registered()
    assert dial_feature(h, "*40", "1001", "demo1001").status == 200
    h.advance(5.0)  # (before the first OPTIONS ping, which this phone would not answer)
    assert register(h, "1001", "demo1001", phone=PHONES["1001"]).status == 200  # refresh
    assert state(h, "1001") is OperatorState.LOGGED_OUT
    # Gone and back (a new registration) is a login again, as the phone's first one was.
    register(h, "1001", "demo1001", phone=PHONES["1001"], expires=0)
    register(h, "1001", "demo1001", phone=PHONES["1001"])
    assert state(h, "1001") is OperatorState.AVAILABLE
