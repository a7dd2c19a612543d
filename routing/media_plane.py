"""What call control asks of the media plane, and what it hears back.

Call control (the B2BUA) is pure; the RTP sockets, the 20 ms pacing and the codecs run
in `server/media.py`, which implements `MediaPlane`. A leg is one RTP stream with one
peer (the caller's trunk leg, or an operator's leg), named by a string unique per call
(`<call-id>/caller`, `<call-id>/op1`). Facts flow back as the dataclasses below, which
the runtime hands to the B2BUA's `media_event(event, now=...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class LegMedia:
    """The negotiated media of a leg (RFC 3264): what to send, to whom, how DTMF goes."""

    codec: str
    """"PCMU", "PCMA" or "G729"."""
    payload_type: int
    telephone_event_pt: int | None
    """RFC 4733 payload type the peer offered or accepted, None if it did not."""
    remote: Addr | None
    """Where the SDP says to send; symmetric RTP re-latches on the first packet.
    None (or 0.0.0.0) while the peer holds the call."""
    sending: bool = True
    """False when the peer put us on hold (sendonly/inactive from its side)."""
    inband_dtmf: bool = False
    """Detect DTMF tones in the audio (trunks without telephone-event)."""


class MediaPlane(Protocol):
    """The commands call control gives the media runtime. None of them blocks."""

    def open_leg(self, leg: str) -> Addr:
        """Reserve an RTP/RTCP port pair (even, odd) and return our address for SDP."""
        ...

    def configure_leg(self, leg: str, media: LegMedia) -> None:
        """Set or change (re-INVITE) the codec and peer of an open leg."""
        ...

    def play(
        self, leg: str, prompts: Sequence[str], *, language: str, play_id: int, loop: bool = False
    ) -> None:
        """Play prompt ids in order (`config/prompts/<language>/<id>.wav`), replacing what
        plays; `PlaybackFinished(play_id)` follows unless stopped or looping."""
        ...

    def stop_playback(self, leg: str) -> None:
        """Stop what plays on the leg (barge-in, answer); no PlaybackFinished follows."""
        ...

    def bridge(self, leg_a: str, leg_b: str) -> None:
        """Relay media both ways between two legs, transcoding if their codecs differ and
        passing RFC 4733 events across; stops playback on both."""
        ...

    def unbridge(self, leg: str) -> None:
        """Stop relaying for the leg and its partner."""
        ...

    def record(self, leg: str, *, name: str, max_seconds: float) -> None:
        """Record what the leg's peer says into `<data>/voicemail/<name>.wav` (written
        atomically); `RecordingFinished` follows on silence, max length or close."""
        ...

    def close_leg(self, leg: str) -> None:
        """Stop everything on the leg and release its ports."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitDetected:
    """A DTMF digit from the leg's peer (RFC 4733 event, in-band tone)."""

    at: float
    leg: str
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished:
    """The prompts of `play_id` played to the end."""

    at: float
    leg: str
    play_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaTimedOut:
    """No RTP from the peer for the configured time on an answered leg."""

    at: float
    leg: str
    silent_for: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFinished:
    """A recording ended and its file is complete."""

    at: float
    leg: str
    path: str
    seconds: float
    reason: str
    """"silence", "max_length" or "closed"."""


MediaEvent = DigitDetected | PlaybackFinished | MediaTimedOut | RecordingFinished
