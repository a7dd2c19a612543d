"""Service notices: set, cleared, lapsing, persisted, and heard before the menu."""

from __future__ import annotations

import datetime as dt

from ivr.config import ServiceConfig
from ivr.engine import IvrRun
from ivr.events import PlayPrompt
from ivr.notice import Notice, Notices, notice_prompt_id

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def first_prompts_after_welcome(service: ServiceConfig, notices: Notices) -> tuple[str, ...]:
    run = IvrRun(service, now=0.0, is_open=True, notice=notices.lookup("uru", T0))
    run.next_command()
    run.prompt_finished(now=3.0)
    command = run.next_command()
    assert isinstance(command, PlayPrompt)
    return command.prompts


def test_notice_is_played_while_set_and_not_after_clearing(
    services: dict[str, ServiceConfig],
) -> None:
    notices = Notices()
    uru = services["uru"]
    assert first_prompts_after_welcome(uru, notices) == ("please-hold",)
    prompt = notice_prompt_id("uru", 3)
    notices.set("uru", Notice(prompt=prompt, text={"it": "Guasto", "en": "Outage"}))
    assert first_prompts_after_welcome(uru, notices) == ("notice-intro", prompt)
    assert notices.clear("uru") is True
    assert notices.clear("uru") is False
    assert first_prompts_after_welcome(uru, notices) == ("please-hold",)


def test_notice_lapses_at_its_until() -> None:
    notices = Notices({"uru": Notice(prompt="notice-uru-1", until=T0)})
    assert notices.lookup("uru", T0 - dt.timedelta(seconds=1))() == "notice-uru-1"
    assert notices.lookup("uru", T0)() is None
    assert notices.lookup("pagopa", T0 - dt.timedelta(days=1))() is None


def test_notices_round_trip_through_json() -> None:
    notices = Notices({"uru": Notice(prompt="notice-uru-1", text={"it": "Guasto"}, until=T0)})
    loaded = Notices.from_json(notices.to_json())
    assert loaded.active("uru", T0 - dt.timedelta(minutes=1)) == notices.active(
        "uru", T0 - dt.timedelta(minutes=1)
    )
