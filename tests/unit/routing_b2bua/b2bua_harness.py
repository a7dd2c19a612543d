"""A virtual-time harness for call control: the real endpoint, B2BUA, IVR and ACD on
the bundled configuration, a recording fake media plane, and SIP peers built by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from metrics.events import EventKind
from routing.calendar import Calendar
from routing.media_plane import LegMedia, MediaEvent
from server.config import Settings, load_settings
from server.core import Core
from server.sipcore import build_b2bua, build_endpoint
from sip.digest import answer_challenge
from sip.ids import CounterIds
from sip.message import Message, Request, Response
from sip.parser import parse_message

ROOT = Path(__file__).resolve().parents[3]
SWITCH = ("127.0.0.1", 5060)
TRUNK = ("127.0.0.1", 5080)
PHONE = ("127.0.0.1", 5090)
# A Tuesday at 10:00 in Rome: every service is open.
OPEN_HOUR = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

OFFER = (
    "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP {pts}\r\n{maps}a=ptime:20\r\na=sendrecv\r\n"
)
MAPS = {
    0: "a=rtpmap:0 PCMU/8000\r\n",
    8: "a=rtpmap:8 PCMA/8000\r\n",
    18: "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n",
    101: "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
}


def sdp_offer(pts: Sequence[int] = (0, 8, 101)) -> bytes:
    """An SDP offer with these payload types."""
    return OFFER.format(pts=" ".join(map(str, pts)), maps="".join(MAPS[p] for p in pts)).encode()


class TestIds(CounterIds):
    """Deterministic ids plus the nonce secret the digest authenticator needs."""

    def nonce_secret(self) -> bytes:
        return b"k" * 32


@dataclass
class FakeMedia:
    """Records what call control asks of the media plane."""

    calls: list[tuple[str, object]] = field(default_factory=list)
    next_port: int = 20000
    open: set[str] = field(default_factory=set)
    exhausted: bool = False
    """Every open_leg fails, as the runtime's when the RTP port range is full."""

    def open_leg(self, leg: str) -> tuple[str, int]:
        if self.exhausted:
            raise OSError(98, "no free RTP port pair")
        self.next_port += 2
        self.open.add(leg)
        self.calls.append(("open", leg))
        return ("127.0.0.1", self.next_port)

    def configure_leg(self, leg: str, media: LegMedia) -> None:
        self.calls.append(("configure", (leg, media)))

    def play(
        self, leg: str, prompts: Sequence[str], *, language: str, play_id: int, loop: bool = False
    ) -> None:
        self.calls.append(("play", (leg, tuple(prompts), language, play_id, loop)))

    def stop_playback(self, leg: str) -> None:
        self.calls.append(("stop", leg))

    def bridge(self, leg_a: str, leg_b: str) -> None:
        self.calls.append(("bridge", (leg_a, leg_b)))

    def unbridge(self, leg: str) -> None:
        self.calls.append(("unbridge", leg))

    def record(self, leg: str, *, name: str, max_seconds: float) -> None:
        self.calls.append(("record", (leg, name, max_seconds)))

    def close_leg(self, leg: str) -> None:
        self.open.discard(leg)
        self.calls.append(("close", leg))

    def plays(self) -> list[tuple[str, tuple[str, ...], str, int, bool]]:
        return [args for op, args in self.calls if op == "play"]  # type: ignore[misc]


@dataclass
class Harness:
    """The pure core wired as the runtime wires it, driven with explicit `now`."""

    settings: Settings
    core: Core
    media: FakeMedia
    events: list[tuple[EventKind, dict[str, object]]]
    now: float = 0.0
    sent: list[tuple[Message, tuple[str, int]]] = field(default_factory=list)
    registers: dict[tuple[str, tuple[str, int]], int] = field(default_factory=dict)
    finished: set[tuple[str, int]] = field(default_factory=set)

    def deliver(self, data: bytes | str, source: tuple[str, int]) -> list[Message]:
        raw = data.encode() if isinstance(data, str) else data
        self.core.receive_datagram(raw, source, now=self.now)
        return self.flush()

    def media_event(self, event: MediaEvent) -> list[Message]:
        self.core.media_event(event, now=self.now)
        return self.flush()

    def advance(self, seconds: float) -> list[Message]:
        """Move virtual time, firing every timer due on the way."""
        end = self.now + seconds
        out: list[Message] = []
        while (timer := self.core.get_timer()) is not None and timer <= end:
            self.now = max(self.now, timer)
            self.core.handle_timer(now=self.now)
            out += self.flush()
        self.now = end
        return out

    def flush(self) -> list[Message]:
        out = []
        for data, addr in self.core.datagrams_to_send():
            message = parse_message(data)
            self.sent.append((message, addr))
            out.append(message)
        return out

    def kinds(self) -> list[EventKind]:
        return [kind for kind, _ in self.events]


