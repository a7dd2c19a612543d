"""SDP (RFC 8866): the session description model, its parser and serializer.

Offer/answer (RFC 3264: `negotiate`, `build_offer`) lives in `media.session`, which
builds on this model.

The parser is lenient where RFC 8866 §5 allows it (LF-only line ends, unknown attributes
and line types kept in order) and strict where a wrong reading would be dangerous
(ports, the origin line, media lines): those raise SdpError.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = [
    "Attribute",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "SdpError",
    "SessionDescription",
    "Timing",
    "parse_sdp",
    "serialize_sdp",
]


class SdpError(ValueError):
    """Malformed SDP; the message says which line and why (RFC 8866 §5)."""


class Direction(StrEnum):
    """Media direction attributes (RFC 8866 §6.7, RFC 3264 §5.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def mirrored(self) -> Direction:
        """The answer's direction for an offered one (RFC 3264 §6.1)."""
        return _MIRROR[self]

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)


_MIRROR = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}


_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """o= (RFC 8866 §5.2); `session_version` increases with every changed description."""

    username: str = "-"
    session_id: int
    session_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """c= (RFC 8866 §5.7); `address` keeps any multicast /ttl suffix verbatim."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str

    @property
    def is_hold(self) -> bool:
        """The RFC 2543 hold form `c=IN IP4 0.0.0.0` (RFC 3264 §8.4)."""
        return self.address in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """a=name or a=name:value (RFC 8866 §5.13); unknown ones are kept as they are."""

    name: str
    value: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """t= with its r= repeat lines (RFC 8866 §5.9, §5.10)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


def _find_attr(attributes: tuple[Attribute, ...], name: str) -> Attribute | None:
    return next((a for a in attributes if a.name == name), None)


def _direction_of(attributes: tuple[Attribute, ...]) -> Direction | None:
    return next((Direction(a.name) for a in attributes if a.name in _DIRECTIONS), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """One m= section (RFC 8866 §5.14) with its i/c/b/k/a lines."""

    media: str
    port: int
    port_count: int | None = None
    proto: str = "RTP/AVP"
    formats: tuple[str, ...] = ()
    info: str | None = None
    connections: tuple[Connection, ...] = ()
    bandwidths: tuple[str, ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()

    def attribute(self, name: str) -> str | None:
        """The value of the first a=name line, '' for a flag, None when absent."""
        found = _find_attr(self.attributes, name)
        return None if found is None else (found.value or "")

    def rtpmaps(self) -> dict[int, tuple[str, int]]:
        """Payload type -> (encoding name, clock rate) from a=rtpmap (RFC 8866 §6.6)."""
        result: dict[int, tuple[str, int]] = {}
        for attr in self.attributes:
            if attr.name == "rtpmap" and attr.value:
                pt, _, encoding = attr.value.partition(" ")
                name, _, rate = encoding.strip().partition("/")
                if pt.isdigit() and rate.partition("/")[0].isdigit():
                    result[int(pt)] = (name, int(rate.partition("/")[0]))
        return result

    def fmtp(self, payload_type: int) -> str | None:
        prefix = f"{payload_type} "
        for attr in self.attributes:
            if attr.name == "fmtp" and attr.value and attr.value.startswith(prefix):
                return attr.value[len(prefix) :].strip()
        return None

    @property
    def direction(self) -> Direction | None:
        return _direction_of(self.attributes)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP body. `other` keeps i/u/e/p/z/k session lines as (type, value)."""

    version: int = 0
    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    bandwidths: tuple[str, ...] = ()
    timings: tuple[Timing, ...] = (Timing(),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    other: tuple[tuple[str, str], ...] = ()

    @property
    def direction(self) -> Direction | None:
        return _direction_of(self.attributes)

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The media-level c= line, else the session-level one (RFC 8866 §5.7)."""
        return media.connections[0] if media.connections else self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        """Media-level direction, else session-level, else sendrecv (RFC 3264 §5.1)."""
        return media.direction or self.direction or Direction.SENDRECV

    def with_version(self, version: int) -> SessionDescription:
        return replace(self, origin=replace(self.origin, session_version=version))


# --- parsing -------------------------------------------------------------------------

_SESSION_OTHER = "iuepzk"


def _int(text: str, what: str, line: str) -> int:
    if not text.isdigit():
        raise SdpError(f"{what} is not a number in {line!r}")
    return int(text)


def _parse_origin(value: str, line: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(f"o= needs 6 fields: {line!r}")
    return Origin(
        username=parts[0],
        session_id=_int(parts[1], "sess-id", line),
        session_version=_int(parts[2], "sess-version", line),
        nettype=parts[3],
        addrtype=parts[4],
        address=parts[5],
    )


def _parse_connection(value: str, line: str) -> Connection:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"c= must be 'IN IP4|IP6 <address>': {line!r}")
    if parts[1] == "IP4" and ":" in parts[2]:
        raise SdpError(f"c= IP4 with an IPv6 address: {line!r}")
    return Connection(nettype=parts[0], addrtype=parts[1], address=parts[2])


def _parse_media(value: str, line: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"m= needs media, port and proto: {line!r}")
    port_text, _, count_text = parts[1].partition("/")
    port = _int(port_text, "port", line)
    if port > 65535:
        raise SdpError(f"port out of range: {line!r}")
    count = _int(count_text, "port count", line) if count_text else None
    return MediaDescription(
        media=parts[0], port=port, port_count=count, proto=parts[2], formats=tuple(parts[3:])
    )


def _parse_attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    # Some phones send "a=sendonly " with a trailing blank; the flag is still meant.
    return Attribute(name=name, value=rest) if sep else Attribute(name=name.rstrip())


def _parse_timing(value: str, line: str) -> Timing:
    parts = value.split()
    if len(parts) != 2:
        raise SdpError(f"t= needs start and stop: {line!r}")
    return Timing(start=_int(parts[0], "start", line), stop=_int(parts[1], "stop", line))


def _split_lines(text: str) -> list[tuple[str, str, str]]:
    result = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"not a <type>=<value> line: {line!r}")
        result.append((line[0], line[2:], line))
    return result


class _MediaParts:
    """The lines of one m= section while it is being read."""

    def __init__(self, base: MediaDescription) -> None:
        self.base = base
        self.connections: list[Connection] = []
        self.bandwidths: list[str] = []
        self.attributes: list[Attribute] = []
        self.info: str | None = None
        self.key: str | None = None

    def add(self, kind: str, value: str, line: str) -> None:
        if kind == "c":
            self.connections.append(_parse_connection(value, line))
        elif kind == "a":
            self.attributes.append(_parse_attribute(value))
        elif kind == "b":
            self.bandwidths.append(value)
        elif kind == "i":
            self.info = value
        elif kind == "k":
            self.key = value
        else:
            raise SdpError(f"unexpected line in a media section: {line!r}")

    def build(self) -> MediaDescription:
        return replace(
            self.base,
            info=self.info,
            connections=tuple(self.connections),
            bandwidths=tuple(self.bandwidths),
            key=self.key,
            attributes=tuple(self.attributes),
        )


class _SessionParts:
    """The session-level lines while they are being read."""

    def __init__(self) -> None:
        self.origin: Origin | None = None
        self.name: str | None = None
        self.connection: Connection | None = None
        self.other: list[tuple[str, str]] = []
        self.bandwidths: list[str] = []
        self.timings: list[Timing] = []
        self.attributes: list[Attribute] = []
        self.media: list[_MediaParts] = []

    def add(self, kind: str, value: str, line: str) -> None:
        if kind == "o":
            self.origin = _parse_origin(value, line)
        elif kind == "s":
            self.name = value
        elif kind == "c":
            self.connection = _parse_connection(value, line)
        elif kind == "b":
            self.bandwidths.append(value)
        elif kind == "t":
            self.timings.append(_parse_timing(value, line))
        elif kind == "r" and self.timings:
            last = self.timings[-1]
            self.timings[-1] = replace(last, repeats=(*last.repeats, value))
        elif kind == "a":
            self.attributes.append(_parse_attribute(value))
        elif kind in _SESSION_OTHER:
            self.other.append((kind, value))
        else:
            raise SdpError(f"unexpected line at session level: {line!r}")

    def build(self) -> SessionDescription:
        if self.origin is None or self.name is None:
            raise SdpError("missing o= or s= line")
        return SessionDescription(
            origin=self.origin,
            session_name=self.name,
            connection=self.connection,
            bandwidths=tuple(self.bandwidths),
            timings=tuple(self.timings) or (Timing(),),
            attributes=tuple(self.attributes),
            media=tuple(m.build() for m in self.media),
            other=tuple(self.other),
        )


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body (RFC 8866 §5); raises SdpError on anything malformed."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not UTF-8 text") from exc
    lines = _split_lines(text)
    if not lines or lines[0][:2] != ("v", "0"):
        raise SdpError("SDP must start with v=0")
    parts = _SessionParts()
    for kind, value, line in lines[1:]:
        if kind == "v":
            raise SdpError("repeated v= line")
        if kind == "m":
            parts.media.append(_MediaParts(_parse_media(value, line)))
        elif parts.media:
            parts.media[-1].add(kind, value, line)
        else:
            parts.add(kind, value, line)
    return parts.build()


