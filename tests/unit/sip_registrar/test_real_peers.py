"""REGISTERs captured from SIPp 3.6.1 and baresip 1.0.0, replayed through parser and registrar."""

from __future__ import annotations

import pytest
from peer_captures import BARESIP, SIPP
from registrar_helpers import PASSWORDS, contact_expires, drain

from sip.authenticator import DigestAuthenticator
from sip.location import ContactRegistered
from sip.message import Request
from sip.parser import parse_message, validate_request
from sip.registrar import Registrar

CAPTURE_SECRET = b"x" * 32  # the secret the capture's registrar ran with


def registrar() -> Registrar:
    auth = DigestAuthenticator(
        "centralino", CAPTURE_SECRET, credentials=PASSWORDS.get, algorithms=("MD5",)
    )
    return Registrar(auth)


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)
    return message


@pytest.mark.parametrize(
    ("capture", "source", "user", "contact"),
    [
        (SIPP, ("127.0.0.1", 15199), "1001", "sip:1001@127.0.0.1:15199"),
        (BARESIP, ("127.0.0.1", 15062), "1002", "sip:1002-0x55f257d62400@127.0.0.1:15062"),
    ],
    ids=["sipp", "baresip"],
)
def test_captured_registration(
    capture: list[tuple[bytes, float]], source: tuple[str, int], user: str, contact: str
) -> None:
    reg = registrar()
    (first, first_at), (second, second_at) = capture
    challenge = reg.handle_register(request(first), source, now=first_at)
    assert challenge.status == 401
    ok = reg.handle_register(request(second), source, now=second_at)
    assert ok.status == 200
    assert contact_expires(ok) == {contact: 60}
    (binding,) = reg.lookup(user)
    assert binding.source == source and binding.target == source
    assert [type(e) for e in drain(reg)] == [ContactRegistered]
    # The same datagram again (a replay, not a retransmission the transaction absorbs).
    assert reg.handle_register(request(second), source, now=second_at + 1).status == 401
    # And long after, the nonce is stale even for a fresh registrar.
    late = registrar().handle_register(request(second), source, now=second_at + 301)
    assert late.status == 401 and "stale=true" in (late.headers.get("WWW-Authenticate") or "")


def test_captured_credentials_fail_with_another_password() -> None:
    auth = DigestAuthenticator(
        "centralino", CAPTURE_SECRET, credentials={"1001": "other"}.get, algorithms=("MD5",)
    )
    data, at = SIPP[1]
    assert (
        Registrar(auth).handle_register(request(data), ("127.0.0.1", 15199), now=at).status == 401
    )
