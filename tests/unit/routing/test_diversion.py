"""Switchboard and ricaduta calls are recognised from headers and source numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.diversion import (
    Classifier,
    RicadutaConfig,
    parse_diversion,
    parse_history_info,
    split_header_values,
)

CONFIG = RicadutaConfig(
    switchboard_numbers=["0461 495111"],
    extensions=["0461 49*", "4321"],
)


@pytest.fixture
def classifier() -> Classifier:
    return Classifier(CONFIG)


def test_diversion_no_answer_from_an_agenzia_extension_is_ricaduta(
    classifier: Classifier,
) -> None:
    header = '"Ufficio" <sip:+390461496000@pbx.provincia.tn.it>;reason=no-answer;counter=1'
    verdict = classifier.classify(caller="sip:+393331234567@pbx", diversion=[header])
    assert verdict is not None
    assert verdict.tag == "ricaduta"
    assert (verdict.service, verdict.queue) == ("agenzia-lavoro", "agenzia-lavoro")
    assert verdict.reason == "no-answer"
    assert verdict.counter == 1
    assert verdict.diverted_from == "+390461496000"


def test_short_extension_matches_exactly(classifier: Classifier) -> None:
    verdict = classifier.classify(diversion=["<sip:4321@pbx>;reason=user-busy"])
    assert verdict is not None and verdict.tag == "ricaduta"
    assert classifier.classify(diversion=["<sip:4322@pbx>;reason=user-busy"]) is None


def test_diversion_from_someone_else_is_not_ricaduta(classifier: Classifier) -> None:
    header = "<sip:+390461999999@pbx>;reason=no-answer;counter=1"
    assert classifier.classify(diversion=[header]) is None


def test_unconditional_forwarding_is_not_ricaduta(classifier: Classifier) -> None:
    # Only calls unanswered (or busy/unavailable) at an extension count as overflow.
    header = "<sip:+390461496000@pbx>;reason=unconditional"
    assert classifier.classify(diversion=[header]) is None


def test_switchboard_caller_is_tagged_switchboard(classifier: Classifier) -> None:
    for caller in ("0461495111", "sip:+390461495111@pbx;user=phone", "<tel:+39-0461-495111>"):
        verdict = classifier.classify(caller=caller)
        assert verdict is not None
        assert verdict.tag == "switchboard"
        assert verdict.queue == "agenzia-lavoro"
        assert verdict.reason is None


def test_ordinary_call_is_neither(classifier: Classifier) -> None:
    assert classifier.classify(caller="sip:+393331234567@pbx") is None
    assert classifier.classify() is None


def test_history_info_with_rfc4458_cause_is_ricaduta(classifier: Classifier) -> None:
    header = (
        "<sip:+390461496000@pbx.provincia.tn.it?Reason=SIP%3Bcause%3D408%3Btext%3D%22Timeout%22>"
        ";index=1, <sip:+39800264760@cc.example.it;cause=408>;index=1.1"
    )
    verdict = classifier.classify(history_info=[header])
    assert verdict is not None
    assert verdict.tag == "ricaduta"
    assert verdict.reason == "no-answer"
    assert verdict.diverted_from == "+390461496000"


def test_history_info_parent_found_by_index() -> None:
    entries = [
        "<sip:caller-target@pbx>;index=1",
        "<sip:+390461496001@pbx>;index=1.1",
        "<sip:fork@pbx>;index=1.2",
        "<sip:+39800264760@cc;cause=486>;index=1.1.1",
    ]
    [diverted] = parse_history_info([", ".join(entries)])
    assert diverted.diverted_from == "+390461496001"
    assert diverted.reason == "user-busy"


def test_history_info_reason_header_without_cause_param() -> None:
    header = "<sip:4321@pbx?Reason=SIP%3Bcause%3D480>;index=1, <sip:800264760@cc>;index=1.1"
    [diverted] = parse_history_info([header])
    assert (diverted.diverted_from, diverted.reason) == ("4321", "unavailable")


def test_history_info_without_retargeting_gives_nothing() -> None:
    assert parse_history_info(["<sip:800264760@cc>;index=1"]) == []


def test_diversion_entries_in_order_most_recent_first() -> None:
    values = ["<sip:111@a>;reason=no-answer;counter=2, <sip:222@b>;reason=user-busy"]
    found = parse_diversion(values)
    assert [(d.diverted_from, d.reason, d.counter) for d in found] == [
        ("111", "no-answer", 2),
        ("222", "user-busy", None),
    ]


def test_quoted_reason_and_missing_reason() -> None:
    [quoted] = parse_diversion(['<sip:111@a>;reason="no-answer"'])
    [bare] = parse_diversion(["<sip:111@a>"])
    assert quoted.reason == "no-answer"
    assert bare.reason == "unknown"


def test_comma_inside_display_name_does_not_split() -> None:
    parts = split_header_values('"Rossi, Mario" <sip:1@a>;reason=no-answer, <sip:2@b>')
    assert parts == ['"Rossi, Mario" <sip:1@a>;reason=no-answer', "<sip:2@b>"]


def test_empty_extension_list_accepts_any_diverting_party() -> None:
    classifier = Classifier(RicadutaConfig())
    verdict = classifier.classify(diversion=["<sip:9999@x>;reason=no-answer"])
    assert verdict is not None and verdict.tag == "ricaduta"


def test_switchboard_wins_over_diversion(classifier: Classifier) -> None:
    verdict = classifier.classify(
        caller="0461495111", diversion=["<sip:4321@pbx>;reason=no-answer"]
    )
    assert verdict is not None and verdict.tag == "switchboard"


@given(st.text(max_size=80), st.text(max_size=80), st.text(max_size=30))
def test_garbage_headers_never_raise(diversion: str, history: str, caller: str) -> None:
    Classifier(CONFIG).classify(caller=caller, diversion=[diversion], history_info=[history])


def test_pbx_cancelling_a_ringing_extension_is_no_answer(classifier: Classifier) -> None:
    header = "<sip:4321@pbx?Reason=SIP%3Bcause%3D487>;index=1, <sip:800264760@cc>;index=1.1"
    verdict = classifier.classify(history_info=[header])
    assert verdict is not None and verdict.reason == "no-answer"


def test_deflection_cause_is_not_ricaduta_by_default(classifier: Classifier) -> None:
    header = "<sip:4321@pbx>;index=1, <sip:800264760@cc;cause=480>;index=1.1"
    [diverted] = parse_history_info([header])
    assert diverted.reason == "deflection"
    assert classifier.classify(history_info=[header]) is None
