"""Attended transfer: an operator's consultation call to a referent through us, and the
REFER with Replaces (RFC 3891 §3, RFC 3515 §2.4) that hands the caller over to it.

The consultation is an INVITE from an operator's registered phone to a referent's number
(`sip:0461...@switch`), digest-authenticated as the operator (`routing.operator_auth`:
nothing is dialed through the trunk for a forged source address). We answer it at once
with our SDP (as a caller's call) and INVITE the number through the trunk of the call
the operator is talking on; the two are bridged once the referent answers; a refusal
hangs the consultation up with a Reason (RFC 3326). The operator then REFERs the caller,
on the caller's leg, with `Refer-To: <sip:...?Replaces=<consultation
Call-ID>;to-tag=<our tag>;from-tag=<the phone's tag>>`: the referent's leg becomes the
caller's transfer target (`routing.transfer`), the consultation leg is hung up, and the
transfer ends as a blind one does (NOTIFY 200, the operator's leg hung up, counted as
escalated). Sent before the referent answers, it is a semi-attended transfer: the caller
waits with music for the answer, with the transfer timeout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from media.sdp import SdpError, parse_sdp, serialize_sdp
from media.session import NoCommonCodec, read_answer
from routing import operator_auth, transfer
from routing.legs import CallerLeg, OperatorLeg, Session, Transfer, leg_media
from sip import events as tx
from sip.dialog import Dialog
from sip.endpoint import IncomingRequest
from sip.transaction import Addr, ClientTransactionKey

if TYPE_CHECKING:
    from routing.b2bua import B2bua

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Consultation:
    """The operator's call to a referent: their leg (we are its UAS) and ours."""

    operator: str
    call_id: str
    media_leg: str
    addr: Addr
    dialog: Dialog | None
    number: str
    target: OperatorLeg
    answered: bool = False


class Consultations:
    """Consultation calls by the operator's Call-ID, our leg's Call-ID and its key."""

    def __init__(self) -> None:
        self._by_call: dict[str, Consultation] = {}
        self._by_target: dict[str, Consultation] = {}
        self._by_key: dict[ClientTransactionKey, Consultation] = {}

    def add(self, consult: Consultation) -> None:
        self._by_call[consult.call_id] = consult
        self._by_target[consult.target.call_id] = consult
        self._by_key[consult.target.key] = consult

    def forget(self, consult: Consultation) -> None:
        self._by_call.pop(consult.call_id, None)
        self._by_target.pop(consult.target.call_id, None)
        self._by_key.pop(consult.target.key, None)

    def by_call_id(self, call_id: str) -> Consultation | None:
        """The consultation either of whose legs has this Call-ID."""
        return self._by_call.get(call_id) or self._by_target.get(call_id)

    def by_key(self, key: ClientTransactionKey) -> Consultation | None:
        return self._by_key.get(key)

    def __len__(self) -> int:
        return len(self._by_call)


def _user(uri: str) -> str:
    return unquote(uri.partition(":")[2].partition("@")[0])


def is_consultation(b2bua: B2bua, event: IncomingRequest) -> bool:
    """A new INVITE from an operator's phone to a referent's number."""
    request = event.request
    if event.operator is None or request.method != "INVITE" or request.to.tag is not None:
        return False
    number = _user(request.uri)
    if b2bua.dialplan.lookup(number) is not None:
        return False  # one of our services' numbers: a call, not a consultation
    return transfer.classify(b2bua, number) == (transfer.REFERENT, number)


def _trunk_host(b2bua: B2bua, operator: str) -> str | None:
    """The trunk of the call the operator is talking on (referents are dialed there)."""
    talking = (call for call, leg in b2bua.calls.offers() if leg.operator == operator)
    call = next((c for c in talking if c.bridged_to == operator), None)
    return call.addr[0] if call is not None else None


