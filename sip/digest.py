"""Digest computation and the client's answer (RFC 3261 §22, RFC 7616, RFC 8760).

The hashes of RFC 7616 §3.4 (H, H(A1), the response KD) for MD5, SHA-256 and
SHA-512-256 (RFC 8760 §2), and the client side: picking a challenge we can answer and
writing the Authorization value. The server side (nonces, nc replay, verification) is
sip.authenticator.

Passwords and H(A1) never leave the few functions that hash them: they are not logged,
and no exception message carries them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sip.errors import ProtocolError, RemoteProtocolError
from sip.headers import format_auth_params, parse_auth_params

# RFC 7616 §6.1 / RFC 8760 §2: algorithm token -> hashlib name.
HASHES: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
_CREDENTIAL_TOKENS = frozenset({"algorithm", "qop", "nc"})


class DigestError(ProtocolError):
    """A challenge we cannot answer, or a bad argument to the authenticator."""


def hash_hex(algorithm: str, text: str) -> str:
    """H(data) of RFC 7616 §3.4: the lower-case hex digest of the UTF-8 text."""
    return hashlib.new(HASHES[algorithm], wire_bytes(text)).hexdigest()


def wire_bytes(text: str) -> bytes:
    """The bytes a header text stood for on the wire, never raising."""
    # surrogateescape: header text was decoded that way, so this gives the wire bytes.
    # Other lone surrogates cannot come off the wire; encoding them must not raise (the
    # error would carry the whole text, password included), so they pass through.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def hash_password(username: str, realm: str, password: str, algorithm: str) -> str:
    """H(A1) = H(username:realm:password) (RFC 7616 §3.4.2), for storing at rest."""
    return hash_hex(algorithm, f"{username}:{realm}:{password}")


def digest_response(
    algorithm: str, ha1: str, *, nonce: str, method: str, uri: str, qop_fields: str | None
) -> str:
    """KD(H(A1), nonce:nc:cnonce:qop:H(A2)) (RFC 7616 §3.4.1), or the RFC 2069 form."""
    ha2 = hash_hex(algorithm, f"{method}:{uri}")
    middle = f"{nonce}:{qop_fields}" if qop_fields is not None else nonce
    return hash_hex(algorithm, f"{ha1}:{middle}:{ha2}")


def canonical_algorithm(name: str) -> str:
    """The registered spelling of an algorithm token (RFC 8760 §2); DigestError if unknown."""
    for known in HASHES:
        if known.upper() == name.upper():
            return known
    raise DigestError(f"unsupported digest algorithm {name!r}")


def pick_challenge(values: Sequence[str]) -> str | None:
    """The first Digest challenge with an algorithm we support (RFC 8760 §2.4)."""
    for raw in values:
        try:
            scheme, params = parse_auth_params(raw)
        except RemoteProtocolError:
            continue
        algorithm = params.get("algorithm", "MD5").upper()
        if scheme.lower() == "digest" and algorithm in {a.upper() for a in HASHES}:
            return raw
    return None


def answer_challenge(
    challenge_header: str,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    cnonce: str,
    nc: int,
) -> str:
    """The Authorization value answering a Digest challenge (RFC 7616 §3.4, client).

    Uses qop=auth when offered and the RFC 2069 form when no qop is; DigestError for a
    challenge we cannot answer (another scheme, an unknown algorithm, only auth-int).
    """
    challenge, algorithm, with_qop = _read_challenge(challenge_header)
    nc_text = f"{nc:08x}"
    qop_fields = f"{nc_text}:{cnonce}:auth" if with_qop else None
    ha1 = hash_password(username, challenge["realm"], password, algorithm)
    response = digest_response(
        algorithm, ha1, nonce=challenge["nonce"], method=method, uri=uri, qop_fields=qop_fields
    )
    params = {"username": username, "realm": challenge["realm"], "nonce": challenge["nonce"]}
    params |= {"uri": uri, "response": response, "algorithm": algorithm}
    if "opaque" in challenge:
        params["opaque"] = challenge["opaque"]
    if with_qop:
        params |= {"qop": "auth", "nc": nc_text, "cnonce": cnonce}
    return format_auth_params("Digest", params, tokens=_CREDENTIAL_TOKENS)


def _read_challenge(header: str) -> tuple[dict[str, str], str, bool]:
    # The challenge's parameters, its algorithm, and whether it asks for qop=auth.
    try:
        scheme, challenge = parse_auth_params(header)
    except RemoteProtocolError as exc:
        raise DigestError(f"malformed challenge: {exc.reason}") from None
    if scheme.lower() != "digest" or "nonce" not in challenge or "realm" not in challenge:
        raise DigestError("not a Digest challenge with realm and nonce")
    algorithm = canonical_algorithm(challenge.get("algorithm", "MD5"))
    qops = [q.strip().lower() for q in challenge.get("qop", "").split(",") if q.strip()]
    if qops and "auth" not in qops:
        raise DigestError("challenge offers no qop=auth")
    return challenge, algorithm, bool(qops)
