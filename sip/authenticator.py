"""Server-side Digest authentication for one realm (RFC 3261 §22.4, RFC 7616, RFC 8760).

The server challenges with one WWW-Authenticate (or Proxy-Authenticate) field per
algorithm, most preferred first (RFC 8760 §2.4), always with qop="auth". Nonces are
stateless: the issue instant and a serial number, sealed with an HMAC of a secret the
runtime injects, so any nonce we issued can be checked and aged without a table. Only
the nonce-count (RFC 7616 §3.4: the server "should check that the nc value is greater
than" the last one it saw for the nonce) needs state, kept in a bounded table.

Passwords and H(A1) are hashed only in sip.digest: they are not logged, not kept in
attributes shown by a repr, and no exception message carries them.
"""

from __future__ import annotations

import base64
import hmac
import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sip.digest import (
    HASHES,
    DigestError,
    canonical_algorithm,
    digest_response,
    hash_password,
    wire_bytes,
)
from sip.errors import RemoteProtocolError
from sip.headers import format_auth_params, parse_auth_params
from sip.message import Request, Response, make_response
from sip.uri import Uri, parse_uri

logger = logging.getLogger(__name__)

_CHALLENGE_TOKENS = frozenset({"algorithm", "stale"})


class AuthFailure(StrEnum):
    """Why a request's credentials were not accepted."""

    MISSING = "no credentials for our realm"
    MALFORMED = "malformed credentials"
    ALGORITHM = "algorithm not offered"
    QOP = "qop other than auth"
    OPAQUE = "opaque not ours"
    URI_MISMATCH = "digest uri differs from the Request-URI"
    BAD_NONCE = "nonce not issued by us"
    UNKNOWN_USER = "unknown user"
    BAD_RESPONSE = "wrong response"
    STALE = "nonce expired"
    REPLAY = "nonce count not increasing"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthResult:
    """The outcome of checking a request's credentials (RFC 3261 §22.4)."""

    username: str | None = None
    """The authenticated user, set only on success."""
    failure: AuthFailure | None = None
    claimed_username: str | None = None
    """The username the credentials named, whether or not they were right."""

    @property
    def ok(self) -> bool:
        """True when the credentials are valid."""
        return self.failure is None

    @property
    def stale(self) -> bool:
        """True when the next challenge must say stale=true (RFC 7616 §3.3)."""
        return self.failure is AuthFailure.STALE


@dataclass(frozen=True, slots=True)
class HashedPassword:
    """Stored H(A1) values (RFC 7616 §3.4.2), keyed by algorithm, instead of a password."""

    ha1: Mapping[str, str] = field(repr=False)

    def __repr__(self) -> str:
        return f"HashedPassword(algorithms={sorted(self.ha1)})"


Credential = str | HashedPassword
"""What the credentials callable returns: the password itself or its H(A1) values."""


class NonceCodec:
    """Stateless nonces: base64url(issued-ms, serial, HMAC-SHA-256(secret, realm, ...)[:16])."""

    __slots__ = ("_key",)

    _LAYOUT = struct.Struct(">qQ")
    _MAC_LEN = 16
    LENGTH = 43  # 32 bytes in unpadded base64

    def __init__(self, secret: bytes, realm: str) -> None:
        if len(secret) < 16:
            raise DigestError("the nonce secret must be at least 16 bytes")
        self._key = hmac.new(secret, b"nonce\0" + realm.encode("utf-8"), "sha256").digest()

    def __repr__(self) -> str:
        return "NonceCodec(<secret>)"

    def encode(self, issued_at: float, serial: int) -> str:
        """A nonce for the instant `issued_at` (seconds) with a unique serial."""
        payload = self._LAYOUT.pack(round(issued_at * 1000), serial)
        raw = payload + self._mac(payload)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def decode(self, nonce: str) -> tuple[float, int] | None:
        """(issued_at, serial) of a nonce we made, or None for anything else."""
        if len(nonce) != self.LENGTH or not nonce.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
        except ValueError:
            return None
        payload, mac = raw[: self._LAYOUT.size], raw[self._LAYOUT.size :]
        canonical = base64.urlsafe_b64encode(raw).rstrip(b"=") == nonce.encode("ascii")
        if not canonical or not hmac.compare_digest(mac, self._mac(payload)):
            return None
        millis, serial = self._LAYOUT.unpack(payload)
        return millis / 1000, serial

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, "sha256").digest()[: self._MAC_LEN]


