"""RFC 3261 details of the message model, header views and URIs (§7, §19, §20, §25)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sipparse_helpers import CORPUS

from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.header_fields import Headers
from sip.headers import (
    DEFAULT_EXPIRES,
    Address,
    Via,
    _parse_name_addr_slowly,
    _parse_via_slowly,
    parse_address,
    parse_cseq,
    parse_params,
    parse_via,
    split_values,
)
from sip.message import Request, Response, make_response
from sip.parser import parse_message, validate_request
from sip.uri import Uri, _parse_uri_slowly, parse_uri


def corpus(name: str) -> Request:
    message = parse_message((CORPUS / "rfc4475" / f"{name}.dat").read_bytes())
    assert isinstance(message, Request)
    return message


def request(*lines: str, body: bytes = b"") -> bytes:
    head = "\r\n".join(("OPTIONS sip:a@example.com SIP/2.0", *lines))
    return head.encode() + b"\r\n\r\n" + body


BASIC = (
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
    "From: <sip:b@example.com>;tag=1",
    "To: <sip:a@example.com>",
    "Call-ID: c1",
    "CSeq: 1 OPTIONS",
)


def reason(data: bytes) -> tuple[int | None, str]:
    message = parse_message(data)
    assert isinstance(message, Request)
    with pytest.raises(RemoteProtocolError) as info:
        validate_request(message)
    return info.value.status_hint, info.value.reason


# -- folding, compact forms, whitespace (wsinv, §7.3.1) --------------------------------


def test_wsinv_folding_and_lws_everywhere() -> None:
    message = corpus("wsinv")
    validate_request(message)
    assert message.to.tag == "1918181833n"
    assert message.from_.display_unescaped == 'J Rosenberg \\"'
    assert message.from_.tag == "98asjd8"
    assert (message.cseq.seq, message.cseq.method) == (9, "INVITE")
    assert message.max_forwards == 68
    assert [(v.transport, v.host, v.branch) for v in message.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert message.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert message.headers.get("subject") == ""
    assert message.headers.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    contact = message.contacts[0]
    assert contact.display_unescaped == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert contact.q == 0.33
    assert message.routes[0].uri.params["unknownwith"] == "value"


def test_compact_forms_are_the_same_fields() -> None:
    data = request(
        "v: SIP/2.0/UDP h;branch=z9hG4bK1",
        "f: <sip:b@example.com>;tag=1",
        "t: sip:a@example.com",
        "i: c1",
        "CSeq: 1 OPTIONS",
        "m: <sip:b@192.0.2.1>",
        "k: timer, 100rel",
        "c: text/plain",
        "l: 2",
        body=b"hi",
    )
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)
    assert message.top_via.branch == "z9hG4bK1"
    assert message.call_id == "c1"
    assert message.option_tags("supported") == ["timer", "100rel"]
    assert message.headers.get("Content-Type") == "text/plain"
    assert message.body == b"hi"
    assert message.contacts[0].uri.host == "192.0.2.1"
    assert b"\r\nl: 2\r\n" in message.to_bytes()


def test_bare_lf_lines_and_a_missing_final_empty_line() -> None:
    data = request(*BASIC).replace(b"\r\n", b"\n")
    assert parse_message(data).call_id == "c1"
    unterminated = request(*BASIC).rstrip(b"\r\n") + b"\r\n"
    assert parse_message(unterminated).cseq.seq == 1


def test_leading_crlf_is_skipped_and_keepalives_dropped() -> None:
    assert parse_message(b"\r\n\r\n" + request(*BASIC)).call_id == "c1"
    for keepalive in (b"", b"\r\n", b"\r\n\r\n", b"     "):
        with pytest.raises(RemoteProtocolError) as info:
            parse_message(keepalive)
        assert info.value.status_hint is None


# -- framing (§18.3) --------------------------------------------------------------------


def test_dblreq_trailing_bytes_are_ignored() -> None:
    message = corpus("dblreq")
    assert message.method == "REGISTER"
    assert message.body == b""
    assert b"INVITE" not in message.to_bytes()


def test_mpart01_binary_body_framed_by_length() -> None:
    message = corpus("mpart01")
    assert len(message.body) == 553
    assert b"\x00" in message.body


def test_body_without_content_length_runs_to_the_end() -> None:
    message = parse_message(request(*BASIC, body=b"abc"))
    assert message.body == b"abc"
    assert b"Content-Length: 3\r\n\r\nabc" in message.to_bytes()


@pytest.mark.parametrize(
    ("length_lines", "body"),
    [
        (("Content-Length: 10",), b"abc"),
        (("Content-Length: -1",), b"abc"),
        (("Content-Length: five",), b"abc"),
        (("Content-Length: 3", "l: 2"), b"abc"),
        (("Content-Length: 99999999999999999999",), b"abc"),
    ],
)
def test_bad_content_length_is_400(length_lines: tuple[str, ...], body: bytes) -> None:
    status, _ = reason(request(*BASIC, *length_lines, body=body))
    assert status == 400


def test_equal_duplicate_content_lengths_are_fine() -> None:
    message = parse_message(request(*BASIC, "Content-Length: 3", "l: 3", body=b"abcdef"))
    assert isinstance(message, Request)
    validate_request(message)
    assert message.body == b"abc"
    assert message.to_bytes().count(b"Content-Length") == 1


def test_broken_response_is_dropped_not_answered() -> None:
    data = b"SIP/2.0 200 OK\r\nContent-Length: 99\r\n\r\nabc"
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(data)
    assert info.value.status_hint is None


# -- start line (§7.1, §7.2, §25.1) ----------------------------------------------------


def test_extra_spaces_on_the_request_line_are_not_forwarded() -> None:
    for name in ("lwsstart", "trws"):
        message = corpus(name)
        validate_request(message)
        start = message.to_bytes().split(b"\r\n", 1)[0]
        assert start == f"{message.method} {message.uri} SIP/2.0".encode()


def test_response_reason_phrases() -> None:
    unreason = parse_message((CORPUS / "rfc4475" / "unreason.dat").read_bytes())
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert unreason.reason.endswith("но сто девяносто девять - простое")
    noreason = parse_message((CORPUS / "rfc4475" / "noreason.dat").read_bytes())
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


@pytest.mark.parametrize(
    "line", ["SIP/2.0 4294967301 x", "SIP/2.0 99 x", "SIP/2.0 700 x", "SIP/2.0 2000 OK", "SIP/2.0"]
)
def test_status_codes_outside_100_to_699_are_dropped(line: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(line.encode() + b"\r\nCall-ID: x\r\n\r\n")
    assert info.value.status_hint is None


def test_unknown_method_with_other_cseq_is_501_and_known_is_400() -> None:
    esc02 = corpus("esc02")
    assert esc02.method == "RE%47IST%45R"
    assert [c.uri.host for c in esc02.contacts] == ["host1.example.com", "host3.example.com"]
    assert reason((CORPUS / "rfc4475" / "mismatch02.dat").read_bytes())[0] == 501
    assert reason(request(*BASIC[:4], "CSeq: 1 INVITE"))[0] == 400
    unknown = request(*BASIC).replace(b"OPTIONS sip", b"FOO sip")
    assert reason(unknown)[0] == 501


# -- URIs (§19.1, RFC 3966, RFC 5118) ---------------------------------------------------


def test_uri_parts_and_escapes() -> None:
    uri = parse_uri("sips:al%69ce:pw@Example.COM:5061;transport=TLS;lr?subject=x&h=y")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "al%69ce",
        "pw",
        "Example.COM",
        5061,
    )
    assert uri.user_unescaped == "alice"
    assert uri.params == {"transport": "TLS", "lr": None}
    assert uri.headers == "subject=x&h=y"
    assert uri.aor == "sips:alice@example.com:5061"
    assert str(uri) == "sips:al%69ce:pw@Example.COM:5061;transport=TLS;lr?subject=x&h=y"


def test_escapes_decoded_once_only_esc01_escnull() -> None:
    esc01 = parse_uri(corpus("esc01").uri)
    assert esc01.user_unescaped == "sips:user@example.com"
    assert parse_uri("sip:%2541@h").user_unescaped == "%41"
    escnull = corpus("escnull")
    assert escnull.to.uri.aor == "sip:null-\x00-null@example.com"
    contacts = escnull.contacts
    assert [c.uri.user_unescaped for c in contacts] == ["\x00", "\x00\x00"]
    assert contacts[0].uri.aor != contacts[1].uri.aor


def test_semiuri_and_intmeth_user_parts() -> None:
    assert parse_uri(corpus("semiuri").uri).user_unescaped == "user;par=u@example.net"
    intmeth = parse_uri(corpus("intmeth").uri)
    assert intmeth.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert intmeth.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert intmeth.host == "example.com"


def test_tel_and_ipv6_uris() -> None:
    tel = parse_uri("tel:+39-0461-123456;phone-context=+39")
    assert (tel.scheme, tel.user, tel.params["phone-context"]) == ("tel", "+39-0461-123456", "+39")
    v6 = parse_uri("sip:[2001:db8::10]:5070")
    assert v6.host_port == ("2001:db8::10", 5070)
    ambiguous = parse_uri("sip:user@[2001:db8::10:5070]")
    assert ambiguous.host_port == ("2001:db8::10:5070", None)


@pytest.mark.parametrize(
    "text",
    [
        "sip:2001:db8::10",
        "sip:user@[2001:db8:::192.0.2.1]",
        "sip:user@[2001:db8::1",
        "sip:a b@h",
        "<sip:a@h>",
        "sip:a@h:99999",
        "sip:a@h:",
        "sip:@h",
        "sip:a@",
        "sip:a@h;;lr",
        "sip:a@-h",
        "sip:a@h?x=<y>",
        "sip:a@b@h",
        "tel:",
        ":opaque",
        "x:a b",
    ],
)
def test_malformed_uris(text: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_uri(text)
    assert info.value.status_hint == 400


def test_request_uri_rules() -> None:
    assert (
        reason(request(*BASIC).replace(b"sip:a@example.com SIP", b"sip:a@example.com?x=y SIP"))[0]
        == 400
    )
    assert reason(request(*BASIC).replace(b"sip:a@example.com SIP", b"mailto:a@b SIP"))[0] == 416
    tel = parse_message(request(*BASIC).replace(b"sip:a@example.com SIP", b"tel:+390461 SIP"))
    assert isinstance(tel, Request)
    validate_request(tel)


# -- name-addr and addr-spec (§20.10, §25.1) ------------------------------------------


def test_contact_params_belong_to_the_header_without_brackets() -> None:
    plain = corpus("cparam01").contacts[0]
    assert "unknownparam" in plain.params
    assert "unknownparam" not in plain.uri.params
    bracketed = corpus("cparam02").contacts[0]
    assert "unknownparam" in bracketed.uri.params
    assert "unknownparam" not in bracketed.params
    escaped_route = corpus("regescrt").contacts[0]
    assert escaped_route.uri.headers is not None
    assert "Route=" in escaped_route.uri.headers


def test_display_names() -> None:
    assert parse_address("caller<sip:a@h>").display == "caller"
    assert parse_address('"A \\"B\\"" <sip:a@h>').display_unescaped == 'A "B"'
    assert parse_address("  Mr  Watson <sip:a@h>;tag=x").display == "Mr  Watson"
    assert parse_address("<sip:a@h>").display is None
    assert parse_address("Niccolò Rossi <sip:a@h>").display == "Niccolò Rossi"
    for bad in ('"open <sip:a@h>', "Bell, A <sip:a@h>", "< sip:a@h >", "<sip:a@h> junk"):
        with pytest.raises(RemoteProtocolError):
            parse_address(bad)


def test_contact_star_and_expires() -> None:
    star = parse_address(" * ")
    assert star.star
    assert str(star) == "*"
    assert parse_address("<sip:a@h>;expires=0").expires == 0
    assert parse_address("<sip:a@h>;expires=280297596632815").expires == DEFAULT_EXPIRES
    assert parse_address("<sip:a@h>").expires is None
    with pytest.raises(RemoteProtocolError):
        _ = parse_address("<sip:a@h>;expires=soon").expires
    with pytest.raises(RemoteProtocolError):
        _ = parse_address("<sip:a@h>;q=1.5").q
    assert reason(request(*BASIC, "Contact: *, <sip:a@h>"))[0] == 400


def test_scalar02_expiry_and_max_forwards_defaults() -> None:
    message = corpus("scalar02")
    assert message.expires == DEFAULT_EXPIRES
    assert message.contacts[0].expires == DEFAULT_EXPIRES
    assert message.max_forwards is None
    with pytest.raises(RemoteProtocolError):
        _ = message.cseq
    assert reason(request(*BASIC, "Max-Forwards: ten"))[0] == 400


def test_tags_and_route_lists() -> None:
    data = request(
        *BASIC,
        'Route: <sip:p1.example.com;lr>, "x, y" <sip:p2.example.com;lr>',
        "Record-Route: <sip:p3.example.com;lr>",
        "Record-Route: <sip:p4.example.com;lr>",
    )
    message = parse_message(data)
    assert isinstance(message, Request)
    validate_request(message)
    assert message.from_.tag == "1"
    assert message.to.tag is None
    assert [r.uri.host for r in message.routes] == ["p1.example.com", "p2.example.com"]
    assert message.routes[1].display == "x, y"
    assert [r.uri.host for r in message.record_routes] == ["p3.example.com", "p4.example.com"]


def test_split_values() -> None:
    assert split_values(' a , "b,\\" c" <sip:x,y>;p=1 ,d') == ["a", '"b,\\" c" <sip:x,y>;p=1', "d"]
    assert split_values("  ") == []
    for bad in ("a,,b", "a,", '"open, b', "<sip:a, b"):
        with pytest.raises(RemoteProtocolError):
            split_values(bad)


def test_parse_params() -> None:
    assert parse_params(' ; A = 1 ;b; c="x;y"', "ctx") == {"a": "1", "b": None, "c": '"x;y"'}
    for bad in ("x;a=1", ";;a", ";a=", ';a="open'):
        with pytest.raises(RemoteProtocolError):
            parse_params(bad, "ctx")


# -- Via (§20.42, RFC 3581) and CSeq (§20.16) ----------------------------------------


def test_via_fields_rport_and_received() -> None:
    via = parse_via(
        "SIP / 2.0 / udp [2001:db8::9]:5070 ; branch=z9hG4bKx ;rport; received=192.0.2.1"
    )
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "[2001:db8::9]",
        5070,
    )
    assert (via.branch, via.received, via.rport, via.wants_rport) == (
        "z9hG4bKx",
        "192.0.2.1",
        None,
        True,
    )
    answered = parse_via("SIP/2.0/UDP h;rport=5062;received=2001:db8::9:255")
    assert (answered.rport, answered.received) == (5062, "2001:db8::9:255")
    assert not parse_via("SIP/2.0/TCP h").wants_rport
    assert str(parse_via("SIP/2.0/UDP h:5060;branch=z9hG4bK1;rport")) == (
        "SIP/2.0/UDP h:5060;branch=z9hG4bK1;rport"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "SIP/2.0/UDP",
        "SIP/2.0 UDP h",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP [zz::1]",
        "SIP/2.0/UDP h;;branch=1",
        "SIP/2.0/UDP h;branch=",
        "SIP/2.0/UDP h junk",
    ],
)
def test_malformed_vias(raw: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_via(raw)


def test_cseq_range() -> None:
    assert parse_cseq("4294967295 INVITE").seq == 2**32 - 1
    assert parse_cseq(" 0009  ACK ").seq == 9
    for bad in ("4294967296 INVITE", "1", "INVITE 1", "-1 INVITE", "1 INVITE x"):
        with pytest.raises(RemoteProtocolError):
            parse_cseq(bad)


# -- Headers, serialization, responses ---------------------------------------------------


def test_headers_multimap() -> None:
    headers = Headers.of(("Via", "v1"), ("X-A", "1"), ("v", "v2"))
    headers.prepend("Via", "v0")
    assert headers.get_all("VIA") == ["v0", "v1", "v2"]
    headers.set("via", "only")
    assert headers.get_all("via") == ["only"]
    assert list(headers) == [("via", "only"), ("X-A", "1")]
    copy = headers.copy()
    copy.remove("x-a")
    assert "x-a" in headers
    assert "X-A" not in copy
    headers.add("Supported", "timer, 100rel")
    assert headers.values("k") == ["timer", "100rel"]


def test_serializer_refuses_header_injection() -> None:
    message = Request("OPTIONS", "sip:a@h", Headers.of(("Subject", "x\r\nVia: evil")))
    with pytest.raises(LocalProtocolError):
        message.to_bytes()


def test_bare_cr_in_a_field_is_a_defect_and_the_rest_answers() -> None:
    data = request(*BASIC, "Subject: a\rb")
    message = parse_message(data)
    assert isinstance(message, Request)
    with pytest.raises(RemoteProtocolError) as info:
        validate_request(message)
    assert info.value.status_hint == 400
    assert b"Subject" not in make_response(message, 400, to_tag="t").to_bytes()


def test_make_response_copies_and_tags() -> None:
    message = parse_message(request(*BASIC))
    assert isinstance(message, Request)
    ok = make_response(message, 200, to_tag="abc", extra=(("Allow", "INVITE"),))
    assert ok.to.tag == "abc"
    assert ok.headers.get("via") == "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"
    assert ok.cseq.seq == 1
    assert ok.headers.get("allow") == "INVITE"
    assert make_response(message, 100, to_tag="abc").to.tag is None
    quotbal = corpus("quotbal")
    assert b"tag=t" in make_response(quotbal, 400, to_tag="t").to_bytes()


_URI_PIECES = st.sampled_from(
    [
        "sip:", "sips:", "SIP:", "tel:", "a", "Z", "0", "9", "-", ".", "_", "!", "~", "*", "'",
        "(", ")", "&", "=", "+", "$", ",", ";", "?", "/", "#", ":", "@", "%", "%41", "%4",
        "[", "]", "[::1]", "example.com", "5060", "99999", ";lr", ";transport=udp", " ",
    ]
)  # fmt: skip


def _outcome(parse: Callable[[str], Uri], text: str) -> Uri | None:
    try:
        return parse(text)
    except RemoteProtocolError:
        return None


@settings(max_examples=500)
@given(st.sampled_from(["sip:", "sips:", "SIP:", "tel:", ""]), st.lists(_URI_PIECES, max_size=10))
def test_uri_fast_path_agrees_with_the_full_grammar(scheme: str, pieces: list[str]) -> None:
    text = scheme + "".join(pieces)
    assert _outcome(parse_uri, text) == _outcome(_parse_uri_slowly, text)


_VIA_PIECES = st.sampled_from(
    [
        "SIP/2.0/UDP ", "SIP/2.0/udp ", "SIP / 2.0 / TCP ", "SIP/2.0/TLS", "host", "h-1.example",
        "192.0.2.1", "[2001:db8::1]", ":", "5060", "99999", ";", "branch", "=", "z9hG4bK",
        "rport", "received", "2001:db8::9", '"q"', " ", "-", ".", ",", "%", "A",
    ]
)  # fmt: skip


def _via_outcome(parse: Callable[[str], Via], text: str) -> Via | None:
    try:
        return parse(text)
    except RemoteProtocolError:
        return None


@settings(max_examples=500)
@given(st.sampled_from(["SIP/2.0/UDP ", "SIP/2.0/TCP ", ""]), st.lists(_VIA_PIECES, max_size=10))
def test_via_fast_path_agrees_with_the_full_grammar(head: str, pieces: list[str]) -> None:
    text = head + "".join(pieces)
    assert _via_outcome(parse_via, text) == _via_outcome(_parse_via_slowly, text)


@pytest.mark.parametrize("index", range(len(BASIC)))
def test_empty_or_missing_mandatory_fields_are_400(index: int) -> None:
    name = BASIC[index].split(":")[0]
    others = BASIC[:index] + BASIC[index + 1 :]
    assert reason(request(*others))[0] == 400
    assert reason(request(*others, f"{name}:"))[0] == 400
    assert reason(request(*others, f"{name}:   "))[0] == 400


_ADDRESS_PIECES = st.sampled_from(
    [
        '"', '"Mario Rossi"', '"a\\"b"', "Mario", " ", "<", ">", "sip:a@h", "sip:[::1]",
        ";tag=1", ";", "=", "tag", "expires", '"q"', "%41", ",", "*", "lr", "?x=y",
    ]
)  # fmt: skip


def _address_outcome(parse: Callable[[str], Address], text: str) -> Address | None:
    try:
        return parse(text)
    except RemoteProtocolError:
        return None


@settings(max_examples=500)
@given(
    st.sampled_from(['"A" <sip:a@h>', "<sip:b@h>", "<", ""]), st.lists(_ADDRESS_PIECES, max_size=8)
)
def test_name_addr_fast_path_agrees_with_the_full_grammar(head: str, pieces: list[str]) -> None:
    text = head + "".join(pieces)
    if "<" in text:
        assert _address_outcome(parse_address, text) == _address_outcome(
            _parse_name_addr_slowly, text
        )


def test_sip_version_is_case_insensitive_and_sent_upper_case() -> None:
    lower = request(*BASIC).replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1)
    message = parse_message(lower)
    assert isinstance(message, Request)
    validate_request(message)
    assert message.to_bytes().startswith(b"OPTIONS sip:a@example.com SIP/2.0\r\n")
    response = parse_message(b"Sip/2.0 200 OK\r\nCall-ID: x\r\n\r\n")
    assert isinstance(response, Response)
    assert response.version == "SIP/2.0"
