"""The transaction layer of one SIP endpoint over UDP (RFC 3261 §17, §18, RFC 6026).

Sans-I/O, in aioquic's shape: feed it datagrams (`receive_datagram`), TU commands
(`send_request`, `send_response`, `cancel`) and timer ticks (`handle_timer`); collect
`datagrams_to_send()`, `next_event()` and `get_timer()`. It never raises on bad input:
a malformed request gets a stateless 400/505/513 when a response can be formed, and
everything else that is discarded is reported as `MessageDropped`.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from dataclasses import replace

from sip.client_transaction import (
    InviteClientTransaction,
    NonInviteClientTransaction,
    build_cancel,
)
from sip.errors import LocalProtocolError, RemoteProtocolError
from sip.events import (
    AckReceived,
    CancelReceived,
    Event,
    MalformedRequestAnswered,
    MessageDropped,
    RequestReceived,
)
from sip.headers import parse_via
from sip.ids import IdFactory
from sip.message import Request, Response, make_response
from sip.parser import parse_message, validate_request, validate_response
from sip.server_transaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    SuccessRetransmission,
    server_key,
    stamp_via,
    via_address,
)
from sip.timers import TimerConfig
from sip.transaction import Addr, ClientTransactionKey, Input, ServerTransactionKey, State, Timed
from sip.transaction_reply import salvage, stateless_error

logger = logging.getLogger(__name__)

ClientTransaction = InviteClientTransaction | NonInviteClientTransaction


class TransactionLayer:
    """All client and server transactions of one endpoint, behind one timer."""

    def __init__(
        self,
        *,
        local_host: str,
        local_port: int,
        ids: IdFactory,
        config: TimerConfig | None = None,
    ) -> None:
        self.config = config or TimerConfig()
        self._ids = ids
        host = f"[{local_host}]" if ":" in local_host else local_host
        self._sent_by = f"{host}:{local_port}"
        self._clients: dict[ClientTransactionKey, ClientTransaction] = {}
        self._servers: dict[ServerTransactionKey, ServerTransaction] = {}
        self._invites: dict[tuple[str, int], InviteClientTransaction] = {}
        self._successes: dict[tuple[str, int, str], SuccessRetransmission] = {}
        self._datagrams: list[tuple[bytes, Addr]] = []
        self._events: deque[Event] = deque()
        self._heap: list[tuple[float, int, Timed, Input]] = []
        self._seq = 0

    # -- outputs ---------------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """Datagrams queued since the last call, in order."""
        out, self._datagrams = self._datagrams, []
        return out

    def next_event(self) -> Event | None:
        """The oldest undelivered event, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest instant at which `handle_timer` must be called, or None."""
        heap = self._heap
        while heap and heap[0][2].timers.get(heap[0][3]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, *, now: float) -> None:
        """Fire every timer due at `now`."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, _, owner, timer = heapq.heappop(heap)
            if owner.timers.get(timer) == at:
                del owner.timers[timer]
                owner.on_timer(timer, now=now)

    def server_state(self, key: ServerTransactionKey) -> State | None:
        """The state of a server transaction (None once terminated or unknown): a TU can
        check that an INVITE is still Proceeding (not CANCELled) before answering it."""
        txn = self._servers.get(key)
        return None if txn is None else txn.state

    def client_state(self, key: ClientTransactionKey) -> State | None:
        """The state of a client transaction (None once terminated or unknown)."""
        txn = self._clients.get(key)
        return None if txn is None else txn.state

    @property
    def transaction_count(self) -> int:
        """Live client and server transactions (for metrics and leak tests)."""
        return len(self._clients) + len(self._servers)

    # -- Host protocol (called by the transactions) ----------------------------------

    def transmit(self, data: bytes, addr: Addr) -> None:
        """Queue a datagram."""
        self._datagrams.append((data, addr))

    def deliver(self, event: Event) -> None:
        """Queue an event for the TU."""
        self._events.append(event)

    def arm(self, owner: Timed, timer: Input, at: float) -> None:
        """Schedule a timer; superseded entries are skipped when they surface."""
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, owner, timer))

    def terminated(self, owner: object) -> None:
        """Forget a finished transaction or 2xx retransmission."""
        if isinstance(owner, InviteClientTransaction | NonInviteClientTransaction):
            if self._clients.get(owner.key) is owner:
                del self._clients[owner.key]
            ident = (owner.request.call_id, owner.request.cseq.seq)
            if self._invites.get(ident) is owner:
                del self._invites[ident]
        elif isinstance(owner, ServerTransaction) and self._servers.get(owner.key) is owner:
            del self._servers[owner.key]
        elif isinstance(owner, SuccessRetransmission):
            self._successes = {k: v for k, v in self._successes.items() if v is not owner}

    # -- TU commands -----------------------------------------------------------------

    def send_request(self, request: Request, addr: Addr, *, now: float) -> ClientTransactionKey:
        """Start a client transaction (§17.1); an ACK for a 2xx is sent as is (§13.2.2.4).

        A top Via with a fresh branch and `rport` is added unless the TU put one.
        """
        key = ClientTransactionKey(self._ensure_via(request), request.method)
        if request.method == "ACK":
            self._send_ack(request, addr)
            return key
        if key in self._clients:
            raise LocalProtocolError(f"branch {key.branch} already used for {key.method}")
        if request.method == "INVITE":
            invite = InviteClientTransaction(self, request, addr, key, self.config, now=now)
            self._invites[(request.call_id, request.cseq.seq)] = invite
            self._clients[key] = invite
        else:
            self._clients[key] = NonInviteClientTransaction(
                self, request, addr, key, self.config, now=now
            )
        return key

    def send_response(
        self, target: ServerTransactionKey | Request, response: Response, *, now: float
    ) -> None:
        """Send a response through its server transaction (§17.2).

        A 2xx to an INVITE is then retransmitted until its ACK arrives (§13.3.1.4).
        """
        key = target if isinstance(target, ServerTransactionKey) else self._key_of(target)
        txn = self._servers.get(key)
        if txn is None:
            raise LocalProtocolError(f"no server transaction {key}")
        txn.respond(response, now=now)
        if isinstance(txn, InviteServerTransaction) and 200 <= response.status < 300:
            self._retransmit_success(txn, response, now=now)

    def cancel(self, key: ClientTransactionKey, *, now: float) -> ClientTransactionKey | None:
        """Cancel a pending INVITE (§9.1); the key of the CANCEL, or None if too late.

        The CANCEL goes out once a provisional response has arrived, at once if one has.
        """
        txn = self._clients.get(key)
        if not isinstance(txn, InviteClientTransaction):
            raise LocalProtocolError(f"no INVITE client transaction {key}")
        if txn.state not in (State.CALLING, State.PROCEEDING):
            return None
        txn.cancel_requested = True
        if txn.state is State.PROCEEDING and not txn.cancel_sent:
            self._send_cancel(txn, now=now)
        return ClientTransactionKey(key.branch, "CANCEL")

    def report_transport_error(self, addr: Addr, *, now: float) -> None:
        """The runtime could not send to `addr` (ICMP error): fail its transactions."""
        live = [*self._clients.values(), *self._servers.values()]
        for txn in live:
            if txn.addr == addr:
                txn.transport_failed(now=now)

    # -- receiving -------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Addr, *, now: float) -> None:
        """Handle one datagram from `addr`; never raises on malformed input."""
        try:
            self._receive(data, addr, now=now)
        except RemoteProtocolError as exc:
            self._drop(exc.reason, addr, now=now)
        except LocalProtocolError as exc:
            # e.g. a bare CR inside a header value we would have to copy into a response
            self._drop(f"cannot answer: {exc}", addr, now=now)
        except (ValueError, LookupError, UnicodeError) as exc:
            # A parser gap must not kill the endpoint: report it loudly and carry on.
            logger.warning("unexpected error on datagram from %s: %r", addr, exc)
            self._drop(f"unparseable: {exc!r}", addr, now=now)

    def _receive(self, data: bytes, addr: Addr, *, now: float) -> None:
        try:
            message = parse_message(data)
        except RemoteProtocolError as exc:
            self._answer_unparsed(data, exc, addr, now=now)
            return
        if isinstance(message, Request):
            self._receive_request(message, addr, now=now)
        else:
            self._receive_response(message, addr, now=now)

    def _drop(self, reason: str, addr: Addr, *, now: float) -> None:
        self._events.append(MessageDropped(at=now, reason=reason, addr=addr))

    def _receive_request(self, request: Request, addr: Addr, *, now: float) -> None:
        try:
            validate_request(request)
        except RemoteProtocolError as exc:
            self._answer_malformed(request, exc, addr, now=now)
            return
        via = request.top_via
        key = server_key(request, via)
        reply_to = via_address(stamp_via(request, addr, via))
        if request.method == "ACK":
            self._receive_ack(request, key, addr, now=now)
            return
        txn = self._servers.get(key)
        if txn is not None and txn.matches_legacy(request):
            txn.receive_request(request, now=now)
        elif txn is not None:
            self._drop("RFC 2543 request clashing with a live transaction", addr, now=now)
        elif request.method == "CANCEL":
            self._receive_cancel(request, key, reply_to, now=now)
        else:
            self._new_server(request, key, reply_to, now=now)

    def _new_server(
        self, request: Request, key: ServerTransactionKey, reply_to: Addr, *, now: float
    ) -> None:
        if request.method == "INVITE":
            txn: ServerTransaction = InviteServerTransaction(
                self, request, reply_to, key, self.config
            )
            # §17.2.1: answer 100 at once so the client stops retransmitting.
            txn.respond(make_response(request, 100), now=now)
        else:
            txn = NonInviteServerTransaction(self, request, reply_to, key, self.config)
        self._servers[key] = txn
        self._events.append(RequestReceived(at=now, request=request, addr=reply_to, key=key))

    def _receive_ack(
        self, ack: Request, key: ServerTransactionKey, addr: Addr, *, now: float
    ) -> None:
        success = self._successes.pop((ack.call_id, ack.cseq.seq, ack.to.tag or ""), None)
        if success is not None:
            success.stop()
        txn = self._servers.get(key)
        if txn is not None and txn.matches_legacy(ack):
            txn.receive_request(ack, now=now)
        else:
            # §17.2.3 / RFC 6026 §8.9: an ACK matching no transaction is the 2xx's ACK.
            self._events.append(AckReceived(at=now, request=ack, addr=addr))

    def _receive_cancel(
        self, cancel: Request, key: ServerTransactionKey, reply_to: Addr, *, now: float
    ) -> None:
        """§9.2: 200 to a CANCEL that matches an INVITE (487 to it if pending), else 481."""
        txn = NonInviteServerTransaction(self, cancel, reply_to, key, self.config)
        self._servers[key] = txn
        invite = self._servers.get(replace(key, method="INVITE"))
        if not isinstance(invite, InviteServerTransaction) or not invite.matches_legacy(cancel):
            txn.respond(make_response(cancel, 481, to_tag=self._ids.tag()), now=now)
            return
        tag = invite.local_tag() or self._ids.tag()
        txn.respond(make_response(cancel, 200, to_tag=tag), now=now)
        pending = invite.state is State.PROCEEDING
        if pending:
            invite.respond(make_response(invite.request, 487, to_tag=tag), now=now)
        event = CancelReceived(
            at=now, request=cancel, addr=reply_to, invite_key=invite.key, invite_terminated=pending
        )
        self._events.append(event)

    def _answer_malformed(
        self, request: Request, exc: RemoteProtocolError, addr: Addr, *, now: float
    ) -> None:
        reply = stateless_error(request, exc, addr, self._ids.tag())
        if reply is None:
            self._drop(exc.reason, addr, now=now)
            return
        response, reply_to = reply
        self._datagrams.append((response.to_bytes(), reply_to))
        event = MalformedRequestAnswered(
            at=now, status=response.status, reason=exc.reason, addr=reply_to
        )
        self._events.append(event)

    def _answer_unparsed(
        self, data: bytes, exc: RemoteProtocolError, addr: Addr, *, now: float
    ) -> None:
        bones = salvage(data) if exc.status_hint is not None else None
        if bones is None:
            self._drop(exc.reason, addr, now=now)
        else:
            self._answer_malformed(bones, exc, addr, now=now)

    def _receive_response(self, response: Response, addr: Addr, *, now: float) -> None:
        validate_response(response)
        key = ClientTransactionKey(response.top_via.branch or "", response.cseq.method)
        txn = self._clients.get(key)
        if txn is None:
            self._drop(f"stray response {response.status} {key.method}", addr, now=now)
            return
        txn.receive(response, now=now)
        if isinstance(txn, InviteClientTransaction) and txn.cancel_due():
            self._send_cancel(txn, now=now)

    # -- helpers ---------------------------------------------------------------------

    def _ensure_via(self, request: Request) -> str:
        vias = request.headers.values("via")
        if vias:
            branch = parse_via(vias[0]).branch
            if not branch:
                raise LocalProtocolError("top Via without a branch")
            return branch
        branch = self._ids.branch()
        request.headers.prepend("Via", f"SIP/2.0/UDP {self._sent_by};branch={branch};rport")
        return branch

    @staticmethod
    def _key_of(request: Request) -> ServerTransactionKey:
        try:
            return server_key(request)
        except RemoteProtocolError as exc:
            raise LocalProtocolError(f"not a received request: {exc.reason}") from exc

    def _send_ack(self, ack: Request, addr: Addr) -> None:
        data = ack.to_bytes()
        self._datagrams.append((data, addr))
        invite = self._invites.get((ack.call_id, ack.cseq.seq))
        if invite is not None:
            invite.acks[ack.to.tag or ""] = (data, addr)

    def _send_cancel(self, invite: InviteClientTransaction, *, now: float) -> None:
        cancel = build_cancel(invite.request)
        key = ClientTransactionKey(self._ensure_via(cancel), "CANCEL")
        self._clients[key] = NonInviteClientTransaction(
            self, cancel, invite.addr, key, self.config, now=now
        )
        invite.cancel_sent_at(now=now)

    def _retransmit_success(
        self, txn: InviteServerTransaction, response: Response, *, now: float
    ) -> None:
        tag = response.to.tag or ""
        ident = (response.call_id, response.cseq.seq, tag)
        previous = self._successes.pop(ident, None)
        if previous is not None:
            previous.stop()
        self._successes[ident] = SuccessRetransmission(
            self, txn.key, response, txn.addr, self.config, data=txn.last_data, now=now
        )
