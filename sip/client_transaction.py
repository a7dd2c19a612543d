"""Client transactions (RFC 3261 §17.1, RFC 6026 §7.2): INVITE (Fig. 5) and non-INVITE (Fig. 6).

A client transaction sends its request, retransmits it on Timer A or E, passes the
responses that matter up to the TU, generates the ACK for a non-2xx final response
itself (§17.1.1.3) and reports Timer B/F expiry and transport errors.
"""

from __future__ import annotations

from sip.events import ResponseReceived, TransactionTimedOut, TransportFailed
from sip.header_fields import Headers
from sip.message import Request, Response
from sip.timers import TimerConfig
from sip.transaction import (
    INVITE_CLIENT,
    NON_INVITE_CLIENT,
    Addr,
    ClientTransactionKey,
    Host,
    Input,
    Machine,
    State,
    response_input,
)


class ClientTransaction(Machine):
    """What both client machines share: the request bytes, the key, the last response."""

    __slots__ = ("config", "data", "interval", "key", "last_response")

    def __init__(
        self,
        host: Host,
        request: Request,
        addr: Addr,
        key: ClientTransactionKey,
        config: TimerConfig,
        *,
        state: State,
    ) -> None:
        super().__init__(host, request, addr, state=state)
        self.key = key
        self.config = config
        self.data = request.to_bytes()
        self.interval = config.t1
        self.last_response: Response | None = None
        host.transmit(self.data, addr)

    def receive(self, response: Response, *, now: float) -> None:
        """A response matched this transaction (§17.1.3)."""
        self.last_response = response
        self._step(response_input(response.status), now=now)

    def _pass_up(self, now: float) -> None:
        assert self.last_response is not None  # set by receive() before every response input
        self.host.deliver(ResponseReceived(at=now, response=self.last_response, key=self.key))

    def _stop(self, *timers: Input) -> None:
        for timer in timers:
            self.timers.pop(timer, None)

    def _timed_out(self, now: float) -> None:
        self.host.deliver(TransactionTimedOut(at=now, key=self.key, method=self.key.method))

    def _on_transport_error(self, previous: State, now: float) -> None:
        event = TransportFailed(at=now, key=self.key, method=self.key.method, addr=self.addr)
        self.host.deliver(event)


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 Fig. 5 with RFC 6026's Accepted state."""

    __slots__ = ("acks", "cancel_requested", "cancel_sent")

    TABLE = INVITE_CLIENT

    def __init__(
        self,
        host: Host,
        request: Request,
        addr: Addr,
        key: ClientTransactionKey,
        config: TimerConfig,
        *,
        now: float,
    ) -> None:
        super().__init__(host, request, addr, key, config, state=State.CALLING)
        self.cancel_requested = False
        self.cancel_sent = False
        self.acks: dict[str, tuple[bytes, Addr]] = {}
        """ACKs the TU sent for 2xx responses, by To tag, resent on 2xx retransmissions."""
        self._start(Input.TIMER_A, config.a, now=now)
        self._start(Input.TIMER_B, config.b, now=now)

    def _on_timer_a(self, previous: State, now: float) -> None:
        # §17.1.1.2: retransmit and double the interval (no T2 cap for INVITE).
        self.host.transmit(self.data, self.addr)
        self.interval = self.config.doubled(self.interval)
        self._start(Input.TIMER_A, self.interval, now=now)

    def _on_timer_b(self, previous: State, now: float) -> None:
        self._timed_out(now)

    def _on_provisional(self, previous: State, now: float) -> None:
        self._stop(Input.TIMER_A, Input.TIMER_B)
        self._pass_up(now)

    def _on_success(self, previous: State, now: float) -> None:
        if previous is not State.ACCEPTED:
            self._stop(Input.TIMER_A, Input.TIMER_B)
            self._start(Input.TIMER_M, self.config.m, now=now)
        if previous is State.ACCEPTED and self._ack_again():
            return
        self._pass_up(now)

    def _ack_again(self) -> bool:
        # §13.2.2.4: a retransmitted 2xx is answered with the same ACK again.
        assert self.last_response is not None
        ack = self.acks.get(self.last_response.to.tag or "")
        if ack is not None:
            self.host.transmit(*ack)
        return ack is not None

    def _on_failure(self, previous: State, now: float) -> None:
        assert self.last_response is not None
        self.host.transmit(build_ack(self.request, self.last_response).to_bytes(), self.addr)
        if previous is State.COMPLETED:
            return  # a retransmission: ACK again, but the TU has seen it (§17.1.1.2)
        self._stop(Input.TIMER_A, Input.TIMER_B, Input.CANCEL_TIMEOUT)
        self._start(Input.TIMER_D, self.config.d, now=now)
        self._pass_up(now)

    def _on_timer_d(self, previous: State, now: float) -> None:
        """Completed -> Terminated: nothing more to absorb."""

    def _on_timer_m(self, previous: State, now: float) -> None:
        """Accepted -> Terminated (RFC 6026 §8.4)."""

    def _on_cancel_timeout(self, previous: State, now: float) -> None:
        self._timed_out(now)

    def cancel_due(self) -> bool:
        """True when the TU asked to cancel and a provisional response has now come (§9.1)."""
        return self.cancel_requested and not self.cancel_sent and self.state is State.PROCEEDING

    def cancel_sent_at(self, *, now: float) -> None:
        """§9.1: give up on the INVITE if no final response comes 64*T1 after the CANCEL."""
        self.cancel_sent = True
        self._start(Input.CANCEL_TIMEOUT, self.config.b, now=now)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 Fig. 6."""

    __slots__ = ()

    TABLE = NON_INVITE_CLIENT

    def __init__(
        self,
        host: Host,
        request: Request,
        addr: Addr,
        key: ClientTransactionKey,
        config: TimerConfig,
        *,
        now: float,
    ) -> None:
        super().__init__(host, request, addr, key, config, state=State.TRYING)
        self._start(Input.TIMER_E, config.e, now=now)
        self._start(Input.TIMER_F, config.f, now=now)

    def _on_timer_e(self, previous: State, now: float) -> None:
        # §17.1.2.2: doubling up to T2 in Trying; every T2 once a provisional came.
        self.host.transmit(self.data, self.addr)
        if self.state is State.TRYING:
            self.interval = self.config.doubled(self.interval, cap=self.config.t2)
        else:
            self.interval = self.config.t2
        self._start(Input.TIMER_E, self.interval, now=now)

    def _on_timer_f(self, previous: State, now: float) -> None:
        self._timed_out(now)

    def _on_provisional(self, previous: State, now: float) -> None:
        self._pass_up(now)

    def _on_success(self, previous: State, now: float) -> None:
        self._on_final(previous, now)

    def _on_failure(self, previous: State, now: float) -> None:
        self._on_final(previous, now)

    def _on_final(self, previous: State, now: float) -> None:
        if previous is State.COMPLETED:
            return  # §17.1.2.2: retransmitted finals are absorbed
        self._stop(Input.TIMER_E, Input.TIMER_F)
        self._start(Input.TIMER_K, self.config.k, now=now)
        self._pass_up(now)

    def _on_timer_k(self, previous: State, now: float) -> None:
        """Completed -> Terminated."""


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (§17.1.1.3): same branch, To from the response."""
    headers = Headers()
    headers.add("Via", invite.headers.values("via")[0])
    for route in invite.headers.get_all("route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("from") or "")
    headers.add("To", response.headers.get("to") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return Request("ACK", invite.uri, headers)


def build_cancel(invite: Request) -> Request:
    """The CANCEL for an INVITE (§9.1): same Request-URI, Call-ID, To, From, CSeq number,
    Route set and a single Via equal to the INVITE's top Via (so the same branch)."""
    headers = Headers()
    headers.add("Via", invite.headers.values("via")[0])
    for route in invite.headers.get_all("route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("from") or "")
    headers.add("To", invite.headers.get("to") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    return Request("CANCEL", invite.uri, headers)
