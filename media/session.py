"""SDP offer/answer (RFC 3264) for our audio calls: codecs, DTMF, direction, hold.

We answer a caller's offer (`negotiate`), offer to an operator (`build_offer`) and read the
operator's answer (`read_answer`). `LocalOrigin` keeps our o= line across a dialog so that
re-offers and re-answers bump the version only when the body changes (RFC 3264 §8).

Payload type numbers are directional (RFC 3264 §5.1): the numbers in a description are the
ones its author expects to receive. `MediaParams` therefore carries the numbers we send
with and the numbers we receive on; they differ only for an asymmetric answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from media.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
)

__all__ = [
    "G729",
    "PCMA",
    "PCMU",
    "Answer",
    "Codec",
    "LocalOrigin",
    "MediaParams",
    "NoCommonCodec",
    "build_offer",
    "is_refresh",
    "negotiate",
    "read_answer",
]

TELEPHONE_EVENT = "telephone-event"
EVENTS = "0-15"  # RFC 4733 §3.2: the DTMF events 0-9, *, #, A-D
PTIME = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """An audio codec as SDP names it (RFC 3551 §6)."""

    name: str
    payload_type: int
    clock_rate: int = 8000
    fmtp: str | None = None


PCMU = Codec(name="PCMU", payload_type=0)
PCMA = Codec(name="PCMA", payload_type=8)
G729 = Codec(name="G729", payload_type=18, fmtp="annexb=no")  # RFC 4856 §2.1.9: no VAD/CNG
_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 18: ("G729", 8000)}


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaParams:
    """What the RTP session needs from a completed offer/answer exchange."""

    codec: Codec
    receive_payload_type: int
    telephone_event_pt: int | None
    receive_telephone_event_pt: int | None
    remote_addr: str
    remote_port: int
    direction: Direction
    remote_ptime: int = PTIME
    on_hold: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """Our answer SDP and the media it agrees on."""

    sdp: SessionDescription
    media: MediaParams


@dataclass(frozen=True, slots=True, kw_only=True)
class NoCommonCodec:
    """Reject with 488 and this Warning (RFC 3261 §21.4.26, §20.43 code 305)."""

    warning: str
    status_code: int = 488
    reason_phrase: str = "Not Acceptable Here"


def _no_common_codec(agent: str) -> NoCommonCodec:
    return NoCommonCodec(warning=f'305 {agent} "Incompatible media format"')


def _offered(media: MediaDescription, supported: Sequence[Codec]) -> list[Codec]:
    """Supported codecs in the order the description lists them, with its numbers.

    Static payload types need no rtpmap (RFC 3551 §6); an rtpmap overrides the table.
    """
    rtpmaps = media.rtpmaps()
    found = []
    for fmt in media.formats:
        pt = int(fmt) if fmt.isdigit() else -1
        mapped = rtpmaps.get(pt)
        name = (mapped[0].upper(), mapped[1]) if mapped else _STATIC.get(pt)
        for codec in supported:
            if name == (codec.name.upper(), codec.clock_rate):
                found.append(replace(codec, payload_type=int(fmt)))
    return found


def _events(media: MediaDescription, event_pt: int) -> str | None:
    """The DTMF events 0-15 the offer lists for telephone-event (RFC 4733 §7.1.1).

    No fmtp means 0-15 (RFC 4733 §2.4.1); None when the offer names none of them.
    """
    listed = media.fmtp(event_pt)
    if listed is None:
        return EVENTS
    wanted: set[int] = set()
    for item in listed.replace(" ", "").split(","):
        low, _, high = item.partition("-")
        if low.isdigit() and (high or low).isdigit():
            wanted.update(range(int(low), min(int(high or low), 15) + 1))
    return _ranges(sorted(wanted)) if wanted else None


def _ranges(events: list[int]) -> str:
    runs: list[list[int]] = []
    for event in events:
        if runs and event == runs[-1][-1] + 1:
            runs[-1].append(event)
        else:
            runs.append([event])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _event_pt(media: MediaDescription) -> int | None:
    for pt, (name, rate) in media.rtpmaps().items():
        if name.lower() == TELEPHONE_EVENT and rate == 8000 and str(pt) in media.formats:
            return pt
    return None


def _answer_events(media: MediaDescription) -> tuple[int, str] | None:
    event_pt = _event_pt(media)
    events = None if event_pt is None else _events(media, event_pt)
    return None if event_pt is None or events is None else (event_pt, events)


def _choose(offered: list[Codec], preference: Sequence[str] | None) -> Codec | None:
    """The offerer's order decides unless a preference list ranks the names."""
    if not offered:
        return None
    if not preference:
        return offered[0]
    rank = {name.upper(): index for index, name in enumerate(preference)}
    return min(offered, key=lambda c: rank.get(c.name.upper(), len(rank)))


