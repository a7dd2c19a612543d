"""Operators' feature codes dialed from their softphones (the codes: `acd.feature_codes`).

An operator whose phone is registered with us dials `*41` (login), `*40` (logout),
`*42` (pause, `*42<n>` with a reason), `*43` (ready), `*44` (wrap-up done), `*45`
(resolved) or `*46` (escalated). As an Asterisk user expects of a feature code, the
switch answers the call, confirms with a short tone and hangs up; the code takes effect
before the answer, so the ACD already acts on it when the phone shows the call:

| the INVITE to a feature code                    | the switch answers                   |
| ----------------------------------------------- | ------------------------------------ |
| no credentials, or a stale/foreign nonce        | 401 with a digest challenge          |
| right password of the operator of this phone   | 200 OK, a beep, then BYE (about 1 s) |
| wrong password, unknown user, another operator  | 403 Forbidden, nothing applied       |
| a control the operator's state does not allow   | 403 Forbidden with a Warning saying  |
| (`*42` while logged out, `*45` before any call) | why; nothing applied                 |
| an SDP offer we cannot answer                   | 488 with a Warning; nothing applied  |
| no RTP port free                                | 503 with a Warning; nothing applied  |

The credentials are checked as the registrar checks a REGISTER
(`routing.operator_auth`), and only INVITEs the endpoint traced to a registered phone's
address get here (`IncomingRequest.operator`): a feature code never reaches the ACD
unauthenticated. The BYE follows the end of the tone, or `HANGUP_AFTER` seconds at most
if the media plane never reports it; the operator may hang up first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from acd.errors import AcdError
from acd.feature_codes import FeatureCommand, parse_feature_code
from media.sdp import SdpError, parse_sdp, serialize_sdp
from media.session import NoCommonCodec
from routing import operator_auth
from routing.legs import leg_media
from routing.media_plane import MediaEvent, PlaybackFinished
from sip.dialog import Dialog
from sip.endpoint import IncomingRequest
from sip.transaction import Addr

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)

CONFIRMATION = "beep"
"""The prompt played after a code took effect (`config/prompts/<language>/beep.wav`)."""
HANGUP_AFTER = 5.0


@dataclass(slots=True)
class FeatureCall:
    """An answered feature-code call, until its BYE."""

    call_id: str
    operator: str
    media_leg: str
    addr: Addr
    dialog: Dialog | None
    hangup_at: float


class FeatureCalls:
    """The feature-code calls in progress, by Call-ID and by media leg."""

    __slots__ = ("_by_call_id",)

    def __init__(self) -> None:
        self._by_call_id: dict[str, FeatureCall] = {}

    def __len__(self) -> int:
        return len(self._by_call_id)

    def add(self, call: FeatureCall) -> None:
        self._by_call_id[call.call_id] = call

    def get(self, call_id: str) -> FeatureCall | None:
        return self._by_call_id.get(call_id)

    def by_media_leg(self, media_leg: str) -> FeatureCall | None:
        return next((c for c in self._by_call_id.values() if c.media_leg == media_leg), None)

    def remove(self, call: FeatureCall) -> None:
        self._by_call_id.pop(call.call_id, None)

    def get_timer(self) -> float | None:
        """The earliest forced hang-up."""
        return min((c.hangup_at for c in self._by_call_id.values()), default=None)

    def due(self, now: float) -> list[FeatureCall]:
        return [c for c in self._by_call_id.values() if c.hangup_at <= now]


def command_for(event: IncomingRequest) -> FeatureCommand | None:
    """The feature code of a new INVITE from an operator's registered phone, if it is one."""
    request = event.request
    if event.operator is None or request.method != "INVITE" or request.to.tag is not None:
        return None
    scheme, _, rest = request.uri.partition(":")
    user, at, _ = rest.partition("@")
    if scheme.lower() not in ("sip", "sips") or not at:
        return None
    # §19.1.4: the user part compares unescaped (`%2A41%23` is `*41#`).
    return parse_feature_code(unquote(user))


