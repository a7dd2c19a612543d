"""Bearer-token authentication of the HTTP API (RFC 6750, RFC 9110 §11).

One ASGI middleware in front of every route, so that no router can forget it: when a
token is configured, a request must carry `Authorization: Bearer <token>` or gets 401
with a `WWW-Authenticate: Bearer` challenge and a `{"detail": ...}` body, the shape of
every other API error. The check runs before routing and before the body is read, so an
unauthenticated client learns nothing from 404s or 422s. Only `/healthz` and `/metrics`
stay open (read-only, no secrets); a token sent there is accepted and not checked, so a
Prometheus job configured with the token works either way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["OPEN_PATHS", "BearerAuth", "check_bearer"]

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/metrics"})
REALM = "centralino"


def check_bearer(authorization: bytes | None, expected: bytes) -> str | None:
    """None when `authorization` carries the expected token, else the RFC 6750 §3.1
    error code: "" for no bearer credentials at all (no code: the client may not know
    authentication is needed), "invalid_token" for a wrong one."""
    scheme, _, credentials = (authorization or b"").strip().partition(b" ")
    # RFC 9110 §11.1: the scheme is case-insensitive.
    if scheme.lower() != b"bearer" or not credentials.strip():
        return ""
    # Digests of equal length: compare_digest then reveals not even the token's length.
    presented = hashlib.sha256(credentials.strip()).digest()
    if hmac.compare_digest(presented, hashlib.sha256(expected).digest()):
        return None
    return "invalid_token"


class BearerAuth:
    """ASGI middleware: every HTTP request outside `OPEN_PATHS` needs the token."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self._app = app
        self._expected = token.encode("ascii")

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        error = check_bearer(_header(scope, b"authorization"), self._expected)
        if error is None:
            await self._app(scope, receive, send)
        elif scope["type"] == "websocket":
            # Closing before accepting refuses the handshake (ASGI spec: HTTP 403).
            await send({"type": "websocket.close", "code": 1008})
        else:
            log.debug("401 for %s %s from %s", scope["method"], scope["path"], scope["client"])
            await _unauthorized(send, error)


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first header called `name` (ASGI header names are lower-case)."""
    return next((value for key, value in scope["headers"] if key == name), None)


async def _unauthorized(send: Send, error: str) -> None:
    """401 with the RFC 6750 §3 challenge and the API's error body."""
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    detail = "invalid bearer token" if error else "authentication required: Bearer token"
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", challenge.encode()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
