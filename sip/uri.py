"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), with IPv6 references (RFC 5118)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from sip.errors import RemoteProtocolError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


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

    def __str__(self) -> str:
        if self.raw:
            return self.raw
        return self.render()

    def render(self) -> str:
        """Serialize from the parts."""
        out = [self.scheme, ":"]
        if self.scheme == "tel":
            out.append(self.user or "")
        else:
            if self.user is not None:
                out.append(self.user)
                if self.password is not None:
                    out.append(":" + self.password)
                out.append("@")
            out.append(self.host)
            if self.port is not None:
                out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers:
            out.append("?" + self.headers)
        return "".join(out)


def parse_uri(text: str) -> Uri:
    """Parse a URI; RemoteProtocolError (400, or 416 for an unknown scheme) if malformed."""
    match = _SCHEME.match(text)
    if match is None or any(c in text for c in " \t\r\n<>"):
        raise RemoteProtocolError(f"malformed URI {text!r}")
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        return Uri(scheme, user=number, params=_params(params), raw=text)
    return Uri(scheme, host=rest, raw=text)


def _parse_sip(scheme: str, rest: str, raw: str) -> Uri:
    rest, _, headers = rest.partition("?")
    userinfo, at, hostpart = rest.rpartition("@")
    user: str | None = None
    password: str | None = None
    if at:
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        if not user:
            raise RemoteProtocolError(f"empty user part in URI {raw!r}")
    hostport, _, params = hostpart.partition(";")
    host, port = split_host_port(hostport, raw)
    return Uri(scheme, user, password, host, port, _params(params), headers or None, raw)


_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?$")
_IPV6_REF = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")


def split_host_port(hostport: str, context: str) -> tuple[str, int | None]:
    """Split `host[:port]`, validating the host (name, IPv4 or [IPv6], RFC 5118)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        host, tail = hostport[: end + 1], hostport[end + 1 :]
        if end < 0 or not _IPV6_REF.match(host) or not _valid_ipv6(host[1:-1]):
            raise RemoteProtocolError(f"malformed IPv6 reference in {context!r}")
    else:
        host, colon, port_text = hostport.partition(":")
        tail = ":" + port_text if colon else ""
        if not host or not _HOSTNAME.match(host):
            raise RemoteProtocolError(f"malformed host in {context!r}")
    if not tail:
        return host, None
    if not tail.startswith(":") or not tail[1:].isdigit() or int(tail[1:]) > 65535:
        raise RemoteProtocolError(f"malformed port in {context!r}")
    return host, int(tail[1:])


def _valid_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in text.split(";"):
        if not item:
            raise RemoteProtocolError("empty URI parameter")
        name, eq, value = item.partition("=")
        params[name.lower()] = value if eq else None
    return params