def handle(b2bua: B2bua, event: IncomingRequest, command: FeatureCommand, *, now: float) -> None:
    """Authenticate, apply and answer a feature-code INVITE (see the module docstring)."""
    operator = event.operator or ""
    refusal = operator_auth.authenticate(b2bua, event, operator, what="feature code", now=now)
    if refusal is not None:
        b2bua.endpoint.respond(event.key, refusal, method="INVITE", addr=event.addr, now=now)
        return
    media_leg = f"{event.request.call_id}/feature"
    answer_sdp = _negotiate(b2bua, event, media_leg)
    if answer_sdp is None:
        return
    try:
        b2bua.acd.apply_feature(operator, command, now=now)
    except AcdError as exc:
        log.info("feature %s from %s refused: %s", command.action, operator, exc)
        b2bua.media.close_leg(media_leg)
        _refuse(b2bua, event, 403, str(exc), now=now)
        return
    log.info("feature %s applied for operator %s", command.action, operator)
    _answer(b2bua, event, media_leg, answer_sdp, now=now)


def _negotiate(b2bua: B2bua, event: IncomingRequest, media_leg: str) -> bytes | None:
    """Open the leg and answer the phone's SDP offer; None (after a 488) if we cannot."""
    try:
        offer = parse_sdp(event.request.body)
    except SdpError as exc:
        _refuse(b2bua, event, 488, f"unreadable SDP: {exc}", now=event.at)
        return None
    answer = b2bua.open_answer(offer, media_leg)
    if answer is None:
        _refuse(b2bua, event, 503, "no media port free", now=event.at)
        return None
    if isinstance(answer, NoCommonCodec):
        _refuse(b2bua, event, 488, "no common codec", now=event.at)
        return None
    b2bua.media.configure_leg(media_leg, leg_media(answer.media))
    return serialize_sdp(answer.sdp)


def _refuse(b2bua: B2bua, event: IncomingRequest, status: int, why: str, *, now: float) -> None:
    text = why.replace("\\", "").replace('"', "'")
    warning = ("Warning", f'399 centralino "{text}"')
    b2bua.endpoint.reply(event.request, event.key, event.addr, status, now=now, extra=(warning,))


def _answer(
    b2bua: B2bua, event: IncomingRequest, media_leg: str, sdp: bytes, *, now: float
) -> None:
    request = event.request
    response = b2bua.endpoint.reply(
        request,
        event.key,
        event.addr,
        200,
        now=now,
        to_tag=b2bua.ids.tag(),
        extra=(("Contact", b2bua.contact()), ("Content-Type", "application/sdp")),
        body=sdp,
    )
    call = FeatureCall(
        call_id=request.call_id,
        operator=event.operator or "",
        media_leg=media_leg,
        addr=event.addr,
        dialog=b2bua.dialogs.response_sent(request, response),
        hangup_at=now + HANGUP_AFTER,
    )
    b2bua.features.add(call)
    b2bua.media.play(media_leg, (CONFIRMATION,), language="it", play_id=1)


# -- the end of a feature call ---------------------------------------------------------


def media_event(b2bua: B2bua, event: MediaEvent, *, now: float) -> bool:
    """The confirmation ended: hang up. True if the event was a feature call's."""
    call = b2bua.features.by_media_leg(event.leg)
    if call is None:
        return False
    if isinstance(event, PlaybackFinished):
        hang_up(b2bua, call, now=now)
    return True


def hang_up(b2bua: B2bua, call: FeatureCall, *, now: float) -> None:
    """We end the feature call: BYE and release its media."""
    log.info("feature call %s of %s: hanging up", call.call_id, call.operator)
    b2bua.send_bye(call.dialog, call.addr, now=now)
    ended(b2bua, call)


def ended(b2bua: B2bua, call: FeatureCall) -> None:
    """The feature call is over (our BYE, the phone's BYE, or no ACK)."""
    call.dialog = None
    b2bua.media.close_leg(call.media_leg)
    b2bua.features.remove(call)


def handle_timer(b2bua: B2bua, *, now: float) -> None:
    """Hang up feature calls whose tone never reported its end."""
    for call in b2bua.features.due(now):
        hang_up(b2bua, call, now=now)
