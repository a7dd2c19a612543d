"""Dial plan: every spelling of a number reaches its service; unknown numbers do not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.dialplan import DialPlan, DuplicateNumberError, InvalidNumberError, normalise

SERVICES = {
    "trentino-digitale": ["800 228040"],
    "agenzia-lavoro": ["800 264760"],
    "uru": ["0461 800133"],
    "io-partecipo": ["+39 0461 499335"],
}


@pytest.fixture
def plan() -> DialPlan:
    return DialPlan.from_services(SERVICES)


@pytest.mark.parametrize(
    "dialed",
    [
        "800228040",
        "+39800228040",
        "0039800228040",
        "800 228040",
        "sip:800228040@cc.example.it;user=phone",
        "<sip:+39800228040@10.0.0.1:5060>",
        "sips:0039800228040@cc.example.it",
        "sip:%2B39800228040@cc.example.it",
        "tel:+39-800-228040",
        "tel:800228040;phone-context=+39",
        "+39 (800) 228.040",
    ],
)
def test_spellings_of_the_toll_free_number_reach_trentino_digitale(
    plan: DialPlan, dialed: str
) -> None:
    assert plan.lookup(dialed) == "trentino-digitale"


@pytest.mark.parametrize(
    ("dialed", "service"),
    [
        ("0461800133", "uru"),
        ("+390461800133", "uru"),
        ("00390461499335", "io-partecipo"),
        ("sip:0461499335@pbx", "io-partecipo"),
        ("800264760", "agenzia-lavoro"),
    ],
)
def test_each_number_maps_to_its_service(plan: DialPlan, dialed: str, service: str) -> None:
    assert plan.lookup(dialed) == service


@pytest.mark.parametrize(
    "dialed",
    ["800228041", "+41800228040", "461800133", "", "sip:alice@example.com", "8002280", "abc"],
)
def test_unknown_or_unreadable_numbers_give_none(plan: DialPlan, dialed: str) -> None:
    assert plan.lookup(dialed) is None


def test_canonical_form_is_e164() -> None:
    assert normalise("0461 800133") == "+390461800133"
    assert normalise("0039800228040") == "+39800228040"
    assert normalise("800228040", country_code="41") == "+41800228040"


def test_bare_39_is_a_national_number_not_a_country_code() -> None:
    # An Italian mobile number starts with 3: reading "39..." as +39 would misroute it.
    assert normalise("3912345678") == "+393912345678"


@pytest.mark.parametrize("raw", ["", "+", "12a45", "sip:@host", "+1234567890123456", "++39800"])
def test_unreadable_numbers_raise_a_clear_error(raw: str) -> None:
    with pytest.raises(InvalidNumberError):
        normalise(raw)


def test_two_services_claiming_one_number_is_refused() -> None:
    with pytest.raises(DuplicateNumberError, match="uru"):
        DialPlan.from_services({"uru": ["800 228040"], "pagopa": ["+39800228040"]})


def test_a_service_may_list_one_number_twice() -> None:
    plan = DialPlan({"800228040": "x", "+39 800 228040": "x"})
    assert plan.numbers() == {"+39800228040": "x"}


@given(st.from_regex(r"[1-9][0-9]{5,9}", fullmatch=True))
def test_every_spelling_normalises_alike(national: str) -> None:
    expected = normalise(national)
    spaced = " ".join(national[i : i + 3] for i in range(0, len(national), 3))
    for spelling in (f"+39{national}", f"0039{national}", spaced, f"sip:{national}@h"):
        assert normalise(spelling) == expected


@given(st.text(max_size=40))
def test_lookup_never_raises(dialed: str) -> None:
    DialPlan({"800228040": "x"}).lookup(dialed)
