"""RTP hot-path throughput: packets per second for parse, build, receive and relay.

Run: /work/venv/bin/python bench/bench_rtp.py [--packets N]

Figures are per core, single-threaded. The reference line is the cost of the bare
`struct.unpack_from` + `pack` a packet needs anyway, measured in the same run, so the
overhead of our validation and bookkeeping can be read off against it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from media.bridge import LegFormat, Relay
from media.rtp import HEADER, RtpPacket, RtpReceiver, RtpSender, build_rtp, parse_rtp

PAYLOAD = b"\xd5" * 160
PEER = ("192.0.2.1", 4000)


def _packets(count: int) -> list[bytes]:
    return [
        build_rtp(
            RtpPacket(
                payload_type=0,
                sequence_number=i & 0xFFFF,
                timestamp=(i * 160) & 0xFFFFFFFF,
                ssrc=0x1234,
                payload=PAYLOAD,
            )
        )
        for i in range(count)
    ]


def _rate(label: str, count: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    print(f"{label:<44} {rate:>12,.0f} packets/s  {1e6 / rate:6.2f} µs/packet")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=200_000)
    count = parser.parse_args().packets
    data = _packets(count)

    def reference() -> None:
        for packet in data:
            first, second, seq, ts, ssrc = HEADER.unpack_from(packet)
            HEADER.pack(first, second, seq, ts, ssrc)

    def parse_build() -> None:
        for packet in data:
            build_rtp(parse_rtp(packet))

    receiver = RtpReceiver()

    def receive() -> None:
        for i, packet in enumerate(data):
            receiver.receive(packet, PEER, now=i * 0.02)

    sender = RtpSender(payload_type=0, random_bits=lambda k: 1)

    def send() -> None:
        for _ in range(count):
            sender.frame(PAYLOAD)

    leg = LegFormat(codec_name="PCMU", payload_type=0, receive_payload_type=0)
    relay = Relay(source=leg, target=leg, sender=RtpSender(payload_type=0, random_bits=lambda k: 2))

    def relay_all() -> None:
        for packet in data:
            relay.relay(packet)

    print(f"{count:,} packets of 172 bytes (PCMU, 20 ms)")
    _rate("reference: Struct.unpack_from + pack", count, reference)
    _rate("parse_rtp + build_rtp (general, objects)", count, parse_build)
    _rate("RtpReceiver.receive (validate, stats, latch)", count, receive)
    _rate("RtpSender.frame (build)", count, send)
    _rate("Relay.relay (bridge pass-through)", count, relay_all)


if __name__ == "__main__":
    main()