def start(b2bua: B2bua, event: IncomingRequest, *, now: float) -> None:
    """Answer the operator's consultation INVITE and dial the number through the trunk."""
    request, operator = event.request, event.operator or ""
    refusal = operator_auth.authenticate(b2bua, event, operator, what="consultation", now=now)
    if refusal is not None:  # nothing goes out through the trunk unauthenticated
        b2bua.endpoint.respond(event.key, refusal, method="INVITE", addr=event.addr, now=now)
        return
    host = b2bua.config.referent_trunk[0] if b2bua.config.referent_trunk else None
    host = host or _trunk_host(b2bua, operator)
    media_leg = f"{request.call_id}/operator"
    try:
        answer = b2bua.open_answer(parse_sdp(request.body), media_leg) if host else None
    except SdpError:
        answer = None
    if host is None or answer is None or isinstance(answer, NoCommonCodec):
        status = 488 if isinstance(answer, NoCommonCodec) else 480 if host is None else 400
        b2bua.endpoint.reply(request, event.key, event.addr, status, now=now)
        return
    number = _user(request.uri)
    target = transfer.dial_leg(
        b2bua, transfer.referent_destination(b2bua, host, number),
        media_leg=f"{request.call_id}/referent", identity=f"<sip:{operator}@{host}>",
        codec=answer.media.codec.name, label=number, call=None, now=now,
    )  # fmt: skip
    if target is None:
        b2bua.media.close_leg(media_leg)
        b2bua.endpoint.reply(request, event.key, event.addr, 503, now=now)
        return
    extra = (("Contact", b2bua.contact()), ("Content-Type", "application/sdp"))
    body = serialize_sdp(Session.starting(answer.sdp).local_sdp)
    response = b2bua.endpoint.reply(
        request, event.key, event.addr, 200, now=now, extra=extra, body=body
    )
    b2bua.media.configure_leg(media_leg, leg_media(answer.media))
    dialog = b2bua.dialogs.response_sent(request, response)
    b2bua.consultations.add(
        Consultation(
            operator=operator,
            call_id=request.call_id,
            media_leg=media_leg,
            addr=event.addr,
            dialog=dialog,
            number=number,
            target=target,
        )
    )


def response(b2bua: B2bua, event: tx.ResponseReceived, *, now: float) -> bool:
    """A response to our INVITE of a consultation; False when the key is not one."""
    consult = b2bua.consultations.by_key(event.key)
    if consult is None:
        return False
    status, target = event.response.status, consult.target
    if status < 200:
        return True
    dialog = b2bua.dialogs.receive_response(target.invite, event.response, now=now)
    if 200 <= status < 300 and dialog is not None:
        b2bua.endpoint.send_request(
            dialog.create_ack(event.response.cseq.seq), target.target, now=now
        )
        target.dialog, target.answered = dialog, True
        _connect(b2bua, consult, event.response.body, now=now)
    elif status >= 300:
        _end(b2bua, consult, cause=status, now=now)
    return True


def _connect(b2bua: B2bua, consult: Consultation, body: bytes, *, now: float) -> None:
    target = consult.target
    try:
        params = read_answer(target.offer, parse_sdp(body))
    except SdpError:
        params = None
    if params is None or isinstance(params, NoCommonCodec):
        _end(b2bua, consult, cause=488, now=now)
        return
    b2bua.media.configure_leg(target.media_leg, leg_media(params))
    consult.answered = True
    b2bua.media.bridge(consult.media_leg, target.media_leg)


def failed(b2bua: B2bua, key: ClientTransactionKey, *, now: float) -> bool:
    """Our consultation INVITE timed out (§8.1.3.1: as a 408)."""
    consult = b2bua.consultations.by_key(key)
    if consult is not None and not consult.answered:
        _end(b2bua, consult, cause=408, now=now)
    return consult is not None


