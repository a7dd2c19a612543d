"""SIP message model: requests, responses and their header fields (RFC 3261 §7, §20).

Header fields are kept as written (name and raw value) so that a message round-trips
byte for byte; typed views (Via, Address, CSeq) are parsed on demand, which keeps the
parse of a datagram cheap when the transaction layer only needs the top Via and CSeq.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from sip.errors import LocalProtocolError, RemoteProtocolError
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

# RFC 3261 §7.3.3 and the IANA registry: compact form -> full name (lower case).
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Header fields whose value is a comma-separated list (RFC 3261 §7.3.1) and that we
# split into elements when asked for their values.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "content-language",
        "in-reply-to",
        "warning",
        "error-info",
        "alert-info",
        "call-info",
        "history-info",
        "diversion",
        "p-asserted-identity",
    }
)


def canonical_name(name: str) -> str:
    """Return the lower-case full name of a header field (compact forms expanded)."""
    known = _CANONICAL.get(name)
    if known is not None:
        return known
    key = name.lower()
    key = COMPACT_FORMS.get(key, key)
    if len(_CANONICAL) < _CANONICAL_LIMIT:
        # Bounded so that a peer sending random header names cannot grow it forever.
        _CANONICAL[name] = key
    return key


COMMON_NAMES = (
    "Via", "From", "To", "Call-ID", "Call-Id", "CSeq", "Max-Forwards", "Contact", "Route",
    "Record-Route", "Content-Type", "Content-Length", "Expires", "Min-Expires", "Allow",
    "Supported", "Require", "Proxy-Require", "Unsupported", "Accept", "User-Agent",
    "Server", "Authorization", "Proxy-Authorization", "WWW-Authenticate",
    "Proxy-Authenticate", "Date", "Timestamp", "Subject", "Organization", "Warning",
    "Reason", "Event", "Allow-Events", "Refer-To", "Referred-By", "Replaces",
    "Session-Expires", "Min-SE", "P-Asserted-Identity", "Privacy", "Diversion",
    "Retry-After", "Accept-Encoding", "Accept-Language", "Content-Disposition",
    "Content-Encoding", "Content-Language", "Subscription-State", "RSeq", "RAck",
    "Authentication-Info", "Alert-Info", "Call-Info", "Error-Info", "In-Reply-To",
    "MIME-Version", "Priority", "Reply-To", "History-Info",
)  # fmt: skip
"""Header names as phones usually write them; always in the name caches below."""

_CANONICAL: dict[str, str] = {}
_CANONICAL_LIMIT = 4096


def common_spellings() -> tuple[str, ...]:
    """COMMON_NAMES and the compact forms, as written and in lower (upper) case."""
    compact = (*COMPACT_FORMS, *(name.upper() for name in COMPACT_FORMS))
    return (*COMMON_NAMES, *(name.lower() for name in COMMON_NAMES), *compact)


_CANONICAL.update((spelling, canonical_name(spelling)) for spelling in common_spellings())


@dataclass(slots=True)
class Headers:
    """An ordered multi-map of header fields, matched case-insensitively (RFC 3261 §7.3.1)."""

    fields: list[tuple[str, str, str]] = field(default_factory=list)
    """(canonical name, name as written, raw value) in wire order."""

    @classmethod
    def of(cls, *pairs: tuple[str, str]) -> Headers:
        """Build from (name, value) pairs."""
        return cls([(canonical_name(n), n, v) for n, v in pairs])

    def get(self, name: str) -> str | None:
        """The raw value of the first field with this name, or None."""
        key = _CANONICAL.get(name) or canonical_name(name)
        for k, _, v in self.fields:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """The raw values of every field with this name, in order."""
        key = canonical_name(name)
        return [v for k, _, v in self.fields if k == key]

    def values(self, name: str) -> list[str]:
        """Every element of a list header, fields split at top-level commas (§7.3.1)."""
        out: list[str] = []
        for raw in self.get_all(name):
            out.extend(split_values(raw))
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((n, v) for _, n, v in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def add(self, name: str, value: str) -> None:
        """Append a field."""
        self.fields.append((canonical_name(name), name, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before all others (a proxy's new top Via)."""
        self.fields.insert(0, (canonical_name(name), name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field with this name by one, at the first one's place."""
        key = canonical_name(name)
        for i, (k, _, _) in enumerate(self.fields):
            if k == key:
                self.fields[i] = (key, name, value)
                self.fields[i + 1 :] = [f for f in self.fields[i + 1 :] if f[0] != key]
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Remove every field with this name."""
        key = canonical_name(name)
        self.fields = [f for f in self.fields if f[0] != key]

    def copy(self) -> Headers:
        """A shallow copy (the tuples are immutable)."""
        return Headers(list(self.fields))


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
