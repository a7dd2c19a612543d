"""Helpers shared by the parser tests: corpus location, message comparison, a pcap reader."""

from __future__ import annotations

from pathlib import Path

from sip.message import Message, Request

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus"


def message_key(message: Message) -> tuple[object, ...]:
    """Everything that makes two messages equal, Content-Length aside (it is recomputed)."""
    if isinstance(message, Request):
        start: tuple[object, ...] = ("request", message.method, message.uri, message.version)
    else:
        start = ("response", message.status, message.reason, message.version)
    fields = tuple(f for f in message.headers.fields if f[0] != "content-length")
    return (*start, fields, message.body)


def udp_payloads(path: Path) -> list[bytes]:
    """UDP payloads of an Ethernet/IPv4 libpcap file (enough for the corpus captures)."""
    data = path.read_bytes()
    order = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    link = int.from_bytes(data[20:24], "little" if order == "<" else "big")
    assert link == 1, "only Ethernet captures are read"
    payloads, pos = [], 24
    while pos + 16 <= len(data):
        captured = int.from_bytes(data[pos + 8 : pos + 12], "little" if order == "<" else "big")
        frame = data[pos + 16 : pos + 16 + captured]
        pos += 16 + captured
        if frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ip_header = (frame[14] & 0x0F) * 4
        udp = frame[14 + ip_header :]
        length = int.from_bytes(udp[4:6], "big")
        payloads.append(udp[8:length])
    return payloads
