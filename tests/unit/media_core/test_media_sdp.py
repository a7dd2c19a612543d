"""SDP parsing and serializing (RFC 8866)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.sdp import Attribute, Connection, Direction, SdpError, parse_sdp, serialize_sdp

# The offer SIPp's built-in uac scenario sends, with telephone-event added.
SIPP_OFFER = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
)

# Every line type RFC 8866 §5 defines, two streams, unknown attributes, media-level c=.
FULL = (
    "v=0\r\n"
    "o=- 3724394400 3724394405 IN IP6 2001:db8::10\r\n"
    "s=Centralino call\r\n"
    "i=a session\r\n"
    "u=https://example.org/x\r\n"
    "e=ops@example.org\r\n"
    "p=+39 0461 000000\r\n"
    "c=IN IP6 2001:db8::10\r\n"
    "b=AS:64\r\n"
    "t=3724394400 0\r\n"
    "r=604800 3600 0 90000\r\n"
    "z=2882844526 -1h\r\n"
    "k=prompt\r\n"
    "a=tool:softphone 1.2\r\n"
    "a=sendrecv\r\n"
    "m=audio 49170 RTP/AVP 18 97 101\r\n"
    "i=voice\r\n"
    "c=IN IP6 2001:db8::11\r\n"
    "b=TIAS:64000\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:97 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=x-unknown-flag\r\n"
    "a=rtcp:49171 IN IP6 2001:db8::11\r\n"
    "a=ssrc:1234 cname:abc\r\n"
    "a=sendonly\r\n"
    "m=video 51372/2 RTP/AVP 31\r\n"
    "a=rtpmap:31 H261/90000\r\n"
)


@pytest.mark.parametrize("text", [SIPP_OFFER, FULL])
def test_serialize_parse_round_trips(text: str) -> None:
    sdp = parse_sdp(text.encode())
    assert serialize_sdp(sdp) == text.encode()
    assert parse_sdp(serialize_sdp(sdp)) == sdp


def test_full_description_fields() -> None:
    sdp = parse_sdp(FULL)
    assert sdp.origin.session_version == 3724394405 and sdp.origin.addrtype == "IP6"
    assert sdp.connection == Connection(addrtype="IP6", address="2001:db8::10")
    audio, video = sdp.media
    assert sdp.connection_for(audio) == Connection(addrtype="IP6", address="2001:db8::11")
    assert sdp.connection_for(video) == sdp.connection
    assert audio.formats == ("18", "97", "101")
    assert audio.rtpmaps() == {
        18: ("G729", 8000),
        97: ("PCMU", 8000),
        101: ("telephone-event", 8000),
    }
    assert audio.fmtp(18) == "annexb=no" and audio.fmtp(101) == "0-16" and audio.fmtp(97) is None
    assert Attribute(name="x-unknown-flag") in audio.attributes
    assert audio.attribute("ssrc") == "1234 cname:abc"
    assert audio.attribute("x-unknown-flag") == "" and audio.attribute("absent") is None
    assert sdp.direction_for(audio) is Direction.SENDONLY
    assert sdp.direction_for(video) is Direction.SENDRECV  # the session-level a=sendrecv
    assert (video.port, video.port_count) == (51372, 2)
    assert sdp.timings[0].repeats == ("604800 3600 0 90000",)


def test_lf_only_line_ends_are_accepted_and_written_as_crlf() -> None:
    sdp = parse_sdp(SIPP_OFFER.replace("\r\n", "\n"))
    assert serialize_sdp(sdp) == SIPP_OFFER.encode()


def test_trailing_blank_after_a_flag_attribute_is_ignored() -> None:
    sdp = parse_sdp(SIPP_OFFER + "a=sendonly \r\n")
    assert sdp.direction_for(sdp.media[0]) is Direction.SENDONLY


def test_missing_timing_line_is_tolerated() -> None:
    sdp = parse_sdp(SIPP_OFFER.replace("t=0 0\r\n", ""))
    assert sdp.timings[0].start == 0 and len(sdp.media) == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "v=0"),
        ("v=1\r\n", "v=0"),
        (SIPP_OFFER.replace("s=-\r\n", ""), "s="),
        (SIPP_OFFER.replace("o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n", ""), "o="),
        (SIPP_OFFER.replace("53655765", "abc"), "sess-id"),
        (SIPP_OFFER.replace(" 127.0.0.1\r\ns=", "\r\ns="), "6 fields"),
        (SIPP_OFFER.replace("6000", "70000"), "port"),
        (SIPP_OFFER.replace("6000", "60x0"), "port"),
        (SIPP_OFFER.replace("m=audio 6000 RTP/AVP 0 101", "m=audio"), "m="),
        (SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 ::1"), "IPv6"),
        (SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4"), "c="),
        (SIPP_OFFER.replace("t=0 0", "t=0"), "t="),
        (SIPP_OFFER + "garbage\r\n", "<type>=<value>"),
        (SIPP_OFFER + "v=0\r\n", "repeated"),
        (SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\nx=what\r\n"), "session level"),
        (SIPP_OFFER + "o=- 1 1 IN IP4 1.2.3.4\r\n", "media section"),
    ],
)
def test_malformed_sdp_raises_a_clear_error(text: str, reason: str) -> None:
    with pytest.raises(SdpError, match=reason):
        parse_sdp(text)


def test_non_utf8_body_is_an_sdp_error() -> None:
    with pytest.raises(SdpError, match="UTF-8"):
        parse_sdp(b"v=0\r\ns=\xff\r\n")


@given(st.text(alphabet="vosctmab=0123456789 :/.\r\nINPAVUDR", max_size=120))
def test_parse_never_raises_anything_but_sdp_error(text: str) -> None:
    try:
        sdp = parse_sdp("v=0\r\n" + text)
    except SdpError:
        return
    assert parse_sdp(serialize_sdp(sdp)) == sdp


def test_direction_mirroring_table() -> None:
    assert [d.mirrored() for d in Direction] == [
        Direction.SENDRECV,
        Direction.RECVONLY,
        Direction.SENDONLY,
        Direction.INACTIVE,
    ]
