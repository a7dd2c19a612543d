"""Two transaction layers wired by an in-memory UDP link, driven in virtual time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sip.events import Event
from sip.header_fields import Headers
from sip.ids import CounterIds
from sip.message import Request
from sip.timers import TimerConfig
from sip.transaction import Addr
from sip.transaction_layer import TransactionLayer

A: Addr = ("10.0.0.1", 5060)
B: Addr = ("10.0.0.2", 5060)


@dataclass
class Sent:
    """One datagram on the wire: when, from where, to where, and its first line."""

    at: float
    src: Addr
    dst: Addr
    data: bytes

    @property
    def line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode()


Filter = Callable[[Sent], bool]


@dataclass
class Link:
    """Endpoints by address; `transfer` moves datagrams, `drop` decides losses."""

    a: TransactionLayer = field(default_factory=lambda: layer(A, "a"))
    b: TransactionLayer = field(default_factory=lambda: layer(B, "b"))
    now: float = 0.0
    wire: list[Sent] = field(default_factory=list)
    drop: Filter = lambda sent: False
    duplicate: Filter = lambda sent: False

    def endpoints(self) -> dict[Addr, TransactionLayer]:
        return {A: self.a, B: self.b}

    def transfer(self) -> None:
        """Deliver every queued datagram (and what the answers queue) until quiet."""
        moved = True
        while moved:
            moved = False
            for addr, ep in self.endpoints().items():
                for data, dst in ep.datagrams_to_send():
                    moved = True
                    self._carry(Sent(self.now, addr, dst, data))

    def _carry(self, sent: Sent) -> None:
        self.wire.append(sent)
        target = self.endpoints().get(sent.dst)
        if target is None or self.drop(sent):
            return
        copies = 2 if self.duplicate(sent) else 1
        for _ in range(copies):
            target.receive_datagram(sent.data, sent.src, now=self.now)

    def next_timer(self) -> float | None:
        timers = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None]
        return min(timers) if timers else None

    def run_until(self, end: float) -> None:
        """Fire timers in order up to `end`, transferring after each."""
        self.transfer()
        while (t := self.next_timer()) is not None and t <= end:
            self.now = t
            self.a.handle_timer(now=t)
            self.b.handle_timer(now=t)
            self.transfer()
        self.now = max(self.now, end)

    def sent(self, src: Addr, prefix: str) -> list[float]:
        """Instants at which `src` put a datagram starting with `prefix` on the wire."""
        return [s.at for s in self.wire if s.src == src and s.line.startswith(prefix)]


def layer(addr: Addr, prefix: str) -> TransactionLayer:
    return TransactionLayer(
        local_host=addr[0], local_port=addr[1], ids=CounterIds(prefix), config=TimerConfig()
    )


def events(ep: TransactionLayer) -> list[Event]:
    out: list[Event] = []
    while (event := ep.next_event()) is not None:
        out.append(event)
    return out


def request(method: str, *, call_id: str = "call-1", seq: int = 1, to: Addr = B) -> Request:
    """A request from A's user to B's user, without Via (the layer adds it)."""
    headers = Headers.of(
        ("Max-Forwards", "70"),
        ("From", f"<sip:alice@{A[0]}>;tag=alice-tag"),
        ("To", f"<sip:bob@{to[0]}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{seq} {method}"),
        ("Contact", f"<sip:alice@{A[0]}:{A[1]}>"),
    )
    return Request(method, f"sip:bob@{to[0]}:{to[1]}", headers)
