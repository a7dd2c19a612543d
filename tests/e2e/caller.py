"""A small test UAC for end-to-end calls through `centralino serve`.

It speaks raw SIP text over one UDP socket (INVITE with an SDP offer, ACK, BYE, and the
200 to the switch's own BYE), and owns one RTP socket that records every packet it
receives with its arrival time and can send RFC 4733 telephone-events replayed from a
pcap capture (read with `media.pcap`), rewritten to the negotiated payload type, our
SSRC and our sequence/timestamp clock (RFC 3550 §5.1, RFC 4733 §2.3).

Every wait is bounded; the two reader threads end when `close()` closes their sockets.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import random
import socket
import sqlite3
import struct
import threading
import time
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from media.pcap import read_udp_file

STATIC_PT = {"PCMU": 0, "PCMA": 8, "G729": 18}
CLOCK_RATE = 8000
_ids = itertools.count(1)
_POLL = 0.1  # how often the reader threads look whether they should stop
_COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "c": "content-type"}


# -- SIP ----------------------------------------------------------------------------------


@dataclass
class SipMessage:
    """A request or response as read off the wire (enough of it for assertions)."""

    raw: bytes
    first_line: str
    headers: list[tuple[str, str]]
    body: str

    @classmethod
    def parse(cls, raw: bytes) -> SipMessage | None:
        head, _, body = raw.decode("utf-8", "replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        if not lines or " " not in lines[0]:
            return None
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if colon:
                key = name.strip().lower()
                headers.append((_COMPACT.get(key, key), value.strip()))
        return cls(raw, lines[0], headers, body)

    @property
    def status(self) -> int | None:
        parts = self.first_line.split(" ", 2)
        if parts[0] == "SIP/2.0" and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def method(self) -> str | None:
        return None if self.status is not None else self.first_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        """The first value of a header, by its long name (compact forms are expanded)."""
        return next((v for k, v in self.headers if k == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def cseq_method(self) -> str:
        return (self.header("cseq") or " ").split()[-1]


@dataclass(frozen=True)
class AnswerSdp:
    """What we need of the switch's SDP answer."""

    host: str
    port: int
    payload_types: tuple[int, ...]
    rtpmap: dict[int, str]

    @classmethod
    def parse(cls, text: str) -> AnswerSdp:
        host, port, pts, rtpmap = "", 0, (), {}
        for line in text.splitlines():
            if line.startswith("c="):
                host = line.split()[-1]
            elif line.startswith("m=audio"):
                fields = line.split()
                port, pts = int(fields[1]), tuple(int(p) for p in fields[3:])
            elif line.startswith("a=rtpmap:"):
                pt, _, name = line[len("a=rtpmap:") :].partition(" ")
                rtpmap[int(pt)] = name.split("/")[0]
        return cls(host, port, pts, rtpmap)

    @property
    def codec(self) -> str:
        """The audio codec chosen (the first payload type that is not an event)."""
        for pt in self.payload_types:
            name = self.rtpmap.get(pt) or {v: k for k, v in STATIC_PT.items()}.get(pt, "")
            if name.lower() != "telephone-event":
                return name.upper()
        return ""

    @property
    def telephone_event(self) -> int | None:
        return next(
            (pt for pt, name in self.rtpmap.items() if name.lower() == "telephone-event"), None
        )


