"""Typed views of the header fields the core needs (RFC 3261 §20, §25.1).

Via, CSeq and the name-addr/addr-spec family (From, To, Contact, Route, Record-Route,
Refer-To, P-Asserted-Identity) are parsed here; every other field stays raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sip.errors import RemoteProtocolError
from sip.uri import Uri, parse_uri, split_host_port

MAX_CSEQ = 2**32 - 1
_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")


def split_values(raw: str) -> list[str]:
    """Split a list header at top-level commas: not inside quotes or <...> (§7.3.1)."""
    if "," not in raw:
        return [raw.strip()] if raw.strip() else []
    out: list[str] = []
    start, depth, quoted, escaped = 0, 0, False, False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
        elif quoted:
            if ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append(raw[start:i].strip())
            start = i + 1
    out.append(raw[start:].strip())
    if any(not v for v in out):
        raise RemoteProtocolError(f"empty element in list header {raw!r}")
    return out


def parse_params(text: str, context: str) -> dict[str, str | None]:
    """Parse `;name=value;flag` generic parameters (§25.1 generic-param)."""
    params: dict[str, str | None] = {}
    for item in _split_semicolons(text):
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not name or not _TOKEN.match(name):
            raise RemoteProtocolError(f"malformed parameter in {context!r}")
        params[name] = value.strip() if eq else None
    return params


def _split_semicolons(text: str) -> list[str]:
    items: list[str] = []
    start, quoted, escaped = 0, False, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    if quoted:
        raise RemoteProtocolError(f"unterminated quoted string in {text!r}")
    first = items[0].strip()
    if first:
        raise RemoteProtocolError(f"text before parameters in {text!r}")
    return items[1:]


@dataclass(slots=True)
class CSeq:
    """CSeq: sequence number and method (§20.16)."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(raw: str) -> CSeq:
    """Parse CSeq; the number must fit in 32 bits (§8.1.1.5)."""
    parts = raw.split()
    if len(parts) != 2 or not parts[0].isdigit() or not _TOKEN.match(parts[1]):
        raise RemoteProtocolError(f"malformed CSeq {raw!r}")
    seq = int(parts[0])
    if seq > MAX_CSEQ:
        raise RemoteProtocolError(f"CSeq number out of range {raw!r}")
    return CSeq(seq, parts[1])


