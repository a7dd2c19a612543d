"""Server transactions (RFC 3261 §17.2, RFC 6026 §7.1): INVITE (Fig. 7) and non-INVITE (Fig. 8).

A server transaction resends its last response when the request is retransmitted,
retransmits a non-2xx final INVITE response on Timer G until the ACK comes (which it
absorbs), and holds the Accepted state after a 2xx so that INVITE retransmissions are
absorbed while the UAS core retransmits the 2xx itself (`SuccessRetransmission`).
"""

from __future__ import annotations

from sip.errors import LocalProtocolError
from sip.events import AckReceived, AckTimedOut, TransactionTimedOut, TransportFailed
from sip.headers import Via, split_values
from sip.ids import MAGIC_COOKIE
from sip.message import Request, Response
from sip.timers import TimerConfig
from sip.transaction import (
    INVITE_SERVER,
    NON_INVITE_SERVER,
    Addr,
    Host,
    Input,
    Machine,
    ServerTransactionKey,
    State,
    response_input,
)


class ServerTransaction(Machine):
    """What both server machines share: the reply address and the last response sent."""

    __slots__ = ("config", "interval", "key", "last_ack", "last_data", "last_response")

    def __init__(
        self,
        host: Host,
        request: Request,
        addr: Addr,
        key: ServerTransactionKey,
        config: TimerConfig,
        *,
        state: State,
    ) -> None:
        super().__init__(host, request, addr, state=state)
        self.key = key
        self.config = config
        self.interval = config.t1
        self.last_response: Response | None = None
        self.last_data = b""
        self.last_ack: Request | None = None

    def receive_request(self, request: Request, *, now: float) -> None:
        """A retransmission of our request, or the ACK of an INVITE (§17.2.3)."""
        if request.method == "ACK":
            self.last_ack = request
            self._step(Input.ACK, now=now)
        else:
            self._step(Input.REQUEST, now=now)

    def respond(self, response: Response, *, now: float) -> None:
        """The TU sends a response; LocalProtocolError if the machine does not allow it."""
        event = response_input(response.status)
        if event not in self.TABLE[self.state]:
            raise LocalProtocolError(f"cannot send {response.status} in state {self.state.value}")
        self.last_response = response
        self.last_data = response.to_bytes()
        self._step(event, now=now)

    def matches_legacy(self, request: Request) -> bool:
        """§17.2.3 for RFC 2543 peers: the To tag must match too (the response's for ACK)."""
        if self.key.branch.startswith(MAGIC_COOKIE):
            return True
        if request.method == "ACK":
            sent = self.last_response.to.tag if self.last_response is not None else None
            return request.to.tag == sent
        return request.to.tag == self.request.to.tag

    def local_tag(self) -> str | None:
        """The To tag of the responses sent so far, if any carried one."""
        return self.last_response.to.tag if self.last_response is not None else None

    def _resend(self) -> None:
        if self.last_data:
            self.host.transmit(self.last_data, self.addr)

    def _send(self, previous: State, now: float) -> None:
        self.host.transmit(self.last_data, self.addr)

    def _on_request(self, previous: State, now: float) -> None:
        # §17.2.1/§17.2.2: a retransmitted request gets the last response again, except
        # in Accepted (the core retransmits the 2xx) and Confirmed (the ACK came).
        if previous in (State.TRYING, State.PROCEEDING, State.COMPLETED):
            self._resend()

    def _on_provisional(self, previous: State, now: float) -> None:
        self._send(previous, now)

    def _on_transport_error(self, previous: State, now: float) -> None:
        event = TransportFailed(at=now, key=self.key, method=self.key.method, addr=self.addr)
        self.host.deliver(event)


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 Fig. 7 with RFC 6026's Accepted state."""

    __slots__ = ()

    TABLE = INVITE_SERVER

    def __init__(
        self,
        host: Host,
        request: Request,
        addr: Addr,
        key: ServerTransactionKey,
        config: TimerConfig,
    ) -> None:
        super().__init__(host, request, addr, key, config, state=State.PROCEEDING)

    def _on_success(self, previous: State, now: float) -> None:
        self._send(previous, now)
        if previous is State.PROCEEDING:
            self._start(Input.TIMER_L, self.config.l, now=now)

    def _on_failure(self, previous: State, now: float) -> None:
        self._send(previous, now)
        self._start(Input.TIMER_G, self.config.g, now=now)
        self._start(Input.TIMER_H, self.config.h, now=now)

    def _on_timer_g(self, previous: State, now: float) -> None:
        # §17.2.1: retransmit, doubling the interval up to T2.
        self._resend()
        self.interval = self.config.doubled(self.interval, cap=self.config.t2)
        self._start(Input.TIMER_G, self.interval, now=now)

    def _on_timer_h(self, previous: State, now: float) -> None:
        self.host.deliver(TransactionTimedOut(at=now, key=self.key, method="INVITE"))

    def _on_ack(self, previous: State, now: float) -> None:
        if previous is State.COMPLETED:
            self.timers.pop(Input.TIMER_G, None)
            self.timers.pop(Input.TIMER_H, None)
            self._start(Input.TIMER_I, self.config.i, now=now)
        elif previous is State.ACCEPTED and self.last_ack is not None:
            # RFC 6026 §8.7: an ACK matching in Accepted is passed to the TU.
            self.host.deliver(AckReceived(at=now, request=self.last_ack, addr=self.addr))

    def _on_timer_i(self, previous: State, now: float) -> None:
        """Confirmed -> Terminated."""

    def _on_timer_l(self, previous: State, now: float) -> None:
        """Accepted -> Terminated (RFC 6026 §8.7)."""


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 Fig. 8."""

    __slots__ = ()

    TABLE = NON_INVITE_SERVER

    def __init__(
        self,
        host: Host,
        request: Request,
        addr: Addr,
        key: ServerTransactionKey,
        config: TimerConfig,
    ) -> None:
        super().__init__(host, request, addr, key, config, state=State.TRYING)

    def _on_success(self, previous: State, now: float) -> None:
        self._on_final(previous, now)

    def _on_failure(self, previous: State, now: float) -> None:
        self._on_final(previous, now)

    def _on_final(self, previous: State, now: float) -> None:
        self._send(previous, now)
        self._start(Input.TIMER_J, self.config.j, now=now)

    def _on_timer_j(self, previous: State, now: float) -> None:
        """Completed -> Terminated."""


class SuccessRetransmission:
    """The UAS core's 2xx retransmission (§13.3.1.4), offered by the layer as a service.

    Resend the 2xx at T1, 2*T1, ... capped at T2 until the ACK arrives; after 64*T1
    report `AckTimedOut` so the TU can end the session with BYE.
    """

    __slots__ = ("addr", "call_id", "config", "cseq", "data", "host", "interval", "key", "timers")

    def __init__(
        self,
        host: Host,
        key: ServerTransactionKey,
        response: Response,
        addr: Addr,
        config: TimerConfig,
        *,
        data: bytes,
        now: float,
    ) -> None:
        self.host, self.key, self.addr, self.config = host, key, addr, config
        self.data = data
        self.call_id = response.call_id
        self.cseq = response.cseq.seq
        self.interval = config.t1
        self.timers: dict[Input, float] = {}
        self._start(Input.TIMER_G, config.t1, now=now)
        self._start(Input.TIMER_H, config.h, now=now)

    def _start(self, timer: Input, delay: float, *, now: float) -> None:
        self.timers[timer] = now + delay
        self.host.arm(self, timer, now + delay)

    def on_timer(self, timer: Input, *, now: float) -> None:
        """Timer G: resend and double (cap T2); Timer H: give up."""
        if timer is Input.TIMER_G:
            self.host.transmit(self.data, self.addr)
            self.interval = self.config.doubled(self.interval, cap=self.config.t2)
            self._start(Input.TIMER_G, self.interval, now=now)
            return
        self.stop()
        self.host.deliver(AckTimedOut(at=now, key=self.key, call_id=self.call_id, cseq=self.cseq))
        self.host.terminated(self)

    def stop(self) -> None:
        """The ACK arrived (or the layer gave up): no more retransmissions."""
        self.timers.clear()


def server_key(request: Request, via: Via | None = None) -> ServerTransactionKey:
    """The key a request matches a server transaction by (§17.2.3).

    Branch + sent-by + method (ACK as INVITE) when the branch has the magic cookie; for
    RFC 2543 peers the Request-URI, From tag, Call-ID, CSeq number and top Via instead
    (the To tag is checked by `ServerTransaction.matches_legacy`).
    """
    via = via or request.top_via
    top_raw = request.headers.values("via")[0]
    method = "INVITE" if request.method == "ACK" else request.method
    sent_by = f"{via.host.lower()}:{via.port or 5060}"
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return ServerTransactionKey(branch, sent_by, method)
    parts = (request.uri, request.from_.tag or "", request.call_id, str(request.cseq.seq), top_raw)
    return ServerTransactionKey("\n".join(parts), sent_by, method)


def stamp_via(request: Request, source: Addr, via: Via | None = None) -> Via:
    """Add `received` and fill `rport` in the top Via (§18.2.1, RFC 3581 §4)."""
    via = via or request.top_via
    host, port = source
    has_rport = "rport" in via.params
    if not has_rport and via.host.strip("[]").lower() == host.lower():
        return via
    via.params["received"] = host
    if has_rport:
        via.params["rport"] = str(port)
    fields = request.headers.fields
    i = next(n for n, field in enumerate(fields) if field[0] == "via")
    name, written, value = fields[i]
    fields[i] = (name, written, ", ".join([str(via), *split_values(value)[1:]]))
    return via


def response_address(via_owner: Request | Response) -> Addr:
    """Where the response to this request (or this response) goes (§18.2.2)."""
    return via_address(via_owner.top_via)


def via_address(via: Via) -> Addr:
    """Where a response goes over UDP (§18.2.2, RFC 3581 §4): maddr, else received and
    rport, else sent-by (port 5060 by default)."""
    port = via.port or 5060
    maddr = via.params.get("maddr")
    if maddr:
        return maddr, port
    rport = via.params.get("rport")
    if rport and rport.isdigit():
        port = int(rport)
    return via.params.get("received") or via.host.strip("[]"), port