def offer_sdp(host: str, port: int, codecs: Sequence[str], telephone_event: int | None) -> str:
    """An RFC 3264 offer in the shape a PBX trunk sends."""
    pts = [STATIC_PT[c] if c in STATIC_PT else int(c.split("/")[0]) for c in codecs]
    lines = ["v=0", f"o=pbx {os.getpid()} 1 IN IP4 {host}", "s=-", f"c=IN IP4 {host}", "t=0 0"]
    formats = [*pts, *([telephone_event] if telephone_event is not None else [])]
    lines.append(f"m=audio {port} RTP/AVP {' '.join(str(p) for p in formats)}")
    for codec, pt in zip(codecs, pts, strict=True):
        name = codec if codec in STATIC_PT else codec.split("/", 1)[1]
        lines.append(f"a=rtpmap:{pt} {name}/8000")
        if name == "G729":
            lines.append(f"a=fmtp:{pt} annexb=no")
    if telephone_event is not None:
        lines += [f"a=rtpmap:{telephone_event} telephone-event/8000"]
        lines += [f"a=fmtp:{telephone_event} 0-15"]
    lines += ["a=ptime:20", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"


# -- RTP ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One received RTP packet (RFC 3550 §5.1) and when it arrived (monotonic)."""

    arrival: float
    marker: bool
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes

    @classmethod
    def parse(cls, data: bytes, arrival: float) -> RtpPacket | None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10 and len(data) >= offset + 4:
            offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
        end = len(data) - (data[-1] if first & 0x20 else 0)
        payload = data[offset:end]
        return cls(arrival, bool(second & 0x80), second & 0x7F, seq, ts, ssrc, payload)


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One RFC 4733 packet of a capture, relative to the first packet of its replay."""

    offset: float
    marker: bool
    seq_delta: int
    ts_delta: int
    payload: bytes


def events_from_pcap(path: str | Path, *, max_gap: float = 0.2) -> list[EventPacket]:
    """The telephone-event packets of a capture (4-byte payloads on a dynamic payload
    type, RFC 4733 §2.3), with silences longer than `max_gap` shortened to it."""
    found = []
    for datagram in read_udp_file(path):
        packet = RtpPacket.parse(datagram.payload, datagram.timestamp)
        if packet is not None and packet.payload_type >= 96 and len(packet.payload) == 4:
            found.append(packet)
    if not found:
        raise ValueError(f"{path}: no telephone-event packets")
    out, offset, first = [], 0.0, found[0]
    for previous, packet in zip([first, *found], found, strict=False):
        offset += min(max(packet.arrival - previous.arrival, 0.0), max_gap)
        seq_delta = (packet.seq - first.seq) & 0xFFFF
        ts_delta = (packet.timestamp - first.timestamp) & 0xFFFFFFFF
        out.append(EventPacket(offset, packet.marker, seq_delta, ts_delta, packet.payload))
    return out


def event_digits(packets: Iterable[EventPacket]) -> str:
    """The digits a capture carries, one per distinct event start (for known answers)."""
    digits, seen = [], set()
    for packet in packets:
        if packet.ts_delta not in seen:
            seen.add(packet.ts_delta)
            digits.append("0123456789*#ABCD"[packet.payload[0]] if packet.payload[0] < 16 else "?")
    return "".join(digits)


class RtpPort:
    """A UDP socket for RTP: records what arrives, sends from the same port (symmetric)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((host, 0))
        # Closing a socket does not wake a thread blocked on it: poll a flag instead.
        self.sock.settimeout(_POLL)
        self._closed = False
        self.host, self.port = self.sock.getsockname()
        self.sources: set[tuple[str, int]] = set()
        self._packets: list[RtpPacket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data, source = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            packet = RtpPacket.parse(data, time.monotonic())
            if packet is not None:
                with self._lock:
                    self._packets.append(packet)
                    self.sources.add(source)

    def packets(self) -> list[RtpPacket]:
        with self._lock:
            return list(self._packets)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2)
        self.sock.close()


# -- a call from the trunk ----------------------------------------------------------------


@dataclass
class TrunkCall:
    """One call as the PBX trunk places it: `invite()`, then media, then `hang_up()`."""

    switch: tuple[str, int]
    number: str
    codecs: Sequence[str] = ("PCMU", "PCMA", "G729")
    telephone_event: int | None = 101
    caller: str = "0461000000"
    call_id: str = field(default="")
    answer: SipMessage | None = None
    sdp: AnswerSdp | None = None
    answered_at: float | None = None
    bye_at: float | None = None
    """When the switch's BYE arrived (monotonic), if it hung up on us."""

    def __post_init__(self) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.sip.settimeout(_POLL)
        self._closed = False
        self.host, self.port = self.sip.getsockname()
        self.rtp = RtpPort(self.host)
        n = next(_ids)
        self.call_id = self.call_id or f"e2e-{os.getpid()}-{n}-{self.port}@{self.host}"
        self.tag = f"pbx{n}"
        self.ssrc = 0x1000 + n
        self.seq = 1000 * n
        self._cseq = 1
        self._branch = ""
        self._inbox: queue.Queue[SipMessage] = queue.Queue()
        self._reader = threading.Thread(target=self._read_sip, daemon=True)
        self._reader.start()

    # -- SIP I/O --------------------------------------------------------------------------

    def _read_sip(self) -> None:
        while not self._closed:
            try:
                data, source = self.sip.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            message = SipMessage.parse(data)
            if message is None:
                continue
            if message.method == "BYE":
                self.bye_at = self.bye_at or time.monotonic()
                self.sip.sendto(self._response_to(message, 200, "OK"), source)
            elif message.method is not None:
                self.sip.sendto(self._response_to(message, 200, "OK"), source)
            else:
                self._inbox.put(message)

    def _response_to(self, request: SipMessage, status: int, reason: str) -> bytes:
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in request.all("via")]
        for name in ("from", "to", "call-id", "cseq"):
            lines.append(f"{name.title()}: {request.header(name) or ''}")
        return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()

    def _send(self, data: str) -> None:
        self.sip.sendto(data.encode(), self.switch)

    def _await(self, cseq_method: str, timeout: float, *, final: bool = True) -> SipMessage | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self._inbox.get(timeout=left)
            except queue.Empty:
                return None
            if message.header("call-id") != self.call_id or message.cseq_method != cseq_method:
                continue
            if not final or (message.status or 0) >= 200:
                return message
        return None

    # -- requests -------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        return f"sip:{self.number}@{self.switch[0]}:{self.switch[1]}"

    def _request(self, method: str, uri: str, cseq: int, *extra: str, body: str = "") -> str:
        to = f"<sip:{self.number}@{self.switch[0]}:{self.switch[1]}>"
        if method != "INVITE" and self.answer is not None:
            to = self.answer.header("to") or to
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={self._branch};rport",
            "Max-Forwards: 70",
            f'From: "Cittadino" <sip:{self.caller}@{self.host}:{self.port}>;tag={self.tag}',
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:pbx@{self.host}:{self.port}>",
            *extra,
            f"Content-Length: {len(body.encode())}",
            "",
            body,
        ]
        return "\r\n".join(lines)

    def _new_branch(self) -> None:
        self._branch = (
            f"z9hG4bK-e2e-{self.call_id.split('@')[0]}-{self._cseq}-{time.monotonic_ns()}"
        )

    def invite(self, timeout: float = 5.0) -> SipMessage:
        """Send the INVITE (retransmitted as Timer A would, RFC 3261 §17.1.1.2) and return
        its final response, ACKed."""
        sdp = offer_sdp(self.rtp.host, self.rtp.port, self.codecs, self.telephone_event)
        self._new_branch()
        invite = self._request(
            "INVITE", self.uri, self._cseq, "Content-Type: application/sdp", body=sdp
        )
        final, deadline, interval = None, time.monotonic() + timeout, 0.5
        while final is None and time.monotonic() < deadline:
            self._send(invite)
            final = self._await("INVITE", min(interval, deadline - time.monotonic()))
            interval *= 2
        if final is None:
            raise TimeoutError(f"no final answer to INVITE {self.call_id} in {timeout} s")
        self._ack(final)
        return final

    def _ack(self, final: SipMessage) -> None:
        status = final.status or 0
        if 200 <= status < 300:
            self.answer, self.answered_at = final, time.monotonic()
            self.sdp = AnswerSdp.parse(final.body)
            self._new_branch()  # a 2xx ACK is a transaction of its own (§17.1.1.3)
            target = (final.header("contact") or f"<{self.uri}>").strip("<>").split(">")[0]
            self._send(self._request("ACK", target, self._cseq))
        else:
            lines = self._request("ACK", self.uri, self._cseq).split("\r\n")
            to = final.header("to") or ""
            self._send("\r\n".join(f"To: {to}" if x.startswith("To:") else x for x in lines))

    def hang_up(self, timeout: float = 5.0) -> int | None:
        """BYE the switch; the status of its answer (None if none came)."""
        if self.answer is None or self.bye_at is not None:
            return None
        self._cseq += 1
        self._new_branch()
        target = (self.answer.header("contact") or f"<{self.uri}>").strip("<>").split(">")[0]
        self._send(self._request("BYE", target, self._cseq))
        response = self._await("BYE", timeout)
        self.answer = None  # the dialog is over, whatever the answer
        return None if response is None else response.status

    def info(self, content_type: str, body: str, timeout: float = 5.0) -> int | None:
        """Send an in-dialog INFO (e.g. application/dtmf-relay); the answer's status."""
        if self.answer is None:
            raise RuntimeError("no dialog")
        self._cseq += 1
        self._new_branch()
        target = (self.answer.header("contact") or f"<{self.uri}>").strip("<>").split(">")[0]
        extra = f"Content-Type: {content_type}"
        self._send(self._request("INFO", target, self._cseq, extra, body=body))
        response = self._await("INFO", timeout)
        return None if response is None else response.status

    def wait_hung_up(self, timeout: float) -> bool:
        """Whether the switch sent us a BYE within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.bye_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.bye_at is not None

    # -- RTP out --------------------------------------------------------------------------

    def send_events(self, packets: Sequence[EventPacket]) -> None:
        """Replay telephone-event packets on the negotiated payload type, from our SSRC,
        with our sequence numbers and a timestamp base taken from our media clock; the
        capture's spacing and its retransmitted end packets are kept."""
        if self.sdp is None or self.answered_at is None:
            raise RuntimeError("no answer yet")
        pt = self.sdp.telephone_event if self.sdp.telephone_event is not None else 101
        base_ts = int((time.monotonic() - self.answered_at) * CLOCK_RATE) + 160
        start = time.monotonic()
        for packet in packets:
            delay = start + packet.offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            header = struct.pack(
                "!BBHII",
                0x80,
                (0x80 if packet.marker else 0) | pt,
                (self.seq + packet.seq_delta) & 0xFFFF,
                (base_ts + packet.ts_delta) & 0xFFFFFFFF,
                self.ssrc,
            )
            self.rtp.sock.sendto(header + packet.payload, (self.sdp.host, self.sdp.port))
        self.seq += max(p.seq_delta for p in packets) + 1

    def send_audio(self, payload_type: int, payloads: Sequence[bytes]) -> None:
        """Send encoded 20 ms frames at 50 packets/s on an absolute schedule, from our
        SSRC and clock (the first packet marks a talkspurt, RFC 3551 §4.1)."""
        if self.sdp is None or self.answered_at is None:
            raise RuntimeError("no answer yet")
        start = time.monotonic()
        base_ts = int((start - self.answered_at) * CLOCK_RATE)
        for index, payload in enumerate(payloads):
            delay = start + index * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            second = (0x80 if index == 0 else 0) | payload_type
            ts = (base_ts + index * 160) & 0xFFFFFFFF
            header = struct.pack("!BBHII", 0x80, second, self.seq & 0xFFFF, ts, self.ssrc)
            self.seq += 1
            self.rtp.sock.sendto(header + payload, (self.sdp.host, self.sdp.port))

    def send_digit_pcap(self, path: str | Path, *, max_gap: float = 0.2) -> str:
        """Replay a capture's RFC 4733 digits; returns the digits it carries."""
        packets = events_from_pcap(path, max_gap=max_gap)
        self.send_events(packets)
        return event_digits(packets)

    def close(self) -> None:
        if self.answer is not None and self.bye_at is None:
            self.hang_up(timeout=2.0)
        self._closed = True
        self._reader.join(timeout=2)
        self.sip.close()
        self.rtp.close()

    def __enter__(self) -> TrunkCall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the switch's event log ---------------------------------------------------------------


