"""Parse SIP datagrams into messages (RFC 3261 §7, §18.3, §25).

Two steps, so that the endpoint can still answer a malformed request: `parse_message`
frames the datagram and splits the header fields (errors there are fatal: nothing to
answer), and `validate_request` / `validate_response` check the fields the core relies on
(errors there carry a status for the 4xx the endpoint sends).
"""

from __future__ import annotations

import re

from sip.errors import RemoteProtocolError
from sip.headers import MAX_CSEQ, parse_address, parse_cseq, parse_via, split_values
from sip.message import SIP_VERSION, Headers, Message, Request, Response, canonical_name
from sip.uri import parse_uri

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_STATUS = re.compile(r"^SIP/(\d+\.\d+) (\d{3}) ?(.*)$", re.S)
_VERSION = re.compile(r"^SIP/\d+\.\d+$")
MAX_HEADERS = 512


def parse_message(data: bytes) -> Message:
    """Frame one UDP datagram and split it into a Request or Response.

    Leading CRLFs are skipped (§7.5). The body is framed by Content-Length; bytes past
    it are ignored (§18.3); a Content-Length larger than the datagram is an error.
    """
    data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise RemoteProtocolError("no end of the header section", status_hint=None)
    head = data[:end].decode("utf-8", "surrogateescape")
    lines = _unfold(head.split("\r\n"))
    headers = _parse_fields(lines[1:])
    body = _frame_body(headers, data[end + 4 :])
    return _start_line(lines[0], headers, body)


def _unfold(lines: list[str]) -> list[str]:
    # §7.3.1: a line starting with whitespace continues the previous header field.
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and len(out) > 1:
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return out


def _parse_fields(lines: list[str]) -> Headers:
    if len(lines) > MAX_HEADERS:
        raise RemoteProtocolError("too many header fields", status_hint=513)
    fields: list[tuple[str, str, str]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN.match(name):
            raise RemoteProtocolError(f"malformed header line {line[:60]!r}", status_hint=400)
        fields.append((canonical_name(name), name, value.strip(" \t")))
    return Headers(fields)


def _frame_body(headers: Headers, rest: bytes) -> bytes:
    raw = headers.get("content-length")
    if raw is None:
        return rest
    if not raw.isdigit():
        raise RemoteProtocolError(f"malformed Content-Length {raw!r}", status_hint=400)
    length = int(raw)
    if length > len(rest):
        raise RemoteProtocolError("Content-Length larger than the datagram", status_hint=400)
    return rest[:length]


def _start_line(line: str, headers: Headers, body: bytes) -> Message:
    if line.startswith("SIP/"):
        match = _STATUS.match(line)
        if match is None:
            raise RemoteProtocolError(f"malformed status line {line[:60]!r}", status_hint=None)
        version = "SIP/" + match.group(1)
        return Response(int(match.group(2)), match.group(3), headers, body, version)
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]):
        raise RemoteProtocolError(f"malformed request line {line[:60]!r}", status_hint=400)
    method, uri, version = parts
    if not _VERSION.match(version):
        raise RemoteProtocolError(f"malformed request line {line[:60]!r}", status_hint=400)
    return Request(method, uri, headers, body, version)


_MANDATORY = ("via", "from", "to", "call-id", "cseq")


def validate_request(request: Request) -> None:
    """Check what a UAS relies on (§8.2, §16.3); RemoteProtocolError with the status."""
    if request.version != SIP_VERSION:
        raise RemoteProtocolError(f"version {request.version} not supported", status_hint=505)
    for name in _MANDATORY:
        if name not in request.headers:
            raise RemoteProtocolError(f"missing {name} header")
        if len(request.headers.get_all(name)) > 1 and name != "via":
            raise RemoteProtocolError(f"more than one {name} header")
    parse_uri(request.uri)
    for via in request.headers.values("via"):
        parse_via(via)
    request.from_, request.to  # noqa: B018 - parsed for validation
    cseq = parse_cseq(request.headers.get("cseq") or "")
    if cseq.method != request.method:
        raise RemoteProtocolError("CSeq method does not match the request method")
    _check_max_forwards(request.headers.get("max-forwards"))
    for contact in request.headers.values("contact"):
        parse_address(contact)


def _check_max_forwards(raw: str | None) -> None:
    if raw is not None and (not raw.isdigit() or int(raw) > 255):
        raise RemoteProtocolError(f"malformed Max-Forwards {raw!r}")


def validate_response(response: Response) -> None:
    """Check a response before the transaction layer sees it (§18.1.2); errors drop it."""
    if response.version != SIP_VERSION:
        raise RemoteProtocolError("response version not supported", status_hint=None)
    for name in _MANDATORY:
        if name not in response.headers:
            raise RemoteProtocolError(f"response without {name}", status_hint=None)
    cseq = parse_cseq(response.headers.get("cseq") or "")
    if cseq.seq > MAX_CSEQ:
        raise RemoteProtocolError("response CSeq out of range", status_hint=None)
    for via in split_values(response.headers.get("via") or ""):
        parse_via(via)