@dataclass(slots=True)
class Via:
    """One Via element (§20.42) with RFC 3581 rport."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        """The branch parameter; RFC 3261 branches start with z9hG4bK (§8.1.1.7)."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """(host, port) as sent."""
        return self.host, self.port

    def __str__(self) -> str:
        out = f"{self.protocol}/{self.transport} {self.host}"
        if self.port is not None:
            out += f":{self.port}"
        for name, value in self.params.items():
            out += f";{name}" if value is None else f";{name}={value}"
        return out


_VIA_HEAD = re.compile(
    r"^\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([0-9.]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.*)$",
    re.S,
)


def parse_via(raw: str) -> Via:
    """Parse one Via element."""
    match = _VIA_HEAD.match(raw)
    if match is None:
        raise RemoteProtocolError(f"malformed Via {raw!r}")
    name, version, transport, rest = match.groups()
    sent_by, semi, params_text = rest.partition(";")
    host, port = split_host_port(re.sub(r"\s+", "", sent_by), raw)
    params = parse_params(semi + params_text, raw) if semi else {}
    return Via(transport.upper(), host, port, params, f"{name.upper()}/{version}")


@dataclass(slots=True)
class Address:
    """A name-addr or addr-spec with header parameters (§20.10, §20.20, §20.39)."""

    uri: Uri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    star: bool = False

    @property
    def tag(self) -> str | None:
        """The tag parameter (§19.3)."""
        return self.params.get("tag")

    def __str__(self) -> str:
        if self.star:
            return "*"
        out = f'"{self.display}" <{self.uri}>' if self.display else f"<{self.uri}>"
        for name, value in self.params.items():
            out += f";{name}" if value is None else f";{name}={value}"
        return out


_STAR_URI = Uri("*")


def parse_address(raw: str) -> Address:
    """Parse name-addr / addr-spec with parameters; `*` for a Contact wildcard."""
    text = raw.strip()
    if text == "*":
        return Address(_STAR_URI, star=True)
    if "<" in text:
        return _parse_name_addr(text, raw)
    uri_text, semi, params_text = text.partition(";")
    if any(c in uri_text for c in ",?"):
        # §20: an addr-spec with a comma, question mark or semicolon must be bracketed.
        raise RemoteProtocolError(f"URI with reserved characters outside <> in {raw!r}")
    params = parse_params(semi + params_text, raw) if semi else {}
    return Address(parse_uri(uri_text.strip()), None, params)


def _parse_name_addr(text: str, raw: str) -> Address:
    display, rest = _take_display(text, raw)
    end = rest.find(">")
    if not rest.startswith("<") or end < 0:
        raise RemoteProtocolError(f"malformed name-addr {raw!r}")
    uri = parse_uri(rest[1:end])
    tail = rest[end + 1 :].strip()
    params = parse_params(tail, raw) if tail else {}
    return Address(uri, display, params)


def _take_display(text: str, raw: str) -> tuple[str | None, str]:
    if text.startswith('"'):
        i, escaped = 1, False
        while i < len(text):
            ch = text[i]
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                return text[1:i], text[i + 1 :].lstrip()
            i += 1
        raise RemoteProtocolError(f"unterminated display name in {raw!r}")
    lt = text.index("<")
    display = text[:lt].strip()
    if display and not all(_TOKEN.match(word) for word in display.split()):
        raise RemoteProtocolError(f"unquoted display name with separators in {raw!r}")
    return display or None, text[lt:]


_AUTH_SCHEME = re.compile(r"\s*([A-Za-z0-9\-.!%*_+`'~]+)(?:\s+|$)")
_AUTH_PARAM = re.compile(
    r"[\s,]*([A-Za-z0-9\-.!%*_+`'~]+)\s*=\s*"
    r'(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*(?:,|$)',
    re.S,
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


def parse_auth_params(raw: str) -> tuple[str, dict[str, str]]:
    """Parse credentials or a challenge: `Digest realm="x", nonce="y", nc=00000001`.

    RFC 3261 §25.1 (credentials, challenge), RFC 7616 §3.3-3.4, RFC 8760. Returns the
    scheme as written and the parameters with lower-case names and unquoted values
    (quoted-pair escapes decoded). Empty list elements are skipped (RFC 7230 §7);
    a repeated parameter or a malformed one raises RemoteProtocolError (400).
    """
    match = _AUTH_SCHEME.match(raw)
    if match is None:
        raise RemoteProtocolError(f"malformed authorization scheme in {raw[:60]!r}")
    params: dict[str, str] = {}
    pos, end = match.end(), len(raw.rstrip())
    while pos < end and raw[pos:end].strip(" \t,"):
        item = _AUTH_PARAM.match(raw, pos, end)
        if item is None:
            raise RemoteProtocolError(f"malformed authorization parameter in {raw[:60]!r}")
        name, quoted, token = item.groups()
        name = name.lower()
        if name in params:
            raise RemoteProtocolError(f"repeated authorization parameter {name!r}")
        params[name] = token if quoted is None else _QUOTED_PAIR.sub(r"\1", quoted)
        pos = item.end()
    return match.group(1), params


def quote_string(value: str) -> str:
    """Write `value` as a quoted-string, escaping `"` and `\\` (RFC 3261 §25.1)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_auth_params(
    scheme: str, params: dict[str, str], *, tokens: frozenset[str] = frozenset()
) -> str:
    """Write a challenge or credentials; names in `tokens` are written unquoted.

    RFC 7616 §3.3: in a challenge `algorithm` and `stale` are tokens, in credentials
    `algorithm`, `qop` and `nc` are; the caller says which, since it knows the role.
    """
    items = (f"{k}={v if k in tokens else quote_string(v)}" for k, v in params.items())
    return f"{scheme} " + ", ".join(items)
