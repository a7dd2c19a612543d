"""Typed views of the header fields the core needs (RFC 3261 §7.3, §20, §25.1).

Via, CSeq, the name-addr/addr-spec family (From, To, Contact, Route, Record-Route,
Refer-To, P-Asserted-Identity) and the auth headers are parsed here, each by one
precompiled expression; every other field stays raw text. LWS has already been folded
into single spaces by the parser (§7.3.1), so the grammar here only sees SP and HT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sip.errors import RemoteProtocolError
from sip.uri import Uri, parse_uri, split_host_port

MAX_CSEQ = 2**32 - 1
MAX_DELTA_SECONDS = 2**32 - 1
DEFAULT_EXPIRES = 3600
"""RFC 3261 §10.2.1.1 default, also used for out-of-range values (RFC 4475 §3.1.2.4)."""

_TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
_TOKEN_RE = rf"[{_TOKEN_CHARS}]+"
_QUOTED_RE = r'"(?:[^"\\]|\\.)*"'
# gen-value = token / host / quoted-string; a host may be an IPv6 reference, and RFC
# 5118 §4.5 asks to accept a received= IPv6 address with or without brackets.
_VALUE_RE = rf"(?:[{_TOKEN_CHARS}:\[\]]+|{_QUOTED_RE})"
_PARAM_RE = rf"[ \t]*;[ \t]*({_TOKEN_RE})(?:[ \t]*=[ \t]*({_VALUE_RE}))?"
_PARAMS_RE = rf"(?:[ \t]*;[ \t]*{_TOKEN_RE}(?:[ \t]*=[ \t]*{_VALUE_RE})?)*"
_TOKEN = re.compile(_TOKEN_RE)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_PARAM = re.compile(_PARAM_RE, re.S)
_PARAMS = re.compile(rf"{_PARAMS_RE}[ \t]*", re.S)
_LIST_ITEM = re.compile(r'[ \t]*((?:"(?:[^"\\]|\\.)*"|<[^<>]*>|[^,"<])*)(,|\Z)', re.S)


def split_values(raw: str) -> list[str]:
    """Split a list header at top-level commas: not inside quotes or <...> (§7.3.1).

    An empty element (`a,,b`) or an unterminated quote or bracket is malformed (400).
    """
    if "," not in raw:
        value = raw.strip(" \t")
        return [value] if value else []
    out: list[str] = []
    pos = 0
    while True:
        match = _LIST_ITEM.match(raw, pos)
        item = match.group(1).rstrip(" \t") if match is not None else ""
        if match is None or not item:
            raise RemoteProtocolError(f"empty or malformed element in list {raw[:80]!r}")
        out.append(item)
        if not match.group(2):
            return out
        pos = match.end()


def parse_params(text: str, context: str) -> dict[str, str | None]:
    """Parse `;name=value;flag` generic parameters (§25.1 generic-param).

    Names are case-insensitive and returned in lower case; values are kept as written
    (quoted strings with their quotes). Anything else in `text` is malformed (400).
    """
    if _PARAMS.fullmatch(text) is None:
        raise RemoteProtocolError(f"malformed parameters in {context[:80]!r}")
    return {name.lower(): value or None for name, value in _PARAM.findall(text)}


def delta_seconds(text: str) -> int:
    """An expiry (§20.19, §20.10 `expires`): digits; out of range means 3600.

    RFC 4475 §3.1.2.4: a value beyond 2**32-1 is treated as the default expiration.
    """
    value = text.strip(" \t")
    if not value.isdigit() or not value.isascii():
        raise RemoteProtocolError(f"malformed expiry {text[:40]!r}")
    seconds = int(value) if len(value) <= 10 else MAX_DELTA_SECONDS + 1
    return DEFAULT_EXPIRES if seconds > MAX_DELTA_SECONDS else seconds


@dataclass(slots=True)
class CSeq:
    """CSeq: sequence number and method (§20.16)."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_CSEQ = re.compile(rf"[ \t]*([0-9]+)[ \t]+({_TOKEN_RE})[ \t]*")


