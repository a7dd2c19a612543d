"""Parse SIP datagrams into messages (RFC 3261 §7, §18.3, §25).

Two steps, so that the endpoint can still answer a malformed request:

* `parse_message` frames the datagram and splits the header fields. It raises
  RemoteProtocolError (status_hint None: drop and log) only when nothing can be
  answered: no start line, a broken response, an empty keep-alive. A request that
  is broken but answerable (a bad header line, a wrong Content-Length, too many
  fields) is returned with its `defects`.
* `validate_request` / `validate_response` raise those defects first, then check the
  fields the core relies on; a request's errors carry the status to answer with
  (400, 416, 501, 505, 513), a response's always carry None (§18.1.2: discard it).

The hot path (framing, field split, start line) is kept to C-level string calls:
one `find` for the empty line, one `decode`, one `split` and a `partition` per line,
with field names validated once and cached; typed views are parsed on demand.
"""

from __future__ import annotations

import re

from sip.errors import RemoteProtocolError
from sip.header_fields import Headers, canonical_name, common_spellings
from sip.message import SIP_VERSION, Message, Request, Response
from sip.uri import parse_uri

MAX_HEADERS = 512
"""More header fields than this gets 513 (§21.5.14): no real phone sends so many."""

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_FOLD = re.compile(r"[ \t]*\r?\n[ \t]+")
# §7.1: "The SIP-Version string is case-insensitive, but implementations MUST send
# upper-case": accepted in any case, kept in upper case.
_REQUEST_LINE = re.compile(rf"({_TOKEN}) +([^ ]+) +((?i:SIP)/[0-9]+\.[0-9]+) *")
_STATUS_LINE = re.compile(r"((?i:SIP)/[0-9]+\.[0-9]+) ([1-6][0-9][0-9])(?: ([^\r\n]*))?")
_TOKEN_ONLY = re.compile(_TOKEN)


def parse_message(data: bytes) -> Message:
    """Frame one UDP datagram and split it into a Request or Response (§7, §18.3).

    Leading CRLFs are skipped (§7.5); bare LF line ends are tolerated; a datagram that
    ends before the empty line is taken whole as the header section. The body is
    framed by Content-Length and bytes past it are ignored (§18.3, RFC 4475 §3.1.1.8).
    """
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    head, rest = _split_head(data)
    text = head.decode("utf-8", "surrogateescape")
    start, newline, fields_text = text.partition("\n")
    defects: list[RemoteProtocolError] = []
    fields = _split_fields(fields_text, defects) if newline else []
    if fields is None:
        # §7.3.1: a line starting with whitespace continues the previous line. Rare,
        # so it is found by the field split (a name-less line) rather than searched for.
        start, _, fields_text = _FOLD.sub(" ", text).partition("\n")
        defects.clear()
        fields = _split_fields(fields_text, defects) or []
    headers = Headers(fields)
    body = _frame_body(fields, rest, defects)
    if len(fields) > MAX_HEADERS:
        defects.append(RemoteProtocolError("too many header fields", status_hint=513))
    return _start_line(start.rstrip("\r"), headers, body, defects)


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split at the first empty line (§7): CRLF CRLF, or bare LFs from sloppy peers."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    for separator in (b"\n\n", b"\n\r\n"):
        end = data.find(separator)
        if end >= 0:
            return data[:end], data[end + len(separator) :]
    if not data:
        raise RemoteProtocolError("empty datagram", status_hint=None)
    return data.rstrip(b"\r\n"), b""


def _split_fields(
    text: str, defects: list[RemoteProtocolError]
) -> list[tuple[str, str, str]] | None:
    """Split `name: value` lines; names seen before skip validation (the hot path).

    None when a line starts with whitespace: the caller unfolds and splits again.
    """
    fields: list[tuple[str, str, str]] = []
    known = _FIELD_NAMES
    for line in text.split("\n"):
        name, colon, value = line.partition(":")
        key = known.get(name)
        value = value.strip(" \t\r")
        if key is None or not colon or "\r" in value:
            if line[:1] in (" ", "\t"):
                return None
            _add_new_field(line, fields, defects)
        else:
            fields.append((key, name, value))
    return fields


def _add_new_field(
    line: str, fields: list[tuple[str, str, str]], defects: list[RemoteProtocolError]
) -> None:
    """Validate a field whose name is not cached yet (§7.3.1: field-name is a token)."""
    name, colon, value = line.partition(":")
    name, value = name.rstrip(" \t"), value.strip(" \t\r")
    if not colon or _TOKEN_ONLY.fullmatch(name) is None or "\r" in value:
        # §7.3.1: CR appears only in CRLF; a bare one cannot be copied into a response.
        if not defects:
            defects.append(RemoteProtocolError(f"malformed header line {line[:60]!r}"))
        return
    key = canonical_name(name)
    if len(_FIELD_NAMES) < _FIELD_NAMES_LIMIT:
        # Bounded, so that a peer sending random names cannot grow it without end.
        _FIELD_NAMES[name] = key
    fields.append((key, name, value))


_FIELD_NAMES: dict[str, str] = {name: canonical_name(name) for name in common_spellings()}
_FIELD_NAMES_LIMIT = 4096


def _frame_body(
    fields: list[tuple[str, str, str]], rest: bytes, defects: list[RemoteProtocolError]
) -> bytes:
    """Cut the body at Content-Length (§18.3); without one it runs to the datagram's end."""
    values = [v for k, _, v in fields if k == "content-length"]
    if not values:
        return rest
    if len(values) > 1 and values.count(values[0]) != len(values):
        defects.append(RemoteProtocolError("conflicting Content-Length values"))
        return rest
    raw = values[0]
    if not raw.isdigit() or not raw.isascii():
        defects.append(RemoteProtocolError(f"malformed Content-Length {raw[:20]!r}"))
        return rest
    if len(raw) > 9 or int(raw) > len(rest):
        defects.append(RemoteProtocolError("Content-Length larger than the datagram"))
        return rest
    return rest[: int(raw)]


