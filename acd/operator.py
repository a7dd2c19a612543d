"""Operator states, their transitions as data, and the time spent in each state.

The states are those of the issue and of every ACD (Asterisk app_queue members,
FreeSWITCH mod_callcenter agents): logged out, available, offered (a call is ringing on
their phone), on call, wrap-up (after-call work) and paused (with a reason). Whether the
operator's phone is registered is kept apart, as FreeSWITCH keeps agent status apart
from its contact: a registration that comes and goes never changes the operator's
state, it only makes them eligible for offers or not.

Every change of state goes through `Operator.apply`, which looks the input up in
`TRANSITIONS` (after h11's `_state.py`); the engine never assigns a state itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from acd.errors import InvalidOperatorActionError


class OperatorState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    OFFERED = "offered"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class OperatorInput(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    READY = "ready"
    WRAPUP_DONE = "wrapup_done"
    OFFER = "offer"
    OFFER_ENDED = "offer_ended"
    NO_ANSWER = "no_answer"
    ANSWER = "answer"
    CALL_END = "call_end"
    CALL_ABORTED = "call_aborted"


S = OperatorState
I = OperatorInput  # noqa: E741

# Operator controls (login, ready, pause...) are idempotent where repeating them is
# harmless, so a double press of a feature code never errors. PAUSE and LOGOUT while on
# a call keep the state: the engine defers them to the end of the call (as Asterisk
# does for a member paused mid-call) instead of cutting the citizen off.
TRANSITIONS: dict[OperatorState, dict[OperatorInput, OperatorState]] = {
    S.LOGGED_OUT: {I.LOGIN: S.AVAILABLE, I.LOGOUT: S.LOGGED_OUT},
    S.AVAILABLE: {
        I.LOGIN: S.AVAILABLE,
        I.READY: S.AVAILABLE,
        I.WRAPUP_DONE: S.AVAILABLE,
        I.PAUSE: S.PAUSED,
        I.LOGOUT: S.LOGGED_OUT,
        I.OFFER: S.OFFERED,
    },
    S.OFFERED: {
        I.LOGIN: S.OFFERED,
        I.READY: S.OFFERED,
        I.ANSWER: S.ON_CALL,
        I.OFFER_ENDED: S.AVAILABLE,
        I.NO_ANSWER: S.PAUSED,
        I.PAUSE: S.PAUSED,
        I.LOGOUT: S.LOGGED_OUT,
    },
    S.ON_CALL: {
        I.LOGIN: S.ON_CALL,
        I.READY: S.ON_CALL,
        I.PAUSE: S.ON_CALL,
        I.LOGOUT: S.ON_CALL,
        I.CALL_END: S.WRAP_UP,
        I.CALL_ABORTED: S.AVAILABLE,
    },
    S.WRAP_UP: {
        I.LOGIN: S.WRAP_UP,
        I.READY: S.AVAILABLE,
        I.WRAPUP_DONE: S.AVAILABLE,
        I.PAUSE: S.PAUSED,
        I.LOGOUT: S.LOGGED_OUT,
    },
    S.PAUSED: {
        I.LOGIN: S.PAUSED,
        I.PAUSE: S.PAUSED,
        I.READY: S.AVAILABLE,
        I.LOGOUT: S.LOGGED_OUT,
    },
}

# States in which an operator counts as logged in (for "no operator logged in").
LOGGED_IN = frozenset(set(OperatorState) - {S.LOGGED_OUT})
# States in which an operator counts as serving the queue (for the wait estimate).
SERVING = frozenset({S.AVAILABLE, S.OFFERED, S.ON_CALL, S.WRAP_UP})


@dataclass(slots=True)
class Operator:
    """One operator's live state. `idle_since` orders `longest-idle`: it is set when
    the operator becomes free after login, pause or work, and kept when an offer merely
    ends unanswered (a caller hanging up must not send them to the back of the line)."""

    id: str
    name: str
    skills: dict[str, int]
    state: OperatorState = S.LOGGED_OUT
    reason: str | None = None
    since: float = 0.0
    idle_since: float = 0.0
    registered: bool = False
    cooldown_until: float = 0.0
    calls_answered: int = 0
    call_id: str | None = None
    last_call_id: str | None = None
    pending: OperatorInput | None = None
    pending_reason: str | None = None
    durations: dict[OperatorState, float] = field(default_factory=dict)

    def can(self, event: OperatorInput) -> bool:
        return event in TRANSITIONS[self.state]

    def apply(
        self, event: OperatorInput, *, now: float, reason: str | None = None
    ) -> tuple[OperatorState, OperatorState]:
        """Move to the state `TRANSITIONS` gives; return (old, new)."""
        old = self.state
        new = TRANSITIONS[old].get(event)
        if new is None:
            raise InvalidOperatorActionError(self.id, event.value, old.value)
        if new is not old:
            self.durations[old] = self.durations.get(old, 0.0) + max(0.0, now - self.since)
            self.since = now
            if new is S.AVAILABLE and old is not S.OFFERED:
                self.idle_since = now
        self.state = new
        if new is not S.PAUSED:
            self.reason = None
        elif event in (I.PAUSE, I.NO_ANSWER):
            self.reason = reason  # a repeated login or ready keeps the pause's reason
        return old, new

    def time_in_states(self, *, now: float) -> dict[OperatorState, float]:
        """Seconds spent in every state so far, the current one included."""
        totals = {state: self.durations.get(state, 0.0) for state in OperatorState}
        totals[self.state] += max(0.0, now - self.since)
        return totals

    def eligible(self, skill: str, *, now: float) -> bool:
        """Free, reachable, not cooling down after a refusal, and skilled for `skill`."""
        return (
            self.state is S.AVAILABLE
            and self.registered
            and self.cooldown_until <= now
            and skill in self.skills
        )
