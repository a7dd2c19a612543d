"""The pcap/pcapng UDP reader, on captures built here byte by byte and on real files."""

from __future__ import annotations

import itertools
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from media.pcap import PcapError, UdpDatagram, read_udp, read_udp_file

ASTERISK_PCAP = (
    Path(__file__).resolve().parents[4]
    / "shared/corpus/pcap/asterisk_ulaw-2013785496_rtp_rfc2833.pcap"
)
SIPP_PCAP = Path("/usr/share/sip-tester/dtmf_2833_5.pcap")


def udp(payload: bytes, src_port: int = 4000, dst_port: int = 5004) -> bytes:
    return struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload


def ipv4(segment: bytes, *, protocol: int = 17, fragment: int = 0, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        4 * ihl + len(segment),
        1,
        fragment,
        64,
        protocol,
        0,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    return header + options + segment + b"\x00\x00"  # trailing link padding is ignored


def ipv6(segment: bytes, *, extensions: bytes = b"", first_header: int = 17) -> bytes:
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    length = len(extensions) + len(segment)
    return (
        struct.pack("!IHBB", 0x60000000, length, first_header, 64)
        + src
        + dst
        + extensions
        + segment
    )


def ethernet(packet: bytes, *, vlan: bool = False) -> bytes:
    ethertype = 0x86DD if packet[0] >> 4 == 6 else 0x0800
    tag = struct.pack("!HH", 0x8100, 42) if vlan else b""
    return b"\x02" * 6 + b"\x04" * 6 + tag + struct.pack("!H", ethertype) + packet


def linux_sll(packet: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + packet


def linux_sll2(packet: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x86DD, 0, 1, 1, 0, 6, b"\x02" * 8) + packet


def pcap(
    link_type: int,
    frames: list[tuple[float, bytes]],
    *,
    order: str = "<",
    nanoseconds: bool = False,
) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, link_type)
    scale = 1_000_000_000 if nanoseconds else 1_000_000
    for timestamp, frame in frames:
        seconds = int(timestamp)
        fraction = round((timestamp - seconds) * scale)
        out += struct.pack(order + "IIII", seconds, fraction, len(frame), len(frame)) + frame
    return out


def block(block_type: int, body: bytes, order: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def pcapng_shb(order: str = "<") -> bytes:
    return block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)


def pcapng_idb(link_type: int, options: bytes = b"", order: str = "<") -> bytes:
    return block(1, struct.pack(order + "HHI", link_type, 0, 65535) + options, order)


def pcapng_epb(interface: int, ticks: int, frame: bytes, order: str = "<") -> bytes:
    head = struct.pack(
        order + "IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame)
    )
    return block(6, head + frame, order)


def test_ethernet_ipv4_pcap() -> None:
    frames = [(1.5, ethernet(ipv4(udp(b"hello")))), (2.25, ethernet(ipv4(udp(b"x"))))]
    assert list(read_udp(pcap(1, frames))) == [
        UdpDatagram(
            timestamp=1.5, src=("10.0.0.1", 4000), dst=("10.0.0.2", 5004), payload=b"hello"
        ),
        UdpDatagram(timestamp=2.25, src=("10.0.0.1", 4000), dst=("10.0.0.2", 5004), payload=b"x"),
    ]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanoseconds", [False, True])
def test_byte_order_and_resolution(order: str, nanoseconds: bool) -> None:
    data = pcap(101, [(7.000123, ipv4(udp(b"rtp")))], order=order, nanoseconds=nanoseconds)
    [datagram] = read_udp(data)
    assert datagram.timestamp == pytest.approx(7.000123, abs=1e-9)
    assert datagram.payload == b"rtp"


@pytest.mark.parametrize(
    ("link_type", "frame"),
    [
        (1, ethernet(ipv4(udp(b"p")), vlan=True)),
        (113, linux_sll(ipv4(udp(b"p")))),
        (276, linux_sll2(ipv6(udp(b"p")))),
        (101, ipv6(udp(b"p"))),
        (228, ipv4(udp(b"p"))),
        (229, ipv6(udp(b"p"))),
        (0, struct.pack("<I", 2) + ipv4(udp(b"p"))),
        (0, struct.pack(">I", 30) + ipv6(udp(b"p"))),
        (1, ethernet(ipv4(udp(b"p"), options=b"\x01\x01\x01\x00"))),
    ],
)
def test_link_types(link_type: int, frame: bytes) -> None:
    [datagram] = read_udp(pcap(link_type, [(0.0, frame)]))
    assert datagram.payload == b"p"
    assert datagram.src[1] == 4000 and datagram.dst[1] == 5004


def test_ipv6_addresses_and_extension_headers() -> None:
    hop_by_hop = bytes([60, 0]) + b"\x00" * 6  # next: destination options
    destination = bytes([44, 0]) + b"\x00" * 6  # next: fragment
    fragment = bytes([17, 0, 0, 0]) + b"\x00" * 4  # offset 0, no more fragments
    packet = ipv6(udp(b"v6"), extensions=hop_by_hop + destination + fragment, first_header=0)
    [datagram] = read_udp(pcap(101, [(0.0, packet)]))
    assert datagram.src == ("2001:db8::1", 4000)
    assert datagram.dst == ("2001:db8::2", 5004)
    assert datagram.payload == b"v6"


def test_non_udp_fragments_and_truncated_frames_are_skipped() -> None:
    frames = [
        (0.0, ipv4(udp(b"a"), protocol=6)),  # TCP
        (0.0, ipv4(udp(b"b"), fragment=0x2000)),  # more fragments follow
        (0.0, ipv4(udp(b"c"), fragment=0x0010)),  # a later fragment
        (0.0, ipv4(udp(b"d" * 100))[:40]),  # cut by the snapshot length
        (0.0, ipv6(udp(b"e"), extensions=bytes([17, 0, 0, 1]) + b"\x00" * 4, first_header=44)),
        (0.0, b"\x00"),
        (0.0, ipv4(udp(b"ok"))),
    ]
    assert [d.payload for d in read_udp(pcap(101, frames))] == [b"ok"]


def test_unknown_link_type_yields_nothing() -> None:
    assert list(read_udp(pcap(147, [(0.0, ipv4(udp(b"a")))]))) == []


def test_capture_cut_inside_a_record_stops_cleanly() -> None:
    data = pcap(101, [(0.0, ipv4(udp(b"first"))), (1.0, ipv4(udp(b"second")))])
    assert [d.payload for d in read_udp(data[:-10])] == [b"first"]


@pytest.mark.parametrize("data", [b"", b"\x00" * 10, b"GIF89a" + b"\x00" * 40])
def test_not_a_capture(data: bytes) -> None:
    with pytest.raises(PcapError):
        list(read_udp(data))


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_resolution_and_offset(order: str) -> None:
    tsresol_ns = struct.pack(order + "HH", 9, 1) + b"\x09\x00\x00\x00"
    tsresol_2 = struct.pack(order + "HH", 9, 1) + b"\x8a\x00\x00\x00"  # 2^-10 s
    tsoffset = struct.pack(order + "HHq", 14, 8, 100)
    end = struct.pack(order + "HH", 0, 0)
    data = (
        pcapng_shb(order)
        + pcapng_idb(1, tsresol_ns + end, order)
        + pcapng_idb(101, tsresol_2 + tsoffset + end, order)
        + pcapng_epb(0, 1_500_000_000, ethernet(ipv4(udp(b"eth"))), order)
        + block(5, b"statistics", order)
        + pcapng_epb(1, 3 * 1024 + 512, ipv4(udp(b"raw")), order)
        + block(3, struct.pack(order + "I", 40) + ethernet(ipv4(udp(b"spb"))), order)
        + pcapng_epb(7, 0, ipv4(udp(b"no such interface")), order)
    )
    datagrams = list(read_udp(data))
    assert [d.payload for d in datagrams] == [b"eth", b"raw", b"spb"]
    assert datagrams[0].timestamp == pytest.approx(1.5)
    assert datagrams[1].timestamp == pytest.approx(103.5)


def test_pcapng_new_section_resets_interfaces() -> None:
    data = (
        pcapng_shb()
        + pcapng_idb(1)
        + pcapng_epb(0, 0, ethernet(ipv4(udp(b"one"))))
        + pcapng_shb(">")
        + pcapng_idb(101, order=">")
        + pcapng_epb(0, 2_000_000, ipv4(udp(b"two")), ">")
    )
    datagrams = list(read_udp(data))
    assert [d.payload for d in datagrams] == [b"one", b"two"]
    assert datagrams[1].timestamp == pytest.approx(2.0)


def test_pcapng_bad_byte_order_magic() -> None:
    data = block(0x0A0D0D0A, struct.pack("<IHHq", 0x12345678, 1, 0, -1))
    with pytest.raises(PcapError):
        list(read_udp(data + b"\x00" * 12))


def test_real_linux_cooked_capture() -> None:
    datagrams = list(read_udp_file(ASTERISK_PCAP))
    assert len(datagrams) == 974
    assert datagrams[0].src == ("10.0.0.51", 4000)
    assert datagrams[0].dst == ("10.0.0.45", 10866)
    assert len(datagrams[0].payload) == 172  # 12-byte RTP header + 160 µ-law bytes
    assert datagrams[0].payload[0] >> 6 == 2
    assert all(b.timestamp >= a.timestamp for a, b in itertools.pairwise(datagrams))


@pytest.mark.skipif(
    shutil.which("editcap") is None or not SIPP_PCAP.exists(),
    reason="editcap (tshark) or SIPp's pcaps are not installed",
)
def test_pcapng_conversion_of_a_real_capture_reads_the_same(tmp_path: Path) -> None:
    converted = tmp_path / "dtmf.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(SIPP_PCAP), str(converted)], check=True)
    original = list(read_udp_file(SIPP_PCAP))
    again = list(read_udp_file(converted))
    assert len(original) == 10
    assert [(d.src, d.dst, d.payload) for d in again] == [
        (d.src, d.dst, d.payload) for d in original
    ]
    assert [d.timestamp for d in again] == pytest.approx([d.timestamp for d in original])