class NonceCounts:
    """The highest nc seen per nonce serial, bounded (RFC 7616 §3.4 replay protection).

    When full, the least recently first-used serial is forgotten and every serial up to
    it is refused as stale from then on: the client just gets a fresh nonce, and a
    forgotten nonce can never be replayed.
    """

    __slots__ = ("_capacity", "_counts", "_floor")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._counts: dict[int, int] = {}
        self._floor = 0

    def forgotten(self, serial: int) -> bool:
        """True when the serial's history was dropped to bound memory."""
        return serial <= self._floor and serial not in self._counts

    def advance(self, serial: int, nc: int) -> bool:
        """Record `nc` for the serial if it is higher than any before; False otherwise."""
        if nc <= self._counts.get(serial, 0):
            return False
        self._counts[serial] = nc
        while len(self._counts) > self._capacity:
            oldest = next(iter(self._counts))
            del self._counts[oldest]
            self._floor = max(self._floor, oldest)
        return True


CredentialLookup = Callable[[str], Credential | None]


class DigestAuthenticator:
    """Server-side Digest: challenges and verification for one realm (RFC 3261 §22.4)."""

    __slots__ = (
        "_codec",
        "_counts",
        "_credentials",
        "_opaque",
        "_serial",
        "algorithms",
        "nonce_ttl",
        "realm",
    )

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        credentials: CredentialLookup,
        nonce_ttl: float = 300,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        max_tracked_nonces: int = 10_000,
    ) -> None:
        unknown = [a for a in algorithms if a not in HASHES]
        if unknown or not algorithms:
            raise DigestError(f"unsupported digest algorithms {unknown or 'none'}")
        self.realm = realm
        self.algorithms = tuple(algorithms)
        self.nonce_ttl = nonce_ttl
        self._credentials = credentials
        self._codec = NonceCodec(secret, realm)
        self._counts = NonceCounts(max_tracked_nonces)
        self._serial = 0
        opaque = hmac.new(secret, b"opaque\0" + realm.encode("utf-8"), "sha256").digest()
        self._opaque = base64.urlsafe_b64encode(opaque[:12]).decode("ascii")

    def __repr__(self) -> str:
        return f"DigestAuthenticator(realm={self.realm!r}, algorithms={self.algorithms})"

    # -- challenges -----------------------------------------------------------------

    def challenge_headers(
        self, *, now: float, stale: bool = False, proxy: bool = False
    ) -> list[tuple[str, str]]:
        """One challenge field per algorithm, preferred first (RFC 8760 §2.4)."""
        self._serial += 1
        nonce = self._codec.encode(now, self._serial)
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        return [(name, self._challenge_value(nonce, alg, stale)) for alg in self.algorithms]

    def _challenge_value(self, nonce: str, algorithm: str, stale: bool) -> str:
        params = {"realm": self.realm, "nonce": nonce, "opaque": self._opaque}
        params |= {"algorithm": algorithm, "qop": "auth"}
        if stale:
            params["stale"] = "true"
        return format_auth_params("Digest", params, tokens=_CHALLENGE_TOKENS)

    def challenge(
        self,
        request: Request,
        *,
        now: float,
        stale: bool = False,
        proxy: bool = False,
        to_tag: str | None = None,
    ) -> Response:
        """A 401 (or 407 where a proxy would challenge) for `request` (RFC 3261 §22.1-22.3)."""
        status = 407 if proxy else 401
        extra = tuple(self.challenge_headers(now=now, stale=stale, proxy=proxy))
        return make_response(request, status, to_tag=to_tag, extra=extra)

    # -- verification ---------------------------------------------------------------

    def verify(self, request: Request, *, now: float, proxy: bool = False) -> AuthResult:
        """Check the request's credentials for our realm (RFC 3261 §22.4, RFC 7616 §3.4)."""
        name = "proxy-authorization" if proxy else "authorization"
        params = _credentials_for_realm(request.headers.get_all(name), self.realm)
        if isinstance(params, AuthFailure):
            return AuthResult(failure=params)
        claimed = params.get("username")
        failure = self._check(request, params, now)
        if failure is not None:
            logger.debug("digest rejected for %r: %s", claimed, failure.value)
            return AuthResult(failure=failure, claimed_username=claimed)
        return AuthResult(username=claimed, claimed_username=claimed)

    def _check(self, request: Request, params: dict[str, str], now: float) -> AuthFailure | None:
        failure = self._check_fields(request, params)
        if failure is not None:
            return failure
        decoded = self._codec.decode(params["nonce"])
        if decoded is None or decoded[0] > now + 1.0:
            return AuthFailure.BAD_NONCE
        failure = self._check_response(request, params)
        if failure is not None:
            return failure
        issued_at, serial = decoded
        if now - issued_at > self.nonce_ttl or self._counts.forgotten(serial):
            return AuthFailure.STALE
        if not self._counts.advance(serial, int(params["nc"], 16)):
            return AuthFailure.REPLAY
        return None

    def _check_fields(self, request: Request, params: dict[str, str]) -> AuthFailure | None:
        required = ("username", "nonce", "uri", "response", "nc", "cnonce")
        if any(not params.get(p) for p in required) or "userhash" in params:
            return AuthFailure.MALFORMED
        if not _is_nc(params["nc"]):
            return AuthFailure.MALFORMED
        if params.get("algorithm", "MD5").upper() not in {a.upper() for a in self.algorithms}:
            return AuthFailure.ALGORITHM
        if params.get("qop", "").lower() != "auth":
            return AuthFailure.QOP
        if "opaque" in params and not _same(params["opaque"], self._opaque):
            return AuthFailure.OPAQUE
        if not uris_match(params["uri"], request.uri):
            return AuthFailure.URI_MISMATCH
        return None

    def _check_response(self, request: Request, params: dict[str, str]) -> AuthFailure | None:
        algorithm = canonical_algorithm(params.get("algorithm", "MD5"))
        ha1 = self._ha1(params["username"], algorithm)
        if isinstance(ha1, AuthFailure):
            return ha1
        # The hash covers nc, cnonce and qop exactly as the client wrote them.
        qop_fields = f"{params['nc']}:{params['cnonce']}:{params['qop']}"
        expected = digest_response(
            algorithm,
            ha1,
            nonce=params["nonce"],
            method=request.method,
            uri=params["uri"],
            qop_fields=qop_fields,
        )
        if not _same(params["response"].lower(), expected):
            return AuthFailure.BAD_RESPONSE
        return None

    def _ha1(self, username: str, algorithm: str) -> str | AuthFailure:
        credential = self._credentials(username)
        if credential is None:
            return AuthFailure.UNKNOWN_USER
        if isinstance(credential, HashedPassword):
            return credential.ha1.get(algorithm, AuthFailure.ALGORITHM)
        return hash_password(username, self.realm, credential, algorithm)


