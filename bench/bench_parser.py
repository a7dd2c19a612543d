"""Parser throughput on one core: messages/s for a typical INVITE (with SDP) and a 200 OK.

Run: .venv/bin/python bench/bench_parser.py [--seconds 1.0]

Each case runs for about `--seconds` per round, and the best of `--rounds` rounds is
printed (other processes on a shared machine only ever slow a round down). The
figures are CPU-bound Python, single-threaded: one core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from sip.message import Request, Response
from sip.parser import parse_message, validate_request, validate_response

SDP = (
    b"v=0\r\n"
    b"o=- 20518 0 IN IP4 192.0.2.5\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 18 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=fmtp:18 annexb=no\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:0461123456@pbx.example.it;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Mario Rossi" <sip:3331234567@trunk.example.it>;tag=1928301774\r\n'
    b"To: <sip:0461123456@pbx.example.it;user=phone>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.it\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:3331234567@192.0.2.5:5060>\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Centralino-bench/1.0\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8;received=192.0.2.1;rport=5060\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b'From: "Mario Rossi" <sip:3331234567@trunk.example.it>;tag=1928301774\r\n'
    b"To: <sip:0461123456@pbx.example.it;user=phone>;tag=a6c85cf\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.it\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:1001@192.0.2.1:5060>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def key_fields(data: bytes) -> Callable[[], object]:
    """What the transaction layer does with every datagram: top Via, CSeq, Call-ID."""

    def run() -> object:
        message = parse_message(data)
        return message.top_via.branch, message.cseq, message.call_id

    return run


def full_validation(data: bytes) -> Callable[[], object]:
    """parse_message plus validate_request / validate_response (every field parsed)."""

    def run() -> object:
        message = parse_message(data)
        if isinstance(message, Request):
            validate_request(message)
        else:
            validate_response(message)
        return message

    return run


def serialize(data: bytes) -> Callable[[], object]:
    """to_bytes of an already parsed message (what every send costs)."""
    message: Request | Response = parse_message(data)
    return message.to_bytes


def floor(data: bytes) -> Callable[[], object]:
    """Reference measured in the same run: the least any Python parser does (decode,
    split into lines, split each line at the colon), with no checks at all."""

    def run() -> object:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        return lines[0], [line.partition(":") for line in lines[1:]], body

    return run


def rate(run: Callable[[], object], seconds: float, rounds: int) -> float:
    """Best messages/s over `rounds` rounds of about `seconds` each (CPU time)."""
    best = 0.0
    batch = 1000
    for _ in range(rounds):
        count, start = 0, time.process_time()
        while (elapsed := time.process_time() - start) < seconds:
            for _ in range(batch):
                run()
            count += batch
        best = max(best, count / elapsed)
    return best


def main() -> None:
    """Print one line per case."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seconds", type=float, default=1.0)
    options.add_argument("--rounds", type=int, default=3)
    args = options.parse_args()
    cases = [
        ("reference: INVITE decode+split+partition", floor(INVITE)),
        ("INVITE parse_message+top_via+cseq+call_id", key_fields(INVITE)),
        ("INVITE parse_message+validate_request", full_validation(INVITE)),
        ("INVITE to_bytes", serialize(INVITE)),
        ("200 OK parse_message+top_via+cseq+call_id", key_fields(OK_200)),
        ("200 OK parse_message+validate_response", full_validation(OK_200)),
        ("200 OK to_bytes", serialize(OK_200)),
    ]
    print(f"INVITE {len(INVITE)} bytes, 200 OK {len(OK_200)} bytes; best of {args.rounds}")
    for name, run in cases:
        per_second = rate(run, args.seconds, args.rounds)
        print(f"{name:45} {per_second:>10,.0f} msg/s  {1e6 / per_second:6.1f} us/msg")


if __name__ == "__main__":
    main()