def bye(b2bua: B2bua, call_id: str, *, now: float) -> bool:
    """A BYE from either side of a consultation (already answered 200) ends both."""
    consult = b2bua.consultations.by_call_id(call_id)
    if consult is None:
        return False
    if call_id == consult.call_id:
        consult.dialog = None  # their BYE ended it
    else:
        consult.target.dialog = None
    _end(b2bua, consult, cause=None, now=now)
    return True


def _end(b2bua: B2bua, consult: Consultation, *, cause: int | None, now: float) -> None:
    """Hang up what is left of a consultation and free its media."""
    target = consult.target
    if target.dialog is not None:
        b2bua.send_bye(target.dialog, target.target, now=now)
    elif not target.answered and b2bua.endpoint.layer.client_state(target.key) is not None:
        b2bua.endpoint.layer.cancel(target.key, now=now)
    reason = () if cause is None else (("Reason", f"SIP;cause={cause}"),)
    b2bua.send_bye(consult.dialog, consult.addr, now=now, extra=reason)
    consult.dialog = target.dialog = None
    b2bua.media.close_leg(consult.media_leg)
    b2bua.media.close_leg(target.media_leg)
    b2bua.consultations.forget(consult)


# -- the REFER with Replaces ------------------------------------------------------------


def replaced(b2bua: B2bua, headers: str) -> Consultation | None:
    """The consultation a Refer-To's `Replaces` names (RFC 3891 §6.1), if it is live."""
    fields = dict(part.partition("=")[::2] for part in unquote(headers).split("&") if "=" in part)
    value = next((v for k, v in fields.items() if k.lower() == "replaces"), "")
    call_id, *params = value.split(";")
    tags = dict(p.strip().partition("=")[::2] for p in params)
    consult = b2bua.consultations.by_call_id(call_id.strip())
    if consult is None or consult.call_id != call_id.strip() or consult.dialog is None:
        return None
    ours, theirs = consult.dialog.id.local_tag, consult.dialog.id.remote_tag
    return consult if tags.get("to-tag") == ours and tags.get("from-tag") == theirs else None


def has_replaces(event: IncomingRequest) -> bool:
    """A REFER whose Refer-To carries a Replaces header (an attended transfer)."""
    return any("replaces=" in v.lower() for v in event.request.headers.values("refer-to"))


def refer_received(
    b2bua: B2bua,
    event: IncomingRequest,
    call: CallerLeg,
    leg: CallerLeg | OperatorLeg,
    *,
    now: float,
) -> None:
    """REFER with Replaces on the caller's operator leg: 481 unless it names a live
    consultation of ours (RFC 3891 §3)."""
    status, uri = transfer.check(b2bua, call, leg, event.request.headers.values("refer-to"))
    consult = replaced(b2bua, uri.headers or "") if uri is not None else None
    if consult is None or not isinstance(leg, OperatorLeg):
        transfer.refuse(b2bua, event, 481 if uri is not None else status, now=now)
        return
    transfer.accept(b2bua, event, now=now)
    moved = Transfer(
        call_id=call.call_id, kind=transfer.REFERENT, target=consult.number, operator=leg.operator
    )
    b2bua.transfers.add(moved)
    transfer.notify(b2bua, call, moved, 100, "Trying", now=now)
    take_over(b2bua, call, moved, consult, now=now)


def take_over(
    b2bua: B2bua, call: CallerLeg, transfer_: Transfer, consult: Consultation, *, now: float
) -> None:
    """The caller takes the consultation's place: the referent's leg is the caller's
    transfer target, the operator's consultation leg is hung up."""
    b2bua.consultations.forget(consult)
    b2bua.media.unbridge(consult.media_leg)
    b2bua.send_bye(consult.dialog, consult.addr, now=now)
    consult.dialog = None
    b2bua.media.close_leg(consult.media_leg)
    transfer_.target, transfer_.leg = consult.number, consult.target
    if consult.answered:
        b2bua.transfers.add(transfer_)
        transfer.connected(b2bua, call, transfer_, now=now)
    else:
        transfer.waiting(b2bua, call, transfer_, now=now)
