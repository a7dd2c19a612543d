"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), IPv6 references (RFC 5118).

A parsed URI keeps its text (`raw`) so that it is forwarded exactly as received; the
parts are views for routing and matching. `%HH` escapes stay as written in `user`,
`password` and parameter values and are decoded once, only where RFC 3261 §19.1.2 says
an escaped character equals the one it encodes (RFC 4475 §3.1.1.3: never twice).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from sip.errors import RemoteProtocolError

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# user = 1*( unreserved / escaped / user-unreserved ); '#' is tolerated as phones send it.
# Character classes only (fast); `%` is checked to start an escape by _BAD_ESCAPE.
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/#%]+")
_PASSWORD = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*")
_PARAM = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+")
_HEADERS = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/?:+$=&%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_OPAQUE = re.compile(r"[\x21-\x7e]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?")
_IPV6_REF = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(slots=True)
class Uri:
    """A parsed URI. `user` keeps its %-escapes; `user_unescaped` decodes them once."""

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    raw: str = ""

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %HEX escapes decoded (RFC 3261 §19.1.2, once only)."""
        return None if self.user is None else unquote(self.user, errors="surrogateescape")

    @property
    def host_port(self) -> tuple[str, int | None]:
        """Host (IPv6 without brackets) and port."""
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return host, self.port

    @property
    def aor(self) -> str:
        """The address-of-record key: no parameters or headers, escapes decoded (§10.3).

        Scheme and host are compared case-insensitively (§19.1.4), so they are lowered.
        RFC 4475 §3.1.1.4: a `%00` in the user part stays a NUL, it does not end the key.
        """
        if self.scheme not in ("sip", "sips"):
            return self.raw or self.render()
        user = self.user_unescaped
        host = self.host.lower() if self.port is None else f"{self.host.lower()}:{self.port}"
        return f"{self.scheme}:{host}" if user is None else f"{self.scheme}:{user}@{host}"

    def __str__(self) -> str:
        if self.raw:
            return self.raw
        return self.render()

    def render(self) -> str:
        """Serialize from the parts."""
        out = [self.scheme, ":"]
        if self.scheme in ("sip", "sips"):
            if self.user is not None:
                out.append(self.user)
                if self.password is not None:
                    out.append(":" + self.password)
                out.append("@")
            out.append(self.host)
            if self.port is not None:
                out.append(f":{self.port}")
        else:
            out.append((self.user or "") if self.scheme == "tel" else self.host)
        for name, value in self.params.items():
            out.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers:
            out.append("?" + self.headers)
        return "".join(out)


_SIP_FAST = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()&=+$,;?/#]+)(?::([A-Za-z0-9\-_.!~*'()&=+$,]*))?@)?"
    r"([A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?)(?::([0-9]{1,5}))?"
    r"((?:;[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+(?:=[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+)?)*)"
)
"""The common case in one expression: lower-case scheme, no escapes, no IPv6, no headers."""


def parse_uri(text: str) -> Uri:
    """Parse a URI (§19.1.1, RFC 3966); RemoteProtocolError(400) if malformed.

    Schemes other than sip, sips and tel are kept opaque (scheme and `host` = the rest):
    whether they are acceptable is the element's decision (416, RFC 4475 §3.3.2).
    """
    fast = _SIP_FAST.fullmatch(text)
    if fast is not None and (fast.group(5) is None or int(fast.group(5)) <= 65535):
        scheme, user, password, host, port, params = fast.groups()
        return Uri(
            scheme, user, password, host, None if port is None else int(port),
            _fast_params(params) if params else {}, None, text,
        )  # fmt: skip
    return _parse_uri_slowly(text)


def _fast_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        params[name.lower()] = value if eq else None
    return params


def _parse_uri_slowly(text: str) -> Uri:
    match = _SCHEME.match(text)
    if match is None:
        raise RemoteProtocolError(f"malformed URI {text[:80]!r}")
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number or _OPAQUE.fullmatch(number) is None or _BAD_ESCAPE.search(rest):
            raise RemoteProtocolError(f"malformed tel URI {text[:80]!r}")
        return Uri(scheme, user=number, params=_params(params, text), raw=text)
    if _OPAQUE.fullmatch(rest) is None or any(c in rest for c in '<>"'):
        raise RemoteProtocolError(f"malformed URI {text[:80]!r}")
    return Uri(scheme, host=rest, raw=text)


def _parse_sip(scheme: str, rest: str, raw: str) -> Uri:
    # '@' cannot appear unescaped after the userinfo (hostport, params and headers
    # exclude it), so the last '@' ends the userinfo even when the user part holds
    # ';', '?' or ',' (RFC 3261 §25.1 user-unreserved; RFC 4475 §3.1.1.2, §3.1.1.9).
    if "%" in rest and _BAD_ESCAPE.search(rest) is not None:
        raise RemoteProtocolError(f"malformed escape in URI {raw[:80]!r}")
    userinfo, at, tail = rest.rpartition("@")
    user, password = _split_userinfo(userinfo, raw) if at else (None, None)
    tail, question, headers = tail.partition("?")
    if question and _HEADERS.fullmatch(headers) is None:
        raise RemoteProtocolError(f"malformed URI headers in {raw[:80]!r}")
    hostport, _, params = tail.partition(";")
    host, port = split_host_port(hostport, raw)
    return Uri(scheme, user, password, host, port, _params(params, raw), headers or None, raw)


def _split_userinfo(userinfo: str, raw: str) -> tuple[str, str | None]:
    user, colon, password = userinfo.partition(":")
    if _USER.fullmatch(user) is None or (colon and _PASSWORD.fullmatch(password) is None):
        raise RemoteProtocolError(f"malformed user part in URI {raw[:80]!r}")
    return user, password if colon else None


def split_host_port(hostport: str, context: str) -> tuple[str, int | None]:
    """Split `host[:port]`, validating the host (name, IPv4 or [IPv6], RFC 5118 §4)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, tail = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or _IPV6_REF.fullmatch(host) is None or not _valid_ipv6(host[1:-1]):
            raise RemoteProtocolError(f"malformed IPv6 reference in {context[:80]!r}")
    else:
        host, colon, port_text = hostport.partition(":")
        tail = ":" + port_text if colon else ""
        if _HOSTNAME.fullmatch(host) is None:
            raise RemoteProtocolError(f"malformed host in {context[:80]!r}")
    if not tail:
        return host, None
    if tail[0] != ":" or _PORT.fullmatch(tail, 1) is None or int(tail[1:]) > 65535:
        raise RemoteProtocolError(f"malformed port in {context[:80]!r}")
    return host, int(tail[1:])


def _valid_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _params(text: str, raw: str) -> dict[str, str | None]:
    """uri-parameters (§19.1.1): names are case-insensitive, values kept as written."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if _PARAM.fullmatch(name) is None or (eq and _PARAM.fullmatch(value) is None):
            raise RemoteProtocolError(f"malformed URI parameter in {raw[:80]!r}")
        params[name.lower()] = value if eq else None
    return params
