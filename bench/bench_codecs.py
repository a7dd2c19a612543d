"""Cost of the media codecs per 20 ms packet, and the telephone-event parse rate.

Run: python bench/bench_codecs.py [--seconds 0.5]

Every figure is the best of five timed runs, printed next to a reference measured in the
same run (an empty Python call on the same 320-byte block), so figures from machines of
different speed can be compared.
"""

from __future__ import annotations

import argparse
import math
import struct
import time
from collections.abc import Callable

from media.g711 import PCMA, PCMU, G711Codec
from media.g729 import G729Unavailable, open_g729
from media.goertzel import DtmfDetector
from media.telephone_event import TelephoneEventReceiver, parse_event, plan_digit

PACKET_SAMPLES = 160


def speech_like_packets(count: int) -> list[bytes]:
    """20 ms packets of a gliding two-tone signal (not silence, which codecs shortcut)."""
    packets = []
    for k in range(count):
        base = 200 + 5 * (k % 40)
        values = [
            round(
                6000 * math.sin(2 * math.pi * base * (k * PACKET_SAMPLES + i) / 8000)
                + 2000 * math.sin(2 * math.pi * 3.7 * base * i / 8000)
            )
            for i in range(PACKET_SAMPLES)
        ]
        packets.append(struct.pack(f"<{PACKET_SAMPLES}h", *values))
    return packets


def per_call_us(action: Callable[[int], object], items: int, seconds: float) -> float:
    """Best of five runs of ``action(i)`` over ``items`` cycling inputs, in µs per call."""
    calls = 1
    while True:
        start = time.perf_counter()
        for i in range(calls):
            action(i % items)
        elapsed = time.perf_counter() - start
        if elapsed > seconds / 5:
            break
        calls *= 2
    best = elapsed
    for _ in range(4):
        start = time.perf_counter()
        for i in range(calls):
            action(i % items)
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def report(name: str, microseconds: float, reference: float) -> None:
    print(f"{name:<44} {microseconds:9.2f} µs  ({microseconds / reference:7.1f} × reference)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per figure")
    seconds = parser.parse_args().seconds
    pcm = speech_like_packets(50)
    reference = per_call_us(lambda i: len(pcm[i]), len(pcm), seconds)
    report("reference: len() of a 20 ms block", reference, reference)
    for codec in (PCMU, PCMA):
        bench_g711(codec, pcm, seconds, reference)
    bench_g729(pcm, seconds, reference)
    detector = DtmfDetector()
    report(
        "in-band DTMF detector, per 20 ms packet",
        per_call_us(lambda i: detector.feed(pcm[i], now=0.0), len(pcm), seconds),
        reference,
    )
    bench_telephone_event(seconds, reference)


def bench_g711(codec: G711Codec, pcm: list[bytes], seconds: float, reference: float) -> None:
    payloads = [codec.encode(p) for p in pcm]
    encode_us = per_call_us(lambda i: codec.encode(pcm[i]), len(pcm), seconds)
    report(f"{codec.name} encode, per 20 ms packet", encode_us, reference)
    decode_us = per_call_us(lambda i: codec.decode(payloads[i]), len(pcm), seconds)
    report(f"{codec.name} decode, per 20 ms packet", decode_us, reference)


def bench_g729(pcm: list[bytes], seconds: float, reference: float) -> None:
    try:
        library = open_g729()
    except G729Unavailable as exc:
        print(f"G.729 not measured: {exc.reason}")
        return
    with library.codec() as codec:
        payloads = [codec.encode(p) for p in pcm]
        report(
            "G729 encode, per 20 ms packet",
            per_call_us(lambda i: codec.encode(pcm[i]), len(pcm), seconds),
            reference,
        )
        report(
            "G729 decode, per 20 ms packet",
            per_call_us(lambda i: codec.decode(payloads[i]), len(pcm), seconds),
            reference,
        )
        report(
            "G729 conceal, per lost 20 ms packet",
            per_call_us(lambda i: codec.conceal(2), len(pcm), seconds),
            reference,
        )


def bench_telephone_event(seconds: float, reference: float) -> None:
    packets = [p for d in "0123456789*#" for p in plan_digit(d, duration_ms=200, timestamp=0)]
    parse_us = per_call_us(lambda i: parse_event(packets[i].payload), len(packets), seconds)
    report("telephone-event parse, per packet", parse_us, reference)
    print(f"{'telephone-event parse rate':<44} {1e6 / parse_us:9.0f} packets/s")
    receiver = TelephoneEventReceiver()

    def receive(i: int) -> None:
        packet = packets[i]
        receiver.receive_payload(packet.payload, timestamp=i // 8 * 1600, now=i * 0.02)
        receiver.next_event()

    receive_us = per_call_us(receive, len(packets), seconds)
    report("telephone-event receiver, per packet", receive_us, reference)
    print(f"{'telephone-event receive rate':<44} {1e6 / receive_us:9.0f} packets/s")


if __name__ == "__main__":
    main()
