"""Read UDP datagrams out of pcap and pcapng captures (for RTP replay and known answers).

Supported link types: Ethernet (with 802.1Q/802.1ad tags), Linux cooked v1 and v2,
raw IP (IPv4 or IPv6) and BSD loopback. IPv4 and IPv6 (extension headers skipped),
UDP only; fragmented datagrams are skipped (no reassembly). A record cut short by the
snapshot length or by the end of the file is skipped, not an error.

File formats: libpcap (microsecond and nanosecond, either byte order) and pcapng
(draft-ietf-opsawg-pcapng: SHB, IDB with if_tsresol/if_tsoffset, EPB, SPB and the
obsolete Packet Block).
"""

from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Final

__all__ = ["PcapError", "UdpDatagram", "read_udp", "read_udp_file"]

logger = logging.getLogger(__name__)

_PCAP_MAGIC: Final = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}
_PCAPNG_SHB: Final = 0x0A0D0D0A
_PCAPNG_BOM: Final = 0x1A2B3C4D
_ETH_IPV4: Final = 0x0800
_ETH_IPV6: Final = 0x86DD
_ETH_VLAN: Final = frozenset({0x8100, 0x88A8, 0x9100})
_IPV6_EXTENSIONS: Final = frozenset({0, 43, 60})
_IPV6_FRAGMENT: Final = 44
_UDP: Final = 17


