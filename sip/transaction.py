"""What every SIP transaction shares: keys, states, inputs and the RFC figures as data.

RFC 3261 §17 defines four machines (Figs. 5-8); RFC 6026 adds the Accepted state to the
two INVITE ones. Each machine is a table `state -> input -> next state` below; an input
missing from a row is not a transition (a stray retransmission, which is absorbed, or a
TU mistake, which raises LocalProtocolError). Side effects live in the `_on_<input>`
methods of the machines in `client_transaction` and `server_transaction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, Protocol

from sip.message import Request

if TYPE_CHECKING:
    from sip.events import Event

Addr = tuple[str, int]
"""A transport address: (host or IP literal without brackets, port)."""


@dataclass(frozen=True, slots=True)
class ClientTransactionKey:
    """A client transaction: the branch we put in the top Via and the CSeq method (§17.1.3)."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True)
class ServerTransactionKey:
    """A server transaction (§17.2.3): branch, sent-by and method (ACK counts as INVITE).

    For an RFC 2543 peer (a branch without the magic cookie) `branch` holds the joined
    Request-URI, From tag, Call-ID, CSeq number and top Via instead.
    """

    branch: str
    sent_by: str
    method: str


TransactionKey = ClientTransactionKey | ServerTransactionKey


class State(Enum):
    """Transaction states, named as in RFC 3261 Figs. 5-8 and RFC 6026."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Input(Enum):
    """What drives a transaction: messages, TU responses, timers and transport errors."""

    PROVISIONAL = "provisional"  # a 1xx, received (client) or sent by the TU (server)
    SUCCESS = "success"  # a 2xx
    FAILURE = "failure"  # a 300-699
    REQUEST = "request"  # a retransmission of the request (server)
    ACK = "ack"  # an ACK matching the INVITE server transaction
    TIMER_A = "timer_a"
    TIMER_B = "timer_b"
    TIMER_D = "timer_d"
    TIMER_E = "timer_e"
    TIMER_F = "timer_f"
    TIMER_G = "timer_g"
    TIMER_H = "timer_h"
    TIMER_I = "timer_i"
    TIMER_J = "timer_j"
    TIMER_K = "timer_k"
    TIMER_L = "timer_l"
    TIMER_M = "timer_m"
    CANCEL_TIMEOUT = "cancel_timeout"  # §9.1: no final response 64*T1 after our CANCEL
    TRANSPORT_ERROR = "transport_error"


S, I = State, Input  # noqa: E741 - short aliases keep the tables readable

Table = dict[State, dict[Input, State]]

INVITE_CLIENT: Table = {
    # RFC 3261 Fig. 5 as amended by RFC 6026 §7.2 (2xx -> Accepted, Timer M).
    S.CALLING: {
        I.TIMER_A: S.CALLING,
        I.PROVISIONAL: S.PROCEEDING,
        I.SUCCESS: S.ACCEPTED,
        I.FAILURE: S.COMPLETED,
        I.TIMER_B: S.TERMINATED,
        I.TRANSPORT_ERROR: S.TERMINATED,
        I.CANCEL_TIMEOUT: S.TERMINATED,
    },
    S.PROCEEDING: {
        I.PROVISIONAL: S.PROCEEDING,
        I.SUCCESS: S.ACCEPTED,
        I.FAILURE: S.COMPLETED,
        I.CANCEL_TIMEOUT: S.TERMINATED,
    },
    S.ACCEPTED: {I.SUCCESS: S.ACCEPTED, I.TIMER_M: S.TERMINATED},
    S.COMPLETED: {
        I.FAILURE: S.COMPLETED,
        I.TIMER_D: S.TERMINATED,
        I.TRANSPORT_ERROR: S.TERMINATED,
    },
    S.TERMINATED: {},
}

NON_INVITE_CLIENT: Table = {
    # RFC 3261 Fig. 6.
    S.TRYING: {
        I.TIMER_E: S.TRYING,
        I.PROVISIONAL: S.PROCEEDING,
        I.SUCCESS: S.COMPLETED,
        I.FAILURE: S.COMPLETED,
        I.TIMER_F: S.TERMINATED,
        I.TRANSPORT_ERROR: S.TERMINATED,
    },
    S.PROCEEDING: {
        I.TIMER_E: S.PROCEEDING,
        I.PROVISIONAL: S.PROCEEDING,
        I.SUCCESS: S.COMPLETED,
        I.FAILURE: S.COMPLETED,
        I.TIMER_F: S.TERMINATED,
        I.TRANSPORT_ERROR: S.TERMINATED,
    },
    S.COMPLETED: {I.SUCCESS: S.COMPLETED, I.FAILURE: S.COMPLETED, I.TIMER_K: S.TERMINATED},
    S.TERMINATED: {},
}

INVITE_SERVER: Table = {
    # RFC 3261 Fig. 7 as amended by RFC 6026 §7.1 (2xx -> Accepted, Timer L).
    S.PROCEEDING: {
        I.REQUEST: S.PROCEEDING,
        I.PROVISIONAL: S.PROCEEDING,
        I.SUCCESS: S.ACCEPTED,
        I.FAILURE: S.COMPLETED,
        I.TRANSPORT_ERROR: S.TERMINATED,
    },
    S.ACCEPTED: {
        I.REQUEST: S.ACCEPTED,
        I.ACK: S.ACCEPTED,
        I.SUCCESS: S.ACCEPTED,
        I.TIMER_L: S.TERMINATED,
    },
    S.COMPLETED: {
        I.REQUEST: S.COMPLETED,
        I.TIMER_G: S.COMPLETED,
        I.ACK: S.CONFIRMED,
        I.TIMER_H: S.TERMINATED,
        I.TRANSPORT_ERROR: S.TERMINATED,
    },
    S.CONFIRMED: {I.REQUEST: S.CONFIRMED, I.ACK: S.CONFIRMED, I.TIMER_I: S.TERMINATED},
    S.TERMINATED: {},
}

NON_INVITE_SERVER: Table = {
    # RFC 3261 Fig. 8. (Trying absorbs retransmissions: there is nothing to resend yet.)
    S.TRYING: {
        I.REQUEST: S.TRYING,
        I.PROVISIONAL: S.PROCEEDING,
        I.SUCCESS: S.COMPLETED,
        I.FAILURE: S.COMPLETED,
    },
    S.PROCEEDING: {
        I.REQUEST: S.PROCEEDING,
        I.PROVISIONAL: S.PROCEEDING,
        I.SUCCESS: S.COMPLETED,
        I.FAILURE: S.COMPLETED,
        I.TRANSPORT_ERROR: S.TERMINATED,
    },
    S.COMPLETED: {I.REQUEST: S.COMPLETED, I.TIMER_J: S.TERMINATED, I.TRANSPORT_ERROR: S.TERMINATED},
    S.TERMINATED: {},
}


def response_input(status: int) -> Input:
    """Classify a status code as the input it is to a transaction."""
    if status < 200:
        return Input.PROVISIONAL
    return Input.SUCCESS if status < 300 else Input.FAILURE


class Timed(Protocol):
    """Something with named deadlines that the layer's timer heap fires."""

    timers: dict[Input, float]

    def on_timer(self, timer: Input, *, now: float) -> None:
        """Called by the layer when `timer` is due."""


