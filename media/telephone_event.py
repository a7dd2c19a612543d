"""RFC 4733 telephone-events (DTMF over RTP): payload codec, receiver and sender.

The receiver is sans-I/O: the RTP layer hands it each telephone-event payload with the
packet's RTP timestamp and its arrival time ``now``; it reports each key press once as
`DigitReceived` through `next_event()`, and asks for a timer (`get_timer()`) to close an
event whose end packets were all lost.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

__all__ = [
    "DIGITS",
    "DigitReceived",
    "EventPacket",
    "TelephoneEvent",
    "TelephoneEventError",
    "TelephoneEventReceiver",
    "build_event",
    "digit_code",
    "parse_event",
    "plan_digit",
]

logger = logging.getLogger(__name__)

#: RFC 4733 §3.2 Table 7: events 0-9, 10 = *, 11 = #, 12-15 = A-D.
DIGITS: Final = "0123456789*#ABCD"
_EVENT: Final = struct.Struct("!BBH")
_MAX_DURATION: Final = 0xFFFF
_TS_MODULUS: Final = 1 << 32


class TelephoneEventError(ValueError):
    """A malformed telephone-event payload or an invalid value to send."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitReceived:
    """A DTMF key press, reported once when it ended (or was judged ended)."""

    digit: str
    duration_ms: int
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """The 4-byte payload of RFC 4733 §2.3 (Figure 1)."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """The DTMF key for events 0-15, None for other events (flash, tones)."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None


def digit_code(digit: str) -> int:
    """The RFC 4733 event code of a DTMF key (case-insensitive for A-D)."""
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise TelephoneEventError(f"not a DTMF digit: {digit!r}")
    return code


def parse_event(payload: bytes) -> TelephoneEvent:
    """Parse the first event of a payload (RFC 4733 §2.3; the R bit is ignored)."""
    if len(payload) < _EVENT.size:
        raise TelephoneEventError(f"telephone-event payload of {len(payload)} bytes (< 4)")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(
        event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration
    )


def build_event(event: TelephoneEvent) -> bytes:
    """Serialize one event (RFC 4733 §2.3); the R bit is sent as zero."""
    if not (0 <= event.event <= 255 and 0 <= event.volume <= 63):
        raise TelephoneEventError(f"event {event.event} / volume {event.volume} out of range")
    if not 0 <= event.duration <= _MAX_DURATION:
        raise TelephoneEventError(f"duration {event.duration} does not fit 16 bits")
    return _EVENT.pack(event.event, (0x80 if event.end else 0) | event.volume, event.duration)


@dataclass(slots=True)
class _Active:
    """The event being received: keyed by its RTP timestamp and event code."""

    timestamp: int
    event: int
    duration: int
    earlier_segments: int
    last_seen: float


