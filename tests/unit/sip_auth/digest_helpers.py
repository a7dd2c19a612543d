"""Shared builders for the Digest tests: requests, an authenticator, SIPp-style answers."""

from __future__ import annotations

import hashlib

from sip.authenticator import DigestAuthenticator
from sip.header_fields import Headers
from sip.headers import parse_auth_params
from sip.message import Request, Response

REALM = "centralino"
SECRET = b"0123456789abcdef0123456789abcdef"
PASSWORDS = {"1001": "demo1001", "1002": "demo1002"}
REQUEST_URI = "sip:127.0.0.1:5060"


def authenticator(**kwargs: object) -> DigestAuthenticator:
    return DigestAuthenticator(REALM, SECRET, credentials=PASSWORDS.get, **kwargs)  # type: ignore[arg-type]


def register(uri: str = REQUEST_URI, *, authorization: str | None = None) -> Request:
    headers = Headers.of(
        ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1"),
        ("From", "<sip:1001@127.0.0.1>;tag=f1"),
        ("To", "<sip:1001@127.0.0.1>"),
        ("Call-ID", "reg-1@127.0.0.1"),
        ("CSeq", "2 REGISTER"),
        ("Contact", "<sip:1001@127.0.0.1:5070>"),
    )
    if authorization is not None:
        headers.add("Authorization", authorization)
    return Request("REGISTER", uri, headers)


def challenges(response: Response, name: str = "www-authenticate") -> dict[str, dict[str, str]]:
    """The challenge parameters by algorithm."""
    out: dict[str, dict[str, str]] = {}
    for raw in response.headers.get_all(name):
        scheme, params = parse_auth_params(raw)
        assert scheme == "Digest"
        out[params["algorithm"]] = params
    return out


def h(algorithm: str, text: str) -> str:
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]
    return hashlib.new(name, text.encode()).hexdigest()


def sipp_authorization(
    challenge: dict[str, str],
    *,
    user: str = "1001",
    password: str = "demo1001",
    method: str = "REGISTER",
    uri: str = REQUEST_URI,
    nc: str = "00000001",
    cnonce: str = "6b8b4567",
    algorithm: str | None = "MD5",
    with_opaque: bool = False,
) -> str:
    """An Authorization written the way SIPp 3.6 writes it (no spaces, MD5 named).

    The response is computed here with hashlib from RFC 7616 §3.4.1 directly, so the
    server is checked against an independent computation, not against our client.
    """
    alg = algorithm or "MD5"
    ha1 = h(alg, f"{user}:{challenge['realm']}:{password}")
    ha2 = h(alg, f"{method}:{uri}")
    response = h(alg, f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    parts = [
        f'Digest username="{user}"',
        f'realm="{challenge["realm"]}"',
        f'cnonce="{cnonce}"',
        f"nc={nc}",
        "qop=auth",
        f'uri="{uri}"',
        f'nonce="{challenge["nonce"]}"',
        f'response="{response}"',
    ]
    if algorithm is not None:
        parts.append(f"algorithm={algorithm}")
    if with_opaque:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return ",".join(parts)