def parse_cseq(raw: str) -> CSeq:
    """Parse CSeq; the number must fit in 32 bits (§8.1.1.5, RFC 4475 §3.1.2.4)."""
    match = _CSEQ.fullmatch(raw)
    if match is None:
        raise RemoteProtocolError(f"malformed CSeq {raw[:60]!r}")
    digits = match.group(1)
    if len(digits) > 10 or int(digits) > MAX_CSEQ:
        raise RemoteProtocolError(f"CSeq number out of range {raw[:60]!r}")
    return CSeq(int(digits), match.group(2))


@dataclass(slots=True)
class Via:
    """One Via element (§20.42, §18.2.1) with RFC 3581 rport."""

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

    @property
    def received(self) -> str | None:
        """The received parameter a server added (§18.2.1)."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The port in `rport=N` (RFC 3581 §4); None for a bare `rport` or none."""
        value = self.params.get("rport")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        """Whether the client asked for symmetric response routing (RFC 3581 §3)."""
        return "rport" in self.params

    def __str__(self) -> str:
        out = f"{self.protocol}/{self.transport} {self.host}"
        if self.port is not None:
            out += f":{self.port}"
        for name, value in self.params.items():
            out += f";{name}" if value is None else f";{name}={value}"
        return out


_VIA = re.compile(
    rf"[ \t]*({_TOKEN_RE})[ \t]*/[ \t]*({_TOKEN_RE})[ \t]*/[ \t]*({_TOKEN_RE})[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?)"
    rf"(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?({_PARAMS_RE})[ \t]*",
    re.S,
)


_VIA_FAST = re.compile(
    r"SIP/2\.0/([A-Z]+) ([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?)(?::([0-9]{1,5}))?"
    rf"((?:;[{_TOKEN_CHARS}]+(?:=[{_TOKEN_CHARS}:\[\]]+)?)*)"
)
"""The usual Via in one expression: no LWS, no IPv6 sent-by, no quoted values."""


def parse_via(raw: str) -> Via:
    """Parse one Via element: sent-protocol, sent-by and via-params (§20.42, §25.1)."""
    fast = _VIA_FAST.fullmatch(raw)
    if fast is None or (fast.group(3) is not None and int(fast.group(3)) > 65535):
        return _parse_via_slowly(raw)
    transport, host, port, params = fast.groups()
    param_map: dict[str, str | None] = {}
    if params:
        for item in params[1:].split(";"):
            name, eq, value = item.partition("=")
            param_map[name.lower()] = value if eq else None
    return Via(transport, host, None if port is None else int(port), param_map, "SIP/2.0")


def _parse_via_slowly(raw: str) -> Via:
    match = _VIA.fullmatch(raw)
    if match is None:
        raise RemoteProtocolError(f"malformed Via {raw[:80]!r}")
    name, version, transport, host, port, params = match.groups()
    if host[0] == "[":
        host, _ = split_host_port(host, raw)
    if port is not None and int(port) > 65535:
        raise RemoteProtocolError(f"Via port out of range in {raw[:80]!r}")
    param_map = {n.lower(): v or None for n, v in _PARAM.findall(params)} if params else {}
    protocol = f"{name.upper()}/{version}"
    return Via(transport.upper(), host, None if port is None else int(port), param_map, protocol)