def _usable(media: MediaDescription) -> bool:
    return media.media == "audio" and media.port != 0 and media.proto == "RTP/AVP"


def _direction(sends: bool, receives: bool) -> Direction:
    if sends:
        return Direction.SENDRECV if receives else Direction.SENDONLY
    return Direction.RECVONLY if receives else Direction.INACTIVE


def _ptime(media: MediaDescription) -> int:
    value = media.attribute("ptime")
    return int(value) if value and value.isdigit() and int(value) > 0 else PTIME


def _audio_media(
    codecs: Sequence[Codec], events: tuple[int, str] | None, port: int, direction: Direction
) -> MediaDescription:
    """An m=audio section: codecs, telephone-event with its events, ptime 20, direction."""
    formats = [str(c.payload_type) for c in codecs]
    attrs: list[Attribute] = []
    for codec in codecs:
        attrs.append(Attribute(name="rtpmap", value=f"{codec.payload_type} {codec.name}/8000"))
        if codec.fmtp:
            attrs.append(Attribute(name="fmtp", value=f"{codec.payload_type} {codec.fmtp}"))
    if events is not None:
        formats.append(str(events[0]))
        attrs.append(Attribute(name="rtpmap", value=f"{events[0]} {TELEPHONE_EVENT}/8000"))
        attrs.append(Attribute(name="fmtp", value=f"{events[0]} {events[1]}"))
    attrs += [Attribute(name="ptime", value=str(PTIME)), Attribute(name=direction.value)]
    return MediaDescription(
        media="audio", port=port, formats=tuple(formats), attributes=tuple(attrs)
    )


def _description(
    *, username: str, session_id: int, version: int, addr: str, media: tuple[MediaDescription, ...]
) -> SessionDescription:
    addrtype = "IP6" if ":" in addr else "IP4"
    origin = Origin(
        username=username, session_id=session_id, session_version=version, addrtype=addrtype,
        address=addr,
    )  # fmt: skip
    return SessionDescription(
        origin=origin,
        session_name="-",
        connection=Connection(addrtype=addrtype, address=addr),
        media=media,
    )


def _rejected(media: MediaDescription) -> MediaDescription:
    """RFC 3264 §6: a refused stream stays in the answer with port zero."""
    return MediaDescription(
        media=media.media, port=0, proto=media.proto, formats=media.formats or ("0",)
    )


def negotiate(
    offer: SessionDescription,
    *,
    supported: Sequence[Codec],
    preference: Sequence[str] | None = None,
    local_addr: str,
    local_port: int,
    session_id: int,
    session_version: int = 0,
    username: str = "centralino",
    direction: Direction = Direction.SENDRECV,
    telephone_event: bool = True,
    agent: str = "centralino",
) -> Answer | NoCommonCodec:
    """Answer an offer (RFC 3264 §6): the first usable audio stream gets one codec.

    The codec is the first of `supported` in the offerer's order, unless `preference`
    ranks codec names. The answer's direction mirrors the offer's (sendonly becomes
    recvonly, RFC 3264 §6.1), limited by our own `direction`. The old hold form
    `c=0.0.0.0` means we must send nothing (RFC 3264 §8.4). Every other stream is refused
    with port zero. An offer whose chosen stream has no c= line raises SdpError.
    """
    chosen = next(
        (
            (index, codec)
            for index, media in enumerate(offer.media)
            if _usable(media) and (codec := _choose(_offered(media, supported), preference))
        ),
        None,
    )
    if chosen is None:
        return _no_common_codec(agent)
    index, codec = chosen
    events = _answer_events(offer.media[index]) if telephone_event else None
    event_pt = events[0] if events else None
    params = _answer_params(offer, offer.media[index], codec, event_pt, direction)
    ours = _audio_media([codec], events, local_port, params.direction)
    answered = tuple(ours if i == index else _rejected(m) for i, m in enumerate(offer.media))
    sdp = _description(
        username=username, session_id=session_id, version=session_version, addr=local_addr,
        media=answered,
    )  # fmt: skip
    return Answer(sdp=sdp, media=params)