def _start_line(
    line: str, headers: Headers, body: bytes, defects: list[RemoteProtocolError]
) -> Message:
    if line[:4].upper() == "SIP/":
        return _response(line, headers, body, defects)
    match = _REQUEST_LINE.fullmatch(line)
    if match is not None:
        method, uri, version = match.groups()
        request = Request(method, uri, headers, body, version.upper())
    else:
        request = _broken_request(line, headers, body)
        defects.insert(0, RemoteProtocolError(f"malformed request line {line[:60]!r}"))
    if defects:
        request.defects = tuple(defects)
    return request


def _response(
    line: str, headers: Headers, body: bytes, defects: list[RemoteProtocolError]
) -> Response:
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise RemoteProtocolError(f"malformed status line {line[:60]!r}", status_hint=None)
    if defects:
        # §18.1.2 and §18.3: a malformed response is discarded, never answered.
        raise RemoteProtocolError(defects[0].reason, status_hint=None)
    version, status, reason = match.groups()
    response = Response(int(status), "", headers, body, version.upper())
    response.reason = reason or ""  # kept empty as received (RFC 4475 §3.1.1.13)
    return response


def _broken_request(line: str, headers: Headers, body: bytes) -> Request:
    """A request line with LWS inside or parts missing (RFC 4475 §3.1.2.8): answer 400."""
    parts = [part for part in line.split(" ") if part]
    if not parts or _TOKEN_ONLY.fullmatch(parts[0]) is None:
        raise RemoteProtocolError(f"malformed start line {line[:60]!r}", status_hint=None)
    parts += ["", ""]
    return Request(parts[0], parts[1], headers, body, parts[2])


_MANDATORY = ("via", "from", "to", "call-id", "cseq")
_SINGLETONS = ("from", "to", "call-id", "cseq", "max-forwards", "expires", "content-type")
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)  # fmt: skip
"""Methods of RFC 3261 and its registered extensions: a CSeq mismatch on any other
request line gets 501 rather than 400 (RFC 4475 §3.1.2.18)."""


def validate_request(request: Request) -> None:
    """Check what a UAS relies on (§8.2, §16.3); RemoteProtocolError with the status.

    400 for malformed or missing fields, 505 for a version other than SIP/2.0
    (§21.5.20), 416 for a Request-URI scheme other than sip, sips and tel (§8.2.2.1),
    501 for an unknown method whose CSeq names another, 513 for too many fields.
    Semantic checks (Require, Accept, Max-Forwards 0, registrar rules) are the
    endpoint's.
    """
    if request.defects:
        raise request.defects[0]
    if request.version != SIP_VERSION:
        raise RemoteProtocolError(f"version {request.version[:20]} not supported", status_hint=505)
    _check_presence(request)
    request.call_id  # noqa: B018 - parsed for validation
    _check_request_uri(request.uri)
    if not request.vias:
        raise RemoteProtocolError("empty Via header")
    _check_addresses(request)
    request.max_forwards  # noqa: B018 - parsed for validation
    request.expires  # noqa: B018 - parsed for validation
    if request.cseq.method != request.method:
        known = request.method in KNOWN_METHODS
        reason = "CSeq method does not match the request method"
        raise RemoteProtocolError(reason, status_hint=400 if known else 501)


def _check_presence(request: Request) -> None:
    """§8.1.1: the mandatory fields, each once (RFC 4475 §3.3.1, §3.3.8)."""
    names = [key for key, _, _ in request.headers.fields]
    for name in _MANDATORY:
        # An empty value is refused too, when the field is parsed.
        if name not in names:
            raise RemoteProtocolError(f"missing {name} header")
    for name in _SINGLETONS:
        if names.count(name) > 1:
            raise RemoteProtocolError(f"more than one {name} header")


def _check_request_uri(text: str) -> None:
    uri = parse_uri(text)
    if uri.scheme not in ("sip", "sips", "tel"):
        raise RemoteProtocolError(f"unsupported URI scheme {uri.scheme[:20]!r}", status_hint=416)
    if uri.headers is not None:
        # §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        raise RemoteProtocolError("header fields in the Request-URI")


def _check_addresses(message: Message) -> None:
    for address in (message.from_, message.to):
        if address.star:
            raise RemoteProtocolError("wildcard in From or To")
    contacts = message.contacts
    if len(contacts) > 1 and any(c.star for c in contacts):
        raise RemoteProtocolError("Contact wildcard together with other contacts")
    for contact in contacts:
        contact.expires  # noqa: B018 - parsed for validation
    message.routes  # noqa: B018 - parsed for validation
    message.record_routes  # noqa: B018 - parsed for validation


def validate_response(response: Response) -> None:
    """Check a response before the transaction layer sees it (§18.1.2).

    Every error carries status_hint None: a malformed response is discarded (RFC 4475
    §3.1.2.5, §3.1.2.19).
    """
    try:
        if response.defects:
            raise response.defects[0]
        if response.version != SIP_VERSION:
            raise RemoteProtocolError("response version not supported")
        for name in _MANDATORY:
            if not response.headers.get(name):
                raise RemoteProtocolError(f"response without {name}")
        response.cseq  # noqa: B018 - parsed for validation
        if not response.vias:
            raise RemoteProtocolError("empty Via header")
        _check_addresses(response)
    except RemoteProtocolError as error:
        raise RemoteProtocolError(error.reason, status_hint=None) from error
