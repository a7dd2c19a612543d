"""SIP message model: requests, responses, their serialization and a UAS's response
building (RFC 3261 §7, §8.2.6, §20).

Header fields (sip.header_fields) are kept as written so that a message round-trips
byte for byte; typed views (Via, Address, CSeq) are parsed on demand, which keeps the
parse of a datagram cheap when the transaction layer only needs the top Via and CSeq.
"""

from __future__ import annotations

import re

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.header_fields import Headers
from sip.headers import (
    Address,
    CSeq,
    Via,
    delta_seconds,
    parse_address,
    parse_cseq,
    parse_via,
    split_values,
)

SIP_VERSION = "SIP/2.0"


class _Message:
    """What requests and responses share: headers, body and typed views of key fields.

    Views are parsed on each access from the raw fields (never cached), so they always
    agree with the headers, which callers may edit. `defects` lists what the parser
    found wrong in a request it could still answer; `validate_request` raises the first.
    """

    __slots__ = ("body", "defects", "headers", "version")

    headers: Headers
    body: bytes
    version: str
    defects: tuple[RemoteProtocolError, ...]

    @property
    def call_id(self) -> str:
        """The Call-ID (§20.8); RemoteProtocolError if missing."""
        return self._required("call-id")

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq (§20.16)."""
        return parse_cseq(self._required("cseq"))

    @property
    def vias(self) -> list[Via]:
        """Every Via element, top first (§20.42)."""
        return [parse_via(v) for v in self.headers.values("via")]

    @property
    def top_via(self) -> Via:
        """The topmost Via (§8.1.1.7); RemoteProtocolError if missing."""
        raw = self._required("via")
        return parse_via(split_values(raw)[0] if "," in raw else raw)

    @property
    def from_(self) -> Address:
        """The parsed From (§20.20)."""
        return parse_address(self._required("from"))

    @property
    def to(self) -> Address:
        """The parsed To (§20.39)."""
        return parse_address(self._required("to"))

    @property
    def contacts(self) -> list[Address]:
        """Every Contact element (§20.10); a wildcard is an Address with `star`."""
        return [parse_address(v) for v in self.headers.values("contact")]

    @property
    def routes(self) -> list[Address]:
        """The Route set, in order (§20.34)."""
        return [parse_address(v) for v in self.headers.values("route")]

    @property
    def record_routes(self) -> list[Address]:
        """The Record-Route entries, in order (§20.30)."""
        return [parse_address(v) for v in self.headers.values("record-route")]

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (§20.22); None if absent or beyond 255 (RFC 4475 §3.1.2.4).

        RemoteProtocolError (400) if it is not a number.
        """
        raw = self.headers.get("max-forwards")
        if raw is None:
            return None
        if not raw.isdigit() or not raw.isascii():
            raise RemoteProtocolError(f"malformed Max-Forwards {raw[:20]!r}")
        value = int(raw) if len(raw) < 6 else 256
        return value if value <= 255 else None

    @property
    def expires(self) -> int | None:
        """The Expires header (§20.19); 3600 when out of range (RFC 4475 §3.1.2.4)."""
        raw = self.headers.get("expires")
        return None if raw is None else delta_seconds(raw)

    def option_tags(self, name: str) -> list[str]:
        """Option tags of Require, Proxy-Require, Supported or Unsupported (§19.2)."""
        return self.headers.values(name)

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if not value:
            raise RemoteProtocolError(f"missing {name} header", status_hint=400)
        return value

    def _serialize(self, start_line: str) -> bytes:
        """Write the message; Content-Length is set to the body's length (§18.3, §20.14).

        The first Content-Length field keeps its place and spelling, others are dropped,
        and one is appended when there was none.
        """
        parts = [start_line]
        length = str(len(self.body))
        seen_length = False
        for key, name, value in self.headers.fields:
            if key == "content-length":
                if not seen_length:
                    parts.append(f"{name}: {length}")
                    seen_length = True
                continue
            if "\n" in value or "\r" in value:
                raise LocalProtocolError(f"line break in the value of {name}")
            parts.append(f"{name}: {value}")
        if not seen_length:
            parts.append(f"Content-Length: {length}")
        parts.append("\r\n")
        return "\r\n".join(parts).encode("utf-8", "surrogateescape") + self.body


class Request(_Message):
    """A SIP request (RFC 3261 §7.1)."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version
        self.defects = ()

    def __repr__(self) -> str:
        return f"Request({self.method} {self.uri})"

    def to_bytes(self) -> bytes:
        """Serialize, always with a Content-Length that matches the body (§18.3)."""
        return self._serialize(f"{self.method} {self.uri} {self.version}")


class Response(_Message):
    """A SIP response (RFC 3261 §7.2)."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str = "",
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.status = status
        self.reason = reason or REASON_PHRASES.get(status, "")
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version
        self.defects = ()

    def __repr__(self) -> str:
        return f"Response({self.status} {self.reason})"

    def to_bytes(self) -> bytes:
        """Serialize, always with a Content-Length that matches the body (§18.3)."""
        return self._serialize(f"{self.version} {self.status} {self.reason}")


Message = Request | Response

# Headers a UAS copies from the request into a response (RFC 3261 §8.2.6.2).
_COPIED = ("via", "from", "call-id", "cseq")


def make_response(
    request: Request,
    status: int,
    reason: str = "",
    *,
    to_tag: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Response:
    """Build a response to `request` as a UAS does (RFC 3261 §8.2.6).

    Via, From, Call-ID and CSeq are copied; To is copied and gets `to_tag` when it has
    none yet (a 100 Trying never gets one, §8.2.6.2).
    """
    headers = Headers([f for f in request.headers.fields if f[0] in _COPIED])
    to_value = request.headers.get("to") or ""
    if to_tag is not None and status != 100 and not _has_tag(to_value):
        to_value = f"{to_value};tag={to_tag}"
    headers.fields.insert(_to_position(headers), ("to", "To", to_value))
    for name, value in extra:
        headers.add(name, value)
    return Response(status, reason, headers, body)


def _has_tag(address_value: str) -> bool:
    try:
        return parse_address(address_value).tag is not None
    except RemoteProtocolError:
        # A 400 to a malformed To must still be buildable: look for the tag as text.
        return _TAG.search(address_value) is not None


_TAG = re.compile(r";[ \t]*tag[ \t]*=", re.I)


def _to_position(headers: Headers) -> int:
    # Keep To right after From, as SIP stacks conventionally order them.
    for i, (k, _, _) in enumerate(headers.fields):
        if k == "from":
            return i + 1
    return len(headers.fields)


REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}
