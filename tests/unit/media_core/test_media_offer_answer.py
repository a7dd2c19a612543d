"""Offer/answer (RFC 3264): codec choice, DTMF payload types, directions, hold, re-offers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.sdp import Direction, SdpError, SessionDescription, parse_sdp, serialize_sdp
from media.session import (
    G729,
    PCMA,
    PCMU,
    Answer,
    Codec,
    LocalOrigin,
    MediaParams,
    NoCommonCodec,
    build_offer,
    is_refresh,
    negotiate,
    read_answer,
)

ALL = (PCMU, PCMA, G729)


def offer(
    formats: str,
    attributes: str = "",
    *,
    conn: str = "IN IP4 198.51.100.7",
    extra_media: str = "",
    version: int = 1,
) -> SessionDescription:
    return parse_sdp(
        f"v=0\r\no=caller 4242 {version} IN IP4 198.51.100.7\r\ns=-\r\nc={conn}\r\nt=0 0\r\n"
        f"{extra_media}m=audio 40000 RTP/AVP {formats}\r\n{attributes}"
    )


def answer_of(sdp: SessionDescription, **kwargs: object) -> Answer:
    options: dict[str, object] = {
        "supported": ALL,
        "local_addr": "203.0.113.1",
        "local_port": 20000,
        "session_id": 77,
    }
    options.update(kwargs)
    result = negotiate(sdp, **options)  # type: ignore[arg-type]
    assert isinstance(result, Answer), result
    return result


TE96 = "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16\r\n"


def test_pcmu_only_offer_gets_a_complete_pcmu_answer_with_dtmf_on_the_offerers_pt() -> None:
    answer = answer_of(offer("0 96", TE96))
    assert serialize_sdp(answer.sdp).decode() == (
        "v=0\r\n"
        "o=centralino 77 0 IN IP4 203.0.113.1\r\n"
        "s=-\r\n"
        "c=IN IP4 203.0.113.1\r\n"
        "t=0 0\r\n"
        "m=audio 20000 RTP/AVP 0 96\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:96 telephone-event/8000\r\n"
        "a=fmtp:96 0-15\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )
    assert answer.media == MediaParams(
        codec=PCMU,
        receive_payload_type=0,
        telephone_event_pt=96,
        receive_telephone_event_pt=96,
        remote_addr="198.51.100.7",
        remote_port=40000,
        direction=Direction.SENDRECV,
    )


def test_pcma_only_offer() -> None:
    answer = answer_of(offer("8"))
    assert answer.media.codec == PCMA and answer.media.telephone_event_pt is None
    assert answer.sdp.media[0].formats == ("8",)
    assert answer.sdp.media[0].rtpmaps() == {8: ("PCMA", 8000)}


def test_g729_only_offer_is_answered_without_annex_b() -> None:
    answer = answer_of(
        offer("18 101", "a=fmtp:18 annexb=yes\r\na=rtpmap:101 telephone-event/8000\r\n")
    )
    media = answer.sdp.media[0]
    assert answer.media.codec == G729 and media.fmtp(18) == "annexb=no"
    assert answer.media.telephone_event_pt == 101 and media.fmtp(101) == "0-15"


@pytest.mark.parametrize(
    ("fmtp", "answered"),
    [
        (None, "0-15"),  # RFC 4733 §2.4.1: no fmtp means 0-15
        ("0-16", "0-15"),
        ("0-11", "0-11"),
        ("0-9, 11,15,4", "0-9,11,15"),
        ("16", None),  # only flash-hook: no DTMF in common
        ("x-y", None),
    ],
)
def test_telephone_event_answer_keeps_the_common_dtmf_events(
    fmtp: str | None, answered: str | None
) -> None:
    attributes = "a=rtpmap:100 telephone-event/8000\r\n"
    if fmtp is not None:
        attributes += f"a=fmtp:100 {fmtp}\r\n"
    answer = answer_of(offer("0 100", attributes))
    media = answer.sdp.media[0]
    if answered is None:
        assert media.formats == ("0",) and answer.media.telephone_event_pt is None
    else:
        assert media.fmtp(100) == answered and answer.media.telephone_event_pt == 100


def test_dtmf_can_be_declined() -> None:
    answer = answer_of(offer("0 96", TE96), telephone_event=False)
    assert answer.sdp.media[0].formats == ("0",) and answer.media.telephone_event_pt is None


def test_offerers_order_decides_unless_a_preference_overrides() -> None:
    sdp = offer("8 18 0")
    assert answer_of(sdp).media.codec == PCMA
    assert answer_of(sdp, preference=["G729", "PCMU"]).media.codec == G729
    assert answer_of(sdp, preference=["PCMU"]).media.codec == PCMU
    assert answer_of(sdp, preference=["GSM"]).media.codec == PCMA  # unranked: offer order


def test_codecs_are_recognised_by_rtpmap_on_dynamic_payload_types() -> None:
    answer = answer_of(offer("97 3", "a=rtpmap:97 pcmu/8000\r\n"))
    assert answer.media.codec.name == "PCMU" and answer.media.codec.payload_type == 97
    assert answer.sdp.media[0].formats == ("97",)


@pytest.mark.parametrize(
    ("formats", "attributes", "supported"),
    [
        ("3", "", ALL),  # GSM only
        ("18", "", (PCMU, PCMA)),  # G.729 offered, but libbcg729 is missing here
        ("96", "a=rtpmap:96 opus/48000/2\r\n", ALL),
        ("0", "a=rtpmap:0 PCMU/16000\r\n", ALL),  # a clock rate we do not run
    ],
)
def test_no_common_codec_gives_488_with_warning_305(
    formats: str, attributes: str, supported: tuple[object, ...]
) -> None:
    result = negotiate(
        offer(formats, attributes),
        supported=supported,  # type: ignore[arg-type]
        local_addr="203.0.113.1",
        local_port=20000,
        session_id=1,
    )
    assert isinstance(result, NoCommonCodec)
    assert (result.status_code, result.reason_phrase) == (488, "Not Acceptable Here")
    assert result.warning == '305 centralino "Incompatible media format"'


def test_srtp_only_offer_is_not_acceptable() -> None:
    sdp = parse_sdp(serialize_sdp(offer("0")).replace(b"RTP/AVP", b"RTP/SAVP"))
    assert isinstance(
        negotiate(sdp, supported=ALL, local_addr="::1", local_port=2, session_id=1), NoCommonCodec
    )


@pytest.mark.parametrize(
    ("attribute", "ours", "on_hold"),
    [
        ("a=sendonly\r\n", Direction.RECVONLY, True),
        ("a=recvonly\r\n", Direction.SENDONLY, False),
        ("a=inactive\r\n", Direction.INACTIVE, True),
        ("a=sendrecv\r\n", Direction.SENDRECV, False),
    ],
)
def test_answer_mirrors_the_offered_direction(
    attribute: str, ours: Direction, on_hold: bool
) -> None:
    answer = answer_of(offer("0", attribute))
    assert answer.sdp.media[0].direction is ours
    assert (answer.media.direction, answer.media.on_hold) == (ours, on_hold)


def test_old_hold_with_null_address_means_we_send_nothing() -> None:
    answer = answer_of(offer("0", conn="IN IP4 0.0.0.0"))
    assert answer.media.on_hold and not answer.media.direction.sends
    assert answer.media.direction is Direction.RECVONLY


def test_session_level_direction_applies_and_our_direction_limits_the_answer() -> None:
    sdp = parse_sdp(serialize_sdp(offer("0")).replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n"))
    assert answer_of(sdp).media.direction is Direction.RECVONLY
    limited = answer_of(offer("0"), direction=Direction.SENDONLY)  # we play hold music
    assert limited.media.direction is Direction.SENDONLY


def test_ipv6_offer_and_answer() -> None:
    answer = answer_of(offer("0", conn="IN IP6 2001:db8::7"), local_addr="2001:db8::1")
    assert answer.media.remote_addr == "2001:db8::7"
    text = serialize_sdp(answer.sdp)
    assert b"o=centralino 77 0 IN IP6 2001:db8::1\r\n" in text
    assert b"c=IN IP6 2001:db8::1\r\n" in text


def test_other_streams_are_rejected_with_port_zero_in_the_same_order() -> None:
    video = "m=video 40002 RTP/AVP 31\r\n"
    disabled_audio = "m=audio 0 RTP/AVP 0\r\n"
    sdp = offer("8", extra_media=video + disabled_audio)
    answer = answer_of(sdp)
    assert [(m.media, m.port, m.formats) for m in answer.sdp.media] == [
        ("video", 0, ("31",)),
        ("audio", 0, ("0",)),
        ("audio", 20000, ("8",)),
    ]
    assert answer.media.remote_port == 40000


def test_offer_without_any_connection_line_is_an_sdp_error() -> None:
    sdp = parse_sdp(serialize_sdp(offer("0")).replace(b"c=IN IP4 198.51.100.7\r\n", b""))
    with pytest.raises(SdpError, match="c= line"):
        negotiate(sdp, supported=ALL, local_addr="1.2.3.4", local_port=2, session_id=1)


def test_ptime_of_the_offer_is_reported() -> None:
    assert answer_of(offer("0", "a=ptime:30\r\n")).media.remote_ptime == 30
    assert answer_of(offer("0", "a=ptime:x\r\n")).media.remote_ptime == 20


def test_re_offers_bump_our_version_only_when_the_answer_changes() -> None:
    origin = LocalOrigin(session_id=77, session_version=5)
    first = origin.stamp(answer_of(offer("0")).sdp)
    same = origin.stamp(answer_of(offer("0", version=2)).sdp)
    held = origin.stamp(answer_of(offer("0", "a=sendonly\r\n", version=3)).sdp)
    resumed = origin.stamp(answer_of(offer("0", version=4)).sdp)
    versions = [d.origin.session_version for d in (first, same, held, resumed)]
    assert versions == [5, 5, 6, 7]
    assert {d.origin.session_id for d in (first, held)} == {77}


def test_is_refresh_compares_the_origin_line() -> None:
    assert is_refresh(offer("0"), offer("0"))
    assert not is_refresh(offer("0"), offer("0", "a=sendonly\r\n", version=2))
    assert not is_refresh(None, offer("0"))


def test_our_offer_and_the_operators_answer() -> None:
    sdp = build_offer(codecs=[PCMA, PCMU], local_addr="10.1.0.1", local_port=30000, session_id=9)
    assert serialize_sdp(sdp).decode() == (
        "v=0\r\n"
        "o=centralino 9 0 IN IP4 10.1.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 10.1.0.1\r\n"
        "t=0 0\r\n"
        "m=audio 30000 RTP/AVP 8 0 101\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )
    operator = parse_sdp(
        "v=0\r\no=op 1 1 IN IP4 10.2.0.5\r\ns=-\r\nc=IN IP4 10.2.0.5\r\nt=0 0\r\n"
        "m=audio 7078 RTP/AVP 0 100\r\na=rtpmap:100 telephone-event/8000\r\na=recvonly\r\n"
    )
    params = read_answer(sdp, operator)
    assert isinstance(params, MediaParams)
    assert (params.codec.name, params.codec.payload_type, params.receive_payload_type) == (
        "PCMU",
        0,
        0,
    )
    assert (params.telephone_event_pt, params.receive_telephone_event_pt) == (100, 101)
    assert (params.remote_addr, params.remote_port) == ("10.2.0.5", 7078)
    assert params.direction is Direction.SENDONLY


def test_an_answer_rejecting_our_stream_is_no_common_codec() -> None:
    sdp = build_offer(codecs=[PCMU], local_addr="10.1.0.1", local_port=30000, session_id=9)
    rejected = parse_sdp(
        "v=0\r\no=op 1 1 IN IP4 10.2.0.5\r\ns=-\r\nc=IN IP4 10.2.0.5\r\nt=0 0\r\n"
        "m=audio 0 RTP/AVP 0\r\n"
    )
    assert isinstance(read_answer(sdp, rejected), NoCommonCodec)
    with pytest.raises(ValueError, match="codec"):
        build_offer(codecs=[], local_addr="10.1.0.1", local_port=1, session_id=1)


def test_answer_to_our_own_offer_round_trips_through_negotiate() -> None:
    ours = build_offer(codecs=[G729, PCMU], local_addr="10.1.0.1", local_port=30000, session_id=9)
    answer = answer_of(ours)
    params = read_answer(ours, answer.sdp)
    assert isinstance(params, MediaParams)
    assert params.codec == G729 and params.telephone_event_pt == 101
    assert (params.remote_addr, params.remote_port) == ("203.0.113.1", 20000)


KNOWN = {"0": "PCMU", "8": "PCMA", "18": "G729", "3": "GSM", "9": "G722", "97": "iLBC"}


@given(
    formats=st.lists(st.sampled_from(sorted(KNOWN)), min_size=1, max_size=6, unique=True),
    supported=st.lists(st.sampled_from(ALL), max_size=3, unique=True),
    event=st.booleans(),
)
def test_choice_is_the_first_supported_codec_in_offer_order(
    formats: list[str], supported: list[Codec], event: bool
) -> None:
    attributes = "a=rtpmap:97 iLBC/8000\r\n"
    if event:
        formats = [*formats, "101"]
        attributes += "a=rtpmap:101 telephone-event/8000\r\n"
    sdp = offer(" ".join(formats), attributes)
    result = negotiate(
        sdp, supported=supported, local_addr="203.0.113.1", local_port=2, session_id=3
    )
    names = {c.name for c in supported}
    expected = next((KNOWN[f] for f in formats if KNOWN.get(f) in names), None)
    if expected is None:
        assert isinstance(result, NoCommonCodec)
        return
    assert isinstance(result, Answer)
    assert result.media.codec.name == expected
    assert result.media.telephone_event_pt == (101 if event else None)
    assert parse_sdp(serialize_sdp(result.sdp)) == result.sdp
