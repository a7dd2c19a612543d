"""Configuration validation, feature codes, operator transitions, deadlines, strategies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.config import AcdConfig, parse_acd_config
from acd.errors import AcdConfigError, InvalidOperatorActionError
from acd.feature_codes import FEATURE_CODES, FeatureAction, FeatureCommand, parse_feature_code
from acd.operator import TRANSITIONS, Operator, OperatorInput, OperatorState
from acd.strategy import STRATEGIES, Candidate, get_strategy, register_strategy
from acd.timers import Deadlines

# -------------------------------------------------------------------------- config


def config(**queue: Any) -> dict[str, Any]:
    return {"queues": [{"name": "q", "skill": "s", **queue}], "operators": []}


def test_defaults_follow_the_issue() -> None:
    queue = parse_acd_config(config()).queues[0]
    assert (queue.strategy, queue.ring_timeout, queue.wrapup) == ("longest-idle", 15.0, 0.0)
    assert queue.on_overflow.action.value == "message-and-hangup"
    assert queue.on_no_operator is None and queue.max_wait is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (config(strategy="random"), "queues.0.strategy: Value error, unknown strategy 'random'"),
        (config(ring_timeout=0), "queues.0.ring_timeout: Input should be greater than 0"),
        (config(max_len=0), "queues.0.max_len"),
        (config(callback_digit="12"), "queues.0.callback_digit"),
        (config(colour="blue"), "queues.0.colour: Extra inputs are not permitted"),
        (config(on_overflow={"action": "queue"}), "needs the target queue"),
        (config(on_overflow={"action": "queue", "target": "x"}), "unknown queue 'x'"),
        (config(on_overflow={"action": "queue", "target": "q"}), "loops: q -> q"),
        (config(name="bad name"), "queues.0.name"),
        (
            {"queues": [{"name": "q", "skill": "s"}] * 2},
            "duplicate queue name 'q'",
        ),
        (
            {"operators": [{"id": "a", "skills": {"s": 11}}]},
            "operators.0.skills.s: Input should be less than or equal to 10",
        ),
        ({"operators": [{"id": "a"}, {"id": "a"}]}, "duplicate operator id 'a'"),
        ({"pause_reasons": {"x": "lunch"}}, "pause_reasons.x"),
    ],
)
def test_invalid_configuration_names_the_problem(data: dict[str, Any], message: str) -> None:
    with pytest.raises(AcdConfigError) as info:
        parse_acd_config(data)
    assert message in str(info.value)


def test_overflow_loop_through_two_queues_is_found() -> None:
    data = {
        "queues": [
            {"name": "a", "skill": "s", "on_overflow": {"action": "queue", "target": "b"}},
            {"name": "b", "skill": "s", "on_no_operator": {"action": "queue", "target": "a"}},
            {"name": "c", "skill": "s", "on_overflow": {"action": "queue", "target": "a"}},
        ]
    }
    with pytest.raises(AcdConfigError, match=r"a -> b -> a"):
        parse_acd_config(data)


def test_an_overflow_chain_without_loop_is_valid() -> None:
    data = {
        "queues": [
            {"name": "a", "skill": "s", "on_overflow": {"action": "queue", "target": "b"}},
            {"name": "b", "skill": "s", "on_overflow": {"action": "queue", "target": "c"}},
            {"name": "c", "skill": "s", "on_overflow": {"action": "voicemail", "target": "m"}},
        ]
    }
    assert isinstance(parse_acd_config(data), AcdConfig)


# -------------------------------------------------------------------- feature codes


@pytest.mark.parametrize(
    ("dialed", "expected"),
    [
        ("*41", FeatureCommand(action=FeatureAction.LOGIN)),
        ("*40", FeatureCommand(action=FeatureAction.LOGOUT)),
        ("*42", FeatureCommand(action=FeatureAction.PAUSE)),
        ("*42 1", FeatureCommand(action=FeatureAction.PAUSE, reason_code="1")),
        ("*42*12", FeatureCommand(action=FeatureAction.PAUSE, reason_code="12")),
        ("*423", FeatureCommand(action=FeatureAction.PAUSE, reason_code="3")),
        ("*43#", FeatureCommand(action=FeatureAction.READY)),
        ("%2A44", FeatureCommand(action=FeatureAction.WRAPUP_DONE)),
        (" *45 ", FeatureCommand(action=FeatureAction.RESOLVED)),
        ("*46", FeatureCommand(action=FeatureAction.ESCALATED)),
    ],
)
def test_feature_codes(dialed: str, expected: FeatureCommand) -> None:
    assert parse_feature_code(dialed) == expected


@pytest.mark.parametrize("dialed", ["", "*4", "*47", "*411", "41", "*42*", "*42x", "800264760"])
def test_other_numbers_are_not_feature_codes(dialed: str) -> None:
    assert parse_feature_code(dialed) is None


@given(st.text(max_size=12))
def test_parsing_never_raises(dialed: str) -> None:
    command = parse_feature_code(dialed)
    assert command is None or command.action in FEATURE_CODES.values()


# -------------------------------------------------------------- operator machine


def test_every_state_has_its_row_and_logged_out_allows_only_login_and_logout() -> None:
    assert set(TRANSITIONS) == set(OperatorState)
    assert set(TRANSITIONS[OperatorState.LOGGED_OUT]) == {OperatorInput.LOGIN, OperatorInput.LOGOUT}


def test_illegal_input_raises_and_leaves_the_state() -> None:
    op = Operator(id="a", name="", skills={})
    with pytest.raises(InvalidOperatorActionError):
        op.apply(OperatorInput.OFFER, now=1)
    assert op.state is OperatorState.LOGGED_OUT


def test_idle_time_survives_an_unanswered_offer() -> None:
    op = Operator(id="a", name="", skills={})
    op.apply(OperatorInput.LOGIN, now=10)
    op.apply(OperatorInput.OFFER, now=20)
    op.apply(OperatorInput.OFFER_ENDED, now=25)
    assert op.idle_since == 10
    op.apply(OperatorInput.PAUSE, now=30)
    op.apply(OperatorInput.READY, now=40)
    assert op.idle_since == 40


def test_login_while_paused_keeps_the_pause_and_its_reason() -> None:
    op = Operator(id="a", name="", skills={})
    op.apply(OperatorInput.LOGIN, now=1)
    op.apply(OperatorInput.PAUSE, now=2, reason="lunch")
    assert op.apply(OperatorInput.LOGIN, now=3) == (OperatorState.PAUSED, OperatorState.PAUSED)
    assert op.reason == "lunch"
    op.apply(OperatorInput.PAUSE, now=4, reason="training")
    assert op.reason == "training"


@given(st.lists(st.sampled_from(list(OperatorInput)), max_size=30))
def test_accounted_time_always_sums_to_the_elapsed_time(inputs: list[OperatorInput]) -> None:
    op = Operator(id="a", name="", skills={})
    now = 0.0
    for event in inputs:
        now += 1.5
        if op.can(event):
            op.apply(event, now=now)
        assert op.state in TRANSITIONS
    assert sum(op.time_in_states(now=now + 1).values()) == pytest.approx(now + 1)


# ----------------------------------------------------------------------- deadlines


def test_deadlines_fire_in_order_and_honour_re_arming_and_cancelling() -> None:
    timers = Deadlines()
    timers.schedule("a", 5)
    timers.schedule("b", 3)
    timers.schedule("c", 4)
    timers.schedule("a", 2)  # re-armed earlier
    timers.cancel("c")
    assert timers.earliest() == 2
    assert timers.pop_due(1) is None
    assert [timers.pop_due(10), timers.pop_due(10), timers.pop_due(10)] == ["a", "b", None]
    assert len(timers) == 0 and timers.earliest() is None


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 100)), max_size=40))
def test_deadlines_agree_with_a_dict(arms: list[tuple[int, float]]) -> None:
    timers, model = Deadlines(), dict[int, float]()
    for key, at in arms:
        timers.schedule(key, at)
        model[key] = at
    fired: list[int] = []
    while (due := timers.pop_due(1000)) is not None:
        assert isinstance(due, int)
        fired.append(due)
    assert sorted(fired) == sorted(model)
    assert [model[k] for k in fired] == sorted(model.values())


# ---------------------------------------------------------------------- strategies


def test_a_registered_strategy_is_usable_by_name() -> None:
    @register_strategy("newest-first")
    def newest(candidates: Sequence[Candidate], skill: str) -> list[Candidate]:
        return [max(candidates, key=lambda c: c.idle_since)]

    try:
        queue = parse_acd_config(config(strategy="newest-first")).queues[0]
        assert get_strategy(queue.strategy) is newest
    finally:
        del STRATEGIES["newest-first"]
    with pytest.raises(AcdConfigError, match="unknown strategy"):
        get_strategy("newest-first")
