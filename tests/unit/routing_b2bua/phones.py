"""Scripted peers for the call-control flow tests: callers from the trunk reaching a
queue, and operators' phones answering (or not) the INVITEs the switch sends them."""

from __future__ import annotations

from collections.abc import Sequence

from b2bua_harness import SWITCH, TRUNK, Harness, invite

from media.sdp import serialize_sdp
from media.session import PCMU, build_offer
from routing.media_plane import DigitDetected, PlaybackFinished
from sip.digest import answer_challenge
from sip.message import Message, Request, Response

PHONES = {
    "1001": ("127.0.0.1", 5091),
    "1002": ("127.0.0.1", 5092),
    "1003": ("127.0.0.1", 5093),
}


def finals(messages: Sequence[Message]) -> list[Response]:
    return [m for m in messages if isinstance(m, Response) and m.status >= 200]


def requests(messages: Sequence[Message], method: str) -> list[Request]:
    return [m for m in messages if isinstance(m, Request) and m.method == method]


def sent_requests(h: Harness, method: str) -> list[tuple[Request, tuple[str, int]]]:
    return [(m, a) for m, a in h.sent if isinstance(m, Request) and m.method == method]


def finish_prompts(h: Harness, call_id: str) -> None:
    """Let every IVR prompt of this caller play to its end, as the media plane says."""
    leg = f"{call_id}/caller"
    for _ in range(10):
        pending = [
            p for p in h.media.plays() if p[0] == leg and p[3] > 0 and (leg, p[3]) not in h.finished
        ]
        if not pending:
            return
        for _, _, _, play_id, _ in pending:
            h.finished.add((leg, play_id))
            h.media_event(PlaybackFinished(at=h.now, leg=leg, play_id=play_id))


def queue_call(h: Harness, call_id: str = "call-1@pbx", digit: str = "3") -> Response:
    """A trunk call answered, through the welcome and the menu into a queue."""
    (ok,) = finals(h.deliver(invite(call_id=call_id), TRUNK))
    assert ok.status == 200
    finish_prompts(h, call_id)
    leg = f"{call_id}/caller"
    h.media_event(DigitDetected(at=h.now, leg=leg, digit=digit, duration_ms=100))
    finish_prompts(h, call_id)
    return ok


def offer_to(h: Harness, operator: str) -> Request:
    """The latest INVITE the switch sent to `operator`'s phone."""
    found = [m for m, addr in sent_requests(h, "INVITE") if addr == PHONES[operator]]
    assert found, f"no INVITE to {operator}"
    return found[-1]


def answer_sdp(port: int = 30000) -> bytes:
    return serialize_sdp(
        build_offer(codecs=[PCMU], local_addr="127.0.0.1", local_port=port, session_id=7)
    )


def respond(
    h: Harness, request: Request, status: int, *, tag: str, operator: str, body: bytes = b""
) -> list[Message]:
    """The phone answers `request` (an INVITE or CANCEL the switch sent)."""
    source = PHONES[operator]
    lines = [f"SIP/2.0 {status} X"]
    lines += [f"Via: {v}" for v in request.headers.get_all("via")]
    lines += [
        f"From: {request.headers.get('from')}",
        f"To: {request.headers.get('to')};tag={tag}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('cseq')}",
        f"Contact: <sip:{operator}@{source[0]}:{source[1]}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return h.deliver("\r\n".join(lines) + "\r\n\r\n" + body.decode(), source)


def answer(h: Harness, operator: str, *, tag: str = "op") -> list[Message]:
    """The phone rings (180) and answers (200 with SDP) the latest offer."""
    offer = offer_to(h, operator)
    respond(h, offer, 180, tag=tag, operator=operator)
    return respond(h, offer, 200, tag=tag, operator=operator, body=answer_sdp())


def phone_bye(h: Harness, offer: Request, *, tag: str, operator: str, cseq: int = 1) -> str:
    """A BYE from the phone in the dialog its 200 to `offer` made (UAS side)."""
    source = PHONES[operator]
    return (
        f"BYE sip:centralino@{SWITCH[0]}:{SWITCH[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK-opbye-{cseq}\r\n"
        f"Max-Forwards: 70\r\nFrom: {offer.headers.get('to')};tag={tag}\r\n"
        f"To: {offer.headers.get('from')}\r\nCall-ID: {offer.call_id}\r\n"
        f"CSeq: {cseq} BYE\r\nContent-Length: 0\r\n\r\n"
    )


def ok_to(h: Harness, request: Request, *, source: tuple[str, int]) -> list[Message]:
    """A peer's 200 to a non-INVITE request the switch sent (BYE, CANCEL)."""
    lines = ["SIP/2.0 200 OK"]
    lines += [f"Via: {v}" for v in request.headers.get_all("via")]
    lines += [
        f"From: {request.headers.get('from')}",
        f"To: {request.headers.get('to')}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('cseq')}",
        "Content-Length: 0",
    ]
    return h.deliver("\r\n".join(lines) + "\r\n\r\n", source)


def feature_invite(
    code: str,
    operator: str,
    *,
    call_id: str = "feat-1@phone",
    cseq: int = 1,
    auth: str | None = None,
    body: bytes | None = None,
    source: tuple[str, int] | None = None,
) -> str:
    """An INVITE from an operator's phone to a feature code, e.g. `*42`."""
    phone = source or PHONES[operator]
    payload = answer_sdp(31000) if body is None else body
    branch = f"z9hG4bK-{call_id.replace('@', '.')}-{cseq}"
    lines = [
        f"INVITE sip:{code}@{SWITCH[0]} SIP/2.0",
        f"Via: SIP/2.0/UDP {phone[0]}:{phone[1]};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{operator}@{SWITCH[0]}>;tag=f{cseq}",
        f"To: <sip:{code}@{SWITCH[0]}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} INVITE",
        f"Contact: <sip:{operator}@{phone[0]}:{phone[1]}>",
    ]
    if auth:
        lines.append(f"Authorization: {auth}")
    if payload:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(payload)}")
    return "\r\n".join(lines) + "\r\n\r\n" + payload.decode()


def dial_feature(
    h: Harness,
    code: str,
    operator: str,
    password: str,
    *,
    call_id: str = "feat-1@phone",
    user: str | None = None,
    body: bytes | None = None,
) -> Response:
    """Dial a feature code as a phone does: INVITE, 401, INVITE with digest credentials."""
    (challenge,) = finals(
        h.deliver(feature_invite(code, operator, call_id=call_id), PHONES[operator])
    )
    assert challenge.status == 401, challenge
    header = challenge.headers.get("www-authenticate") or ""
    uri = f"sip:{code}@{SWITCH[0]}"
    auth = answer_challenge(header, "INVITE", uri, user or operator, password, cnonce="c9", nc=1)
    message = feature_invite(code, operator, call_id=call_id, cseq=2, auth=auth, body=body)
    (final,) = finals(h.deliver(message, PHONES[operator]))
    return final
