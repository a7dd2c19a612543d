"""The IVR interpreter: one :class:`IvrRun` per call, sans-I/O in the aioquic shape.

Inputs: ``handle_digit``, ``prompt_finished``, ``hang_up``, ``handle_timer`` (all with
keyword-only ``now``, monotonic seconds). Outputs: ``next_command()`` (what to do),
``next_event()`` (timestamped facts), ``get_timer()`` (when to call ``handle_timer``).

A run is always in one phase: PLAYING a prompt list (with a continuation for when it
ends), COLLECTING a menu digit (with a deadline), or DONE. Which input each phase
accepts is the table :data:`TRANSITIONS`; inputs it does not list are ignored, since
late digits and stale prompt ends are normal on a real call. What entering each kind of
node does is :mod:`ivr.nodes`.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from typing import Literal

from ivr.config import MenuNode, ServiceConfig
from ivr.events import (
    CallerHungUp,
    ChoiceFailed,
    ChoiceMade,
    Command,
    DigitPressed,
    DigitReceived,
    Fact,
    HangUp,
    Input,
    IvrEntered,
    IvrLeft,
    LanguageChanged,
    Outcome,
    PlayPrompt,
    PromptFinished,
    StopPrompt,
    WelcomeFinished,
)
from ivr.nodes import NodeEntry, NoticeLookup, Then
from routing.calendar import Closed, Open, State

logger = logging.getLogger(__name__)

DTMF_DIGITS = frozenset("0123456789*#ABCD")  # RFC 4733 DTMF events 0–15
MAX_HOPS = 64  # silent node hops per input before the run gives up (a config loop)


class Phase(enum.Enum):
    PLAYING = "playing"
    COLLECTING = "collecting"
    DONE = "done"


class Event(enum.Enum):
    DIGIT = "digit"
    PROMPT_FINISHED = "prompt_finished"
    TIMER = "timer"
    HANG_UP = "hang_up"


# Phase -> input -> handler. Anything not listed is ignored.
TRANSITIONS: dict[Phase, dict[Event, str]] = {
    Phase.PLAYING: {
        Event.DIGIT: "_on_digit_while_playing",
        Event.PROMPT_FINISHED: "_on_prompt_finished",
        Event.HANG_UP: "_on_hang_up",
    },
    Phase.COLLECTING: {
        Event.DIGIT: "_on_digit_while_collecting",
        Event.TIMER: "_on_timeout",
        Event.HANG_UP: "_on_hang_up",
    },
    Phase.DONE: {},
}


def _as_state(is_open: State | bool) -> State:
    if isinstance(is_open, bool):
        return Open() if is_open else Closed(reason="after_hours")
    return is_open


class IvrRun(NodeEntry):
    """One caller's walk through a service's IVR tree.

    ``is_open`` is the service's calendar state when the call arrived (or a bool);
    ``notice`` returns the prompt id of the service's current outage notice, if any;
    ``language`` overrides the service's default language when the service has it.
    """

    def __init__(
        self,
        service_config: ServiceConfig,
        *,
        now: float,
        language: str | None = None,
        is_open: State | bool,
        notice: NoticeLookup | None = None,
        service: str = "",
    ) -> None:
        self._config = service_config
        self._state = _as_state(is_open)
        self._notice = notice
        languages = service_config.languages
        self._language = language if language in languages.available else languages.default
        self._commands: deque[Command] = deque()
        self._facts: deque[Fact] = deque()
        self._phase = Phase.PLAYING
        self._node = service_config.entry
        self._then = Then("goto")
        self._play_id = 0
        self._welcome = False
        self._barge_in = False
        self._attempts = 0
        self._deadline: float | None = None
        self._hops = 0
        self._facts.append(IvrEntered(at=now, service=service, language=self._language))
        self._enter(service_config.entry, now=now)

    # --- public inputs ---------------------------------------------------------------

    def handle_digit(self, digit: str, *, now: float) -> None:
        """A DTMF digit arrived; unknown characters are logged and dropped."""
        if digit not in DTMF_DIGITS or len(digit) != 1:
            logger.debug("ignoring non-DTMF input %r", digit)
            return
        self._dispatch(Event.DIGIT, now=now, digit=digit)

    def prompt_finished(self, *, now: float, play_id: int | None = None) -> None:
        """The current prompt list ended; a stale ``play_id`` is ignored."""
        if play_id is not None and play_id != self._play_id:
            return
        self._dispatch(Event.PROMPT_FINISHED, now=now)

    def hang_up(self, *, now: float) -> None:
        self._dispatch(Event.HANG_UP, now=now)

    def handle_timer(self, *, now: float) -> None:
        if self._deadline is not None and now >= self._deadline:
            self._dispatch(Event.TIMER, now=now)

    def receive(self, event: Input) -> None:
        """Feed an input event (the same as calling the matching method)."""
        if isinstance(event, DigitReceived):
            self.handle_digit(event.digit, now=event.at)
        elif isinstance(event, PromptFinished):
            self.prompt_finished(now=event.at, play_id=event.play_id)
        elif isinstance(event, CallerHungUp):
            self.hang_up(now=event.at)

    # --- public outputs --------------------------------------------------------------

    def next_command(self) -> Command | None:
        return self._commands.popleft() if self._commands else None

    def next_event(self) -> Fact | None:
        return self._facts.popleft() if self._facts else None

    def get_timer(self) -> float | None:
        return self._deadline

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def node(self) -> str:
        return self._node

    @property
    def language(self) -> str:
        return self._language

    # --- dispatch --------------------------------------------------------------------

    def _dispatch(self, event: Event, *, now: float, digit: str = "") -> None:
        handler = TRANSITIONS[self._phase].get(event)
        if handler is None:
            logger.debug("ignoring %s in phase %s", event.value, self._phase.value)
            return
        self._hops = 0
        if event is Event.DIGIT:
            self._facts.append(DigitPressed(at=now, digit=digit, node=self._node))
            getattr(self, handler)(digit, now=now)
        else:
            getattr(self, handler)(now=now)

    def _on_digit_while_playing(self, digit: str, *, now: float) -> None:
        switch = self._config.languages.switch
        if self._welcome and switch.get(digit, self._language) != self._language:
            self._stop()
            self._language = switch[digit]
            self._facts.append(LanguageChanged(at=now, language=self._language))
            self._enter(self._node, now=now)
        elif self._barge_in:
            self._stop()
            self._end_welcome(now=now)
            self._continue(now=now, digit=digit)

    def _on_prompt_finished(self, *, now: float) -> None:
        self._end_welcome(now=now)
        self._continue(now=now)

    def _on_digit_while_collecting(self, digit: str, *, now: float) -> None:
        self._deadline = None
        self._choose(digit, now=now)

    def _on_timeout(self, *, now: float) -> None:
        self._deadline = None
        self._fail("timeout", now=now)

    def _on_hang_up(self, *, now: float) -> None:
        self._leave(now=now, to_queue=None, outcome="caller_hung_up")

    # --- flow ------------------------------------------------------------------------

    def _continue(self, *, now: float, digit: str | None = None) -> None:
        then = self._then
        if then.kind == "goto":
            self._enter(then.node, now=now, digit=digit)
        elif then.kind == "collect" and digit is not None:
            self._choose(digit, now=now)
        elif then.kind == "collect":
            self._phase = Phase.COLLECTING
            self._deadline = now + self._menu().timeout
        elif then.command is not None:
            self._finish(then.command, now=now, outcome=then.outcome, to_queue=then.to_queue)

    def _enter(self, node_id: str, *, now: float, digit: str | None = None) -> None:
        """Go to a node; ``digit`` is a barged-in digit, kept only if it lands on a menu."""
        node = self._config.ivr.get(node_id)
        self._hops += 1
        if node is None or self._hops > MAX_HOPS:
            logger.error("IVR cannot enter node %r (unknown or looping)", node_id)
            self._finish(HangUp(reason="ivr_error"), now=now, outcome="error", to_queue=None)
            return
        self._node = node_id
        self._welcome = False
        if isinstance(node, MenuNode):
            self._attempts = 0
            if digit is not None:
                self._choose(digit, now=now)
                return
        self._ENTER[type(node)](self, node, now)

    # --- menu ------------------------------------------------------------------------

    def _menu(self) -> MenuNode:
        node = self._config.ivr[self._node]
        assert isinstance(node, MenuNode), "only a menu collects digits"
        return node

    def _choose(self, digit: str, *, now: float) -> None:
        menu = self._menu()
        target = menu.options.get(digit)
        if target is None:
            self._fail("invalid", now=now)
            return
        self._facts.append(ChoiceMade(at=now, node=self._node, digit=digit, target=target))
        self._enter(target, now=now)

    def _fail(self, cause: Literal["invalid", "timeout"], *, now: float) -> None:
        """Count a failure; re-offer the menu while retries last, else go to ``default``."""
        menu = self._menu()
        self._attempts += 1
        self._facts.append(
            ChoiceFailed(at=now, node=self._node, cause=cause, attempt=self._attempts)
        )
        prompts = menu.invalid_prompts if cause == "invalid" else menu.timeout_prompts
        if self._attempts <= menu.retries:
            self._play([*prompts, *menu.prompts], barge_in=menu.barge_in, then=Then("collect"))
        elif prompts:
            self._play(prompts, barge_in=False, then=Then("goto", menu.default))
        else:
            self._enter(menu.default, now=now)

    # --- effects ---------------------------------------------------------------------

    def _play(self, prompts: list[str], *, barge_in: bool, then: Then) -> None:
        self._play_id += 1
        self._phase, self._then, self._barge_in = Phase.PLAYING, then, barge_in
        self._commands.append(
            PlayPrompt(
                prompts=tuple(prompts),
                language=self._language,
                barge_in=barge_in,
                play_id=self._play_id,
            )
        )

    def _stop(self) -> None:
        self._commands.append(StopPrompt(play_id=self._play_id))

    def _end_welcome(self, *, now: float) -> None:
        if self._welcome:
            self._welcome = False
            self._facts.append(WelcomeFinished(at=now, node=self._node))

    def _announce(self, prompts: list[str], then: Then, now: float) -> None:
        """Play a terminal node's prompts (without barge-in), then finish."""
        if prompts:
            self._play(prompts, barge_in=False, then=then)
        elif then.command is not None:
            self._finish(then.command, now=now, outcome=then.outcome, to_queue=then.to_queue)

    def _finish(
        self, command: Command, *, now: float, outcome: Outcome, to_queue: str | None
    ) -> None:
        self._commands.append(command)
        self._leave(now=now, to_queue=to_queue, outcome=outcome)

    def _leave(self, *, now: float, to_queue: str | None, outcome: Outcome) -> None:
        self._phase, self._deadline = Phase.DONE, None
        self._facts.append(IvrLeft(at=now, to_queue=to_queue, outcome=outcome))
