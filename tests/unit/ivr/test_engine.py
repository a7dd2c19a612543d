"""The IVR interpreter in virtual time: scripted inputs with explicit ``now``."""

from __future__ import annotations

import pytest

from ivr.config import ServiceConfig
from ivr.engine import IvrRun, Phase
from ivr.events import (
    CallerHungUp,
    ChoiceFailed,
    ChoiceMade,
    Command,
    DigitPressed,
    DigitReceived,
    EnqueueCall,
    Fact,
    HangUp,
    IvrEntered,
    IvrLeft,
    LanguageChanged,
    PlayPrompt,
    PromptFinished,
    StartVoicemail,
    StopPrompt,
    TransferCall,
    WelcomeFinished,
)
from routing.calendar import Closed, Open

MENU = ("menu-trentino-digitale",)


def commands(run: IvrRun) -> list[Command]:
    out = []
    while (command := run.next_command()) is not None:
        out.append(command)
    return out


def facts(run: IvrRun) -> list[Fact]:
    out = []
    while (fact := run.next_event()) is not None:
        out.append(fact)
    return out


def play(run: IvrRun) -> PlayPrompt:
    """The single command pending must be a PlayPrompt: return it."""
    [command] = commands(run)
    assert isinstance(command, PlayPrompt), command
    return command


def finish(run: IvrRun, *, now: float) -> None:
    run.prompt_finished(now=now)


def start(config: ServiceConfig, *, now: float = 0.0, **kwargs: object) -> IvrRun:
    kwargs.setdefault("is_open", Open())
    return IvrRun(config, now=now, **kwargs)  # type: ignore[arg-type]


def to_menu(run: IvrRun, *, now: float = 10.0) -> None:
    """Let the welcome play out and the menu prompt finish at ``now``."""
    assert play(run).prompts == ("welcome-trentino-digitale", "for-english")
    finish(run, now=now - 1)
    assert play(run).prompts == MENU
    finish(run, now=now)


def test_trentino_digitale_choice_3_goes_to_trentino_in_rete(
    services: dict[str, ServiceConfig],
) -> None:
    run = start(services["trentino-digitale"], now=0.0, service="trentino-digitale")
    welcome = play(run)
    assert (welcome.language, welcome.barge_in) == ("it", False)
    finish(run, now=8.0)
    menu = play(run)
    assert (menu.prompts, menu.barge_in) == (MENU, True)
    finish(run, now=20.0)
    assert run.phase is Phase.COLLECTING and run.get_timer() == 26.0
    run.handle_digit("3", now=21.0)
    assert play(run).prompts == ("please-hold",)
    assert run.get_timer() is None
    finish(run, now=24.0)
    assert commands(run) == [
        EnqueueCall(queue="trentino-in-rete", priority=0, skill="trentino-in-rete")
    ]
    assert facts(run) == [
        IvrEntered(at=0.0, service="trentino-digitale", language="it"),
        WelcomeFinished(at=8.0, node="welcome"),
        DigitPressed(at=21.0, digit="3", node="menu"),
        ChoiceMade(at=21.0, node="menu", digit="3", target="trentino-in-rete"),
        IvrLeft(at=24.0, to_queue="trentino-in-rete", outcome="queue"),
    ]
    assert run.get_timer() is None
    assert run.phase.value == "done"


@pytest.mark.parametrize(
    ("digit", "queue"),
    [
        ("1", "mepat"),
        ("2", "cps"),
        ("4", "geo-cartografico"),
        ("5", "trentino-accessibile"),
        ("6", "banda-ultra-larga"),
    ],
)
def test_every_menu_option_reaches_its_own_queue(
    services: dict[str, ServiceConfig], digit: str, queue: str
) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run)
    run.handle_digit(digit, now=11.0)
    play(run)
    finish(run, now=12.0)
    assert commands(run) == [EnqueueCall(queue=queue, priority=0, skill=queue)]


