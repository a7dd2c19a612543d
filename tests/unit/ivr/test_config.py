"""The example services load, pass the validator, and the validator catches mistakes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from ivr.check import ConfigProblem, check_services
from ivr.config import MenuNode, QueueNode, ServiceConfig, ServiceConfigError, load_services
from ivr.engine import IvrRun
from ivr.events import EnqueueCall, IvrLeft
from ivr.prompts import Catalogue
from routing.calendar import Open
from routing.dialplan import DialPlan

# The queues issue 4 names: one per Trentino Digitale menu skill, one per other service.
QUEUES = {
    "mepat",
    "cps",
    "trentino-in-rete",
    "geo-cartografico",
    "trentino-accessibile",
    "banda-ultra-larga",
    "agenzia-lavoro",
    "uru",
    "io-partecipo",
    "pagopa",
}


def problems_of(document: dict[str, Any], catalogue: Catalogue) -> list[str]:
    return [str(p) for p in check_services(load_services(document), catalogue.ids(), QUEUES)]


def test_example_has_no_problem(services: dict[str, ServiceConfig], catalogue: Catalogue) -> None:
    assert check_services(services, catalogue.ids(), QUEUES) == []


def test_example_has_the_five_services_and_their_numbers(
    services: dict[str, ServiceConfig],
) -> None:
    plan = DialPlan.from_services({sid: s.numbers for sid, s in services.items()})
    assert plan.lookup("800228040") == "trentino-digitale"
    assert plan.lookup("+39800264760") == "agenzia-lavoro"
    assert plan.lookup("0461800133") == "uru"
    assert plan.lookup("0461 499335") == "io-partecipo"
    assert services["pagopa"].numbers == []
    assert set(services) == {"trentino-digitale", "agenzia-lavoro", "uru", "io-partecipo", "pagopa"}


def test_trentino_digitale_menu_maps_digits_to_skills(services: dict[str, ServiceConfig]) -> None:
    ivr = services["trentino-digitale"].ivr
    menu = ivr["menu"]
    targets = {digit: ivr[node] for digit, node in menu.options.items()}  # type: ignore[union-attr]
    queues = {d: (n.queue, n.skill) for d, n in targets.items() if isinstance(n, QueueNode)}
    assert queues == {
        "1": ("mepat", "mepat"),
        "2": ("cps", "cps"),
        "3": ("trentino-in-rete", "trentino-in-rete"),
        "4": ("geo-cartografico", "geo-cartografico"),
        "5": ("trentino-accessibile", "trentino-accessibile"),
        "6": ("banda-ultra-larga", "banda-ultra-larga"),
    }


def test_example_call_through_menu_choice_3(services: dict[str, ServiceConfig]) -> None:
    run = IvrRun(services["trentino-digitale"], now=0.0, is_open=Open(), notice=lambda: None)
    command = None
    # Welcome, then menu: answer every prompt; press 3 once the menu is collecting.
    for step in range(1, 20):
        command = run.next_command()
        if isinstance(command, EnqueueCall) or (command is None and run.get_timer() is None):
            break
        if run.get_timer() is not None:
            run.handle_digit("3", now=float(step))
        else:
            run.prompt_finished(now=float(step))
    assert command == EnqueueCall(queue="trentino-in-rete", priority=0, skill="trentino-in-rete")
    left = [f for f in iter(run.next_event, None) if isinstance(f, IvrLeft)]
    assert [f.to_queue for f in left] == ["trentino-in-rete"]


def test_unknown_menu_target_names_its_key_path(
    example_document: dict[str, Any], catalogue: Catalogue
) -> None:
    document = copy.deepcopy(example_document)
    document["services"]["trentino-digitale"]["ivr"]["menu"]["options"]["7"] = "sportello"
    assert problems_of(document, catalogue) == [
        "services.trentino-digitale.ivr.menu.options.7: unknown node 'sportello'"
    ]


def test_unknown_prompt_queue_and_entry(
    example_document: dict[str, Any], catalogue: Catalogue
) -> None:
    document = copy.deepcopy(example_document)
    uru = document["services"]["uru"]
    uru["ivr"]["closed"]["prompts"] = ["opening-hours", "orari-estivi"]
    uru["ivr"]["queue"]["queue"] = "urp"
    document["services"]["pagopa"]["entry"] = "benvenuto"
    problems = problems_of(document, catalogue)
    assert "services.uru.ivr.closed.prompts.1: unknown prompt 'orari-estivi'" in problems
    assert "services.uru.ivr.queue.queue: unknown queue 'urp'" in problems
    assert "services.pagopa.entry: unknown node 'benvenuto'" in problems


def test_unreachable_node(example_document: dict[str, Any], catalogue: Catalogue) -> None:
    document = copy.deepcopy(example_document)
    document["services"]["io-partecipo"]["ivr"]["orphan"] = {"type": "hangup"}
    assert problems_of(document, catalogue) == [
        "services.io-partecipo.ivr.orphan: node 'orphan' is unreachable from entry 'welcome'"
    ]


def test_removing_a_menu_option_makes_its_queue_unreachable(
    example_document: dict[str, Any], catalogue: Catalogue
) -> None:
    document = copy.deepcopy(example_document)
    del document["services"]["trentino-digitale"]["ivr"]["menu"]["options"]["4"]
    assert problems_of(document, catalogue) == [
        "services.trentino-digitale.ivr.geo-cartografico: node 'geo-cartografico' is "
        "unreachable from entry 'welcome'"
    ]


def test_silent_loop(example_document: dict[str, Any], catalogue: Catalogue) -> None:
    document = copy.deepcopy(example_document)
    ivr = document["services"]["uru"]["ivr"]
    ivr["schedule"]["closed"] = "english"
    ivr["english"] = {"type": "language", "language": "en", "next": "schedule"}
    ivr["closed"]["next"] = "goodbye"
    problems = problems_of(document, catalogue)
    assert any(
        "loop that plays nothing" in p and "schedule" in p and "english" in p for p in problems
    )


def test_duplicate_number(example_document: dict[str, Any], catalogue: Catalogue) -> None:
    document = copy.deepcopy(example_document)
    document["services"]["pagopa"]["numbers"] = ["+39 0461 800133"]
    assert problems_of(document, catalogue) == [
        "services.pagopa.numbers.0: '+39 0461 800133' already belongs to 'uru'"
    ]


def test_english_must_be_reachable(example_document: dict[str, Any], catalogue: Catalogue) -> None:
    document = copy.deepcopy(example_document)
    document["services"]["uru"]["languages"] = {"default": "it", "switch": {}}
    document["services"]["uru"]["ivr"]["welcome"]["welcome"] = False
    problems = problems_of(document, catalogue)
    assert "services.uru.ivr: no welcome node (play, welcome: true)" in problems
    assert any(p.startswith("services.uru.languages.switch: language 'en'") for p in problems)


def test_switch_to_an_unavailable_language(
    example_document: dict[str, Any], catalogue: Catalogue
) -> None:
    document = copy.deepcopy(example_document)
    document["services"]["uru"]["languages"] = {"switch": {"9": "en", "8": "de"}}
    assert problems_of(document, catalogue) == [
        "services.uru.languages.switch.8: 'de' is not an available language"
    ]


def test_shape_errors_name_their_key_path(example_document: dict[str, Any]) -> None:
    document = copy.deepcopy(example_document)
    menu = document["services"]["trentino-digitale"]["ivr"]["menu"]
    menu["timeout"] = -1
    menu["options"]["10"] = "mepat"
    document["services"]["uru"]["ivr"]["queue"]["type"] = "coda"
    with pytest.raises(ServiceConfigError) as raised:
        load_services(document)
    paths = [problem.split(":")[0] for problem in raised.value.problems]
    assert "services.trentino-digitale.ivr.menu.timeout" in paths
    assert "services.trentino-digitale.ivr.menu.options.10.[key]" in paths
    assert "services.uru.ivr.queue" in paths


def test_problem_renders_path_and_message() -> None:
    assert str(ConfigProblem(path="services.x.entry", message="boom")) == "services.x.entry: boom"


def test_unquoted_digit_keys_mean_digits() -> None:
    document = yaml.safe_load(
        """
services:
  demo:
    languages: {switch: {9: en}}
    ivr:
      start: {type: play, prompts: [welcome-uru], welcome: true, next: menu}
      menu: {type: menu, prompts: [menu-x], options: {1: q, 0: q}, default: q}
      q: {type: queue, queue: uru}
"""
    )
    service = load_services(document)["demo"]
    menu = service.ivr["menu"]
    assert isinstance(menu, MenuNode) and set(menu.options) == {"1", "0"}
    assert service.languages.switch == {"9": "en"}


def test_unquoted_numbers_are_refused() -> None:
    document = yaml.safe_load(
        "services: {demo: {numbers: [0461400133], ivr: {q: {type: queue, queue: uru}}}}"
    )
    with pytest.raises(ServiceConfigError, match=r"services\.demo\.numbers: .*quoted"):
        load_services(document)
