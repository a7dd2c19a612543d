"""Unseen malformed input never raises anything but RemoteProtocolError (RFC 3261 §18.3).

Every input goes through what the endpoint does with a datagram: parse, validate,
read every typed view, serialize. A message that validates must also round-trip.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sipparse_helpers import CORPUS, message_key

from sip import header_fields as message_module
from sip import parser as parser_module
from sip.errors import RemoteProtocolError
from sip.message import Request, Response, make_response
from sip.parser import MAX_HEADERS, parse_message, validate_request, validate_response

INVITE = (
    b"INVITE sip:0461123456@pbx.example.it;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK1;received=192.0.2.9\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Mario \\"M\\" Rossi" <sip:333%20123@trunk.example.it>;tag=1928301774\r\n'
    b"To: <sip:0461123456@pbx.example.it;user=phone>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.it\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:3331234567@192.0.2.5:5060>;expires=60;q=0.5, sip:b@192.0.2.6\r\n"
    b"Route: <sip:p1.example.it;lr>, <sip:p2.example.it;lr>\r\n"
    b'Authorization: Digest username="1001", realm="x", nonce="n", response="r"\r\n'
    b"Expires: 120\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 29\r\n\r\n"
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\n"
)

VALID_SAMPLES = [
    INVITE,
    *(
        (CORPUS / "rfc4475" / f"{name}.dat").read_bytes()
        for name in ("wsinv", "intmeth", "esc01", "longreq", "mpart01", "unreason", "bcast")
    ),
]


def exercise(data: bytes) -> None:
    """What an endpoint does with a datagram; only RemoteProtocolError may escape."""
    try:
        message = parse_message(data)
        if isinstance(message, Request):
            validate_request(message)
        else:
            validate_response(message)
    except RemoteProtocolError:
        return
    views = (message.top_via, message.vias, message.cseq, message.call_id, message.from_)
    assert views
    assert (message.to, message.contacts, message.routes, message.max_forwards) is not None
    wire = message.to_bytes()
    again = parse_message(wire)
    assert message_key(again) == message_key(message)
    if isinstance(message, Request):
        assert isinstance(again, Request)
        validate_request(again)
        assert make_response(message, 400, to_tag="x").to_bytes()
    else:
        assert isinstance(again, Response)
        validate_response(again)


def test_the_fuzz_seed_itself_validates() -> None:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    validate_request(message)


@pytest.mark.parametrize("sample", range(len(VALID_SAMPLES)))
def test_truncated_at_every_byte(sample: int) -> None:
    data = VALID_SAMPLES[sample]
    for end in range(len(data) + 1):
        exercise(data[:end])


@given(st.binary(max_size=2048))
def test_random_binary(data: bytes) -> None:
    exercise(data)


_PIECES = st.sampled_from(
    [
        "INVITE ", "SIP/2.0", " ", "\r\n", "\n", "\r", "\t", ":", ";", ",", "<", ">", '"', "\\",
        "sip:", "sips:", "tel:", "@", "[", "]", "::", "%", "%4", "=", "?", "Via", "v", "From",
        "To", "Call-ID", "CSeq", "Contact", "m", "Content-Length", "l", "Max-Forwards",
        "Route", "Expires", "1", "0", "65536", "99999999999", "-1", "z9hG4bK", "tag", "rport",
        "received", "expires", "*", "\x00", "é", "\udcff", "UDP", "/", "2001:db8::1",
    ]
)  # fmt: skip


@given(st.lists(_PIECES, max_size=120))
def test_random_sip_like_text(pieces: list[str]) -> None:
    exercise("".join(pieces).encode("utf-8", "surrogateescape"))


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(
    st.sampled_from(range(len(VALID_SAMPLES))),
    st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 8), st.binary(max_size=6)), max_size=6),
)
def test_mutated_valid_messages(sample: int, edits: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(VALID_SAMPLES[sample])
    for offset, cut, insert in edits:
        at = offset % (len(data) + 1)
        data[at : at + cut] = insert
    exercise(bytes(data))


@given(st.lists(_PIECES, max_size=40), st.sampled_from(["Via", "From", "To", "Contact", "CSeq"]))
def test_random_values_of_key_headers(pieces: list[str], name: str) -> None:
    value = "".join(pieces).replace("\r", "").replace("\n", "")
    exercise(
        INVITE.replace(
            b"\r\nCSeq:", f"\r\n{name}: {value}\r\nCSeq:".encode("utf-8", "surrogateescape"), 1
        )
    )


def test_64k_datagrams() -> None:
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    data = INVITE.replace(b"Expires: 120\r\n", filler * 63)
    assert 64_000 < len(data) < 65_536
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)
    exercise(b"\xff" * 65_507)
    exercise(b"INVITE sip:a@b SIP/2.0\r\nVia: " + b"x" * 65_000 + b"\r\n\r\n")
    exercise(b"\r\n" * 32_000)


def test_thousands_of_headers_get_513() -> None:
    data = INVITE.replace(b"Expires: 120\r\n", b"X-A: 1\r\n" * 5000)
    message = parse_message(data)
    assert isinstance(message, Request)
    with pytest.raises(RemoteProtocolError) as info:
        validate_request(message)
    assert info.value.status_hint == 513
    assert make_response(message, 513).status == 513


def test_header_count_limit_is_exact() -> None:
    base = len(parse_message(INVITE).headers)
    at_limit = INVITE.replace(b"Expires: 120\r\n", b"X-A: 1\r\n" * (MAX_HEADERS - base + 1))
    message = parse_message(at_limit)
    assert isinstance(message, Request)
    validate_request(message)
    over = INVITE.replace(b"Expires: 120\r\n", b"X-A: 1\r\n" * (MAX_HEADERS - base + 2))
    refused = parse_message(over)
    assert isinstance(refused, Request)
    with pytest.raises(RemoteProtocolError) as info:
        validate_request(refused)
    assert info.value.status_hint == 513


def test_thousands_of_list_elements_and_vias() -> None:
    many_vias = b"Via: " + b", ".join(
        [b"SIP/2.0/UDP h.example;branch=z9hG4bK%d" % i for i in range(3000)]
    )
    data = re.sub(rb"Via: [^\r]*\r\n", b"", INVITE).replace(
        b"Max-Forwards", many_vias + b"\r\nMax-Forwards", 1
    )
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)
    assert len(message.vias) == 3000
    assert message.top_via.branch == "z9hG4bK0"


def test_a_flood_of_new_header_names_leaves_the_name_caches_bounded() -> None:
    for batch in range(3):
        names = b"".join(b"X-Flood-%d-%d: 1\r\n" % (batch, i) for i in range(3000))
        parse_message(INVITE.replace(b"Expires: 120\r\n", names))
    assert len(parser_module._FIELD_NAMES) <= parser_module._FIELD_NAMES_LIMIT
    assert len(message_module._CANONICAL) <= message_module._CANONICAL_LIMIT
    message = parse_message(INVITE.replace(b"Call-ID:", b"cALL-iD:"))
    assert message.call_id == "a84b4c76e66710@pc33.example.it"
    assert message.headers.get("X-FLOOD-0-1") is None
