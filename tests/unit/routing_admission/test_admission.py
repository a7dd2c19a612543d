"""INVITE admission: media type, Accept, dialed number, switchboard and ricaduta calls."""

from __future__ import annotations

import pytest

from routing.admission import Admitted, Refused, admit_invite
from routing.dialplan import DialPlan
from routing.diversion import Classifier, RicadutaConfig
from sip.header_fields import Headers
from sip.message import Request

PLAN = DialPlan.from_services({"trentino-digitale": ["800 228040"], "uru": ["0461 800133"]})
CLASSIFIER = Classifier(
    RicadutaConfig(switchboard_numbers=["0461 495111"], extensions=["0461 49*"])
)


def invite(uri: str, *extra: tuple[str, str], body: bytes = b"v=0\r\n") -> Request:
    headers = Headers.of(
        ("From", "<sip:0461123456@pbx>;tag=a"),
        ("To", f"<{uri}>"),
        ("Call-ID", "c1"),
        ("CSeq", "1 INVITE"),
        ("Content-Type", "application/sdp"),
        *extra,
    )
    return Request("INVITE", uri, headers, body)


@pytest.mark.parametrize(
    ("uri", "service"),
    [
        ("sip:800228040@switch", "trentino-digitale"),
        ("sip:+39800228040@switch;user=phone", "trentino-digitale"),
        ("sip:0039800228040@switch", "trentino-digitale"),
        ("tel:+390461800133", "uru"),
    ],
)
def test_known_numbers_in_every_spelling(uri: str, service: str) -> None:
    verdict = admit_invite(invite(uri), PLAN)
    assert isinstance(verdict, Admitted) and verdict.service == service


def test_unknown_number_is_404() -> None:
    assert admit_invite(invite("sip:800999999@switch"), PLAN) == Refused(status=404)


def test_body_that_is_not_sdp_is_415_listing_what_we_accept() -> None:
    request = invite("sip:800228040@switch")
    request.headers.set("Content-Type", "application/unknownformat")
    assert admit_invite(request, PLAN) == Refused(
        status=415, headers=(("Accept", "application/sdp"),)
    )


def test_accept_without_sdp_is_406() -> None:
    verdict = admit_invite(invite("sip:800228040@switch", ("Accept", "text/nobodyKnowsThis")), PLAN)
    assert isinstance(verdict, Refused) and verdict.status == 406


def test_accept_with_wildcards_is_fine() -> None:
    verdict = admit_invite(invite("sip:800228040@switch", ("Accept", "application/*")), PLAN)
    assert isinstance(verdict, Admitted)


def test_ricaduta_goes_to_agenzia_whatever_was_dialed() -> None:
    diversion = ("Diversion", "<sip:0461491234@pbx>;reason=no-answer;counter=1")
    verdict = admit_invite(invite("sip:0461491234@switch", diversion), PLAN, CLASSIFIER)
    assert isinstance(verdict, Admitted)
    assert verdict.service == "agenzia-lavoro"
    assert verdict.redirection is not None and verdict.redirection.tag == "ricaduta"


def test_switchboard_caller_goes_to_agenzia() -> None:
    request = invite("sip:800228040@switch")
    request.headers.set("From", "<sip:0461495111@pbx>;tag=a")
    verdict = admit_invite(request, PLAN, CLASSIFIER)
    assert isinstance(verdict, Admitted)
    assert verdict.redirection is not None and verdict.redirection.tag == "switchboard"


def test_diversion_from_elsewhere_is_an_ordinary_call() -> None:
    diversion = ("Diversion", "<sip:0212345678@pbx>;reason=no-answer")
    verdict = admit_invite(invite("sip:800228040@switch", diversion), PLAN, CLASSIFIER)
    assert isinstance(verdict, Admitted)
    assert verdict.service == "trentino-digitale" and verdict.redirection is None
