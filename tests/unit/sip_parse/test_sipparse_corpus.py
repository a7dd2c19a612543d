"""Every RFC 4475 and RFC 5118 torture message gets the verdict its INDEX.md gives.

`VALID` messages parse, validate and round-trip: serialize(parse(x)) reparses to an
equal message, and serializing again gives the same bytes. The others are refused by
parse_message or validate_* with the status the RFC expects (None: dropped).
"""

from __future__ import annotations

import re

import pytest
from sipparse_helpers import CORPUS, message_key, udp_payloads

from sip.errors import RemoteProtocolError
from sip.message import Message, Request, Response
from sip.parser import parse_message, validate_request, validate_response

VALID = "valid"

RFC4475: dict[str, object] = {
    # 3.1.1 valid messages
    "wsinv": VALID,
    "intmeth": VALID,
    "esc01": VALID,
    "escnull": VALID,
    "esc02": VALID,
    "lwsdisp": VALID,
    "longreq": VALID,
    "dblreq": VALID,
    "semiuri": VALID,
    "transports": VALID,
    "mpart01": VALID,
    "unreason": VALID,
    "noreason": VALID,
    # 3.1.2 invalid messages
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": None,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": VALID,  # "may reject"; we accept and never write the extra SP
    "trws": VALID,  # "may reject"; likewise
    "escruri": 400,
    "baddate": VALID,  # the Date value does not matter to us: ignored
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 501,
    "bigcode": None,
    # 3.2 transaction layer: syntax is fine, the transaction layer falls back to §17.2.3
    "badbranch": VALID,
    # 3.3 application layer: syntax valid, except where the parser must refuse
    "insuf": 400,
    "unkscm": 416,
    "novelsc": 416,
    "unksm2": VALID,  # the registrar answers 400 (non-SIP AOR), not the parser
    "bext01": VALID,  # 420 is the endpoint's
    "invut": VALID,  # 415 is the endpoint's
    "regaut01": VALID,  # 401 is the registrar's
    "multi01": 400,
    "mcl01": 400,
    "bcast": VALID,
    "zeromf": VALID,  # 483 is a proxy's; an endpoint processes it
    "cparam01": VALID,
    "cparam02": VALID,
    "regescrt": VALID,
    "sdp01": VALID,  # 406 is the endpoint's
    "inv2543": VALID,
    "test": 400,  # stray file: no SIP version on the request line
}

RFC5118: dict[str, object] = {
    "ipv6-good": VALID,
    "ipv6-bad": 400,
    "port-ambiguous": VALID,
    "port-unambiguous": VALID,
    "via-received-param-with-delim": VALID,
    "via-received-param-no-delim": VALID,
    "ipv6-in-sdp": VALID,
    "mult-ip-in-header": VALID,
    "mult-ip-in-sdp": VALID,
    "ipv4-mapped-ipv6": VALID,
    "ipv6-bug-abnf-3-colons": 400,  # "rejecting is also defensible": not an IPv6 address
    "ipv6-correct-abnf-2-colons": VALID,
}


def index_names(folder: str) -> set[str]:
    """The message names listed in the tables of a corpus INDEX.md."""
    text = (CORPUS / folder / "INDEX.md").read_text()
    return set(re.findall(r"^\| ([a-z0-9\-]+) \| (?:[0-9.]+|–) \|", text, re.M))


def test_tables_cover_each_index_and_each_file() -> None:
    assert index_names("rfc4475") == set(RFC4475)
    assert index_names("rfc5118") == set(RFC5118)
    assert {p.stem for p in (CORPUS / "rfc4475").glob("*.dat")} == set(RFC4475)
    assert {p.stem for p in (CORPUS / "rfc5118").glob("*.dat")} == set(RFC5118)


def rfc4475(name: str) -> bytes:
    return (CORPUS / "rfc4475" / f"{name}.dat").read_bytes()


def rfc5118(name: str) -> bytes:
    """Wire bytes: LF -> CRLF and a Content-Length that counts the body (see INDEX.md)."""
    data = (CORPUS / "rfc5118" / f"{name}.dat").read_bytes().replace(b"\n", b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return data
    head = re.sub(rb"(?m)^Content-Length: *\d+", b"Content-Length: %d" % len(body), head)
    return head + sep + body


def verdict(data: bytes) -> tuple[object, Message | None]:
    """VALID and the message, or the refusal's status_hint."""
    try:
        message = parse_message(data)
        if isinstance(message, Request):
            validate_request(message)
        else:
            validate_response(message)
    except RemoteProtocolError as error:
        return error.status_hint, None
    return VALID, message


def assert_round_trip(message: Message) -> None:
    wire = message.to_bytes()
    again = parse_message(wire)
    assert message_key(again) == message_key(message)
    assert again.headers.get("content-length") == str(len(message.body))
    assert again.to_bytes() == wire


@pytest.mark.parametrize("name", sorted(RFC4475))
def test_rfc4475_verdict(name: str) -> None:
    got, message = verdict(rfc4475(name))
    assert got == RFC4475[name]
    if message is not None:
        assert_round_trip(message)


@pytest.mark.parametrize("name", sorted(RFC5118))
def test_rfc5118_verdict(name: str) -> None:
    got, message = verdict(rfc5118(name))
    assert got == RFC5118[name]
    if message is not None:
        assert_round_trip(message)


@pytest.mark.parametrize(
    "name",
    [n for n, v in RFC5118.items() if v == VALID and n not in ("ipv6-in-sdp", "mult-ip-in-sdp")],
)
def test_rfc5118_as_shipped_with_bare_lf(name: str) -> None:
    """The archive's bare-LF lines are tolerated where its Content-Length is right."""
    got, _ = verdict((CORPUS / "rfc5118" / f"{name}.dat").read_bytes())
    assert got == VALID


def test_pcap_every_sip_datagram_parses_and_validates() -> None:
    payloads = udp_payloads(CORPUS / "pcap" / "ndpi_sip.pcap")
    sip = [p for p in payloads if re.match(rb"[A-Z]+ sip:|SIP/2\.0 ", p)]
    assert len(sip) == 81  # tshark: 69 SIP + 12 SIP/SDP frames
    for payload in sip:
        got, message = verdict(payload)
        assert got == VALID, payload[:80]
        assert message is not None
        assert_round_trip(message)


def test_pcap_other_datagrams_are_dropped_not_crashing() -> None:
    payloads = udp_payloads(CORPUS / "pcap" / "ndpi_sip.pcap")
    others = [p for p in payloads if not re.match(rb"[A-Z]+ sip:|SIP/2\.0 ", p)]
    assert others  # keep-alives of five spaces, RTP and RTCP
    for payload in others:
        with pytest.raises(RemoteProtocolError) as info:
            parse_message(payload)
        assert info.value.status_hint is None


def test_pcap_digest_exchange_reads_like_the_wire() -> None:
    payloads = udp_payloads(CORPUS / "pcap" / "ndpi_sip.pcap")
    challenge = next(parse_message(p) for p in payloads if p.startswith(b"SIP/2.0 401"))
    assert isinstance(challenge, Response)
    assert challenge.reason == "Unauthorized"
    assert 'realm="sip.cybercity.dk"' in (challenge.headers.get("www-authenticate") or "")
