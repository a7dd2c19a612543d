"""Errors raised by the ACD engine's public entry points.

Inputs that are plainly wrong (an unknown queue or operator, a call id used twice, an
operator control that makes no sense in the operator's state) raise one of these, before
any state changes. Inputs that merely arrive late (a 200 OK for an offer already
cancelled, a hang-up for a call that already ended) are races of a real network and are
absorbed by the engine, never raised.
"""

from __future__ import annotations


class AcdError(Exception):
    """Base of every error the ACD engine raises on purpose."""


class AcdConfigError(AcdError):
    """The ACD configuration is invalid; the message lists every problem found."""


class UnknownQueueError(AcdError):
    """A queue name that is not configured."""


class UnknownOperatorError(AcdError):
    """An operator id that is not configured."""


class UnknownCallError(AcdError):
    """A call id the engine does not know (or no longer remembers)."""


class DuplicateCallError(AcdError):
    """A call id that is already queued or being served."""


class InvalidOperatorActionError(AcdError):
    """An operator control that is illegal in the operator's current state.

    Carries the operator's state so the HTTP API or the feature-code handler can tell
    the operator why (for example "ready" while logged out).
    """

    def __init__(self, operator: str, action: str, state: str) -> None:
        super().__init__(f"operator {operator!r} cannot {action} while {state}")
        self.operator = operator
        self.action = action
        self.state = state


class CallbackUnavailableError(AcdError):
    """A callback was asked for a call that cannot be called back."""


class InvalidInputError(AcdError, ValueError):
    """An input value outside its domain (for example an unknown refusal reason)."""
