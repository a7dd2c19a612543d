"""Property test: any sequence of inputs keeps the IVR run's invariants."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.config import load_services
from ivr.engine import IvrRun, Phase
from ivr.events import (
    ChoiceFailed,
    EnqueueCall,
    HangUp,
    IvrLeft,
    PlayPrompt,
    StartVoicemail,
    StopPrompt,
    TransferCall,
)
from routing.calendar import Closed, Open

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "services.example.yaml"
SERVICES = load_services(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
TERMINAL = (EnqueueCall, HangUp, StartVoicemail, TransferCall)

# Prompt ends and timer ticks dominate so that runs get deep into the menu; the
# caller's hang-up, which ends every run, is drawn separately as the last input.
inputs = st.lists(
    st.one_of(
        st.tuples(st.just("digit"), st.sampled_from("0123456789*#")),
        st.tuples(st.just("finished"), st.sampled_from(["current", "current", "stale", "none"])),
        st.tuples(st.just("finished"), st.just("current")),
        st.tuples(st.just("timer"), st.sampled_from(["due", "early"])),
    ),
    max_size=40,
)
states = st.sampled_from(
    [Open(), Closed(reason="after_hours"), Closed(reason="holiday"), Closed(reason="override")]
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SERVICES)), states, st.booleans(), inputs, st.booleans())
def test_invariants_hold_for_any_input_sequence(
    service: str,
    state: Open | Closed,
    with_notice: bool,
    script: list[tuple[str, str]],
    hang_up: bool,
) -> None:
    notice = (lambda: "notice-placeholder") if with_notice else None
    run = IvrRun(SERVICES[service], now=0.0, is_open=state, notice=notice)
    now, current_play, terminal_seen, left = 0.0, 0, False, 0
    attempts: list[int] = []
    for kind, arg in [("start", ""), *script, *([("hang_up", "")] if hang_up else [])]:
        now += 1.0
        if kind == "digit":
            run.handle_digit(arg, now=now)
        elif kind == "finished":
            play_id = {"current": current_play, "stale": current_play - 1, "none": None}[arg]
            run.prompt_finished(now=now, play_id=play_id)
        elif kind == "timer":
            deadline = run.get_timer()
            if deadline is not None:
                now = max(now, deadline if arg == "due" else deadline - 0.5)
            run.handle_timer(now=now)
        elif kind == "hang_up":
            run.hang_up(now=now)
        while (command := run.next_command()) is not None:
            assert not terminal_seen, "no command after the call left the IVR"
            if isinstance(command, PlayPrompt):
                assert command.play_id > current_play
                current_play = command.play_id
            elif isinstance(command, StopPrompt):
                assert command.play_id == current_play
            else:
                assert isinstance(command, TERMINAL)
                terminal_seen = True
        while (fact := run.next_event()) is not None:
            assert fact.at <= now
            left += isinstance(fact, IvrLeft)
            if isinstance(fact, ChoiceFailed):
                attempts.append(fact.attempt)
        assert (run.get_timer() is not None) == (run.phase is Phase.COLLECTING)
        assert left == (1 if run.phase is Phase.DONE else 0)
        if terminal_seen:
            assert run.phase is Phase.DONE
    # The only menu (Trentino Digitale) allows 1 + 2 attempts before its default.
    assert all(1 <= attempt <= 3 for attempt in attempts)
