"""Facts the transaction layer reports to its transaction user (RFC 3261 §17, §18).

All are frozen, slotted, keyword-only dataclasses carrying `at` (the monotonic instant
the layer learned the fact), so call-control and KPI code can be driven by event lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip.message import Request, Response
from sip.transaction import Addr, ClientTransactionKey, ServerTransactionKey, TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new request created a server transaction; answer it with `send_response(key, ...)`.

    For an INVITE the layer has already sent 100 Trying (§17.2.1).
    """

    at: float
    request: Request
    addr: Addr
    key: ServerTransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """An ACK for a 2xx (end to end, §13.2.2.4, §17.1.1.3), for the dialog to match."""

    at: float
    request: Request
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReceived:
    """A CANCEL matched an INVITE server transaction (§9.2).

    The layer has answered the CANCEL with 200 and, when the INVITE was still in
    Proceeding, the INVITE with 487 (`invite_terminated` is then True).
    """

    at: float
    request: Request
    addr: Addr
    invite_key: ServerTransactionKey
    invite_terminated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response passed up by a client transaction (retransmissions are absorbed)."""

    at: float
    response: Response
    key: ClientTransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """Timer B or F (client: treat as 408, §8.1.3.1), Timer H (server: ACK never came),
    or no final response 64*T1 after our CANCEL (§9.1)."""

    at: float
    key: TransactionKey
    method: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AckTimedOut:
    """No ACK arrived for our 2xx within 64*T1 (§13.3.1.4): the TU should send BYE."""

    at: float
    key: ServerTransactionKey
    call_id: str
    cseq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed:
    """The transport could not deliver a transaction's message (§17.1.4, §17.2.4)."""

    at: float
    key: TransactionKey
    method: str
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDropped:
    """A datagram was discarded without an answer (unparseable, stray, ...): log it."""

    at: float
    reason: str
    addr: Addr


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedRequestAnswered:
    """A malformed request got a stateless 400/505/513 carrying the reason (§8.2, §21.4)."""

    at: float
    status: int
    reason: str
    addr: Addr


Event = (
    RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | TransactionTimedOut
    | AckTimedOut
    | TransportFailed
    | MessageDropped
    | MalformedRequestAnswered
)
