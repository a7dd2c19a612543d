"""The peers of a callback in virtual time: a queued caller who presses the callback
digit, the operator's phone (PHONE) and the citizen's phone behind the trunk (TRUNK);
and the call's event log read back as the KPI engine and the queue_log export read it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from b2bua_harness import (
    OPEN_HOUR,
    PHONE,
    ROOT,
    TRUNK,
    Harness,
    answer_request,
    in_dialog,
    invite,
    make_harness,
    register,
)

from acd import events as ac
from media.sdp import serialize_sdp
from media.session import PCMU, build_offer
from metrics.events import CallEvent, EventKind
from metrics.kpi import KpiEngine
from metrics.queue_log import export
from routing import callback
from routing.media_plane import DigitDetected, PlaybackFinished
from server.config import load_settings
from sip.message import Message, Request, Response

CALLER = "call-1@pbx/caller"
CALL_ID = "call-1@pbx"
QUEUE = "trentino-in-rete"
NUMBER = "0461123456"  # the From user of the harness's trunk INVITE
ANSWER_SDP = serialize_sdp(
    build_offer(codecs=[PCMU], local_addr="127.0.0.1", local_port=30000, session_id=7)
)


def callback_harness(attempts: int = 2, retry: float = 60) -> tuple[Harness, list[ac.Output]]:
    """The bundled configuration with `5` as the callback digit of QUEUE; every output
    of the engine is recorded as call control drains it."""
    settings = load_settings(ROOT / "config" / "trentino.yaml")
    queues = [
        q.model_copy(
            update={
                "callback_digit": "5",
                "callback_attempts": attempts,
                "callback_retry_delay": retry,
            }
        )
        if q.name == QUEUE
        else q
        for q in settings.queues
    ]
    h = make_harness(settings.model_copy(update={"queues": queues}))
    acd = h.core.b2bua.acd
    seen: list[ac.Output] = []
    drain = acd.commands

    def spy() -> list[ac.Output]:
        out = drain()
        seen.extend(out)
        return out

    acd.commands = spy  # type: ignore[method-assign]
    return h, seen


def requests(messages: Sequence[Message], method: str) -> list[Request]:
    return [m for m in messages if isinstance(m, Request) and m.method == method]


def finish_prompts(h: Harness) -> None:
    done: set[int] = set()
    for _ in range(10):
        pending = [p for p in h.media.plays() if p[3] > 0 and p[3] not in done]
        if not pending:
            return
        for leg, _, _, play_id, _ in pending:
            done.add(play_id)
            h.media_event(PlaybackFinished(at=h.now, leg=leg, play_id=play_id))


def queued_caller(h: Harness) -> Response:
    (ok,) = [m for m in h.deliver(invite(), TRUNK) if isinstance(m, Response) and m.status == 200]
    h.deliver(in_dialog("ACK", ok, cseq=1, source=TRUNK), TRUNK)
    finish_prompts(h)
    h.media_event(DigitDetected(at=h.now, leg=CALLER, digit="3", duration_ms=100))
    finish_prompts(h)
    return ok


def press(h: Harness, digit: str) -> list[Message]:
    return h.media_event(DigitDetected(at=h.now, leg=CALLER, digit=digit, duration_ms=100))


def ask_callback(h: Harness) -> tuple[Response, float]:
    """A caller queued at 10 s asks for a callback and hears the confirmation to the end."""
    h.now = 10.0
    ok = queued_caller(h)
    queued_at = h.now
    h.now = 20.0
    assert press(h, "5") == []
    assert h.media.plays()[-1] == (CALLER, callback.CONFIRM_PROMPTS, "it", -2, False)
    h.now = 22.0
    out = h.media_event(PlaybackFinished(at=h.now, leg=CALLER, play_id=-2))
    (bye,) = requests(out, "BYE")
    assert bye.call_id == CALL_ID
    return ok, queued_at


def operator_answers(h: Harness) -> tuple[Request, list[Message]]:
    """The operator registers (auto-login), is offered the callback and answers."""
    register(h)
    (offer,) = [m for m, addr in h.sent if isinstance(m, Request) and m.method == "INVITE"][-1:]
    out = h.deliver(answer_request(offer, 200, to_tag="op1", body=ANSWER_SDP), PHONE)
    return offer, out


def talking(h: Harness) -> tuple[Request, Request]:
    """A callback asked at 22 s, answered by the operator at 100 s and by the citizen at
    105 s: our INVITE to the operator's phone (tag op1) and to the citizen (tag cit)."""
    ask_callback(h)
    h.now = 100.0
    offer, out = operator_answers(h)
    (dial,) = requests(out, "INVITE")
    h.now = 105.0
    h.deliver(answer_request(dial, 180, to_tag="cit"), TRUNK)
    h.deliver(answer_request(dial, 200, to_tag="cit", body=ANSWER_SDP), TRUNK)
    return offer, dial


def peer_request(
    method: str, ours: Request, *, tag: str, source: tuple[str, int], cseq: int, body: bytes = b""
) -> str:
    """A request from the peer of the dialog our INVITE `ours` made (its To tag `tag`)."""
    lines = [
        f"{method} sip:centralino@127.0.0.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK-{tag}-{method}-{cseq}",
        "Max-Forwards: 70",
        f"From: {ours.headers.get('to')};tag={tag}",
        f"To: {ours.headers.get('from')}",
        f"Call-ID: {ours.call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:peer@{source[0]}:{source[1]}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body.decode()


def citizen_bye(dial: Request, cseq: int = 1) -> str:
    """The citizen hangs up the callback conversation."""
    return peer_request("BYE", dial, tag="cit", source=TRUNK, cseq=cseq)


def operator_bye(offer: Request, cseq: int = 1) -> str:
    """The operator's phone hangs up the dialog of our INVITE `offer`."""
    return peer_request("BYE", offer, tag="op1", source=PHONE, cseq=cseq)


# -- the event log as its readers see it ------------------------------------------------


def call_events(h: Harness) -> list[CallEvent]:
    """What call control recorded, as stored events (wall time from the harness's hour)."""
    out = []
    for kind, fields in h.events:
        at = fields["at"]
        assert isinstance(at, float)
        data = fields.get("data") or {}
        assert isinstance(data, dict)
        names = ("call_id", "service", "sub_service", "queue", "operator")
        text = {name: fields.get(name) for name in names}
        out.append(
            CallEvent(
                kind=kind,
                wall=OPEN_HOUR + timedelta(seconds=at),
                mono=at,
                data=data,
                **text,  # type: ignore[arg-type]
            )
        )
    return out


def kinds_of(h: Harness, call_id: str = CALL_ID) -> list[EventKind]:
    return [e.kind for e in call_events(h) if e.call_id == call_id]


def kpi(h: Harness) -> KpiEngine:
    """A KPI engine (outputs on) fed with the harness's log, every service open."""
    engine = KpiEngine(in_window=lambda service, local: True, outputs=True)
    for event in call_events(h):
        engine.receive_event(event)
    return engine


def queue_log(h: Harness) -> list[str]:
    """The queue_log verbs (5th field) the log exports for the call."""
    return [line.split("|")[4] for line in export(call_events(h)) if f"|{CALL_ID}|" in line]


def reply_in_dialog(request: Request, status: int, body: str = "") -> str:
    """A peer's response to a request we sent in its dialog (its To tag kept)."""
    lines = [f"SIP/2.0 {status} X"]
    lines += [f"Via: {v}" for v in request.headers.get_all("via")]
    lines += [
        f"From: {request.headers.get('from')}",
        f"To: {request.headers.get('to')}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('cseq')}",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body
