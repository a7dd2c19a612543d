"""DTMF in SIP INFO bodies: application/dtmf-relay and application/dtmf."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.dtmf_info import DEFAULT_DURATION_MS, DtmfInfoError, parse_dtmf_info
from media.telephone_event import DigitReceived


def test_dtmf_relay() -> None:
    assert parse_dtmf_info(
        "application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", now=3.5
    ) == DigitReceived(digit="5", duration_ms=160, at=3.5)


@pytest.mark.parametrize(
    ("body", "digit", "duration"),
    [
        ("signal= *\nduration = 250", "*", 250),
        ("Signal=#\r\n", "#", DEFAULT_DURATION_MS),
        ("Duration=100\r\nSignal=d", "D", 100),
        ("Signal=10\r\nDuration=90", "*", 90),
        ("Signal=11", "#", DEFAULT_DURATION_MS),
        ("\r\nSignal=0\r\n\r\n", "0", DEFAULT_DURATION_MS),
    ],
)
def test_dtmf_relay_variants(body: str, digit: str, duration: int) -> None:
    event = parse_dtmf_info("Application/DTMF-Relay; charset=us-ascii", body, now=0.0)
    assert (event.digit, event.duration_ms) == (digit, duration)


@pytest.mark.parametrize(
    ("body", "digit"), [(b"5", "5"), (b"  #\r\n", "#"), (b"11", "#"), (b"a", "A"), (b"*", "*")]
)
def test_application_dtmf(body: bytes, digit: str) -> None:
    assert parse_dtmf_info("application/dtmf", body, now=1.0) == DigitReceived(
        digit=digit, duration_ms=DEFAULT_DURATION_MS, at=1.0
    )


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/dtmf-relay", b"Duration=160"),
        ("application/dtmf-relay", b"Signal=5\r\nSignal=6"),
        ("application/dtmf-relay", b"Signal"),
        ("application/dtmf-relay", b"=5"),
        ("application/dtmf-relay", b"Signal=E"),
        ("application/dtmf-relay", b"Signal=16"),
        ("application/dtmf-relay", b"Signal=55"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=abc"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=-1"),
        ("application/dtmf-relay", b"Signal=5\r\nDuration=99999999"),
        ("application/dtmf-relay", "Signal=\u0665".encode()),
        ("application/dtmf-relay", b"Signal=5" + b" " * 2000),
        ("application/dtmf", b""),
        ("application/dtmf", b"17"),
        ("application/dtmf", b"5 6"),
        ("application/dtmf", b"\xff"),
        ("application/sdp", b"v=0"),
        ("", b"5"),
    ],
)
def test_malformed_bodies_are_clear_errors(content_type: str, body: bytes) -> None:
    with pytest.raises(DtmfInfoError):
        parse_dtmf_info(content_type, body, now=0.0)


@given(st.text(max_size=60), st.sampled_from(["application/dtmf-relay", "application/dtmf"]))
def test_any_body_gives_a_digit_or_a_clear_error(body: str, content_type: str) -> None:
    try:
        event = parse_dtmf_info(content_type, body, now=0.0)
    except DtmfInfoError:
        return
    assert event.digit in "0123456789*#ABCD" and len(event.digit) == 1
    assert 0 <= event.duration_ms <= 60_000