@dataclass(slots=True)
class Address:
    """A name-addr or addr-spec with header parameters (§20.10, §20.20, §20.39).

    `display` is the display name as written inside its quotes (escapes kept), so it
    is forwarded unchanged; `display_unescaped` decodes the quoted-pairs.
    """

    uri: Uri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    star: bool = False

    @property
    def tag(self) -> str | None:
        """The tag parameter (§19.3)."""
        return self.params.get("tag")

    @property
    def display_unescaped(self) -> str | None:
        """The display name with quoted-pairs decoded (§25.1)."""
        return None if self.display is None else _QUOTED_PAIR.sub(r"\1", self.display)

    @property
    def expires(self) -> int | None:
        """The Contact `expires` parameter (§10.2.1.1); 3600 when out of range."""
        value = self.params.get("expires")
        if value is None:
            if "expires" in self.params:
                raise RemoteProtocolError("expires parameter without a value")
            return None
        return delta_seconds(value)

    @property
    def q(self) -> float | None:
        """The Contact `q` preference, 0 to 1 (§20.10)."""
        value = self.params.get("q")
        if value is None:
            return None
        if _QVALUE.fullmatch(value) is None:
            raise RemoteProtocolError(f"malformed q value {value[:20]!r}")
        return float(value)

    def __str__(self) -> str:
        if self.star:
            return "*"
        out = f'"{self.display}" <{self.uri}>' if self.display else f"<{self.uri}>"
        for name, value in self.params.items():
            out += f";{name}" if value is None else f";{name}={value}"
        return out


_STAR_URI = Uri("*")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
# An unquoted display name is tokens (§25.1); UTF-8 letters are tolerated in them
# too, as some phones send `Niccolò <sip:...>` unquoted. Separators such as `,` still
# make it malformed (RFC 4475 §3.1.2.15).
_DISPLAY_WORD = rf"[{_TOKEN_CHARS}\u0080-\U0010ffff]+"
_NAME_ADDR = re.compile(
    rf'[ \t]*(?:"((?:[^"\\]|\\.)*)"|({_DISPLAY_WORD}(?:[ \t]+{_DISPLAY_WORD})*))?'
    rf"[ \t]*<([^<>]*)>({_PARAMS_RE})[ \t]*",
    re.S,
)


def parse_address(raw: str) -> Address:
    """Parse name-addr / addr-spec with parameters; `*` for a Contact wildcard (§20.10).

    In an addr-spec every `;` starts a header parameter, so a URI holding `,`, `?` or
    `;` must be bracketed (§20; RFC 4475 §3.1.2.13, §3.3.12).
    """
    if "<" in raw:
        return _parse_name_addr(raw)
    text = raw.strip(" \t")
    if text == "*":
        return Address(_STAR_URI, star=True)
    uri_text, semi, params_text = text.partition(";")
    if "," in uri_text or "?" in uri_text:
        raise RemoteProtocolError(f"URI with reserved characters outside <> in {raw[:80]!r}")
    params = parse_params(semi + params_text, raw) if semi else {}
    return Address(parse_uri(uri_text.rstrip(" \t")), None, params)


_NAME_ADDR_FAST = re.compile(
    rf'(?:"([^"\\]*)" ?)?<([^<> ]*)>((?:;[{_TOKEN_CHARS}]+(?:=[{_TOKEN_CHARS}:\[\]]+)?)*)'
)
"""The usual name-addr in one expression: no LWS, no escapes, no quoted values."""


def _parse_name_addr(raw: str) -> Address:
    fast = _NAME_ADDR_FAST.fullmatch(raw)
    if fast is None:
        return _parse_name_addr_slowly(raw)
    display, uri_text, params_text = fast.groups()
    params: dict[str, str | None] = {}
    if params_text:
        for item in params_text[1:].split(";"):
            name, eq, value = item.partition("=")
            params[name.lower()] = value if eq else None
    return Address(parse_uri(uri_text), display, params)


def _parse_name_addr_slowly(raw: str) -> Address:
    match = _NAME_ADDR.fullmatch(raw)
    if match is None:
        raise RemoteProtocolError(f"malformed name-addr {raw[:80]!r}")
    quoted, words, uri_text, params_text = match.groups()
    display = quoted if quoted is not None else words
    params = {n.lower(): v or None for n, v in _PARAM.findall(params_text)}
    return Address(parse_uri(uri_text), display, params)


_AUTH_SCHEME = re.compile(r"\s*([A-Za-z0-9\-.!%*_+`'~]+)(?:\s+|$)")
_AUTH_PARAM = re.compile(
    r"[\s,]*([A-Za-z0-9\-.!%*_+`'~]+)\s*=\s*"
    r'(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))\s*(?:,|$)',
    re.S,
)


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
