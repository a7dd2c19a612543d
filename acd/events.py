"""What the ACD engine emits: imperative commands and past-tense facts.

Commands ask the call-control layer (routing/) to do something: ring an operator,
stop ringing, play a position announcement, take a call out of the queue, dial a
caller back. Facts say what happened and carry `at` (monotonic seconds): the metrics
layer computes Tm, P and Q from them (DOMAIN.md, "SLAs"), so every fact needed for a
KPI is here and nothing is inferred later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from acd.config import OverflowKind
from acd.operator import OperatorState


class OfferFailure(StrEnum):
    """Why an operator's leg of an offer ended without an answer."""

    BUSY = "busy"
    DECLINE = "decline"
    UNREACHABLE = "unreachable"
    NO_ANSWER = "no-answer"
    UNREGISTERED = "unregistered"
    CALLER_GONE = "caller-gone"
    ANSWERED_ELSEWHERE = "answered-elsewhere"
    OPERATOR_LEFT = "operator-left"
    CALLBACK_REQUESTED = "callback-requested"
    WITHDRAWN = "withdrawn"  # a late answer to an offer already taken back


class Disposition(StrEnum):
    """How an answered call ended, for the Q KPI (resolved at first level or not)."""

    RESOLVED = "resolved"
    ESCALATED = "escalated"
    UNKNOWN = "unknown"


class OverflowReason(StrEnum):
    """Why a call left its queue without being answered there."""

    QUEUE_FULL = "queue-full"
    MAX_WAIT = "max-wait"
    NO_OPERATOR = "no-operator"


# ----------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCall:
    """Ring `operator` for `call_id`. With `callback_number` set, nobody is on the line
    yet: once the operator answers, the engine asks for `PlaceCallback`."""

    call_id: str
    operator: str
    queue: str
    caller: str
    ring_timeout: float
    callback_number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOffer:
    """Stop ringing (or release, if it answered late) the operator's leg of a call."""

    call_id: str
    operator: str
    reason: OfferFailure


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTransfer:
    """Stop a blind transfer ringing `operator` for `call_id`: the engine took their
    reservation back (they paused, logged out or lost their registration, or the call
    ended). Routing gives the transfer up as if the target had refused."""

    call_id: str
    operator: str
    reason: OfferFailure


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayAnnouncement:
    """Tell a waiting caller their position and expected wait (seconds, None: unknown)."""

    call_id: str
    position: int
    expected_wait: float | None
    callback_digit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Overflow:
    """Take the call out of the ACD: `voicemail` (target: mailbox) or
    `message-and-hangup` (target: prompt). Moves between queues stay inside the engine
    and are only reported by `CallOverflowed`."""

    call_id: str
    action: OverflowKind
    target: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceCallback:
    """`operator` answered a callback offer: dial `number` and bridge it to them."""

    call_id: str
    number: str
    operator: str


# -------------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued:
    call_id: str
    queue: str
    priority: int
    position: int
    entered_at: float
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered:
    call_id: str
    queue: str
    operator: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferRinging:
    call_id: str
    operator: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferFailed:
    call_id: str
    operator: str
    reason: OfferFailure
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered:
    """`entered_at` is the queue-entry time given at enqueue (IVR time excluded), so
    `at - entered_at` is the Ti of the Tm KPI."""

    call_id: str
    queue: str
    operator: str
    entered_at: float
    callback: bool
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned:
    call_id: str
    queue: str
    entered_at: float
    while_ringing: bool
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOverflowed:
    """`action` is `queue` (then `target` is the queue the call moved to), `voicemail`
    or `message-and-hangup`."""

    call_id: str
    queue: str
    reason: OverflowReason
    action: OverflowKind
    target: str | None
    entered_at: float
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested:
    call_id: str
    queue: str
    number: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackFailed:
    """The caller did not answer the callback; `final` when no attempt is left."""

    call_id: str
    queue: str
    attempt: int
    final: bool
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded:
    call_id: str
    queue: str
    operator: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred:
    """`operator` handed the call to `target`: a referent's number, or an operator
    who answered a transfer and now owns the call (and its disposition)."""

    call_id: str
    operator: str
    target: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallDispositionSet:
    """`explicit` is True when the operator chose it, False when the engine inferred it
    (a transfer to a referent counts as escalated unless the operator says otherwise)."""

    call_id: str
    queue: str
    operator: str
    disposition: Disposition
    explicit: bool
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorStateChanged:
    operator: str
    old: OperatorState
    new: OperatorState
    reason: str | None
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorRegistrationChanged:
    operator: str
    registered: bool
    at: float


Command = OfferCall | CancelOffer | CancelTransfer | PlayAnnouncement | Overflow | PlaceCallback
Fact = (
    CallQueued
    | CallOffered
    | OfferRinging
    | OfferFailed
    | CallAnswered
    | CallAbandoned
    | CallOverflowed
    | CallbackRequested
    | CallbackFailed
    | CallEnded
    | CallTransferred
    | CallDispositionSet
    | OperatorStateChanged
    | OperatorRegistrationChanged
)
Output = Command | Fact