# --- serializing ---------------------------------------------------------------------


def _attr_line(attr: Attribute) -> str:
    return f"a={attr.name}" if attr.value is None else f"a={attr.name}:{attr.value}"


def _conn_line(conn: Connection) -> str:
    return f"c={conn.nettype} {conn.addrtype} {conn.address}"


def _media_lines(media: MediaDescription) -> list[str]:
    port = f"{media.port}/{media.port_count}" if media.port_count is not None else str(media.port)
    lines = [" ".join(["m=" + media.media, port, media.proto, *media.formats])]
    lines += [f"i={media.info}"] if media.info is not None else []
    lines += [_conn_line(c) for c in media.connections]
    lines += [f"b={b}" for b in media.bandwidths]
    lines += [f"k={media.key}"] if media.key is not None else []
    return lines + [_attr_line(a) for a in media.attributes]


def serialize_sdp(sdp: SessionDescription) -> bytes:
    """Serialize in the line order of RFC 8866 §5, CRLF line ends."""
    o = sdp.origin
    lines = [
        f"v={sdp.version}",
        f"o={o.username} {o.session_id} {o.session_version} {o.nettype} {o.addrtype} {o.address}",
        f"s={sdp.session_name}",
    ]
    lines += [f"{k}={v}" for k, v in sdp.other if k in "iuep"]
    lines += [_conn_line(sdp.connection)] if sdp.connection else []
    lines += [f"b={b}" for b in sdp.bandwidths]
    for timing in sdp.timings:
        lines += [f"t={timing.start} {timing.stop}", *(f"r={r}" for r in timing.repeats)]
    lines += [f"{k}={v}" for k, v in sdp.other if k in "zk"]
    lines += [_attr_line(a) for a in sdp.attributes]
    for media in sdp.media:
        lines += _media_lines(media)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