def make_harness(settings: Settings | None = None, *, g729: bool = True) -> Harness:
    settings = settings or load_settings(ROOT / "config" / "trentino.yaml")
    ids = TestIds()
    media = FakeMedia()
    events: list[tuple[EventKind, dict[str, object]]] = []

    def record(kind: EventKind, **fields: object) -> None:
        events.append((kind, fields))

    endpoint = build_endpoint(settings, ids)
    calendar = Calendar({sid: s.calendar for sid, s in settings.services.items()})
    b2bua = build_b2bua(
        settings,
        endpoint=endpoint,
        media=media,
        recorder=record,
        calendar=calendar,
        wall=lambda at: OPEN_HOUR + timedelta(seconds=at),
        ids=ids,
        now=0.0,
        g729=g729,
    )
    core = Core(endpoint, b2bua, lambda event: None)
    return Harness(settings, core, media, events)


def invite(
    number: str = "800228040",
    *,
    call_id: str = "call-1@pbx",
    body: bytes | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """A trunk INVITE for `number`."""
    payload = sdp_offer() if body is None else body
    branch = "z9hG4bK-" + call_id.replace("@", ".")
    headers = {
        "Via": f"SIP/2.0/UDP {TRUNK[0]}:{TRUNK[1]};branch={branch};rport",
        "Max-Forwards": "70",
        "From": f'"Mario Rossi" <sip:0461123456@{TRUNK[0]}>;tag=pbx1',
        "To": f"<sip:{number}@{SWITCH[0]}>",
        "Call-ID": call_id,
        "CSeq": "1 INVITE",
        "Contact": f"<sip:pbx@{TRUNK[0]}:{TRUNK[1]}>",
        "Content-Type": "application/sdp",
        **(extra or {}),
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"INVITE sip:{number}@{SWITCH[0]} SIP/2.0\r\n{head}Content-Length: {len(payload)}\r\n\r\n"
        + payload.decode()
    )


def in_dialog(method: str, response: Response, *, cseq: int, source: tuple[str, int]) -> str:
    """An in-dialog request from the caller's side of `response`'s dialog."""
    return (
        f"{method} sip:centralino@{SWITCH[0]}:{SWITCH[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK-{method}-{cseq}\r\n"
        f"Max-Forwards: 70\r\nFrom: {response.headers.get('from')}\r\n"
        f"To: {response.headers.get('to')}\r\nCall-ID: {response.call_id}\r\n"
        f"CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )


def answer_request(request: Request, status: int, *, to_tag: str, body: bytes = b"") -> str:
    """A phone's response to a request we sent."""
    lines = [f"SIP/2.0 {status} X"]
    lines += [f"Via: {v}" for v in request.headers.get_all("via")]
    lines += [
        f"From: {request.headers.get('from')}",
        f"To: {request.headers.get('to')};tag={to_tag}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.headers.get('cseq')}",
        f"Contact: <sip:1001@{PHONE[0]}:{PHONE[1]}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body.decode()


def register(
    h: Harness,
    user: str = "1001",
    password: str = "demo1001",
    *,
    phone: tuple[str, int] = PHONE,
    expires: int = 600,
) -> Response:
    """REGISTER a phone with digest: 401, then 200."""

    def request(cseq: int, auth: str | None) -> str:
        lines = [
            f"REGISTER sip:{SWITCH[0]} SIP/2.0",
            f"Via: SIP/2.0/UDP {phone[0]}:{phone[1]};branch=z9hG4bK-reg-{user}-{cseq};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{SWITCH[0]}>;tag=ph1",
            f"To: <sip:{user}@{SWITCH[0]}>",
            f"Call-ID: reg-{user}-{phone[1]}@phone",
            f"CSeq: {cseq} REGISTER",
            f"Contact: <sip:{user}@{phone[0]}:{phone[1]}>",
            f"Expires: {expires}",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        return "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"

    seq = 2 * h.registers.get((user, phone), 0)
    h.registers[(user, phone)] = h.registers.get((user, phone), 0) + 1
    (challenge,) = h.deliver(request(seq + 1, None), phone)
    assert isinstance(challenge, Response) and challenge.status == 401
    header = challenge.headers.get("www-authenticate") or ""
    auth = answer_challenge(
        header, "REGISTER", f"sip:{SWITCH[0]}", user, password, cnonce="c1", nc=1
    )
    # The registration change may move calls on: keep only the REGISTER's answer.
    (ok,) = [m for m in h.deliver(request(seq + 2, auth), phone) if isinstance(m, Response)]
    return ok
