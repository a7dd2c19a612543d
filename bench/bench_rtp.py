"""RTP hot-path throughput: packets per second for parse, build, receive and relay.

Run: .venv/bin/python bench/bench_rtp.py [--packets N]

Figures are per core, single-threaded. The reference line is the cost of the bare
`struct.unpack_from` + `pack` a packet needs anyway, measured in the same run, so the
overhead of our validation and bookkeeping can be read off against it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from media import g711
from media.bridge import LegFormat, PcmCodec, Relay
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

    def transcoder(
        source: LegFormat, target: LegFormat, payload: bytes, n: int
    ) -> Callable[[], None]:
        relay = Relay(
            source=source, target=target, sender=RtpSender(payload_type=0, random_bits=lambda k: 3)
        )
        stream = [
            build_rtp(
                RtpPacket(
                    payload_type=source.receive_payload_type,
                    sequence_number=i & 0xFFFF,
                    timestamp=i * 160,
                    ssrc=9,
                    payload=payload,
                )
            )
            for i in range(n)
        ]

        def run() -> None:
            for packet in stream:
                relay.relay(packet)

        return run

    def leg(name: str, pt: int, codec: PcmCodec) -> LegFormat:
        return LegFormat(codec_name=name, payload_type=pt, receive_payload_type=pt, codec=codec)

    pcma, pcmu = leg("PCMA", 8, g711.PCMA), leg("PCMU", 0, g711.PCMU)
    print(f"{count:,} packets of 172 bytes (PCMU, 20 ms)")
    _rate("reference: Struct.unpack_from + pack", count, reference)
    _rate("parse_rtp + build_rtp (general, objects)", count, parse_build)
    _rate("RtpReceiver.receive (validate, stats, latch)", count, receive)
    _rate("RtpSender.frame (build)", count, send)
    _rate("Relay.relay (bridge pass-through)", count, relay_all)
    n = count // 10
    _rate("Relay.relay (transcode PCMA -> PCMU)", n, transcoder(pcma, pcmu, PAYLOAD, n))
    _g729(count // 100, leg, transcoder)


def _g729(
    count: int, leg: Callable[..., LegFormat], transcoder: Callable[..., Callable[[], None]]
) -> None:
    from media import g729  # noqa: PLC0415 - optional: the library may be missing

    library = g729.load_g729()
    if library is None:
        print("G.729: libbcg729 not available, transcoding not measured")
        return
    codec = library.codec()
    payload = codec.encode(bytes(320))
    g729_leg, pcmu = leg("G729", 18, library.codec()), leg("PCMU", 0, g711.PCMU)
    _rate("Relay.relay (transcode G729 -> PCMU)", count, transcoder(g729_leg, pcmu, payload, count))
    _rate("Relay.relay (transcode PCMU -> G729)", count, transcoder(pcmu, g729_leg, PAYLOAD, count))


if __name__ == "__main__":
    main()
