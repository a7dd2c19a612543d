"""Stateless answers to malformed requests (RFC 3261 §8.2, §16.3, §21.4.27, §20.43).

When a request fails validation but Via, From, To, Call-ID and CSeq are present, the
endpoint can still answer: the status comes from the error (400, 505, 513) and the
reason goes in a Warning header (code 399, "miscellaneous warning") for the peer's logs.
"""

from __future__ import annotations

from sip.errors import RemoteProtocolError
from sip.header_fields import Headers, canonical_name
from sip.message import Request, Response, make_response
from sip.server_transaction import response_address, stamp_via
from sip.transaction import Addr

WARN_AGENT = "centralino"
_NEEDED = ("via", "from", "to", "call-id", "cseq")


def stateless_error(
    request: Request, exc: RemoteProtocolError, source: Addr, tag: str
) -> tuple[Response, Addr] | None:
    """The response to send and where, or None when none can be formed (drop it)."""
    if exc.status_hint is None or request.method == "ACK":
        return None  # §17: an ACK is never answered
    if any(name not in request.headers for name in _NEEDED):
        return None
    warning = ("Warning", f'399 {WARN_AGENT} "{_quoted(exc.reason)}"')
    destination = _destination(request, source)
    try:
        response = make_response(request, exc.status_hint, to_tag=tag, extra=(warning,))
    except RemoteProtocolError:
        response = make_response(request, exc.status_hint, extra=(warning,))
    return response, destination


def _destination(request: Request, source: Addr) -> Addr:
    # Use the Via when it parses (§18.2.2 with RFC 3581); otherwise the source address.
    try:
        stamp_via(request, source)
        return response_address(request)
    except RemoteProtocolError:
        return source


def _quoted(reason: str) -> str:
    """Make `reason` safe inside a quoted-string (§25.1): printable ASCII, no \\ or "."""
    safe = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in reason)
    return safe[:200]


def salvage(data: bytes) -> Request | None:
    """The bare bones of a request that failed to parse (a bad header line, too many
    fields): its request line and the five fields a response copies, or None."""
    head = data.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("SIP/") or not parts[0].isalpha():
        return None
    headers = Headers()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon and canonical_name(name.strip()) in _NEEDED:
            headers.add(name.strip(), value.strip())
    return Request(parts[0], parts[1], headers, version=parts[2])