def read_events(data_dir: Path, call_id: str | None = None) -> list[dict[str, Any]]:
    """The stored call events (committed every 0.5 s by the switch), in order, with
    `data` decoded from its JSON."""
    path = data_dir / "events.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        db.row_factory = sqlite3.Row
        sql = "SELECT seq, mono, kind, call_id, service, sub_service, queue, data FROM call_event"
        rows = db.execute(sql + " ORDER BY seq").fetchall()
    events = [dict(r) for r in rows if call_id is None or r["call_id"] == call_id]
    for event in events:
        event["data"] = json.loads(event["data"])
    return events


def wait_event(
    data_dir: Path, call_id: str, kind: str, timeout: float, *, count: int = 1
) -> list[dict[str, Any]]:
    """Wait (bounded) until `count` events of `kind` are logged for the call; returns
    the call's events, whatever the outcome."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(data_dir, call_id)
        if sum(e["kind"] == kind for e in events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


# -- configurations for a test switch -----------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
TRENTINO = ROOT / "config" / "trentino.yaml"
PROMPTS = ROOT / "config" / "prompts"
ROME = ZoneInfo("Europe/Rome")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def calendar_now(*, open_now: bool) -> dict[str, Any]:
    """A service calendar that is open right now by the real clock (every day, all day,
    no holidays), or closed right now (open all day on every other weekday)."""
    today = DAYS[datetime.now(ROME).weekday()]
    days = list(DAYS) if open_now else [d for d in DAYS if d != today]
    window = {"days": days, "from": "00:00", "to": "23:59:59"}
    return {"hours": [window], "public_holidays": False, "closures": []}


def trentino_config(
    tmp: Path,
    *,
    open_now: bool = True,
    calendar: dict[str, Any] | None = None,
    menu: dict[str, Any] | None = None,
    rtp_ports: tuple[int, int] | None = None,
    media_timeout: float | None = None,
) -> Path:
    """A copy of config/trentino.yaml in `tmp` whose calendars the test decides, with
    `menu` merged into trentino-digitale's menu node; prompts stay the bundled ones.

    The RTP range is moved off the bundled 20000-30000, which every other switch on the
    machine uses: a stray stream from another process to one of our ports would latch
    the leg (media/rtp.py latches on the first packet from any address)."""
    rtp_ports = rtp_ports or private_rtp_range()
    config = yaml.safe_load(TRENTINO.read_text(encoding="utf-8"))
    config["prompts_dir"] = str(PROMPTS)
    for service in config["services"].values():
        service["calendar"] = {**calendar_now(open_now=open_now), **(calendar or {})}
    if menu:
        node = config["services"]["trentino-digitale"]["ivr"]["menu"]
        config["services"]["trentino-digitale"]["ivr"]["menu"] = {**node, **menu}
    config["rtp"] = {**config["rtp"], "port_min": rtp_ports[0], "port_max": rtp_ports[1]}
    if media_timeout is not None:
        config["rtp"]["media_timeout"] = media_timeout
    path = tmp / "trentino.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), "utf-8")
    return path


def private_rtp_range(size: int = 400) -> tuple[int, int]:
    """An even RTP range of `size` ports in 42000-59999 that is free right now."""
    for _ in range(50):
        low = 42000 + 2 * random.randrange((18000 - size) // 2)
        if all(_udp_free(port) for port in range(low, low + size, 37)):
            return low, low + size - 1
    raise RuntimeError("no free RTP range")


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def prompt_seconds(*names: str, language: str = "it") -> float:
    """How long these bundled prompts last, played one after the other."""
    total = 0.0
    for name in names:
        with wave.open(str(PROMPTS / language / f"{name}.wav"), "rb") as reader:
            total += reader.getnframes() / reader.getframerate()
    return total