def test_notice_is_played_before_the_menu(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"], notice=lambda: "notice-trentino-digitale-1")
    play(run)
    finish(run, now=5.0)
    notice = play(run)
    assert notice.prompts == ("notice-intro", "notice-trentino-digitale-1")
    assert notice.barge_in is False
    run.handle_digit("3", now=6.0)  # no barge-in through a notice
    assert commands(run) == []
    finish(run, now=9.0)
    assert play(run).prompts == MENU


def test_invalid_digits_follow_the_retry_rule(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run, now=10.0)
    run.handle_digit("7", now=11.0)
    assert play(run).prompts == ("invalid-choice", *MENU)
    finish(run, now=20.0)
    run.handle_digit("#", now=21.0)
    assert play(run).prompts == ("invalid-choice", *MENU)
    finish(run, now=30.0)
    run.handle_digit("0", now=31.0)
    last = play(run)
    assert (last.prompts, last.barge_in) == (("invalid-choice",), False)
    finish(run, now=32.0)
    assert play(run).prompts == ("too-many-attempts", "goodbye")
    finish(run, now=40.0)
    assert commands(run) == [HangUp(reason="no_choice")]
    failures = [f for f in facts(run) if isinstance(f, ChoiceFailed)]
    assert [(f.cause, f.attempt, f.at) for f in failures] == [
        ("invalid", 1, 11.0),
        ("invalid", 2, 21.0),
        ("invalid", 3, 31.0),
    ]


def test_silence_times_out_at_exact_instants(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run, now=10.0)
    assert run.get_timer() == 16.0
    run.handle_timer(now=15.999)
    assert commands(run) == []
    run.handle_timer(now=16.0)
    assert play(run).prompts == ("no-input", *MENU)
    assert run.get_timer() is None  # no timer while the prompt plays
    finish(run, now=25.0)
    assert run.get_timer() == 31.0
    run.handle_timer(now=31.0)
    assert play(run).prompts == ("no-input", *MENU)
    finish(run, now=40.0)
    run.handle_timer(now=46.0)
    assert play(run).prompts == ("no-input",)
    finish(run, now=47.0)
    assert play(run).prompts == ("too-many-attempts", "goodbye")
    causes = [(f.cause, f.attempt) for f in facts(run) if isinstance(f, ChoiceFailed)]
    assert causes == [("timeout", 1), ("timeout", 2), ("timeout", 3)]


def test_invalid_digits_and_silence_share_one_count(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run, now=10.0)
    run.handle_timer(now=16.0)
    play(run)
    finish(run, now=20.0)
    run.handle_digit("8", now=21.0)
    play(run)
    finish(run, now=30.0)
    run.handle_digit("2", now=31.0)  # a valid choice on the last attempt still counts
    assert play(run).prompts == ("please-hold",)


def test_valid_choice_after_a_failure(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run, now=10.0)
    run.handle_digit("9", now=11.0)  # 9 switches language only during the welcome
    play(run)
    finish(run, now=20.0)
    run.handle_digit("1", now=21.0)
    play(run)
    finish(run, now=22.0)
    assert commands(run) == [EnqueueCall(queue="mepat", priority=0, skill="mepat")]


def test_barge_in_stops_the_menu_and_ignores_its_late_end(
    services: dict[str, ServiceConfig],
) -> None:
    run = start(services["trentino-digitale"])
    play(run)
    finish(run, now=5.0)
    menu = play(run)
    run.handle_digit("5", now=7.0)
    stop, hold = commands(run)
    assert stop == StopPrompt(play_id=menu.play_id)
    assert isinstance(hold, PlayPrompt) and hold.prompts == ("please-hold",)
    run.prompt_finished(now=7.1, play_id=menu.play_id)  # the stopped menu's late end
    assert commands(run) == []
    run.prompt_finished(now=9.0, play_id=hold.play_id)
    assert commands(run) == [
        EnqueueCall(queue="trentino-accessibile", priority=0, skill="trentino-accessibile")
    ]


def test_barge_in_during_a_replayed_menu(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run, now=10.0)
    run.handle_digit("7", now=11.0)
    replay = play(run)
    run.handle_digit("6", now=12.0)
    assert commands(run)[0] == StopPrompt(play_id=replay.play_id)


def test_welcome_without_barge_in_ignores_menu_digits(
    services: dict[str, ServiceConfig],
) -> None:
    run = start(services["trentino-digitale"])
    play(run)
    run.handle_digit("3", now=1.0)
    assert commands(run) == []
    assert run.phase is Phase.PLAYING
    finish(run, now=5.0)
    assert play(run).prompts == MENU


def test_nine_during_the_welcome_switches_to_english(
    services: dict[str, ServiceConfig],
) -> None:
    run = start(services["trentino-digitale"])
    welcome = play(run)
    run.handle_digit("9", now=2.0)
    stop, again = commands(run)
    assert stop == StopPrompt(play_id=welcome.play_id)
    assert isinstance(again, PlayPrompt)
    assert (again.prompts, again.language) == (welcome.prompts, "en")
    finish(run, now=6.0)
    menu = play(run)
    assert (menu.prompts, menu.language) == (MENU, "en")
    assert run.language == "en"
    assert LanguageChanged(at=2.0, language="en") in facts(run)


def test_initial_language_comes_from_the_caller(services: dict[str, ServiceConfig]) -> None:
    run = start(services["uru"], language="en")
    assert play(run).language == "en"


def test_closed_service_plays_hours_then_hangs_up(services: dict[str, ServiceConfig]) -> None:
    run = start(services["uru"], is_open=Closed(reason="after_hours"))
    assert play(run).prompts == ("welcome-uru", "for-english")
    finish(run, now=4.0)
    assert play(run).prompts == ("opening-hours",)
    finish(run, now=12.0)
    assert play(run).prompts == ("goodbye",)
    finish(run, now=14.0)
    assert commands(run) == [HangUp(reason="closed")]
    assert facts(run)[-1] == IvrLeft(at=14.0, to_queue=None, outcome="hangup")


@pytest.mark.parametrize("service", ["trentino-digitale", "uru", "io-partecipo", "pagopa"])
def test_holiday_adds_the_holiday_message(services: dict[str, ServiceConfig], service: str) -> None:
    run = start(services[service], is_open=Closed(reason="holiday"))
    play(run)
    finish(run, now=4.0)
    assert play(run).prompts == ("holiday-closed", "opening-hours")
    finish(run, now=12.0)
    assert play(run).prompts == ("goodbye",)


@pytest.mark.parametrize("reason", ["after_hours", "holiday", "closure", "override"])
def test_agenzia_after_hours_takes_a_voicemail(
    services: dict[str, ServiceConfig], reason: str
) -> None:
    run = start(services["agenzia-lavoro"], is_open=Closed(reason=reason))  # type: ignore[arg-type]
    play(run)
    run.handle_digit("9", now=1.0)  # English for this caller
    commands(run)
    finish(run, now=4.0)
    assert play(run).prompts[-1] == "opening-hours"
    finish(run, now=12.0)
    intro = play(run)
    assert (intro.prompts, intro.barge_in) == (("voicemail-intro", "beep"), False)
    finish(run, now=22.0)
    assert commands(run) == [
        StartVoicemail(mailbox="agenzia-lavoro", max_seconds=120, language="en")
    ]
    assert facts(run)[-1] == IvrLeft(at=22.0, to_queue=None, outcome="voicemail")


def test_agenzia_open_goes_to_its_queue(services: dict[str, ServiceConfig]) -> None:
    run = start(services["agenzia-lavoro"])
    play(run)
    finish(run, now=6.0)
    play(run)
    finish(run, now=9.0)
    assert commands(run) == [
        EnqueueCall(queue="agenzia-lavoro", priority=0, skill="agenzia-lavoro")
    ]


def test_caller_hang_up_ends_the_run(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run, now=10.0)
    run.receive(CallerHungUp(at=12.5))
    assert run.phase is Phase.DONE and run.get_timer() is None
    assert facts(run)[-1] == IvrLeft(at=12.5, to_queue=None, outcome="caller_hung_up")
    run.receive(DigitReceived(digit="3", at=13.0))
    run.receive(PromptFinished(at=13.0))
    run.handle_timer(now=100.0)
    assert commands(run) == [] and facts(run) == []


def test_non_dtmf_input_is_ignored(services: dict[str, ServiceConfig]) -> None:
    run = start(services["trentino-digitale"])
    to_menu(run, now=10.0)
    for junk in ("", "12", "x", "\x00"):
        run.handle_digit(junk, now=11.0)
    assert commands(run) == [] and run.get_timer() == 16.0


def _tiny(ivr: dict[str, object], **extra: object) -> ServiceConfig:
    return ServiceConfig.model_validate({"entry": "start", "ivr": ivr, **extra})


def test_barged_digit_during_a_play_is_kept_for_the_next_menu() -> None:
    service = _tiny(
        {
            "start": {
                "type": "play",
                "prompts": ["welcome-uru"],
                "barge_in": True,
                "welcome": True,
                "next": "menu",
            },
            "menu": {
                "type": "menu",
                "prompts": ["menu-x"],
                "options": {"1": "out"},
                "default": "out",
            },
            "out": {"type": "transfer", "number": "+390461000000"},
        }
    )
    run = start(service)
    play(run)
    run.handle_digit("1", now=1.0)
    assert commands(run) == [StopPrompt(play_id=1), TransferCall(number="+390461000000")]
    assert [type(f) for f in facts(run)] == [
        IvrEntered,
        DigitPressed,
        WelcomeFinished,
        ChoiceMade,
        IvrLeft,
    ]


def test_language_node_and_schedule_without_holiday_branch() -> None:
    service = _tiny(
        {
            "start": {"type": "schedule", "open": "en", "closed": "bye"},
            "en": {"type": "language", "language": "en", "next": "bye"},
            "bye": {"type": "hangup", "reason": "test"},
        }
    )
    closed = start(service, is_open=Closed(reason="holiday"))
    assert commands(closed) == [HangUp(reason="test")]
    assert closed.language == "it"
    opened = start(service)
    assert commands(opened) == [HangUp(reason="test")]
    assert opened.language == "en"


def test_a_silent_loop_hangs_up_instead_of_spinning() -> None:
    service = _tiny(
        {
            "start": {"type": "language", "language": "en", "next": "again"},
            "again": {"type": "language", "language": "it", "next": "start"},
        }
    )
    run = start(service)
    assert commands(run) == [HangUp(reason="ivr_error")]
    assert facts(run)[-1].outcome == "error"  # type: ignore[union-attr]


def test_unknown_node_hangs_up_with_an_error() -> None:
    service = _tiny({"start": {"type": "play", "prompts": ["x"], "next": "nowhere"}})
    run = start(service)
    play(run)
    finish(run, now=1.0)
    assert commands(run) == [HangUp(reason="ivr_error")]


def test_language_digit_in_the_current_language_does_not_restart_the_welcome(
    services: dict[str, ServiceConfig],
) -> None:
    run = start(services["trentino-digitale"], language="en")
    play(run)
    run.handle_digit("9", now=1.0)
    assert commands(run) == []
    assert not any(isinstance(f, LanguageChanged) for f in facts(run))


def test_is_open_may_be_a_bool(services: dict[str, ServiceConfig]) -> None:
    closed = start(services["uru"], is_open=False)
    play(closed)
    finish(closed, now=3.0)
    assert play(closed).prompts == ("opening-hours",)
    opened = start(services["uru"], is_open=True)
    play(opened)
    finish(opened, now=3.0)
    assert play(opened).prompts == ("please-hold",)


def test_unavailable_initial_language_falls_back_to_the_default(
    services: dict[str, ServiceConfig],
) -> None:
    run = start(services["uru"], language="de")
    assert play(run).language == "it"