class TelephoneEventReceiver:
    """Reports each DTMF event once (RFC 4733 §2.5.2).

    - Retransmitted end packets and late updates of a finished event are ignored.
    - A lost start is harmless: the first packet seen with a new timestamp (even an end
      packet) starts the event.
    - A new timestamp while an event is open ends it (its end packets were lost), except
      for the next segment of a long event (§2.5.1.3), which continues it.
    - An event with no packet for ``end_timeout`` seconds is reported with its last
      known duration.
    """

    def __init__(self, *, clock_rate: int = 8000, end_timeout: float = 0.5) -> None:
        self._clock_rate = clock_rate
        self._end_timeout = end_timeout
        self._active: _Active | None = None
        self._finished: tuple[int, int] | None = None
        self._events: deque[DigitReceived] = deque()
        self.malformed = 0

    def receive_payload(self, payload: bytes, *, timestamp: int, now: float) -> None:
        """One telephone-event RTP payload; a malformed one is counted and dropped."""
        try:
            event = parse_event(payload)
        except TelephoneEventError as exc:
            self.malformed += 1
            logger.debug("dropped telephone-event packet: %s", exc)
            return
        if event.digit is not None:
            self._on_event(event, timestamp % _TS_MODULUS, now)

    def next_event(self) -> DigitReceived | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        return None if self._active is None else self._active.last_seen + self._end_timeout

    def handle_timer(self, *, now: float) -> None:
        timer = self.get_timer()
        if timer is not None and now >= timer:
            self._finish(now)

    def reset(self, *, now: float) -> None:
        """Forget the stream (new SSRC after a re-INVITE), reporting an open event first."""
        self._finish(now)
        self._finished = None

    def _on_event(self, event: TelephoneEvent, timestamp: int, now: float) -> None:
        active = self._active
        if active is not None and (timestamp, event.event) == (active.timestamp, active.event):
            self._on_update(active, event, now)
        elif self._is_stale(timestamp, event.event):
            return
        elif active is not None and self._continues(active, event, timestamp):
            active.earlier_segments += active.duration
            active.timestamp, active.duration, active.last_seen = timestamp, 0, now
            self._on_update(active, event, now)
        else:
            if active is not None:
                self._finish(now)
            self._active = _Active(timestamp, event.event, 0, 0, now)
            self._on_update(self._active, event, now)

    def _on_update(self, active: _Active, event: TelephoneEvent, now: float) -> None:
        # Durations only grow within an event; a reordered older update must not shrink it.
        active.duration = max(active.duration, event.duration)
        active.last_seen = now
        if event.end:
            self._finish(now)

    def _is_stale(self, timestamp: int, event: int) -> bool:
        """A retransmitted end or a late packet of an event already finished."""
        reference = self._active.timestamp if self._active else None
        if self._finished is not None:
            if self._finished == (timestamp, event):
                return True
            reference = reference if reference is not None else self._finished[0]
        if reference is None:
            return False
        behind = (reference - timestamp) % _TS_MODULUS
        # Up to 60 s behind is a late packet; further back is a sender that restarted.
        return 0 < behind <= 60 * self._clock_rate

    def _continues(self, active: _Active, event: TelephoneEvent, timestamp: int) -> bool:
        """§2.5.1.3: a long event goes on in a new segment at timestamp + duration."""
        expected = (active.timestamp + active.duration) % _TS_MODULUS
        gap = (timestamp - expected) % _TS_MODULUS
        return (
            event.event == active.event
            and active.duration >= _MAX_DURATION - self._clock_rate // 10
            and gap <= self._clock_rate // 10
        )

    def _finish(self, now: float) -> None:
        active = self._active
        if active is None:
            return
        samples = active.earlier_segments + active.duration
        self._events.append(
            DigitReceived(
                digit=DIGITS[active.event],
                duration_ms=round(samples * 1000 / self._clock_rate),
                at=now,
            )
        )
        self._finished = (active.timestamp, active.event)
        self._active = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventPacket:
    """One packet to send: ``offset`` seconds after the event starts, at ``timestamp``."""

    payload: bytes
    marker: bool
    timestamp: int
    offset: float


def plan_digit(
    digit: str,
    *,
    duration_ms: int,
    timestamp: int,
    clock_rate: int = 8000,
    volume: int = 10,
    interval_ms: int = 50,
) -> list[EventPacket]:
    """The packets of one key press (RFC 4733 §2.5.1).

    All packets carry the event's start timestamp and the duration elapsed when they are
    due: the first (duration 0) has the marker bit (§2.5.1.2), updates follow every
    ``interval_ms``, and the end packet is sent three times at the update interval
    (§2.5.1.4). Durations beyond one 16-bit segment are refused: DTMF presses are short.
    """
    code = digit_code(digit)
    total = duration_ms * clock_rate // 1000
    step = interval_ms * clock_rate // 1000
    if total <= 0 or step <= 0 or total > _MAX_DURATION:
        raise TelephoneEventError(f"duration {duration_ms} ms / interval {interval_ms} ms")
    packets = [
        _packet(
            TelephoneEvent(event=code, end=False, volume=volume, duration=elapsed),
            timestamp,
            elapsed == 0,
            elapsed / clock_rate,
        )
        for elapsed in range(0, total, step)
    ]
    end = TelephoneEvent(event=code, end=True, volume=volume, duration=total)
    packets += [_packet(end, timestamp, False, (total + k * step) / clock_rate) for k in range(3)]
    return packets


def _packet(event: TelephoneEvent, timestamp: int, marker: bool, offset: float) -> EventPacket:
    return EventPacket(
        payload=build_event(event),
        marker=marker,
        timestamp=timestamp % _TS_MODULUS,
        offset=offset,
    )