class PcapError(ValueError):
    """The data is not a pcap or pcapng capture, or its header is damaged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpDatagram:
    """One captured UDP datagram; ``timestamp`` is capture time in epoch seconds."""

    timestamp: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read_udp_file(path: str | PathLike[str]) -> Iterator[UdpDatagram]:
    """The UDP datagrams of a capture file, in file order."""
    return read_udp(Path(path).read_bytes())


def read_udp(data: bytes) -> Iterator[UdpDatagram]:
    """The UDP datagrams of a capture held in memory, in file order."""
    if len(data) < 24:
        raise PcapError("too short for a capture file header")
    if struct.unpack_from("<I", data)[0] == _PCAPNG_SHB:
        frames = _pcapng_frames(data)
    else:
        frames = _pcap_frames(data)
    for timestamp, link_type, frame in frames:
        datagram = _udp_from_frame(link_type, frame, timestamp)
        if datagram is not None:
            yield datagram


# --- libpcap ---------------------------------------------------------------------------


def _pcap_frames(data: bytes) -> Iterator[tuple[float, int, bytes]]:
    for order in ("<", ">"):
        resolution = _PCAP_MAGIC.get(struct.unpack_from(order + "I", data)[0])
        if resolution is not None:
            break
    else:
        raise PcapError("not a pcap or pcapng file (bad magic number)")
    # The top bits of the link-type field carry FCS information in newer files.
    link_type = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    offset = 24
    while offset + record.size <= len(data):
        seconds, fraction, captured, _ = record.unpack_from(data, offset)
        offset += record.size
        if offset + captured > len(data):
            logger.debug("capture ends inside a record")
            return
        yield seconds + fraction * resolution, link_type, data[offset : offset + captured]
        offset += captured


# --- pcapng ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Interface:
    link_type: int
    resolution: float = 1e-6
    offset: int = 0


def _pcapng_frames(data: bytes) -> Iterator[tuple[float, int, bytes]]:
    order = "<"
    interfaces: list[_Interface] = []
    offset = 0
    while offset + 12 <= len(data):
        block_type = struct.unpack_from(order + "I", data, offset)[0]
        if block_type == _PCAPNG_SHB:
            order = _section_order(data, offset)
            interfaces = []
        length = struct.unpack_from(order + "I", data, offset + 4)[0]
        if length < 12 or length % 4 or offset + length > len(data):
            logger.debug("pcapng block of bad length %d at %d", length, offset)
            return
        body = data[offset + 8 : offset + length - 4]
        offset += length
        if block_type == 1:
            interfaces.append(_interface(body, order))
        else:
            frame = _packet_block(block_type, body, order, interfaces)
            if frame is not None:
                yield frame


def _section_order(data: bytes, offset: int) -> str:
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data, offset + 8)[0] == _PCAPNG_BOM:
            return order
    raise PcapError("pcapng section header with a bad byte-order magic")


def _interface(body: bytes, order: str) -> _Interface:
    interface = _Interface(link_type=struct.unpack_from(order + "H", body)[0])
    position = 8
    while position + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, position)
        value = body[position + 4 : position + 4 + size]
        if code == 0:
            break
        if code == 9 and size == 1:  # if_tsresol: 2^-n if the top bit is set, else 10^-n
            exponent = value[0] & 0x7F
            interface.resolution = 2.0**-exponent if value[0] & 0x80 else 10.0**-exponent
        elif code == 14 and size == 8:  # if_tsoffset, in seconds
            interface.offset = struct.unpack_from(order + "q", value)[0]
        position += 4 + (size + 3) // 4 * 4
    return interface


def _packet_block(
    block_type: int, body: bytes, order: str, interfaces: list[_Interface]
) -> tuple[float, int, bytes] | None:
    if block_type == 3 and interfaces:  # Simple Packet Block: interface 0, no timestamp
        captured = len(body) - 4
        return 0.0, interfaces[0].link_type, body[4 : 4 + captured]
    if block_type == 6:  # Enhanced Packet Block
        index, high, low, captured = struct.unpack_from(order + "IIII", body)
        data_offset = 20
    elif block_type == 2:  # obsolete Packet Block
        index, _, high, low, captured = struct.unpack_from(order + "HHIII", body)
        data_offset = 20
    else:
        return None
    if index >= len(interfaces) or data_offset + captured > len(body):
        return None
    interface = interfaces[index]
    timestamp = ((high << 32) | low) * interface.resolution + interface.offset
    return timestamp, interface.link_type, body[data_offset : data_offset + captured]


# --- link, network and transport layers -----------------------------------------------


def _ethernet(frame: bytes) -> tuple[int, bytes] | None:
    offset = 12
    while offset + 2 <= len(frame):
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
        if ethertype not in _ETH_VLAN:
            return ethertype, frame[offset + 2 :]
        offset += 4
    return None


def _linux_sll(frame: bytes) -> tuple[int, bytes] | None:
    if len(frame) < 16:
        return None
    return int.from_bytes(frame[14:16], "big"), frame[16:]


def _linux_sll2(frame: bytes) -> tuple[int, bytes] | None:
    if len(frame) < 20:
        return None
    return int.from_bytes(frame[0:2], "big"), frame[20:]


def _raw_ip(frame: bytes) -> tuple[int, bytes] | None:
    version = frame[0] >> 4 if frame else 0
    ethertype = {4: _ETH_IPV4, 6: _ETH_IPV6}.get(version)
    return None if ethertype is None else (ethertype, frame)


def _bsd_loopback(frame: bytes) -> tuple[int, bytes] | None:
    # The address family is in the capturing host's byte order; both orders fit a byte.
    if len(frame) < 4:
        return None
    family = max(frame[0], frame[3])
    ethertype = _ETH_IPV4 if family == 2 else _ETH_IPV6 if family in (24, 28, 30) else None
    return None if ethertype is None else (ethertype, frame[4:])


_LINK_TYPES: Final[dict[int, Callable[[bytes], tuple[int, bytes] | None]]] = {
    0: _bsd_loopback,
    1: _ethernet,
    12: _raw_ip,
    14: _raw_ip,
    101: _raw_ip,
    113: _linux_sll,
    228: _raw_ip,
    229: _raw_ip,
    276: _linux_sll2,
}


def _udp_from_frame(link_type: int, frame: bytes, timestamp: float) -> UdpDatagram | None:
    decode = _LINK_TYPES.get(link_type)
    network = decode(frame) if decode is not None else None
    if network is None:
        return None
    ethertype, packet = network
    if ethertype == _ETH_IPV4:
        found = _ipv4_udp(packet)
    elif ethertype == _ETH_IPV6:
        found = _ipv6_udp(packet)
    else:
        return None
    if found is None:
        return None
    src, dst, segment = found
    return _udp(segment, src, dst, timestamp)


def _ipv4_udp(packet: bytes) -> tuple[str, str, bytes] | None:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    header_len = (packet[0] & 0x0F) * 4
    total_len = int.from_bytes(packet[2:4], "big")
    fragment = int.from_bytes(packet[6:8], "big")
    if packet[9] != _UDP or fragment & 0x3FFF or header_len < 20:
        return None  # not UDP, or a fragment (MF set or offset non-zero)
    src = str(ipaddress.IPv4Address(packet[12:16]))
    dst = str(ipaddress.IPv4Address(packet[16:20]))
    return src, dst, packet[header_len : total_len or len(packet)]


def _ipv6_udp(packet: bytes) -> tuple[str, str, bytes] | None:
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    next_header = packet[6]
    end = 40 + int.from_bytes(packet[4:6], "big")
    offset = 40
    while next_header in _IPV6_EXTENSIONS or next_header == _IPV6_FRAGMENT:
        if offset + 8 > len(packet):
            return None
        if next_header == _IPV6_FRAGMENT:
            if int.from_bytes(packet[offset + 2 : offset + 4], "big") & 0xFFF9:
                return None  # a fragment: offset non-zero or more fragments follow
            length = 8
        else:
            length = (packet[offset + 1] + 1) * 8
        next_header = packet[offset]
        offset += length
    if next_header != _UDP:
        return None
    src = str(ipaddress.IPv6Address(packet[8:24]))
    dst = str(ipaddress.IPv6Address(packet[24:40]))
    return src, dst, packet[offset:end]


def _udp(segment: bytes, src: str, dst: str, timestamp: float) -> UdpDatagram | None:
    if len(segment) < 8:
        return None
    src_port, dst_port, length = struct.unpack_from("!HHH", segment)
    if length < 8 or length > len(segment):
        return None  # cut short by the snapshot length
    return UdpDatagram(
        timestamp=timestamp,
        src=(src, src_port),
        dst=(dst, dst_port),
        payload=segment[8:length],
    )