def _credentials_for_realm(values: list[str], realm: str) -> dict[str, str] | AuthFailure:
    # §22.4: with several credentials, the server uses the ones for its own realm.
    if not values:
        return AuthFailure.MISSING
    for raw in values:
        try:
            scheme, params = parse_auth_params(raw)
        except RemoteProtocolError:
            return AuthFailure.MALFORMED
        if scheme.lower() == "digest" and params.get("realm") == realm:
            return params
    return AuthFailure.MISSING


def _same(given: str, expected: str) -> bool:
    # Constant time, and safe for peer text that is not ASCII.
    return hmac.compare_digest(wire_bytes(given), expected.encode())


def _is_nc(text: str) -> bool:
    # RFC 7616 §3.4: nc is exactly 8 hex digits.
    return len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text)


def uris_match(digest_uri: str, request_uri: str) -> bool:
    """Whether the digest-uri names the Request-URI (RFC 3261 §22.4 step 'request-uri').

    Compared as SIP URIs (§19.1.4): scheme, user, host case-insensitively and port, with
    the default port filled in, since some clients (SIPp) always write it.
    """
    if digest_uri == request_uri:
        return True
    try:
        return _uri_key(parse_uri(digest_uri)) == _uri_key(parse_uri(request_uri))
    except RemoteProtocolError:
        return False


def _uri_key(uri: Uri) -> tuple[str, str | None, str, int | None]:
    default = {"sip": 5060, "sips": 5061}.get(uri.scheme)
    return uri.scheme, uri.user, uri.host.lower(), uri.port or default