def _answer_params(
    offer: SessionDescription,
    media: MediaDescription,
    codec: Codec,
    event_pt: int | None,
    local: Direction,
) -> MediaParams:
    connection = offer.connection_for(media)
    if connection is None:
        raise SdpError("the offered audio stream has no c= line (RFC 8866 §5.7)")
    held_by_address = connection.is_hold
    offered = offer.direction_for(media)
    sends = offered.receives and local.sends and not held_by_address
    return MediaParams(
        codec=codec,
        receive_payload_type=codec.payload_type,
        telephone_event_pt=event_pt,
        receive_telephone_event_pt=event_pt,
        remote_addr=connection.address,
        remote_port=media.port,
        direction=_direction(sends, offered.sends and local.receives),
        remote_ptime=_ptime(media),
        on_hold=held_by_address or not offered.receives,
    )


def build_offer(
    *,
    codecs: Sequence[Codec],
    local_addr: str,
    local_port: int,
    session_id: int,
    session_version: int = 0,
    telephone_event_pt: int | None = 101,
    direction: Direction = Direction.SENDRECV,
    username: str = "centralino",
) -> SessionDescription:
    """Our offer (RFC 3264 §5): the codecs in our order of preference, telephone-event."""
    if not codecs:
        raise ValueError("an offer needs at least one codec")
    events = None if telephone_event_pt is None else (telephone_event_pt, EVENTS)
    media = _audio_media(codecs, events, local_port, direction)
    return _description(
        username=username, session_id=session_id, version=session_version, addr=local_addr,
        media=(media,),
    )  # fmt: skip


def read_answer(
    offer: SessionDescription,
    answer: SessionDescription,
    *,
    supported: Sequence[Codec] = (PCMU, PCMA, G729),
    agent: str = "centralino",
) -> MediaParams | NoCommonCodec:
    """What the peer accepted of our offer (RFC 3264 §6.1, §5.1 for the numbers)."""
    sent = next((m for m in offer.media if _usable(m)), None)
    media = next((m for m in answer.media if _usable(m)), None)
    if sent is None or media is None:
        return _no_common_codec(agent)
    ours = _offered(sent, supported)
    accepted = _offered(media, ours)
    if not accepted:
        return _no_common_codec(agent)
    codec = accepted[0]
    receive = next(c.payload_type for c in ours if c.name == codec.name)
    connection = answer.connection_for(media)
    answered = answer.direction_for(media)
    held = connection is None or connection.is_hold
    return MediaParams(
        codec=codec,
        receive_payload_type=receive,
        telephone_event_pt=_event_pt(media),
        receive_telephone_event_pt=_event_pt(sent) if _event_pt(media) is not None else None,
        remote_addr=connection.address if connection else "0.0.0.0",
        remote_port=media.port,
        direction=_direction(answered.receives and not held, answered.sends),
        remote_ptime=_ptime(media),
        on_hold=held or not answered.receives,
    )


def is_refresh(previous: SessionDescription | None, offer: SessionDescription) -> bool:
    """An offer whose o= line is unchanged repeats the last one (RFC 3264 §8)."""
    return previous is not None and previous.origin == offer.origin


class LocalOrigin:
    """Our o= line over one dialog: version +1 only when the body changes (RFC 3264 §8)."""

    def __init__(self, *, session_id: int, session_version: int | None = None) -> None:
        self.session_id = session_id
        self.version = session_id if session_version is None else session_version
        self._last: SessionDescription | None = None

    def stamp(self, sdp: SessionDescription) -> SessionDescription:
        """Give `sdp` our session id and the right version; remember it."""
        body = replace(sdp, origin=replace(sdp.origin, session_id=self.session_id))
        if self._last is not None and body.with_version(self.version) != self._last:
            self.version += 1
        self._last = body.with_version(self.version)
        return self._last