class Host(Protocol):
    """What a transaction needs from its layer: a wire, a TU, a clock heap, a grave."""

    def transmit(self, data: bytes, addr: Addr) -> None:
        """Queue a datagram."""

    def deliver(self, event: Event) -> None:
        """Queue an event for the TU."""

    def arm(self, owner: Timed, timer: Input, at: float) -> None:
        """Schedule `owner.on_timer(timer)` at `at`."""

    def terminated(self, owner: object) -> None:
        """Forget a transaction that reached Terminated."""


class Machine:
    """A table-driven transaction: `_step(input)` moves the state and runs `_on_<input>`."""

    __slots__ = ("addr", "host", "request", "state", "timers")

    TABLE: ClassVar[Table] = {}

    def __init__(self, host: Host, request: Request, addr: Addr, *, state: State) -> None:
        self.host = host
        self.request = request
        self.addr = addr
        self.state = state
        self.timers: dict[Input, float] = {}

    def _step(self, event: Input, *, now: float) -> bool:
        """Apply `event`; False (and no effect) when it is not a transition from here."""
        target = self.TABLE[self.state].get(event)
        if target is None:
            return False
        previous, self.state = self.state, target
        getattr(self, "_on_" + event.value)(previous, now)
        if target is State.TERMINATED:
            self.timers.clear()
            self.host.terminated(self)
        return True

    def _start(self, timer: Input, delay: float, *, now: float) -> None:
        self.timers[timer] = now + delay
        self.host.arm(self, timer, now + delay)

    def on_timer(self, timer: Input, *, now: float) -> None:
        """A timer fired: feed it to the machine as an input."""
        self._step(timer, now=now)

    def transport_failed(self, *, now: float) -> None:
        """The transport could not deliver to `addr` (§17.1.4, §17.2.4)."""
        self._step(Input.TRANSPORT_ERROR, now=now)
