"""Our RTCP reports (RFC 3550 §6.4): an SR when we sent media since the last report, an
RR otherwise, each compound packet closed by an SDES CNAME (§6.1, §6.5.1).

Each leg reports about every 5 s (§6.2: the recommended minimum for a two-party session),
at an interval randomised over [0.5, 1.5] times the nominal one (§6.3.1) so that the
reports of calls set up together do not stay in step.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable

from media.rtcp import SenderReport, build_receiver_report, build_sdes, build_sender_report
from routing.media_plane import Addr
from server.media_leg import Leg

__all__ = [
    "NTP_UNIX_OFFSET",
    "RtcpReporter",
    "compound_report",
    "ntp_timestamp",
    "rtcp_destination",
]

log = logging.getLogger(__name__)

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


def ntp_timestamp(wall: float) -> int:
    """The 64-bit NTP timestamp of a Unix time (RFC 3550 §4: 32.32 fixed point)."""
    return int((wall + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def compound_report(leg: Leg, *, wall: float, cname: str) -> bytes:
    """SR or RR with the reception report of the peer's stream, then SDES CNAME."""
    sender, block = leg.sender, leg.receiver.report_block()
    blocks = () if block is None else (block,)
    if sender.packet_count > leg.reported_packets:
        first = build_sender_report(
            SenderReport(
                ssrc=sender.ssrc,
                ntp_timestamp=ntp_timestamp(wall),
                rtp_timestamp=sender.timestamp,
                packet_count=sender.packet_count,
                octet_count=sender.octet_count,
                reports=blocks,
            )
        )
    else:
        first = build_receiver_report(ssrc=sender.ssrc, reports=blocks)
    leg.reported_packets = sender.packet_count
    return first + build_sdes(ssrc=sender.ssrc, cname=cname)


def rtcp_destination(leg: Leg) -> Addr | None:
    """Where the peer's RTCP comes from (symmetric, RFC 4961), else its RTP port + 1."""
    if not leg.can_send:
        return None
    if leg.rtcp_remote is not None:
        return leg.rtcp_remote
    remote = leg.receiver.remote_addr
    return None if remote is None else (remote[0], remote[1] + 1)


class RtcpReporter:
    """Sends each leg's report when due; called from the media tick about once a second."""

    def __init__(self, *, interval: float, random_bits: Callable[[int], int]) -> None:
        self.interval = interval
        self._random_bits = random_bits
        self._cname = f"{secrets.token_hex(8)}@centralino"  # RFC 7022: random, per run

    def run(self, legs: Iterable[Leg], *, now: float) -> None:
        wall = time.time()  # SR timestamps are wall-clock (NTP) time, RFC 3550 §6.4.1
        for leg in legs:
            if now < leg.next_report:
                continue
            spread = 0.5 + self._random_bits(16) / 65536
            leg.next_report = now + self.interval * spread
            destination = rtcp_destination(leg)
            if destination is not None:
                self._send(leg, compound_report(leg, wall=wall, cname=self._cname), destination)

    def _send(self, leg: Leg, report: bytes, destination: Addr) -> None:
        try:
            leg.pair.rtcp.sendto(report, destination)
        except OSError as exc:
            leg.send_errors += 1
            log.debug("leg %s: RTCP report not sent: %s", leg.name, exc)
