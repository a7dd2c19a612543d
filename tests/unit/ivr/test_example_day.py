"""The example configuration end to end, without SIP: number -> calendar -> IVR."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ivr.config import ServiceConfig
from ivr.engine import IvrRun
from ivr.events import Command, EnqueueCall, HangUp, PlayPrompt, StartVoicemail
from routing.calendar import Calendar
from routing.dialplan import DialPlan
from routing.diversion import Classifier, RicadutaConfig

ROME = ZoneInfo("Europe/Rome")


def outcome(run: IvrRun) -> Command:
    """Let every prompt play out (no digits, silence at menus); return the last command."""
    now, last = 0.0, None
    for _ in range(30):
        command = run.next_command()
        if command is None and run.get_timer() is None:
            break
        now += 5.0
        if command is None:
            run.handle_timer(now=run.get_timer() or now)
        elif isinstance(command, PlayPrompt):
            run.prompt_finished(now=now, play_id=command.play_id)
        last = command
    assert last is not None
    return last


@pytest.mark.parametrize(
    ("dialed", "when", "expected"),
    [
        ("800264760", dt.datetime(2026, 11, 26, 10, tzinfo=ROME), "agenzia-lavoro"),
        ("800264760", dt.datetime(2026, 11, 26, 18, tzinfo=ROME), "voicemail"),
        ("+39800264760", dt.datetime(2026, 12, 8, 10, tzinfo=ROME), "voicemail"),
        ("04618 00133", dt.datetime(2026, 6, 26, 10, tzinfo=ROME), "uru"),
        ("0461499335", dt.datetime(2026, 11, 28, 10, tzinfo=ROME), "hangup"),
        ("800228040", dt.datetime(2026, 11, 26, 7, 59, tzinfo=ROME), "hangup"),
        ("800228040", dt.datetime(2026, 11, 26, 8, 0, tzinfo=ROME), "no_choice"),
    ],
)
def test_a_call_on_a_given_day(
    services: dict[str, ServiceConfig], dialed: str, when: dt.datetime, expected: str
) -> None:
    plan = DialPlan.from_services({sid: s.numbers for sid, s in services.items()})
    calendar = Calendar({sid: s.calendar for sid, s in services.items()})
    service = plan.lookup(dialed)
    assert service is not None
    state = calendar.state(service, when.astimezone(dt.UTC))
    last = outcome(IvrRun(services[service], now=0.0, is_open=state, service=service))
    if isinstance(last, EnqueueCall):
        assert last.queue == expected
    elif isinstance(last, StartVoicemail):
        assert expected == "voicemail" and last.mailbox == "agenzia-lavoro"
    else:
        assert isinstance(last, HangUp)
        assert last.reason == ("closed" if expected == "hangup" else expected)


def test_example_ricaduta_section_loads(example_document: dict[str, Any]) -> None:
    config = RicadutaConfig.model_validate(example_document["ricaduta"])
    verdict = Classifier(config).classify(diversion=["<sip:4321@pbx>;reason=no-answer"])
    assert verdict is not None
    assert (verdict.tag, verdict.queue) == ("ricaduta", "agenzia-lavoro")
