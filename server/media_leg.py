"""One RTP leg of the runtime: its sockets, numbering, peer, and the per-packet receive path.

The receive path runs for every datagram (about 50 per second per leg, 100,000 per second
at 1,000 bridged calls), so it does what DESIGN.md allows: a few attribute lookups, the
RtpReceiver's validation and at most one `sendto`; no per-packet objects beyond what the
socket hands us, no logging. Everything rarer (telephone-events, in-band DTMF, recording)
branches off on the payload type.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Protocol

from media.bridge import LegFormat, PcmCodec, Relay
from media.g729 import G729Codec
from media.goertzel import DtmfDetector
from media.player import FRAME_DURATION, Player
from media.recorder import Recorder
from media.rtcp import MediaTimeout, RtcpError, parse_rtcp
from media.rtp import RtpReceiver, RtpSender
from media.telephone_event import DigitReceived, TelephoneEventReceiver
from routing.media_plane import Addr, DigitDetected, LegMedia, MediaEvent
from server.media_ports import PortPair

__all__ = ["Leg", "LegOwner"]

log = logging.getLogger(__name__)

_BATCH = 64  # datagrams read per readiness callback before letting other sockets run
_MAX_DATAGRAM = 2048
_SAMPLES_PER_FRAME = 160
_NO_PT = -1
_HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})  # RFC 3264 §8.4, the old hold form
# In-sequence packets a source the SDP did not name must send before we latch onto it
# (RFC 3550 A.1 MIN_SEQUENTIAL): one stray or injected packet cannot steal the stream.
_PROBATION = 2


class LegOwner(Protocol):
    """What a leg tells the runtime."""

    def emit(self, event: MediaEvent) -> None: ...

    def dtmf_pending(self, leg: Leg) -> None: ...

    def recording_done(self, leg: Leg) -> None: ...


def sdp_remote(media: LegMedia) -> Addr | None:
    """Where the SDP says to send, None while the peer holds with `c=0.0.0.0`."""
    if media.remote is None or media.remote[0] in _HOLD_ADDRESSES or not media.remote[1]:
        return None
    return media.remote


class Leg:
    """State of one leg; the runtime owns the tick, the legs own their packets."""

    __slots__ = (
        "audio_pt", "can_send", "candidate", "candidate_hits", "candidate_seq", "clock",
        "codec", "detector", "event_pt", "events",
        "last_sent_at", "listening", "media", "media_timeout", "name", "next_report",
        "own_g729", "owner", "pair", "partner", "play_id", "player", "receiver", "recorder",
        "recording_name", "relay", "reported_packets", "rtcp_packets", "rtcp_remote",
        "send_errors", "sender", "sock", "timeout", "v6",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        pair: PortPair,
        *,
        owner: LegOwner,
        clock: Callable[[], float],
        random_bits: Callable[[int], int],
        media_timeout: float,
    ) -> None:
        self.name = name
        self.pair = pair
        self.sock = pair.rtp
        self.v6 = pair.rtp.family == socket.AF_INET6
        self.owner = owner
        self.clock = clock
        self.media_timeout = media_timeout
        self.sender = RtpSender(payload_type=0, random_bits=random_bits)
        self.receiver = RtpReceiver()
        self.media: LegMedia | None = None
        self.codec: PcmCodec | None = None
        self.own_g729: G729Codec | None = None
        self.audio_pt = self.event_pt = _NO_PT
        self.can_send = False
        self.player: Player | None = None
        self.play_id = 0
        self.last_sent_at: float | None = None
        self.relay: Relay | None = None
        self.partner: Leg | None = None
        self.events: TelephoneEventReceiver | None = None
        self.detector: DtmfDetector | None = None
        self.recorder: Recorder | None = None
        self.recording_name = ""
        self.listening = False
        self.timeout: MediaTimeout | None = None
        self.rtcp_packets = self.send_errors = self.reported_packets = 0
        self.rtcp_remote: Addr | None = None
        self.next_report = 0.0
        self.candidate: Addr | None = None
        self.candidate_hits = self.candidate_seq = 0

    # --- configuration -----------------------------------------------------------------

    def configure(self, media: LegMedia, codec: PcmCodec | None, *, now: float) -> None:
        """Apply the negotiated media (RFC 3264); a changed peer address is learnt again."""
        previous, self.media = self.media, media
        remote = sdp_remote(media)
        if previous is not None and remote is not None and remote != sdp_remote(previous):
            self.receiver.reset_latch(remote)
        elif not self.receiver.latched and remote is not None:
            self.receiver.remote_addr = remote
        self.can_send = media.sending and remote is not None
        self.codec = codec
        self.sender.payload_type = media.payload_type
        self.audio_pt = media.payload_type
        self.event_pt = _NO_PT if media.telephone_event_pt is None else media.telephone_event_pt
        if media.telephone_event_pt is not None and self.events is None:
            self.events = TelephoneEventReceiver()
        inband = media.inband_dtmf and media.telephone_event_pt is None
        self.detector = (self.detector or DtmfDetector()) if inband else None
        self._update_listening()
        self._watch(previous, media, now)

    def _watch(self, previous: LegMedia | None, media: LegMedia, now: float) -> None:
        """The media timeout counts from configuration, paused while the peer holds."""
        if self.timeout is None:
            self.timeout = MediaTimeout(now=now, timeout=self.media_timeout)
        if not media.sending:
            self.timeout.suspend()
        elif previous is not None and not previous.sending:
            self.timeout.resume(now=now)

    def format(self) -> LegFormat:
        """The bridge's view of the leg: one payload type each way, as LegMedia carries."""
        media = self.media
        assert media is not None, "a bridged leg has negotiated media"
        return LegFormat(
            codec_name=media.codec.upper(),
            payload_type=media.payload_type,
            receive_payload_type=media.payload_type,
            telephone_event_pt=media.telephone_event_pt,
            receive_telephone_event_pt=media.telephone_event_pt,
            codec=self.codec,
        )

    def _update_listening(self) -> None:
        self.listening = self.detector is not None or self.recorder is not None

    # --- receive path ------------------------------------------------------------------

    def on_rtp_readable(self) -> None:
        # One datagram per readiness callback: a leg gets a packet every 20 ms, so a loop
        # until EAGAIN would pay a failing syscall and an exception for almost every
        # packet; the level-triggered poller calls again at once if more are queued.
        try:
            data, addr = self.sock.recvfrom(_MAX_DATAGRAM)
        except OSError as exc:  # EAGAIN after a spurious wake-up, or closed under us
            log.debug("leg %s: RTP receive failed: %s", self.name, exc)
            return
        self.on_rtp(data, addr[:2] if self.v6 else addr)

    def on_rtp(self, data: bytes, addr: Addr) -> None:
        """One datagram on the RTP port: validate, latch, then relay or listen."""
        now = self.clock()
        receiver = self.receiver
        if not receiver.latched and addr != receiver.remote_addr and not self._proven(data, addr):
            return
        if not receiver.receive(data, addr, now=now):
            return
        timeout = self.timeout
        if timeout is not None:
            timeout.packet_received(now=now)
        else:
            self.timeout = MediaTimeout(now=now, timeout=self.media_timeout)
        payload_type = receiver.payload_type
        if payload_type == self.event_pt:
            self._on_event_packet(data, now)
        relay = self.relay
        if relay is not None:
            out = relay.relay(data)
            partner = self.partner
            if out is not None and partner is not None and partner.can_send:
                try:
                    partner.sock.sendto(out, partner.receiver.remote_addr)  # type: ignore[arg-type]
                except OSError:
                    partner.send_errors += 1
                else:  # relayed under the partner's SSRC: its RTCP SR counts them
                    sender = partner.sender
                    sender.packet_count += 1
                    sender.octet_count += len(out) - 12
        if payload_type == self.audio_pt and self.listening:
            self._on_audio(data, now)

    def _proven(self, data: bytes, addr: Addr) -> bool:
        """Symmetric RTP probation: a source other than the SDP's latches after a short run
        of consecutive sequence numbers (RFC 3550 A.1), as softphones behind NAT send."""
        if len(data) < 12:
            return False
        seq = int.from_bytes(data[2:4], "big")
        if addr == self.candidate and seq == (self.candidate_seq + 1) & 0xFFFF:
            self.candidate_hits += 1
        else:
            self.candidate, self.candidate_hits = addr, 1
        self.candidate_seq = seq
        return self.candidate_hits >= _PROBATION

    def _on_event_packet(self, data: bytes, now: float) -> None:
        """RFC 4733 §2.5.2: the receiver reports each key press once."""
        events = self.events
        if events is None:
            return
        receiver = self.receiver
        payload = data[receiver.payload_start : receiver.payload_end]
        events.receive_payload(payload, timestamp=receiver.timestamp, now=now)
        self.drain_digits()
        if events.get_timer() is not None:
            self.owner.dtmf_pending(self)

    def _on_audio(self, data: bytes, now: float) -> None:
        codec = self.codec
        if codec is None:
            return
        receiver = self.receiver
        try:
            pcm = codec.decode(data[receiver.payload_start : receiver.payload_end])
        except ValueError:  # a payload the codec cannot take (G729Error, G711Error)
            return
        if self.detector is not None:
            for digit in self.detector.feed(pcm, now=now):
                self._emit_digit(digit)
        recorder = self.recorder
        if recorder is not None:
            recorder.receive_pcm(pcm, now=now)
            if recorder.finished:
                self.owner.recording_done(self)

    def drain_digits(self) -> None:
        if self.events is not None:
            while (digit := self.events.next_event()) is not None:
                self._emit_digit(digit)

    def _emit_digit(self, digit: DigitReceived) -> None:
        self.owner.emit(
            DigitDetected(
                at=digit.at, leg=self.name, digit=digit.digit, duration_ms=digit.duration_ms
            )
        )

    def on_rtcp_readable(self) -> None:
        """RTCP (RFC 3550 §6) is validated and counted; a malformed packet is dropped."""
        for _ in range(_BATCH):
            try:
                data, addr = self.pair.rtcp.recvfrom(_MAX_DATAGRAM)
            except OSError:
                return
            try:
                parse_rtcp(data)
            except RtcpError:
                continue
            self.rtcp_packets += 1
            if self.rtcp_remote is None:
                self.rtcp_remote = (addr[0], addr[1])  # symmetric RTCP, latched once

    # --- send path ---------------------------------------------------------------------

    def start_playback(self, player: Player, play_id: int) -> None:
        """A new prompt: after a pause the RTP clock jumps and the marker bit is set."""
        last = self.last_sent_at
        gap = 0.0 if last is None else player.start - last - FRAME_DURATION
        if gap > FRAME_DURATION / 2:
            self.sender.skip(round(gap * 8000))
        self.player, self.play_id = player, play_id

    def send_due(self, player: Player, now: float) -> None:
        """Send the frames of `player` due by `now`, in order (paced by its start time)."""
        frames = player.due(now=now)
        if not frames:
            return
        sender = self.sender
        if not self.can_send:
            # On hold: time goes on, and resuming starts a new talkspurt (RFC 3551 §4.1).
            sender.skip(_SAMPLES_PER_FRAME * len(frames))
        else:
            sendto, frame, dest = self.sock.sendto, sender.frame, self.receiver.remote_addr
            for payload in frames:
                try:
                    sendto(frame(payload), dest)  # type: ignore[arg-type]
                except OSError:
                    self.send_errors += 1
        self.last_sent_at = now

    # --- recording, timers, closing -----------------------------------------------------

    def start_recording(self, recorder: Recorder, name: str) -> None:
        self.recorder, self.recording_name = recorder, name
        self._update_listening()

    def take_recording(self) -> Recorder | None:
        recorder, self.recorder = self.recorder, None
        self._update_listening()
        return recorder

    def run_dtmf_timer(self, now: float) -> bool:
        """Close an event whose end packets were lost; True while one is still open."""
        events = self.events
        if events is None:
            return False
        events.handle_timer(now=now)
        self.drain_digits()
        return events.get_timer() is not None

    def close_codecs(self) -> None:
        if self.own_g729 is not None:
            self.own_g729.close()
            self.own_g729 = None
        self.codec = None
